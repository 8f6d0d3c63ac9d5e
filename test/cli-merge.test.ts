/**
 * `merge` and `merge-base` on the real binary, each scenario run the same way
 * on a twin Git repository: exit codes, working trees, tracked paths and the
 * merge bases found (by commit subject, since IDs differ) must agree.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { Refs } from '../src/repo/refs.ts';
import { Repository } from '../src/repo/repository.ts';
import { readCommit } from '../src/repo/tree-ops.ts';
import { commitAll, Pair, repoMaker } from './git-twin.ts';
import { pseudoRandomBytes, TempRepo } from './helpers.ts';

const newRepo = repoMaker();

async function assertSame(pair: Pair, label: string): Promise<void> {
  await pair.assertSameWorkTrees(label);
  await pair.assertSameTracked(label);
}

async function parentsOfHead(repo: TempRepo): Promise<number> {
  const head = await repo.head();
  const opened = await Repository.discover(repo.dir);
  return (await readCommit(opened.objects, head.id!)).parents.length;
}

/** The subject of each commit `merge-base --all` prints, sorted. */
async function baseSubjects(
  pair: Pair,
  a: string,
  b: string,
): Promise<{ m: string[]; g: string[] }> {
  const { m, g } = await pair.both(['merge-base', '--all', a, b], 0);
  const subjects = async (ids: string, run: (args: string[]) => Promise<string>) => {
    const out: string[] = [];
    for (const id of ids.split('\n').filter((line) => line !== '')) {
      out.push((await run(['log', '--oneline', '-n', '1', id])).trim().replace(/^\S+ /, ''));
    }
    return out.sort();
  };
  return {
    m: await subjects(m.out, async (args) => (await pair.m.ok(args)).out),
    g: await subjects(g.out, async (args) => pair.g.run(args).out),
  };
}

test('fast-forward, --ff-only, up to date and a clean three-way merge match git', async () => {
  const pair = await Pair.create(newRepo);
  await pair.writeFile('a.txt', 'one\ntwo\nthree\n');
  await pair.writeFile('docs/readme.md', '# shot list\n');
  await commitAll(pair, 'base');
  await pair.both(['switch', '-q', '-c', 'feature'], 0);
  await pair.writeFile('b.txt', 'feature file\n');
  await commitAll(pair, 'feature adds b');
  await pair.both(['switch', '-q', 'main'], 0);

  await pair.both(['merge', '--ff-only', 'feature'], 0);
  await assertSame(pair, 'after fast-forward');
  const feature = await new Refs(await Repository.discover(pair.m.dir)).read('refs/heads/feature');
  assert.equal((await pair.m.head()).id, feature, 'main is now at feature');
  const up = await pair.both(['merge', 'feature'], 0);
  assert.match(up.m.out, /Already up to date\./);
  assert.match(up.g.out, /Already up to date\./);

  // Diverged: main edits a.txt, feature adds a large binary and removes the readme.
  await pair.writeFile('a.txt', 'one\ntwo\nthree\nfour\n');
  await commitAll(pair, 'main edits a');
  await pair.both(['switch', '-q', 'feature'], 0);
  const big = pseudoRandomBytes(6 * 1024 * 1024, 41);
  for (const dir of [pair.m.dir, pair.g.dir]) await fs.writeFile(path.join(dir, 'plate.exr'), big);
  await pair.remove('docs/readme.md');
  await commitAll(pair, 'feature adds a plate');
  await pair.both(['switch', '-q', 'main'], 0);

  await pair.both(['merge', '--ff-only', 'feature'], 128);
  await assertSame(pair, 'after refused --ff-only');
  await pair.both(['merge', '-q', '-m', 'merge feature', 'feature'], 0);
  await assertSame(pair, 'after three-way merge');
  assert.equal(await parentsOfHead(pair.m), 2);
  assert.equal(
    pair.g.run(['rev-list', '--parents', '-n', '1', 'HEAD']).out.trim().split(' ').length,
    3,
  );

  // --no-ff on a fast-forwardable branch still makes a merge commit.
  await pair.both(['switch', '-q', '-c', 'topic'], 0);
  await pair.writeFile('c.txt', 'topic\n');
  await commitAll(pair, 'topic adds c');
  await pair.both(['switch', '-q', 'main'], 0);
  await pair.both(['merge', '-q', '--no-ff', '-m', 'merge topic', 'topic'], 0);
  await assertSame(pair, 'after --no-ff');
  assert.equal(await parentsOfHead(pair.m), 2);
});

