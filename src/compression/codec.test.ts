import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import zlib from 'node:zlib';
import fc from 'fast-check';
import {
  byteEntropy,
  classifyContent,
  Codec,
  codecName,
  decode,
  encode,
  type ContentClass,
} from './codec.ts';

const CLASSES: readonly ContentClass[] = ['text', 'binary', 'compressed'];

function text(length: number): Buffer {
  const line = 'frame 0042: layer "Background" opacity=1.0 blend=normal\n';
  return Buffer.from(line.repeat(Math.ceil(length / line.length)).slice(0, length), 'utf8');
}

test('classifyContent: text, binary and already-compressed samples', () => {
  assert.equal(classifyContent(text(10_000)), 'text');
  assert.equal(classifyContent(Buffer.from('naïve café — 日本語 🎬\n'.repeat(100))), 'text');
  // A multi-byte character cut at the end of the sample is still text.
  const cut = Buffer.from('é'.repeat(10_000), 'utf8').subarray(0, 16 * 1024 + 1);
  assert.equal(classifyContent(cut), 'text');
  const withNul = text(4096);
  withNul[100] = 0;
  assert.equal(classifyContent(withNul), 'binary');
  assert.equal(classifyContent(randomBytes(64 * 1024)), 'compressed');
  assert.equal(classifyContent(new Uint8Array(0)), 'binary');
  assert.equal(classifyContent(Buffer.from([0xff, 0xfe, 0x00, 0x01])), 'binary');
});

test('byteEntropy: 0 for constant bytes, near 8 for random bytes, 1 for two equal symbols', () => {
  assert.equal(byteEntropy(Buffer.alloc(100_000, 7)), 0);
  assert.equal(byteEntropy(new Uint8Array(0)), 0);
  assert.ok(byteEntropy(randomBytes(1 << 20)) > 7.9);
  const alternating = Buffer.alloc(1 << 16);
  for (let i = 0; i < alternating.length; i++) alternating[i] = i % 2 === 0 ? 0x41 : 0x42;
  assert.ok(Math.abs(byteEntropy(alternating) - 1) < 1e-9);
});

test('text compresses with Brotli and round-trips', async () => {
  const data = text(200_000);
  const encoded = await encode(data, 'text');
  assert.equal(codecName(encoded.codec), 'brotli');
  assert.ok(encoded.payload.length < data.length / 20, `payload ${encoded.payload.length}`);
  assert.deepEqual(await decode(encoded.codec, encoded.payload, data.length), data);
});

test('compressible binary compresses with zstd and round-trips', async () => {
  // Fixed-size little-endian records: small integers, mostly zero bytes (low entropy).
  const data = Buffer.alloc(300_000);
  for (let i = 0; i + 8 <= data.length; i += 8) data.writeUInt32LE((i >> 3) % 1000, i);
  const encoded = await encode(data, 'binary');
  assert.equal(codecName(encoded.codec), 'zstd');
  assert.ok(encoded.payload.length < data.length / 4);
  assert.deepEqual(await decode(encoded.codec, encoded.payload, data.length), data);
});

test('incompressible data is stored as it is, whatever class the caller claims', async () => {
  const data = randomBytes(256 * 1024);
  for (const contentClass of CLASSES) {
    const encoded = await encode(data, contentClass);
    assert.equal(encoded.codec, Codec.store, contentClass);
    assert.equal(encoded.payload.length, data.length, contentClass);
    assert.deepEqual(await decode(encoded.codec, encoded.payload, data.length), data);
  }
});

test('tiny inputs are stored', async () => {
  for (const data of [new Uint8Array(0), Buffer.from('a'), text(63)]) {
    const encoded = await encode(data, 'text');
    assert.equal(encoded.codec, Codec.store);
    assert.equal(encoded.payload.length, data.length);
  }
});

test('property: encode never grows the data and decode restores it exactly', async () => {
  const content = fc.oneof(
    fc.uint8Array({ maxLength: 4096 }),
    fc.string({ unit: 'grapheme', maxLength: 2000 }).map((s) => Buffer.from(s, 'utf8')),
    fc
      .tuple(fc.uint8Array({ minLength: 1, maxLength: 16 }), fc.integer({ min: 1, max: 500 }))
      .map(([unit, times]) => Buffer.concat(Array.from({ length: times }, () => unit))),
  );
  await fc.assert(
    fc.asyncProperty(content, fc.constantFrom(...CLASSES), async (data, contentClass) => {
      const encoded = await encode(data, contentClass);
      assert.ok(encoded.payload.length <= data.length, 'payload larger than the data');
      const decoded = await decode(encoded.codec, encoded.payload, data.length);
      assert.deepEqual(new Uint8Array(decoded), new Uint8Array(data));
    }),
    { numRuns: 300 },
  );
});

test('decode refuses a payload that inflates beyond the size its header claims', async () => {
  const zeros = Buffer.alloc(1 << 20);
  const zstd = zlib.zstdCompressSync(zeros);
  const brotli = zlib.brotliCompressSync(zeros);
  await assert.rejects(decode(Codec.zstd, zstd, 1000));
  await assert.rejects(decode(Codec.brotli, brotli, 1000));
  assert.equal((await decode(Codec.zstd, zstd, zeros.length)).length, zeros.length);
});

test('decode rejects garbage and unknown codecs', async () => {
  await assert.rejects(decode(Codec.zstd, Buffer.from('not a zstd frame at all'), 100));
  await assert.rejects(decode(Codec.brotli, Buffer.from('\xff not a brotli stream either'), 100));
  await assert.rejects(decode(7, Buffer.from('x'), 1), /unknown codec 7/);
});
