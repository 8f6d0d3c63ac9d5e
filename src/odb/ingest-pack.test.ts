import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { MediaGitError } from '../errors.ts';
import { FileStore, readFileBytes, type StoredFile } from './file-store.ts';
import { readManifest } from './file-read.ts';
import { ObjectStore } from './object-store.ts';
import { Pack, INGEST_PACK_VERSION, packFileName, packIndexFileName } from './pack.ts';
import { verifyPack } from './pack-write.ts';
import { IngestPack } from './ingest-pack.ts';
import { directWritePace } from '../storage/direct-io.ts';
import { slowDirectWrites } from '../../test/slow-direct-writes.ts';
import { pseudoRandomBytes as randomBytesOf } from '../../test/bytes.ts';

const MiB = 1024 * 1024;
/** Small enough to test quickly; the default is 64 MiB. */
const PACK_THRESHOLD = 4 * MiB;

let root: string;
before(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'mediagit-ingest-'));
});
after(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

const pseudoRandomBytes = (length: number, seed: number): Buffer =>
  randomBytesOf(length, seed, 'mediagit-ingest');

async function fixture(): Promise<{ dir: string; store: ObjectStore }> {
  const dir = await fs.mkdtemp(path.join(root, 'repo-'));
  await fs.mkdir(path.join(dir, 'tmp'));
  return { dir, store: new ObjectStore(path.join(dir, 'objects'), path.join(dir, 'tmp')) };
}

async function store(
  f: { dir: string; store: ObjectStore },
  data: Uint8Array,
  signal?: AbortSignal,
): Promise<StoredFile> {
  const file = path.join(f.dir, 'input.bin');
  await fs.writeFile(file, data);
  const files = new FileStore(f.store);
  try {
    return await files.storeFile(file, {
      chunkThreshold: 64 * 1024,
      packThreshold: PACK_THRESHOLD,
      signal,
    });
  } finally {
    await files.close();
  }
}

async function packNames(objectsDir: string): Promise<string[]> {
  return (await fs.readdir(path.join(objectsDir, 'pack')).catch(() => [])).sort();
}

async function looseFiles(objectsDir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await fs.readdir(objectsDir)) {
    if (/^[0-9a-f]{2}$/.test(entry)) out.push(...(await fs.readdir(path.join(objectsDir, entry))));
  }
  return out;
}

test('a large file goes into one version-2 pack that reads back and verifies', async () => {
  const f = await fixture();
  const data = pseudoRandomBytes(12 * MiB, 1);
  const stored = await store(f, data);
  const manifest = await readManifest(f.store, stored.id);
  assert.ok(manifest.chunks.length > 3);
  // Only the manifest is loose; the chunks are all in one pack and its index.
  assert.deepEqual(await looseFiles(f.store.objectsDir), [stored.id.slice(2)]);
  const names = await packNames(f.store.objectsDir);
  assert.equal(names.length, 2);
  const name = names[0]!.replace(/^pack-|\.idx$/g, '');
  const pack = await Pack.load(path.join(f.store.objectsDir, 'pack'), name);
  assert.equal(pack.version, INGEST_PACK_VERSION);
  assert.equal(pack.count, new Set(manifest.chunks.map((c) => c.id)).size);
  await pack.verifyChecksum();
  await verifyPack(pack, f.store);
  assert.ok((await readFileBytes(f.store, 'manifest', stored.id)).equals(data));
  assert.deepEqual(await fs.readdir(path.join(f.dir, 'tmp')), []);

  // The same content again adds no pack.
  await store(f, data);
  assert.equal((await packNames(f.store.objectsDir)).length, 2);
});

test('a version-2 pack that was renamed or whose record changed is caught', async () => {
  const f = await fixture();
  const stored = await store(f, pseudoRandomBytes(8 * MiB, 2));
  const packDir = path.join(f.store.objectsDir, 'pack');
  const name = (await packNames(f.store.objectsDir))[0]!.replace(/^pack-|\.idx$/g, '');
  const manifest = await readManifest(f.store, stored.id);

  // Renamed: its checksum is no longer its name.
  const other = 'f'.repeat(64);
  await fs.rename(path.join(packDir, packFileName(name)), path.join(packDir, packFileName(other)));
  await fs.rename(
    path.join(packDir, packIndexFileName(name)),
    path.join(packDir, packIndexFileName(other)),
  );
  await assert.rejects(Pack.load(packDir, other), (error: unknown) => {
    assert.ok(error instanceof MediaGitError && error.code === 'PACK_CORRUPT', String(error));
    return true;
  });
  await fs.rename(path.join(packDir, packFileName(other)), path.join(packDir, packFileName(name)));
  await fs.rename(
    path.join(packDir, packIndexFileName(other)),
    path.join(packDir, packIndexFileName(name)),
  );
  const loaded = await Pack.load(packDir, name);
  await loaded.verifyChecksum();

  // A flipped payload byte: the record no longer matches its ID.
  const packPath = path.join(packDir, packFileName(name));
  const bytes = await fs.readFile(packPath);
  const entry = loaded.entryAt(loaded.indexOf(Buffer.from(manifest.chunks[1]!.id, 'hex')));
  bytes[entry.offset + 16 + 100] = bytes[entry.offset + 16 + 100]! ^ 1;
  await fs.chmod(packPath, 0o644);
  await fs.writeFile(packPath, bytes);
  const reloaded = new ObjectStore(f.store.objectsDir, f.store.tmpDir);
  await assert.rejects(reloaded.read(manifest.chunks[1]!.id), (error: unknown) => {
    assert.ok(error instanceof MediaGitError && error.code === 'OBJECT_CORRUPT', String(error));
    assert.ok(error.message.includes(manifest.chunks[1]!.id));
    return true;
  });
  await assert.rejects(verifyPack(await Pack.load(packDir, name), reloaded));
});

