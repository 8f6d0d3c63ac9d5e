// Sparse and partial clone benchmark (issue 17): a generated repository of 2,000 files / 20 GiB
// over 40 folders (mostly media of 4 MiB and more, and one 1 GiB file), served by
// `mediagit serve` on loopback. Each round measures, in the same run:
//   A. `clone --sparse` + `sparse-checkout set levels/07`: bytes the server sent, and time;
//   B. `clone` of a repository holding only that folder (the same files): bytes and time;
//   M. `clone --filter=blob:none -n`: the commit and tree metadata alone;
//   C. `clone --filter=blob:none -n` then `checkout HEAD -- levels/39/big.bin` (1 GiB): bytes
//      the checkout moved against the file's size.
// Goals: A's bytes ≤ 1.1 × the folder's bytes + M's bytes; A's time ≤ 1.2 × B's time; C's bytes
// are the file's chunks and nothing else (≈ 1.00 × its size).
//
// A round runs A and B each 2 × --pairs times (blocks of A B B A, alternating with B A A B)
// and compares their mean times.
//
// Run with `npm run bench:sparse` (builds first) or `node bench/sparse.ts [--gib N] [--files N]
// [--repeat N] [--pairs N] [--keep]`. The generated repository is cached under bench-work/sparse-<gib>g-<n>
// and reused by later runs. Each timed step ends with `sync`, after an untimed `sync`.

import { spawn } from 'node:child_process';
import { createCipheriv } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  benchEnv,
  GiB,
  MiB,
  KiB,
  cliPath,
  configureRunner,
  deviceLimits,
  fail,
  numberOption,
  formatBytes,
  formatDeviceLimits,
  formatRatio,
  formatSeconds,
  freshDir,
  mediagit,
  must,
  onPath,
  progress,
  sync,
  workRoot,
} from './lib.ts';

const args = process.argv.slice(2);
const option = (name: string, fallback: number): number => numberOption(args, name, fallback);
const totalGiB = option('--gib', 20);
const fileCount = option('--files', 2000);
const repeat = option('--repeat', 3);
/** Blocks of A B B A per round (each side runs twice per block). */
const pairs = option('--pairs', 2);
const FOLDERS = 40;
const SPARSE_FOLDER = 'levels/07';
const BIG_PATH = 'levels/39/big.bin';
const bigSize = Math.min(GiB, Math.floor((totalGiB * GiB) / 20));

const env = benchEnv({ MEDIAGIT_AUTO_GC: '0' });
configureRunner({ gnuTime: null, env });

/** Pseudo-random (incompressible) bytes, fast: AES-CTR over zeros, seeded per file. */
function writeRandomFile(file: string, size: number, seed: number): void {
  const key = Buffer.alloc(16);
  key.writeUInt32LE(seed, 0);
  const cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  const zeros = Buffer.alloc(4 * MiB);
  const fd = fs.openSync(file, 'w');
  try {
    for (let done = 0; done < size;) {
      const n = Math.min(zeros.length, size - done);
      fs.writeSync(fd, cipher.update(zeros.subarray(0, n)));
      done += n;
    }
  } finally {
    fs.closeSync(fd);
  }
}

/** The files of the repository: 2,000 over 40 folders, sizes summing to the total. */
function layout(): { path: string; size: number }[] {
  const files: { path: string; size: number }[] = [{ path: BIG_PATH, size: bigSize }];
  const rest = fileCount - 1;
  const small = Math.floor(rest * 0.05);
  const smallSize = 64 * KiB;
  const mediaBytes = totalGiB * GiB - bigSize - small * smallSize;
  const media = rest - small;
  let state = 12345;
  const random = (): number => {
    state = (state * 1103515245 + 12345) >>> 0;
    return state / 2 ** 32;
  };
  const weights = Array.from({ length: media }, () => 0.5 + random());
  const sum = weights.reduce((a, b) => a + b, 0);
  for (let i = 0; i < rest; i++) {
    const folder = `levels/${String(i % FOLDERS).padStart(2, '0')}`;
    const isSmall = i >= media;
    const size = isSmall
      ? smallSize
      : Math.max(4 * MiB, Math.floor((mediaBytes * weights[i]!) / sum));
    files.push({ path: `${folder}/${isSmall ? 'notes' : 'asset'}-${i}.bin`, size });
  }
  return files;
}

