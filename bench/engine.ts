// Storage-engine benchmark: MediaGit's add + commit next to restic, borg and casync on four
// pairs of files (a first version and an edited second version), every figure measured in the
// same run on the same machine. See bench/README.md for what each figure means.
//
// Run with `npm run bench:engine` (builds first), or `node bench/engine.ts [--quick]
// [--only <pair>] [--keep]` with Node >= 24. Progress goes to stderr; stdout carries one table
// per pair and, as its last line, one JSON object with every number.
//
// Contracts:
// - Every writer is timed up to a trailing `sync`, and a `sync` runs untimed before each timed
//   step, so no step pays for the previous step's dirty pages. Input files are read once before
//   each pair, so every tool reads them from a warm page cache.
// - Every tool stores the same bytes. restic, borg and casync only read their input, so they get
//   a hard link to the cached file; MediaGit gets a copy in its working tree, made untimed.
// - The inputs are generated once into bench-work/engine-inputs/<inputsVersion>/ (git-ignored)
//   and reused while their stamp matches; the CSV and checkpoint generators are seeded and so
//   give the same bytes on every machine. Bump `inputsVersion` when a generator changes.
// - A tool that fails or is missing does not stop the run: its row says so, the failure is
//   recorded in `errors`, and the process exits 1 if anything failed.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  GiB,
  MiB,
  configureRunner,
  ensureSource,
  formatBytes,
  formatRatio,
  formatSeconds,
  freshDir,
  installMissing,
  killRunning,
  makeSecondVersion,
  mediagit,
  median,
  must,
  onPath,
  probeMediaGit,
  progress,
  sync,
  toolVersion,
  treeBytes,
  workRoot,
  type RunResult,
  fail,
  parseRepeat,
  deviceLimits,
  formatDeviceLimits,
} from './lib.ts';

/** Names the generators below; bump it when one of them changes its output. */
const inputsVersion = 'v1';
const inputsRoot = path.join(workRoot, 'engine-inputs');
const inputsDir = path.join(inputsRoot, inputsVersion);
const runRoot = path.join(workRoot, 'engine-run');

// Reused by the generators and the cache warm-up: fresh memory is expensive on this machine kind.
const ioBuffer = Buffer.allocUnsafe(8 * MiB);

// ---------------------------------------------------------------------------------------------
// Options

const pairNames = ['random', 'video', 'csv', 'checkpoint'] as const;
type PairName = (typeof pairNames)[number];

/** Target size of each pair's first version, full run and `--quick`. */
const pairBytes: Record<PairName, { full: number; quick: number }> = {
  random: { full: GiB, quick: 64 * MiB },
  video: { full: 300e6, quick: 30e6 },
  csv: { full: 300e6, quick: 30e6 },
  checkpoint: { full: 500e6, quick: 50e6 },
};

interface Options {
  quick: boolean;
  /** `--only`: run this one pair. */
  only: PairName | null;
  /** Keep bench-work/engine-run/ for inspection instead of removing it. */
  keep: boolean;
  /** `--repeat`: store each pair this many times per tool, in rounds, and take medians. */
  repeat: number;
}

const usage = `usage: node bench/engine.ts [--quick] [--only <pair>] [--repeat <n>] [--keep]
  --quick         smoke run: 64 MiB random file, 30 MB video, 30 MB CSV, 50 MB checkpoint
  --only <pair>   run one pair: ${pairNames.join(', ')}
  --repeat <n>    measure every tool n times per pair (in rounds) and print medians
  --keep          keep bench-work/engine-run/ afterwards`;

function parseOptions(argv: readonly string[]): Options {
  const options: Options = { quick: false, only: null, keep: false, repeat: 1 };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    const [flag, inline] = arg.startsWith('--') && arg.includes('=') ? arg.split('=', 2) : [arg];
    if (flag === '--quick') {
      options.quick = true;
    } else if (flag === '--only') {
      const name = inline ?? argv[++i];
      const known = pairNames.find((pair) => pair === name);
      if (known === undefined) fail(`--only needs one of ${pairNames.join(', ')}\n${usage}`);
      options.only = known;
    } else if (flag === '--repeat') {
      const text = inline ?? argv[++i];
      const count = parseRepeat(text);
      if (count === undefined) {
        fail(`--repeat needs a count from 1 to 9 (got ${String(text)})\n${usage}`);
      }
      options.repeat = count;
    } else if (flag === '--keep') {
      options.keep = true;
    } else if (flag === '--help' || flag === '-h') {
      console.log(usage);
      process.exit(0);
    } else {
      fail(`unknown argument ${arg}\n${usage}`);
    }
  }
  return options;
}

// ---------------------------------------------------------------------------------------------
// Tools

interface Tools {
  restic: boolean;
  borg: boolean;
  casync: boolean;
  ffmpeg: boolean;
  /** GNU time, for peak RSS; null means RSS is polled from /proc instead. */
  gnuTime: string | null;
  versions: Record<string, string>;
}

/** Finds the peers and ffmpeg and, as root, installs the missing ones from Debian's packages. */
function ensureTools(): Tools {
  installMissing([
    { command: 'restic', pkg: 'restic' },
    { command: 'borg', pkg: 'borgbackup' },
    { command: 'casync', pkg: 'casync' },
    { command: 'ffmpeg', pkg: 'ffmpeg' },
    { command: '/usr/bin/time', pkg: 'time' },
  ]);
  const tools: Tools = {
    restic: onPath('restic') !== null,
    borg: onPath('borg') !== null,
    casync: onPath('casync') !== null,
    ffmpeg: onPath('ffmpeg') !== null,
    gnuTime: onPath('/usr/bin/time'),
    versions: {},
  };
  if (tools.restic) tools.versions['restic'] = toolVersion('restic', ['version']);
  if (tools.borg) tools.versions['borg'] = toolVersion('borg', ['--version']);
  if (tools.casync) tools.versions['casync'] = toolVersion('casync', ['--version']);
  if (tools.ffmpeg) tools.versions['ffmpeg'] = toolVersion('ffmpeg', ['-version']);
  return tools;
}

