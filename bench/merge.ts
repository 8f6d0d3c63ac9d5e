// Media-aware merges through the CLI (issue 19): a 500 MB WAV (48 kHz stereo 24-bit,
// pseudo-random samples; ours and theirs each change 1 MiB of samples, at 10 % and 70 %) and a
// ~200 MB PSD (three raw 4096×4096 layers; ours repaints the bottom one, theirs the top one),
// each committed once and changed on two branches in a temporary repository made with the real
// CLI. Measures in the same run, with the device's own limits printed first:
//   M. `mediagit merge theirs` (the pcm-audio or psd-layers strategy): wall time and peak RSS
//      (GNU time when present, else polled VmHWM);
//   R. reading the three versions: `mediagit show <rev>:<file> > /dev/null` for each, and
//      `cat` of the three files (the page cache is warm for them, so this is the floor).
// Goals: M ≤ 3 × R(show); M's peak RSS < 500 MiB. The merged file is checked against the
// expected bytes (base with both edits) before any figure is printed.
//
// Run with `npm run bench:merge [-- --format wav|psd] [--mb N] [--repeat N] [--keep]`; not part
// of npm test. Scratch lives under bench-work/merge (removed unless --keep).

import { createCipheriv, createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writePsd } from './psd-fixture.ts';
import {
  benchEnv,
  deviceLimits,
  formatDeviceLimits,
  cliPath,
  configureRunner,
  formatBytes,
  formatRatio,
  formatSeconds,
  freshDir,
  median,
  MiB,
  must,
  numberOption,
  onPath,
  progress,
  sync,
  workRoot,
  type RunResult,
} from './lib.ts';

const args = process.argv.slice(2);
const sizeMb = numberOption(args, '--mb', 500);
const formatArg = args.includes('--format') ? args[args.indexOf('--format') + 1] : 'all';
const formats = formatArg === 'all' ? ['wav', 'psd'] : [formatArg ?? 'all'];
if (!formats.every((f) => f === 'wav' || f === 'psd')) {
  throw new Error(`--format takes wav, psd or all, not ${formatArg}`);
}
const repeat = numberOption(args, '--repeat', 1);
const keep = args.includes('--keep');

const env = benchEnv({ MEDIAGIT_AUTO_GC: '0' });
const gnuTime = onPath('/usr/bin/time');
configureRunner({ gnuTime, env });

const RATE = 48000;
const CHANNELS = 2;
const BYTES_PER_SAMPLE = 3;
const FRAME = CHANNELS * BYTES_PER_SAMPLE;
const frames = Math.floor((sizeMb * 1e6 - 44) / FRAME);
const dataBytes = frames * FRAME;
const EDIT_BYTES = Math.floor(MiB / FRAME) * FRAME;
const oursAt = Math.floor((frames * 0.1) | 0) * FRAME;
const theirsAt = Math.floor((frames * 0.7) | 0) * FRAME;

function wavHeader(): Buffer {
  const head = Buffer.alloc(44);
  head.write('RIFF', 0, 'latin1');
  head.writeUInt32LE(36 + dataBytes, 4);
  head.write('WAVEfmt ', 8, 'latin1');
  head.writeUInt32LE(16, 16);
  head.writeUInt16LE(1, 20);
  head.writeUInt16LE(CHANNELS, 22);
  head.writeUInt32LE(RATE, 24);
  head.writeUInt32LE(RATE * FRAME, 28);
  head.writeUInt16LE(FRAME, 32);
  head.writeUInt16LE(BYTES_PER_SAMPLE * 8, 34);
  head.write('data', 36, 'latin1');
  head.writeUInt32LE(dataBytes, 40);
  return head;
}

/** Pseudo-random bytes (AES-CTR over zeros): incompressible, like recorded audio. */
function noise(length: number, seed: number): Buffer {
  const key = Buffer.alloc(16);
  key.writeUInt32LE(seed, 0);
  const cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  return cipher.update(Buffer.alloc(length));
}

