import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { Codec } from '../compression/codec.ts';
import { MediaGitError } from '../errors.ts';
import { encodeCommit } from './commit.ts';
import { encodeManifest } from './manifest.ts';
import { chunkIdOf, EMPTY_BLOB_ID, objectIdOf, sha256Hex, type ObjectId } from './object-id.ts';
import { IngestPack } from './ingest-pack.ts';
import { ObjectCipher } from './object-cipher.ts';
import { decodeLinks, encodeLinks } from './object-links.ts';
import { HEADER_SIZE, ObjectStore, type ObjectTypeName } from './object-store.ts';
import { encodeTree } from './tree.ts';

let root: string;

before(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'mediagit-odb-'));
});

after(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

async function freshStore(): Promise<ObjectStore> {
  const dir = await fs.mkdtemp(path.join(root, 'store-'));
  await fs.mkdir(path.join(dir, 'tmp'));
  return new ObjectStore(path.join(dir, 'objects'), path.join(dir, 'tmp'));
}

/** A second store over the same folder: no cached objects, every read hits the file. */
function reopen(store: ObjectStore): ObjectStore {
  return new ObjectStore(store.objectsDir, store.tmpDir);
}

/** Object files under `dir` (objects/); info/ holds caches and gc's writer registrations. */
async function countFiles(dir: string): Promise<number> {
  let n = 0;
  for (const entry of await fs.readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile() && !entry.parentPath.startsWith(path.join(dir, 'info'))) n++;
  }
  return n;
}

/** Asserts `promise` rejects with OBJECT_CORRUPT naming `id`. */
async function assertCorrupt(promise: Promise<unknown>, id: ObjectId, what: string): Promise<void> {
  await assert.rejects(
    promise,
    (error: unknown) => {
      assert.ok(error instanceof MediaGitError, `${what}: not a MediaGitError: ${String(error)}`);
      assert.equal(error.code, 'OBJECT_CORRUPT', `${what}: ${error.message}`);
      assert.equal(error.kind, 'corrupt');
      assert.ok(error.message.includes(id), `${what}: message lacks the ID: ${error.message}`);
      assert.equal(error.data['id'], id);
      return true;
    },
    what,
  );
}

const SIGNATURE = { name: 'A U Thor', email: 'author@example.com', time: 1700000000, tzOffset: 60 };

/** One object of every stored type, some compressed and some stored raw. */
function sampleObjects(): { type: ObjectTypeName; data: Buffer; label: string }[] {
  const chunkA = randomBytes(1500);
  const tree = encodeTree([
    { name: 'a.txt', mode: '100644', kind: 'blob', id: sha256Hex(Buffer.from('a')), size: 1 },
    { name: 'video.mp4', mode: '100644', kind: 'manifest', id: 'ab'.repeat(32), size: 9 },
  ]);
  return [
    { type: 'blob', data: Buffer.from('hello world, '.repeat(40)), label: 'text blob (brotli)' },
    { type: 'blob', data: randomBytes(300), label: 'random blob (stored raw)' },
    { type: 'chunk', data: chunkA, label: 'random chunk (stored raw)' },
    { type: 'chunk', data: Buffer.alloc(5000, 3), label: 'zero-ish chunk (zstd)' },
    {
      type: 'manifest',
      data: encodeManifest({
        size: 1500,
        sha256: sha256Hex(chunkA),
        chunker: 'fastcdc-v1 524288 1048576 4194304',
        chunks: [{ id: chunkIdOf(chunkA), length: 1500 }],
      }),
      label: 'manifest',
    },
    { type: 'tree', data: tree, label: 'tree' },
    {
      type: 'commit',
      data: encodeCommit({
        tree: sha256Hex(tree),
        parents: [],
        author: SIGNATURE,
        committer: SIGNATURE,
        message: 'Add the first cut\n',
      }),
      label: 'commit',
    },
  ];
}

