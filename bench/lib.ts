// Plumbing shared by the benchmarks in bench/: finding and installing the baseline tools,
// running one command with its wall time and peak RSS, the cached random source file, sizes of
// stored trees, and how figures are printed. What a benchmark measures, and its report, stay in
// its own file.
//
// Contracts:
// - `run` times a command from spawn to exit in its own process group, so a timeout or Ctrl-C
//   (`killRunning`) ends all of it. Peak RSS comes from GNU time when `configureRunner` was given
//   it, else from polling VmHWM in /proc.
// - Byte counts are the sums of regular file sizes (`du -sb` without directory entries).
// - Files written here are written under a temporary name and renamed, so an interrupted run
//   never leaves a short file that a later run would take for a cached one.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes, randomFillSync } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;

export const projectRoot = fileURLToPath(new URL('..', import.meta.url));
/** MEDIAGIT_BENCH_CLI points at another entry script, to measure another build of the CLI. */
export const cliPath =
  process.env['MEDIAGIT_BENCH_CLI'] ?? path.join(projectRoot, 'bin', 'mediagit.js');
/**
 * Git-ignored; holds cached inputs and each run's scratch directories.
 * MEDIAGIT_BENCH_WORK moves it, e.g. onto the slow-disk test bed
 * (scripts/slow-disk.sh, bench/README.md).
 */
export const workRoot = path.resolve(
  process.env['MEDIAGIT_BENCH_WORK'] || path.join(projectRoot, 'bench-work'),
);

// One reused I/O buffer: fresh memory costs ~4 s per GiB in page faults on this machine kind.
const ioBuffer = Buffer.allocUnsafe(8 * MiB);

/** Stops with a usage error (exit 2), as a CLI does for bad arguments. */
/** The environment benchmarked commands run in: this process's, a fixed identity, no colour, and `extra`. */
export function benchEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    MEDIAGIT_AUTHOR_NAME: 'Bench',
    MEDIAGIT_AUTHOR_EMAIL: 'bench@example.com',
    NO_COLOR: '1',
    ...extra,
  };
}

/** `--name N` from `args`: a positive number, `fallback` when absent. */
export function numberOption(args: readonly string[], name: string, fallback: number): number {
  const at = args.indexOf(name);
  if (at < 0) return fallback;
  const value = Number(args[at + 1]);
  if (!Number.isFinite(value) || value <= 0) fail(`${name} needs a positive number`);
  return value;
}

export function fail(message: string): never {
  process.stderr.write(`bench: ${message}\n`);
  process.exit(2);
}

export function progress(message: string): void {
  process.stderr.write(`· ${message}\n`);
}

// ---------------------------------------------------------------------------------------------
// Tools

export function onPath(name: string): string | null {
  if (name.includes('/')) return isExecutable(name) ? name : null;
  for (const dir of (process.env['PATH'] ?? '').split(':')) {
    const candidate = path.join(dir || '.', name);
    if (isExecutable(candidate)) return candidate;
  }
  return null;
}

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

export interface WantedTool {
  /** A command name looked up on PATH, or an absolute path. */
  command: string;
  /** The Debian package that provides it. */
  pkg: string;
}

/**
 * Installs the Debian packages of the tools not found, when running as root (`apt-get update`,
 * then `apt-get install -y`). Reports what it did or why it did not on stderr; the caller checks
 * afterwards which tools are there.
 */