interface Fixture {
  root: string;
  folderBytes: number;
}

/** Builds (once) the server root with `full` and `only07` bare repositories. */
async function ensureFixture(): Promise<Fixture> {
  const base = path.join(workRoot, `sparse-${totalGiB}g-${fileCount}`);
  const root = path.join(base, 'root');
  const done = path.join(base, 'ready.json');
  if (fs.existsSync(done)) return JSON.parse(fs.readFileSync(done, 'utf8')) as Fixture;
  fs.rmSync(base, { recursive: true, force: true });
  fs.mkdirSync(root, { recursive: true });
  const files = layout();
  const folderBytes = files
    .filter((f) => f.path.startsWith(`${SPARSE_FOLDER}/`))
    .reduce((sum, f) => sum + f.size, 0);
  for (const [name, wanted] of [
    ['full', files],
    ['only07', files.filter((f) => f.path.startsWith(`${SPARSE_FOLDER}/`))],
  ] as const) {
    const work = path.join(base, `${name}-work`);
    fs.mkdirSync(work, { recursive: true });
    progress(`generating ${name}: ${wanted.length} files, ${formatBytes(sum(wanted))}`);
    await mediagit(['init', '-q'], work);
    // Folder by folder: written, added, then deleted (the index keeps them), so the disk holds
    // the repository and one folder at a time, not the files twice.
    const folders = [...new Set(wanted.map((f) => f.path.slice(0, f.path.lastIndexOf('/'))))];
    for (const folder of folders) {
      for (const file of wanted.filter((f) => f.path.startsWith(`${folder}/`))) {
        const full = path.join(work, ...file.path.split('/'));
        fs.mkdirSync(path.dirname(full), { recursive: true });
        writeRandomFile(full, file.size, files.indexOf(file) + 1);
      }
      await mediagit(['add', folder], work, 3600);
      fs.rmSync(path.join(work, ...folder.split('/')), { recursive: true, force: true });
      progress(`  ${folder} added`);
    }
    fs.writeFileSync(path.join(work, 'README.txt'), `${name}\n`);
    await mediagit(['add', 'README.txt'], work, 600);
    await mediagit(['commit', '-q', '-m', 'assets'], work, 600);
    const bare = path.join(root, name);
    moveIntoRoot(work, bare);
    await mediagit(['fsck'], bare, 3600);
    fs.rmSync(work, { recursive: true, force: true });
  }
  const fixture = { root, folderBytes };
  fs.writeFileSync(done, JSON.stringify(fixture));
  return fixture;
}

/**
 * Makes the repository of the working tree `work` the server's bare repository `bare`, as it
 * is (no second copy of many GiB): its folder moved, its index dropped, `core.bare` set.
 */
function moveIntoRoot(work: string, bare: string): void {
  fs.renameSync(path.join(work, '.mediagit'), bare);
  fs.rmSync(path.join(bare, 'index'), { force: true });
  const config = path.join(bare, 'config');
  fs.writeFileSync(
    config,
    fs.readFileSync(config, 'utf8').replace(/^bare = false$/m, 'bare = true'),
  );
}

const MOVIE_BYTES = 4 * GiB;

/**
 * Builds (once) `movie` in the server root: one ~4 GiB MP4 made by ffmpeg (an H.264 + AAC
 * clip encoded once, then repeated with `-c copy` up to the size; the `moov` box at the end,
 * as ffmpeg writes it without faststart). Returns its size, or null without ffmpeg.
 */