// ---------------------------------------------------------------------------------------------
// Inputs

/** A first version and an edited second version of one file, cached under inputsDir. */
interface Pair {
  name: PairName;
  /** What the files are and how v2 differs, for the table title. */
  description: string;
  /** The file's name inside each tool's tree. */
  fileName: string;
  /** borg's --compression: none for random bytes, zstd,3 for the rest (borg's default is lz4). */
  borgCompression: 'none' | 'zstd,3';
  v1: string;
  v2: string;
  v1Bytes: number;
  v2Bytes: number;
}

interface Stamp {
  files: Array<{ file: string; bytes: number; mtimeMs: number }>;
}

/**
 * Returns the cached pair `key`, or runs `make` to write it and records a stamp. `make` writes
 * each file under a temporary name and renames it when complete. A pair is reused only while
 * both files have the size and mtime the stamp recorded, so a regenerated source also
 * regenerates its edited version.
 */
async function cachedPair(
  key: string,
  make: () => Promise<[string, string]> | [string, string],
): Promise<[string, string]> {
  const stampFile = path.join(inputsDir, `${key}.json`);
  try {
    const stamp = JSON.parse(fs.readFileSync(stampFile, 'utf8')) as Stamp;
    const [v1, v2] = stamp.files;
    const unchanged = stamp.files.every((entry) => {
      const stat = fs.statSync(entry.file, { throwIfNoEntry: false });
      return stat?.isFile() === true && stat.size === entry.bytes && stat.mtimeMs === entry.mtimeMs;
    });
    if (unchanged && stamp.files.length === 2 && v1 !== undefined && v2 !== undefined) {
      progress(`reusing cached ${key} (${formatBytes(v1.bytes)}, ${formatBytes(v2.bytes)})`);
      return [v1.file, v2.file];
    }
  } catch {
    // No stamp, or an unreadable one: generate.
  }
  fs.rmSync(stampFile, { force: true });
  const files = await make();
  const stamp: Stamp = {
    files: files.map((file) => {
      const stat = fs.statSync(file);
      return { file, bytes: stat.size, mtimeMs: stat.mtimeMs };
    }),
  };
  fs.writeFileSync(stampFile, `${JSON.stringify(stamp, null, 2)}\n`);
  return files;
}

function pairOf(
  name: PairName,
  description: string,
  fileName: string,
  borgCompression: Pair['borgCompression'],
  [v1, v2]: [string, string],
): Pair {
  const v1Bytes = fs.statSync(v1).size;
  const v2Bytes = fs.statSync(v2).size;
  return { name, description, fileName, borgCompression, v1, v2, v1Bytes, v2Bytes };
}

/** Writes through `write` to `file` under a temporary name, renaming it once complete. */
function writeAtomically(file: string, write: (fd: number) => void): string {
  const partial = `${file}.partial`;
  const fd = fs.openSync(partial, 'w');
  try {
    write(fd);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(partial, file);
  return file;
}

function writeAll(fd: number, data: string | Uint8Array): void {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'latin1') : data;
  for (let done = 0; done < bytes.length;) {
    done += fs.writeSync(fd, bytes, done, bytes.length - done);
  }
}

/**
 * mulberry32: a small seeded generator of 32-bit integers, int32 arithmetic only. Not for
 * anything but reproducible test data.
 */
function seededInts(seed: number): () => number {
  let state = seed | 0;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return t ^ (t >>> 14);
  };
}

/** Uniform floats in [0, 1) from `seededInts`. */
function seededUniform(seed: number): () => number {
  const next = seededInts(seed);
  return () => (next() >>> 0) / 4294967296;
}

/** Random bytes; v2 inserts 4 KiB at 300/1024 and overwrites 64 KiB at 700/1024 of the file. */
async function randomPair(bytes: number): Promise<Pair> {
  // The same cached source as bench/foundation.ts: bench-work/source-<bytes>.bin.
  const source = ensureSource(bytes);
  const files = await cachedPair(`random-${bytes}`, () => {
    progress('writing the edited random file');
    const v2 = path.join(inputsDir, `random-${bytes}.v2.bin`);
    makeSecondVersion(source, `${v2}.partial`, bytes);
    fs.renameSync(`${v2}.partial`, v2);
    return [source, v2];
  });
  const at = (fraction: number) => formatBytes(Math.floor(bytes * fraction));
  const description =
    `random bytes; v2: 4 KiB inserted at ${at(300 / 1024)}, ` +
    `64 KiB overwritten at ${at(700 / 1024)}`;
  return pairOf('random', description, 'data.bin', 'none', files);
}

const ffmpegQuiet = ['-hide_banner', '-nostdin', '-loglevel', 'error', '-y'];

/** ffmpeg arguments for `seconds` of a 720p30 H.264 test pattern with a sine tone, as MP4. */
function encodeArgs(seconds: number, target: string): string[] {
  return [
    ...ffmpegQuiet,
    ...['-f', 'lavfi', '-i', 'testsrc2=size=1280x720:rate=30'],
    ...['-f', 'lavfi', '-i', 'sine=frequency=440'],
    ...['-t', String(seconds), '-c:v', 'libx264', '-preset', 'ultrafast', '-b:v', '20M'],
    ...['-c:a', 'aac', '-shortest', '-f', 'mp4', target],
  ];
}

