import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import { lstatSync, type Stats } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { MediaGitError } from '../errors.ts';
import { sha256Hex } from '../odb/object-id.ts';
import { decodeTree, encodeTree, type TreeEntry } from '../odb/tree.ts';
import {
  entryFromStats,
  modeFromStats,
  registerTreeReader,
  StagingIndex,
  statMatches,
  UNKNOWN_SHA256,
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

async function saveIndex(index: StagingIndex, dir: string): Promise<Buffer> {
  const lock = await StagingIndex.lock(dir);
  try {
    await index.save(lock);
  } finally {
    await lock.release();
  }
  return fs.readFile(path.join(dir, 'index'));
}

test('a save rebuilds the tree ID only when a path, mode, kind or object changed', async () => {
  const dir = await gitDir();
  await saveEntries(dir, ENTRIES);
  const checks: [string, (index: StagingIndex) => void][] = [
    ['stat data only', (index) => index.entries.set('empty', entry('empty', { size: 0, ino: 7 }))],
    ['a new object', (index) => index.entries.set('empty', entry('empty', { id: 'e'.repeat(64) }))],
    ['a new mode', (index) => index.entries.set('empty', entry('empty', { mode: '100755' }))],
    ['a new path', (index) => index.entries.set('new', entry('new'))],
    ['a path gone', (index) => index.entries.delete('new')],
    ['everything gone', (index) => index.entries.clear()],
  ];
  for (const [what, change] of checks) {
    const index = await StagingIndex.load(dir);
    const before = index.treeId;
    change(index);
    await saveIndex(index, dir);
    const loaded = await StagingIndex.load(dir);
    assert.equal(loaded.treeId, computeTreeId(loaded.entries.values()), what);
    if (what === 'stat data only') assert.equal(loaded.treeId, before, what);
    else assert.notEqual(loaded.treeId, before, what);
  }
});

/** Trees in memory, read as a repository's store would give them. */
function treeStore(): {
  put: (entries: TreeEntry[]) => string;
  read: (id: string) => Promise<TreeEntry[]>;
  reads: string[];
} {
  const trees = new Map<string, Buffer>();
  const reads: string[] = [];
  return {
    put: (entries) => {
      const data = encodeTree(entries);
      const id = sha256Hex(data);
      trees.set(id, data);
      return id;
    },
    read: async (id) => {
      reads.push(id);
      const data = trees.get(id);
      if (!data) throw new Error(`no tree ${id}`);
      return decodeTree(id, data);
    },
    reads,
  };
}

test('sparse directories: one entry each on disk, the exact file entries when read', async () => {
  const dir = await gitDir();
  const store = treeStore();
  registerTreeReader(dir, store.read);
  const file = (name: string, size: number): TreeEntry => ({
    name,
    mode: '100644',
    kind: 'manifest',
    id: sha256Hex(Buffer.from(name)),
    size,
  });
  const deep = store.put([file('x.exr', 5_000_000)]);
  const art = store.put([
    file('hero.psd', 80_000_000),
    { ...file('notes.txt', 12), kind: 'blob' },
    { name: 'sub', mode: '40000', kind: 'tree', id: deep, size: 0 },
  ]);
  const readme = entry('README.md');
  const expected: IndexEntry[] = [
    ['art/hero.psd', 'manifest', 80_000_000],
    ['art/notes.txt', 'blob', 12],
    ['art/sub/x.exr', 'manifest', 5_000_000],
  ].map(([p, kind, size]) => ({
    path: p as string,
    mode: '100644',
    kind: kind as IndexEntry['kind'],
    id: sha256Hex(Buffer.from(path.basename(p as string))),
    // A blob's ID is its content hash (no encryption here); a manifest's is not known.
    sha256: kind === 'blob' ? sha256Hex(Buffer.from(path.basename(p as string))) : UNKNOWN_SHA256,
    size: size as number,
    mtimeMs: 0,
    ctimeMs: 0,
    ino: 0,
    dev: 0,
  }));
  const fullTree = computeTreeId([readme, ...expected]);

  // Written by code that knows the folder: two entries, version 2.
  const made = new StagingIndex(dir);
  made.entries.set(readme.path, readme);
  made.setSparseDir('art', art);
  const written = await saveIndex(made, dir);
  assert.equal(written.readUInt32LE(4), 2, 'version 2');
  assert.equal(written.readUInt32LE(8), 2, 'two entries');
  assert.equal(made.treeId, fullTree, 'the tree ID counts the folder by its tree');
  assert.deepEqual(store.reads, [], 'writing it reads no tree');

  // Read as every command reads it: the tree's files, exactly.
  const loaded = await StagingIndex.load(dir);
  assert.deepEqual(
    [...loaded.entries.values()].sort((a, b) => (a.path < b.path ? -1 : 1)),
    [readme, ...expected],
  );
  assert.equal(loaded.treeId, fullTree);
  assert.equal(loaded.sparseDirs().size, 0);
  // Saved with those entries untouched (stat data of another file refreshed): collapsed again.
  loaded.entries.set(readme.path, { ...readme, ino: 99 });
  const again = await saveIndex(loaded, dir);
  assert.equal(again.readUInt32LE(4), 2);
  assert.equal(again.readUInt32LE(8), 2);

  // Any change under the folder writes its files one by one.
  for (const change of [
    (index: StagingIndex) => index.entries.set('art/notes.txt', { ...expected[1]!, ino: 5 }),
    (index: StagingIndex) => index.entries.set('art/new.txt', entry('art/new.txt')),
    (index: StagingIndex) => index.entries.delete('art/sub/x.exr'),
  ]) {
    await saveIndex(made, dir);
    const index = await StagingIndex.load(dir);
    change(index);
    const bytes = await saveIndex(index, dir);
    assert.equal(bytes.readUInt32LE(4), 1, 'version 1: no folder left whole');
    const reread = await StagingIndex.load(dir);
    assert.deepEqual([...reread.entries.keys()].sort(), [...index.entries.keys()].sort());
    assert.equal(reread.treeId, computeTreeId(reread.entries.values()));
  }

  // Code that handles folders opens one, keeping a folder below it whole.
  await saveIndex(made, dir);
  const sparse = await StagingIndex.load(dir, { sparse: true });
  assert.deepEqual([...sparse.entries.keys()], ['README.md']);
  assert.deepEqual([...sparse.sparseDirs()], [['art', art]]);
  assert.deepEqual((await sparse.expandSparseDir('art', (folder) => folder === 'art/sub')).sort(), [
    'art/hero.psd',
    'art/notes.txt',
  ]);
  assert.deepEqual([...sparse.sparseDirs()], [['art/sub', deep]]);
  const opened = await saveIndex(sparse, dir);
  assert.equal(opened.readUInt32LE(8), 4, 'three files and one folder');
  assert.equal(sparse.treeId, fullTree);
  const full = await StagingIndex.load(dir);
  assert.deepEqual(
    [...full.entries.values()].sort((a, b) => (a.path < b.path ? -1 : 1)),
    [readme, ...expected],
  );

  // A sparse index whose trees cannot be read fails with its own error.
  registerTreeReader(dir, async () => {
    throw new MediaGitError('OBJECT_MISSING', 'object missing');
  });
  await assert.rejects(StagingIndex.load(dir), { code: 'OBJECT_MISSING' });
  const other = await gitDir();
  await fs.copyFile(path.join(dir, 'index'), path.join(other, 'index'));
  await assert.rejects(StagingIndex.load(other), { code: 'INDEX_SPARSE_UNREADABLE' });
  // A folder entry whose path names no folder is corruption.
  const bad = Buffer.from(written);
  const at = bad.indexOf('art/');
  bad.write('art_', at, 'latin1');
  createHashInto(bad);
  await fs.writeFile(path.join(other, 'index'), bad);
  await assert.rejects(StagingIndex.load(other, { sparse: true }), { code: 'INDEX_CORRUPT' });
});

/** Rewrites an index file's trailing checksum after an edit. */
function createHashInto(data: Buffer): void {
  const body = data.subarray(0, data.length - 32);
  Buffer.from(sha256Hex(body), 'hex').copy(data, data.length - 32);
}

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
