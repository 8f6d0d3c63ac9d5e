import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hash } from 'node:crypto';
import { Buffer } from 'node:buffer';
import { readFile } from 'node:fs/promises';
import fc from 'fast-check';
import { compileGearScan } from '../../scripts/wat.ts';
import {
  chunkLengths,
  chunkSizesForFile,
  findChunkLength,
  GearScanner,
  type ChunkSizes,
} from './fastcdc.ts';
import { GEAR_SCAN_WASM } from './gear-scan-wasm.ts';
import { GEAR, deriveGearTable } from './gear.ts';

const KiB = 1024;
const MiB = 1024 * KiB;
const SMALL: ChunkSizes = { min: 2 * KiB, avg: 8 * KiB, max: 32 * KiB };
const TIER_1M = chunkSizesForFile(0);

/**
 * Deterministic test input: xorshift32 from `seed`, each state emitted as 4 little-endian
 * bytes. Part of the golden vectors: changing it changes every expected value below.
 */
function pseudoRandomBytes(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed | 0;
  for (let i = 0; i < length; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
    if (i + 1 < length) out[i + 1] = (x >>> 8) & 0xff;
    if (i + 2 < length) out[i + 2] = (x >>> 16) & 0xff;
    if (i + 3 < length) out[i + 3] = (x >>> 24) & 0xff;
  }
  return out;
}

function lengthsDigest(lengths: readonly number[]): string {
  const bytes = Buffer.alloc(lengths.length * 4);
  lengths.forEach((n, i) => bytes.writeUInt32BE(n, i * 4));
  return hash('sha256', bytes);
}

function chunkDigests(data: Uint8Array, sizes: ChunkSizes): { digest: string; length: number }[] {
  const digests: { digest: string; length: number }[] = [];
  let start = 0;
  for (const n of chunkLengths(data, sizes)) {
    digests.push({ digest: hash('sha256', data.subarray(start, start + n)), length: n });
    start += n;
  }
  return digests;
}

function assertChunkInvariants(data: Uint8Array, sizes: ChunkSizes, lengths: number[]): void {
  assert.equal(
    lengths.reduce((a, b) => a + b, 0),
    data.length,
  );
  lengths.forEach((n, i) => {
    assert.ok(n <= sizes.max, `chunk ${i} has ${n} bytes, more than max`);
    if (i < lengths.length - 1)
      assert.ok(n >= sizes.min, `chunk ${i} has ${n} bytes, less than min`);
    else assert.ok(n > 0);
  });
}

const input24 = pseudoRandomBytes(24 * MiB, 0x6d656469);

test('gear table matches its definition and golden digest', () => {
  assert.equal(GEAR.length, 256);
  assert.deepEqual(deriveGearTable(), GEAR);
  const bytes = Buffer.alloc(1024);
  GEAR.forEach((g, i) => bytes.writeInt32BE(g, i * 4));
  assert.equal(
    hash('sha256', bytes),
    '72a9bcddbfd0ab0a35d65277ee3f888083a5273c3516054a666fb0a7df7de89e',
  );
  assert.equal(GEAR[0], -1215857627);
  assert.equal(GEAR[255], -2051666467);
});

test('size tiers follow ARCHITECTURE.md §4 with decimal boundaries', () => {
  const tier = (size: number) => chunkSizesForFile(size).avg / MiB;
  assert.equal(tier(0), 1);
  assert.equal(tier(100e6 - 1), 1);
  assert.equal(tier(100e6), 2);
  assert.equal(tier(10e9 - 1), 2);
  assert.equal(tier(10e9), 4);
  assert.equal(tier(100e9 - 1), 4);
  assert.equal(tier(100e9), 8);
  assert.equal(tier(5e12), 8);
  for (const size of [0, 100e6, 10e9, 100e9]) {
    const { min, avg, max } = chunkSizesForFile(size);
    assert.equal(min, avg / 2);
    assert.equal(max, avg * 4);
  }
  assert.deepEqual(TIER_1M, { min: 512 * KiB, avg: 1 * MiB, max: 4 * MiB });
});

test('golden: the test input generator', () => {
  assert.equal(
    hash('sha256', input24),
    'cf65b7d786ae4e01075fb4b7f31bb39f7638d389b971a601ffe35dea552cdcb2',
  );
});

test('golden: small sizes on the first 256 KiB', () => {
  const lengths = [...chunkLengths(input24.subarray(0, 256 * KiB), SMALL)];
  assert.deepEqual(
    lengths,
    [
      8555, 9717, 14558, 8284, 2677, 5570, 7834, 8203, 14437, 9386, 9213, 4160, 9512, 9442, 13359,
      12312, 9315, 12164, 4597, 8340, 8486, 9280, 10310, 10040, 9546, 9099, 9032, 8781, 3499, 2436,
    ],
  );
});