/**
 * An H.264 MP4 of about `bytes`, its length chosen from a 4-second probe encode; v2 is the same
 * streams re-muxed with one metadata field set (`-c copy -metadata title=x`).
 */
async function videoPair(bytes: number): Promise<Pair> {
  const files = await cachedPair(`video-${bytes}`, async () => {
    const v1 = path.join(inputsDir, `video-${bytes}.v1.mp4`);
    const v2 = path.join(inputsDir, `video-${bytes}.v2.mp4`);
    const probe = path.join(inputsDir, 'probe.mp4');
    await must('ffmpeg (probe encode)', 'ffmpeg', encodeArgs(4, probe), inputsDir, 300);
    const bytesPerSecond = fs.statSync(probe).size / 4;
    fs.rmSync(probe, { force: true });
    const seconds = Math.max(2, Math.round(bytes / bytesPerSecond));
    progress(`encoding ${seconds} s of 720p H.264 (~${formatBytes(bytes)}) with ffmpeg`);
    await must('ffmpeg (encode)', 'ffmpeg', encodeArgs(seconds, `${v1}.partial`), inputsDir, 3600);
    fs.renameSync(`${v1}.partial`, v1);
    const remux = [...ffmpegQuiet, '-i', v1, '-c', 'copy', '-metadata', 'title=x'];
    await must('ffmpeg (re-mux)', 'ffmpeg', [...remux, '-f', 'mp4', `${v2}.partial`], inputsDir);
    fs.renameSync(`${v2}.partial`, v2);
    return [v1, v2];
  });
  const description = 'H.264 720p30 MP4 (ffmpeg testsrc2); v2: re-muxed with -metadata title=x';
  return pairOf('video', description, 'video.mp4', 'zstd,3', files);
}

const csvHeader =
  'event_id,timestamp,user_id,country,currency,device,user_agent,event,url,status,amount,' +
  'latency_ms,score,region,app_version,ab_group\n';
const countries = [
  ['US', 'USD', 'us-east-1'],
  ['DE', 'EUR', 'eu-west-1'],
  ['GB', 'GBP', 'eu-west-1'],
  ['FR', 'EUR', 'eu-west-1'],
  ['JP', 'JPY', 'ap-northeast-1'],
  ['IN', 'INR', 'ap-northeast-1'],
  ['BR', 'BRL', 'us-east-1'],
  ['CA', 'CAD', 'us-east-1'],
  ['NL', 'EUR', 'eu-west-1'],
  ['SE', 'SEK', 'eu-west-1'],
  ['ES', 'EUR', 'eu-west-1'],
  ['IT', 'EUR', 'eu-west-1'],
  ['PL', 'PLN', 'eu-west-1'],
  ['AU', 'AUD', 'ap-northeast-1'],
  ['KR', 'KRW', 'ap-northeast-1'],
  ['MX', 'MXN', 'us-east-1'],
  ['CH', 'CHF', 'eu-west-1'],
] as const;
const agents = [
  ['desktop', 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/124.0'],
  ['mobile', 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) Safari/604.1'],
  ['mobile', 'Mozilla/5.0 (Linux; Android 14; Pixel 8) Chrome/124.0 Mobile'],
  ['desktop', 'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) Safari/605.1.15'],
  ['tablet', 'Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) Safari/604.1'],
  ['desktop', 'Mozilla/5.0 (X11; Linux x86_64) Firefox/125.0'],
] as const;
const events = ['page_view', 'click', 'search', 'add_to_cart', 'purchase', 'signup', 'logout'];
const urls = ['/', '/search', '/cart', '/checkout', '/account', '/help/shipping'];
for (let i = 0; i < 40; i++) {
  const category = ['shoes', 'shirts', 'bags', 'watches', 'lamps'][i % 5] ?? '';
  urls.push(`/products/${category}/item-${1000 + i * 37}`);
}

/**
 * A web-analytics event log of about `bytes` (zstd -3 compresses it ~8-9x); in v2, 1 % of the
 * rows, chosen at random, have a corrected status, amount and latency. Same row count; a
 * changed row may differ in length by a few bytes.
 */
async function csvPair(bytes: number): Promise<Pair> {
  const files = await cachedPair(`csv-${bytes}`, () => {
    progress(`generating a ~${formatBytes(bytes)} CSV and its edit`);
    const v1 = path.join(inputsDir, `csv-${bytes}.v1.csv`);
    const v2 = path.join(inputsDir, `csv-${bytes}.v2.csv`);
    writeAtomically(v1, (fd1) => writeAtomically(v2, (fd2) => writeCsvPair(bytes, fd1, fd2)));
    return [v1, v2];
  });
  const description = 'CSV event log; v2: 1 % of rows (at random) changed in place';
  return pairOf('csv', description, 'events.csv', 'zstd,3', files);
}

function writeCsvPair(bytes: number, fd1: number, fd2: number): void {
  const random = seededUniform(1);
  const edits = seededUniform(2);
  // Skewed toward the head of the list, as real categorical columns are.
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * random() * list.length)]!;
  let batch1 = csvHeader;
  let batch2 = csvHeader;
  let written = 0;
  let timestamp = Date.UTC(2024, 0, 1);
  for (let id = 1; written < bytes; id++) {
    timestamp += Math.floor(random() * random() * 200);
    const user = Math.floor(random() * random() * 20_000);
    const event = pick(events);
    const [country, currency, region] = pick(countries);
    const [device, agent] = pick(agents);
    const url = pick(urls);
    const status = random() < 0.97 ? 200 : pick([404, 500, 302]);
    const sale = event === 'purchase' || event === 'add_to_cart';
    const amount = sale ? Math.floor(random() * 60) + 0.99 : 0;
    const latency = 20 + Math.floor(random() * random() * 32) * 10;
    const score = event === 'search' ? random().toFixed(2) : '';
    const app = user % 10 === 0 ? 'web-3.13.9' : 'web-3.14.2';
    const group = user % 2 === 0 ? 'control' : 'variant_b';
    const head =
      `${id},${new Date(timestamp).toISOString()},${user},${country},${currency},${device},` +
      `"${agent}",${event},https://shop.example.com${url},`;
    const tail = `,${score},${region},${app},${group}\n`;
    const row = `${head}${status},${amount.toFixed(2)},${latency}${tail}`;
    batch1 += row;
    if (edits() < 0.01) {
      // A corrected record: the latency always changes, a sale's amount too.
      const latency2 = latency + 10 * (1 + Math.floor(edits() * 20));
      const amount2 = sale ? amount + 1 + Math.floor(edits() * 5) : 0;
      batch2 += `${head}200,${amount2.toFixed(2)},${latency2}${tail}`;
    } else {
      batch2 += row;
    }
    written += row.length;
    if (batch1.length >= MiB) {
      writeAll(fd1, batch1);
      writeAll(fd2, batch2);
      batch1 = '';
      batch2 = '';
    }
  }
  writeAll(fd1, batch1);
  writeAll(fd2, batch2);
}

