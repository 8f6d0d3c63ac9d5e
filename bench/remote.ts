// Remote benchmark: `mediagit push` and `mediagit clone` of one large incompressible file through
// `mediagit serve` on loopback, each next to `curl` moving the same bytes to and from a plain
// nginx on loopback in the same run; plus two deduplication figures of the transfer: what a
// second push sends after a 4 KiB insert, and what a push killed halfway costs once rerun.
// See bench/README.md for what each figure means.
//
// Run with `npm run bench:remote` (builds first), or `node bench/remote.ts [--quick] [--size N]
// [--repeat N] [--json] [--keep] [--dir D]` with Node >= 24. Progress goes to stderr; stdout
// carries the table and, as its last line, one JSON object with every number (with --json, only
// that object).
//
// Contracts:
// - Both sides are treated alike: an untimed `sync` before each timed step, and each timed step
//   is the command plus a trailing `sync`, so a side that leaves its writes in the page cache
//   (nginx never fsyncs) pays for flushing them as a side that fsyncs (MediaGit) does.
// - Servers, clients and the file all live on this machine: the MediaGit server and nginx run
//   for the whole run as children of this script, each on its own loopback port.
// - Bytes received by the MediaGit server are its own counter (`GET /metrics`,
//   mediagit_http_bytes_received_total: the Content-Length of each request whose body arrived
//   whole). A body cut off by a killed client is not counted, so the interrupted-push figure
//   also reads what the server process read from sockets and files (`rchar` in /proc/<pid>/io)
//   and takes the larger of the two.
// - A failure does not stop the run: the figures it prevents print as n/a, the failure is
//   recorded, and the process exits 1. Missing a goal is a figure, not a failure.

import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  GiB,
  MiB,
  KiB,
  cliPath,
  configureRunner,
  ensureSource,
  fail,
  formatBytes,
  formatRatio,
  formatSeconds,
  freshDir,
  installMissing,
  killRunning,
  mediagit,
  median,
  must,
  onPath,
  probeMediaGit,
  progress,
  readOrEmpty,
  run,
  sync,
  toolVersion,
  workRoot,
  type RunResult,
  CommandFailed,
  parseRepeat,
  deviceLimits,
  formatDeviceLimits,
  daemons,
  sleep,
  startDaemon,
  startMediaGitServer,
  stopDaemon,
  waitFor,
  type Daemon,
  type MediaGitServer,
} from './lib.ts';

/** Goals of the issue: push and clone at most this many times curl's time. */
const timeGoal = 1.5;
/** Goal of issue 17: `download` of the file at most this many times curl's GET. */
const downloadGoal = 1.2;
/** Goal: the push after a 4 KiB insert sends at most this % of the file. */
const insertGoalPercent = 1;
/** Goal: a push killed halfway and rerun receives at most this % of the file in all. */
const resumeGoalPercent = 110;
const insertBytes = 4 * KiB;
/** Marks a run directory as ours, so --dir never wipes a directory this script did not make. */
const marker = '.mediagit-bench-remote';

// One reused I/O buffer: fresh memory costs ~4 s per GiB in page faults on this machine kind.
const ioBuffer = Buffer.allocUnsafe(8 * MiB);

// ---------------------------------------------------------------------------------------------
// Options

interface Options {
  fileBytes: number;
  quick: boolean;
  /** `--repeat`: measure push, clone and both curl transfers this many times; medians. */
  repeat: number;
  /** `--json`: stdout carries only the JSON object. */
  json: boolean;
  keep: boolean;
  /** The run directory (`--dir`), else bench-work/remote-run. */
  runDir: string;
}

const usage = `usage: node bench/remote.ts [--quick] [--size <bytes>] [--repeat <n>] [--json] [--keep] [--dir <dir>]
  --quick         smoke run on a 128 MiB file (the full run uses 1 GiB)
  --size <bytes>  the file's size, e.g. --size 2e9 (at least 16 MiB)
  --repeat <n>    measure each transfer n times (in rounds) and print medians
  --json          print only the JSON object with every figure on stdout
  --keep          keep the run directory afterwards
  --dir <dir>     the run directory (default bench-work/remote-run); made if missing, and
                  refused if it holds anything this script did not make`;

function parseOptions(argv: readonly string[]): Options {
  const options: Options = {
    fileBytes: GiB,
    quick: false,
    repeat: 1,
    json: false,
    keep: false,
    runDir: path.join(workRoot, 'remote-run'),
  };
  let size: number | null = null;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    const [flag, inline] = arg.startsWith('--') && arg.includes('=') ? arg.split('=', 2) : [arg];
    if (flag === '--quick') {
      options.quick = true;
    } else if (flag === '--size') {
      const text = inline ?? argv[++i];
      const bytes = Math.round(Number(text));
      if (text === undefined || !Number.isFinite(bytes) || bytes < 16 * MiB) {
        fail(`--size needs a byte count of at least 16 MiB (got ${String(text)})\n${usage}`);
      }
      size = bytes;
    } else if (flag === '--repeat') {
      const text = inline ?? argv[++i];
      const count = parseRepeat(text);
      if (count === undefined) {
        fail(`--repeat needs a count from 1 to 9 (got ${String(text)})\n${usage}`);
      }
      options.repeat = count;
    } else if (flag === '--json') {
      options.json = true;
    } else if (flag === '--keep') {
      options.keep = true;
    } else if (flag === '--dir') {
      const dir = inline ?? argv[++i];
      if (dir === undefined || dir === '') fail(`--dir needs a directory\n${usage}`);
      options.runDir = path.resolve(dir);
    } else if (flag === '--help' || flag === '-h') {
      console.log(usage);
      process.exit(0);
    } else {
      fail(`unknown argument ${arg}\n${usage}`);
    }
  }
  options.fileBytes = size ?? (options.quick ? 128 * MiB : GiB);
  return options;
}

