/**
 * End-to-end tests of the branching verbs (branch, switch, checkout, restore,
 * reset, tag, rm, mv) on the real binary and temporary repositories.
 *
 * Where Git has the same verb, the same sequence runs on a twin Git
 * repository (git 2.39) and the tests compare exit codes, the resulting
 * working files (bytes, modes, symlinks) and which paths are tracked.
 *
 * Run `npm run build` first: the CLI runs from dist/.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { decodeTag } from '../src/odb/commit.ts';
import { readManifest } from '../src/odb/file-store.ts';
import { Refs } from '../src/repo/refs.ts';
import { Repository } from '../src/repo/repository.ts';
import { flattenCommit } from '../src/repo/tree-ops.ts';
import { Pair, snapshot } from './git-twin.ts';
import {
  assertWorkTreeEquals,
  pseudoRandomBytes,
  TempRepo,
  textBytes,
  writeTree,
  type TreeItem,
  type TreeSpec,
} from './helpers.ts';

const MiB = 1024 * 1024;

function file(content: string | Uint8Array, executable = false): TreeItem {
  return {
    type: 'file',
    content: typeof content === 'string' ? Buffer.from(content) : content,
    executable,
  };
}

function symlink(target: string): TreeItem {
  return { type: 'symlink', target };
}

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const cleanup of cleanups) await cleanup();
});

async function newRepo(): Promise<TempRepo> {
  const repo = await TempRepo.create();
  cleanups.push(() => repo.cleanup());
  return repo;
}

async function assertClean(repo: TempRepo, label: string): Promise<void> {
  const status = await repo.status();
  assert.deepEqual(
    { staged: status.staged, unstaged: status.unstaged, untracked: status.untracked },
    { staged: [], unstaged: [], untracked: [] },
    `${label}: status is not clean`,
  );
}

async function headId(repo: TempRepo): Promise<string | undefined> {
  return (await repo.head()).id;
}

async function lastReflogMessage(repo: TempRepo, ref = 'HEAD'): Promise<string> {
  const text = await fs.readFile(path.join(repo.gitDir, 'logs', ...ref.split('/')), 'utf8');
  const lines = text.trimEnd().split('\n');
  return lines[lines.length - 1]!.split('\t')[1]!;
}

// ---------------------------------------------------------------------------

describe('switch and checkout restore every kind of file', () => {
  it('brings back exact bytes and modes after commit, branch switch and old-commit checkout', async () => {
    const pair = await Pair.create(newRepo);
    const { m } = pair;
    const big = pseudoRandomBytes(5 * MiB + 123_457, 1);
    const treeA: TreeSpec = new Map([
      ['empty', file('')],
      ['binary.bin', file(pseudoRandomBytes(20_000, 2))],
      ['text.txt', file(textBytes(3000, 3))],
      ['with space.txt', file('hello world\n')],
      ['ünïcödé/名前 file.txt', file('unicode\n')],
      ['a/b/c/deep.txt', file('deep\n')],
      ['run.sh', file('#!/bin/sh\necho hi\n', true)],
      ['link', symlink('text.txt')],
      ['dirlink', symlink('a/b')],
      ['dangling', symlink('nowhere/at/all')],
      ['media/big.bin', file(big)],
    ]);
    const bigB = Buffer.from(big);
    pseudoRandomBytes(4096, 9).copy(bigB, 3 * MiB);
    const treeB: TreeSpec = new Map([
      ['empty', file('')],
      ['binary.bin', file(pseudoRandomBytes(20_000, 2))],
      ['text.txt', file(textBytes(3100, 4))],
      ['ünïcödé/名前 file.txt', file('unicode\n')],
      // A folder becomes a file, a symlink to a folder becomes a folder.
      ['a/b/c', file('now a file\n')],
      ['dirlink/inside.txt', file('must not land in a/b\n')],
      ['run.sh', file('#!/bin/sh\necho hi\n', false)],
      ['link', symlink('binary.bin')],
      ['dangling', file('no longer a link\n', true)],
      ['new/dir/added.txt', file('added\n')],
      ['media/big.bin', file(bigB)],
    ]);

    await pair.write(treeA);
    await pair.both(['add', '-A'], 0);
    await pair.both(['commit', '-q', '-m', 'A'], 0);
    const commitA = (await headId(m))!;
    await pair.both(['branch', 'feature'], 0);
    await pair.both(['switch', '-q', 'feature'], 0);
    await pair.replace(treeB);
    // The folder a/b/c becomes a file: unstage what was under it first.
    await pair.both(['rm', '-r', '-q', '--cached', 'a/b/c'], 0);
    await pair.both(['add', '-A'], 0);
    await pair.both(['commit', '-q', '-m', 'B'], 0);

    const repo = await Repository.discover(m.dir);
    const files = await flattenCommit(repo.objects, commitA);
    assert.equal(files.get('media/big.bin')?.kind, 'manifest', 'big file is chunked');
    assert.equal(files.get('run.sh')?.mode, '100755');
    assert.equal(files.get('link')?.mode, '120000');

    const steps: [string[], TreeSpec, string][] = [
      [['switch', 'main'], treeA, 'switch main'],
      [['switch', 'feature'], treeB, 'switch feature'],
      [['checkout', 'feature~1'], treeA, 'checkout of the older commit'],
      [['checkout', 'feature'], treeB, 'checkout feature'],
      [['checkout', 'main'], treeA, 'checkout main'],
      [['switch', '--detach', 'feature'], treeB, 'switch --detach'],
      [['switch', 'main'], treeA, 'switch back from detached HEAD'],
    ];
    for (const [args, tree, label] of steps) {
      await pair.both(args, 0);
      await assertWorkTreeEquals(m.dir, tree, label);
      await pair.assertSameWorkTrees(`${label}: same files as git`);
      await assertClean(m, label);
    }
    assert.equal((await m.head()).branch, 'refs/heads/main');
    assert.equal(
      await lastReflogMessage(m),
      'checkout: moving from ' + (await headOfFeature(m)) + ' to main',
    );
    const detached = await m.ok(['checkout', commitA.slice(0, 12)]);
    assert.match(detached.stderr, /You are in 'detached HEAD' state/);
    assert.match(detached.stderr, /HEAD is now at [0-9a-f]{7} A/);
    assert.equal((await m.head()).branch, undefined);
    assert.equal((await m.head()).id, commitA);
  });
});

/** The commit feature points at (the detached HEAD the last step left). */
async function headOfFeature(repo: TempRepo): Promise<string> {
  const r = await Repository.discover(repo.dir);
  return (await new Refs(r).read('refs/heads/feature'))!;
}