async function ensureMovie(root: string): Promise<number | null> {
  const bare = path.join(root, 'movie');
  const done = path.join(root, '..', 'movie.json');
  if (fs.existsSync(done))
    return (JSON.parse(fs.readFileSync(done, 'utf8')) as { size: number }).size;
  if (onPath('ffmpeg') === null) {
    progress('ffmpeg not found: the media info figure is skipped');
    return null;
  }
  const work = path.join(root, '..', 'movie-work');
  fs.rmSync(work, { recursive: true, force: true });
  fs.mkdirSync(work, { recursive: true });
  progress('generating a 4 GiB MP4 with ffmpeg');
  const clip = path.join(work, 'clip.mp4');
  await must(
    'ffmpeg clip',
    'ffmpeg',
    [
      '-v',
      'error',
      '-f',
      'lavfi',
      '-i',
      'testsrc2=size=1920x1080:rate=30',
      '-f',
      'lavfi',
      '-i',
      'sine=frequency=440:sample_rate=48000',
      '-t',
      '20',
      '-c:v',
      'libx264',
      '-preset',
      'ultrafast',
      '-b:v',
      '40M',
      '-c:a',
      'aac',
      '-shortest',
      clip,
    ],
    work,
    600,
  );
  const film = path.join(work, 'film.mp4');
  const loops = Math.ceil(MOVIE_BYTES / fs.statSync(clip).size);
  await must(
    'ffmpeg loop',
    'ffmpeg',
    [
      '-v',
      'error',
      '-stream_loop',
      String(loops),
      '-i',
      clip,
      '-c',
      'copy',
      '-fs',
      String(MOVIE_BYTES),
      film,
    ],
    work,
    1800,
  );
  fs.rmSync(clip);
  const size = fs.statSync(film).size;
  await mediagit(['init', '-q'], work);
  await mediagit(['add', 'film.mp4'], work, 3600);
  await mediagit(['commit', '-q', '-m', 'film'], work, 600);
  moveIntoRoot(work, bare);
  fs.rmSync(work, { recursive: true, force: true });
  fs.writeFileSync(done, JSON.stringify({ size }));
  return size;
}

function sum(files: readonly { size: number }[]): number {
  return files.reduce((total, f) => total + f.size, 0);
}

interface Server {
  base: string;
  stop: () => Promise<void>;
}

