import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { Codec, encodeDelta } from '../compression/codec.ts';
import { MediaGitError } from '../errors.ts';
import {
  deltaPrefix,
  MAX_DELTA_DEPTH,
  parseDeltaPayload,
  SketchIndex,
  type DeltaOptions,
} from './delta.ts';
import {
  FileStore,
  readFileBytes,
  type FileProfile,
  type StoredFile,
  type StoreFileOptions,
} from './file-store.ts';
import { readManifest } from './file-read.ts';
import { chunkIdOf, type ObjectId } from './object-id.ts';
import { decodeHeader, HEADER_SIZE, ObjectStore } from './object-store.ts';
import { pseudoRandomBytes as randomBytesOf } from '../../test/bytes.ts';

const MiB = 1024 * 1024;
const ML: DeltaOptions = { minSimilarity: 0.75, maxDepth: 8 };

let root: string;
before(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'mediagit-delta-'));
});
after(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

const pseudoRandomBytes = (length: number, seed: number): Buffer =>
  randomBytesOf(length, seed, 'mediagit-delta');

/** A new version with one byte in `every` changed from offset `phase` on. */
function perturbed(data: Buffer, every: number, phase: number): Buffer {
  const copy = Buffer.from(data);
  for (let i = phase; i < copy.length; i += every) copy[i] = copy[i]! ^ 0x33;
  return copy;
}

interface Fixture {
  readonly dir: string;
  readonly store: ObjectStore;
}

async function fixture(): Promise<Fixture> {
  const dir = await fs.mkdtemp(path.join(root, 'repo-'));
  await fs.mkdir(path.join(dir, 'tmp'));
  return { dir, store: new ObjectStore(path.join(dir, 'objects'), path.join(dir, 'tmp')) };
}

/** Stores `data` as one file in its own FileStore (one command), as `add` does. */
async function storeVersion(
  f: Fixture,
  data: Uint8Array,
  delta: DeltaOptions | undefined,
  chunkThreshold = 64 * 1024,
  previous?: StoreFileOptions['previous'],
): Promise<{ stored: StoredFile; newBytes: number; deltas: number }> {
  const file = path.join(f.dir, 'work.bin');
  await fs.writeFile(file, data);
  const files = new FileStore(f.store);
  const profile: FileProfile = { chunking: 'cdc', compression: 'zstd-fast', delta };
  try {
    const stored = await files.storeFile(file, {
      chunkThreshold,
      profile: () => profile,
      previous,
    });
    return { stored, newBytes: files.stats.newBytes, deltas: files.stats.deltas };
  } finally {
    await files.close();
  }
}

async function storedCodec(store: ObjectStore, id: ObjectId): Promise<number> {
  return (await store.info(id)).codec;
}

async function deltaDepth(store: ObjectStore, id: ObjectId): Promise<number> {
  const file = await fs.readFile(store.pathOf(id));
  const { codec } = decodeHeader(id, file);
  return codec === Codec.delta ? parseDeltaPayload(id, file.subarray(HEADER_SIZE)).depth : 0;
}

test('an edited version is stored as deltas, far smaller, and reads back exactly', async () => {
  const f = await fixture();
  const v1 = pseudoRandomBytes(12 * MiB, 1);
  const v2 = perturbed(v1, 80, 7);
  const first = await storeVersion(f, v1, ML);
  assert.equal(first.deltas, 0);
  const second = await storeVersion(f, v2, ML);
  assert.ok(second.deltas > 0, 'no deltas');
  // One byte in 80 changed: the deltas cost a fraction of the version.
  assert.ok(second.newBytes < v2.length / 4, `v2 added ${second.newBytes} bytes`);
  const manifest = await readManifest(f.store, second.stored.id);
  let viaDelta = 0;
  for (const chunk of manifest.chunks) {
    if ((await storedCodec(f.store, chunk.id)) === Codec.delta) viaDelta++;
  }
  assert.equal(viaDelta, second.deltas);
  assert.ok((await readFileBytes(f.store, 'manifest', second.stored.id)).equals(v2));
  assert.ok((await readFileBytes(f.store, 'manifest', first.stored.id)).equals(v1));

  // The same edit with deltas off is stored whole: several times larger.
  const g = await fixture();
  await storeVersion(g, v1, undefined);
  const plain = await storeVersion(g, v2, undefined);
  assert.equal(plain.deltas, 0);
  assert.ok(plain.newBytes > 3 * second.newBytes, `${plain.newBytes} vs ${second.newBytes}`);
  await assert.rejects(fs.access(path.join(g.store.objectsDir, 'info', 'sketches')));
});

test('unrelated content is never stored as a delta', async () => {
  const f = await fixture();
  await storeVersion(f, pseudoRandomBytes(4 * MiB, 2), ML);
  const other = await storeVersion(f, pseudoRandomBytes(4 * MiB, 3), ML);
  assert.equal(other.deltas, 0);
});

test('small files (blobs) are delta-compressed too', async () => {
  const f = await fixture();
  const v1 = pseudoRandomBytes(512 * 1024, 4);
  await storeVersion(f, v1, ML, 4 * MiB);
  const v2 = perturbed(v1, 100, 3);
  const second = await storeVersion(f, v2, ML, 4 * MiB);
  assert.equal(second.stored.kind, 'blob');
  assert.equal(await storedCodec(f.store, second.stored.id), Codec.delta);
  assert.ok(second.newBytes < v2.length / 4);
  assert.ok((await readFileBytes(f.store, 'blob', second.stored.id)).equals(v2));
});

test('chains stop at the depth limit; every version reads back', async () => {
  const f = await fixture();
  const limit: DeltaOptions = { minSimilarity: 0.7, maxDepth: 3 };
  let data = pseudoRandomBytes(256 * 1024, 5);
  const versions: { id: ObjectId; data: Buffer }[] = [];
  for (let v = 0; v < 8; v++) {
    const { stored } = await storeVersion(f, data, limit, 4 * MiB);
    versions.push({ id: stored.id, data });
    data = perturbed(data, 997, v);
  }
  const depths = await Promise.all(versions.map(({ id }) => deltaDepth(f.store, id)));
  assert.equal(depths[0], 0);
  assert.equal(Math.max(...depths), 3, `depths ${depths.join(',')}`);
  for (const { id, data: expected } of versions) {
    assert.ok((await readFileBytes(f.store, 'blob', id)).equals(expected));
  }
});

/** OBJECT_CORRUPT whose message includes `text` (the object's ID, or the reason). */
async function assertCorrupt(promise: Promise<unknown>, text: string, what: string) {
  await assert.rejects(
    promise,
    (error: unknown) => {
      assert.ok(error instanceof MediaGitError, `${what}: ${String(error)}`);
      assert.equal(error.code, 'OBJECT_CORRUPT', `${what}: ${error.message}`);
      assert.ok(error.message.includes(text), `${what}: ${error.message} lacks ${text}`);
      return true;
    },
    what,
  );
}

test('a delta whose base is corrupt or missing is an error naming the object, never bytes', async () => {
  const f = await fixture();
  const v1 = pseudoRandomBytes(300 * 1024, 6);
  const { stored: base } = await storeVersion(f, v1, ML, 4 * MiB);
  const { stored: edited } = await storeVersion(f, perturbed(v1, 64, 1), ML, 4 * MiB);
  assert.equal(await storedCodec(f.store, edited.id), Codec.delta);
  const basePath = f.store.pathOf(base.id);
  const original = await fs.readFile(basePath);
  const flipped = Buffer.from(original);
  flipped[flipped.length - 1] = flipped.at(-1)! ^ 1;
  await fs.chmod(basePath, 0o644);
  await fs.writeFile(basePath, flipped);
  await assertCorrupt(f.store.read(edited.id), base.id, 'corrupt base');
  await fs.rm(basePath);
  await assertCorrupt(f.store.read(edited.id), edited.id, 'missing base');
  await assertCorrupt(readFileBytes(f.store, 'blob', edited.id), edited.id, 'file read');
});

test('a chain longer than the format allows is refused, not followed', async () => {
  const f = await fixture();
  let previous = pseudoRandomBytes(64 * 1024, 7);
  let previousId = chunkIdOf(previous);
  await f.store.write('chunk', previous, 'binary', previousId, 'store');
  // Hand-made deltas, each claiming depth 1, chained one more than allowed.
  for (let i = 0; i <= MAX_DELTA_DEPTH; i++) {
    const next = perturbed(previous, 4096, i);
    const id = chunkIdOf(next);
    const frame = await encodeDelta(next, previous);
    await f.store.writeEncoded('chunk', id, next.length, {
      codec: Codec.delta,
      payload: Buffer.concat([deltaPrefix([previousId], 1), frame]),
    });
    if (i < MAX_DELTA_DEPTH) assert.ok((await f.store.read(id)).data.equals(next));
    else await assertCorrupt(f.store.read(id), `longer than ${MAX_DELTA_DEPTH}`, 'chain of 11');
    previous = next;
    previousId = id;
  }
});

test('deltas that loop (A on B, B on A) are refused as corrupt, not followed forever', async () => {
  const f = await fixture();
  const a = pseudoRandomBytes(32 * 1024, 21);
  const b = perturbed(a, 4096, 1);
  const [idA, idB] = [chunkIdOf(a), chunkIdOf(b)];
  // Each stored as a delta against the other: no chain ever reaches a whole object.
  await f.store.writeEncoded('chunk', idA, a.length, {
    codec: Codec.delta,
    payload: Buffer.concat([deltaPrefix([idB], 1), await encodeDelta(a, b)]),
  });
  await f.store.writeEncoded('chunk', idB, b.length, {
    codec: Codec.delta,
    payload: Buffer.concat([deltaPrefix([idA], 1), await encodeDelta(b, a)]),
  });
  for (const id of [idA, idB]) {
    await assertCorrupt(f.store.read(id), `longer than ${MAX_DELTA_DEPTH}`, 'a loop of two');
  }
});

test('the sketch cache survives a record cut short by a crash', async () => {
  const f = await fixture();
  const v1 = pseudoRandomBytes(300 * 1024, 8);
  await storeVersion(f, v1, ML);
  const file = path.join(f.store.objectsDir, 'info', 'sketches');
  const intact = await fs.readFile(file);
  await fs.appendFile(file, Buffer.alloc(17, 0xab)); // half a record
  const index = await SketchIndex.load(f.store.objectsDir);
  assert.equal(index.size, 1);
  // The next command cuts the partial record off before appending.
  const other = pseudoRandomBytes(300 * 1024, 9);
  await storeVersion(f, other, ML);
  const after = await fs.readFile(file);
  assert.ok(after.subarray(0, intact.length).equals(intact));
  assert.equal((after.length - 8) % (intact.length - 8), 0);
  assert.equal((await SketchIndex.load(f.store.objectsDir)).size, 2);
  // An unreadable cache is ignored (no deltas from it), then rewritten.
  await fs.writeFile(file, 'not a sketch file');
  assert.equal((await SketchIndex.load(f.store.objectsDir)).size, 0);
  const again = await storeVersion(f, perturbed(v1, 50, 0), ML);
  assert.equal(again.deltas, 0);
  assert.equal((await SketchIndex.load(f.store.objectsDir)).size, 1);
});

test('an edited file of any format is stored as deltas against the old chunks at the same place', async () => {
  const f = await fixture();
  const v1 = pseudoRandomBytes(12 * MiB, 10);
  const first = await storeVersion(f, v1, undefined);
  const v2 = Buffer.concat([
    v1.subarray(0, 5 * MiB),
    pseudoRandomBytes(4096, 11), // inserted
    v1.subarray(5 * MiB, 9 * MiB),
    pseudoRandomBytes(64 * 1024, 12), // overwritten
    v1.subarray(9 * MiB + 64 * 1024),
  ]);
  const previous = { kind: first.stored.kind, id: first.stored.id };
  const edited = await storeVersion(f, v2, undefined, 64 * 1024, previous);
  assert.ok(edited.deltas >= 1, 'no deltas');
  // The changed chunks cost about the changed bytes, not their whole size.
  assert.ok(edited.newBytes < 200 * 1024, `edit added ${edited.newBytes} bytes`);
  assert.ok((await readFileBytes(f.store, 'manifest', edited.stored.id)).equals(v2));

  // Without the previous version (add --no-delta), the changed chunks are stored whole.
  const g = await fixture();
  await storeVersion(g, v1, undefined);
  const whole = await storeVersion(g, v2, undefined);
  assert.equal(whole.deltas, 0);
  assert.ok(whole.newBytes > 1024 * 1024, `whole: ${whole.newBytes}`);

  // A rewrite shares nothing with the old chunks: no deltas are kept.
  const rewrite = await storeVersion(f, pseudoRandomBytes(12 * MiB, 13), undefined, 64 * 1024, {
    kind: edited.stored.kind,
    id: edited.stored.id,
  });
  assert.equal(rewrite.deltas, 0);
});