describe('switching refuses to lose work, like git', () => {
  it('refuses local changes and untracked files in the way, carries other changes along', async () => {
    const pair = await Pair.create(newRepo);
    const { m } = pair;
    await pair.write(
      new Map([
        ['shared.txt', file('shared\n')],
        ['diff.txt', file('main\n')],
      ]),
    );
    await pair.both(['add', '-A'], 0);
    await pair.both(['commit', '-q', '-m', 'base'], 0);
    await pair.both(['switch', '-q', '-c', 'feature'], 0);
    await pair.write(
      new Map([
        ['diff.txt', file('feature\n')],
        ['new.txt', file('new\n')],
      ]),
    );
    await pair.both(['add', '-A'], 0);
    await pair.both(['commit', '-q', '-m', 'feature'], 0);
    await pair.both(['switch', '-q', 'main'], 0);

    // A local change to a file the branches disagree on.
    await pair.writeFile('diff.txt', 'local\n');
    for (const verb of ['switch', 'checkout']) {
      const { m: result } = await pair.both([verb, 'feature'], 1);
      assert.match(
        result.stderr,
        /^error: Your local changes to the following files would be overwritten by checkout:\n\tdiff\.txt\nPlease commit your changes or stash them before you switch branches\.\nAborting\n$/,
      );
      assert.equal(await fs.readFile(m.path('diff.txt'), 'utf8'), 'local\n');
      assert.equal((await m.head()).branch, 'refs/heads/main');
      await pair.assertSameWorkTrees(`${verb} refused`);
    }
    await pair.both(['checkout', '--', 'diff.txt'], 0);
    assert.equal(await fs.readFile(m.path('diff.txt'), 'utf8'), 'main\n');

    // An untracked file where the other branch has one.
    await pair.writeFile('new.txt', 'mine\n');
    const { m: untracked } = await pair.both(['switch', 'feature'], 1);
    assert.match(
      untracked.stderr,
      /untracked working tree files would be overwritten by checkout:\n\tnew\.txt\n/,
    );
    assert.equal(await fs.readFile(m.path('new.txt'), 'utf8'), 'mine\n');
    await pair.remove('new.txt');

    // A change to a file both branches agree on comes along, staged or not.
    await pair.writeFile('shared.txt', 'edited\n');
    const { m: carried } = await pair.both(['switch', 'feature'], 0);
    assert.equal(carried.out, 'M\tshared.txt\n');
    assert.match(carried.stderr, /Switched to branch 'feature'/);
    assert.equal(await fs.readFile(m.path('shared.txt'), 'utf8'), 'edited\n');
    await pair.both(['add', 'shared.txt'], 0);
    await pair.both(['switch', '-q', 'main'], 0);
    await pair.assertSameWorkTrees('staged change carried');
    const status = await m.status();
    assert.deepEqual(status.staged, [{ path: 'shared.txt', change: 'modified' }]);

    // A staged new file the other branch also has: refused.
    await pair.writeFile('new.txt', 'staged\n');
    await pair.both(['add', 'new.txt'], 0);
    await pair.both(['switch', 'feature'], 1);
    await pair.both(['rm', '-q', '--cached', 'new.txt'], 0);
    await pair.remove('new.txt');

    // --force (and checkout -f) throw local changes away.
    await pair.writeFile('diff.txt', 'local again\n');
    await pair.both(['switch', '-q', '--force', 'feature'], 0);
    await pair.assertSameWorkTrees('switch --force');
    await pair.assertSameTracked('switch --force');
    assert.equal(await fs.readFile(m.path('diff.txt'), 'utf8'), 'feature\n');
    assert.equal(await fs.readFile(m.path('shared.txt'), 'utf8'), 'shared\n');
    await assertClean(m, 'after --force');
    await pair.writeFile('diff.txt', 'and again\n');
    await pair.both(['checkout', '-q', '-f', 'main'], 0);
    await pair.assertSameWorkTrees('checkout -f');
    await assertClean(m, 'after checkout -f');

    // Errors naming what is not a branch.
    await pair.both(['switch', 'nope'], 128);
    await pair.both(['switch', 'feature~1'], 128);
    await pair.both(['checkout', 'nope'], 1);
    await pair.both(['switch', '-c', 'feature'], 128);
    await pair.both(['checkout', '-b', 'main'], 128);
  });

  it('never writes through a symlink standing where a folder goes', async () => {
    const pair = await Pair.create(newRepo);
    const { m } = pair;
    await pair.write(new Map([['readme', file('hi\n')]]));
    await pair.both(['add', '-A'], 0);
    await pair.both(['commit', '-q', '-m', 'base'], 0);
    await pair.both(['switch', '-q', '-c', 'feature'], 0);
    await pair.write(new Map([['evil/x.txt', file('payload\n')]]));
    await pair.both(['add', '-A'], 0);
    await pair.both(['commit', '-q', '-m', 'adds evil/x.txt'], 0);
    await pair.both(['switch', '-q', 'main'], 0);

    const outside = path.join(m.root, 'outside');
    await fs.mkdir(outside);
    await fs.symlink(outside, m.path('evil'));
    await fs.symlink(outside, pair.g.path('evil'));
    const { m: refused } = await pair.both(['switch', 'feature'], 1);
    assert.match(
      refused.stderr,
      /untracked working tree files would be overwritten by checkout:\n\tevil\n/,
    );
    assert.deepEqual(await fs.readdir(outside), []);

    await m.ok(['switch', '-q', '-f', 'feature']);
    assert.deepEqual(await fs.readdir(outside), [], 'nothing written outside the work tree');
    assert.ok((await fs.lstat(m.path('evil'))).isDirectory(), 'evil is a real folder now');
    assert.equal(await fs.readFile(m.path('evil/x.txt'), 'utf8'), 'payload\n');
  });
});