/** Empties the run directory, refusing one that holds files this script did not put there. */
function prepareRunDir(dir: string): void {
  const entries = fs.existsSync(dir) ? fs.readdirSync(dir) : [];
  if (entries.length > 0 && !entries.includes(marker)) {
    fail(`--dir ${dir} is not empty and was not made by this script: give a new directory`);
  }
  freshDir(dir);
  fs.writeFileSync(path.join(dir, marker), 'bench/remote.ts run directory\n');
}

// ---------------------------------------------------------------------------------------------
// Tools

interface Tools {
  nginx: string | null;
  curl: string | null;
  /** GNU time, for peak RSS; null means RSS is polled from /proc instead. */
  gnuTime: string | null;
  versions: Record<string, string>;
}

/** nginx lives in /usr/sbin, which a non-root PATH may lack. */
function findNginx(): string | null {
  return onPath('nginx') ?? onPath('/usr/sbin/nginx');
}

function ensureTools(): Tools {
  installMissing([
    { command: findNginx() ?? 'nginx', pkg: 'nginx' },
    { command: 'curl', pkg: 'curl' },
    { command: '/usr/bin/time', pkg: 'time' },
  ]);
  const tools: Tools = {
    nginx: findNginx(),
    curl: onPath('curl'),
    gnuTime: onPath('/usr/bin/time'),
    versions: {},
  };
  if (tools.nginx !== null) tools.versions['nginx'] = toolVersion(tools.nginx, ['-v']);
  if (tools.curl !== null) tools.versions['curl'] = toolVersion(tools.curl, ['--version']);
  return tools;
}

// ---------------------------------------------------------------------------------------------
// Servers

/** A loopback port free right now (another process could still take it before nginx does). */
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

interface ServerCounters {
  bytesReceived: number;
  bytesSent: number;
  chunksStored: number;
}

/** The MediaGit server's own counters (`GET /metrics`, Prometheus text). */
async function serverCounters(server: MediaGitServer): Promise<ServerCounters> {
  const response = await fetch(`${server.base}/metrics`, { signal: AbortSignal.timeout(10_000) });
  if (!response.ok) throw new Error(`GET /metrics answered ${response.status}`);
  const text = await response.text();
  const value = (name: string): number => {
    const match = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
    if (match?.[1] === undefined) throw new Error(`GET /metrics has no ${name}`);
    return Number(match[1]);
  };
  return {
    bytesReceived: value('mediagit_http_bytes_received_total'),
    bytesSent: value('mediagit_http_bytes_sent_total'),
    chunksStored: value('mediagit_chunks_stored_total'),
  };
}

const clockTicks = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout) || 100;

/** CPU seconds (user + system) a process has used so far, from /proc/<pid>/stat. */
function cpuSeconds(pid: number | undefined): number | null {
  const stat = readOrEmpty(`/proc/${String(pid)}/stat`);
  // Fields after the command name, which is in parentheses and may hold spaces.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const user = Number(fields[11]);
  const system = Number(fields[12]);
  return Number.isFinite(user) && Number.isFinite(system) ? (user + system) / clockTicks : null;
}

/** Bytes a process has read with read()-like calls so far (sockets and files), or null. */
function readCallBytes(pid: number | undefined): number | null {
  const match = /^rchar: (\d+)$/m.exec(readOrEmpty(`/proc/${String(pid)}/io`));
  return match?.[1] === undefined ? null : Number(match[1]);
}

function peakRssOf(pid: number | undefined): number | null {
  const match = /VmHWM:\s+(\d+) kB/.exec(readOrEmpty(`/proc/${String(pid)}/status`));
  return match?.[1] === undefined ? null : Number(match[1]) * KiB;
}

interface Nginx {
  daemon: Daemon;
  port: number;
  /** Where PUT stores /up/<name>, and GET reads it from. */
  uploadDir: string;
}

/**
 * A minimal nginx: one worker, no access log, sendfile, unlimited bodies, PUT through the dav
 * module under /up/, every path it writes inside `dir`. As root the worker stays root (the
 * default `nobody` could not write into the run directory).
 */
async function startNginx(command: string, dir: string): Promise<Nginx> {
  const port = await freePort();
  const www = path.join(dir, 'www');
  const temp = path.join(dir, 'temp');
  fs.mkdirSync(path.join(www, 'up'), { recursive: true });
  fs.mkdirSync(temp, { recursive: true });
  const config = [
    'daemon off;',
    'worker_processes 1;',
    ...(process.getuid?.() === 0 ? ['user root root;'] : []),
    `pid ${path.join(dir, 'nginx.pid')};`,
    `error_log ${path.join(dir, 'error.log')} warn;`,
    'events { worker_connections 64; }',
    'http {',
    '  access_log off;',
    '  sendfile on;',
    '  default_type application/octet-stream;',
    '  client_max_body_size 0;',
    `  client_body_temp_path ${path.join(temp, 'body')};`,
    `  proxy_temp_path ${path.join(temp, 'proxy')};`,
    `  fastcgi_temp_path ${path.join(temp, 'fastcgi')};`,
    `  uwsgi_temp_path ${path.join(temp, 'uwsgi')};`,
    `  scgi_temp_path ${path.join(temp, 'scgi')};`,
    '  server {',
    `    listen 127.0.0.1:${port};`,
    `    root ${www};`,
    '    location /up/ {',
    '      dav_methods PUT;',
    '      create_full_put_path on;',
    '    }',
    '  }',
    '}',
    '',
  ].join('\n');
  const configFile = path.join(dir, 'nginx.conf');
  fs.writeFileSync(configFile, config);
  const args = ['-p', dir, '-c', configFile, '-e', path.join(dir, 'error.log')];
  const daemon = startDaemon('nginx', command, args, dir, process.env);
  await waitFor(daemon, async () => ((await canConnect(port)) ? true : null));
  return { daemon, port, uploadDir: path.join(www, 'up') };
}

