/**
 * Sparse checkout, side by side with `git sparse-checkout`: the same
 * sequence (set, edit, add, commit, switch, stash, a merge with a conflict
 * outside the sparse set, rebase, add, disable) runs in a MediaGit
 * repository and a Git twin, and after each step the working trees, the
 * tracked paths and `status --porcelain` must agree. Then a sparse clone
 * of a MediaGit repository pushes its work, and a full clone elsewhere
 * sees exactly the expected files.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { commitAll, Pair, repoMaker, snapshot, trackedPaths } from './git-twin.ts';
import { TempRepo } from './helpers.ts';
import { Repository } from '../src/repo/repository.ts';
import { flattenCommit } from '../src/repo/tree-ops.ts';
import { resolveCommit } from '../src/repo/revision.ts';

const newRepo = repoMaker();

const START = new Map([
  ['top.txt', 'top\n'],
  ['levels/l.txt', 'levels\n'],
  ['levels/07/a.txt', 'one\ntwo\nthree\n'],
  ['levels/07/sub/b.txt', 'b\n'],
  ['levels/08/c.txt', 'c\n'],
  ['docs/d.txt', 'first\nsecond\nthird\n'],
  ['docs/e.txt', 'e\n'],
]);

/** The working tree of a clone of START with the cone `levels/07`. */
const CONE_07_TREE = [
  'levels',
  'levels/07',
  'levels/07/a.txt',
  'levels/07/sub',
  'levels/07/sub/b.txt',
  'levels/l.txt',
  'top.txt',
];

async function writeStart(pair: Pair): Promise<void> {
  for (const [p, content] of START) await pair.writeFile(p, content);
}

/** Working trees, tracked paths and `status --porcelain` agree. */
async function same(pair: Pair, label: string): Promise<void> {
  await pair.assertSameWorkTrees(`${label}: working trees`);
  // Git lists a conflicted path once per stage.
  const gitTracked = [...new Set(pair.g.tracked())];
  assert.deepEqual(await trackedPaths(pair.m), gitTracked, `${label}: tracked paths`);
  const { m, g } = await pair.both(['status', '--porcelain'], 0);
  assert.equal(m.out, g.out, `${label}: status --porcelain`);
}

