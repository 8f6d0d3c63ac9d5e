import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import fc from 'fast-check';
import { containment, NO_FEATURE, SKETCH_SIZE, sketchOf, unionSketch } from './sketch.ts';
import { pseudoRandomBytes as randomBytesOf } from '../../test/bytes.ts';

const pseudoRandomBytes = (length: number, seed: number): Buffer =>
  randomBytesOf(length, seed, 'mediagit-sketch');

/** Changes one byte in every `every` bytes, like perturbed values of a tensor. */
function perturbed(data: Buffer, every: number): Buffer {
  const copy = Buffer.from(data);
  for (let i = 0; i < copy.length; i += every) copy[i] = copy[i]! ^ 0x5a;
  return copy;
}

/**
 * Golden vector: sketches are persisted (objects/info/sketches), so the same
 * bytes must sketch the same way in every version.
 */
test('golden vector: the sketch of fixed bytes', () => {
  const sketch = sketchOf(pseudoRandomBytes(256 * 1024, 1));
  assert.ok(sketch);
  const digest = createHash('sha256').update(sketch).digest('hex');
  assert.equal(digest, GOLDEN_SKETCH_DIGEST, `first values ${[...sketch.slice(0, 4)].join(',')}`);
});

const GOLDEN_SKETCH_DIGEST = '59115a76cae12742b67f7c09985af68ee629bbd62270ee59dd4093006a98ee76';

test('a sketch is ascending, distinct and padded only at the end', () => {
  const sketch = sketchOf(pseudoRandomBytes(1024 * 1024, 2))!;
  assert.equal(sketch.length, SKETCH_SIZE);
  for (let i = 1; i < sketch.length; i++) assert.ok(sketch[i - 1]! < sketch[i]!);
  assert.notEqual(sketch[SKETCH_SIZE - 1], NO_FEATURE);
  // Too little content, or content with no variety, has no sketch to trust.
  assert.equal(sketchOf(pseudoRandomBytes(1000, 3)), undefined);
  assert.equal(sketchOf(Buffer.alloc(1024 * 1024)), undefined);
});

test('containment tracks how much content is shared', () => {
  const size = 1024 * 1024;
  const a = pseudoRandomBytes(size, 4);
  const sa = sketchOf(a)!;
  assert.equal(containment(sa, size, sa, size), 1);
  // One byte changed in 80: about 95% of 4-byte windows survive.
  const light = containment(sketchOf(perturbed(a, 80))!, size, sa, size);
  assert.ok(light > 0.8, `lightly edited: ${light}`);
  // One byte in 8: few windows survive.
  const heavy = containment(sketchOf(perturbed(a, 8))!, size, sa, size);
  assert.ok(heavy < light && heavy < 0.75, `heavily edited: ${heavy}`);
  const unrelated = containment(sketchOf(pseudoRandomBytes(size, 5))!, size, sa, size);
  assert.ok(unrelated < 0.1, `unrelated: ${unrelated}`);
});

test('the union of two halves holds an object that straddles them', () => {
  const whole = pseudoRandomBytes(2 * 1024 * 1024, 6);
  const left = whole.subarray(0, 1024 * 1024);
  const right = whole.subarray(1024 * 1024);
  // A chunk cut differently: the last half of `left` and first half of `right`.
  const middle = whole.subarray(512 * 1024, 1536 * 1024);
  const sm = sketchOf(middle)!;
  const sl = sketchOf(left)!;
  const sr = sketchOf(right)!;
  const alone = containment(sm, middle.length, sl, left.length);
  const both = containment(sm, middle.length, unionSketch(sl, sr), whole.length);
  assert.ok(alone < 0.75, `one half alone: ${alone}`);
  assert.ok(both > 0.8, `both halves: ${both}`);
});

test('unionSketch is the bottom-k of the union (property)', () => {
  const sketchArb = fc
    .uniqueArray(fc.integer({ min: 0, max: 0xfffffffe }), { maxLength: SKETCH_SIZE })
    .map((values) => {
      const out = new Uint32Array(SKETCH_SIZE).fill(NO_FEATURE);
      out.set(values.sort((x, y) => x - y));
      return out;
    });
  fc.assert(
    fc.property(sketchArb, sketchArb, (a, b) => {
      const expected = [...new Set([...a, ...b].filter((v) => v !== NO_FEATURE))]
        .sort((x, y) => x - y)
        .slice(0, SKETCH_SIZE);
      const union = unionSketch(a, b);
      assert.deepEqual([...union.slice(0, expected.length)], expected);
      assert.ok(union.slice(expected.length).every((v) => v === NO_FEATURE));
    }),
  );
});
