import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { chunkSizesForFile, findChunkLength } from '../chunking/fastcdc.ts';
import { MediaGitError } from '../errors.ts';
import {
  FileStore,
  MAX_BLOB_SIZE,
  materializeFile,
  readFileBytes,
  readManifest,
  type StoredFile,
} from './file-store.ts';
import { decodeManifest, encodeManifest, type Manifest } from './manifest.ts';
import { chunkIdOf, sha256Hex, type ObjectId } from './object-id.ts';
import { HEADER_SIZE, ObjectStore } from './object-store.ts';
import { pseudoRandomBytes } from '../../test/bytes.ts';

const KiB = 1024;
const MiB = 1024 * KiB;
const THRESHOLD = 64 * KiB;

/** Golden vectors: changing the chunker or the manifest encoding changes these. */
const GOLDEN_CHUNK_LENGTHS = [1280402, 1382159, 483167];
const GOLDEN_MANIFEST_ID = 'f2bee57e1012bd858da2741f30da9debe5073ee8a744a0805f5c8a020553e754';
const GOLDEN_MANIFEST_ENCODING_ID =
  '4e9ac7b359c43fc930663eccf6a280efcdee0400f7103fb00b30935d7e6716c3';

let root: string;

before(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'mediagit-filestore-'));
});