test('golden vector: the exact bytes of a stored object file', async () => {
  const store = await freshStore();
  const result = await store.write('blob', Buffer.from('hello\n'));
  // The ID is the SHA-256 of the content alone, which is also its Git LFS OID.
  assert.equal(result.id, '5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03');
  const file = await fs.readFile(store.pathOf(result.id));
  assert.equal(
    file.toString('hex'),
    '4d474f31' + '01' + '00' + '0000' + '0600000000000000' + Buffer.from('hello\n').toString('hex'),
  );
  assert.equal(
    store.pathOf(result.id),
    path.join(
      store.objectsDir,
      '58',
      '91b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03',
    ),
  );
  assert.equal(EMPTY_BLOB_ID, 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
});

test('every object type round-trips, is named by its hash (chunks BLAKE3, others SHA-256) and is stored once', async () => {
  const store = await freshStore();
  const samples = sampleObjects();
  for (const { type, data, label } of samples) {
    const first = await store.write(type, data);
    assert.equal(first.id, type === 'chunk' ? chunkIdOf(data) : sha256Hex(data), label);
    assert.equal(first.written, true, label);
    const second = await store.write(type, data);
    assert.deepEqual(second, { id: first.id, written: false, storedSize: 0 }, label);
    assert.equal(await store.has(first.id), true);
    const read = await reopen(store).read(first.id);
    assert.equal(read.type, type, label);
    assert.deepEqual(read.data, data, label);
    assert.deepEqual(await reopen(store).readTyped(first.id, type), data);
  }
  assert.equal(await countFiles(store.objectsDir), samples.length);
  const listed: ObjectId[] = [];
  for await (const id of store.list()) listed.push(id);
  assert.deepEqual(listed, samples.map((s) => objectIdOf(s.type, s.data)).sort());
});

test('compression never makes an object bigger; text shrinks', async () => {
  const store = await freshStore();
  const random = randomBytes(1 << 20);
  const stored = await store.write('blob', random);
  const info = await store.info(stored.id);
  assert.equal(info.codec, Codec.store);
  assert.equal(info.rawSize, random.length);
  assert.equal(info.storedSize, HEADER_SIZE + random.length);
  assert.equal(stored.storedSize, info.storedSize);
  // Claimed to be text, random bytes still must not grow.
  const asText = randomBytes(100_000);
  const textResult = await store.write('chunk', asText, 'text');
  assert.equal((await store.info(textResult.id)).storedSize, HEADER_SIZE + asText.length);

  const text = Buffer.from('INT. STUDIO - NIGHT. The editor scrubs the timeline.\n'.repeat(20_000));
  const compressed = await store.write('blob', text);
  const textInfo = await store.info(compressed.id);
  assert.equal(textInfo.codec, Codec.brotli);
  assert.ok(textInfo.storedSize < text.length / 20, `stored ${textInfo.storedSize}`);
  assert.deepEqual(await reopen(store).readTyped(compressed.id, 'blob'), text);
});

test('a flipped byte anywhere in any object file fails the read with OBJECT_CORRUPT naming it', async () => {
  const store = await freshStore();
  for (const { type, data, label } of sampleObjects()) {
    const { id } = await store.write(type, data);
    const file = store.pathOf(id);
    await fs.chmod(file, 0o644);
    const original = await fs.readFile(file);
    for (let position = 0; position < original.length; position++) {
      const damaged = Buffer.from(original);
      damaged[position]! ^= 0xff;
      await fs.writeFile(file, damaged);
      await assertCorrupt(reopen(store).read(id), id, `${label}, byte ${position} flipped`);
    }
    await fs.writeFile(file, original);
    assert.deepEqual((await reopen(store).read(id)).data, data, `${label} restored`);
  }
});

test('a truncated, extended or emptied object file fails the read with OBJECT_CORRUPT', async () => {
  const store = await freshStore();
  for (const { type, data, label } of sampleObjects()) {
    const { id } = await store.write(type, data);
    const file = store.pathOf(id);
    await fs.chmod(file, 0o644);
    const original = await fs.readFile(file);
    const variants: [string, Buffer][] = [
      ['empty', Buffer.alloc(0)],
      ['header only', original.subarray(0, HEADER_SIZE)],
      ['half a header', original.subarray(0, HEADER_SIZE / 2)],
      ['last byte cut', original.subarray(0, original.length - 1)],
    ];
    // Node's Brotli and zstd decoders stop at the end of their stream, so a byte
    // appended after a compressed payload goes unread (the content still
    // verifies); a raw payload must be exactly as long as its header says.
    if ((await store.info(id)).codec === Codec.store) {
      variants.push(['one byte appended', Buffer.concat([original, Buffer.of(0)])]);
    }
    for (const [what, bytes] of variants) {
      await fs.writeFile(file, bytes);
      await assertCorrupt(reopen(store).read(id), id, `${label}: ${what}`);
    }
    await fs.writeFile(file, original);
  }
});

test('a missing object is OBJECT_MISSING naming it; a wrong type is OBJECT_TYPE', async () => {
  const store = await freshStore();
  const id = sha256Hex(Buffer.from('never stored'));
  await assert.rejects(store.read(id), (error: unknown) => {
    assert.ok(error instanceof MediaGitError);
    assert.equal(error.code, 'OBJECT_MISSING');
    assert.ok(error.message.includes(id));
    return true;
  });
  await assert.rejects(store.read('../../etc/passwd'), { code: 'OBJECT_MISSING' });
  await assert.rejects(store.info(id), { code: 'OBJECT_MISSING' });
  const tree = encodeTree([]);
  const treeId = (await store.write('tree', tree)).id;
  await assert.rejects(store.readTyped(treeId, 'commit'), (error: unknown) => {
    assert.ok(error instanceof MediaGitError);
    assert.equal(error.code, 'OBJECT_TYPE');
    assert.ok(error.message.includes(treeId));
    return true;
  });
});

test('golden vector: a chunk is named by the BLAKE3-256 of its bytes', async () => {
  const store = await freshStore();
  const result = await store.write('chunk', Buffer.from('abc'));
  assert.equal(result.id, '6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85');
  assert.deepEqual(await reopen(store).readTyped(result.id, 'chunk'), Buffer.from('abc'));
  // The same bytes as a blob are a different object, named by SHA-256.
  const blob = await store.write('blob', Buffer.from('abc'));
  assert.equal(blob.id, 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  assert.equal(blob.written, true);
});

test('writes leave no temporary files behind', async () => {
  const store = await freshStore();
  for (const { type, data } of sampleObjects()) await store.write(type, data);
  await store.flush();
  assert.deepEqual(await fs.readdir(store.tmpDir), []);
});

test('absentAmong names exactly the objects stored neither loose nor packed, in the order asked', async () => {
  const store = await freshStore();
  const loose = (await store.write('blob', Buffer.from('loose one'))).id;
  // Packed only: written loose, then moved into a pack as gc would.
  const packedData = Buffer.from('packed one');
  const packed = (await store.write('blob', packedData)).id;
  const record = await fs.readFile(store.pathOf(packed));
  const pack = await IngestPack.create(store);
  await pack.append(packed, [record]);
  await pack.finish();
  await fs.rm(store.pathOf(packed));
  // Absent: one whose fan-out folder exists (a loose object's), one whose folder does not.
  const sameFolder = `${loose.slice(0, 62)}${loose.endsWith('00') ? '11' : '00'}`;
  const prefixes = new Set([loose.slice(0, 2), packed.slice(0, 2)]);
  let other = 'ff'.repeat(32);
  for (let i = 0; prefixes.has(other.slice(0, 2)); i++) other = sha256Hex(Buffer.from(`x${i}`));
  const fresh = reopen(store);
  assert.deepEqual(await fresh.absentAmong([other, loose, sameFolder, packed]), [
    other,
    sameFolder,
  ]);
  assert.deepEqual(await fresh.absentAmong([]), []);
  for (const id of [loose, packed]) assert.equal(await fresh.has(id), true);
});

test('an encrypted store seals what it writes, names by keyed ID, and refuses records of the wrong kind', async () => {
  const master = randomBytes(32);
  const sealing = await freshStore();
  sealing.cipher = new ObjectCipher(master, 'a'.repeat(32));
  sealing.encrypted = true;
  const blob = await sealing.write('blob', Buffer.from('a secret file'));
  const data = encodeTree([
    { name: 'secret-name.txt', mode: '100644', kind: 'blob', id: blob.id, size: 13 },
  ]);
  const { id } = await sealing.write('tree', data);
  assert.notEqual(id, objectIdOf('tree', data), 'the ID is keyed');
  assert.equal(id, sealing.idOf('tree', data));
  const stored = await fs.readFile(sealing.pathOf(id));
  assert.equal(stored[5], Codec.sealed);
  assert.equal(stored.indexOf('secret'), -1);
  const unlocked = (): ObjectStore => {
    const again = reopen(sealing);
    again.cipher = sealing.cipher;
    again.encrypted = true;
    return again;
  };
  assert.deepEqual((await unlocked().readHere(id)).data, data);
  // The tree's link list is in clear in front of the seal: one blob, its ID.
  const listed = decodeLinks(id, stored.subarray(HEADER_SIZE));
  assert.deepEqual(listed.links, [{ type: 'blob', id: blob.id }]);
  // A changed list does not open (it is in the AAD) ...
  const relisted = Buffer.from(stored);
  relisted[HEADER_SIZE + 4] = 2; // the link's type: chunk
  await fs.writeFile(sealing.pathOf(id), relisted);
  await assert.rejects(unlocked().readHere(id), /authentication failed/);
  // ... and one sealed with a list other than the content's is refused on read.
  const other2 = await sealing.write('blob', Buffer.from('another file'));
  const header = stored.subarray(0, HEADER_SIZE);
  const lying = sealing.cipher.sealPayload(
    id,
    header,
    Codec.store,
    [data],
    encodeLinks([{ type: 'blob', id: other2.id }]),
  );
  await fs.writeFile(sealing.pathOf(id), Buffer.concat([header, ...lying]));
  await assert.rejects(unlocked().readHere(id), /links listed outside its seal are not those/);
  await fs.writeFile(sealing.pathOf(id), stored);
  // The same store without its key reads nothing; locked, it writes nothing.
  const locked = reopen(sealing);
  locked.encrypted = true;
  await assert.rejects(locked.read(id), /is encrypted, and this repository holds no key for it/);
  await assert.rejects(locked.write('blob', Buffer.from('x')), /not unlocked/);
  // Another master key: authentication fails, naming the object.
  const other = reopen(sealing);
  other.cipher = new ObjectCipher(randomBytes(32), 'a'.repeat(32));
  await assert.rejects(
    other.read(id),
    new RegExp(`object ${id} is corrupt: authentication failed`),
  );
  // A record in clear planted in the encrypted store is refused.
  const plain = await freshStore();
  const planted = await plain.write('blob', Buffer.from('planted'));
  await fs.mkdir(path.dirname(sealing.pathOf(planted.id)), { recursive: true });
  await fs.copyFile(plain.pathOf(planted.id), sealing.pathOf(planted.id));
  await assert.rejects(
    unlocked().readHere(planted.id),
    /stored unencrypted in an encrypted repository/,
  );
});

test('objects remembered while being stored are read from memory, counted as stored only once written, and a failed write is reported by flush', async () => {
  const store = await freshStore();
  const data = Buffer.from('tree being stored\n');
  const id = objectIdOf('tree', data);
  let finish!: () => void;
  const written = new Promise<void>((resolve) => (finish = resolve));
  store.rememberStoring(
    new Map([[id, { type: 'tree', data }]]),
    written.then(() => store.write('tree', data).then(() => undefined)),
  );
  assert.deepEqual(
    await store.readTyped(id, 'tree'),
    data,
    'readable while its write is under way',
  );
  assert.equal(await store.has(id), false, 'not counted as stored yet');
  // Two flushes at once: both wait for the write.
  let flushed = 0;
  const flushes = [store.flush(), store.flush()].map((f) => f.then(() => flushed++));
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(flushed, 0, 'flush waits for the write');
  finish();
  await Promise.all(flushes);
  assert.equal(flushed, 2);
  assert.equal(await store.has(id), true);
  assert.deepEqual(await reopen(store).readTyped(id, 'tree'), data, 'on disk');

  const lost = Buffer.from('tree whose write fails\n');
  const lostId = objectIdOf('tree', lost);
  store.rememberStoring(
    new Map([[lostId, { type: 'tree', data: lost }]]),
    Promise.reject(new Error('disk full')),
  );
  await assert.rejects(store.flush(), /disk full/);
  await store.flush();
  assert.equal(await store.has(lostId), false);
  await assert.rejects(
    store.readTyped(lostId, 'tree'),
    (error: unknown) => error instanceof MediaGitError && error.code === 'OBJECT_MISSING',
  );
});
