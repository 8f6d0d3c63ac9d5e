/**
 * The streaming comparison of sample frames against a frame-by-frame
 * reference, with blocks small enough that changed runs cross block and span
 * boundaries, and inputs of different lengths.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { bufferAccess, type RandomAccess } from '../../info/random-access.ts';
import { changedRanges, clusters, overlaps, type FrameRange } from './samples.ts';

/** `data` as an input stored in chunks of `size` bytes (the last shorter): reads report where chunks end. */
function chunkedAccess(data: Buffer, size: number): RandomAccess {
  return {
    ...bufferAccess(data),
    fetchSpan: (offset) => (offset >= data.length ? 0 : size - (offset % size)),
  };
}

/** The runs of frames where `a` and `b` differ, over the frames both hold, one frame at a time. */
function reference(a: Buffer, b: Buffer, frameBytes: number): FrameRange[] {
  const out: FrameRange[] = [];
  const frames = Math.min(a.length, b.length) / frameBytes;
  for (let f = 0; f < frames; f++) {
    const differs = !a
      .subarray(f * frameBytes, (f + 1) * frameBytes)
      .equals(b.subarray(f * frameBytes, (f + 1) * frameBytes));
    if (!differs) continue;
    const last = out.at(-1);
    if (last && last.end === f) out[out.length - 1] = { start: last.start, end: f + 1 };
    else out.push({ start: f, end: f + 1 });
  }
  return out;
}

test('property: changed runs found block by block equal a frame-by-frame comparison', async () => {
  const input = fc.record({
    frameBytes: fc.constantFrom(1, 2, 3, 4, 6, 8),
    frames: fc.integer({ min: 0, max: 3000 }),
    blockFrames: fc.integer({ min: 1, max: 700 }),
    edits: fc.array(
      fc.record({
        side: fc.integer({ min: 0, max: 1 }),
        at: fc.nat(),
        length: fc.integer({ min: 1, max: 900 }),
        byte: fc.integer({ min: 1, max: 255 }),
      }),
      { maxLength: 8 },
    ),
    chunkSizes: fc.array(fc.integer({ min: 7, max: 2000 }), { minLength: 3, maxLength: 3 }),
    lengths: fc.tuple(fc.integer({ min: -500, max: 500 }), fc.integer({ min: -500, max: 500 })),
  });
  await fc.assert(
    fc.asyncProperty(
      input,
      async ({ frameBytes, frames, blockFrames, edits, lengths, chunkSizes }) => {
        const base = Buffer.alloc(frames * frameBytes);
        for (let i = 0; i < base.length; i++) base[i] = (i * 31 + 7) & 0xff;
        const sides = lengths.map((delta) => {
          const n = Math.max(0, frames + delta);
          const out = Buffer.alloc(n * frameBytes);
          base.copy(out, 0, 0, Math.min(base.length, out.length));
          return out;
        });
        for (const e of edits) {
          const side = sides[e.side]!;
          const sideFrames = side.length / frameBytes;
          if (sideFrames === 0) continue;
          const at = e.at % sideFrames;
          // XOR changes every byte it touches, so the edit is a change of each frame it covers.
          for (
            let i = at * frameBytes;
            i < Math.min(side.length, (at + e.length) * frameBytes);
            i++
          )
            side[i] = side[i]! ^ e.byte;
        }
        // Inputs stored in chunks of unrelated sizes, not frame-aligned.
        const region = (data: Buffer, i: number) => ({
          access: chunkedAccess(data, chunkSizes[i]!),
          at: 0,
          frames: data.length / frameBytes,
        });
        const found = await changedRanges(
          region(base, 2),
          sides.map(region),
          frameBytes,
          blockFrames * frameBytes,
        );
        assert.deepEqual(
          found,
          sides.map((side) => reference(base, side, frameBytes)),
        );
      },
    ),
    { numRuns: 200 },
  );
});

test('overlaps and readable clusters of ranges', () => {
  const a = [
    { start: 0, end: 10 },
    { start: 20, end: 30 },
  ];
  const b = [
    { start: 5, end: 6 },
    { start: 10, end: 20 },
    { start: 29, end: 40 },
  ];
  assert.deepEqual(overlaps(a, b), [
    [a[0], b[0]],
    [a[1], b[2]],
  ]);
  assert.deepEqual(clusters(b, 4), [
    { start: 5, end: 20 },
    { start: 29, end: 40 },
  ]);
});