/** Unmerged entries of `status --porcelain` (XY codes U?, ?U, AA, DD), sorted. */
function unmergedLines(porcelain: string): string[] {
  return porcelain
    .split('\n')
    .filter((line) => /^(U.|.U|AA|DD) /.test(line))
    .sort();
}

/** Both sides of the four conflict types, a clean text merge, and a large binary. */
async function conflictingBranches(pair: Pair): Promise<void> {
  const big = pseudoRandomBytes(6 * 1024 * 1024, 51);
  await pair.writeFile('a.txt', 'one\ntwo\nthree\nfour\nfive\n');
  await pair.writeFile('clean.txt', 'alpha\nbeta\ngamma\ndelta\nepsilon\n');
  await pair.writeFile('del-ours.txt', 'keep me?\n');
  await pair.writeFile('del-theirs.txt', 'keep me?\n');
  for (const dir of [pair.m.dir, pair.g.dir]) await fs.writeFile(path.join(dir, 'plate.exr'), big);
  await commitAll(pair, 'base');
  await pair.both(['switch', '-q', '-c', 'feature'], 0);
  await pair.writeFile('a.txt', 'one\nTWO theirs\nthree\nfour\nfive\n');
  await pair.writeFile('clean.txt', 'alpha\nbeta\ngamma\ndelta\nEPSILON\n');
  await pair.writeFile('del-ours.txt', 'changed by them\n');
  await pair.remove('del-theirs.txt');
  await pair.writeFile('added.txt', 'theirs\n');
  const theirsBig = Buffer.from(big);
  theirsBig.write('theirs', 3 * 1024 * 1024);
  for (const dir of [pair.m.dir, pair.g.dir])
    await fs.writeFile(path.join(dir, 'plate.exr'), theirsBig);
  await commitAll(pair, 'feature');
  await pair.both(['switch', '-q', 'main'], 0);
  await pair.writeFile('a.txt', 'one\nTWO ours\nthree\nfour\nfive\n');
  await pair.writeFile('clean.txt', 'ALPHA\nbeta\ngamma\ndelta\nepsilon\n');
  await pair.remove('del-ours.txt');
  await pair.writeFile('del-theirs.txt', 'changed by us\n');
  await pair.writeFile('added.txt', 'ours\n');
  const oursBig = Buffer.from(big);
  oursBig.write('ours!!', 1024);
  for (const dir of [pair.m.dir, pair.g.dir])
    await fs.writeFile(path.join(dir, 'plate.exr'), oursBig);
  await commitAll(pair, 'main');
}