function writeBase(file: string): void {
  const fd = fs.openSync(file, 'w');
  fs.writeSync(fd, wavHeader());
  const key = Buffer.alloc(16);
  key.writeUInt32LE(1, 0);
  const cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  const zeros = Buffer.alloc(8 * MiB);
  for (let done = 0; done < dataBytes; done += zeros.length) {
    fs.writeSync(fd, cipher.update(zeros.subarray(0, Math.min(zeros.length, dataBytes - done))));
  }
  fs.closeSync(fd);
}

/** `from` with EDIT_BYTES of new samples written over the sample bytes at `at`. */
function writeEdited(from: string, to: string, edits: readonly [number, number][]): void {
  fs.copyFileSync(from, to);
  const fd = fs.openSync(to, 'r+');
  for (const [at, seed] of edits) fs.writeSync(fd, noise(EDIT_BYTES, seed), 0, EDIT_BYTES, 44 + at);
  fs.closeSync(fd);
}

/** SHA-256 of a file, without the bytes in `skip` ([start, end)) when given. */
function fileHash(file: string, skip?: readonly [number, number]): string {
  const hash = createHash('sha256');
  const fd = fs.openSync(file, 'r');
  const buffer = Buffer.allocUnsafe(8 * MiB);
  let at = 0;
  for (let n; (n = fs.readSync(fd, buffer)) > 0; at += n) {
    let piece = buffer.subarray(0, n);
    if (skip && at < skip[1] && at + n > skip[0]) {
      piece = Buffer.concat([
        piece.subarray(0, Math.max(0, skip[0] - at)),
        piece.subarray(Math.min(n, skip[1] - at)),
      ]);
    }
    hash.update(piece);
  }
  fs.closeSync(fd);
  return hash.digest('hex');
}

/** The three versions of one file and the merge both edits should give. */
interface Fixture {
  readonly label: string;
  readonly file: string;
  /** Writes base, ours, theirs and expected into `dir` (named by the file's extension). */
  write(dir: string): Promise<void>;
  /** The digest the merged file must share with `expected`. */
  digest(file: string): string;
}

const FIXTURES: Record<string, Fixture> = {
  wav: {
    label: 'WAV',
    file: 'take.wav',
    write: async (dir) => {
      const base = path.join(dir, 'base.wav');
      writeBase(base);
      writeEdited(base, path.join(dir, 'ours.wav'), [[oursAt, 2]]);
      writeEdited(base, path.join(dir, 'theirs.wav'), [[theirsAt, 3]]);
      writeEdited(base, path.join(dir, 'expected.wav'), [
        [oursAt, 2],
        [theirsAt, 3],
      ]);
    },
    digest: (file) => fileHash(file),
  },
  psd: {
    label: 'PSD',
    file: 'poster.psd',
    write: async (dir) => {
      await writePsd(path.join(dir, 'base.psd'), [1, 2, 3]);
      await writePsd(path.join(dir, 'ours.psd'), [11, 2, 3]);
      await writePsd(path.join(dir, 'theirs.psd'), [1, 2, 13]);
      await writePsd(path.join(dir, 'expected.psd'), [11, 2, 13]);
    },
    // Everything but the image resources: a merge that changes layers marks
    // the (stale) composite in resource 1057 (docs/merge/layered.md).
    digest: (file) => {
      const fd = fs.openSync(file, 'r');
      const word = Buffer.alloc(4);
      fs.readSync(fd, word, 0, 4, 26);
      const resourcesAt = 30 + word.readUInt32BE(0);
      fs.readSync(fd, word, 0, 4, resourcesAt);
      fs.closeSync(fd);
      return fileHash(file, [resourcesAt, resourcesAt + 4 + word.readUInt32BE(0)]);
    },
  },
};

const cli = (argv: readonly string[], cwd: string): Promise<RunResult> =>
  must(`mediagit ${argv.join(' ')}`, process.execPath, [cliPath, ...argv], cwd, 1800);

