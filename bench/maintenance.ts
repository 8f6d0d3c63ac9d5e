// Maintenance benchmark: `mediagit fsck --full` and `mediagit gc --prune=now` on a repository of
// mixed media, each next to what restic does with the same data in the same run (issue 16):
//
// - fsck --full of the whole repository against `restic check --read-data` of a restic repository
//   holding the same files (goal: at most 0.5x), and against `sha256sum` of the same bytes (goal:
//   at most 1x, i.e. at least as fast);
// - after deleting half the history (one of two branches), `gc --prune=now` expiring reflogs
//   (gc.reflogExpireUnreachable=now)
//   against `restic forget <snapshot> --prune` on the equivalent snapshot set (goal: at most 1x),
//   with the bytes each stores before and after.
//
// The data: a shared base and two branches, each adding its own files, about `--size` bytes in
// all (default 4 GiB): incompressible "footage" (random bytes, as camera video is), WAV audio and
// an MPEG-2 video made by ffmpeg, and a compressible layered-project file. restic gets one
// snapshot per branch (base + that branch's files).
//
// Run with `npm run bench:maintenance` (builds first), or `node bench/maintenance.ts [--quick]
// [--size N] [--json] [--keep]`. Each timed step starts after `sync` and with the page cache
// dropped (as root), so every tool reads from the disk; the device's own limits are printed
// beside the figures.

import { randomFillSync } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  benchEnv,
  GiB,
  MiB,
  configureRunner,
  deviceLimits,
  fail,
  formatBytes,
  formatDeviceLimits,
  formatRatio,
  formatSeconds,
  freshDir,
  installMissing,
  mediagit,
  must,
  onPath,
  progress,
  sync,
  toolVersion,
  treeBytes,
  workRoot,
  type RunResult,
} from './lib.ts';

const fsckVsResticGoal = 0.5;
const fsckVsSha256Goal = 1;
const gcVsResticGoal = 1;

interface Options {
  size: number;
  json: boolean;
  keep: boolean;
}

function parseOptions(argv: readonly string[]): Options {
  const options: Options = { size: 4 * GiB, json: false, keep: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--quick') options.size = 512 * MiB;
    else if (arg === '--json') options.json = true;
    else if (arg === '--keep') options.keep = true;
    else if (arg === '--size') {
      const value = Number(argv[++i]);
      if (!Number.isFinite(value) || value < 64 * MiB) fail('--size needs at least 64 MiB');
      options.size = Math.floor(value);
    } else
      fail(
        `unknown option ${arg}\nusage: node bench/maintenance.ts [--quick] [--size <bytes>] [--json] [--keep]`,
      );
  }
  return options;
}

const ioBuffer = Buffer.allocUnsafe(8 * MiB);

/** Writes `bytes` of random data (incompressible, as footage is). */
function writeRandom(file: string, bytes: number): void {
  const fd = fs.openSync(file, 'w');
  try {
    for (let done = 0; done < bytes;) {
      const n = Math.min(ioBuffer.length, bytes - done);
      randomFillSync(ioBuffer, 0, n);
      done += fs.writeSync(fd, ioBuffer, 0, n);
    }
  } finally {
    fs.closeSync(fd);
  }
}

/** Writes `bytes` of a compressible "layered project": repeated tiles with sparse noise. */
function writeProject(file: string, bytes: number, seed: number): void {
  const tile = Buffer.alloc(64 * 1024);
  for (let i = 0; i < tile.length; i++) tile[i] = (i * 31 + seed * 7) & 0xff;
  const fd = fs.openSync(file, 'w');
  try {
    for (let done = 0, n = 0; done < bytes; n++) {
      const block = Buffer.from(tile);
      randomFillSync(block, (n * 4099) % (block.length - 512), 512);
      done += fs.writeSync(fd, block, 0, Math.min(block.length, bytes - done));
    }
  } finally {
    fs.closeSync(fd);
  }
}

async function ffmpeg(args: readonly string[], cwd: string): Promise<void> {
  await must('ffmpeg', 'ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', ...args], cwd, 900);
}

