/**
 * End-to-end tests of `repack` with the real CLI: objects move from loose
 * files into packs, and every verb that reads objects keeps working from
 * them, byte for byte.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import type { ObjectId } from '../src/odb/object-id.ts';
import {
  assertWorkTreeEquals,
  collect,
  describeCommitFiles,
  expectedCommitFiles,
  pseudoRandomBytes,
  readCommitFiles,
  objectFolders,
  objectsLayout,
  replaceTree,
  sha256,
  TempRepo,
  textBytes,
  type TreeItem,
} from './helpers.ts';

const KiB = 1024;
const MiB = 1024 * KiB;

interface RepackJson {
  pack: string | null;
  objects: number;
  bytes: number;
  looseRemoved: number;
  packsRemoved: number;
}

function file(content: Uint8Array | string, executable = false): TreeItem {
  return {
    type: 'file',
    content: typeof content === 'string' ? Buffer.from(content) : content,
    executable,
  };
}

async function repackJson(repo: TempRepo, args: readonly string[]): Promise<RepackJson> {
  return JSON.parse((await repo.ok(['repack', ...args, '--json'])).out) as RepackJson;
}

async function commitTree(
  repo: TempRepo,
  tree: Map<string, TreeItem>,
  message: string,
): Promise<ObjectId> {
  await replaceTree(repo.dir, tree);
  await repo.ok(['add', '-A']);
  await repo.ok(['commit', '-q', '-m', message]);
  return (await repo.head()).id!;
}

/**
 * Every file of every commit reads back exactly, through the library and
 * through `mediagit show <short rev>:<path>` (short IDs resolve in packs too).
 */
async function assertHistory(
  repo: TempRepo,
  commits: ReadonlyMap<ObjectId, Map<string, TreeItem>>,
  label: string,
  showPath: (repoPath: string) => boolean = () => true,
): Promise<void> {
  for (const [id, tree] of commits) {
    const expected = expectedCommitFiles(tree);
    assert.deepEqual(
      describeCommitFiles(await readCommitFiles(repo.dir, id)),
      expected,
      `${label}: ${id}`,
    );
    for (const [p, line] of Object.entries(expected)) {
      if (tree.get(p)?.type !== 'file' || !showPath(p)) continue;
      const shown = await repo.ok(['show', `${id.slice(0, 10)}:${p}`]);
      assert.equal(sha256(shown.stdout), line.split(' ')[1], `${label}: show ${id}:${p}`);
    }
  }
}