/**
 * A float32 "checkpoint" of `bytes` (rounded down to whole floats): seeded values close to
 * N(0, 0.02) (a sum of four uniforms); in v2 every 20th value (5 %) moves by a small nonzero
 * amount, so the changes are scattered through the whole file.
 */
async function checkpointPair(bytes: number): Promise<Pair> {
  const files = await cachedPair(`checkpoint-${bytes}`, () => {
    progress(`generating a ${formatBytes(bytes)} float32 checkpoint and its edit`);
    const v1 = path.join(inputsDir, `checkpoint-${bytes}.v1.f32`);
    const v2 = path.join(inputsDir, `checkpoint-${bytes}.v2.f32`);
    writeAtomically(v1, (fd1) =>
      writeAtomically(v2, (fd2) => writeCheckpointPair(Math.floor(bytes / 4), fd1, fd2)),
    );
    return [v1, v2];
  });
  const description = 'float32 checkpoint, normal-ish values; v2: every 20th value perturbed';
  return pairOf('checkpoint', description, 'model.ckpt', 'zstd,3', files);
}

function writeCheckpointPair(count: number, fd1: number, fd2: number): void {
  const next = seededInts(3);
  const edits = seededUniform(4);
  const block = new Float32Array(ioBuffer.buffer, ioBuffer.byteOffset, ioBuffer.length / 4);
  const bytes = new Uint8Array(ioBuffer.buffer, ioBuffer.byteOffset, ioBuffer.length);
  // Four 16-bit uniforms sum to mean 131070 and standard deviation 65536 / sqrt(3).
  const scale = (0.02 * Math.sqrt(3)) / 65536;
  for (let start = 0; start < count; start += block.length) {
    const n = Math.min(block.length, count - start);
    for (let i = 0; i < n; i++) {
      const a = next();
      const b = next();
      const sum = (a & 0xffff) + (a >>> 16) + (b & 0xffff) + (b >>> 16);
      block[i] = (sum - 131070) * scale;
    }
    writeAll(fd1, bytes.subarray(0, n * 4));
    // `start` is a multiple of 20 (the block length is), so i % 20 is the global index's.
    for (let i = 0; i < n; i += 20) {
      const step = (1 + Math.floor(edits() * 1000)) * 1e-6;
      block[i] = (block[i] ?? 0) + (edits() < 0.5 ? -step : step);
    }
    writeAll(fd2, bytes.subarray(0, n * 4));
  }
}

/** Reads `file` once, so the tools that follow find it in the page cache. */
function warm(file: string): void {
  const fd = fs.openSync(file, 'r');
  try {
    while (fs.readSync(fd, ioBuffer, 0, ioBuffer.length, null) > 0);
  } finally {
    fs.closeSync(fd);
  }
}

// ---------------------------------------------------------------------------------------------
// The engines

type EngineName = 'mediagit' | 'restic' | 'borg' | 'casync';
const peers = ['restic', 'borg', 'casync'] as const;

/** How one tool stores a version of a file; `dir` is a fresh directory of its own per pair. */
interface Engine {
  name: EngineName;
  /** Why the tool cannot run here, or null. */
  unavailable: string | null;
  /** How it is run, for the legend under the tables. */
  invocation: string;
  /** Its row label in a pair's table. */
  label(pair: Pair): string;
  /** Creates an empty repository (untimed); returns the directory whose bytes count as stored. */
  init(dir: string, pair: Pair): Promise<string>;
  /** Puts `file` where `store` reads it, under the pair's file name (untimed). */
  place(dir: string, pair: Pair, file: string): void;
  /** Runs the timed commands that store version `version` of the pair. */
  store(dir: string, pair: Pair, version: 1 | 2, timeout: number): Promise<RunResult[]>;
}

/** restic, borg and casync only read their input: a hard link spares a copy of the file. */
function linkInto(dir: string, pair: Pair, file: string): void {
  const tree = path.join(dir, 'tree');
  fs.mkdirSync(tree, { recursive: true });
  const target = path.join(tree, pair.fileName);
  fs.rmSync(target, { force: true });
  try {
    fs.linkSync(file, target);
  } catch {
    fs.copyFileSync(file, target); // another file system
  }
}

