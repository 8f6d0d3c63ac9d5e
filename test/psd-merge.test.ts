/**
 * Media-aware merge of a real PSD (made with ag-psd): edits to different
 * layers on two branches merge into one file with both, read back layer by
 * layer; edits to the same layer are a ModifyModify conflict.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import { test } from 'node:test';
import { readPsd, writePsdBuffer, type Layer } from 'ag-psd';
// Sets ag-psd up to read layers as raw pixels (Node has no canvas).
import './layered-media.ts';
import { TempRepo } from './helpers.ts';

const SIZE = 16;

function pixels(seed: number): { width: number; height: number; data: Uint8ClampedArray } {
  const data = new Uint8ClampedArray(SIZE * SIZE * 4);
  for (let i = 0; i < data.length; i++) data[i] = (i * 7 + seed * 31) & 0xff;
  return { width: SIZE, height: SIZE, data };
}

function poster(layers: Record<string, number>): Buffer {
  const children: Layer[] = Object.entries(layers).map(([name, seed]) => ({
    name,
    top: 0,
    left: 0,
    imageData: pixels(seed),
  }));
  return writePsdBuffer({ width: SIZE, height: SIZE, imageData: pixels(0), children });
}

/** Each layer's name and the digest of its pixels. */
function layersOf(bytes: Buffer): Record<string, number[]> {
  const psd = readPsd(bytes, { useImageData: true });
  return Object.fromEntries(
    (psd.children ?? []).map((layer) => [
      layer.name ?? '',
      [...(layer.imageData?.data.slice(0, 8) ?? [])],
    ]),
  );
}

test('PSD edits to different layers merge; edits to the same layer conflict', async () => {
  const repo = await TempRepo.create();
  try {
    await fs.writeFile(repo.path('poster.psd'), poster({ Sky: 1, Actor: 2, Title: 3 }));
    await repo.ok(['add', 'poster.psd']);
    await repo.ok(['commit', '-q', '-m', 'poster']);
    await repo.ok(['switch', '-q', '-c', 'sky']);
    await fs.writeFile(repo.path('poster.psd'), poster({ Sky: 11, Actor: 2, Title: 3 }));
    await repo.ok(['commit', '-q', '-a', '-m', 'new sky']);
    await repo.ok(['switch', '-q', 'main']);
    await fs.writeFile(repo.path('poster.psd'), poster({ Sky: 1, Actor: 12, Title: 3 }));
    await repo.ok(['commit', '-q', '-a', '-m', 'new actor']);

    await repo.ok(['merge', '-q', '-m', 'merge sky', 'sky']);
    const merged = layersOf(await fs.readFile(repo.path('poster.psd')));
    const want = layersOf(poster({ Sky: 11, Actor: 12, Title: 3 }));
    assert.deepEqual(merged, want);
    assert.deepEqual(Object.keys(merged), ['Sky', 'Actor', 'Title']);
    assert.deepEqual((await repo.status()).unstaged, []);

    // Both change the sky: a conflict naming the layer; ours stays in place.
    await repo.ok(['switch', '-q', '-c', 'dusk']);
    await fs.writeFile(repo.path('poster.psd'), poster({ Sky: 21, Actor: 12, Title: 3 }));
    await repo.ok(['commit', '-q', '-a', '-m', 'dusk sky']);
    await repo.ok(['switch', '-q', 'main']);
    const ours = poster({ Sky: 31, Actor: 12, Title: 3 });
    await fs.writeFile(repo.path('poster.psd'), ours);
    await repo.ok(['commit', '-q', '-a', '-m', 'dawn sky']);
    const result = await repo.fails(['merge', 'dusk'], 1);
    assert.match(
      result.stderr,
      /CONFLICT \(content\): Merge conflict in poster\.psd \(psd-layers: both sides changed layer 'Sky'\)/,
    );
    const status = JSON.parse((await repo.ok(['status', '--json'])).out) as {
      unmerged: { path: string; type: string }[];
    };
    assert.deepEqual(status.unmerged, [{ path: 'poster.psd', type: 'ModifyModify' }]);
    assert.ok((await fs.readFile(repo.path('poster.psd'))).equals(ours));
  } finally {
    await repo.cleanup();
  }
});