export function installMissing(wanted: readonly WantedTool[]): void {
  const missing = wanted.filter((tool) => onPath(tool.command) === null);
  if (missing.length === 0) return;
  const names = [...new Set(missing.map((tool) => tool.pkg))].join(' ');
  if (process.getuid?.() !== 0) {
    progress(`missing ${names} and not root: the baselines that need them are skipped`);
    return;
  }
  progress(`installing ${names} (apt-get update && apt-get install -y ${names})`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  for (const args of [
    ['update', '-qq'],
    ['install', '-y', '-qq', ...names.split(' ')],
  ]) {
    const result = spawnSync('apt-get', args, { env, encoding: 'utf8', timeout: 300_000 });
    if (result.status !== 0) {
      const detail = `${result.stderr ?? ''}${result.error?.message ?? ''}`.trim();
      progress(`apt-get ${args[0]} failed: ${lastLines(detail, 3)}`);
      break;
    }
  }
  for (const tool of missing) {
    if (onPath(tool.command) === null) {
      progress(`${tool.command} is not available: its baseline is skipped`);
    }
  }
}

/** The first line a tool prints for its version, or '' if it cannot say. */
export function toolVersion(command: string, args: readonly string[]): string {
  const result = spawnSync(command, args, { encoding: 'utf8' });
  const text = result.stdout?.trim() || result.stderr?.trim() || '';
  return result.status === 0 ? (text.split('\n')[0] ?? '') : '';
}

// ---------------------------------------------------------------------------------------------
// Running commands

export interface RunResult {
  seconds: number;
  /** Peak resident set size of the command (GNU time %M, or polled VmHWM); null if unknown. */
  peakRssBytes: number | null;
  /** User + system CPU seconds of the command and its children (GNU time); null if unknown. */
  cpuSeconds: number | null;
  status: number | null;
  signal: string | null;
  timedOut: boolean;
  stdout: string;
  stderr: string;
}

export class CommandFailed extends Error {
  readonly result: RunResult;
  constructor(what: string, result: RunResult) {
    const how = result.timedOut
      ? 'timed out'
      : result.signal !== null
        ? `killed by ${result.signal}`
        : `exit ${String(result.status)}`;
    const detail = failureSummary(`${result.stderr}\n${result.stdout}`);
    super(`${what} failed (${how})${detail ? `: ${detail}` : ''}`);
    this.name = 'CommandFailed';
    this.result = result;
  }
}

interface RunnerSettings {
  /** GNU time, for peak RSS; null means RSS is polled from /proc instead. */
  gnuTime: string | null;
  env: NodeJS.ProcessEnv;
}

const runner: RunnerSettings = { gnuTime: null, env: process.env };
let runningGroup: number | null = null;

const outputCap = 4 * MiB;

/** Sets how every later `run` measures peak RSS and which environment its commands get. */
export function configureRunner(settings: RunnerSettings): void {
  runner.gnuTime = settings.gnuTime;
  runner.env = settings.env;
}

/**
 * Runs one command in its own process group (so a timeout or Ctrl-C ends all of it) and
 * measures its wall time from spawn to exit, plus its peak RSS.
 */
export async function run(
  command: string,
  args: readonly string[],
  cwd: string,
  timeoutSeconds = 300,
): Promise<RunResult> {
  const rssFile = path.join(workRoot, `.peak-rss-${process.pid}`);
  const gnuTime = runner.gnuTime;
  const file = gnuTime ?? command;
  const argv = gnuTime !== null ? ['-o', rssFile, '-f', '%M %U %S', command, ...args] : [...args];
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  let outBytes = 0;
  const keep = (into: Buffer[]) => (chunk: Buffer) => {
    if (outBytes < outputCap) into.push(chunk);
    outBytes += chunk.length;
  };
  let polledHwmKiB = 0;
  let timedOut = false;
  let end = 0n;

  const start = process.hrtime.bigint();
  const child = spawn(file, argv, { cwd, env: runner.env, detached: true, stdio: 'pipe' });
  child.stdin.end();
  child.stdout.on('data', keep(stdout));
  child.stderr.on('data', keep(stderr));
  const pid = child.pid;
  runningGroup = pid ?? null;
  // Without GNU time, poll the high-water mark; it is lost when the process exits, so this
  // can miss a peak reached in the last few milliseconds.
  const poller =
    gnuTime !== null
      ? null
      : setInterval(() => {
          const match = /VmHWM:\s+(\d+) kB/.exec(readOrEmpty(`/proc/${String(pid)}/status`));
          if (match?.[1] !== undefined) polledHwmKiB = Math.max(polledHwmKiB, Number(match[1]));
        }, 20);
  const timer = setTimeout(() => {
    timedOut = true;
    if (pid !== undefined) killGroup(pid);
  }, timeoutSeconds * 1000);

  const { status, signal } = await new Promise<{ status: number | null; signal: string | null }>(
    (resolve) => {
      child.on('exit', () => {
        end = process.hrtime.bigint();
      });
      child.on('error', (error) => {
        stderr.push(Buffer.from(String(error.message)));
        resolve({ status: null, signal: null });
      });
      child.on('close', (code, sig) => resolve({ status: code, signal: sig }));
    },
  );
  clearTimeout(timer);
  if (poller !== null) clearInterval(poller);
  runningGroup = null;
  if (end === 0n) end = process.hrtime.bigint();

  let peakRssBytes: number | null = polledHwmKiB > 0 ? polledHwmKiB * KiB : null;
  let cpuSeconds: number | null = null;
  if (gnuTime !== null) {
    // GNU time writes "Command exited with non-zero status N" before the figures on failure.
    const figures = /^(\d+) ([\d.]+) ([\d.]+)$/.exec(
      readOrEmpty(rssFile).trim().split('\n').pop() ?? '',
    );
    peakRssBytes = figures ? Number(figures[1]) * KiB : null;
    cpuSeconds = figures ? Number(figures[2]) + Number(figures[3]) : null;
    fs.rmSync(rssFile, { force: true });
  }
  return {
    seconds: Number(end - start) / 1e9,
    peakRssBytes,
    cpuSeconds,
    status,
    signal,
    timedOut,
    stdout: Buffer.concat(stdout).toString('utf8'),
    stderr: Buffer.concat(stderr).toString('utf8'),
  };
}

function killGroup(pgid: number): void {
  try {
    process.kill(-pgid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

/** Ends the process group of the command `run` is waiting for, if any (for Ctrl-C). */
export function killRunning(): void {
  if (runningGroup !== null) killGroup(runningGroup);
}

/** Runs a command and throws CommandFailed unless it exits 0. */
export async function must(
  what: string,
  command: string,
  args: readonly string[],
  cwd: string,
  timeoutSeconds?: number,
): Promise<RunResult> {
  const result = await run(command, args, cwd, timeoutSeconds);
  if (result.status !== 0) throw new CommandFailed(what, result);
  return result;
}

/** Runs the MediaGit CLI (`<node> <cliPath> ...args`); throws CommandFailed unless it exits 0. */
export function mediagit(
  args: readonly string[],
  cwd: string,
  timeoutSeconds?: number,
): Promise<RunResult> {
  return must(
    `mediagit ${args.join(' ')}`,
    process.execPath,
    [cliPath, ...args],
    cwd,
    timeoutSeconds,
  );
}

/** Flushes everything dirty; returns how long that took. */
export async function sync(): Promise<number> {
  return (await must('sync', 'sync', [], workRoot)).seconds;
}

/**
 * Checks that the CLI can at least create a repository (in `scratch`, removed afterwards), so a
 * CLI that does not work yet costs one clear error instead of one per figure. Returns the
 * problem, or null.
 */
export async function probeMediaGit(scratch: string): Promise<string | null> {
  const hint = fs.existsSync(path.join(projectRoot, 'dist', 'cli', 'main.js'))
    ? ''
    : ' (dist/cli/main.js is missing: the npm script builds it; did the build fail?)';
  const dir = freshDir(scratch);
  try {
    await mediagit(['init'], dir, 60);
    if (!fs.existsSync(path.join(dir, '.mediagit'))) {
      return 'MediaGit CLI: `mediagit init` made no .mediagit directory; repository sizes cannot be measured';
    }
    return null;
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    return `MediaGit CLI unusable, all MediaGit figures skipped: ${message}${hint}`;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// Files

export function readOrEmpty(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/** The lines of a failed command's output worth one report line: its error lines, else its tail. */
export function failureSummary(text: string): string {
  const lines = text
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean);
  const errors = lines.filter((line) => /^(fatal|error)\b|\w*Error\b/i.test(line));
  return (errors.length > 0 ? errors.slice(0, 2) : lines.slice(-3)).join(' | ');
}

export function lastLines(text: string, count: number): string {
  return text.split('\n').filter(Boolean).slice(-count).join(' | ');
}

/** Sum of the sizes of the regular files under `dir` (du -sb without directory entries). */
export function treeBytes(dir: string): number {
  let total = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) total += treeBytes(full);
    else if (entry.isFile()) total += fs.lstatSync(full).size;
  }
  return total;
}

export function freshDir(dir: string): string {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

/** SHA-256 of a file, read in pieces. */
export function sha256OfFile(file: string): string {
  const hash = createHash('sha256');
  const fd = fs.openSync(file, 'r');
  try {
    for (let n; (n = fs.readSync(fd, ioBuffer, 0, ioBuffer.length, null)) > 0;) {
      hash.update(ioBuffer.subarray(0, n));
    }
  } finally {
    fs.closeSync(fd);
  }
  return hash.digest('hex');
}

/** Returns the cached random file of exactly `bytes` bytes, generating it if needed. */
export function ensureSource(bytes: number): string {
  const file = path.join(workRoot, `source-${bytes}.bin`);
  const existing = fs.statSync(file, { throwIfNoEntry: false });
  if (existing?.isFile() === true && existing.size === bytes) {
    progress(`reusing ${path.relative(projectRoot, file)}`);
    return file;
  }
  progress(
    `generating ${formatBytes(bytes)} of random data into ${path.relative(projectRoot, file)}`,
  );
  const partial = `${file}.partial`;
  const fd = fs.openSync(partial, 'w');
  try {
    for (let written = 0; written < bytes;) {
      const n = Math.min(ioBuffer.length, bytes - written);
      randomFillSync(ioBuffer, 0, n);
      written += fs.writeSync(fd, ioBuffer, 0, n);
    }
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(partial, file);
  return file;
}

export interface SecondVersion {
  file: string;
  bytes: number;
  sha256: string;
  insertAt: number;
  overwriteAt: number;
}

const insertBytes = 4 * KiB;
const overwriteBytes = 64 * KiB;

/**
 * Streams `source` into a second version with 4 KiB of new random bytes inserted at 300/1024
 * of the source (300 MiB for 1 GiB) and 64 KiB overwritten at 700/1024 of the output (700 MiB),
 * in bounded memory, hashing the output on the way.
 */
export function makeSecondVersion(
  source: string,
  target: string,
  sourceBytes: number,
): SecondVersion {
  const insertAt = Math.floor((sourceBytes * 300) / 1024);
  const overwriteAt = Math.floor((sourceBytes * 700) / 1024);
  const inserted = randomBytes(insertBytes);
  const overwrite = randomBytes(overwriteBytes);
  const hash = createHash('sha256');
  const input = fs.openSync(source, 'r');
  const output = fs.openSync(target, 'w');
  let outPos = 0;
  const emit = (piece: Buffer): void => {
    const lo = Math.max(outPos, overwriteAt);
    const hi = Math.min(outPos + piece.length, overwriteAt + overwrite.length);
    if (lo < hi) overwrite.copy(piece, lo - outPos, lo - overwriteAt, hi - overwriteAt);
    hash.update(piece);
    for (let done = 0; done < piece.length;) {
      done += fs.writeSync(output, piece, done, piece.length - done);
    }
    outPos += piece.length;
  };
  try {
    let inPos = 0;
    while (inPos < sourceBytes) {
      const limit = inPos < insertAt ? insertAt : sourceBytes;
      const n = fs.readSync(input, ioBuffer, 0, Math.min(ioBuffer.length, limit - inPos), inPos);
      if (n === 0) throw new Error(`${source} is shorter than ${sourceBytes} bytes`);
      emit(ioBuffer.subarray(0, n));
      inPos += n;
      if (inPos === insertAt) emit(inserted);
    }
    fs.fsyncSync(output);
  } finally {
    fs.closeSync(input);
    fs.closeSync(output);
  }
  return { file: target, bytes: outPos, sha256: hash.digest('hex'), insertAt, overwriteAt };
}

// ---------------------------------------------------------------------------------------------
// Figures

export function formatRatio(ratio: number): string {
  return `${ratio >= 0.1 ? ratio.toFixed(2) : ratio.toPrecision(2)}x`;
}

export function formatSeconds(seconds: number): string {
  if (seconds >= 10) return `${seconds.toFixed(1)} s`;
  if (seconds >= 0.1) return `${seconds.toFixed(2)} s`;
  return `${(seconds * 1000).toFixed(1)} ms`;
}

export function formatBytes(bytes: number): string {
  const abs = Math.abs(bytes);
  if (abs >= GiB) return `${(bytes / GiB).toFixed(2)} GiB`;
  if (abs >= MiB) return `${(bytes / MiB).toFixed(2)} MiB`;
  if (abs >= KiB) return `${(bytes / KiB).toFixed(1)} KiB`;
  return `${bytes} B`;
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1
    ? (sorted[mid] ?? NaN)
    : ((sorted[mid - 1] ?? NaN) + (sorted[mid] ?? NaN)) / 2;
}

/** The `--repeat` count of a benchmark's command line (1 to 9), or undefined when invalid. */
export function parseRepeat(text: string | undefined): number | undefined {
  const count = Number(text);
  return Number.isInteger(count) && count >= 1 && count <= 9 ? count : undefined;
}

// ---------------------------------------------------------------------------------------------
// The device's own limits, printed beside every benchmark's figures (issue 14): a figure is read
// against the disk it ran on.

export interface DeviceLimits {
  /** dd of 256 MiB from /dev/zero, bs=4M, oflag=direct (MB/s, 10^6 bytes per second). */
  directWriteMBps: number | null;
  /** dd of the same 256 MiB back, bs=4M, iflag=direct. */
  directReadMBps: number | null;
  /** Median of 16 writes of 2 MiB (the chunk size), each followed by fsync. */
  writeFsyncMs: number;
}

function ddSeconds(args: readonly string[]): number | null {
  const started = process.hrtime.bigint();
  const dd = spawnSync('dd', [...args, 'bs=4M', 'count=64', 'status=none'], { encoding: 'utf8' });
  return dd.status === 0 ? Number(process.hrtime.bigint() - started) / 1e9 : null;
}

/** Measures the disk under `dir` (a few seconds; leaves nothing behind). */
export function deviceLimits(dir: string): DeviceLimits {
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `device-probe-${process.pid}.bin`);
  const mb = (256 * MiB) / 1e6;
  try {
    const write = ddSeconds(['if=/dev/zero', `of=${file}`, 'oflag=direct']);
    const read = write === null ? null : ddSeconds([`if=${file}`, 'of=/dev/null', 'iflag=direct']);
    const block = Buffer.alloc(2 * MiB, 7);
    const fd = fs.openSync(file, 'w');
    const costs: number[] = [];
    try {
      for (let i = 0; i < 16; i++) {
        const t = process.hrtime.bigint();
        fs.writeSync(fd, block, 0, block.length, i * block.length);
        fs.fsyncSync(fd);
        costs.push(Number(process.hrtime.bigint() - t) / 1e6);
      }
    } finally {
      fs.closeSync(fd);
    }
    return {
      directWriteMBps: write === null ? null : mb / write,
      directReadMBps: read === null ? null : mb / read,
      writeFsyncMs: median(costs),
    };
  } finally {
    fs.rmSync(file, { force: true });
  }
}

/** One line: `device: W MB/s direct write, R MB/s direct read (dd bs=4M), 2 MiB write + fsync X ms`. */
export function formatDeviceLimits(limits: DeviceLimits): string {
  const rate = (value: number | null): string => (value === null ? '?' : value.toFixed(0));
  return (
    `device: ${rate(limits.directWriteMBps)} MB/s direct write, ${rate(limits.directReadMBps)} MB/s ` +
    `direct read (dd bs=4M, 256 MiB), 2 MiB write + fsync ${limits.writeFsyncMs.toFixed(1)} ms`
  );
}

// ---------------------------------------------------------------------------------------------
// Servers

/** A long-running child process (the MediaGit server or nginx), stopped at the end. */
export interface Daemon {
  name: string;
  child: ChildProcess;
  /** What it printed, for error messages. */
  output: () => string;
  exited: Promise<void>;
}

export const daemons = new Set<Daemon>();

export function startDaemon(
  name: string,
  command: string,
  args: readonly string[],
  cwd: string,
  env: NodeJS.ProcessEnv,
): Daemon {
  const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  const keep = (part: Buffer): void => {
    if (text.length < 64 * KiB) text += part.toString('utf8');
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<void>((resolve) => {
    child.on('close', () => resolve());
    child.on('error', (error) => {
      text += error.message;
      resolve();
    });
  });
  const daemon: Daemon = { name, child, output: () => text, exited };
  daemons.add(daemon);
  void exited.then(() => daemons.delete(daemon));
  return daemon;
}

/** Stops a daemon by its own pid and waits for it (SIGKILL after 10 s). */
export async function stopDaemon(daemon: Daemon, signal: NodeJS.Signals): Promise<void> {
  if (daemon.child.exitCode !== null || daemon.child.signalCode !== null) return;
  daemon.child.kill(signal);
  const timer = setTimeout(() => daemon.child.kill('SIGKILL'), 10_000);
  await daemon.exited;
  clearTimeout(timer);
}

/** Waits until `ready` returns a value, or the daemon exits, or `seconds` pass. */
export async function waitFor<T>(
  daemon: Daemon,
  ready: () => Promise<T | null> | T | null,
  seconds = 30,
): Promise<T> {
  const deadline = Date.now() + seconds * 1000;
  let gone = false;
  void daemon.exited.then(() => {
    gone = true;
  });
  for (;;) {
    const value = await ready();
    if (value !== null) return value;
    if (gone) throw new Error(`${daemon.name} exited: ${daemon.output().trim()}`);
    if (Date.now() > deadline) {
      throw new Error(`${daemon.name} did not start in ${seconds} s: ${daemon.output().trim()}`);
    }
    await sleep(50);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export interface MediaGitServer {
  daemon: Daemon;
  /** http://127.0.0.1:<port> */
  base: string;
  root: string;
}

export async function startMediaGitServer(
  root: string,
  env: NodeJS.ProcessEnv,
): Promise<MediaGitServer> {
  const args = [cliPath, 'serve', '--root', root, '--port', '0', '--log', 'silent'];
  const daemon = startDaemon('mediagit serve', process.execPath, args, root, env);
  const base = await waitFor(
    daemon,
    () => /listening on (http:\/\/[\d.]+:\d+)/.exec(daemon.output())?.[1] ?? null,
  );
  return { daemon, base, root };
}