test('golden: small sizes on 24 MiB', () => {
  const lengths = [...chunkLengths(input24, SMALL)];
  assertChunkInvariants(input24, SMALL, lengths);
  assert.equal(lengths.length, 2709);
  assert.equal(
    lengthsDigest(lengths),
    '5fd9b4e899842cd699725651a7f01ab647664c1929460ae71f3ac21e63e5aa71',
  );
});

test('golden: 1 MiB tier on 24 MiB', () => {
  const lengths = [...chunkLengths(input24, TIER_1M)];
  assertChunkInvariants(input24, TIER_1M, lengths);
  assert.deepEqual(
    lengths,
    [
      1185324, 1360579, 1322878, 748148, 715229, 1456469, 1941951, 1450450, 1057613, 749400,
      1342769, 1049123, 1091540, 1356082, 1361014, 1052506, 1222626, 620320, 1164563, 1495379,
      1283108, 138753,
    ],
  );
});

test('golden: constant input cuts only at max', () => {
  const zeros = new Uint8Array(100 * KiB);
  assert.deepEqual([...chunkLengths(zeros, SMALL)], [32768, 32768, 32768, 4096]);
});

test('chunks stay within [min, max] and cover the input, for many sizes', () => {
  const data = pseudoRandomBytes(3 * MiB + 123, 7);
  const cases: ChunkSizes[] = [
    SMALL,
    { min: 0, avg: 8, max: 8 },
    { min: 64, avg: 64, max: 64 },
    { min: 1 * KiB, avg: 4 * KiB, max: 4 * KiB },
    { min: 4 * KiB, avg: 16 * KiB, max: 128 * KiB },
    TIER_1M,
  ];
  for (const sizes of cases) assertChunkInvariants(data, sizes, [...chunkLengths(data, sizes)]);
});

test('short inputs: empty gives no chunk, up to min gives one chunk', () => {
  assert.deepEqual([...chunkLengths(new Uint8Array(0), SMALL)], []);
  assert.deepEqual([...chunkLengths(pseudoRandomBytes(100, 1), SMALL)], [100]);
  assert.deepEqual([...chunkLengths(pseudoRandomBytes(SMALL.min, 1), SMALL)], [SMALL.min]);
  assert.equal(findChunkLength(new Uint8Array(10), 10, 10, SMALL), 0);
});

test('a window of max bytes cuts like the whole input (streaming contract)', () => {
  for (const sizes of [SMALL, TIER_1M]) {
    let start = 0;
    for (const n of chunkLengths(input24, sizes)) {
      const windowEnd = Math.min(input24.length, start + sizes.max);
      assert.equal(findChunkLength(input24, start, windowEnd, sizes), n);
      start += n;
    }
  }
});

test('cuts depend only on the bytes from start, not on the offset or what precedes', () => {
  const data = input24.subarray(0, 2 * MiB);
  const expected = [...chunkLengths(data, SMALL)];
  for (const offset of [1, 3, 4093, 65536 + 7]) {
    const host = pseudoRandomBytes(offset + data.length + 999, offset);
    host.set(data, offset);
    const end = offset + data.length;
    const got: number[] = [];
    for (let start = offset; start < end;) {
      const n = findChunkLength(host, start, end, SMALL);
      got.push(n);
      start += n;
    }
    assert.deepEqual(got, expected, `offset ${offset}`);
  }
  const asBuffer = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  assert.deepEqual([...chunkLengths(asBuffer, SMALL)], expected);
  assert.deepEqual([...chunkLengths(data, SMALL)], expected);
});

test('a 4 KiB insert in the middle of 32 MiB changes only a few chunks', () => {
  const original = pseudoRandomBytes(32 * MiB, 0x5eed);
  const insert = pseudoRandomBytes(4 * KiB, 0x1235);
  const middle = 16 * MiB + 12345;
  const edited = new Uint8Array(original.length + insert.length);
  edited.set(original.subarray(0, middle), 0);
  edited.set(insert, middle);
  edited.set(original.subarray(middle), middle + insert.length);

  // Resync takes a few chunks, not one: the chunk holding the edit starts its hash and its
  // strict-mask region at shifted positions, so it can end at a new cut, and the next
  // chunk's min-size skip can step over an old cut point.
  const bounds = [
    { sizes: SMALL, maxFresh: 8 },
    { sizes: TIER_1M, maxFresh: 4 },
  ];
  for (const { sizes, maxFresh } of bounds) {
    const before = new Set(chunkDigests(original, sizes).map((c) => c.digest));
    const after = chunkDigests(edited, sizes);
    const fresh = after.filter((c) => !before.has(c.digest));
    const freshBytes = fresh.reduce((sum, c) => sum + c.length, 0);
    const label = `avg ${sizes.avg}: ${fresh.length} new chunks, ${freshBytes} bytes`;
    assert.ok(fresh.length >= 1 && fresh.length <= maxFresh, label);
    assert.ok(freshBytes <= insert.length + 2 * sizes.max, label);
  }
});

