import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { MediaGitError } from '../errors.ts';
import { CloudPackWriter, parseCloudPack } from './cloud-pack.ts';
import { encodeCommit } from './commit.ts';
import { FileStore, materializeFile, readFileBytes, streamFileContent } from './file-store.ts';
import { readManifest } from './file-read.ts';
import { encodeManifest } from './manifest.ts';
import { sha256Hex, type ObjectId } from './object-id.ts';
import { HEADER_SIZE, ObjectStore, type ObjectTypeName } from './object-store.ts';
import { Pack, PACK_HEADER_SIZE, packFileName, packIndexFileName } from './pack.ts';
import { packObjects, verifyPack, verifyWrittenPack } from './pack-write.ts';
import { encodeTree } from './tree.ts';
import { pseudoRandomBytes } from '../../test/bytes.ts';

const KiB = 1024;

let root: string;

before(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'mediagit-pack-'));
});

after(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

async function freshStore(): Promise<ObjectStore> {
  const dir = await fs.mkdtemp(path.join(root, 'store-'));
  await fs.mkdir(path.join(dir, 'tmp'));
  return new ObjectStore(path.join(dir, 'objects'), path.join(dir, 'tmp'));
}

/** A second store over the same folder: nothing cached, every read hits the files. */
function reopen(store: ObjectStore): ObjectStore {
  return new ObjectStore(store.objectsDir, store.tmpDir);
}

async function listIds(store: ObjectStore): Promise<ObjectId[]> {
  const out: ObjectId[] = [];
  for await (const id of store.list()) out.push(id);
  return out;
}

/** Packs every loose object of `store` and deletes the loose files, as `repack -a -d` does. */
async function packAll(store: ObjectStore): Promise<Pack> {
  const ids: ObjectId[] = [];
  for await (const id of store.listLoose()) ids.push(id);
  const written = await packObjects(store, ids);
  for (const id of ids) await fs.rm(store.pathOf(id));
  for (const id of ids) await fs.rmdir(path.dirname(store.pathOf(id))).catch(() => undefined);
  return written.pack;
}

/** Rewrites a read-only file with one byte XORed. */
async function flipByte(file: string, position: number): Promise<Buffer> {
  await fs.chmod(file, 0o644);
  const original = await fs.readFile(file);
  const damaged = Buffer.from(original);
  damaged[position]! ^= 0xff;
  await fs.writeFile(file, damaged);
  return original;
}

async function assertError(
  promise: Promise<unknown>,
  code: string,
  mentions: readonly string[],
  what: string,
): Promise<MediaGitError> {
  let caught: MediaGitError | undefined;
  await assert.rejects(
    promise,
    (error: unknown) => {
      assert.ok(error instanceof MediaGitError, `${what}: not a MediaGitError: ${String(error)}`);
      assert.equal(error.code, code, `${what}: ${error.message}`);
      assert.equal(error.kind, 'corrupt', what);
      for (const text of mentions)
        assert.ok(error.message.includes(text), `${what}: "${error.message}" lacks ${text}`);
      caught = error;
      return true;
    },
    what,
  );
  return caught!;
}

const SIGNATURE = { name: 'A U Thor', email: 'author@example.com', time: 1700000000, tzOffset: 0 };

function sampleObjects(): { type: ObjectTypeName; data: Buffer }[] {
  const chunk = randomBytes(1500);
  const tree = encodeTree([
    { name: 'a.txt', mode: '100644', kind: 'blob', id: sha256Hex(Buffer.from('a')), size: 1 },
  ]);
  return [
    { type: 'blob', data: Buffer.from('hello world, '.repeat(40)) },
    { type: 'blob', data: randomBytes(300) },
    { type: 'blob', data: Buffer.alloc(0) },
    { type: 'chunk', data: chunk },
    { type: 'chunk', data: Buffer.alloc(5000, 3) },
    {
      type: 'manifest',
      data: encodeManifest({
        size: 1500,
        sha256: sha256Hex(chunk),
        chunker: 'fastcdc-v1 524288 1048576 4194304',
        chunks: [{ id: sha256Hex(chunk), length: 1500 }],
      }),
    },
    { type: 'tree', data: tree },
    {
      type: 'commit',
      data: encodeCommit({
        tree: sha256Hex(tree),
        parents: [],
        author: SIGNATURE,
        committer: SIGNATURE,
        message: 'first\n',
      }),
    },
  ];
}

test('golden vector: the exact bytes of a pack and its index', async () => {
  const store = await freshStore();
  const { id } = await store.write('blob', Buffer.from('hello\n'));
  const loose = await fs.readFile(store.pathOf(id));
  const pack = await packAll(store);
  const packBytes = await fs.readFile(pack.packPath);
  const body = Buffer.concat([
    Buffer.from('MGPK', 'latin1'),
    Buffer.from('01000000', 'hex'),
    Buffer.from('0100000000000000', 'hex'),
    loose, // the record is the loose object file, byte for byte
  ]);
  const checksum = createHash('sha256').update(body).digest();
  assert.deepEqual(packBytes, Buffer.concat([body, checksum]));
  assert.equal(pack.name, checksum.toString('hex'));
  assert.equal(pack.name, 'ae7c747f88a3253ebebd77726ebac2f4176d0b0a4a1aab004e2f4f555de557f6');
  assert.equal(path.basename(pack.packPath), `pack-${pack.name}.pack`);

  const index = await fs.readFile(pack.indexPath);
  const fanout = Buffer.alloc(1024);
  for (let b = 0x58; b < 256; b++) fanout.writeUInt32LE(1, b * 4); // the ID starts with 0x58
  const indexBody = Buffer.concat([
    Buffer.from('MGPI', 'latin1'),
    Buffer.from('01000000', 'hex'),
    fanout,
    Buffer.from(id, 'hex'),
    Buffer.from('1000000000000000', 'hex'), // offset 16
    Buffer.from((HEADER_SIZE + 6).toString(16).padEnd(16, '0'), 'hex'), // length 22
    checksum,
  ]);
  assert.deepEqual(
    index,
    Buffer.concat([indexBody, createHash('sha256').update(indexBody).digest()]),
  );
});

test('every object type round-trips through a pack, verified as a loose object is', async () => {
  const store = await freshStore();
  const samples = sampleObjects();
  const ids: ObjectId[] = [];
  for (const { type, data } of samples) ids.push((await store.write(type, data)).id);
  const looseInfo = new Map<ObjectId, unknown>();
  for (const id of ids) looseInfo.set(id, await store.info(id));
  const pack = await packAll(store);
  assert.equal(pack.count, samples.length);
  assert.deepEqual(await objectFolders(store), ['pack']);

  const packed = reopen(store);
  for (const [i, { type, data }] of samples.entries()) {
    const id = ids[i]!;
    assert.equal(await packed.has(id), true);
    const object = await reopen(store).read(id);
    assert.equal(object.type, type);
    assert.deepEqual(object.data, data);
    assert.deepEqual(await packed.readTyped(id, type), data);
    // Same header, same stored size: the record is the loose file.
    assert.deepEqual(await packed.info(id), looseInfo.get(id));
  }
  assert.deepEqual(await listIds(packed), [...ids].sort());
  assert.equal(await packed.has(sha256Hex(Buffer.from('never stored'))), false);
  await assert.rejects(packed.read(sha256Hex(Buffer.from('never stored'))), {
    code: 'OBJECT_MISSING',
  });
  // Writing an object that is already packed stores nothing.
  const again = await packed.write(samples[0]!.type, samples[0]!.data);
  assert.equal(again.written, false);
  assert.deepEqual(await objectFolders(store), ['pack']);
  assert.deepEqual(await fs.readdir(store.tmpDir), []);
});

test('lookup: every packed ID is found by binary search, absent ones are not, prefixes resolve', async () => {
  const store = await freshStore();
  const ids: ObjectId[] = [];
  for (let i = 0; i < 600; i++) ids.push((await store.write('blob', Buffer.from(`obj ${i}`))).id);
  const pack = await packAll(store);
  const sorted = [...ids].sort();
  assert.deepEqual([...pack.ids()], sorted);
  let previousEnd = PACK_HEADER_SIZE;
  const entries = sorted.map((id) => pack.entryAt(pack.indexOf(Buffer.from(id, 'hex'))));
  for (const entry of [...entries].sort((a, b) => a.offset - b.offset)) {
    assert.equal(entry.offset, previousEnd, 'records are back to back');
    previousEnd += entry.length;
  }
  assert.equal(previousEnd + 32, pack.packSize);
  for (let i = 0; i < 200; i++) {
    const absent = sha256Hex(Buffer.from(`absent ${i}`));
    assert.equal(pack.indexOf(Buffer.from(absent, 'hex')), -1);
  }
  assert.equal(pack.indexOf(Buffer.alloc(32, 0)), -1);
  assert.equal(pack.indexOf(Buffer.alloc(32, 0xff)), -1);
  const packed = reopen(store);
  for (const id of ids.slice(0, 50)) {
    assert.deepEqual(await packed.idsWithPrefix(id.slice(0, 6)), [id]);
    assert.deepEqual((await packed.read(id)).data, Buffer.from(`obj ${ids.indexOf(id)}`));
  }
  const twoDigit = sorted[0]!.slice(0, 2);
  assert.deepEqual(
    await packed.idsWithPrefix(twoDigit),
    sorted.filter((id) => id.startsWith(twoDigit)),
  );
});

test('a flipped byte anywhere in a packed record is OBJECT_CORRUPT naming the object', async () => {
  const store = await freshStore();
  const samples = sampleObjects().filter((s) => s.data.length < 2000);
  const ids: ObjectId[] = [];
  for (const { type, data } of samples) ids.push((await store.write(type, data)).id);
  const pack = await packAll(store);
  for (const [i, id] of ids.entries()) {
    const entry = pack.entryAt(pack.indexOf(Buffer.from(id, 'hex')));
    // Every header byte, and every third payload byte.
    const end = entry.offset + entry.length;
    for (let at = entry.offset; at < end; at += at < entry.offset + HEADER_SIZE ? 1 : 3) {
      const original = await flipByte(pack.packPath, at);
      await assertError(reopen(store).read(id), 'OBJECT_CORRUPT', [id], `${id} byte ${at}`);
      await fs.writeFile(pack.packPath, original);
    }
    assert.deepEqual((await reopen(store).read(id)).data, samples[i]!.data);
  }
});

test('a damaged index or pack header/trailer is PACK_CORRUPT naming the file', async () => {
  const store = await freshStore();
  const { id } = await store.write('blob', Buffer.from('packed content\n'));
  const pack = await packAll(store);
  const loose = await store.write('blob', Buffer.from('loose content\n'));
  const index = await fs.readFile(pack.indexPath);
  const packBytes = await fs.readFile(pack.packPath);
  await fs.chmod(pack.indexPath, 0o644);
  await fs.chmod(pack.packPath, 0o644);

  const indexCases: [string, Buffer][] = [
    ['empty index', Buffer.alloc(0)],
    ['truncated index', index.subarray(0, index.length - 1)],
    ['flipped magic', Buffer.concat([Buffer.from('XGPI'), index.subarray(4)])],
    ['flipped fan-out byte', flipped(index, 8 + 0x58 * 4)],
    ['flipped ID byte', flipped(index, 8 + 1024 + 5)],
    ['flipped offset byte', flipped(index, 8 + 1024 + 32)],
    ['flipped checksum byte', flipped(index, index.length - 1)],
  ];
  for (const [what, bytes] of indexCases) {
    await fs.writeFile(pack.indexPath, bytes);
    await assertError(reopen(store).read(id), 'PACK_CORRUPT', [pack.indexPath, id], what);
    await assertError(reopen(store).info(id), 'PACK_CORRUPT', [pack.indexPath], what);
    await assertError(listIds(reopen(store)), 'PACK_CORRUPT', [pack.indexPath], what);
    // Loose objects stay readable; a packed object cannot be vouched for.
    assert.equal((await reopen(store).read(loose.id)).type, 'blob', what);
  }
  await fs.writeFile(pack.indexPath, index);

  const packCases: [string, Buffer][] = [
    ['flipped pack magic', flipped(packBytes, 0)],
    ['flipped pack version', flipped(packBytes, 4)],
    ['flipped object count', flipped(packBytes, 8)],
    ['flipped trailer', flipped(packBytes, packBytes.length - 1)],
    ['truncated pack', packBytes.subarray(0, packBytes.length - 1)],
    ['pack cut to its header', packBytes.subarray(0, 20)],
  ];
  for (const [what, bytes] of packCases) {
    await fs.writeFile(pack.packPath, bytes);
    await assertError(reopen(store).read(id), 'PACK_CORRUPT', [pack.packPath, id], what);
  }
  await fs.rm(pack.packPath);
  await assertError(reopen(store).read(id), 'PACK_CORRUPT', [pack.packPath], 'pack missing');
  await fs.writeFile(pack.packPath, packBytes);
  assert.equal((await reopen(store).read(id)).type, 'blob');

  // A pack whose payload bytes changed still loads (records verify on read),
  // but the whole-pack checksum and the record check repack runs catch it.
  await fs.writeFile(pack.packPath, flipped(packBytes, PACK_HEADER_SIZE + HEADER_SIZE + 1));
  const loaded = await Pack.load(path.dirname(pack.packPath), pack.name);
  await assertError(loaded.verifyChecksum(), 'PACK_CORRUPT', [pack.packPath], 'full check');
  await assertError(verifyPack(loaded, reopen(store)), 'OBJECT_CORRUPT', [id], 'record check');
});

test('a pack just written is checked back by its hash: a byte changed on disk is caught', async () => {
  const store = await freshStore();
  const ids: ObjectId[] = [];
  for (let i = 0; i < 3; i++)
    ids.push((await store.write('chunk', pseudoRandomBytes(40 * KiB, i))).id);
  const written = await packObjects(store, ids);
  await verifyWrittenPack(written.pack);
  const body = PACK_HEADER_SIZE + 40 * KiB + 5;
  const original = await flipByte(written.pack.packPath, body);
  const reloaded = await Pack.load(path.dirname(written.pack.packPath), written.name);
  await assertError(verifyWrittenPack(reloaded), 'PACK_CORRUPT', [written.pack.packPath], 'body');
  await fs.writeFile(written.pack.packPath, original);
  await verifyWrittenPack(await Pack.load(path.dirname(written.pack.packPath), written.name));
});

function flipped(bytes: Buffer, position: number): Buffer {
  const copy = Buffer.from(bytes);
  copy[position]! ^= 0xff;
  return copy;
}

test('a pack without its index is ignored; objects are packed only after they verify', async () => {
  const store = await freshStore();
  const { id } = await store.write('blob', Buffer.from('some content\n'));
  const pack = await packAll(store);
  await fs.rm(pack.indexPath);
  await assert.rejects(reopen(store).read(id), { code: 'OBJECT_MISSING' });
  assert.deepEqual(await listIds(reopen(store)), []);

  const other = await freshStore();
  const good = await other.write('blob', Buffer.from('good\n'));
  const bad = await other.write('blob', randomBytes(100));
  await flipByte(other.pathOf(bad.id), HEADER_SIZE + 3);
  await assertError(packObjects(other, [good.id, bad.id]), 'OBJECT_CORRUPT', [bad.id], 'pack');
  await assert.rejects(fs.readdir(other.packs.dir), { code: 'ENOENT' });
  assert.deepEqual(await fs.readdir(other.tmpDir), []);
});

test('a store finds objects that another process packed, or repacked, after it looked', async () => {
  const store = await freshStore();
  const first = await store.write('blob', Buffer.from('first\n'));
  const firstPack = await packAll(store);
  const reader = reopen(store);
  assert.equal((await reader.read(first.id)).type, 'blob'); // firstPack's index is now cached

  // Another process writes and packs a second object...
  const second = await reopen(store).write('blob', Buffer.from('second\n'));
  assert.equal((await reader.read(second.id)).type, 'blob'); // loose
  await packAll(reopen(store));
  assert.deepEqual((await reader.read(second.id)).data, Buffer.from('second\n'));
  // ...then merges both packs into a third and deletes them (repack -a -d).
  const merger = reopen(store);
  const packs = await merger.packs.all();
  const merged = await packObjects(merger, [first.id, second.id]);
  for (const pack of packs) {
    if (pack.name === merged.name) continue;
    await fs.rm(pack.indexPath);
    await fs.rm(pack.packPath);
  }
  await assert.rejects(fs.access(firstPack.packPath));
  const fresh = reopen(store);
  assert.deepEqual((await reader.read(first.id)).data, Buffer.from('first\n'));
  assert.equal((await reader.info(first.id)).type, 'blob');
  assert.deepEqual((await fresh.read(second.id)).data, Buffer.from('second\n'));
  assert.deepEqual(await listIds(reader), [first.id, second.id].sort());
});

test('a lookup lists the pack folders again only when they changed, or changed too recently to tell', async () => {
  const store = await freshStore();
  const first = await store.write('blob', Buffer.from('first\n'));
  await packAll(store);
  const packDir = store.packs.dir;
  const indexDir = path.join(path.dirname(packDir), 'index');
  await fs.mkdir(indexDir, { recursive: true });
  const setTimes = async (when: Date): Promise<void> => {
    for (const dir of [packDir, indexDir]) await fs.utimes(dir, when, when);
  };
  const listings = { count: 0 };
  const readdir = fs.readdir;
  (fs as { readdir: unknown }).readdir = (...args: Parameters<typeof fs.readdir>) => {
    listings.count++;
    return readdir(...args);
  };
  try {
    const absent = sha256Hex(Buffer.from('never written\n'));
    // Folders last changed an hour ago: after one scan, absent IDs cost no listing.
    const hourAgo = new Date(Date.now() - 3_600_000);
    await setTimes(hourAgo);
    const reader = reopen(store);
    assert.equal(await reader.has(first.id), true);
    listings.count = 0;
    for (let i = 0; i < 5; i++) assert.equal(await reader.has(absent), false);
    assert.equal(listings.count, 0, 'no listing while the folders are unchanged');
    // Another process packs an object: the folder's time moves, the reader lists again.
    const second = await reopen(store).write('blob', Buffer.from('second\n'));
    await packAll(reopen(store));
    await fs.rm(reader.pathOf(second.id), { force: true });
    assert.equal(await reader.has(second.id), true, 'a new pack is found');
    assert.ok(listings.count > 0);

    // Changed a second before the scan (within a coarse clock's tick of it):
    // even a change that leaves the time as it was is seen.
    const recent = new Date(Date.now() - 1000);
    await setTimes(recent);
    const racy = reopen(store);
    assert.equal(await racy.has(absent), false); // scans, with recent folder times
    const third = await reopen(store).write('blob', Buffer.from('third\n'));
    await packAll(reopen(store));
    await setTimes(recent);
    assert.equal(
      await racy.has(third.id),
      true,
      'listed again: the times were too recent to trust',
    );
  } finally {
    (fs as { readdir: unknown }).readdir = readdir;
  }
});

test('chunked files read back from a pack; a flipped byte in a packed chunk fails materializeFile and leaves the destination untouched', async () => {
  const store = await freshStore();
  const work = path.join(path.dirname(store.objectsDir), 'work');
  await fs.mkdir(work);
  const files = new FileStore(store);
  const content = pseudoRandomBytes(3 * 1024 * KiB, 7);
  await fs.writeFile(path.join(work, 'source.bin'), content);
  const stored = await files.storeFile(path.join(work, 'source.bin'), { chunkThreshold: 64 * KiB });
  await files.close();
  await store.flush();
  assert.equal(stored.kind, 'manifest');
  const manifest = await readManifest(store, stored.id);
  assert.ok(manifest.chunks.length >= 2);
  const pack = await packAll(store);

  const packed = reopen(store);
  assert.deepEqual(await readFileBytes(packed, 'manifest', stored.id), content);
  const dest = path.join(work, 'restored.bin');
  await materializeFile(packed, 'manifest', stored.id, dest, 0o644);
  assert.deepEqual(await fs.readFile(dest), content);
  const streamed: Buffer[] = [];
  await streamFileContent(packed, 'manifest', stored.id, async (chunk) => {
    streamed.push(Buffer.from(chunk));
  });
  assert.deepEqual(Buffer.concat(streamed), content);

  const victim = manifest.chunks[1]!;
  const entry = pack.entryAt(pack.indexOf(Buffer.from(victim.id, 'hex')));
  await fs.writeFile(dest, 'the old working file\n');
  for (const [what, at] of [
    ['payload', entry.offset + entry.length - 100],
    ['header', entry.offset + 9],
  ] as const) {
    const original = await flipByte(pack.packPath, at);
    await assertError(
      materializeFile(reopen(store), 'manifest', stored.id, dest, 0o644),
      'OBJECT_CORRUPT',
      [victim.id],
      `flipped ${what} byte`,
    );
    assert.equal(await fs.readFile(dest, 'utf8'), 'the old working file\n');
    assert.deepEqual((await fs.readdir(work)).sort(), ['restored.bin', 'source.bin']);
    await fs.writeFile(pack.packPath, original);
  }
  await materializeFile(reopen(store), 'manifest', stored.id, dest, 0o644);
  assert.deepEqual(await fs.readFile(dest), content);
});

test('pack file names follow the format', () => {
  assert.equal(packFileName('ab'.repeat(32)), `pack-${'ab'.repeat(32)}.pack`);
  assert.equal(packIndexFileName('ab'.repeat(32)), `pack-${'ab'.repeat(32)}.idx`);
});

test('records read into a cloud pack in place: the same pack as copying them, big ones in a buffer of their own', async () => {
  const store = await freshStore();
  // Over and under the direct-I/O size (256 KiB), packed and loose.
  const packed = [700 * KiB, 300 * KiB, 3 * KiB].map((n, i) => pseudoRandomBytes(n, i + 1));
  const ids: ObjectId[] = [];
  for (const data of packed) ids.push((await store.write('chunk', data)).id);
  await packAll(store);
  const loose = pseudoRandomBytes(400 * KiB, 9);
  ids.push((await store.write('chunk', loose)).id);
  const reader = reopen(store);

  const copied = new CloudPackWriter(Buffer.alloc(4 * 1024 * KiB));
  for (const id of ids) copied.add(id, await reader.readRecord(id));
  const inPlace = new CloudPackWriter(Buffer.alloc(4 * 1024 * KiB));
  for (const id of ids) {
    const spare = inPlace.spare();
    const record = await reader.readRecord(id, spare);
    assert.equal(record.buffer, spare.buffer, 'read into the pack');
    assert.equal(record.byteOffset, spare.byteOffset);
    inPlace.add(id, record);
  }
  const [a, b] = [copied.finish(), inPlace.finish()];
  assert.equal(b.name, a.name);
  assert.deepEqual(b.bytes, a.bytes);
  assert.deepEqual(parseCloudPack(b.bytes, 'in place').entries, a.entries);

  // A record bigger than what is left is read into a buffer of its own, and
  // the spare bytes are exactly what still fits.
  const small = new CloudPackWriter(Buffer.alloc(512 * KiB));
  const spare = small.spare();
  const big = await reader.readRecord(ids[0]!, spare);
  assert.notEqual(big.buffer, spare.buffer);
  assert.deepEqual(big, await reader.readRecord(ids[0]!));
  assert.equal(small.fits(spare.length), true);
  assert.equal(small.fits(spare.length + 1), false);
});

/** The folders of objects/ other than info/ (caches and gc's writer registrations). */
async function objectFolders(store: ObjectStore): Promise<string[]> {
  return (await fs.readdir(store.objectsDir)).filter((name) => name !== 'info');
}
