/**
 * `stash` on the real binary against git: push (with staged, unstaged and
 * untracked files), list, pop with and without --index, drop; and a large
 * file in a stash costs only its changed chunks.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { Pair, repoMaker } from './git-twin.ts';
import { pseudoRandomBytes, TempRepo } from './helpers.ts';

const newRepo = repoMaker();

async function objectBytes(repo: TempRepo): Promise<number> {
  let total = 0;
  for (const entry of await fs.readdir(path.join(repo.gitDir, 'objects'), {
    withFileTypes: true,
    recursive: true,
  })) {
    if (entry.isFile()) total += (await fs.stat(path.join(entry.parentPath, entry.name))).size;
  }
  return total;
}

async function sameStatus(pair: Pair, label: string): Promise<void> {
  const { m, g } = await pair.both(['status', '--porcelain'], 0);
  assert.equal(m.out, g.out, `${label}: status`);
  await pair.assertSameWorkTrees(label);
}

test('stash push/pop with staged, unstaged and untracked files matches git', async () => {
  const pair = await Pair.create(newRepo);
  const big = pseudoRandomBytes(6 * 1024 * 1024, 61);
  await pair.writeFile('a.txt', 'alpha\n');
  await pair.writeFile('b.txt', 'beta\n');
  for (const dir of [pair.m.dir, pair.g.dir]) await fs.writeFile(path.join(dir, 'plate.exr'), big);
  await pair.both(['add', '-A'], 0);
  await pair.both(['commit', '-q', '-m', 'base'], 0);

  const edit = async () => {
    await pair.writeFile('a.txt', 'alpha, unstaged edit\n');
    await pair.writeFile('b.txt', 'beta, staged edit\n');
    await pair.writeFile('new.txt', 'a new staged file\n');
    await pair.both(['add', 'b.txt', 'new.txt'], 0);
    await pair.writeFile('notes.txt', 'untracked notes\n');
    const changed = Buffer.from(big);
    changed.write('retouched', 4 * 1024 * 1024);
    for (const dir of [pair.m.dir, pair.g.dir])
      await fs.writeFile(path.join(dir, 'plate.exr'), changed);
  };
  await edit();
  const before = await objectBytes(pair.m);
  await pair.both(['stash', 'push', '-q', '-u', '-m', 'wip'], 0);
  // The retouched 6 MiB plate cost its changed chunk, not the file.
  assert.ok((await objectBytes(pair.m)) - before < 3 * 1024 * 1024);
  await sameStatus(pair, 'after stash push');
  const list = await pair.both(['stash', 'list'], 0);
  assert.equal(list.m.out.trim(), 'stash@{0}: On main: wip');
  assert.equal(list.m.out, list.g.out);

  await pair.both(['stash', 'pop', '-q'], 0);
  await sameStatus(pair, 'after stash pop');

  await pair.both(['stash', '-q', '-u'], 0);
  await pair.both(['stash', 'pop', '-q', '--index'], 0);
  await sameStatus(pair, 'after stash pop --index');

  await pair.both(['stash', '-q', '-u'], 0);
  await pair.both(['stash', 'drop', '-q'], 0);
  await pair.both(['stash', 'drop'], 1);
  await sameStatus(pair, 'after stash drop');
});