describe('branches with no commits yet', () => {
  it('switches away from and between unborn branches like git', async () => {
    const pair = await Pair.create(newRepo);
    const { m } = pair;
    await pair.write(new Map([['a.txt', file('a\n')]]));
    await pair.both(['add', 'a.txt'], 0);
    await pair.both(['switch', '-c', 'other'], 0);
    assert.equal((await m.head()).branch, 'refs/heads/other');
    await pair.both(['checkout', '-b', 'third'], 0);
    await pair.both(['switch', 'main'], 128);
    await pair.both(['branch', '-m', 'renamed'], 0);
    assert.equal((await m.ok(['branch', '--show-current'])).out, 'renamed\n');
    await pair.both(['branch', '-d', 'renamed'], 1);
    await pair.both(['commit', '-q', '-m', 'first'], 0);
    await pair.assertSameTracked('first commit');

    await pair.both(['switch', '-q', '--orphan', 'orphan'], 0);
    await pair.assertSameWorkTrees('switch --orphan empties the tree');
    await pair.assertSameTracked('switch --orphan empties the index');
    await pair.write(new Map([['o.txt', file('o\n')]]));
    await pair.both(['add', 'o.txt'], 0);
    const { m: back } = await pair.both(['switch', 'renamed'], 0);
    assert.equal(back.out, 'A\to.txt\n');
    await pair.assertSameWorkTrees('back from the orphan branch');
    await pair.assertSameTracked('staged file carried from the orphan branch');

    await pair.both(['checkout', '-q', '--orphan', 'kept'], 0);
    await pair.assertSameTracked('checkout --orphan keeps the index');
    await pair.both(['commit', '-q', '-m', 'orphan root'], 0);
    await pair.both(['switch', '-q', 'renamed'], 0);
    await pair.assertSameWorkTrees('after leaving the orphan root');
    await pair.both(['branch', '-d', 'kept'], 1);
    await pair.both(['branch', '-D', 'kept'], 0);
  });

  it('resets an unborn branch to the empty tree', async () => {
    const pair = await Pair.create(newRepo);
    await pair.write(new Map([['a.txt', file('a\n')]]));
    await pair.both(['add', 'a.txt'], 0);
    await pair.both(['reset', '-q'], 0);
    await pair.assertSameTracked('reset unstages everything');
    await pair.both(['add', 'a.txt'], 0);
    await pair.both(['reset', '-q', '--hard'], 0);
    await pair.assertSameWorkTrees('reset --hard removes the staged file');
  });
});