// ---------------------------------------------------------------------------------------------
// Files

/**
 * Writes `source` with `insertBytes` fresh random bytes inserted at the middle to `target`
 * (under a temporary name, renamed when complete), through the reused buffer.
 */
function writeInsertedVersion(source: string, target: string, bytes: number): number {
  const at = Math.floor(bytes / 2);
  const partial = `${target}.partial`;
  // The same inserted bytes every run, so the figure depends only on the (cached) source.
  const inserted = createHash('shake256', { outputLength: insertBytes })
    .update('mediagit bench/remote.ts insert')
    .digest();
  const input = fs.openSync(source, 'r');
  const output = fs.openSync(partial, 'w');
  const write = (data: Uint8Array): void => {
    for (let done = 0; done < data.length;) {
      done += fs.writeSync(output, data, done, data.length - done);
    }
  };
  try {
    for (let position = 0; position < bytes;) {
      const limit = position < at ? at : bytes;
      const n = fs.readSync(
        input,
        ioBuffer,
        0,
        Math.min(ioBuffer.length, limit - position),
        position,
      );
      if (n === 0) throw new Error(`${source} is shorter than ${bytes} bytes`);
      write(ioBuffer.subarray(0, n));
      position += n;
      if (position === at) write(inserted);
    }
  } finally {
    fs.closeSync(input);
    fs.closeSync(output);
  }
  fs.renameSync(partial, target);
  return at;
}

/** Reads `file` once, so the commands that follow find it in the page cache. */
function warm(file: string): void {
  const fd = fs.openSync(file, 'r');
  try {
    while (fs.readSync(fd, ioBuffer, 0, ioBuffer.length, null) > 0);
  } finally {
    fs.closeSync(fd);
  }
}

function sizeOf(file: string): number | null {
  return fs.statSync(file, { throwIfNoEntry: false })?.size ?? null;
}

// ---------------------------------------------------------------------------------------------
// Measuring

type Figure = number | null;

/** One timed transfer: the command, then a trailing `sync`. */
interface Transfer {
  /** The command alone, spawn to exit. */
  commandSeconds: number;
  /** The trailing `sync`: how much the command left unflushed. */
  syncSeconds: number;
  /** The command plus the sync: what the ratios compare. */
  seconds: number;
  peakRssBytes: Figure;
  /** CPU seconds the MediaGit server used during the command (null for curl). */
  serverCpuSeconds: Figure;
}

async function timed(
  step: () => Promise<RunResult>,
  serverPid?: number,
): Promise<{ transfer: Transfer; result: RunResult }> {
  await sync();
  const cpuBefore = serverPid === undefined ? null : cpuSeconds(serverPid);
  const result = await step();
  const cpuAfter = serverPid === undefined ? null : cpuSeconds(serverPid);
  const syncSeconds = await sync();
  return {
    result,
    transfer: {
      commandSeconds: result.seconds,
      syncSeconds,
      seconds: result.seconds + syncSeconds,
      peakRssBytes: result.peakRssBytes,
      serverCpuSeconds: cpuBefore === null || cpuAfter === null ? null : cpuAfter - cpuBefore,
    },
  };
}

function medianTransfer(runs: readonly Transfer[]): Transfer | null {
  if (runs.length === 0) return null;
  const of = (pick: (t: Transfer) => Figure): Figure => {
    const values = runs.map(pick);
    return values.includes(null) ? null : median(values as number[]);
  };
  return {
    commandSeconds: of((t) => t.commandSeconds) ?? NaN,
    syncSeconds: of((t) => t.syncSeconds) ?? NaN,
    seconds: of((t) => t.seconds) ?? NaN,
    peakRssBytes: of((t) => t.peakRssBytes),
    serverCpuSeconds: of((t) => t.serverCpuSeconds),
  };
}

interface TransferStats {
  objects: number;
  chunks: number;
  chunksSkipped: number;
  bytes: number;
}

function statsOf(result: RunResult): TransferStats {
  const parsed = JSON.parse(result.stdout) as { stats?: TransferStats };
  if (parsed.stats === undefined) throw new Error('--json output has no stats');
  return parsed.stats;
}

/** Runs curl and checks the HTTP status it reports (`-w %{http_code}` on stdout). */
async function curl(
  tools: Tools,
  what: string,
  args: readonly string[],
  cwd: string,
  ok: readonly number[],
  timeout: number,
): Promise<RunResult> {
  const result = await must(
    what,
    tools.curl ?? 'curl',
    ['-sS', '-w', '%{http_code}', ...args],
    cwd,
    timeout,
  );
  const status = Number(result.stdout.trim());
  if (!ok.includes(status)) throw new Error(`${what}: HTTP ${result.stdout.trim() || '?'}`);
  return result;
}

class Report {
  readonly figures: Record<string, Figure> = {};
  readonly errors: string[] = [];
  readonly notes: string[] = [];

  set(key: string, value: Figure | undefined): void {
    // Byte counts stay exact; measured values keep 6 significant digits.
    if (value === null || value === undefined || !Number.isFinite(value)) this.figures[key] = null;
    else this.figures[key] = Number.isInteger(value) ? value : Number(value.toPrecision(6));
  }

  error(message: string): void {
    progress(`ERROR ${message}`);
    this.errors.push(message);
  }