async function startServer(root: string): Promise<Server> {
  const child = spawn(
    process.execPath,
    [cliPath, 'serve', '--root', root, '--port', '0', '--log', 'silent', '--allow-anonymous-read'],
    { env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let text = '';
  child.stdout.on('data', (d: Buffer) => (text += d.toString()));
  child.stderr.on('data', (d: Buffer) => (text += d.toString()));
  const deadline = Date.now() + 30_000;
  for (;;) {
    const match = /listening on (http:\/\/[\d.]+:\d+)/.exec(text);
    if (match?.[1]) {
      const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
      return {
        base: match[1],
        stop: async () => {
          child.kill('SIGTERM');
          await exited;
        },
      };
    }
    if (child.exitCode !== null || Date.now() > deadline) fail(`mediagit serve: ${text}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function bytesSent(server: Server): Promise<number> {
  const text = await (await fetch(`${server.base}/metrics`)).text();
  const match = /^mediagit_http_bytes_sent_total (\S+)$/m.exec(text);
  if (!match?.[1]) fail('GET /metrics has no mediagit_http_bytes_sent_total');
  return Number(match[1]);
}

interface Measured {
  seconds: number;
  bytes: number;
  /** Each step's own time, then the trailing sync's. */
  parts: number[];
}

/** A run's step times, for the detail lines. */
function detail(run: Measured): string {
  return run.parts.map((t) => t.toFixed(2)).join('+');
}

/** Runs the steps (each a mediagit command in `cwd`), then sync; returns seconds and bytes sent. */
async function measure(
  server: Server,
  steps: readonly { args: string[]; cwd: string }[],
): Promise<Measured> {
  await sync();
  const before = await bytesSent(server);
  const started = process.hrtime.bigint();
  // Each step's own time, then the trailing sync's, for the detail line.
  const parts: number[] = [];
  let last = started;
  const lap = (): void => {
    const now = process.hrtime.bigint();
    parts.push(Number(now - last) / 1e9);
    last = now;
  };
  for (const step of steps) {
    await mediagit(step.args, step.cwd, 3600);
    lap();
  }
  await sync();
  lap();
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return { seconds, bytes: (await bytesSent(server)) - before, parts };
}

async function main(): Promise<void> {
  const fixture = await ensureFixture();
  const movieBytes = await ensureMovie(fixture.root);
  const scratch = freshDir(path.join(workRoot, 'sparse-scratch'));
  const limits = deviceLimits(scratch);
  const server = await startServer(fixture.root);
  const rows: Record<string, number>[] = [];
  const details: string[] = [];
  try {
    // A server runs for days: its first answers (code still to compile, the
    // repositories' packs not listed yet) are not what a clone meets. One
    // untimed metadata-only clone of each repository warms it, content untouched.
    for (const repo of ['full', 'only07']) {
      const warm = path.join(scratch, `warm-${repo}`);
      await mediagit(
        ['clone', '-q', '-n', '--filter=blob:none', `${server.base}/${repo}`, warm],
        scratch,
      );
      fs.rmSync(warm, { recursive: true, force: true });
    }
    for (let round = 1; round <= repeat; round++) {
      progress(`round ${round}/${repeat}`);
      const a = path.join(scratch, `a${round}`);
      const b = path.join(scratch, `b${round}`);
      const m = path.join(scratch, `m${round}`);
      const sparseRun = async () => {
        const result = await measure(server, [
          { args: ['clone', '-q', '--sparse', `${server.base}/full`, a], cwd: scratch },
          { args: ['sparse-checkout', 'set', SPARSE_FOLDER], cwd: a },
        ]);
        fs.rmSync(a, { recursive: true, force: true });
        return result;
      };
      const onlyRun = async () => {
        const result = await measure(server, [
          { args: ['clone', '-q', `${server.base}/only07`, b], cwd: scratch },
        ]);
        fs.rmSync(b, { recursive: true, force: true });
        return result;
      };
      // Each 2 × `--pairs` times, in blocks of A B B A and B A A B taking
      // turns (starting with B A A B in even rounds): the disk of these
      // machines drifts by ±30% from one minute to the next, and a drift
      // linear over a block then weighs on both sides equally; the blocks
      // average out the run-to-run noise (±0.1 s on a ~1.6 s clone).
      const sparseRuns: Measured[] = [];
      const onlyRuns: Measured[] = [];
      const order: string[] = [];
      for (let block = 0; block < pairs; block++) {
        const sparseFirst = (round + block) % 2 === 1;
        for (const side of sparseFirst ? 'SOOS' : 'OSSO') {
          if (side === 'S') sparseRuns.push(await sparseRun());
          else onlyRuns.push(await onlyRun());
          const run = side === 'S' ? sparseRuns.at(-1)! : onlyRuns.at(-1)!;
          order.push(`${side === 'S' ? 'sparse' : 'alone'} ${detail(run)}`);
        }
      }
      const mean = (runs: Measured[]): number =>
        runs.reduce((total, run) => total + run.seconds, 0) / runs.length;
      const sparse = {
        seconds: mean(sparseRuns),
        bytes: Math.max(...sparseRuns.map((run) => run.bytes)),
      };
      const only = {
        seconds: mean(onlyRuns),
        bytes: Math.max(...onlyRuns.map((run) => run.bytes)),
      };
      const metadata = await measure(server, [
        {
          args: ['clone', '-q', '-n', '--filter=blob:none', `${server.base}/full`, m],
          cwd: scratch,
        },
      ]);
      const big = await measure(server, [{ args: ['checkout', 'HEAD', '--', BIG_PATH], cwd: m }]);
      const bigOnDisk = fs.statSync(path.join(m, ...BIG_PATH.split('/'))).size;
      if (bigOnDisk !== bigSize) fail(`${BIG_PATH} checked out with ${bigOnDisk} bytes`);
      details.push(`round ${round} runs in order (steps+sync, s): ${order.join(', ')}`);
      rows.push({
        sparseSeconds: sparse.seconds,
        sparseBytes: sparse.bytes,
        onlySeconds: only.seconds,
        onlyBytes: only.bytes,
        metadataBytes: metadata.bytes,
        bigBytes: big.bytes,
        bigSeconds: big.seconds,
        bytesRatio: (sparse.bytes - metadata.bytes) / fixture.folderBytes,
        timeRatio: sparse.seconds / only.seconds,
        bigRatio: big.bytes / bigSize,
      });
      for (const dir of [a, b, m]) fs.rmSync(dir, { recursive: true, force: true });
      if (movieBytes !== null) {
        const lazy = path.join(scratch, `movie${round}`);
        await mediagit(
          ['clone', '-q', '-n', '--filter=blob:none', `${server.base}/movie`, lazy],
          scratch,
        );
        const before = await bytesSent(server);
        const info = await mediagit(['media', 'info', '--json', 'HEAD:film.mp4'], lazy, 600);
        const read = (await bytesSent(server)) - before;
        const parsed = JSON.parse(info.stdout) as { durationSeconds?: number };
        if (typeof parsed.durationSeconds !== 'number')
          fail(`media info gave no duration: ${info.stdout}`);
        rows[rows.length - 1]!['mediaInfoBytes'] = read;
        rows[rows.length - 1]!['mediaInfoPercent'] = (100 * read) / movieBytes;
        rows[rows.length - 1]!['mediaInfoSeconds'] = info.seconds;
        fs.rmSync(lazy, { recursive: true, force: true });
      }
    }
  } finally {
    await server.stop();
    if (!args.includes('--keep')) fs.rmSync(scratch, { recursive: true, force: true });
  }
  const out = process.stdout;
  out.write(
    `sparse / partial clone: ${fileCount} files, ${totalGiB} GiB over ${FOLDERS} folders\n`,
  );
  out.write(`${formatDeviceLimits(limits)}\n`);
  out.write(
    `folder ${SPARSE_FOLDER}: ${formatBytes(fixture.folderBytes)}; ${BIG_PATH}: ${formatBytes(bigSize)}\n`,
  );
  for (const [i, r] of rows.entries()) {
    out.write(
      `round ${i + 1}: clone --sparse + set ${formatSeconds(r['sparseSeconds']!)} ${formatBytes(r['sparseBytes']!)}` +
        ` | clone of the folder alone ${formatSeconds(r['onlySeconds']!)} ${formatBytes(r['onlyBytes']!)}` +
        ` | metadata ${formatBytes(r['metadataBytes']!)}` +
        ` | bytes beyond metadata / folder ${formatRatio(r['bytesRatio']!)} (goal ≤ 1.10x)` +
        ` | time / folder-alone clone ${formatRatio(r['timeRatio']!)}` +
        ` | lazy checkout of the 1 GiB file: ${formatBytes(r['bigBytes']!)} in ${formatSeconds(r['bigSeconds']!)}, ${formatRatio(r['bigRatio']!)} of its size` +
        (r['mediaInfoBytes'] === undefined
          ? ''
          : ` | media info of a ${formatBytes(movieBytes!)} MP4 in a lazy clone: ${formatBytes(r['mediaInfoBytes'])} from the server (${r['mediaInfoPercent']!.toFixed(3)}% of the file, goal < 1%) in ${formatSeconds(r['mediaInfoSeconds']!)}`) +
        '\n',
    );
  }
  for (const line of details) out.write(`${line}\n`);
  const ratios = rows.map((r) => r['timeRatio']!).sort((x, y) => x - y);
  const median = ratios[Math.floor(ratios.length / 2)]!;
  out.write(
    `time / folder-alone clone, median of the rounds: ${formatRatio(median)} (goal ≤ 1.20x; rounds ${ratios.map(formatRatio).join(', ')})\n`,
  );
  out.write(
    `${JSON.stringify({ totalGiB, fileCount, folderBytes: fixture.folderBytes, bigSize, movieBytes, limits, rows, medianTimeRatio: median })}\n`,
  );
}

await main();