test('sparse checkout matches git sparse-checkout step by step', async () => {
  const pair = await Pair.create(newRepo);
  await writeStart(pair);
  await commitAll(pair, 'start');
  // feature changes a file outside the sparse set, one inside, and adds one outside.
  await pair.both(['switch', '-q', '-c', 'feature'], 0);
  await pair.writeFile('docs/d.txt', 'first\nsecond (feature)\nthird\n');
  await pair.writeFile('levels/07/a.txt', 'one\ntwo\nthree\nfour\n');
  await pair.writeFile('docs/new.txt', 'new\n');
  await commitAll(pair, 'feature work');
  await pair.both(['switch', '-q', 'main'], 0);
  await pair.writeFile('docs/d.txt', 'first\nsecond (main)\nthird\n');
  await commitAll(pair, 'main edits docs');

  await pair.both(['sparse-checkout', 'set', 'levels/07'], 0);
  await same(pair, 'set levels/07');
  assert.equal(await exists(pair.m.path('docs/d.txt')), false, 'docs/ is not checked out');
  assert.equal(await exists(pair.m.path('levels/08/c.txt')), false, 'levels/08 is not checked out');
  assert.equal(await exists(pair.m.path('levels/l.txt')), true, 'files of parent folders stay');
  const list = await pair.both(['sparse-checkout', 'list'], 0);
  assert.equal(list.m.out, list.g.out, 'sparse-checkout list');
  const long = await pair.both(['status'], 0);
  assert.equal(
    long.m.out.split('\n')[1],
    'You are in a sparse checkout with 58% of tracked files present.',
  );
  assert.equal(long.m.out.split('\n')[1], long.g.out.split('\n')[1]);
  // rm outside the patterns needs --sparse too.
  const rmOutside = await pair.both(['rm', '-q', 'levels/08/c.txt'], 1);
  assert.match(rmOutside.m.stderr, /outside of your sparse-checkout definition/);
  await same(pair, 'rm outside refused');

  // Edit, add, commit inside the sparse set: files outside are not deletions.
  await pair.writeFile('levels/07/a.txt', 'zero\none\ntwo\nthree\n');
  await pair.both(['add', 'levels/07/a.txt'], 0);
  await same(pair, 'add inside');
  await pair.both(['commit', '-q', '-m', 'edit level 7'], 0);
  await same(pair, 'commit');
  const stat = await pair.both(['diff', '--name-status', 'HEAD~1', 'HEAD'], 0);
  assert.equal(stat.m.out, 'M\tlevels/07/a.txt\n', 'the commit changes only the edited file');
  assert.equal(stat.m.out, stat.g.out);
  const all = await pair.both(['commit', '-q', '-a', '-m', 'nothing'], 1);
  assert.match(all.m.out + all.m.stderr, /nothing to commit/);

  // Switch away and back: only sparse paths are written.
  await pair.both(['switch', '-q', 'feature'], 0);
  await same(pair, 'switch feature');
  await pair.both(['switch', '-q', 'main'], 0);
  await same(pair, 'switch back');

  // Stash a change and bring it back.
  await pair.writeFile('levels/07/sub/b.txt', 'b changed\n');
  await pair.both(['stash', '-q'], 0);
  await same(pair, 'stash');
  await pair.both(['stash', 'pop', '-q'], 0);
  await same(pair, 'stash pop');
  await pair.both(['commit', '-q', '-a', '-m', 'b changed'], 0);

  // Merge: a conflict outside the sparse set (docs/d.txt) and one inside.
  await pair.both(['merge', '-q', 'feature'], 1);
  await same(pair, 'merge stopped on conflicts');
  assert.match(await fs.readFile(pair.m.path('docs/d.txt'), 'utf8'), /<<<<<<< HEAD/);
  await pair.writeFile('docs/d.txt', 'first\nsecond (both)\nthird\n');
  await pair.writeFile('levels/07/a.txt', 'zero\none\ntwo\nthree\nfour\n');
  // Git wants --sparse for a path outside the patterns, even a conflicted one.
  await pair.both(['add', 'docs/d.txt', 'levels/07/a.txt'], 1);
  await pair.both(['add', '--sparse', 'docs/d.txt'], 0);
  await pair.both(['commit', '-q', '-m', 'merge feature'], 0);
  await same(pair, 'merge committed');
  // Adding a new file outside the patterns is refused (exit 1), as in Git.
  await pair.writeFile('levels/08/new.txt', 'outside\n');
  const refused = await pair.both(['add', 'levels/08/new.txt'], 1);
  assert.match(refused.m.stderr, /outside of your sparse-checkout definition/);
  await pair.both(['add', '--sparse', 'levels/08/new.txt'], 0);
  await pair.both(['commit', '-q', '-m', 'add outside with --sparse'], 0);
  await same(pair, 'add --sparse');
  // reapply: clean files outside the patterns go (new.txt and the merged docs/d.txt).
  await pair.both(['sparse-checkout', 'reapply'], 0);
  await same(pair, 'reapply');

  // Rebase a topic branch onto main.
  await pair.both(['switch', '-q', '-c', 'topic', 'HEAD~1'], 0);
  await pair.writeFile('levels/07/sub/b.txt', 'b on topic\n');
  await pair.both(['commit', '-q', '-a', '-m', 'topic edit'], 0);
  await pair.both(['rebase', '-q', 'main'], 0);
  await same(pair, 'rebase');
  await pair.both(['switch', '-q', 'main'], 0);
  await pair.both(['merge', '-q', 'topic'], 0);
  await same(pair, 'fast-forward');

  // Widen, then back to the whole tree: every file comes back, nothing was lost.
  await pair.both(['sparse-checkout', 'add', 'docs'], 0);
  await same(pair, 'add docs');
  const widened = await pair.both(['sparse-checkout', 'list'], 0);
  assert.equal(widened.m.out, 'docs\nlevels/07\n');
  assert.equal(widened.m.out, widened.g.out);
  await pair.both(['sparse-checkout', 'disable'], 0);
  await same(pair, 'disable');
  const files = await snapshot(pair.m.dir);
  for (const p of [...START.keys(), 'docs/new.txt', 'levels/08/new.txt']) {
    assert.ok(files[p]?.startsWith('file'), `${p} is back after disable`);
  }
  assert.equal(
    await fs.readFile(pair.m.path('docs/d.txt'), 'utf8'),
    'first\nsecond (both)\nthird\n',
  );
  const listOff = await pair.both(['sparse-checkout', 'list'], 128);
  assert.match(listOff.m.stderr, /not sparse/);
});