  /** Runs one part of the benchmark; a failure is recorded, returns null, and the run goes on. */
  async attempt<T>(what: string, body: () => Promise<T>): Promise<T | null> {
    try {
      return await body();
    } catch (error) {
      this.error(`${what}: ${error instanceof Error ? error.message : String(error)}`);
      return null;
    }
  }
}

interface Context {
  options: Options;
  tools: Tools;
  report: Report;
  /** Null when MediaGit could not start: only the baselines run. */
  server: MediaGitServer | null;
  nginx: Nginx | null;
  /** The client's work tree, holding big.bin committed as v1. */
  work: string;
  file: string;
  timeout: number;
}

interface RoundFigures {
  push: Transfer[];
  clone: Transfer[];
  download: Transfer[];
  put: Transfer[];
  get: Transfer[];
  /** Chunks of the file, from the first push's stats. */
  chunks: number | null;
  /** Bytes the server received during one push (from its counter). */
  pushReceived: number | null;
}

/**
 * One round: push the committed file into a fresh bare repository `repo<round>` and clone it,
 * then move the same bytes up and down with curl. Each step is timed from an untimed `sync` to
 * after a trailing `sync`. Returns the name of the repository pushed to, or null.
 */
async function measureRound(
  ctx: Context,
  round: number,
  into: RoundFigures,
): Promise<string | null> {
  const pushed = ctx.server === null ? null : await measureMediaGit(ctx, ctx.server, round, into);
  if (ctx.nginx !== null) await measureCurl(ctx, ctx.nginx, round, into);
  return pushed;
}

async function measureMediaGit(
  ctx: Context,
  server: MediaGitServer,
  round: number,
  into: RoundFigures,
): Promise<string | null> {
  const { options, report, work, timeout } = ctx;
  const name = `repo${round}`;
  const url = `${server.base}/${name}`;
  const pid = server.daemon.child.pid;
  const pushed = await report.attempt(`push (round ${round})`, async () => {
    await mediagit(['init', '--bare', path.join(server.root, name)], server.root);
    await mediagit(['remote', 'add', name, url], work);
    const before = await serverCounters(server);
    const { transfer, result } = await timed(
      () => mediagit(['push', name, 'main', '--json'], work, timeout),
      pid,
    );
    const after = await serverCounters(server);
    const stats = statsOf(result);
    into.push.push(transfer);
    into.chunks ??= stats.chunks;
    into.pushReceived ??= after.bytesReceived - before.bytesReceived;
    progress(
      `  mediagit push: ${formatSeconds(transfer.seconds)} (${stats.chunks} chunks, ` +
        `${formatBytes(stats.bytes)} sent)`,
    );
    return name;
  });
  if (pushed === null) return null;

  const cloneDir = path.join(options.runDir, 'clone');
  await report.attempt(`clone (round ${round})`, async () => {
    fs.rmSync(cloneDir, { recursive: true, force: true });
    const { transfer } = await timed(
      () => mediagit(['clone', url, cloneDir, '--json'], options.runDir, timeout),
      pid,
    );
    const size = sizeOf(path.join(cloneDir, 'big.bin'));
    if (size !== options.fileBytes) {
      throw new Error(`the cloned big.bin has ${String(size)} bytes, not ${options.fileBytes}`);
    }
    into.clone.push(transfer);
    progress(`  mediagit clone: ${formatSeconds(transfer.seconds)}`);
  });
  fs.rmSync(cloneDir, { recursive: true, force: true });
  const downloaded = path.join(options.runDir, 'downloaded.bin');
  await report.attempt(`download (round ${round})`, async () => {
    fs.rmSync(downloaded, { force: true });
    const { transfer } = await timed(
      () => mediagit(['download', '-q', '-o', downloaded, url, 'big.bin'], options.runDir, timeout),
      pid,
    );
    const size = sizeOf(downloaded);
    if (size !== options.fileBytes) {
      throw new Error(`the downloaded big.bin has ${String(size)} bytes, not ${options.fileBytes}`);
    }
    into.download.push(transfer);
    progress(`  mediagit download: ${formatSeconds(transfer.seconds)}`);
  });
  fs.rmSync(downloaded, { force: true });
  return pushed;
}

async function measureCurl(
  ctx: Context,
  nginx: Nginx,
  round: number,
  into: RoundFigures,
): Promise<void> {
  const { options, report, work, timeout } = ctx;
  const remote = `http://127.0.0.1:${nginx.port}/up/big.bin`;
  const uploaded = path.join(nginx.uploadDir, 'big.bin');
  const put = await report.attempt(`curl PUT (round ${round})`, async () => {
    fs.rmSync(uploaded, { force: true });
    const args = ['-o', '/dev/null', '-T', ctx.file, remote];
    const { transfer } = await timed(() =>
      curl(ctx.tools, 'curl PUT', args, work, [201, 204], timeout),
    );
    if (sizeOf(uploaded) !== options.fileBytes) {
      throw new Error(`nginx stored ${String(sizeOf(uploaded))} bytes, not ${options.fileBytes}`);
    }
    into.put.push(transfer);
    progress(`  curl PUT: ${formatSeconds(transfer.seconds)}`);
    return true;
  });
  if (put !== null) {
    const out = path.join(options.runDir, 'out.bin');
    await report.attempt(`curl GET (round ${round})`, async () => {
      fs.rmSync(out, { force: true });
      const args = ['-o', out, remote];
      const { transfer } = await timed(() =>
        curl(ctx.tools, 'curl GET', args, work, [200], timeout),
      );
      if (sizeOf(out) !== options.fileBytes) {
        throw new Error(`curl GET wrote ${String(sizeOf(out))} bytes, not ${options.fileBytes}`);
      }
      into.get.push(transfer);
      progress(`  curl GET: ${formatSeconds(transfer.seconds)}`);
    });
    fs.rmSync(out, { force: true });
  }
  fs.rmSync(uploaded, { force: true });
}

