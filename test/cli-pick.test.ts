/**
 * `cherry-pick` and `revert` on the real binary against a twin Git
 * repository: exit codes, working trees, tracked paths, staged state,
 * unmerged paths and commit subjects must agree.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { commitAll, Pair, repoMaker } from './git-twin.ts';
import { pseudoRandomBytes } from './helpers.ts';

const newRepo = repoMaker();

async function assertSame(pair: Pair, label: string): Promise<void> {
  await pair.assertSameWorkTrees(label);
  await pair.assertSameTracked(label);
  const subjects = await pair.both(['log', '--oneline', '-n', '1'], 0);
  const subject = (out: string) => out.trim().replace(/^\S+ /, '');
  assert.equal(subject(subjects.m.out), subject(subjects.g.out), `${label}: HEAD subject`);
}

/** main and feature diverged; feature has two commits touching a.txt. */
async function history(pair: Pair): Promise<void> {
  await pair.writeFile('a.txt', 'one\ntwo\nthree\nfour\nfive\nsix\nseven\n');
  await commitAll(pair, 'base');
  await pair.both(['switch', '-q', '-c', 'feature'], 0);
  await pair.writeFile('a.txt', 'ONE\ntwo\nthree\nfour\nfive\nsix\nseven\n');
  await pair.writeFile('f1.txt', 'first feature file\n');
  await commitAll(pair, 'feature: first');
  await pair.writeFile('a.txt', 'ONE\ntwo\nthree\nfour\nfive\nsix\nSEVEN\n');
  await commitAll(pair, 'feature: second');
  await pair.both(['switch', '-q', 'main'], 0);
  await pair.writeFile('b.txt', 'main only\n');
  await commitAll(pair, 'main: b');
}

function unmergedLines(porcelain: string): string[] {
  return porcelain
    .split('\n')
    .filter((line) => /^(U.|.U|AA|DD) /.test(line))
    .sort();
}

test('cherry-pick (with and without -n) and revert match git', async () => {
  const pair = await Pair.create(newRepo);
  await history(pair);
  await pair.both(['cherry-pick', 'feature'], 0);
  await assertSame(pair, 'after cherry-pick');
  await pair.both(['cherry-pick', '-n', 'feature~1'], 0);
  const staged = await pair.both(['status', '--porcelain'], 0);
  assert.equal(staged.m.out, staged.g.out);
  await pair.assertSameWorkTrees('after cherry-pick -n');
  await pair.both(['commit', '-q', '-m', 'picked first'], 0);
  await pair.both(['revert', '--no-edit', 'HEAD~1'], 0);
  await assertSame(pair, 'after revert');
});

test('a conflicting cherry-pick stops as in git; --abort and --continue conclude it', async () => {
  const pair = await Pair.create(newRepo);
  await history(pair);
  await pair.writeFile('a.txt', 'one\ntwo\nthree\nfour\nfive\nsix\nseven (main)\n');
  await commitAll(pair, 'main: edits the last line');
  // The picked commit also retouches a large chunked binary, merged cleanly
  // before the text conflict stops the pick: --abort must put it back too.
  const big = pseudoRandomBytes(6 * 1024 * 1024, 81);
  for (const dir of [pair.m.dir, pair.g.dir]) await fs.writeFile(path.join(dir, 'plate.exr'), big);
  await commitAll(pair, 'main: adds a plate');
  await pair.both(['switch', '-q', '-c', 'retouch'], 0);
  const retouched = Buffer.from(big);
  retouched.write('retouched', 2 * 1024 * 1024);
  for (const dir of [pair.m.dir, pair.g.dir])
    await fs.writeFile(path.join(dir, 'plate.exr'), retouched);
  await pair.writeFile('a.txt', 'one\ntwo\nthree\nfour\nfive\nsix\nseven (retouch)\n');
  await commitAll(pair, 'retouch');
  await pair.both(['switch', '-q', 'main'], 0);
  await pair.writeFile('a.txt', 'one\ntwo\nthree\nfour\nfive\nsix\nseven (main again)\n');
  await commitAll(pair, 'main: edits it again');
  const before = (await pair.m.head()).id;

  await pair.both(['cherry-pick', 'retouch'], 1);
  const porcelain = await pair.both(['status', '--porcelain'], 0);
  assert.deepEqual(unmergedLines(porcelain.m.out), ['UU a.txt']);
  assert.deepEqual(unmergedLines(porcelain.m.out), unmergedLines(porcelain.g.out));
  await pair.both(['cherry-pick', '--abort'], 0);
  await assertSame(pair, 'after --abort');
  assert.equal((await pair.m.head()).id, before);

  await pair.both(['cherry-pick', 'retouch'], 1);
  await pair.writeFile('a.txt', 'one\ntwo\nthree\nfour\nfive\nsix\nSEVEN (both)\n');
  await pair.both(['add', 'a.txt'], 0);
  // Git opens an editor on the message; MediaGit keeps it as it is.
  pair.g.env['GIT_EDITOR'] = 'true';
  await pair.both(['cherry-pick', '--continue'], 0);
  await assertSame(pair, 'after --continue');
});