test('the four conflict types stop the merge as in git; resolving and committing concludes it', async () => {
  const pair = await Pair.create(newRepo);
  await conflictingBranches(pair);
  const { m, g } = await pair.both(['merge', 'feature'], 1);
  // Worded as Git words them (the type's own name is in --json, below).
  const conflictLines = (text: string): string[] =>
    text
      .split('\n')
      .filter((line) => line.startsWith('CONFLICT'))
      .sort();
  assert.deepEqual(conflictLines(m.stderr + m.out), conflictLines(g.out + g.stderr));
  assert.equal(conflictLines(m.stderr).length, 5, m.stderr);
  // Same conflicted paths with the same codes, same working files (markers in
  // text, ours for the binary, theirs' copy of the file we deleted).
  const porcelain = await pair.both(['status', '--porcelain'], 0);
  assert.deepEqual(unmergedLines(porcelain.m.out), unmergedLines(porcelain.g.out));
  assert.deepEqual(unmergedLines(porcelain.m.out), [
    'AA added.txt',
    'DU del-ours.txt',
    'UD del-theirs.txt',
    'UU a.txt',
    'UU plate.exr',
  ]);
  const json = JSON.parse((await pair.m.ok(['status', '--json'])).out) as {
    unmerged: { path: string; type: string }[];
  };
  assert.deepEqual(json.unmerged.map((c) => `${c.type} ${c.path}`).sort(), [
    'AddAdd added.txt',
    'DeleteModify del-ours.txt',
    'ModifyDelete del-theirs.txt',
    'ModifyModify a.txt',
    'ModifyModify plate.exr',
  ]);
  await pair.assertSameWorkTrees('after the conflicted merge');

  await pair.both(['commit', '-q', '-m', 'too early'], 128);
  await pair.both(['merge', 'feature'], 128);

  // Picking a side of a binary and of a text conflict, as in git.
  await pair.both(['checkout', '--theirs', 'plate.exr'], 0);
  await pair.both(['checkout', '--ours', '--', 'added.txt'], 0);
  await pair.assertSameWorkTrees('after checkout --theirs/--ours');
  const merged = await pair.m.run(['show', 'MERGE_HEAD:del-ours.txt']);
  assert.equal(merged.out, 'changed by them\n');

  await pair.writeFile('a.txt', 'one\nTWO both\nthree\nfour\nfive\n');
  await pair.writeFile('added.txt', 'both\n');
  await pair.both(['add', 'a.txt', 'added.txt', 'plate.exr', 'del-ours.txt'], 0);
  await pair.both(['rm', '-q', 'del-theirs.txt'], 0);
  await pair.both(['commit', '-q', '-m', 'merge feature'], 0);
  await assertSame(pair, 'after concluding the merge');
  assert.equal(await parentsOfHead(pair.m), 2);
  await pair.both(['merge', '--abort'], 128);
});

test('merge --abort restores the exact state before the merge, large binaries included', async () => {
  const pair = await Pair.create(newRepo);
  await conflictingBranches(pair);
  await pair.writeFile('untracked-notes.txt', 'mine\n');
  const before = (await pair.m.head()).id;
  await pair.both(['merge', 'feature'], 1);
  await pair.both(['merge', '--abort'], 0);
  await assertSame(pair, 'after --abort');
  assert.equal((await pair.m.head()).id, before);
  const status = await pair.m.status();
  assert.deepEqual(
    [status.staged, status.unstaged, status.untracked],
    [[], [], ['untracked-notes.txt']],
  );
});

test('merge-base finds every lowest common ancestor of a criss-cross history, as git does', async () => {
  const pair = await Pair.create(newRepo);
  await pair.writeFile('base.txt', 'base\n');
  await commitAll(pair, 'A');
  await pair.both(['switch', '-q', '-c', 'x'], 0);
  await pair.writeFile('x.txt', 'x1\n');
  await commitAll(pair, 'X1');
  await pair.both(['switch', '-q', '-c', 'y', 'main'], 0);
  await pair.writeFile('y.txt', 'y1\n');
  await commitAll(pair, 'Y1');
  await pair.both(['branch', 'y1', 'y'], 0);
  // Criss-cross: x merges Y1, y merges X1.
  await pair.both(['switch', '-q', 'x'], 0);
  await pair.both(['merge', '-q', '--no-ff', '-m', 'X2', 'y1'], 0);
  await pair.both(['switch', '-q', 'y'], 0);
  await pair.both(['merge', '-q', '--no-ff', '-m', 'Y2', 'x~1'], 0);
  await assertSame(pair, 'after the criss-cross');

  const bases = await baseSubjects(pair, 'x', 'y');
  assert.deepEqual(bases.m, ['X1', 'Y1']);
  assert.deepEqual(bases.m, bases.g);
  await pair.both(['merge-base', '--is-ancestor', 'main', 'x'], 0);
  await pair.both(['merge-base', '--is-ancestor', 'x', 'main'], 1);

  // Each side then changes its own file; merging them uses a virtual base.
  await pair.writeFile('y.txt', 'y3\n');
  await commitAll(pair, 'Y3');
  await pair.both(['switch', '-q', 'x'], 0);
  await pair.writeFile('x.txt', 'x3\n');
  await commitAll(pair, 'X3');
  await pair.both(['merge', '-q', '-m', 'criss-cross merge', 'y'], 0);
  await assertSame(pair, 'after merging the criss-cross');
});