interface ResumeFigures {
  /** Chunks the server had stored when the client was killed. */
  chunksAtKill: number;
  /** Chunks the first attempt left stored: those at the kill plus those then in flight. */
  chunksStoredByFirst: number;
  totalChunks: number;
  firstReceived: number;
  secondReceived: number;
  /** What the server process read from sockets and files over both attempts (rchar). */
  serverReadBytes: Figure;
  secondChunksSkipped: number;
  secondChunksSent: number;
  secondSeconds: number;
}

/**
 * Pushes the committed file into a fresh repository, SIGKILLs the client (its whole process
 * group) once the server has stored half the chunks, then pushes again to completion.
 */
async function measureResume(
  ctx: Context,
  server: MediaGitServer,
  totalChunks: number,
): Promise<ResumeFigures> {
  const { work, timeout } = ctx;
  const name = 'resume';
  const url = `${server.base}/${name}`;
  const pid = server.daemon.child.pid;
  await mediagit(['init', '--bare', path.join(server.root, name)], server.root);
  await mediagit(['remote', 'add', name, url], work);
  const half = Math.ceil(totalChunks / 2);
  await sync();
  const start = await serverCounters(server);
  const readStart = readCallBytes(pid);
  let killedAt: number | null = null;
  let polling = true;
  const poll = (async () => {
    while (polling) {
      const now = await serverCounters(server).catch(() => null);
      if (polling && now !== null && now.chunksStored - start.chunksStored >= half) {
        killedAt = now.chunksStored - start.chunksStored;
        killRunning();
        return;
      }
      await sleep(20);
    }
  })();
  const first = await run(
    process.execPath,
    [cliPath, 'push', name, 'main', '--json'],
    work,
    timeout,
  );
  polling = false;
  await poll;
  if (first.status === 0) {
    throw new Error(`the push finished before it was killed (${totalChunks} chunks)`);
  }
  if (killedAt === null) throw new CommandFailed('the push to be interrupted', first);
  // Let the server finish with the requests the kill cut off before reading its counters.
  await sleep(500);
  const middle = await serverCounters(server);
  const second = await mediagit(['push', name, 'main', '--json'], work, timeout);
  const end = await serverCounters(server);
  const readEnd = readCallBytes(pid);
  const stats = statsOf(second);
  fs.rmSync(path.join(server.root, name), { recursive: true, force: true });
  return {
    chunksAtKill: killedAt,
    chunksStoredByFirst: middle.chunksStored - start.chunksStored,
    totalChunks,
    firstReceived: middle.bytesReceived - start.bytesReceived,
    secondReceived: end.bytesReceived - middle.bytesReceived,
    serverReadBytes: readStart === null || readEnd === null ? null : readEnd - readStart,
    secondChunksSkipped: stats.chunksSkipped,
    secondChunksSent: stats.chunks,
    secondSeconds: second.seconds,
  };
}

interface InsertFigures {
  insertAt: number;
  received: number;
  clientBytes: number;
  chunksSent: number;
  chunksSkipped: number;
  seconds: number;
}

/**
 * Inserts 4 KiB of random bytes at the middle of big.bin, commits it (untimed), and pushes it
 * to the repository that already holds v1; returns what that second push cost.
 */
async function measureInsert(
  ctx: Context,
  server: MediaGitServer,
  repo: string,
): Promise<InsertFigures> {
  const { work, timeout } = ctx;
  const insertAt = writeInsertedVersion(ctx.file, ctx.file, ctx.options.fileBytes);
  await mediagit(['add', 'big.bin'], work, timeout);
  await mediagit(['commit', '-m', 'v2: 4 KiB inserted'], work, timeout);
  const before = await serverCounters(server);
  const { transfer, result } = await timed(
    () => mediagit(['push', repo, 'main', '--json'], work, timeout),
    server.daemon.child.pid,
  );
  const after = await serverCounters(server);
  const stats = statsOf(result);
  return {
    insertAt,
    received: after.bytesReceived - before.bytesReceived,
    clientBytes: stats.bytes,
    chunksSent: stats.chunks,
    chunksSkipped: stats.chunksSkipped,
    seconds: transfer.seconds,
  };
}

// ---------------------------------------------------------------------------------------------
// Report

const mark = (met: boolean | null): string => (met === null ? '' : met ? '✓' : '✗');
const percentText = (n: number): string => `${n.toFixed(n < 10 ? 2 : 1)} %`;
const chunksText = (n: number): string => `${n} chunk${n === 1 ? '' : 's'}`;

function table(rows: readonly (readonly string[])[], rightFrom = 1): string[] {
  const widths: number[] = [];
  // A row of one cell is a note under the row above: it spans the table.
  for (const row of rows.filter((cells) => cells.length > 1)) {
    row.forEach((cell, i) => {
      widths[i] = Math.max(widths[i] ?? 0, cell.length);
    });
  }
  return rows.map((row) =>
    row
      .map((cell, i) =>
        i < rightFrom ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0),
      )
      .join('   ')
      .trimEnd(),
  );
}

interface Outcome {
  push: Transfer | null;
  clone: Transfer | null;
  download: Transfer | null;
  put: Transfer | null;
  get: Transfer | null;
  chunks: number | null;
  pushReceived: number | null;
  insert: InsertFigures | null;
  resume: ResumeFigures | null;
  serverPeakRssBytes: Figure;
}