function makeEngines(tools: Tools, mediagitProblem: string | null): Engine[] {
  const missing = (tool: string, present: boolean) => (present ? null : `${tool} is not installed`);
  return [
    {
      name: 'mediagit',
      unavailable: mediagitProblem === null ? null : 'MediaGit CLI unusable, see errors',
      invocation:
        'mediagit init; per version: the file copied into the work tree (untimed), then ' +
        '`mediagit add <file>` and `mediagit commit -m v<n>`. Stored: files under .mediagit. ' +
        'Peak RSS: the larger of add and commit.',
      label: () => 'mediagit',
      init: async (dir) => {
        const work = freshDir(path.join(dir, 'work'));
        await mediagit(['init'], work);
        return path.join(work, '.mediagit');
      },
      place: (dir, pair, file) => {
        const target = path.join(dir, 'work', pair.fileName);
        fs.rmSync(target, { force: true });
        fs.copyFileSync(file, target);
      },
      store: async (dir, pair, version, timeout) => {
        const work = path.join(dir, 'work');
        const add = await mediagit(['add', pair.fileName], work, timeout);
        const commit = await mediagit(['commit', '-m', `v${version}`], work, timeout);
        return [add, commit];
      },
    },
    {
      name: 'restic',
      unavailable: missing('restic', tools.restic),
      invocation:
        '`restic init` (repository format 2, so compression auto = zstd), then ' +
        '`restic backup <file>`; RESTIC_PASSWORD set, cache under the run directory. ' +
        'Stored: the repository, not the cache.',
      label: () => 'restic',
      init: async (dir) => {
        const repo = path.join(dir, 'repo');
        await must('restic init', 'restic', ['-r', repo, 'init'], dir);
        return repo;
      },
      place: linkInto,
      store: async (dir, pair, _version, timeout) => {
        const args = ['-r', path.join(dir, 'repo'), 'backup', pair.fileName];
        return [await must('restic backup', 'restic', args, path.join(dir, 'tree'), timeout)];
      },
    },
    {
      name: 'borg',
      unavailable: missing('borg', tools.borg),
      invocation:
        '`borg init --encryption=none`, then `borg create --compression C repo::v<n> <file>` ' +
        "with C = none for random bytes, zstd,3 for the rest (borg's default is lz4); " +
        'cache under the run directory. Stored: the repository.',
      label: (pair) => `borg (${pair.borgCompression})`,
      init: async (dir) => {
        const repo = path.join(dir, 'repo');
        await must('borg init', 'borg', ['init', '--encryption=none', repo], dir);
        return repo;
      },
      place: linkInto,
      store: async (dir, pair, version, timeout) => {
        const archive = `${path.join(dir, 'repo')}::v${version}`;
        const args = ['create', '--compression', pair.borgCompression, archive, pair.fileName];
        return [await must('borg create', 'borg', args, path.join(dir, 'tree'), timeout)];
      },
    },
    {
      name: 'casync',
      unavailable: missing('casync', tools.casync),
      invocation:
        '`casync make --store=<dir>/store <dir>/v<n>.caibx <file>` with its defaults (zstd, ' +
        'chunks of 16/64/256 KiB min/avg/max). Stored: the chunk store plus the .caibx indexes.',
      label: () => 'casync',
      init: (dir) => {
        const stored = path.join(dir, 'stored');
        fs.mkdirSync(path.join(stored, 'store'), { recursive: true });
        return Promise.resolve(stored);
      },
      place: linkInto,
      store: async (dir, pair, version, timeout) => {
        const stored = path.join(dir, 'stored');
        const args = [
          'make',
          `--store=${path.join(stored, 'store')}`,
          path.join(stored, `v${version}.caibx`),
          path.join(dir, 'tree', pair.fileName),
        ];
        return [await must('casync make', 'casync', args, dir, timeout)];
      },
    },
  ];
}

// ---------------------------------------------------------------------------------------------
// Measuring

type Figure = number | null;

interface VersionFigures {
  /** Wall time of the tool's commands plus the trailing sync. */
  seconds: number;
  /** The trailing sync alone: near zero when the tool synced its own writes. */
  trailingSyncSeconds: number;
  peakRssBytes: Figure;
  /** Bytes in the tool's store after this version. */
  storedBytes: number;
}

interface ToolOutcome {
  engine: Engine;
  v1: VersionFigures | null;
  v2: VersionFigures | null;
  /** Why the row is empty or incomplete: the tool is missing, or it failed (see errors). */
  problem: string | null;
}

interface PairOutcome {
  pair: Pair;
  copySeconds: Figure;
  tools: ToolOutcome[];
}

/** The floor: copying v1 once, durably; median of 3. */
async function measureCopy(pair: Pair, timeout: number): Promise<number> {
  const target = path.join(runRoot, 'cp-target');
  const times: number[] = [];
  for (let i = 0; i < 3; i++) {
    fs.rmSync(target, { force: true });
    await sync();
    const copy = await must('cp', 'cp', [pair.v1, target], runRoot, timeout);
    times.push(copy.seconds + (await sync()));
  }
  fs.rmSync(target, { force: true });
  return median(times);
}