test('an add stopped halfway leaves no pack and no temp file', async () => {
  const f = await fixture();
  const controller = new AbortController();
  const data = pseudoRandomBytes(40 * MiB, 3);
  const file = path.join(f.dir, 'input.bin');
  await fs.writeFile(file, data);
  const files = new FileStore(f.store);
  await assert.rejects(
    files.storeFile(file, {
      chunkThreshold: 64 * 1024,
      packThreshold: PACK_THRESHOLD,
      signal: controller.signal,
      onBytes: (bytes) => {
        if (bytes > 20 * MiB) controller.abort();
      },
    }),
    { name: 'AbortError' },
  );
  await files.close();
  assert.deepEqual(await packNames(f.store.objectsDir), []);
  assert.deepEqual(await fs.readdir(path.join(f.dir, 'tmp')), []);
  // And the next add stores it whole.
  const stored = await store(f, data);
  assert.ok((await readFileBytes(f.store, 'manifest', stored.id)).equals(data));
});

test('direct, buffered and switching ingest packs are byte-identical, whatever the record sizes', async (t) => {
  // Records that straddle staging segments, end exactly on a block, and a pack
  // smaller than one block: every tail and header path of the writer.
  const layouts: Record<string, number[]> = {
    tiny: [10, 1],
    'one block': [4096 - 16 - 16 - 32],
    straddling: [3 * MiB + 5, 7 * MiB + 4093, 1, 2 * MiB, 4 * MiB - 16, 9 * MiB + 77],
  };
  for (const [label, sizes] of Object.entries(layouts)) {
    const packs: Buffer[] = [];
    const modes: boolean[] = [];
    // Switching: direct until the device is found slow after the second
    // record, then through the page cache for the rest of the same pack.
    for (const mode of ['direct', 'buffered', 'switching'] as const) {
      const f = await fixture();
      const pack = await IngestPack.create(f.store, { directIo: mode !== 'buffered' });
      modes.push(pack.direct);
      const ids: string[] = [];
      try {
        for (const [i, size] of sizes.entries()) {
          const record = pseudoRandomBytes(size + 16, 100 + i);
          const id = i.toString(16).padStart(64, '0');
          ids.push(id);
          // Split in two parts, as a header and payload would be.
          await pack.append(id, [record.subarray(0, 16), record.subarray(16)]);
          if (mode === 'switching' && i === 1) await slowDirectWrites();
        }
        if (mode === 'switching' && sizes.length > 2) assert.equal(pack.direct, false);
      } finally {
        directWritePace.reset();
      }
      const name = await pack.finish();
      const packDir = path.join(f.store.objectsDir, 'pack');
      const bytes = await fs.readFile(path.join(packDir, packFileName(name)));
      const total = sizes.reduce((sum, size) => sum + size + 16, 0);
      assert.equal(bytes.length, 16 + total + 32, label);
      const loaded = await Pack.load(packDir, name);
      assert.equal(loaded.count, sizes.length);
      for (const [i, id] of ids.entries()) {
        const entry = loaded.entryAt(loaded.indexOf(Buffer.from(id, 'hex')));
        const expected = pseudoRandomBytes(sizes[i]! + 16, 100 + i);
        assert.ok(bytes.subarray(entry.offset, entry.offset + entry.length).equals(expected));
      }
      assert.deepEqual(await fs.readdir(path.join(f.dir, 'tmp')), []);
      packs.push(bytes);
    }
    assert.equal(modes[1], false);
    assert.equal(modes[2], modes[0]);
    if (!modes[0]) t.diagnostic(`${label}: this filesystem refused O_DIRECT; all packs buffered`);
    assert.ok(packs[0]!.equals(packs[1]!), `${label}: direct and buffered packs differ`);
    assert.ok(packs[2]!.equals(packs[1]!), `${label}: a pack that left direct writes differs`);
  }
});

test('an ingest pack whose finish fails is removed by abort', async () => {
  const f = await fixture();
  const pack = await IngestPack.create(f.store);
  await pack.append('a'.repeat(64), [pseudoRandomBytes(MiB, 7)]);
  const tmp = (await fs.readdir(path.join(f.dir, 'tmp')))[0]!;
  assert.match(tmp, /^ingest-pack-/);
  await fs.rm(path.join(f.dir, 'objects'), { recursive: true, force: true });
  // objects/ is a file: the pack is written and fsynced, but cannot be moved in.
  await fs.writeFile(path.join(f.dir, 'objects'), 'not a directory');
  await assert.rejects(pack.finish(), { code: 'ENOTDIR' });
  await pack.abort();
  assert.deepEqual(await fs.readdir(path.join(f.dir, 'tmp')), []);
});