test('reflog lists where HEAD and a branch have been, as git does', async () => {
  const pair = await Pair.create(newRepo);
  await pair.writeFile('a.txt', 'one\n');
  await commitAll(pair, 'first');
  await pair.both(['switch', '-q', '-c', 'feature'], 0);
  await pair.writeFile('a.txt', 'two\n');
  await commitAll(pair, 'second');
  await pair.both(['switch', '-q', 'main'], 0);
  await pair.both(['merge', '-q', 'feature'], 0);
  await pair.both(['reset', '-q', '--hard', 'HEAD~1'], 0);
  const withoutIds = (out: string) =>
    out
      .trim()
      .split('\n')
      .map((line) => line.replace(/^\S+ /, ''));
  for (const args of [['reflog'], ['reflog', 'show', 'main'], ['reflog', '-n', '2', 'feature']]) {
    const { m, g } = await pair.both(args, 0);
    assert.deepEqual(withoutIds(m.out), withoutIds(g.out), args.join(' '));
  }
  // The commit the reset dropped is still reachable through the reflog.
  await pair.both(['reset', '-q', '--hard', 'HEAD@{1}'], 0);
  await assertSame(pair, 'after resetting to HEAD@{1}');
});

test('an octopus merge of three branches matches git; a conflicting one is refused whole', async () => {
  const pair = await Pair.create(newRepo);
  await pair.writeFile('base.txt', 'base\n');
  await commitAll(pair, 'base');
  for (const name of ['audio', 'grade', 'titles']) {
    await pair.both(['switch', '-q', '-c', name, 'main'], 0);
    await pair.writeFile(`${name}.txt`, `${name} pass\n`);
    await commitAll(pair, name);
  }
  await pair.both(['switch', '-q', 'main'], 0);
  await pair.both(['merge', '-q', '--no-ff', '-m', 'octopus', 'audio', 'grade', 'titles'], 0);
  await assertSame(pair, 'after the octopus merge');
  const parents = pair.g.run(['rev-list', '--parents', '-n', '1', 'HEAD']).out.trim().split(' ');
  assert.equal(parents.length, 5); // the commit, then its four parents
  const head = await pair.m.head();
  const opened = await Repository.discover(pair.m.dir);
  assert.equal((await readCommit(opened.objects, head.id!)).parents.length, 4);

  // Two branches that change the same line: git's octopus refuses, and so does MediaGit.
  for (const name of ['left', 'right']) {
    await pair.both(['switch', '-q', '-c', name, 'main'], 0);
    await pair.writeFile('base.txt', `${name}\n`);
    await commitAll(pair, name);
  }
  await pair.both(['switch', '-q', 'main'], 0);
  await pair.writeFile('main.txt', 'main moves on\n');
  await commitAll(pair, 'main moves on');
  const before = (await pair.m.head()).id;
  // Git leaves such an octopus conflicted (exit 1); MediaGit refuses it whole
  // (exit 2, Git's code for a failed strategy) and changes nothing: merge
  // the branches one at a time to resolve (docs/design.md).
  const m = await pair.m.fails(['merge', '-q', 'left', 'right'], 2);
  assert.match(m.stderr, /octopus failed/);
  assert.equal((await pair.m.head()).id, before);
  assert.deepEqual((await pair.m.status()).unstaged, []);
});