/** Records every figure and returns the report's lines. */
function render(outcome: Outcome, options: Options, report: Report): string[] {
  const size = options.fileBytes;
  const lines: string[] = [];
  const text = (value: Figure | undefined, format: (n: number) => string): string =>
    value === null || value === undefined ? 'n/a' : format(value);
  const ratio = (a: Transfer | null, b: Transfer | null): Figure =>
    a === null || b === null || b.seconds === 0 ? null : a.seconds / b.seconds;

  const rows: string[][] = [['', 'MediaGit', 'curl + nginx', 'ratio', 'goal', '']];
  const pairs = [
    ['push', 'push (curl -T: PUT)', outcome.push, outcome.put, 'put', timeGoal],
    ['clone', 'clone (curl GET)', outcome.clone, outcome.get, 'get', timeGoal],
    ['download', 'download (curl GET)', outcome.download, outcome.get, 'get', downloadGoal],
  ] as const;
  for (const [key, label, mine, theirs, curlKey, goal] of pairs) {
    const value = ratio(mine, theirs);
    const met = value === null ? null : value <= goal;
    report.set(`${key}.mediagit.seconds`, mine?.seconds);
    report.set(`${key}.mediagit.commandSeconds`, mine?.commandSeconds);
    report.set(`${key}.mediagit.syncSeconds`, mine?.syncSeconds);
    report.set(`${key}.mediagit.peakRssBytes`, mine?.peakRssBytes);
    report.set(`${key}.mediagit.serverCpuSeconds`, mine?.serverCpuSeconds);
    report.set(`${key}.curl.${curlKey}Seconds`, theirs?.seconds);
    report.set(`${key}.curl.commandSeconds`, theirs?.commandSeconds);
    report.set(`${key}.curl.syncSeconds`, theirs?.syncSeconds);
    report.set(`${key}.curl.peakRssBytes`, theirs?.peakRssBytes);
    report.set(`${key}.ratio.mediagitToCurl`, value);
    report.set(`${key}.goal.maxRatio`, goal);
    report.set(`${key}.goal.met`, met === null ? null : Number(met));
    rows.push([
      label,
      text(mine?.seconds, formatSeconds),
      text(theirs?.seconds, formatSeconds),
      text(value, formatRatio),
      `≤ ${formatRatio(goal)}`,
      mark(met),
    ]);
    rows.push([
      '  of which the trailing sync',
      text(mine?.syncSeconds, formatSeconds),
      text(theirs?.syncSeconds, formatSeconds),
    ]);
    rows.push([
      '  throughput (MB/s, with sync)',
      text(mine === null ? null : size / 1e6 / mine.seconds, (n) => n.toFixed(0)),
      text(theirs === null ? null : size / 1e6 / theirs.seconds, (n) => n.toFixed(0)),
    ]);
    rows.push([
      '  peak RSS of the client',
      text(mine?.peakRssBytes, formatBytes),
      text(theirs?.peakRssBytes, formatBytes),
    ]);
    rows.push(['  MediaGit server CPU', text(mine?.serverCpuSeconds, formatSeconds)]);
  }
  report.set('server.peakRssBytes', outcome.serverPeakRssBytes);
  report.set('push.chunks', outcome.chunks);
  report.set('push.serverBytesReceived', outcome.pushReceived);
  lines.push(...table(rows));
  lines.push(
    `  (MediaGit server peak RSS over the whole run: ${text(outcome.serverPeakRssBytes, formatBytes)}; ` +
      `one push: ${text(outcome.chunks, String)} chunks, ` +
      `${text(outcome.pushReceived, formatBytes)} received by the server)`,
  );

  const dedupRows: string[][] = [['deduplication', 'bytes', '% of file', 'goal', '']];
  const insert = outcome.insert;
  const insertPercent = insert === null ? null : (100 * insert.received) / size;
  const insertMet = insertPercent === null ? null : insertPercent <= insertGoalPercent;
  report.set('insert.atByte', insert?.insertAt);
  report.set('insert.serverBytesReceived', insert?.received);
  report.set('insert.percentOfFile', insertPercent);
  report.set('insert.clientBytesSent', insert?.clientBytes);
  report.set('insert.chunksSent', insert?.chunksSent);
  report.set('insert.chunksSkipped', insert?.chunksSkipped);
  report.set('insert.pushSeconds', insert?.seconds);
  report.set('insert.goal.maxPercent', insertGoalPercent);
  report.set('insert.goal.met', insertMet === null ? null : Number(insertMet));
  dedupRows.push([
    '(a) push after a 4 KiB insert in the middle',
    text(insert?.received, formatBytes),
    text(insertPercent, percentText),
    `≤ ${insertGoalPercent} %`,
    mark(insertMet),
  ]);
  if (insert !== null) {
    dedupRows.push([
      `      ${chunksText(insert.chunksSent)} sent, ${insert.chunksSkipped} skipped; ` +
        `${formatSeconds(insert.seconds)} with sync`,
    ]);
  }
  // The server's counter leaves out bodies the kill cut off (and, before 87af0f0, bodies it
  // stored but could not answer), so the bytes its process read are the figure when larger.
  const resume = outcome.resume;
  const counted = resume === null ? null : resume.firstReceived + resume.secondReceived;
  const resumeBytes =
    resume === null || counted === null ? null : Math.max(counted, resume.serverReadBytes ?? 0);
  const percentOf = (bytes: Figure | undefined): Figure =>
    bytes === null || bytes === undefined ? null : (100 * bytes) / size;
  const resumePercent = percentOf(resumeBytes);
  const resumeMet = resumePercent === null ? null : resumePercent <= resumeGoalPercent;
  report.set('resume.chunksAtKill', resume?.chunksAtKill);
  report.set('resume.chunksStoredByFirstAttempt', resume?.chunksStoredByFirst);
  report.set('resume.totalChunks', resume?.totalChunks);
  report.set('resume.serverBytesReceived', resumeBytes);
  report.set('resume.percentOfFile', resumePercent);
  report.set('resume.counter.firstAttemptBytes', resume?.firstReceived);
  report.set('resume.counter.secondAttemptBytes', resume?.secondReceived);
  report.set('resume.counter.totalBytes', counted);
  report.set('resume.counter.percentOfFile', percentOf(counted));
  report.set('resume.serverReadCallBytes', resume?.serverReadBytes);
  report.set('resume.serverReadCallPercentOfFile', percentOf(resume?.serverReadBytes));
  report.set('resume.secondChunksSkipped', resume?.secondChunksSkipped);
  report.set('resume.secondChunksSent', resume?.secondChunksSent);
  report.set('resume.secondPushSeconds', resume?.secondSeconds);
  report.set('resume.goal.maxPercent', resumeGoalPercent);
  report.set('resume.goal.met', resumeMet === null ? null : Number(resumeMet));
  dedupRows.push([
    '(b) push killed halfway, then rerun: received over both',
    text(resumeBytes, formatBytes),
    text(resumePercent, percentText),
    `≤ ${resumeGoalPercent} %`,
    mark(resumeMet),
  ]);
  if (resume !== null) {
    const bytesAndPercent = (bytes: Figure): string =>
      `${text(bytes, formatBytes)} (${text(percentOf(bytes), percentText)})`;
    dedupRows.push([
      `      read by the server process (rchar): ${bytesAndPercent(resume.serverReadBytes)}; ` +
        `its bytes-received counter: ${bytesAndPercent(counted)} (whole bodies only)`,
    ]);
    dedupRows.push([
      `      killed at ${resume.chunksAtKill} of ${resume.totalChunks} chunks stored; the first ` +
        `attempt left ${resume.chunksStoredByFirst} stored (the rest were in flight); the rerun ` +
        `sent ${chunksText(resume.secondChunksSent)} and skipped ${resume.secondChunksSkipped}`,
    ]);
  }
  lines.push('', ...table(dedupRows));
  if (size !== GiB && outcome.chunks !== null) {
    const chunkPercent = 100 / outcome.chunks;
    report.notes.push(
      `the goals are set for a 1 GiB file; here one average chunk ` +
        `(${formatBytes(size / outcome.chunks)}) is ${percentText(chunkPercent)} of the file` +
        (chunkPercent > insertGoalPercent ? `, so (a) cannot reach ${insertGoalPercent} %` : ''),
    );
  }

  return lines;
}