test('a modified file outside new patterns is kept and named; a hostile pattern is refused', async () => {
  const pair = await Pair.create(newRepo);
  await writeStart(pair);
  await commitAll(pair, 'start');
  await pair.writeFile('docs/e.txt', 'changed\n');
  const set = await pair.both(['sparse-checkout', 'set', 'levels/07'], 0);
  assert.match(
    set.m.stderr,
    /not up to date and were left despite sparse patterns:\n\tdocs\/e.txt/,
  );
  await same(pair, 'modified file kept');
  assert.equal(await fs.readFile(pair.m.path('docs/e.txt'), 'utf8'), 'changed\n');
  // Cone mode takes folders, not patterns; and never a path out of the tree.
  const glob = await pair.m.fails(['sparse-checkout', 'set', 'levels/*'], 128);
  assert.match(glob.stderr, /specify directories rather than patterns/);
  await pair.m.fails(['sparse-checkout', 'set', '../outside'], 128);
  assert.equal((await pair.m.ok(['sparse-checkout', 'list'])).out, 'levels/07\n');
  // Pattern mode (--no-cone), gitignore syntax.
  await pair.both(['checkout', '-q', '--', 'docs/e.txt'], 0);
  await pair.both(['sparse-checkout', 'set', '--no-cone', '*.txt', '!docs/'], 0);
  await same(pair, 'no-cone patterns');
});

test('clone --sparse, widen, edit, commit and push; a full clone sees the expected tree', async () => {
  const { origin, startTree } = await startedOrigin();
  await origin.ok(['switch', '-q', '-c', 'side']);
  await fs.writeFile(origin.path('docs/d.txt'), 'first\nsecond (side)\nthird\n');
  await origin.ok(['commit', '-q', '-a', '-m', 'side edits docs']);
  await origin.ok(['switch', '-q', 'main']);

  const work = await TempRepo.create({ init: false });
  try {
    const { bare, sparseDir, cd } = await sparseCloneOf(work, origin);
    // Only the files at the top after clone --sparse, and only their content
    // in its store: the others' blobs and manifests stay on the remote.
    assert.deepEqual(Object.keys(await snapshot(sparseDir)).sort(), ['top.txt']);
    assert.deepEqual(await storedFiles(cd), ['top.txt']);
    // With the remote gone, maintenance counts them as promised, not missing.
    await fs.rename(bare, `${bare}.away`);
    const fsck = JSON.parse((await cd.ok(['fsck', '--json'])).out) as {
      ok: boolean;
      stats: { promised?: number };
    };
    assert.equal(fsck.ok, true);
    // Every file but top.txt, and the side branch's version of docs/d.txt.
    assert.equal(fsck.stats.promised, startTree.size - 1 + 1);
    const stats = JSON.parse((await cd.ok(['stats', '--json'])).out) as {
      missingObjects: number;
      promisedObjects?: number;
    };
    assert.equal(stats.missingObjects, 0);
    assert.equal(stats.promisedObjects, fsck.stats.promised);
    await cd.ok(['gc', '-q']);
    // Index entries rebuilt for files outside the patterns need nothing absent.
    await cd.ok(['reset', '-q']);
    await cd.ok(['restore', '--staged', 'docs']);
    assert.equal((await cd.ok(['status', '--porcelain'])).out, '');
    await fs.rename(`${bare}.away`, bare);
    await cd.ok(['sparse-checkout', 'set', 'levels/07']);
    assert.deepEqual(await storedFiles(cd), [
      'levels/07/a.txt',
      'levels/07/sub/b.txt',
      'levels/l.txt',
      'top.txt',
    ]);
    assert.deepEqual(Object.keys(await snapshot(sparseDir)).sort(), CONE_07_TREE);
    await fs.writeFile(path.join(sparseDir, 'levels/07/a.txt'), 'edited in the sparse clone\n');
    await fs.writeFile(path.join(sparseDir, 'levels/07/new.bin'), 'new\n');
    await cd.ok(['add', 'levels/07']);
    await cd.ok(['commit', '-q', '-m', 'sparse edit']);
    // A merge whose other side changed a file outside the sparse set.
    await cd.ok(['merge', '-q', '--no-edit', 'origin/side']);
    assert.equal(await exists(path.join(sparseDir, 'docs/d.txt')), false);
    assert.equal((await cd.ok(['status', '--porcelain'])).out, '');
    await cd.ok(['push', '-q', 'origin', 'main']);

    const fullDir = path.join(work.root, 'full');
    await work.ok(['clone', '-q', bare, fullDir]);
    const expected: Record<string, string> = Object.fromEntries(startTree);
    expected['levels/07/a.txt'] = 'edited in the sparse clone\n';
    expected['levels/07/new.bin'] = 'new\n';
    expected['docs/d.txt'] = 'first\nsecond (side)\nthird\n';
    const got: Record<string, string> = {};
    for (const [p, kind] of Object.entries(await snapshot(fullDir))) {
      if (kind.startsWith('file')) got[p] = await fs.readFile(path.join(fullDir, p), 'utf8');
    }
    assert.deepEqual(got, expected);
  } finally {
    await work.cleanup();
  }
});

