/**
 * Property: random edits to disjoint 64×64 tiles of a 256×256 PNG, some on
 * ours and some on theirs (each side encoded at a random compression level),
 * merge to exactly the base with every edit applied. 200 runs decode in
 * process with sharp; a few merged files are also decoded by ffmpeg, a
 * reader that shares no code with the encoder.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import fc from 'fast-check';
import sharp from 'sharp';
import { detectFormat } from '../../detect.ts';
import { bufferAccess } from '../../info/random-access.ts';
import { writeMerged } from '../../merge-strategy.ts';
import { imageMergeStrategy } from './strategy.ts';

const run = promisify(execFile);
const SIZE = 256;
const TILE = 64;
const GRID = SIZE / TILE;

interface Edit {
  readonly tile: number;
  readonly side: 'ours' | 'theirs';
  readonly x: number;
  readonly y: number;
  readonly width: number;
  readonly height: number;
  readonly rgb: readonly [number, number, number];
}

/** Gradients and a little pseudo-random noise, the same every run. */
function baseImage(): Buffer {
  const data = Buffer.alloc(SIZE * SIZE * 3);
  let seed = 12345;
  for (let i = 0; i < data.length; i++) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    const pixel = Math.floor(i / 3);
    data[i] = ((pixel % SIZE) + Math.floor(pixel / SIZE) * (i % 3) + (seed >>> 28)) & 0xff;
  }
  return data;
}

/** Applies edits (a rectangle of one colour inside its tile each). */
function apply(raw: Buffer, edits: readonly Edit[]): Buffer {
  const out = Buffer.from(raw);
  for (const edit of edits) {
    const left = (edit.tile % GRID) * TILE + edit.x;
    const top = Math.floor(edit.tile / GRID) * TILE + edit.y;
    for (let y = top; y < top + edit.height; y++) {
      for (let x = left; x < left + edit.width; x++) out.set(edit.rgb, (y * SIZE + x) * 3);
    }
  }
  return out;
}

const editArb = fc
  .record({
    tile: fc.integer({ min: 0, max: GRID * GRID - 1 }),
    side: fc.constantFrom('ours' as const, 'theirs' as const),
    x: fc.integer({ min: 0, max: TILE - 1 }),
    y: fc.integer({ min: 0, max: TILE - 1 }),
    width: fc.integer({ min: 1, max: TILE }),
    height: fc.integer({ min: 1, max: TILE }),
    rgb: fc.tuple(
      fc.integer({ min: 0, max: 255 }),
      fc.integer({ min: 0, max: 255 }),
      fc.integer({ min: 0, max: 255 }),
    ),
  })
  .map((e): Edit => ({
    ...e,
    width: Math.min(e.width, TILE - e.x),
    height: Math.min(e.height, TILE - e.y),
  }));

const encode = (raw: Buffer, level: number) =>
  sharp(raw, { raw: { width: SIZE, height: SIZE, channels: 3 } })
    .png({ compressionLevel: level })
    .toBuffer();

test('random edits to disjoint tiles of a PNG merge to the base with all edits (200 runs)', async () => {
  const raw = baseImage();
  const base = await encode(raw, 6);
  const format = detectFormat(new Uint8Array(0), 'card.png');
  const samples: { merged: Buffer; want: Buffer }[] = [];
  await fc.assert(
    fc.asyncProperty(
      fc.uniqueArray(editArb, { selector: (e) => e.tile, maxLength: 8 }),
      fc.constantFrom(1, 6),
      fc.constantFrom(1, 6),
      async (edits, oursLevel, theirsLevel) => {
        const ours = await encode(
          apply(
            raw,
            edits.filter((e) => e.side === 'ours'),
          ),
          oursLevel,
        );
        const theirs = await encode(
          apply(
            raw,
            edits.filter((e) => e.side === 'theirs'),
          ),
          theirsLevel,
        );
        const sides = {
          base: bufferAccess(base),
          ours: bufferAccess(ours),
          theirs: bufferAccess(theirs),
        };
        const result = await imageMergeStrategy.merge({ path: 'card.png', format, ...sides });
        assert.ok('merged' in result, JSON.stringify(result));
        const parts: Buffer[] = [];
        await writeMerged(result.merged, sides, (data) => {
          parts.push(Buffer.from(data));
          return Promise.resolve();
        });
        const merged = Buffer.concat(parts);
        const decoded = await sharp(merged).raw().toBuffer({ resolveWithObject: true });
        assert.equal(decoded.info.channels, 3);
        const want = apply(raw, edits);
        assert.ok(decoded.data.equals(want), 'merged pixels are the base with every edit');
        const bothSides = new Set(edits.map((e) => e.side)).size === 2;
        if (bothSides && samples.length < 3) samples.push({ merged, want });
      },
    ),
    { numRuns: 200 },
  );

  // A few results through an independent PNG decoder.
  assert.ok(samples.length > 0, 'some runs edited both sides');
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'mediagit-tiles-'));
  try {
    for (const [i, { merged, want }] of samples.entries()) {
      const file = path.join(dir, `merged-${i}.png`);
      await fs.writeFile(file, merged);
      const { stdout } = await run(
        'ffmpeg',
        ['-v', 'error', '-i', file, '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-'],
        { encoding: 'buffer', maxBuffer: 4 * SIZE * SIZE },
      );
      assert.ok(stdout.equals(want), `ffmpeg decodes merged-${i}.png to the expected pixels`);
    }
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('random edits to one tile on both sides conflict naming that tile (50 runs)', async () => {
  const raw = baseImage();
  const base = await encode(raw, 6);
  const format = detectFormat(new Uint8Array(0), 'card.png');
  await fc.assert(
    fc.asyncProperty(editArb, editArb, async (a, b) => {
      const ours = apply(raw, [{ ...a, side: 'ours' }]);
      const theirs = apply(raw, [{ ...b, tile: a.tile, side: 'theirs' }]);
      fc.pre(!ours.equals(raw) && !theirs.equals(raw) && !ours.equals(theirs));
      const sides = {
        base: bufferAccess(base),
        ours: bufferAccess(await encode(ours, 1)),
        theirs: bufferAccess(await encode(theirs, 1)),
      };
      const result = await imageMergeStrategy.merge({ path: 'card.png', format, ...sides });
      const [x, y] = [(a.tile % GRID) * TILE, Math.floor(a.tile / GRID) * TILE];
      assert.deepEqual(result, {
        conflict: `both sides changed tile (${x},${y})-(${x + TILE - 1},${y + TILE - 1})`,
      });
    }),
    { numRuns: 50 },
  );
});