test('rejects invalid sizes and windows', () => {
  const buf = new Uint8Array(100);
  for (const bad of [
    { min: 2, avg: 12, max: 64 },
    { min: 2, avg: 4, max: 64 },
    { min: 16, avg: 8, max: 64 },
    { min: 2, avg: 8, max: 4 },
    { min: -1, avg: 8, max: 64 },
    { min: 2.5, avg: 8, max: 64 },
    { min: 2, avg: 2 ** 31, max: 2 ** 32 },
  ]) {
    assert.throws(() => findChunkLength(buf, 0, 100, bad), RangeError);
  }
  assert.throws(() => findChunkLength(buf, 0, 101, SMALL), RangeError);
  assert.throws(() => findChunkLength(buf, 50, 40, SMALL), RangeError);
  assert.throws(() => findChunkLength(buf, -1, 40, SMALL), RangeError);
  assert.throws(() => findChunkLength(buf, 0.5, 40, SMALL), RangeError);
});

/** Chunk lengths of `data` cut by a GearScanner, the data copied `offset` bytes into its memory. */
function scannerLengths(data: Uint8Array, sizes: ChunkSizes, offset = 0): number[] {
  const scanner = new GearScanner(offset + data.length + 1);
  const view = scanner.data.subarray(offset, offset + data.length);
  view.set(data);
  const lengths: number[] = [];
  for (let start = 0; start < view.length;) {
    const n = scanner.findChunkLength(view, start, view.length, sizes);
    lengths.push(n);
    start += n;
  }
  return lengths;
}

test('the committed WebAssembly chunker is gear-scan.wat compiled', async () => {
  const text = await readFile(new URL('./gear-scan.wat', import.meta.url), 'utf8');
  const compiled = Buffer.from(await compileGearScan(text));
  assert.ok(
    compiled.equals(Buffer.from(GEAR_SCAN_WASM, 'base64')),
    'gear-scan-wasm.ts is stale: run `node scripts/build-wasm.ts`',
  );
});

test('golden: the WebAssembly chunker cuts exactly where the JavaScript one does', () => {
  for (const sizes of [SMALL, TIER_1M]) {
    assert.deepEqual(scannerLengths(input24, sizes), [...chunkLengths(input24, sizes)]);
  }
  // The golden figures above, through the scanner, at an odd place in its memory.
  const small = scannerLengths(input24, SMALL, 4093);
  assert.equal(small.length, 2709);
  assert.equal(
    lengthsDigest(small),
    '5fd9b4e899842cd699725651a7f01ab647664c1929460ae71f3ac21e63e5aa71',
  );
  assert.deepEqual(scannerLengths(new Uint8Array(100 * KiB), SMALL), [32768, 32768, 32768, 4096]);
});

test('the WebAssembly chunker agrees with the JavaScript one on random windows and sizes', () => {
  const data = pseudoRandomBytes(2 * MiB, 99);
  const scanner = new GearScanner(data.length + 64);
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 63 }),
      fc.integer({ min: 0, max: data.length }),
      fc.integer({ min: 0, max: data.length }),
      fc.integer({ min: 3, max: 17 }),
      fc.integer({ min: 0, max: 4 }),
      fc.integer({ min: 0, max: 4 }),
      (shift, a, b, avgBits, minShift, maxShift) => {
        const avg = 2 ** avgBits;
        const sizes = { min: avg >> minShift, avg, max: avg << maxShift };
        const [start, end] = a <= b ? [a, b] : [b, a];
        const view = scanner.data.subarray(shift, shift + data.length);
        view.set(data);
        assert.equal(
          scanner.findChunkLength(view, start, end, sizes),
          findChunkLength(data, start, end, sizes),
        );
      },
    ),
    { numRuns: 400 },
  );
});

test('the WebAssembly chunker refuses memory that is not its own, and bad windows', () => {
  const scanner = new GearScanner(1024);
  assert.throws(() => scanner.findChunkLength(new Uint8Array(1024), 0, 1024, SMALL), RangeError);
  assert.throws(() => scanner.findChunkLength(scanner.data, 10, 5, SMALL), RangeError);
  assert.throws(() => scanner.findChunkLength(scanner.data, 0, 2048, SMALL), RangeError);
  assert.throws(() => new GearScanner(0), RangeError);
});
