import assert from 'node:assert/strict';
import { test } from 'node:test';
import zlib from 'node:zlib';
import { Codec } from '../compression/codec.ts';
import { chunkIdOf } from './object-id.ts';
import { encodeHeader } from './object-store.ts';
import { decodeRecord, RAW_SIZE_FLOOR, rawSizeLimit } from './record.ts';

const MiB = 1024 * 1024;

/** A chunk record whose header claims `claimed` bytes, its payload zstd of `zeros` zero bytes. */
function bomb(zeros: number, claimed: number): { id: string; record: Buffer } {
  const payload = zlib.zstdCompressSync(Buffer.alloc(zeros));
  const id = chunkIdOf(Buffer.alloc(Math.min(zeros, claimed)));
  return { id, record: Buffer.concat([encodeHeader('chunk', Codec.zstd, claimed), payload]) };
}

test('a decompression bomb is refused from its header, before anything is decompressed', async () => {
  const { id, record } = bomb(MiB, 2 ** 40);
  assert.ok(record.length < 1024, `${record.length} bytes`);
  const before = process.memoryUsage().rss;
  await assert.rejects(decodeRecord(id, record), (error: Error & { code?: string }) => {
    assert.equal(error.code, 'BAD_OBJECT_RECORD');
    assert.match(
      error.message,
      /claims 1099511627776 bytes from \d+ stored, more than a record may expand to/,
    );
    return true;
  });
  assert.ok(process.memoryUsage().rss - before < 32 * MiB);
});

test('a bomb that claims little but expands further stops at its claim; a known size is enforced unread', async () => {
  // Claims 48 MiB (under the floor), delivers 512 MiB: decompression stops at the claim.
  const { id, record } = bomb(512 * MiB, 48 * MiB);
  const before = process.memoryUsage().rss;
  await assert.rejects(decodeRecord(id, record), { code: 'BAD_OBJECT_RECORD' });
  assert.ok(process.memoryUsage().rss - before < 160 * MiB, 'memory beyond the claimed size');
  // A chunk whose manifest says how long it is: any other claim is refused before decoding.
  const honest = Buffer.alloc(4096, 7);
  const record2 = Buffer.concat([
    encodeHeader('chunk', Codec.zstd, honest.length),
    zlib.zstdCompressSync(honest),
  ]);
  const id2 = chunkIdOf(honest);
  assert.deepEqual((await decodeRecord(id2, record2, 4096)).data, honest);
  await assert.rejects(
    decodeRecord(id2, record2, 4095),
    /its header says 4096 bytes, 4095 were expected/,
  );
});

test('legitimate records pass: the largest chunk of zeros, and content compressed far past 64 times under the floor', async () => {
  assert.equal(rawSizeLimit(1), RAW_SIZE_FLOOR);
  assert.equal(rawSizeLimit(RAW_SIZE_FLOOR), 64 * RAW_SIZE_FLOOR);
  const zeros = Buffer.alloc(32 * MiB);
  const record = Buffer.concat([
    encodeHeader('chunk', Codec.zstd, zeros.length),
    zlib.zstdCompressSync(zeros),
  ]);
  const decoded = await decodeRecord(chunkIdOf(zeros), record);
  assert.equal(decoded.data.length, zeros.length);
});