/** One set of files about `bytes` in all, under `dir`, named with `label`. */
async function makeMedia(dir: string, label: string, bytes: number, seed: number): Promise<void> {
  fs.mkdirSync(dir, { recursive: true });
  const audioSeconds = Math.max(10, Math.floor((bytes * 0.15) / (48000 * 2 * 3)));
  await ffmpeg(
    [
      '-f',
      'lavfi',
      '-i',
      `sine=frequency=${220 + seed * 110}:sample_rate=48000`,
      '-t',
      String(audioSeconds),
      '-ac',
      '2',
      '-c:a',
      'pcm_s24le',
      `${label}-audio.wav`,
    ],
    dir,
  );
  await ffmpeg(
    [
      '-f',
      'lavfi',
      '-i',
      `testsrc2=size=1280x720:rate=25`,
      '-t',
      String(20 + seed * 5),
      '-c:v',
      'mpeg2video',
      '-q:v',
      '2',
      `${label}-preview.mpg`,
    ],
    dir,
  );
  const made = treeBytes(dir);
  const rest = Math.max(0, bytes - made);
  writeProject(path.join(dir, `${label}-layers.psd`), Math.floor(rest * 0.2), seed);
  const footage = Math.floor(rest * 0.8);
  const parts = Math.max(1, Math.round(footage / (256 * MiB)));
  for (let i = 0; i < parts; i++) {
    writeRandom(path.join(dir, `${label}-footage-${i}.mov`), Math.floor(footage / parts));
  }
}

function dropCaches(): void {
  try {
    fs.writeFileSync('/proc/sys/vm/drop_caches', '3\n');
  } catch {
    // Not root: the figures then include whatever the page cache holds, for both sides alike.
  }
}

async function timed(step: () => Promise<RunResult>): Promise<number> {
  await sync();
  dropCaches();
  return (await step()).seconds;
}