describe('reset', () => {
  it('moves HEAD and resets the index and working tree per mode', async () => {
    const pair = await Pair.create(newRepo);
    const { m } = pair;
    await pair.write(new Map([['a', file('1\n')]]));
    await pair.both(['add', '-A'], 0);
    await pair.both(['commit', '-q', '-m', 'c1'], 0);
    const c1 = (await headId(m))!;
    await pair.write(
      new Map([
        ['a', file('2\n')],
        ['b', file('2\n')],
      ]),
    );
    await pair.both(['add', '-A'], 0);
    await pair.both(['commit', '-q', '-m', 'c2'], 0);
    const c2 = (await headId(m))!;
    await pair.write(
      new Map([
        ['a', file('3\n')],
        ['dir/c', file('3\n')],
      ]),
    );
    await pair.both(['add', '-A'], 0);
    await pair.both(['commit', '-q', '-m', 'c3'], 0);
    await pair.both(['tag', 't3'], 0);
    const porcelain = async (label: string): Promise<void> => {
      const ours = (await m.ok(['status', '--porcelain'])).out;
      assert.equal(ours, pair.g.run(['status', '--porcelain']).out, label);
    };

    await pair.both(['reset', '--soft', 'HEAD~1'], 0);
    assert.equal(await headId(m), c2);
    assert.equal(await lastReflogMessage(m), 'reset: moving to HEAD~1');
    assert.equal(await lastReflogMessage(m, 'refs/heads/main'), 'reset: moving to HEAD~1');
    await porcelain('after --soft the index still holds c3');

    const mixed = await pair.both(['reset'], 0);
    assert.equal(mixed.m.out, 'Unstaged changes after reset:\nM\ta\n');
    await porcelain('after a mixed reset the index is c2');
    await pair.assertSameWorkTrees('mixed reset leaves the working tree');

    const hard = await pair.both(['reset', '--hard'], 0);
    assert.match(hard.m.out, /^HEAD is now at [0-9a-f]{7} c2\n$/);
    await porcelain('after --hard, dir/c is untracked and stays');
    await pair.assertSameWorkTrees('reset --hard');

    await pair.both(['reset', '-q', '--hard', 't3'], 0);
    await pair.assertSameWorkTrees('reset --hard to a tag overwrites the untracked file');
    await assertClean(m, 'reset --hard t3');

    // Paths: unstage without moving HEAD.
    const before = await headId(m);
    await pair.writeFile('a', 'staged\n');
    await pair.both(['add', 'a'], 0);
    await pair.both(['reset', '-q', '--', 'a'], 0);
    await porcelain('reset -- a unstages a');
    await pair.both(['add', 'a'], 0);
    await pair.both(['reset', '-q', 'a'], 0);
    await porcelain('reset a unstages a');
    await pair.both(['add', 'a'], 0);
    await pair.both(['reset', '-q', 'HEAD~2', '--', 'b'], 0);
    await porcelain('reset HEAD~2 -- b stages b from c1 (absent)');
    assert.equal(await headId(m), before);
    await pair.both(['reset', 'nope'], 128);
    await pair.both(['reset', '--', 'nope'], 0);
    await pair.both(['reset', '--hard', '--', 'a'], 128);
    await pair.both(['reset', '--soft', 'HEAD', 'a'], 128);

    await pair.both(['reset', '-q', '--hard', 'HEAD~2'], 0);
    assert.equal(await headId(m), c1);
    await pair.assertSameWorkTrees('reset --hard two commits back');
    await pair.assertSameTracked('reset --hard two commits back');
  });
});