// ---------------------------------------------------------------------------------------------
// Main

async function main(): Promise<number> {
  const options = parseOptions(process.argv.slice(2));
  const report = new Report();
  const started = Date.now();
  const size = options.fileBytes;
  const tools = ensureTools();
  if (tools.curl === null) report.error('curl is not installed: the baselines are skipped');
  if (tools.nginx === null) report.error('nginx is not installed: the baselines are skipped');

  const cachedSource = sizeOf(path.join(workRoot, `source-${size}.bin`)) === size;
  // Peak: source, work copy, client repository, server repository, clone (repository + file),
  // nginx's copy and curl's download.
  const needed = (cachedSource ? 0 : size) + 7 * size;
  fs.mkdirSync(workRoot, { recursive: true });
  fs.mkdirSync(path.dirname(options.runDir), { recursive: true });
  const stats = fs.statfsSync(path.dirname(options.runDir));
  const free = stats.bavail * stats.bsize;
  if (free < needed) {
    fail(`needs about ${formatBytes(needed)} free for ${options.runDir}, has ${formatBytes(free)}`);
  }
  prepareRunDir(options.runDir);
  const childEnv: NodeJS.ProcessEnv = {
    ...process.env,
    LC_ALL: 'C',
    MEDIAGIT_AUTHOR_NAME: 'bench',
    MEDIAGIT_AUTHOR_EMAIL: 'bench@example.com',
  };
  configureRunner({ gnuTime: tools.gnuTime, env: childEnv });
  const stopAll = async (): Promise<void> => {
    for (const daemon of [...daemons]) {
      await stopDaemon(daemon, daemon.name === 'nginx' ? 'SIGQUIT' : 'SIGTERM');
    }
  };
  // An unexpected crash must not leave the servers running.
  process.on('exit', () => {
    for (const daemon of daemons) daemon.child.kill('SIGKILL');
  });
  process.on('SIGINT', () => {
    killRunning();
    void stopAll().finally(() => process.exit(130));
  });

  const outcome: Outcome = {
    push: null,
    clone: null,
    download: null,
    put: null,
    get: null,
    chunks: null,
    pushReceived: null,
    insert: null,
    resume: null,
    serverPeakRssBytes: null,
  };
  const mediagitProblem = await probeMediaGit(path.join(options.runDir, 'probe'));
  if (mediagitProblem !== null) report.error(mediagitProblem);
  const source = ensureSource(size);
  const timeout = Math.max(300, Math.ceil((size / GiB) * 60));
  const work = freshDir(path.join(options.runDir, 'work'));
  const file = path.join(work, 'big.bin');
  const serverRoot = freshDir(path.join(options.runDir, 'server'));

  let server: MediaGitServer | null = null;
  if (mediagitProblem === null) {
    server = await report.attempt('MediaGit setup', async () => {
      progress('starting `mediagit serve`; committing the file in a client work tree (untimed)');
      const create = ['token', 'create', '--root', serverRoot, '--user', 'bench'];
      const token = await mediagit([...create, '--repo', '*', '--scope', 'write'], serverRoot);
      const key = token.stdout.trim();
      if (!key.startsWith('mgk_')) throw new Error(`token create printed no key: ${key}`);
      childEnv['MEDIAGIT_TOKEN'] = key;
      configureRunner({ gnuTime: tools.gnuTime, env: childEnv });
      const started = await startMediaGitServer(serverRoot, childEnv);
      await mediagit(['init'], work);
      fs.copyFileSync(source, file);
      await mediagit(['add', 'big.bin'], work, timeout);
      await mediagit(['commit', '-m', 'v1'], work, timeout);
      return started;
    });
  }
  if (!fs.existsSync(file)) fs.copyFileSync(source, file);
  const nginxCommand = tools.curl === null ? null : tools.nginx;
  const nginx =
    nginxCommand === null
      ? null
      : await report.attempt('nginx setup', () =>
          startNginx(nginxCommand, freshDir(path.join(options.runDir, 'nginx'))),
        );
  warm(file);

  const figures: RoundFigures = {
    push: [],
    clone: [],
    download: [],
    put: [],
    get: [],
    chunks: null,
    pushReceived: null,
  };
  const ctx: Context = { options, tools, report, server, nginx, work, file, timeout };
  let lastRepo: string | null = null;
  for (let round = 1; round <= options.repeat; round++) {
    const of = options.repeat > 1 ? ` (round ${round} of ${options.repeat})` : '';
    progress(`push and clone of ${formatBytes(size)}${of}`);
    const repo = await measureRound(ctx, round, figures);
    // Only the last repository pushed to is kept: the insert figure pushes into it.
    if (repo !== null && lastRepo !== null) {
      fs.rmSync(path.join(serverRoot, lastRepo), { recursive: true, force: true });
    }
    lastRepo = repo ?? lastRepo;
  }
  const totalChunks = figures.chunks;
  if (server !== null && totalChunks !== null) {
    const active = server;
    progress('a push killed once half the chunks are stored, then rerun');
    outcome.resume = await report.attempt('interrupted push', () =>
      measureResume(ctx, active, totalChunks),
    );
  }
  if (server !== null && lastRepo !== null) {
    const [active, repo] = [server, lastRepo];
    progress('a push after a 4 KiB insert in the middle');
    outcome.insert = await report.attempt('push after an insert', () =>
      measureInsert(ctx, active, repo),
    );
  }
  if (server !== null) outcome.serverPeakRssBytes = peakRssOf(server.daemon.child.pid);
  await stopAll();
  outcome.push = medianTransfer(figures.push);
  outcome.clone = medianTransfer(figures.clone);
  outcome.download = medianTransfer(figures.download);
  outcome.put = medianTransfer(figures.put);
  outcome.get = medianTransfer(figures.get);
  outcome.chunks = figures.chunks;
  outcome.pushReceived = figures.pushReceived;

  if (!options.keep) fs.rmSync(options.runDir, { recursive: true, force: true });
  if (size !== GiB) fs.rmSync(source, { force: true }); // only the 1 GiB source is cached

  const elapsed = (Date.now() - started) / 1000;
  const lines = render(outcome, options, report);
  const cpus = os.cpus();
  const meta = {
    date: new Date().toISOString(),
    mode: options.quick ? 'quick' : 'full',
    fileBytes: size,
    repeat: options.repeat,
    timedSteps:
      'each command from spawn to exit plus a trailing `sync`, after an untimed `sync`; ' +
      'page cache warm; client and server on this machine over loopback',
    invocations: {
      push: 'mediagit push <remote> main --json (fresh bare repository each round)',
      clone: 'mediagit clone <url> <dir> --json',
      download: 'mediagit download -q -o <file> <url> big.bin',
      put: 'curl -sS -w %{http_code} -o /dev/null -T big.bin http://127.0.0.1:<port>/up/big.bin',
      get: 'curl -sS -w %{http_code} -o out.bin http://127.0.0.1:<port>/up/big.bin',
      server: 'mediagit serve --root <dir> --port 0 --log silent',
      nginx: 'nginx 1 worker, sendfile on, access_log off, dav_methods PUT',
    },
    node: process.version,
    cpus: cpus.length,
    cpuModel: cpus[0]?.model ?? '',
    memoryBytes: os.totalmem(),
    peakRssSource: tools.gnuTime !== null ? 'GNU time %M' : 'polled /proc VmHWM',
    versions: tools.versions,
    device: deviceLimits(workRoot),
    elapsedSeconds: Math.round(elapsed),
  };
  const json = JSON.stringify({ meta, figures: report.figures, errors: report.errors });
  if (options.json) {
    console.log(json);
    return report.errors.length > 0 ? 1 : 0;
  }
  console.log(
    `MediaGit remote benchmark (${meta.mode}: ${formatBytes(size)} of random bytes, ` +
      `${meta.cpus} CPUs, Node ${meta.node}, ${tools.versions['nginx'] ?? 'no nginx'})`,
  );
  console.log(formatDeviceLimits(meta.device));
  console.log('Times are wall-clock: the command from spawn to exit plus a trailing `sync`, for');
  console.log('both sides alike (an untimed `sync` runs first). MediaGit fsyncs what it stores;');
  console.log('nginx and curl do not, and pay in their trailing sync. Client and server share');
  console.log(
    "this machine's cores over loopback; the page cache is warm. Ratio = MediaGit / curl.",
  );
  console.log(
    options.repeat > 1
      ? `Each time is the median of ${options.repeat} rounds.`
      : 'Each time is a single run: use --repeat 3 when one matters.',
  );
  console.log('');
  for (const line of lines) console.log(line);
  for (const note of report.notes) console.log(`\nnote: ${note}`);
  if (report.errors.length > 0) {
    console.log('\nerrors:');
    for (const error of report.errors) console.log(`  - ${error}`);
  }
  console.log(`\ntotal ${elapsed.toFixed(0)} s`);
  console.log(json);
  return report.errors.length > 0 ? 1 : 0;
}

process.exitCode = await main();