after(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

function textBytes(length: number): Buffer {
  const line = 'shot 12 take 3: slate, pan left, hold on the actor, cut to wide.\n';
  return Buffer.from(line.repeat(Math.ceil(length / line.length)).slice(0, length));
}

interface Fixture {
  readonly dir: string;
  readonly store: ObjectStore;
  readonly files: FileStore;
}

async function fixture(): Promise<Fixture> {
  const dir = await fs.mkdtemp(path.join(root, 'repo-'));
  await fs.mkdir(path.join(dir, 'tmp'));
  await fs.mkdir(path.join(dir, 'work'));
  const store = new ObjectStore(path.join(dir, 'objects'), path.join(dir, 'tmp'));
  return { dir, store, files: new FileStore(store) };
}

async function storeBytes(
  f: Fixture,
  name: string,
  data: Uint8Array,
  chunkThreshold = THRESHOLD,
): Promise<StoredFile> {
  const file = path.join(f.dir, 'work', name);
  await fs.writeFile(file, data);
  return f.files.storeFile(file, { chunkThreshold });
}

async function objectFiles(store: ObjectStore): Promise<string[]> {
  const out: string[] = [];
  // objects/info/ holds caches and gc's writer registrations, not objects.
  const info = path.join(store.objectsDir, 'info');
  for (const entry of await fs.readdir(store.objectsDir, { withFileTypes: true, recursive: true }))
    if (entry.isFile() && !entry.parentPath.startsWith(info))
      out.push(path.join(entry.parentPath, entry.name));
  return out;
}

async function assertRejectsWith(
  promise: Promise<unknown>,
  code: string,
  id: ObjectId,
  what: string,
): Promise<void> {
  await assert.rejects(
    promise,
    (error: unknown) => {
      assert.ok(error instanceof MediaGitError, `${what}: ${String(error)}`);
      assert.equal(error.code, code, `${what}: ${error.message}`);
      assert.ok(error.message.includes(id), `${what}: message lacks ${id}: ${error.message}`);
      return true;
    },
    what,
  );
}

test('a file below the threshold is one blob named by its SHA-256 and round-trips', async () => {
  const f = await fixture();
  try {
    const data = textBytes(THRESHOLD - 1);
    const stored = await storeBytes(f, 'notes.txt', data);
    assert.deepEqual(stored, {
      kind: 'blob',
      id: sha256Hex(data),
      size: data.length,
      sha256: sha256Hex(data),
    });
    assert.deepEqual(await readFileBytes(f.store, 'blob', stored.id), data);
    const dest = path.join(f.dir, 'out.txt');
    await materializeFile(f.store, stored.kind, stored.id, dest, 0o100755);
    assert.deepEqual(await fs.readFile(dest), data);
    assert.equal((await fs.stat(dest)).mode & 0o100, 0o100, 'executable bit');
    const empty = await storeBytes(f, 'empty', new Uint8Array(0));
    assert.equal(empty.kind, 'blob');
    await materializeFile(f.store, empty.kind, empty.id, dest, 0o100644);
    assert.equal((await fs.readFile(dest)).length, 0);
    assert.equal((await fs.stat(dest)).mode & 0o111, 0, 'not executable');
  } finally {
    await f.files.close();
  }
});

test('a file at the threshold is chunked; --no-chunking stores it whole', async () => {
  const f = await fixture();
  try {
    const data = pseudoRandomBytes(THRESHOLD, 1);
    assert.equal((await storeBytes(f, 'at', data)).kind, 'manifest');
    const file = path.join(f.dir, 'work', 'at');
    const whole = await f.files.storeFile(file, { chunkThreshold: THRESHOLD, noChunking: true });
    assert.equal(whole.kind, 'blob');
    assert.equal(whole.id, sha256Hex(data));
  } finally {
    await f.files.close();
  }
});

test('a chunked file of several MiB round-trips byte for byte', async () => {
  const f = await fixture();
  try {
    // Random bytes (stored raw) then text (compressed), so both chunk read paths run.
    const data = Buffer.concat([pseudoRandomBytes(5 * MiB + 12345, 2), textBytes(2 * MiB)]);
    const stored = await storeBytes(f, 'clip.mov', data);
    assert.equal(stored.kind, 'manifest');
    assert.equal(stored.size, data.length);
    assert.equal(stored.sha256, sha256Hex(data), 'whole-file SHA-256 (the Git LFS OID)');
    const manifest = await readManifest(f.store, stored.id);
    const sizes = chunkSizesForFile(data.length);
    assert.equal(manifest.chunker, `fastcdc-v1 ${sizes.min} ${sizes.avg} ${sizes.max}`);
    assert.ok(manifest.chunks.length >= 4, `${manifest.chunks.length} chunks`);
    let offset = 0;
    for (const [i, chunk] of manifest.chunks.entries()) {
      assert.ok(chunk.length <= sizes.max);
      if (i < manifest.chunks.length - 1) assert.ok(chunk.length >= sizes.min);
      assert.equal(chunk.id, chunkIdOf(data.subarray(offset, offset + chunk.length)));
      offset += chunk.length;
    }
    assert.equal(offset, data.length);

    assert.ok((await readFileBytes(f.store, 'manifest', stored.id)).equals(data));
    const dest = path.join(f.dir, 'restored.mov');
    await fs.writeFile(dest, 'an older version of the clip');
    await materializeFile(f.store, 'manifest', stored.id, dest, 0o100644);
    assert.ok((await fs.readFile(dest)).equals(data), 'materialized bytes differ');
    const leftovers = (await fs.readdir(f.dir)).filter((n) => n.endsWith('.tmp'));
    assert.deepEqual(leftovers, []);
  } finally {
    await f.files.close();
  }
});

test('a file longer than the read ring cuts where one pass over all its bytes cuts', async () => {
  // 3 x 16 MiB buffers: cuts found near each buffer's end are taken there,
  // the bytes after the last one move to the next buffer (file-store.ts).
  const f = await fixture();
  try {
    const data = pseudoRandomBytes(150 * MiB + 777, 21);
    const stored = await storeBytes(f, 'long.bin', data);
    const sizes = chunkSizesForFile(data.length);
    const expected: number[] = [];
    for (let at = 0; at < data.length;) {
      const length = findChunkLength(data, at, Math.min(data.length, at + sizes.max), sizes);
      expected.push(length);
      at += length;
    }
    const manifest = await readManifest(f.store, stored.id);
    assert.deepEqual(
      manifest.chunks.map((c) => c.length),
      expected,
    );
    assert.ok((await readFileBytes(f.store, 'manifest', stored.id)).equals(data));
  } finally {
    await f.files.close();
  }
});

test('identical chunks across files are stored once', async () => {
  const f = await fixture();
  try {
    const original = pseudoRandomBytes(6 * MiB, 3);
    // The same file with 1000 bytes inserted in the middle: only the chunks
    // around the edit are new.
    const edited = Buffer.concat([
      original.subarray(0, 3 * MiB),
      pseudoRandomBytes(1000, 4),
      original.subarray(3 * MiB),
    ]);
    const a = await storeBytes(f, 'a.bin', original);
    const manifestA = await readManifest(f.store, a.id);
    const idsA = new Set(manifestA.chunks.map((c) => c.id));
    assert.equal((await objectFiles(f.store)).length, idsA.size + 1, 'chunks of a + manifest');

    const newBefore = f.files.stats.newChunks;
    const b = await storeBytes(f, 'b.bin', edited);
    const manifestB = await readManifest(f.store, b.id);
    const shared = manifestB.chunks.filter((c) => idsA.has(c.id));
    assert.ok(shared.length >= manifestB.chunks.length - 3, `only ${shared.length} shared`);
    const union = new Set([...idsA, ...manifestB.chunks.map((c) => c.id)]);
    assert.equal((await objectFiles(f.store)).length, union.size + 2, 'each chunk stored once');
    assert.equal(f.files.stats.newChunks - newBefore, union.size - idsA.size);

    // The same content again, under another name: nothing new at all.
    const countBefore = (await objectFiles(f.store)).length;
    const again = await storeBytes(f, 'copy of a.bin', original);
    assert.equal(again.id, a.id);
    assert.equal((await objectFiles(f.store)).length, countBefore);
  } finally {
    await f.files.close();
  }
});

test('incompressible chunks are stored raw: the store holds no more than the file plus headers', async () => {
  const f = await fixture();
  try {
    const data = pseudoRandomBytes(3 * MiB, 6);
    const stored = await storeBytes(f, 'noise.bin', data);
    const manifest = await readManifest(f.store, stored.id);
    let chunkBytes = 0;
    for (const chunk of manifest.chunks)
      chunkBytes += (await fs.stat(f.store.pathOf(chunk.id))).size;
    assert.equal(chunkBytes, data.length + manifest.chunks.length * HEADER_SIZE);
  } finally {
    await f.files.close();
  }
});

test('materializeFile over a corrupt or missing chunk fails and leaves the destination untouched', async () => {
  const f = await fixture();
  try {
    const data = Buffer.concat([pseudoRandomBytes(3 * MiB, 7), textBytes(3 * MiB)]);
    const stored = await storeBytes(f, 'take.mov', data);
    const manifest = await readManifest(f.store, stored.id);
    const dest = path.join(f.dir, 'work', 'take.mov');
    const precious = Buffer.from('the version the user has on disk\n');
    await fs.writeFile(dest, precious);
    const inode = (await fs.stat(dest)).ino;

    const rawChunk = manifest.chunks[1]!;
    const textChunk = manifest.chunks[manifest.chunks.length - 1]!;
    for (const chunk of [rawChunk, textChunk]) {
      const file = f.store.pathOf(chunk.id);
      await fs.chmod(file, 0o644);
      const original = await fs.readFile(file);
      const size = original.length;
      for (const position of [
        0,
        4,
        5,
        6,
        8,
        15,
        HEADER_SIZE,
        HEADER_SIZE + (size >> 1),
        size - 1,
      ]) {
        const damaged = Buffer.from(original);
        damaged[position]! ^= 0xff;
        await fs.writeFile(file, damaged);
        const what = `chunk ${chunk.id.slice(0, 8)} byte ${position}`;
        await assertRejectsWith(
          materializeFile(f.store, 'manifest', stored.id, dest, 0o100644),
          'OBJECT_CORRUPT',
          chunk.id,
          what,
        );
        await assertRejectsWith(
          readFileBytes(new ObjectStore(f.store.objectsDir, f.store.tmpDir), 'manifest', stored.id),
          'OBJECT_CORRUPT',
          chunk.id,
          `readFileBytes, ${what}`,
        );
        assert.deepEqual(await fs.readFile(dest), precious, `${what}: destination changed`);
        assert.equal((await fs.stat(dest)).ino, inode, `${what}: destination replaced`);
      }
      await fs.writeFile(file, original);
    }

    await fs.rename(f.store.pathOf(rawChunk.id), path.join(f.dir, 'moved-away'));
    await assertRejectsWith(
      materializeFile(f.store, 'manifest', stored.id, dest, 0o100644),
      'OBJECT_MISSING',
      rawChunk.id,
      'missing chunk',
    );
    assert.deepEqual(await fs.readFile(dest), precious);
    assert.deepEqual(await fs.readdir(path.join(f.dir, 'work')), ['take.mov'], 'temp files left');

    await fs.rename(path.join(f.dir, 'moved-away'), f.store.pathOf(rawChunk.id));
    await materializeFile(f.store, 'manifest', stored.id, dest, 0o100644);
    assert.ok((await fs.readFile(dest)).equals(data));
  } finally {
    await f.files.close();
  }
});

test('a file stored whole, then chunked under a lower threshold, reads back both ways', async () => {
  // A file between the new threshold and the minimum chunk size is one chunk:
  // a separate object from the blob (chunks are named by BLAKE3), both readable.
  const f = await fixture();
  try {
    const data = pseudoRandomBytes(300 * KiB, 8);
    const whole = await storeBytes(f, 'stem.wav', data, 4 * MiB);
    assert.equal(whole.kind, 'blob');
    const chunked = await storeBytes(f, 'stem copy.wav', data, 256 * KiB);
    assert.equal(chunked.kind, 'manifest');
    const manifest = await readManifest(f.store, chunked.id);
    assert.deepEqual(manifest.chunks, [{ id: chunkIdOf(data), length: data.length }]);
    assert.notEqual(manifest.chunks[0]?.id, whole.id);
    assert.ok((await readFileBytes(f.store, 'manifest', chunked.id)).equals(data));
    const dest = path.join(f.dir, 'stem-out.wav');
    await materializeFile(f.store, 'manifest', chunked.id, dest, 0o100644);
    assert.ok((await fs.readFile(dest)).equals(data));

    // And the other way round: chunk first, then the blob.
    const other = pseudoRandomBytes(300 * KiB, 9);
    await storeBytes(f, 'b1.wav', other, 256 * KiB);
    const blob = await storeBytes(f, 'b2.wav', other, 4 * MiB);
    assert.ok((await readFileBytes(f.store, 'blob', blob.id)).equals(other));
    await materializeFile(f.store, 'blob', blob.id, dest, 0o100644);
    assert.ok((await fs.readFile(dest)).equals(other));
  } finally {
    await f.files.close();
  }
});

test('golden vector: the manifest of a fixed file has a fixed ID', async () => {
  // Pins FastCDC's cut points, the chunk IDs and the manifest encoding at once.
  const f = await fixture();
  try {
    const stored = await storeBytes(f, 'golden.bin', pseudoRandomBytes(3 * MiB, 42));
    assert.equal(stored.sha256, sha256Hex(pseudoRandomBytes(3 * MiB, 42)));
    const manifest = await readManifest(f.store, stored.id);
    assert.deepEqual(
      manifest.chunks.map((c) => c.length),
      GOLDEN_CHUNK_LENGTHS,
    );
    assert.equal(stored.id, GOLDEN_MANIFEST_ID);
  } finally {
    await f.files.close();
  }
});

test('golden vector: manifest encoding', () => {
  const manifest: Manifest = {
    size: 1536,
    sha256: 'aa'.repeat(32),
    chunker: 'fastcdc-v1 524288 1048576 4194304',
    chunks: [
      { id: 'bb'.repeat(32), length: 1024 },
      { id: 'cc'.repeat(32), length: 512 },
    ],
  };
  const bytes = encodeManifest(manifest);
  assert.equal(
    bytes.toString('utf8'),
    'mediagit-manifest 1\nsize 1536\nsha256 ' +
      'aa'.repeat(32) +
      '\nchunker fastcdc-v1 524288 1048576 4194304\nchunks 2\n' +
      `${'bb'.repeat(32)} 1024\n${'cc'.repeat(32)} 512\n`,
  );
  assert.equal(sha256Hex(bytes), GOLDEN_MANIFEST_ENCODING_ID);
  assert.deepEqual(decodeManifest('x', bytes), manifest);
});

test('decodeManifest rejects manifests that do not add up', () => {
  const good = encodeManifest({
    size: 10,
    sha256: 'aa'.repeat(32),
    chunker: 'fastcdc-v1 1 2 4',
    chunks: [{ id: 'bb'.repeat(32), length: 10 }],
  }).toString('utf8');
  const bad = [
    good.replace('size 10', 'size 11'),
    good.replace('chunks 1', 'chunks 2'),
    good.replace(' 10\n', ' 0\n'),
    good.replace('mediagit-manifest 1', 'mediagit-manifest 2'),
    good.replace('sha256 aa', 'sha256 zz'),
    good + 'trailing\n',
  ];
  for (const text of bad) {
    assert.throws(() => decodeManifest('the-id', Buffer.from(text)), {
      code: 'OBJECT_CORRUPT',
      message: /the-id/,
    });
  }
});

test('a file above the blob limit is refused whole with a clear error and never read', async () => {
  const f = await fixture();
  try {
    const file = path.join(f.dir, 'huge.bin');
    // Sparse: costs no disk and no time, and nothing reads it before the refusal.
    await fs.writeFile(file, '');
    await fs.truncate(file, MAX_BLOB_SIZE + 1);
    await assert.rejects(
      f.files.storeFile(file, { chunkThreshold: THRESHOLD, noChunking: true }),
      (error: unknown) =>
        error instanceof MediaGitError &&
        error.code === 'BLOB_TOO_LARGE' &&
        error.message.includes('--no-chunking'),
    );
    assert.equal(f.files.stats.newBytes, 0);
  } finally {
    await f.files.close();
  }
});