describe('tag', () => {
  it('creates lightweight and annotated tags, refuses duplicates, deletes', async () => {
    const pair = await Pair.create(newRepo);
    const { m } = pair;
    await pair.write(new Map([['a', file('1\n')]]));
    await pair.both(['add', '-A'], 0);
    await pair.both(['commit', '-q', '-m', 'one'], 0);
    const first = (await headId(m))!;
    await pair.write(new Map([['a', file('2\n')]]));
    await pair.both(['commit', '-q', '-a', '-m', 'two'], 0);
    const second = (await headId(m))!;

    await pair.both(['tag', 'v1', 'HEAD~1'], 0);
    await pair.both(['tag', '-a', 'v2', '-m', 'release two'], 0);
    await pair.both(['tag', '-m', 'implied annotation', 'v2.1'], 0);
    await pair.both(['tag', 'v1'], 128);
    await pair.both(['tag', 'bad..name'], 128);

    const repo = await Repository.discover(m.dir);
    const refs = new Refs(repo);
    assert.equal(await refs.read('refs/tags/v1'), first);
    const v2 = (await refs.read('refs/tags/v2'))!;
    const object = await repo.objects.read(v2);
    assert.equal(object.type, 'tag');
    const tag = decodeTag(v2, object.data);
    assert.deepEqual(
      {
        object: tag.object,
        type: tag.type,
        tag: tag.tag,
        tagger: tag.tagger.name,
        message: tag.message,
      },
      {
        object: second,
        type: 'commit',
        tag: 'v2',
        tagger: 'Test Author',
        message: 'release two\n',
      },
    );

    const list = await pair.both(['tag'], 0);
    assert.equal(list.m.out, list.g.out);
    const pattern = await pair.both(['tag', '-l', 'v2*'], 0);
    assert.equal(pattern.m.out, 'v2\nv2.1\n');
    assert.equal(pattern.m.out, pattern.g.out);
    const annotated = await pair.both(['tag', '-n'], 0);
    assert.equal(annotated.m.out, annotated.g.out);
    const json = JSON.parse((await m.ok(['tag', '--json'])).out) as {
      name: string;
      annotated: boolean;
      target: string;
    }[];
    assert.deepEqual(
      json.map((t) => [t.name, t.annotated, t.target]),
      [
        ['v1', false, first],
        ['v2', true, second],
        ['v2.1', true, second],
      ],
    );

    const forced = await pair.both(['tag', '-f', 'v1'], 0);
    assert.match(forced.m.out, /^Updated tag 'v1' \(was [0-9a-f]{7}\)\n$/);
    assert.equal(await refs.read('refs/tags/v1'), second);

    const deleted = await pair.both(['tag', '-d', 'v1', 'nope'], 1);
    assert.match(deleted.m.out, /^Deleted tag 'v1' \(was [0-9a-f]{7}\)\n$/);
    assert.match(deleted.m.stderr, /^error: tag 'nope' not found\.\n$/);
    assert.equal(await refs.read('refs/tags/v1'), undefined);

    // Checking out an annotated tag detaches HEAD at its commit.
    await pair.both(['checkout', '-q', 'v2'], 0);
    assert.deepEqual(await m.head(), { branch: undefined, id: second });
  });
});

