import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import { lstatSync, type Stats } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { MediaGitError } from '../errors.ts';
import { sha256Hex } from '../odb/object-id.ts';
import {
  entryFromStats,
  modeFromStats,
  StagingIndex,
  statMatches,
  type IndexEntry,
} from './index-file.ts';
import { computeTreeId } from './tree-ops.ts';

let root: string;

before(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'mediagit-index-'));
});

after(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

async function gitDir(): Promise<string> {
  return fs.mkdtemp(path.join(root, 'git-'));
}

function entry(p: string, overrides: Partial<IndexEntry> = {}): IndexEntry {
  const id = sha256Hex(Buffer.from(p));
  return {
    path: p,
    mode: '100644',
    kind: 'blob',
    id,
    sha256: id,
    size: 12,
    mtimeMs: 1_700_000_000_123.456,
    ctimeMs: 1_700_000_000_789.25,
    ino: 424242,
    dev: 2049,
    ...overrides,
  };
}

const ENTRIES: IndexEntry[] = [
  entry('README.md'),
  entry('bin/render.sh', { mode: '100755' }),
  entry('current', { mode: '120000', size: 9 }),
  entry('footage/day 1/A001_C002.mov', {
    kind: 'manifest',
    id: sha256Hex(Buffer.from('manifest')),
    sha256: sha256Hex(Buffer.from('whole file')),
    size: 7_000_000_123,
    ino: 2 ** 40 + 3,
  }),
  entry('m\u00fasica/caf\u00e9 \u{1F3B5}.wav'),
  entry('empty', { size: 0 }),
];

async function saveEntries(dir: string, entries: readonly IndexEntry[]): Promise<void> {
  const index = new StagingIndex(dir);
  for (const e of entries) index.entries.set(e.path, e);
  const lock = await StagingIndex.lock(dir);
  try {
    await index.save(lock);
  } finally {
    await lock.release();
  }
}

test('the index round-trips every field, for every mode and kind', async () => {
  const dir = await gitDir();
  await saveEntries(dir, [...ENTRIES].reverse());
  const loaded = await StagingIndex.load(dir);
  assert.deepEqual(
    [...loaded.entries.values()].sort((a, b) => (a.path < b.path ? -1 : 1)),
    [...ENTRIES].sort((a, b) => (a.path < b.path ? -1 : 1)),
  );
  assert.deepEqual(loaded.sortedPaths(), [
    'README.md',
    'bin/render.sh',
    'current',
    'empty',
    'footage/day 1/A001_C002.mov',
    'm\u00fasica/caf\u00e9 \u{1F3B5}.wav',
  ]);
  assert.equal(loaded.fileMtimeMs, (await fs.stat(path.join(dir, 'index'))).mtimeMs);
  // The cached root tree ID always describes the entries saved with it.
  assert.equal(loaded.treeId, computeTreeId(ENTRIES));
  // Encoding is canonical: the same entries in any order give the same bytes.
  assert.deepEqual(loaded.encode(), await fs.readFile(path.join(dir, 'index')));
  assert.deepEqual(await fs.readdir(dir), ['index'], 'the lock file is gone');
});

test('a missing index is empty', async () => {
  const loaded = await StagingIndex.load(await gitDir());
  assert.equal(loaded.entries.size, 0);
  assert.equal(loaded.fileMtimeMs, 0);
});

test('a damaged index is INDEX_CORRUPT, never silently wrong', async () => {
  const dir = await gitDir();
  await saveEntries(dir, ENTRIES);
  const file = path.join(dir, 'index');
  const original = await fs.readFile(file);
  for (let position = 0; position < original.length; position += 7) {
    const damaged = Buffer.from(original);
    damaged[position]! ^= 0x01;
    await fs.writeFile(file, damaged);
    await assert.rejects(StagingIndex.load(dir), { code: 'INDEX_CORRUPT' }, `byte ${position}`);
  }
  for (const length of [0, 10, 43, original.length - 1]) {
    await fs.writeFile(file, original.subarray(0, length));
    await assert.rejects(StagingIndex.load(dir), { code: 'INDEX_CORRUPT' }, `cut at ${length}`);
  }
});

test('the index lock is exclusive and its error says what to do', async () => {
  const dir = await gitDir();
  const lock = await StagingIndex.lock(dir);
  await assert.rejects(StagingIndex.lock(dir), (error: unknown) => {
    assert.ok(error instanceof MediaGitError);
    assert.equal(error.code, 'INDEX_LOCKED');
    assert.ok(error.message.includes(path.join(dir, 'index.lock')), error.message);
    assert.match(error.message, /remove the file/);
    return true;
  });
  await lock.release();
  const again = await StagingIndex.lock(dir);
  await again.release();
  assert.deepEqual(await fs.readdir(dir), []);
});

test('statMatches trusts only identical stat data older than the index', async () => {
  const dir = await gitDir();
  const file = path.join(dir, 'clip.wav');
  await fs.writeFile(file, 'twelve bytes');
  const stats = lstatSync(file);
  const id = sha256Hex(Buffer.from('twelve bytes'));
  const recorded = entryFromStats('clip.wav', { kind: 'blob', id, sha256: id }, stats);
  const later = stats.mtimeMs + 1000;
  assert.equal(statMatches(recorded, stats, later), true);
  // Racy: changed in the same instant the index was written, or after.
  assert.equal(statMatches(recorded, stats, stats.mtimeMs), false);
  assert.equal(statMatches(recorded, stats, stats.mtimeMs - 1), false);
  const changed: [string, Partial<IndexEntry>][] = [
    ['size', { size: recorded.size + 1 }],
    ['mtime', { mtimeMs: recorded.mtimeMs - 1 }],
    ['ctime', { ctimeMs: recorded.ctimeMs - 1 }],
    ['inode', { ino: recorded.ino + 1 }],
    ['device', { dev: recorded.dev + 1 }],
    ['mode', { mode: '100755' }],
  ];
  for (const [what, change] of changed) {
    assert.equal(statMatches({ ...recorded, ...change }, stats, later), false, what);
  }
});

test('modeFromStats: regular, executable and symlink', async () => {
  const dir = await gitDir();
  const plain = path.join(dir, 'plain');
  const exec = path.join(dir, 'exec');
  const link = path.join(dir, 'link');
  await fs.writeFile(plain, '');
  await fs.writeFile(exec, '');
  await fs.chmod(plain, 0o644);
  await fs.chmod(exec, 0o755);
  await fs.symlink('plain', link);
  const mode = (p: string): string => modeFromStats(lstatSync(p) as Stats);
  assert.equal(mode(plain), '100644');
  assert.equal(mode(exec), '100755');
  assert.equal(mode(link), '120000');
});
