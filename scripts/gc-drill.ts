// The gc drill (issue 16, "Local gc"), at full size: `npm run drill:gc`, or
// `node scripts/gc-drill.ts [--size <bytes>] [--race-size <bytes>] [--rounds <n>] [--keep]`.
//
// 1. A repository with 5 versions of a --size file (default 1 GiB) and two deleted branches:
//    after `reflog expire --expire-unreachable=now --all` and `gc --prune=now`, its stored bytes
//    must be within 2% of a fresh clone of the surviving refs, and every surviving commit's
//    files must read back exactly (`verify` of each commit) and `fsck --full` be clean.
// 2. `gc --prune=now` and `add` + `commit` of a --race-size file (default 500 MB) started
//    together with a random delay between them, --rounds times (default 20): `fsck --full`
//    clean and the new commit's files whole every time.
// 3. gc killed with SIGKILL at a random instant, --rounds times: `fsck --full` clean and every
//    commit readable every time.
// Prints one line per step and exits 1 on the first failure.

import { spawn, spawnSync } from 'node:child_process';
import { randomFillSync, randomInt } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const GiB = 1024 ** 3;
const cli = path.join(import.meta.dirname, '..', 'bin', 'mediagit.js');
const env = {
  ...process.env,
  MEDIAGIT_AUTHOR_NAME: 'Drill',
  MEDIAGIT_AUTHOR_EMAIL: 'drill@example.com',
  NO_COLOR: '1',
};

function option(name: string, fallback: number): number {
  const at = process.argv.indexOf(name);
  return at < 0 ? fallback : Number(process.argv[at + 1]);
}
const size = option('--size', GiB);
const raceSize = option('--race-size', 500e6);
const rounds = option('--rounds', 20);
const keep = process.argv.includes('--keep');

function mg(args: string[], cwd: string): string {
  const result = spawnSync(process.execPath, [cli, ...args], { cwd, env, encoding: 'utf8' });
  if (result.status !== 0) {
    throw new Error(`mediagit ${args.join(' ')} exited ${result.status}: ${result.stderr}`);
  }
  return result.stdout;
}

const buffer = Buffer.allocUnsafe(8 * 1024 * 1024);
function writeRandom(file: string, bytes: number): void {
  const fd = fs.openSync(file, 'w');
  try {
    for (let done = 0; done < bytes;) {
      const n = Math.min(buffer.length, bytes - done);
      randomFillSync(buffer, 0, n);
      done += fs.writeSync(fd, buffer, 0, n);
    }
  } finally {
    fs.closeSync(fd);
  }
}

function objectBytes(dir: string): number {
  let total = 0;
  const walk = (folder: string): void => {
    for (const entry of fs.readdirSync(folder, { withFileTypes: true })) {
      const full = path.join(folder, entry.name);
      if (entry.isDirectory()) {
        if (entry.name !== 'info') walk(full);
      } else total += fs.statSync(full).size;
    }
  };
  walk(path.join(dir, '.mediagit', 'objects'));
  return total;
}

function checkWhole(dir: string, what: string): void {
  mg(['fsck', '--full'], dir);
  const commits = mg(['log', '--all', '--format=%H'], dir).trim().split('\n').filter(Boolean);
  mg(['verify', ...commits], dir);
  process.stdout.write(`  ${what}: fsck --full clean, ${commits.length} commits verified\n`);
}

const root = fs.mkdtempSync(
  path.join(process.env['MEDIAGIT_DRILL_DIR'] ?? os.tmpdir(), 'gc-drill-'),
);
try {
  // 1. Reclaiming deleted branches.
  const repo = path.join(root, 'repo');
  fs.mkdirSync(repo);
  mg(['init', '-q'], repo);
  const file = path.join(repo, 'video.bin');
  writeRandom(file, size);
  mg(['add', 'video.bin'], repo);
  mg(['commit', '-q', '-m', 'v1'], repo);
  for (const branch of ['take-a', 'take-b']) {
    mg(['switch', '-q', '-c', branch, 'main'], repo);
    for (let v = 0; v < (branch === 'take-a' ? 2 : 1); v++) {
      writeRandom(file, size);
      mg(['add', 'video.bin'], repo);
      mg(['commit', '-q', '-m', `${branch} ${v}`], repo);
    }
    mg(['switch', '-q', 'main'], repo);
    mg(['branch', '-D', branch], repo);
  }
  writeRandom(file, size);
  mg(['add', 'video.bin'], repo);
  mg(['commit', '-q', '-m', 'v2'], repo);
  const before = objectBytes(repo);
  mg(['reflog', 'expire', '--expire-unreachable=now', '--all'], repo);
  const started = Date.now();
  mg(['gc', '-q', '--prune=now'], repo);
  const gcSeconds = (Date.now() - started) / 1000;
  const after = objectBytes(repo);
  const clone = path.join(root, 'clone');
  mg(['clone', '-q', repo, clone], root);
  const fresh = objectBytes(clone);
  const apart = Math.abs(after - fresh) / fresh;
  process.stdout.write(
    `1. 5 versions of ${size} bytes, 2 deleted branches: ${before} -> ${after} bytes stored in ${gcSeconds.toFixed(1)} s; ` +
      `a fresh clone stores ${fresh} (${(apart * 100).toFixed(2)}% apart, goal <= 2%)\n`,
  );
  if (apart > 0.02) throw new Error('stored bytes after gc are more than 2% from a fresh clone');
  checkWhole(repo, 'after gc');
  fs.rmSync(clone, { recursive: true, force: true });

  // 2. gc racing add + commit.
  const race = path.join(repo, 'race.bin');
  for (let round = 0; round < rounds; round++) {
    writeRandom(race, raceSize);
    const delay = randomInt(0, 3000);
    const adder = spawn(
      'sh',
      [
        '-c',
        `"${process.execPath}" "${cli}" add race.bin && "${process.execPath}" "${cli}" commit -q -m "race ${round}"`,
      ],
      { cwd: repo, env, stdio: 'ignore' },
    );
    const added = new Promise<number | null>((resolve) => adder.on('exit', resolve));
    await new Promise((resolve) => setTimeout(resolve, delay));
    mg(['gc', '-q', '--prune=now'], repo);
    if ((await added) !== 0) throw new Error(`round ${round}: add + commit failed`);
    mg(['reflog', 'expire', '--expire-unreachable=now', '--all'], repo);
    checkWhole(repo, `2.${round + 1} gc ${delay} ms after add began`);
  }

  // 3. gc killed at random points.
  for (let round = 0; round < rounds; round++) {
    writeRandom(race, raceSize / 4);
    mg(['commit', '-q', '-a', '-m', `kill ${round}`], repo);
    mg(['reflog', 'expire', '--expire-unreachable=now', '--all'], repo);
    const delay = randomInt(50, 2500);
    const gc = spawn(process.execPath, [cli, 'gc', '-q', '--prune=now', '--aggressive'], {
      cwd: repo,
      env,
      stdio: 'ignore',
    });
    const exited = new Promise((resolve) => gc.on('exit', resolve));
    await new Promise((resolve) => setTimeout(resolve, delay));
    gc.kill('SIGKILL');
    await exited;
    checkWhole(repo, `3.${round + 1} gc killed after ${delay} ms`);
  }
  process.stdout.write('gc drill passed\n');
} catch (error) {
  process.stdout.write(`gc drill FAILED: ${(error as Error).message}\n(kept ${root})\n`);
  process.exitCode = 1;
} finally {
  if (process.exitCode !== 1 && !keep) fs.rmSync(root, { recursive: true, force: true });
}