describe('rm and mv', () => {
  it('removes files with git’s safety checks', async () => {
    const pair = await Pair.create(newRepo);
    await pair.write(
      new Map([
        ['d/e/f', file('f\n')],
        ['d/g', file('g\n')],
        ['top.txt', file('top\n')],
        ['keep.txt', file('keep\n')],
      ]),
    );
    await pair.both(['add', '-A'], 0);
    await pair.both(['commit', '-q', '-m', 'files'], 0);

    const dir = await pair.both(['rm', 'd'], 128);
    assert.match(dir.m.stderr, /not removing 'd' recursively without -r/);
    await pair.both(['rm', 'nope'], 128);
    await pair.both(['rm', '--ignore-unmatch', 'nope'], 0);

    await pair.writeFile('d/g', 'local\n');
    const local = await pair.both(['rm', 'd/g'], 1);
    assert.match(local.m.stderr, /the following file has local modifications:\n {4}d\/g\n/);
    await pair.both(['add', 'd/g'], 0);
    const staged = await pair.both(['rm', 'd/g'], 1);
    assert.match(
      staged.m.stderr,
      /the following file has changes staged in the index:\n {4}d\/g\n/,
    );
    await pair.both(['rm', '--cached', 'd/g'], 0);
    await pair.both(['add', 'd/g'], 0);
    await pair.writeFile('d/g', 'local again\n');
    const both = await pair.both(['rm', '--cached', 'd/g'], 1);
    assert.match(
      both.m.stderr,
      /staged content different from both the\nfile and the HEAD:\n {4}d\/g\n/,
    );
    await pair.both(['rm', '-q', '-f', 'd/g'], 0);
    await pair.assertSameWorkTrees('rm -f');
    const recursive = await pair.both(['rm', '-r', 'd'], 0);
    assert.equal(recursive.m.out, "rm 'd/e/f'\n");
    await pair.assertSameWorkTrees('rm -r removes the emptied folders');
    await pair.both(['rm', '-q', '--cached', 'top.txt'], 0);
    await pair.assertSameWorkTrees('rm --cached keeps the file');
    await pair.assertSameTracked('rm --cached untracks the file');
    const dryRun = await pair.both(['rm', '-n', 'keep.txt'], 0);
    assert.equal(dryRun.m.out, "rm 'keep.txt'\n");
    await pair.assertSameTracked('rm -n changes nothing');
  });

  it('renames files and folders in the working tree and index', async () => {
    const pair = await Pair.create(newRepo);
    const { m } = pair;
    await pair.write(
      new Map([
        ['keep.txt', file('keep\n')],
        ['other.txt', file('other\n')],
        ['sub/inner.txt', file('inner\n')],
        ['run.sh', file('#!/bin/sh\n', true)],
      ]),
    );
    await pair.both(['add', '-A'], 0);
    await pair.both(['commit', '-q', '-m', 'files'], 0);
    await pair.writeFile('untracked.txt', 'u\n');

    await pair.both(['mv', 'keep.txt', 'kept.txt'], 0);
    await pair.both(['mv', 'nope', 'x'], 128);
    await pair.both(['mv', 'untracked.txt', 'x'], 128);
    await pair.both(['mv', 'kept.txt', 'other.txt'], 128);
    await pair.both(['mv', 'kept.txt', 'missing/dir/x'], 128);
    await pair.both(['mv', 'kept.txt', 'other.txt', 'not-a-dir'], 128);
    await pair.both(['mv', '-f', 'kept.txt', 'other.txt'], 0);
    await pair.both(['mv', 'other.txt', 'run.sh', 'sub'], 0);
    await pair.both(['mv', 'sub', 'moved'], 0);
    await pair.both(['mv', 'moved', 'moved/deeper'], 128);
    await pair.both(['mv', '-k', 'nope', 'untracked.txt', 'moved'], 0);
    await pair.assertSameWorkTrees('after the moves');
    await pair.assertSameTracked('after the moves');
    const status = await m.status();
    assert.deepEqual(status.unstaged, [], 'moved entries still match their files');
    assert.deepEqual(status.untracked, ['untracked.txt']);
  });
});

