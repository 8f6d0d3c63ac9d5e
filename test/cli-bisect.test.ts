/**
 * `bisect` on the real binary against git: `bisect run` finds the first bad
 * commit among 64, the log replays to the same answer, and `reset` returns
 * to the branch.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { Pair, repoMaker } from './git-twin.ts';

const newRepo = repoMaker();

test('bisect run finds the first bad commit among 64, as git does; log replays; reset returns', async () => {
  const pair = await Pair.create(newRepo);
  for (let i = 1; i <= 64; i++) {
    await pair.writeFile('render-time.txt', `${i}\n`);
    if (i === 1) await pair.both(['add', 'render-time.txt'], 0);
    await pair.both(['commit', '-q', '-a', '-m', `c${i}`], 0);
  }
  // The "regression": render time 37 and above.
  const script = 'test "$(cat render-time.txt)" -lt 37';
  await pair.both(['bisect', 'start', 'HEAD', 'HEAD~63'], 0);
  const { m, g } = await pair.both(['bisect', 'run', 'sh', '-c', script], 0);
  assert.match(m.out, /is the first bad commit\n\s+c37\n/);
  assert.match(g.out, /is the first bad commit[\s\S]*\n\s+c37\n/);

  const log = (await pair.m.ok(['bisect', 'log'])).out;
  const logFile = path.join(await fs.mkdtemp(path.join(os.tmpdir(), 'bisect-log-')), 'log');
  await fs.writeFile(logFile, log);
  await pair.m.ok(['bisect', 'reset']);
  const replayed = await pair.m.ok(['bisect', 'replay', logFile]);
  assert.match(replayed.out, /is the first bad commit\n\s+c37\n/);

  await pair.both(['bisect', 'reset'], 0);
  await pair.assertSameWorkTrees('after bisect reset');
  assert.equal((await pair.m.head()).branch, 'refs/heads/main');
  assert.equal(await fs.readFile(pair.m.path('render-time.txt'), 'utf8'), '64\n');
  await fs.rm(path.dirname(logFile), { recursive: true, force: true });
});

test('bisect by hand: skip, then good and bad until the answer', async () => {
  const pair = await Pair.create(newRepo);
  for (let i = 1; i <= 8; i++) {
    await pair.writeFile('v.txt', `${i}\n`);
    if (i === 1) await pair.both(['add', 'v.txt'], 0);
    await pair.both(['commit', '-q', '-a', '-m', `c${i}`], 0);
  }
  const repo = pair.m;
  assert.match((await repo.ok(['bisect', 'start'])).out, /waiting for both good and bad/);
  await repo.ok(['bisect', 'bad']);
  let out = (await repo.ok(['bisect', 'good', 'HEAD~7'])).out;
  // Mark by the file's value until done: 6 and above are bad; skip 4.
  for (let guard = 0; guard < 10 && !/first bad commit/.test(out); guard++) {
    const value = Number(await fs.readFile(repo.path('v.txt'), 'utf8'));
    const verb = value === 4 ? 'skip' : value >= 6 ? 'bad' : 'good';
    out = (await repo.run(['bisect', verb])).out;
  }
  assert.match(out, /is the first bad commit\n\s+c6\n/);
  await repo.ok(['bisect', 'reset']);
});
