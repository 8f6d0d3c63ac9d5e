import assert from 'node:assert/strict';
import { test } from 'node:test';
import { detectFormat, type MediaFormat } from './detect.ts';
import { FORMATS, type FormatId } from './formats.ts';
import { MAX_DELTA_DEPTH, storageProfileFor } from './storage-profile.ts';

/** The format as detection reports it for a file of that extension. */
const byName = (name: string): MediaFormat => detectFormat(new Uint8Array(0), name);
const MB = 1_000_000;

test('containers are chunked by their structure, other compressed formats in fixed sizes', () => {
  const chunking = (name: string) => storageProfileFor(byName(name), 50 * MB).chunking;
  assert.equal(chunking('a.mp4'), 'mp4');
  assert.equal(chunking('a.mov'), 'mp4');
  assert.equal(chunking('a.m4a'), 'mp4');
  assert.equal(chunking('a.mkv'), 'ebml');
  assert.equal(chunking('a.webm'), 'ebml');
  assert.equal(chunking('a.wav'), 'riff');
  assert.equal(chunking('a.avi'), 'riff');
  assert.equal(chunking('a.aiff'), 'aiff');
  assert.equal(chunking('a.glb'), 'glb');
  for (const name of ['a.jpg', 'a.webp', 'a.heic', 'a.mp3', 'a.flac', 'a.zip', 'a.7z', 'a.usdz'])
    assert.equal(chunking(name), 'fixed', name);
  for (const name of ['a.psd', 'a.exr', 'a.csv', 'a.safetensors', 'a.blend', 'a.tar', 'x'])
    assert.equal(chunking(name), 'cdc', name);
});

test('compression follows the seed table', () => {
  const compression = (name: string, size = 10 * MB) =>
    storageProfileFor(byName(name), size).compression;
  assert.equal(compression('a.csv'), 'brotli');
  assert.equal(compression('a.json', 499 * MB), 'brotli');
  assert.equal(compression('a.csv', 500 * MB), 'zstd');
  assert.equal(compression('a.xml', 2000 * MB), 'zstd');
  assert.equal(compression('a.usda'), 'brotli');
  assert.equal(compression('a.safetensors'), 'zstd-fast');
  assert.equal(compression('a.pt'), 'zstd-fast');
  assert.equal(compression('a.gguf'), 'zstd-fast');
  assert.equal(compression('a.blend'), 'zstd');
  assert.equal(compression('a.nk'), 'zstd');
  assert.equal(compression('a.aep'), 'zstd');
  for (const name of ['a.mp4', 'a.jpg', 'a.mp3', 'a.zip', 'a.gz', 'a.prproj', 'a.parquet'])
    assert.equal(compression(name), 'store', name);
  for (const name of ['a.wav', 'a.psd', 'a.exr', 'a.glb', 'a.tar', 'mystery'])
    assert.equal(compression(name), 'zstd', name);
});

test('delta thresholds by category, never deeper than 10', () => {
  const deltaOf = (name: string) => storageProfileFor(byName(name), 10 * MB).delta;
  assert.deepEqual(deltaOf('a.blend'), { enabled: true, minSimilarity: 0.7, maxDepth: 10 });
  assert.deepEqual(deltaOf('a.safetensors'), { enabled: true, minSimilarity: 0.75, maxDepth: 8 });
  assert.deepEqual(deltaOf('a.mov'), { enabled: true, minSimilarity: 0.8, maxDepth: 3 });
  assert.deepEqual(deltaOf('a.png'), { enabled: true, minSimilarity: 0.85, maxDepth: 3 });
  assert.deepEqual(deltaOf('a.psd'), { enabled: true, minSimilarity: 0.85, maxDepth: 3 });
  for (const name of ['a.csv', 'a.wav', 'a.mp3', 'a.glb', 'a.zip', 'a.usd', 'mystery'])
    assert.equal(deltaOf(name).enabled, false, name);
  for (const id of Object.keys(FORMATS) as FormatId[]) {
    const ext = FORMATS[id].extensions[0] ?? id;
    assert.ok(storageProfileFor(byName(`a.${ext}`), MB).delta.maxDepth <= MAX_DELTA_DEPTH, id);
  }
});

test('a compressed variant of an uncompressed format is stored, chunked fixed', () => {
  const packed = detectFormat(
    Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), Buffer.alloc(64, 1)]),
    'shot.blend',
  );
  assert.equal(packed.format, 'blend');
  const profile = storageProfileFor(packed, 100 * MB);
  assert.equal(profile.compression, 'store');
  assert.equal(profile.chunking, 'fixed');
  assert.equal(profile.delta.enabled, true);
});