describe('restore and checkout -- paths', () => {
  it('restores from the index, from HEAD, or from another commit', async () => {
    const pair = await Pair.create(newRepo);
    const { m } = pair;
    await pair.write(
      new Map([
        ['a', file('1\n')],
        ['dir/b', file('b1\n')],
      ]),
    );
    await pair.both(['add', '-A'], 0);
    await pair.both(['commit', '-q', '-m', 'one'], 0);
    await pair.write(
      new Map([
        ['a', file('2\n')],
        ['dir/b', file('b2\n')],
        ['dir/c', file('c2\n')],
      ]),
    );
    await pair.both(['add', '-A'], 0);
    await pair.both(['commit', '-q', '-m', 'two'], 0);
    const porcelain = async (label: string): Promise<void> => {
      assert.equal(
        (await m.ok(['status', '--porcelain'])).out,
        pair.g.run(['status', '--porcelain']).out,
        label,
      );
    };

    await pair.writeFile('a', 'local\n');
    await pair.both(['restore', 'a'], 0);
    assert.equal(await fs.readFile(m.path('a'), 'utf8'), '2\n');
    await pair.writeFile('a', 'staged\n');
    await pair.both(['add', 'a'], 0);
    await pair.both(['restore', '--staged', 'a'], 0);
    await porcelain('restore --staged unstages');
    assert.equal(await fs.readFile(m.path('a'), 'utf8'), 'staged\n');
    await pair.both(['restore', '--staged', '--worktree', 'a'], 0);
    await porcelain('restore --staged --worktree');
    await pair.both(['restore', '--source', 'HEAD~1', 'dir'], 0);
    await pair.assertSameWorkTrees('restore --source removes what the source lacks');
    await porcelain('restore --source leaves the index');
    await pair.both(['restore', 'nope'], 1);
    await pair.both(['restore'], 128);
    await pair.both(['restore', '.'], 0);
    await assertClean(m, 'restore .');

    const fromCommit = await pair.both(['checkout', 'HEAD~1', 'dir'], 0);
    assert.match(fromCommit.m.stderr, /^Updated 1 path from [0-9a-f]{7}\n$/);
    await pair.assertSameWorkTrees('checkout <rev> <paths> keeps what the commit lacks');
    await porcelain('checkout <rev> -- <paths> stages too');
    await pair.writeFile('dir/b', 'scribble\n');
    await pair.both(['checkout', '--', 'dir/b'], 0);
    await porcelain('checkout -- path restores from the index');
    await pair.both(['checkout', '--', 'nope'], 1);
    await pair.both(['checkout', 'HEAD', '--', 'dir'], 0);
    await assertClean(m, 'checkout HEAD -- dir');
  });
});

describe('branch', () => {
  it('lists, creates, deletes and renames like git', async () => {
    const pair = await Pair.create(newRepo);
    const { m } = pair;
    await pair.write(new Map([['a', file('1\n')]]));
    await pair.both(['add', '-A'], 0);
    await pair.both(['commit', '-q', '-m', 'one'], 0);
    await pair.both(['branch', 'merged'], 0);
    await pair.both(['switch', '-q', '-c', 'feature'], 0);
    await pair.write(new Map([['a', file('2\n')]]));
    await pair.both(['commit', '-q', '-a', '-m', 'two'], 0);
    await pair.both(['switch', '-q', 'main'], 0);

    const list = await pair.both(['branch'], 0);
    assert.equal(list.m.out, '  feature\n* main\n  merged\n');
    assert.equal(list.m.out, list.g.out);
    const verbose = await m.ok(['branch', '-v']);
    assert.match(
      verbose.out,
      /^ {2}feature [0-9a-f]{7} two\n\* main {4}[0-9a-f]{7} one\n {2}merged {2}[0-9a-f]{7} one\n$/,
    );
    const json = JSON.parse((await m.ok(['branch', '--json'])).out) as {
      current: string;
      branches: { name: string; current: boolean }[];
    };
    assert.equal(json.current, 'main');
    assert.deepEqual(
      json.branches.map((b) => [b.name, b.current]),
      [
        ['feature', false],
        ['main', true],
        ['merged', false],
      ],
    );
    assert.equal((await pair.both(['branch', '--list', 'f*'], 0)).m.out, '  feature\n');

    await pair.both(['branch', 'feature'], 128);
    await pair.both(['branch', 'new', 'nope'], 128);
    await pair.both(['branch', '-f', 'main', 'feature'], 128);
    await pair.both(['branch', 'bad..name'], 128);
    const unmerged = await pair.both(['branch', '-d', 'feature'], 1);
    assert.match(unmerged.m.stderr, /The branch 'feature' is not fully merged/);
    const current = await pair.both(['branch', '-d', 'main'], 1);
    assert.match(current.m.stderr, /Cannot delete branch 'main' checked out at/);
    await pair.both(['branch', '-d', 'nope'], 1);
    const deleted = await pair.both(['branch', '-d', 'merged'], 0);
    assert.match(deleted.m.out, /^Deleted branch merged \(was [0-9a-f]{7}\)\.\n$/);

    await pair.both(['branch', '-f', 'copy', 'feature'], 0);
    await pair.both(['branch', '-m', 'copy', 'feature'], 128);
    await pair.both(['branch', '-m', 'nope', 'x'], 128);
    await pair.both(['branch', '-m', 'feature', 'topic'], 0);
    assert.equal(
      await lastReflogMessage(m, 'refs/heads/topic'),
      'Branch: renamed refs/heads/feature to refs/heads/topic',
    );
    const topicLog = await fs.readFile(path.join(m.gitDir, 'logs/refs/heads/topic'), 'utf8');
    assert.match(topicLog, /\tbranch: Created from HEAD\n/, 'the reflog moved with the branch');
    await assert.rejects(fs.access(path.join(m.gitDir, 'logs/refs/heads/feature')));
    await pair.both(['branch', '-m', 'trunk'], 0);
    assert.equal((await m.head()).branch, 'refs/heads/trunk');
    assert.equal((await pair.both(['branch', '--show-current'], 0)).m.out, 'trunk\n');
    await pair.both(['branch', '-D', 'topic'], 0);
    await pair.both(['branch', '-D', 'copy'], 0);
    assert.equal((await pair.both(['branch'], 0)).m.out, '* trunk\n');
  });
});

