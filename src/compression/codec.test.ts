import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import fc from 'fast-check';
import sharp from 'sharp';
import {
  byteEntropy,
  classifyContent,
  Codec,
  codecName,
  decode,
  encode,
  encodeWithPolicy,
  type CompressionPolicy,
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

// ---- policies ----

const POLICIES: readonly CompressionPolicy[] = ['auto', 'brotli', 'zstd', 'zstd-fast', 'store'];
/** Bytes of the object header in front of every payload (docs/format.md). */
const OBJECT_HEADER = 16;

/** Float32 weights drawn from N(0, 0.02), as in a freshly initialised checkpoint. */
function float32Weights(count: number): Buffer {
  const weights = new Float32Array(count);
  let seed = 987;
  const next = (): number => (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  for (let i = 0; i < count; i += 2) {
    const radius = Math.sqrt(-2 * Math.log(next() || 1e-9)) * 0.02;
    const angle = 2 * Math.PI * next();
    weights[i] = radius * Math.cos(angle);
    if (i + 1 < count) weights[i + 1] = radius * Math.sin(angle);
  }
  return Buffer.from(weights.buffer);
}

test('encodeWithPolicy: each policy picks its codec on data that compresses', async () => {
  const csv = text(300_000);
  assert.equal((await encodeWithPolicy(csv, 'brotli')).codec, Codec.brotli);
  assert.equal((await encodeWithPolicy(csv, 'zstd')).codec, Codec.zstd);
  assert.equal((await encodeWithPolicy(csv, 'zstd-fast')).codec, Codec.zstd);
  assert.equal((await encodeWithPolicy(csv, 'store')).codec, Codec.store);
  assert.deepEqual(await encodeWithPolicy(csv, 'auto'), await encode(csv, classifyContent(csv)));
  for (const policy of POLICIES) {
    const encoded = await encodeWithPolicy(csv, policy);
    assert.deepEqual(await decode(encoded.codec, encoded.payload, csv.length), csv, policy);
  }
});

test('encodeWithPolicy: fast zstd saves on float32 tensors that the entropy probe lets through', async () => {
  const weights = float32Weights(256 * 1024);
  assert.ok(byteEntropy(weights) < 7.6, `entropy ${byteEntropy(weights)}`);
  const encoded = await encodeWithPolicy(weights, 'zstd-fast');
  assert.equal(encoded.codec, Codec.zstd);
  assert.ok(encoded.payload.length < weights.length * 0.95, `payload ${encoded.payload.length}`);
  assert.deepEqual(await decode(encoded.codec, encoded.payload, weights.length), weights);
});

test('encodeWithPolicy: incompressible and tiny data are stored under every policy', async () => {
  const random = randomBytes(200_000);
  for (const policy of POLICIES) {
    for (const data of [random, Buffer.from('tiny'), new Uint8Array(0)]) {
      const encoded = await encodeWithPolicy(data, policy);
      assert.equal(encoded.codec, Codec.store, `${policy} on ${data.length} bytes`);
      assert.equal(encoded.payload, data);
    }
  }
});

test('encodeWithPolicy: a codec that saves under 1/32 is not kept', async () => {
  // Random except where the probe samples (four 4 KiB windows): the probe sees
  // zeros and lets the codec run, which then saves only 16 KiB of 1 MiB.
  const data = randomBytes(1 << 20);
  const window = 4096;
  for (let w = 0; w < 4; w++) {
    const start = Math.floor(((data.length - window) * w) / 3);
    data.fill(0, start, start + window);
  }
  assert.ok(byteEntropy(data) < 1);
  for (const policy of ['brotli', 'zstd', 'zstd-fast'] as const) {
    const encoded = await encodeWithPolicy(data, policy);
    assert.equal(encoded.codec, Codec.store, policy);
    assert.equal(encoded.payload, data, policy);
  }
});

test('property: encodeWithPolicy never grows the data and decode restores it', async () => {
  const content = fc.oneof(
    fc.uint8Array({ maxLength: 4096 }),
    fc.string({ unit: 'grapheme', maxLength: 2000 }).map((s) => Buffer.from(s, 'utf8')),
    fc
      .tuple(fc.uint8Array({ minLength: 1, maxLength: 16 }), fc.integer({ min: 1, max: 500 }))
      .map(([unit, times]) => Buffer.concat(Array.from({ length: times }, () => unit))),
  );
  await fc.assert(
    fc.asyncProperty(content, fc.constantFrom(...POLICIES), async (data, policy) => {
      const encoded = await encodeWithPolicy(data, policy);
      assert.ok(encoded.payload.length <= data.length, 'payload larger than the data');
      const decoded = await decode(encoded.codec, encoded.payload, data.length);
      assert.deepEqual(new Uint8Array(decoded), new Uint8Array(data));
    }),
    { numRuns: 200 },
  );
});

// ---- real already-compressed files ----

const run = promisify(execFile);

function onPath(tool: string): string | undefined {
  for (const dir of (process.env['PATH'] ?? '').split(path.delimiter)) {
    const full = path.join(dir, tool);
    if (fs.existsSync(full)) return full;
  }
  return undefined;
}

const FFMPEG = onPath('ffmpeg');
const ZIP = onPath('zip');

async function withTempDir<T>(work: (dir: string) => Promise<T>): Promise<T> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'mediagit-codec-'));
  try {
    return await work(dir);
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

async function assertNeverLarger(name: string, data: Uint8Array): Promise<void> {
  for (const policy of POLICIES) {
    const encoded = await encodeWithPolicy(data, policy);
    assert.ok(
      OBJECT_HEADER + encoded.payload.length <= data.length + OBJECT_HEADER,
      `${name} under ${policy}: ${encoded.payload.length} > ${data.length}`,
    );
    const decoded = await decode(encoded.codec, encoded.payload, data.length);
    assert.ok(Buffer.from(decoded).equals(data), `${name} under ${policy} does not round-trip`);
  }
}

test('JPEG, PNG and WebP made by sharp are never stored larger than input + header', async () => {
  const noise = () =>
    sharp({
      create: {
        width: 256,
        height: 256,
        channels: 3,
        background: { r: 40, g: 90, b: 160 },
        noise: { type: 'gaussian', mean: 128, sigma: 40 },
      },
    });
  const images = {
    jpeg: await noise().jpeg({ quality: 85 }).toBuffer(),
    png: await noise().png().toBuffer(),
    webp: await noise().webp().toBuffer(),
  };
  for (const [name, data] of Object.entries(images)) await assertNeverLarger(name, data);
  // The probe sees JPEG's entropy-coded scan and stores it without trying a codec.
  assert.equal((await encodeWithPolicy(images.jpeg, 'zstd')).codec, Codec.store);
});

test('MP3 and AAC made by ffmpeg are never stored larger than input + header', async () => {
  await withTempDir(async (dir) => {
    const source = ['-f', 'lavfi', '-i', 'sine=frequency=440:duration=2', '-f', 'lavfi'];
    const noise = ['-i', 'anoisesrc=duration=2:amplitude=0.3', '-filter_complex', 'amix'];
    const outputs = [
      ['speech.mp3', ['-c:a', 'libmp3lame', '-b:a', '128k']],
      ['speech.aac', ['-c:a', 'aac', '-f', 'adts']],
    ] as const;
    await Promise.all(
      outputs.map(([file, codec]) =>
        run(FFMPEG!, ['-v', 'error', '-y', ...source, ...noise, ...codec, path.join(dir, file)]),
      ),
    );
    for (const [file] of outputs) {
      await assertNeverLarger(file, await fsp.readFile(path.join(dir, file)));
    }
  });
});

test('a ZIP made by zip is never stored larger than input + header', async () => {
  await withTempDir(async (dir) => {
    await fsp.writeFile(path.join(dir, 'notes.txt'), text(200_000));
    await fsp.writeFile(path.join(dir, 'noise.bin'), randomBytes(50_000));
    await run(ZIP!, ['-q', '-X', 'bundle.zip', 'notes.txt', 'noise.bin'], { cwd: dir });
    const zip = await fsp.readFile(path.join(dir, 'bundle.zip'));
    await assertNeverLarger('bundle.zip', zip);
    // Deflated text beside random bytes: nothing left to gain.
    assert.equal((await encodeWithPolicy(zip, 'zstd')).codec, Codec.store);
  });
});