async function bench(fixture: Fixture): Promise<void> {
  const ext = path.extname(fixture.file);
  const root = freshDir(path.join(workRoot, 'merge'));
  const inputs = path.join(root, 'inputs');
  const work = path.join(root, 'repo');
  fs.mkdirSync(inputs);
  fs.mkdirSync(work);
  try {
    progress(`writing a ${fixture.label} and its two edits`);
    await fixture.write(inputs);
    const base = path.join(inputs, `base${ext}`);
    const expected = fixture.digest(path.join(inputs, `expected${ext}`));

    progress('committing base, then ours on main and theirs on a branch');
    const take = path.join(work, fixture.file);
    await cli(['init', '-q'], work);
    fs.copyFileSync(base, take);
    await cli(['add', fixture.file], work);
    await cli(['commit', '-q', '-m', 'base'], work);
    await cli(['branch', 'base'], work);
    await cli(['switch', '-q', '-c', 'theirs'], work);
    fs.copyFileSync(path.join(inputs, `theirs${ext}`), take);
    await cli(['commit', '-q', '-a', '-m', 'theirs'], work);
    await cli(['switch', '-q', 'main'], work);
    fs.copyFileSync(path.join(inputs, `ours${ext}`), take);
    await cli(['commit', '-q', '-a', '-m', 'ours'], work);
    await cli(['branch', 'ours'], work);

    const merges: RunResult[] = [];
    const shows: number[] = [];
    const showCpus: number[] = [];
    const cats: number[] = [];
    for (let round = 0; round < repeat; round++) {
      if (round > 0) await cli(['reset', '-q', '--hard', 'ours'], work);
      await sync();
      progress(`round ${round + 1}: merge`);
      const merge = await cli(['merge', '-q', '-m', 'merge theirs', 'theirs'], work);
      merges.push(merge);
      const got = fixture.digest(take);
      if (got !== expected)
        throw new Error(`the merged ${fixture.label} is not base with both edits (${got})`);
      await sync();
      progress(`round ${round + 1}: reading the three versions`);
      let showSeconds = 0;
      let showCpu = 0;
      for (const rev of ['base', 'ours', 'theirs']) {
        const shown = await must(
          'show',
          'sh',
          ['-c', `"${process.execPath}" "${cliPath}" show ${rev}:${fixture.file} > /dev/null`],
          work,
        );
        showSeconds += shown.seconds;
        showCpu += shown.cpuSeconds ?? 0;
      }
      shows.push(showSeconds);
      showCpus.push(showCpu);
      const files = ['base', 'ours', 'theirs'].map((f) => path.join(inputs, `${f}${ext}`));
      cats.push(
        (
          await must(
            'cat',
            'sh',
            ['-c', `cat ${files.map((f) => `"${f}"`).join(' ')} > /dev/null`],
            work,
          )
        ).seconds,
      );
    }
    const mergeSeconds = median(merges.map((m) => m.seconds));
    const peak = Math.max(...merges.map((m) => m.peakRssBytes ?? 0));
    const showSeconds = median(shows);
    const catSeconds = median(cats);
    const report = {
      format: fixture.label,
      fileBytes: fs.statSync(base).size,
      rounds: repeat,
      mergeSeconds,
      mergeCpuSeconds: merges[0]?.cpuSeconds ?? null,
      mergePeakRssBytes: peak,
      showThreeSeconds: showSeconds,
      showThreeCpuSeconds: median(showCpus),
      catThreeSeconds: catSeconds,
      ratioToShow: mergeSeconds / showSeconds,
      ratioToCat: mergeSeconds / catSeconds,
      rssMeasuredBy: gnuTime ? 'GNU time' : 'polled VmHWM',
    };
    process.stdout.write(
      [
        `${fixture.label} merge, ${formatBytes(report.fileBytes)} per version, ${repeat} round(s) (median):`,
        `  merge                      ${formatSeconds(mergeSeconds)}  peak RSS ${formatBytes(peak)} (goal < 500 MiB, ${report.rssMeasuredBy})`,
        `  show ×3 > /dev/null        ${formatSeconds(showSeconds)}  merge/show ${formatRatio(report.ratioToShow)} (goal ≤ 3×)`,
        `  cat ×3 > /dev/null         ${formatSeconds(catSeconds)}  merge/cat ${formatRatio(report.ratioToCat)}`,
        JSON.stringify(report),
        '',
      ].join('\n'),
    );
  } finally {
    if (!keep) fs.rmSync(root, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  process.stdout.write(`${formatDeviceLimits(deviceLimits(workRoot))}\n`);
  for (const format of formats) await bench(FIXTURES[format]!);
}

await main();