function copyTree(from: string, to: string): void {
  fs.cpSync(from, to, { recursive: true });
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  installMissing([
    { command: 'restic', pkg: 'restic' },
    { command: 'ffmpeg', pkg: 'ffmpeg' },
  ]);
  for (const tool of ['restic', 'ffmpeg', 'sha256sum']) {
    if (onPath(tool) === null) fail(`${tool} is needed for this benchmark`);
  }
  configureRunner({
    gnuTime: onPath('/usr/bin/time'),
    env: benchEnv({ RESTIC_PASSWORD: 'bench-password' }),
  });
  const root = freshDir(path.join(workRoot, 'maintenance-run'));
  const device = deviceLimits(root);
  progress(formatDeviceLimits(device));

  // The data: base (a third), branch a and branch b (a third each).
  const third = Math.floor(options.size / 3);
  const data = path.join(root, 'data');
  progress(`making ${formatBytes(options.size)} of media`);
  await makeMedia(path.join(data, 'base'), 'base', third, 1);
  await makeMedia(path.join(data, 'a'), 'a', third, 2);
  await makeMedia(path.join(data, 'b'), 'b', third, 3);
  const logicalBytes = treeBytes(data);

  // MediaGit: base commit, then one branch per set.
  const work = path.join(root, 'repo');
  fs.mkdirSync(work);
  await mediagit(['init', '-q'], work);
  copyTree(path.join(data, 'base'), path.join(work, 'base'));
  await mediagit(['add', '.'], work, 1800);
  await mediagit(['commit', '-q', '-m', 'base'], work);
  for (const branch of ['a', 'b']) {
    await mediagit(['switch', '-q', '-c', branch, 'main'], work);
    copyTree(path.join(data, branch), path.join(work, branch));
    await mediagit(['add', '.'], work, 1800);
    await mediagit(['commit', '-q', '-m', branch], work);
  }
  await mediagit(['switch', '-q', 'a'], work);
  fs.rmSync(path.join(work, 'b'), { recursive: true, force: true });

  // restic: one snapshot per branch, each of base + the branch's files.
  const resticRepo = path.join(root, 'restic');
  await must('restic init', 'restic', ['init', '-q', '-r', resticRepo], root);
  const snapshots: Record<string, string> = {};
  for (const branch of ['a', 'b']) {
    const backup = await must(
      `restic backup ${branch}`,
      'restic',
      [
        'backup',
        '-q',
        '--json',
        '-r',
        resticRepo,
        '--tag',
        branch,
        path.join(data, 'base'),
        path.join(data, branch),
      ],
      root,
      3600,
    );
    const summary = backup.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { message_type?: string; snapshot_id?: string })
      .find((m) => m.message_type === 'summary');
    if (!summary?.snapshot_id) fail('restic backup printed no snapshot ID');
    snapshots[branch] = summary.snapshot_id;
  }

  // fsck --full vs restic check --read-data vs sha256sum of the same bytes.
  progress('fsck --full, restic check --read-data, sha256sum');
  const storedBefore = treeBytes(path.join(work, '.mediagit', 'objects'));
  const resticBefore = treeBytes(resticRepo);
  const fsck = await timed(() => mediagit(['fsck', '--full'], work, 3600));
  const check = await timed(() =>
    must('restic check', 'restic', ['check', '-q', '--read-data', '-r', resticRepo], root, 3600),
  );
  const files: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else files.push(full);
    }
  };
  walk(data);
  const sha = await timed(() => must('sha256sum', 'sha256sum', files, root, 3600));

  // Delete half the history and reclaim it.
  progress('deleting branch b: gc --prune=now vs restic forget --prune');
  await mediagit(['branch', '-D', 'b'], work);
  // Deleted history is reclaimed at once, as `git -c gc.reflogExpireUnreachable=now gc
  // --prune=now` does: gc expires the reflogs itself, in the one timed command.
  await mediagit(['config', 'gc.reflogExpireUnreachable', 'now'], work);
  let gcReport = '';
  const gc = await timed(async () => {
    const collected = await mediagit(['gc', '--json', '--prune=now'], work, 3600);
    gcReport = collected.stdout;
    return collected;
  });
  progress(`gc: ${gcReport.replace(/\s+/g, ' ')}`);
  const forget = await timed(() =>
    must(
      'restic forget --prune',
      'restic',
      ['forget', '-q', '-r', resticRepo, '--prune', snapshots['b']!],
      root,
      3600,
    ),
  );
  const storedAfter = treeBytes(path.join(work, '.mediagit', 'objects'));
  const resticAfter = treeBytes(resticRepo);
  const postFsck = await mediagit(['fsck', '--full'], work, 3600);

  const figures = {
    device,
    logicalBytes,
    versions: {
      mediagit: toolVersion(process.execPath, [
        path.join(import.meta.dirname, '..', 'bin', 'mediagit.js'),
        '--version',
      ]),
      restic: toolVersion('restic', ['version']),
    },
    fsck: { seconds: fsck, resticCheckSeconds: check, sha256sumSeconds: sha },
    gc: { seconds: gc, resticForgetPruneSeconds: forget },
    stored: { before: storedBefore, after: storedAfter, resticBefore, resticAfter },
    ratios: {
      fsckVsRestic: fsck / check,
      fsckVsSha256sum: fsck / sha,
      gcVsRestic: gc / forget,
    },
    fsckAfterGcClean: postFsck.status === 0,
  };
  if (!options.json) {
    const goal = (ratio: number, limit: number): string => (ratio <= limit ? 'meets' : 'MISSES');
    const lines = [
      formatDeviceLimits(device),
      `data: ${formatBytes(logicalBytes)} of media (base + two branches); MediaGit stores ${formatBytes(storedBefore)}, restic ${formatBytes(resticBefore)}`,
      `fsck --full            ${formatSeconds(fsck)}`,
      `restic check --read-data ${formatSeconds(check)}   fsck/restic ${formatRatio(fsck / check)} (goal <= ${fsckVsResticGoal}: ${goal(fsck / check, fsckVsResticGoal)})`,
      `sha256sum              ${formatSeconds(sha)}   fsck/sha256sum ${formatRatio(fsck / sha)} (goal <= ${fsckVsSha256Goal}: ${goal(fsck / sha, fsckVsSha256Goal)})`,
      `gc --prune=now         ${formatSeconds(gc)} (gc.reflogExpireUnreachable=now), stored ${formatBytes(storedBefore)} -> ${formatBytes(storedAfter)}`,
      `restic forget --prune  ${formatSeconds(forget)}, stored ${formatBytes(resticBefore)} -> ${formatBytes(resticAfter)}   gc/restic ${formatRatio(gc / forget)} (goal <= ${gcVsResticGoal}: ${goal(gc / forget, gcVsResticGoal)})`,
      `fsck --full after gc: ${figures.fsckAfterGcClean ? 'clean' : 'PROBLEMS'}`,
    ];
    console.log(lines.join('\n'));
  }
  console.log(JSON.stringify(figures));
  if (!options.keep) fs.rmSync(root, { recursive: true, force: true });
}

await main();