async function measureTool(
  engine: Engine,
  pair: Pair,
  timeout: number,
  report: Report,
  keep: boolean,
): Promise<ToolOutcome> {
  const outcome: ToolOutcome = { engine, v1: null, v2: null, problem: null };
  if (engine.unavailable !== null) {
    outcome.problem = `skipped: ${engine.unavailable}`;
    return outcome;
  }
  const dir = freshDir(path.join(runRoot, pair.name, engine.name));
  try {
    const stored = await engine.init(dir, pair);
    for (const version of [1, 2] as const) {
      engine.place(dir, pair, version === 1 ? pair.v1 : pair.v2);
      await sync();
      const results = await engine.store(dir, pair, version, timeout);
      const trailing = await sync();
      const rss = results.map((result) => result.peakRssBytes);
      const figures: VersionFigures = {
        seconds: results.reduce((sum, result) => sum + result.seconds, 0) + trailing,
        trailingSyncSeconds: trailing,
        peakRssBytes: rss.includes(null) ? null : Math.max(...(rss as number[])),
        storedBytes: treeBytes(stored),
      };
      outcome[version === 1 ? 'v1' : 'v2'] = figures;
      progress(
        `  ${engine.name} v${version}: ${formatSeconds(figures.seconds)}, ` +
          `${formatBytes(figures.storedBytes)} stored`,
      );
    }
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    report.error(`${pair.name}: ${engine.name}: ${message}`);
    outcome.problem = 'failed, see errors';
  }
  if (!keep) fs.rmSync(dir, { recursive: true, force: true });
  return outcome;
}

/**
 * Folds the rounds of one tool into one outcome: the median of each figure. A tool that failed
 * in any round keeps that round's problem and the figures it got before failing.
 */
function medianOutcome(engine: Engine, runs: readonly ToolOutcome[] = []): ToolOutcome {
  const failed = runs.find((run) => run.problem !== null);
  if (failed !== undefined || runs.length <= 1) {
    return failed ?? runs[0] ?? { engine, v1: null, v2: null, problem: 'not run' };
  }
  const fold = (version: 'v1' | 'v2'): VersionFigures | null => {
    const all = runs.map((run) => run[version]).filter((figures) => figures !== null);
    if (all.length === 0) return null;
    const rss = all.map((figures) => figures.peakRssBytes);
    return {
      seconds: median(all.map((figures) => figures.seconds)),
      trailingSyncSeconds: median(all.map((figures) => figures.trailingSyncSeconds)),
      peakRssBytes: rss.includes(null) ? null : median(rss as number[]),
      storedBytes: median(all.map((figures) => figures.storedBytes)),
    };
  };
  return { engine, v1: fold('v1'), v2: fold('v2'), problem: null };
}

// ---------------------------------------------------------------------------------------------
// Report

/** Collects figures for the tables and the closing JSON line. */
class Report {
  readonly figures: Record<string, Figure> = {};
  readonly errors: string[] = [];
  readonly notes: string[] = [];

  set(key: string, value: Figure): void {
    // Byte counts stay exact; measured values keep 6 significant digits.
    if (value === null || !Number.isFinite(value)) this.figures[key] = null;
    else this.figures[key] = Number.isInteger(value) ? value : Number(value.toPrecision(6));
  }

  error(message: string): void {
    progress(`ERROR ${message}`);
    this.errors.push(message);
  }
}

const columns = [
  'v1 time',
  'MB/s',
  '/ cp+sync',
  'peak RSS',
  'stored v1',
  '% of v1',
  'v2 time',
  'added by v2',
  '% of v2',
] as const;

function ratioOf(numerator: Figure | undefined, denominator: Figure | undefined): Figure {
  if (numerator === null || numerator === undefined) return null;
  if (denominator === null || denominator === undefined || denominator === 0) return null;
  return numerator / denominator;
}