test('repack -a -d moves every object into one pack; every verb reads from it; repacking merges', async () => {
  const repo = await TempRepo.create({ chunkThreshold: 256 * KiB });
  try {
    const commits = new Map<ObjectId, Map<string, TreeItem>>();
    const big = pseudoRandomBytes(3 * MiB, 1);
    const v1 = new Map<string, TreeItem>([
      ['media/big.bin', file(big)],
      ['notes/script.txt', file(textBytes(20_000, 1))],
      ['tools/render.sh', file('#!/bin/sh\necho render\n', true)],
      ['empty', file('')],
      ['current', { type: 'symlink', target: 'media/big.bin' }],
    ]);
    const first = await commitTree(repo, v1, 'first');
    commits.set(first, v1);
    const edited = Buffer.from(big);
    pseudoRandomBytes(8 * KiB, 2).copy(edited, MiB + 5);
    const v2 = new Map(v1);
    v2.set('media/big.bin', file(edited));
    v2.set('notes/script.txt', file(textBytes(20_500, 2)));
    v2.set('notes/new.txt', file('a new note\n'));
    const second = await commitTree(repo, v2, 'second');
    commits.set(second, v2);
    await repo.ok(['branch', 'feature', first]);

    const before = await objectsLayout(repo.gitDir);
    let looseBytes = 0;
    for await (const entry of await fs.opendir(path.join(repo.gitDir, 'objects'), {
      recursive: true,
    })) {
      if (entry.isFile())
        looseBytes += (await fs.stat(path.join(entry.parentPath, entry.name))).size;
    }
    assert.ok(before.loose > 10, `${before.loose} loose objects`);
    assert.deepEqual(before.pack, []);
    const result = await repackJson(repo, ['-a', '-d']);
    assert.equal(result.objects, before.loose);
    assert.equal(result.looseRemoved, before.loose);
    assert.equal(result.packsRemoved, 0);
    assert.deepEqual(await objectFolders(repo.gitDir), ['pack']);
    assert.deepEqual((await objectsLayout(repo.gitDir)).pack, [
      `pack-${result.pack}.idx`,
      `pack-${result.pack}.pack`,
    ]);
    // Records are the loose files byte for byte: the pack adds only its header and trailer.
    const packFile = path.join(repo.gitDir, 'objects/pack', `pack-${result.pack}.pack`);
    assert.equal((await fs.stat(packFile)).size, looseBytes + 16 + 32);
    assert.deepEqual(await repackJson(repo, ['-a', '-d']), {
      pack: null,
      objects: 0,
      bytes: 0,
      looseRemoved: 0,
      packsRemoved: 0,
    });
    assert.equal((await repo.ok(['repack', '-a', '-d'])).out, 'Nothing new to pack.\n');

    // Every read verb, from the pack alone.
    const status = await repo.status();
    assert.deepEqual([status.staged, status.unstaged, status.untracked], [[], [], []]);
    assert.match((await repo.ok(['log', '--oneline'])).out, /second\n.*first\n$/);
    assert.match((await repo.ok(['show', '--stat', 'HEAD'])).out, /media\/big\.bin/);
    assert.match((await repo.ok(['diff', 'HEAD~1', 'HEAD', '--stat'])).out, /notes\/new\.txt/);
    await assertHistory(repo, commits, 'after repack -a -d');
    await fs.rm(repo.path('media/big.bin'));
    await repo.ok(['checkout', 'HEAD', '--', 'media/big.bin']);
    await assertWorkTreeEquals(repo.dir, v2, 'checkout of a packed chunked file');
    await repo.ok(['checkout', first, '--', 'media/big.bin']);
    assert.deepEqual(await fs.readFile(repo.path('media/big.bin')), big);
    await repo.ok(['checkout', 'HEAD', '--', 'media/big.bin']);
    await repo.ok(['switch', '-q', 'feature']);
    await assertWorkTreeEquals(repo.dir, v1, 'switch to feature');
    await repo.ok(['switch', '-q', 'main']);
    await assertWorkTreeEquals(repo.dir, v2, 'switch back to main');

    // New commits are loose again; a plain repack packs only them, beside the first pack.
    const v3 = new Map(v2);
    v3.set('media/other.bin', file(pseudoRandomBytes(600 * KiB, 3)));
    v3.delete('notes/new.txt');
    const third = await commitTree(repo, v3, 'third');
    commits.set(third, v3);
    const loose3 = (await objectsLayout(repo.gitDir)).loose;
    assert.ok(loose3 > 0);
    const incremental = await repackJson(repo, ['-d']);
    assert.equal(incremental.objects, loose3);
    assert.equal(incremental.looseRemoved, loose3);
    assert.equal((await objectsLayout(repo.gitDir)).pack.length, 4);
    assert.deepEqual(await objectFolders(repo.gitDir), ['pack']);
    await assertHistory(repo, commits, 'after an incremental repack');

    // More loose objects, then -a -d merges both packs and them into one.
    const v4 = new Map(v3);
    v4.set('notes/script.txt', file(textBytes(21_000, 4)));
    v4.set('tools/render.sh', file('#!/bin/sh\necho render 4\n', false));
    const fourth = await commitTree(repo, v4, 'fourth');
    commits.set(fourth, v4);
    const loose4 = (await objectsLayout(repo.gitDir)).loose;
    const human = await repo.ok(['repack', '-a', '-d']);
    assert.match(
      human.out,
      new RegExp(
        `^Packed \\d+ objects \\([\\d.]+ MiB\\) into pack-[0-9a-f]{64}\\.pack\\nRemoved ${loose4} loose objects? and 2 packs\\n$`,
      ),
    );
    const layout = await objectsLayout(repo.gitDir);
    assert.equal(layout.loose, 0);
    assert.equal(layout.pack.length, 2);
    assert.deepEqual(await objectFolders(repo.gitDir), ['pack']);
    assert.deepEqual(await fs.readdir(path.join(repo.gitDir, 'tmp')), []);
    await assertHistory(repo, commits, 'after merging packs');
    await repo.ok(['switch', '-q', 'feature']);
    await assertWorkTreeEquals(repo.dir, v1, 'switch to feature after the merge');
    await repo.ok(['switch', '-q', 'main']);
    await assertWorkTreeEquals(repo.dir, v4, 'switch back after the merge');
    assert.equal((await repo.ok(['repack', '-q', '-a', '-d'])).out, '');
  } finally {
    await repo.cleanup();
  }
});

test('repack while commits land and another repack runs loses no object', async () => {
  const repo = await TempRepo.create({ chunkThreshold: 256 * KiB });
  try {
    const commits = new Map<ObjectId, Map<string, TreeItem>>();
    const tree = new Map<string, TreeItem>();
    for (let i = 0; i < 40; i++) tree.set(`files/f${i}.txt`, file(`file ${i}\n`));
    tree.set('media/big.bin', file(pseudoRandomBytes(4 * MiB, 10)));
    commits.set(await commitTree(repo, tree, 'base'), new Map(tree));
    for (let round = 0; round < 3; round++) {
      const repacks = [
        collect(repo.spawn(['repack', '-a', '-d', '-q'])),
        collect(repo.spawn(['repack', '-d', '-q'])),
      ];
      for (let i = 0; i < 3; i++) {
        tree.set(`round${round}/f${i}.txt`, file(`round ${round} file ${i}\n`));
        tree.set('media/big.bin', file(pseudoRandomBytes(2 * MiB, 100 + round * 10 + i)));
        commits.set(await commitTree(repo, tree, `round ${round} ${i}`), new Map(tree));
      }
      for (const result of await Promise.all(repacks)) {
        // A repack whose new pack another one merged first stops before deleting anything.
        const superseded = result.code === 1 && /concurrent repack/.test(result.stderr);
        assert.ok(result.code === 0 || superseded, result.stderr);
      }
    }
    await repo.ok(['repack', '-a', '-d', '-q']);
    assert.equal((await objectsLayout(repo.gitDir)).loose, 0);
    // `show` is a process per file: the library reads every file, show the big one.
    await assertHistory(repo, commits, 'after concurrent repacks', (p) => p === 'media/big.bin');
  } finally {
    await repo.cleanup();
  }
});