test('clone --sparse keeps each folder outside the cone as one index entry; every command still sees every file', async () => {
  const { origin, startTree } = await startedOrigin();
  const work = await TempRepo.create({ init: false });
  try {
    const { bare, sparseDir, cd } = await sparseCloneOf(work, origin);
    const fullDir = path.join(work.root, 'full');
    await work.ok(['clone', '-q', bare, fullDir]);
    const full = repoAt(work, fullDir);
    /** The index file's version and entry count, and what commands make of it. */
    const check = async (label: string, version: number, entries: number): Promise<void> => {
      const data = await fs.readFile(path.join(sparseDir, '.mediagit', 'index'));
      assert.deepEqual([data.readUInt32LE(4), data.readUInt32LE(8)], [version, entries], label);
      // Every file, with the same mode and object as a full clone's index.
      const lsFiles = async (repo: TempRepo): Promise<string> =>
        (await repo.ok(['ls-files', '-s'])).out;
      assert.equal(await lsFiles(cd), await lsFiles(full), `${label}: ls-files -s`);
      assert.equal((await cd.ok(['status', '--porcelain'])).out, '', `${label}: status`);
    };
    // top.txt, levels/ and docs/.
    await check('after clone --sparse', 2, 3);
    await cd.ok(['sparse-checkout', 'set', 'levels/07']);
    // levels/l.txt and the two files of levels/07 come in; levels/08/ and docs/ stay whole.
    await check('after set levels/07', 2, 6);
    assert.deepEqual(Object.keys(await snapshot(sparseDir)).sort(), CONE_07_TREE);
    // A commit inside the cone leaves the folders outside it whole.
    await fs.writeFile(path.join(sparseDir, 'levels/07/a.txt'), 'edited\n');
    await cd.ok(['commit', '-q', '-a', '-m', 'edit inside']);
    await cd.ok(['push', '-q', 'origin', 'main']);
    await full.ok(['pull', '-q']);
    await check('after a commit', 2, 6);
    await cd.ok(['sparse-checkout', 'add', 'docs']);
    await check('after add docs', 2, 7);
    assert.equal(await fs.readFile(path.join(sparseDir, 'docs/e.txt'), 'utf8'), 'e\n');
    await cd.ok(['sparse-checkout', 'disable']);
    await check('after disable', 1, startTree.size);
    assert.equal(await fs.readFile(path.join(sparseDir, 'levels/08/c.txt'), 'utf8'), 'c\n');
  } finally {
    await work.cleanup();
  }
});

/** A repository with START and levels/08/c.txt committed on main. */
async function startedOrigin(): Promise<{ origin: TempRepo; startTree: Map<string, string> }> {
  const origin = await newRepo();
  const startTree = new Map([...START, ['levels/08/c.txt', 'c\n']]);
  for (const [p, content] of startTree) {
    await fs.mkdir(path.dirname(origin.path(p)), { recursive: true });
    await fs.writeFile(origin.path(p), content);
  }
  await origin.ok(['add', '-A']);
  await origin.ok(['commit', '-q', '-m', 'start']);
  return { origin, startTree };
}

/** A bare clone of `origin` in `work`'s root, and a `clone --sparse` of that. */
async function sparseCloneOf(
  work: TempRepo,
  origin: TempRepo,
): Promise<{ bare: string; sparseDir: string; cd: TempRepo }> {
  const bare = path.join(work.root, 'shared.mediagit');
  await work.ok(['clone', '-q', '--bare', origin.dir, bare]);
  const sparseDir = path.join(work.root, 'sparse');
  await work.ok(['clone', '-q', '--sparse', bare, sparseDir]);
  return { bare, sparseDir, cd: repoAt(work, sparseDir) };
}

/** The files of HEAD whose content (blob or manifest) is in the repository's own store. */
async function storedFiles(repo: TempRepo): Promise<string[]> {
  const opened = await Repository.discover(repo.dir);
  const files = await flattenCommit(opened.objects, await resolveCommit(opened, 'HEAD'));
  const stored: string[] = [];
  // `open`, not `has`: `has` registers this process as a writer, and gc waits for writers.
  for (const [p, file] of files) {
    const handle = await opened.objects.open(file.id).catch(() => undefined);
    await handle?.close();
    if (handle) stored.push(p);
  }
  return stored.sort();
}

/** `work`'s environment, run in another folder. */
function repoAt(work: TempRepo, dir: string): TempRepo {
  return Object.assign(Object.create(TempRepo.prototype) as TempRepo, {
    root: work.root,
    dir,
    env: work.env,
  });
}

async function exists(p: string): Promise<boolean> {
  return fs.lstat(p).then(
    () => true,
    () => false,
  );
}
