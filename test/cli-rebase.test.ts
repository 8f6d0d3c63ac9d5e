/**
 * `rebase` on the real binary against git: a 3-commit branch, an interactive
 * squash, and a conflicting rebase concluded with --continue or undone with
 * --abort (large chunked binary included), comparing trees, tracked paths,
 * subjects and exit codes.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { commitAll, Pair, repoMaker } from './git-twin.ts';
import { pseudoRandomBytes } from './helpers.ts';

const newRepo = repoMaker();

async function subjects(pair: Pair, n: number): Promise<void> {
  const { m, g } = await pair.both(['log', '--oneline', '-n', String(n)], 0);
  const strip = (out: string) =>
    out
      .trim()
      .split('\n')
      .map((line) => line.replace(/^\S+ /, ''));
  assert.deepEqual(strip(m.out), strip(g.out));
}

async function assertSame(pair: Pair, label: string, n = 5): Promise<void> {
  await pair.assertSameWorkTrees(label);
  await pair.assertSameTracked(label);
  await subjects(pair, n);
}

/** main gains m1 after feature branched off with f1..f3. */
async function branches(pair: Pair, conflicting: boolean): Promise<void> {
  pair.g.env['GIT_EDITOR'] = 'true';
  await pair.writeFile('a.txt', 'one\ntwo\nthree\n');
  const big = pseudoRandomBytes(6 * 1024 * 1024, 71);
  for (const dir of [pair.m.dir, pair.g.dir]) await fs.writeFile(path.join(dir, 'plate.exr'), big);
  await commitAll(pair, 'base');
  await pair.both(['switch', '-q', '-c', 'feature'], 0);
  for (const n of [1, 2, 3]) {
    await pair.writeFile(`f${n}.txt`, `feature ${n}\n`);
    if (n === 2 && conflicting) await pair.writeFile('a.txt', 'one\nTWO (feature)\nthree\n');
    if (n === 3) {
      const edited = Buffer.from(big);
      edited.write('feature', 1024);
      for (const dir of [pair.m.dir, pair.g.dir])
        await fs.writeFile(path.join(dir, 'plate.exr'), edited);
    }
    await commitAll(pair, `f${n}`);
  }
  await pair.both(['switch', '-q', 'main'], 0);
  await pair.writeFile(
    'a.txt',
    conflicting ? 'one\nTWO (main)\nthree\n' : 'one\ntwo\nthree\nfour\n',
  );
  await commitAll(pair, 'm1');
  await pair.both(['switch', '-q', 'feature'], 0);
}

test('rebase of a 3-commit branch, and an interactive squash, match git', async () => {
  const pair = await Pair.create(newRepo);
  await branches(pair, false);
  await pair.both(['rebase', '-q', 'main'], 0);
  await assertSame(pair, 'after rebase');
  await pair.both(['rebase', '-q', 'main'], 0);

  // Squash f2 into f1 and fix f3 into it too.
  await pair.both(['reset', '-q', '--hard', 'HEAD'], 0);
  const script = "sed -i -e '2s/^pick/squash/' -e '3s/^pick/fixup/'";
  pair.m.env['MEDIAGIT_EDITOR'] = script;
  pair.g.env['GIT_SEQUENCE_EDITOR'] = script;
  await pair.both(['rebase', '-q', '-i', 'main'], 0);
  await assertSame(pair, 'after interactive squash', 3);
});

test('interactive rebase: reword one commit and drop another, as git does', async () => {
  const pair = await Pair.create(newRepo);
  await branches(pair, false);
  // One script serves as the todo editor and as the message editor.
  const script = "sed -i -e '1s/^pick/reword/' -e '3s/^pick/drop/' -e '1s/^f1$/f1, reworded/'";
  pair.m.env['MEDIAGIT_EDITOR'] = script;
  pair.g.env['GIT_SEQUENCE_EDITOR'] = script;
  pair.g.env['GIT_EDITOR'] = script;
  await pair.both(['rebase', '-q', '-i', 'main'], 0);
  await assertSame(pair, 'after reword and drop', 4);
});

test('a conflicting rebase stops like git; --abort restores everything, --continue finishes', async () => {
  const pair = await Pair.create(newRepo);
  await branches(pair, true);
  const before = (await pair.m.head()).id;
  await pair.both(['rebase', 'main'], 1);
  await pair.both(['rebase', '--abort'], 0);
  await assertSame(pair, 'after --abort');
  assert.equal((await pair.m.head()).id, before);
  assert.equal((await pair.m.head()).branch, 'refs/heads/feature');

  await pair.both(['rebase', 'main'], 1);
  await pair.writeFile('a.txt', 'one\nTWO (both)\nthree\n');
  await pair.both(['add', 'a.txt'], 0);
  await pair.both(['rebase', '--continue'], 0);
  await assertSame(pair, 'after --continue');
  assert.equal((await pair.m.head()).branch, 'refs/heads/feature');
});