/** Records one pair's figures and returns its table. */
function pairTable(outcome: PairOutcome, report: Report): string {
  const { pair, copySeconds } = outcome;
  const key = pair.name;
  const text = (value: Figure, format: (n: number) => string) =>
    value === null ? 'n/a' : format(value);
  const mbps = (seconds: Figure) => (seconds === null ? null : pair.v1Bytes / 1e6 / seconds);
  const percent = (n: number) => `${n.toFixed(n < 10 ? 2 : 1)} %`;
  const rows: string[][] = [];

  report.set(`${key}.v1Bytes`, pair.v1Bytes);
  report.set(`${key}.v2Bytes`, pair.v2Bytes);
  report.set(`${key}.copy.seconds`, copySeconds);
  rows.push([
    'cp + sync (median of 3)',
    text(copySeconds, formatSeconds),
    text(mbps(copySeconds), (n) => n.toFixed(0)),
    '1.00x',
  ]);

  const added = (tool: ToolOutcome): Figure =>
    tool.v1 === null || tool.v2 === null ? null : tool.v2.storedBytes - tool.v1.storedBytes;
  for (const tool of outcome.tools) {
    const name = tool.engine.name;
    const label = tool.engine.label(pair);
    if (tool.v1 === null) {
      rows.push([label, tool.problem === null ? 'n/a' : `${tool.problem}`]);
      continue;
    }
    const { v1, v2 } = tool;
    const growth = added(tool);
    const figures: Record<string, Figure> = {
      v1Seconds: v1.seconds,
      v1MBps: mbps(v1.seconds),
      v1ToCopy: ratioOf(v1.seconds, copySeconds),
      v1PeakRssBytes: v1.peakRssBytes,
      v1TrailingSyncSeconds: v1.trailingSyncSeconds,
      v1StoredBytes: v1.storedBytes,
      v1StoredPercent: (100 * v1.storedBytes) / pair.v1Bytes,
      v2Seconds: v2?.seconds ?? null,
      v2PeakRssBytes: v2?.peakRssBytes ?? null,
      v2AddedBytes: growth,
      v2AddedPercent: growth === null ? null : (100 * growth) / pair.v2Bytes,
    };
    for (const [metric, value] of Object.entries(figures)) {
      report.set(`${key}.${name}.${metric}`, value);
    }
    if (name === 'mediagit' && v1.trailingSyncSeconds > 0.1) {
      report.notes.push(
        `${key}: the sync after mediagit's commit took ${formatSeconds(v1.trailingSyncSeconds)}: ` +
          'it left writes unsynced',
      );
    }
    // v1 stored but v2 did not: the failure is in errors.
    const v2Cell = (value: string) => (v2 === null ? 'failed' : value);
    rows.push([
      label,
      formatSeconds(v1.seconds),
      text(figures['v1MBps'] ?? null, (n) => n.toFixed(0)),
      text(figures['v1ToCopy'] ?? null, formatRatio),
      text(v1.peakRssBytes, formatBytes),
      formatBytes(v1.storedBytes),
      percent(figures['v1StoredPercent'] ?? 0),
      v2Cell(text(figures['v2Seconds'] ?? null, formatSeconds)),
      v2Cell(text(growth, formatBytes)),
      v2Cell(text(figures['v2AddedPercent'] ?? null, percent)),
    ]);
  }

  const mine = outcome.tools.find((tool) => tool.engine.name === 'mediagit');
  for (const peer of peers) {
    const theirs = outcome.tools.find((tool) => tool.engine.name === peer);
    const ratios: Record<string, Figure> = {
      v1Seconds: ratioOf(mine?.v1?.seconds, theirs?.v1?.seconds),
      v1PeakRssBytes: ratioOf(mine?.v1?.peakRssBytes, theirs?.v1?.peakRssBytes),
      v1StoredBytes: ratioOf(mine?.v1?.storedBytes, theirs?.v1?.storedBytes),
      v2Seconds: ratioOf(mine?.v2?.seconds, theirs?.v2?.seconds),
      v2AddedBytes: ratioOf(mine && added(mine), theirs && added(theirs)),
    };
    const ratioKey = `${key}.ratio.mediagitTo${peer[0]?.toUpperCase() ?? ''}${peer.slice(1)}`;
    for (const [metric, value] of Object.entries(ratios)) {
      report.set(`${ratioKey}.${metric}`, value);
    }
    const cell = (value: Figure | undefined) => text(value ?? null, formatRatio);
    rows.push([
      `  mediagit / ${peer}`,
      cell(ratios['v1Seconds']),
      '',
      '',
      cell(ratios['v1PeakRssBytes']),
      cell(ratios['v1StoredBytes']),
      '',
      cell(ratios['v2Seconds']),
      cell(ratios['v2AddedBytes']),
      '',
    ]);
  }

  const widths = [
    Math.max(...rows.map((row) => (row.length > 2 ? (row[0]?.length ?? 0) : 0))),
    ...columns.map((title, i) =>
      Math.max(
        title.length,
        ...rows.map((row) => (row.length > 2 ? (row[i + 1]?.length ?? 0) : 0)),
      ),
    ),
  ];
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, i) => (i === 0 ? cell.padEnd(widths[0] ?? 0) : cell.padStart(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  const sizes = `v1 ${formatBytes(pair.v1Bytes)}, v2 ${formatBytes(pair.v2Bytes)}`;
  const lines = [`${pair.name} (${sizes}): ${pair.description}`, `  ${line(['', ...columns])}`];
  for (const row of rows) {
    // A row of two cells is a tool that did not run: its reason spans the figures.
    lines.push(
      `  ${row.length === 2 ? `${(row[0] ?? '').padEnd(widths[0] ?? 0)}  ${row[1] ?? ''}` : line(row)}`,
    );
  }
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------
// Main

async function main(): Promise<number> {
  const options = parseOptions(process.argv.slice(2));
  const report = new Report();
  const started = Date.now();
  fs.mkdirSync(inputsDir, { recursive: true });
  // Inputs of other generator versions are stale: free their space.
  for (const entry of fs.readdirSync(inputsRoot)) {
    if (entry !== inputsVersion) {
      progress(`removing stale inputs bench-work/engine-inputs/${entry}`);
      fs.rmSync(path.join(inputsRoot, entry), { recursive: true, force: true });
    }
  }
  const tools = ensureTools();
  const childEnv: NodeJS.ProcessEnv = {
    ...process.env,
    LC_ALL: 'C',
    MEDIAGIT_AUTHOR_NAME: 'bench',
    MEDIAGIT_AUTHOR_EMAIL: 'bench@example.com',
    BORG_BASE_DIR: path.join(runRoot, 'borg-home'),
    BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK: 'yes',
    BORG_RELOCATED_REPO_ACCESS_IS_OK: 'yes',
    RESTIC_PASSWORD: 'bench',
    RESTIC_CACHE_DIR: path.join(runRoot, 'restic-cache'),
  };
  configureRunner({ gnuTime: tools.gnuTime, env: childEnv });
  process.on('SIGINT', () => {
    killRunning();
    process.exit(130);
  });

  const selected = pairNames.filter((name) => options.only === null || options.only === name);
  const sizeOf = (name: PairName) => pairBytes[name][options.quick ? 'quick' : 'full'];
  const largest = Math.max(...selected.map(sizeOf));
  const uncached = selected
    .filter((name) => !fs.existsSync(path.join(inputsDir, `${name}-${sizeOf(name)}.json`)))
    .reduce((sum, name) => sum + 2 * sizeOf(name), 0);
  // One tool at a time: MediaGit's working copy, its repository and the second version's growth.
  const needed = uncached + 4 * largest;
  const stats = fs.statfsSync(workRoot);
  const free = stats.bavail * stats.bsize;
  if (free < needed) {
    fail(`needs about ${formatBytes(needed)} free under ${workRoot}, has ${formatBytes(free)}`);
  }

  freshDir(runRoot);
  const mediagitProblem = await probeMediaGit(path.join(runRoot, 'probe'));
  if (mediagitProblem !== null) report.error(mediagitProblem);
  const engines = makeEngines(tools, mediagitProblem);

  // All inputs first, so generating them never overlaps a measurement.
  const pairs: Pair[] = [];
  const skippedPairs: string[] = [];
  for (const name of selected) {
    const bytes = sizeOf(name);
    if (name === 'video' && !tools.ffmpeg) {
      skippedPairs.push(`video: skipped, ffmpeg is not installed`);
      continue;
    }
    try {
      if (name === 'random') pairs.push(await randomPair(bytes));
      if (name === 'video') pairs.push(await videoPair(bytes));
      if (name === 'csv') pairs.push(await csvPair(bytes));
      if (name === 'checkpoint') pairs.push(await checkpointPair(bytes));
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      report.error(`${name}: making the input files failed: ${message}`);
      skippedPairs.push(`${name}: skipped, its input files could not be made (see errors)`);
    }
  }

  const outcomes: PairOutcome[] = [];
  for (const pair of pairs) {
    // Scale timeouts with the file: ~60 s per GiB is far beyond any tool measured here.
    const timeout = Math.max(300, Math.ceil((pair.v1Bytes / GiB) * 60));
    progress(`${pair.name}: warming the page cache, then cp + sync`);
    warm(pair.v1);
    warm(pair.v2);
    const outcome: PairOutcome = { pair, copySeconds: null, tools: [] };
    try {
      outcome.copySeconds = await measureCopy(pair, timeout);
    } catch (error) {
      report.error(`${pair.name}: cp: ${error instanceof Error ? error.message : String(error)}`);
    }
    // Rounds rather than one tool's repeats back to back, so noise hits every tool alike.
    const rounds = new Map<Engine, ToolOutcome[]>(engines.map((engine) => [engine, []]));
    for (let round = 1; round <= options.repeat; round++) {
      for (const engine of engines) {
        const earlier = rounds.get(engine) ?? [];
        if (earlier.some((run) => run.problem !== null)) continue; // it failed: do not repeat
        const of = options.repeat > 1 ? ` (round ${round} of ${options.repeat})` : '';
        progress(`${pair.name}: ${engine.name}${of}`);
        earlier.push(await measureTool(engine, pair, timeout, report, options.keep));
      }
    }
    for (const engine of engines) outcome.tools.push(medianOutcome(engine, rounds.get(engine)));
    outcomes.push(outcome);
  }
  if (!options.keep) fs.rmSync(runRoot, { recursive: true, force: true });

  const elapsed = (Date.now() - started) / 1000;
  const cpus = os.cpus();
  const tables = outcomes.map((outcome) => pairTable(outcome, report));
  const meta = {
    date: new Date().toISOString(),
    mode: options.quick ? 'quick' : 'full',
    only: options.only,
    repeat: options.repeat,
    inputsVersion,
    pairs: Object.fromEntries(
      pairs.map((pair) => [
        pair.name,
        {
          v1Bytes: pair.v1Bytes,
          v2Bytes: pair.v2Bytes,
          description: pair.description,
          borgCompression: pair.borgCompression,
        },
      ]),
    ),
    invocations: Object.fromEntries(engines.map((engine) => [engine.name, engine.invocation])),
    node: process.version,
    cpus: cpus.length,
    cpuModel: cpus[0]?.model ?? '',
    memoryBytes: os.totalmem(),
    peakRssSource: tools.gnuTime !== null ? 'GNU time %M' : 'polled /proc VmHWM',
    versions: tools.versions,
    device: deviceLimits(workRoot),
    elapsedSeconds: Math.round(elapsed),
  };
  console.log(
    `MediaGit storage-engine benchmark (${meta.mode}, ${meta.cpus} CPUs, Node ${meta.node})`,
  );
  console.log(formatDeviceLimits(meta.device));
  console.log('Times are wall-clock seconds of storing v1, up to a trailing `sync`; MB/s is 10^6');
  console.log("bytes of v1 per second. Stored = bytes in the tool's repository after v1; added =");
  console.log('its growth from v2. Ratios are MediaGit / peer from this same run: > 1x means');
  console.log('MediaGit is slower, uses more memory or stores more. Page cache is warm.');
  console.log(
    options.repeat > 1
      ? `Each tool figure is the median of ${options.repeat} rounds.`
      : 'Each tool figure is a single run: use --repeat 3 when one matters.',
  );
  for (const table of tables) console.log(`\n${table}`);
  console.log('\nHow each tool was run (setup untimed; each timed step is followed by `sync`):');
  for (const engine of engines) console.log(`  ${engine.name.padEnd(8)}  ${engine.invocation}`);
  for (const line of skippedPairs) console.log(`\n${line}`);
  for (const note of report.notes) console.log(`\nnote: ${note}`);
  if (report.errors.length > 0) {
    console.log('\nerrors:');
    for (const error of report.errors) console.log(`  - ${error}`);
  }
  console.log(`\ntotal ${elapsed.toFixed(0)} s`);
  console.log(JSON.stringify({ meta, figures: report.figures, errors: report.errors }));
  return report.errors.length > 0 ? 1 : 0;
}

process.exitCode = await main();