describe('a corrupt object', () => {
  it('makes checkout fail naming the object and leaves the working tree untouched', async () => {
    const m = await newRepo();
    const big = pseudoRandomBytes(6 * MiB, 21);
    await writeTree(
      m.dir,
      new Map([
        ['media/big.bin', file(big)],
        ['small.txt', file('main\n')],
      ]),
    );
    await m.ok(['add', '-A']);
    await m.ok(['commit', '-q', '-m', 'main']);
    await m.ok(['switch', '-q', '-c', 'feature']);
    const edited = Buffer.from(big);
    pseudoRandomBytes(8192, 22).copy(edited, 2 * MiB);
    await writeTree(
      m.dir,
      new Map([
        ['media/big.bin', file(edited)],
        ['small.txt', file('feature\n')],
      ]),
    );
    await m.ok(['commit', '-q', '-a', '-m', 'feature']);
    await m.ok(['switch', '-q', 'main']);
    const mainId = await headId(m);

    const repo = await Repository.discover(m.dir);
    const chunksOf = async (rev: string): Promise<string[]> => {
      const commit = (await new Refs(repo).read(`refs/heads/${rev}`))!;
      const entry = (await flattenCommit(repo.objects, commit)).get('media/big.bin')!;
      return (await readManifest(repo.objects, entry.id)).chunks.map((c) => c.id);
    };
    const mainChunks = new Set(await chunksOf('main'));
    const victim = (await chunksOf('feature')).find((id) => !mainChunks.has(id));
    assert.ok(victim, 'the edit changed at least one chunk');
    const objectFile = repo.objects.pathOf(victim);
    await fs.chmod(objectFile, 0o644);
    const bytes = await fs.readFile(objectFile);
    const at = bytes.length - 100;
    bytes[at] = bytes[at]! ^ 0xff;
    await fs.writeFile(objectFile, bytes);

    const before = await snapshot(m.dir);
    for (const args of [
      ['switch', 'feature'],
      ['checkout', 'feature'],
      ['checkout', 'feature', '--', 'media/big.bin'],
      ['restore', '--source', 'feature', 'media'],
      ['reset', '--hard', 'feature'],
    ]) {
      const result = await m.run(args);
      assert.notEqual(result.code, 0, `${args.join(' ')} must fail`);
      assert.ok(
        result.stderr.includes(victim),
        `${args.join(' ')} names the object: ${result.stderr}`,
      );
      assert.deepEqual(
        await snapshot(m.dir),
        before,
        `${args.join(' ')} left the working tree untouched`,
      );
      assert.deepEqual(await m.head(), { branch: 'refs/heads/main', id: mainId });
      await assertClean(m, args.join(' '));
      const leftovers = (await fs.readdir(path.join(m.gitDir, 'tmp'))).filter((n) =>
        n.startsWith('checkout-'),
      );
      assert.deepEqual(leftovers, [], 'no staging folder left behind');
    }
    assert.deepEqual(await fs.readFile(m.path('media/big.bin')), big);
  });
});
