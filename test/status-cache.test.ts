/**
 * The index's stat cache, seen through `mediagit status --json`: an unchanged
 * tree costs no content reads, a touched-but-unchanged file is hashed once and
 * then trusted again, and a same-size edit that keeps the mtime is still seen,
 * including the "racy" case where the file changed in the same instant the
 * index was written.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import { lstatSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { entryFromStats, StagingIndex } from '../src/repo/index-file.ts';
import { TempRepo } from './helpers.ts';

const FILES = 2000;

let repo: TempRepo;

before(async () => {
  repo = await TempRepo.create();
  for (let d = 0; d < 40; d++) {
    const dir = repo.path(`shots/seq${String(d).padStart(2, '0')}`);
    await fs.mkdir(dir, { recursive: true });
    for (let f = 0; f < FILES / 40; f++) {
      await fs.writeFile(`${dir}/frame ${f}.txt`, `sequence ${d} frame ${f}\n`);
    }
  }
  await repo.ok(['add', '-A']);
  await repo.ok(['commit', '-q', '-m', 'two thousand frames']);
});

after(async () => {
  await repo.cleanup();
});

test(`status on an unchanged tree of ${FILES} files reads no file content`, async () => {
  for (let run = 0; run < 2; run++) {
    const status = await repo.status();
    assert.deepEqual(
      { staged: status.staged, unstaged: status.unstaged, untracked: status.untracked },
      { staged: [], unstaged: [], untracked: [] },
    );
    assert.equal(status.contentReads, 0, `run ${run}`);
    assert.equal(status.branch, 'main');
  }
});

test('a touched but unchanged file is hashed once, shown clean, then trusted again', async () => {
  const file = repo.path('shots/seq07/frame 3.txt');
  const past = new Date(Date.now() - 3600_000);
  await fs.utimes(file, past, past);
  const first = await repo.status();
  assert.deepEqual(first.unstaged, []);
  assert.equal(first.contentReads, 1);
  const second = await repo.status();
  assert.deepEqual(second.unstaged, []);
  assert.equal(second.contentReads, 0, 'the refreshed stat data was not saved');
});

test('a size change is seen without reading the file', async () => {
  const file = repo.path('shots/seq11/frame 0.txt');
  const original = await fs.readFile(file);
  await fs.writeFile(file, 'a longer frame description\n');
  const status = await repo.status();
  assert.deepEqual(status.unstaged, [{ path: 'shots/seq11/frame 0.txt', change: 'modified' }]);
  assert.equal(status.contentReads, 0);
  await fs.writeFile(file, original);
  await repo.ok(['add', 'shots/seq11']);
  assert.deepEqual((await repo.status()).unstaged, []);
});

test('a same-size edit right after add, with the mtime put back, is still seen', async () => {
  // Whole seconds survive utimes exactly, so the mtime put back is bit-identical.
  const file = repo.path('racy.txt');
  const mtime = Math.floor(Date.now() / 1000) - 5;
  await fs.writeFile(file, 'take A\n');
  await fs.utimes(file, mtime, mtime);
  await repo.ok(['add', 'racy.txt']);
  const before = lstatSync(file);
  await fs.writeFile(file, 'take B\n');
  await fs.utimes(file, mtime, mtime);
  const edited = lstatSync(file);
  assert.equal(edited.mtimeMs, before.mtimeMs);
  assert.equal(edited.size, before.size);
  assert.equal(edited.ino, before.ino);
  for (let run = 0; run < 2; run++) {
    const status = await repo.status();
    assert.deepEqual(status.unstaged, [{ path: 'racy.txt', change: 'modified' }], `run ${run}`);
    assert.deepEqual(status.staged, [{ path: 'racy.txt', change: 'added' }]);
  }
});

test('racy git: identical stat data is not trusted when the file is as new as the index', async () => {
  // Reproduces, deterministically, a file edited in the same clock tick as the
  // index was written: the index entry's stat data equals the edited file's,
  // and only the rule "mtime >= index mtime means re-hash" can see the edit.
  const small = await TempRepo.create();
  try {
    const t0 = Math.floor(Date.now() / 1000) - 600;
    const file = small.path('racy.bin');
    await fs.writeFile(file, 'frame-001');
    await fs.writeFile(small.path('other.txt'), 'unchanged');
    for (const p of [file, small.path('other.txt')]) await fs.utimes(p, t0 - 60, t0 - 60);
    await small.ok(['add', '-A']);
    await small.ok(['commit', '-q', '-m', 'one']);

    await fs.writeFile(file, 'frame-002');
    await fs.utimes(file, t0, t0);
    const index = await StagingIndex.load(small.gitDir);
    const old = index.entries.get('racy.bin')!;
    index.entries.set('racy.bin', entryFromStats('racy.bin', old, lstatSync(file)));
    const lock = await StagingIndex.lock(small.gitDir);
    await index.save(lock);
    const indexFile = `${small.gitDir}/index`;

    // Control: with the index written later than the file, the stat cache is
    // trusted and the (forged) entry looks clean, proving the stat data matches.
    await fs.utimes(indexFile, t0 + 10, t0 + 10);
    const trusted = await small.status();
    assert.deepEqual(trusted.unstaged, []);
    assert.equal(trusted.contentReads, 0);

    // Racy: the index is no newer than the file, so the file must be re-hashed.
    await fs.utimes(indexFile, t0, t0);
    for (let run = 0; run < 2; run++) {
      const racy = await small.status();
      assert.deepEqual(racy.unstaged, [{ path: 'racy.bin', change: 'modified' }], `run ${run}`);
      assert.ok(racy.contentReads >= 1);
    }
  } finally {
    await small.cleanup();
  }
});
