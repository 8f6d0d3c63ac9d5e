/**
 * Similarity sketches: a small fingerprint of an object's content from which
 * the fraction of content two objects share can be estimated without reading
 * either, so delta compression can pick a base (odb/delta-index.ts).
 *
 * Features are the hashes of 4-byte windows at content-defined anchors (a gear
 * hash rolled with an 8-bit shift, so each value depends on the last 4 bytes,
 * anchored where its low 9 bits are zero: about one feature per 512 bytes,
 * surviving insertions and shifts as CDC cut points do). The sketch is the
 * SKETCH_SIZE smallest distinct feature values after a mixing step (a bottom-k
 * MinHash), whose Jaccard estimate is turned into the fraction of one object's
 * content found in another (`containment`).
 *
 * Like the gear table, the definition is fixed: sketches are persisted.
 */
import { GEAR } from './gear.ts';

export const SKETCH_SIZE = 32;
const ANCHOR_MASK = 0x1ff;
/** Filler for sketches with fewer than SKETCH_SIZE features (sorts last). */
export const NO_FEATURE = 0xffffffff;

const scratch = { features: new Uint32Array(1 << 16) };

/**
 * The sketch of `data`: SKETCH_SIZE ascending uint32 values, padded with
 * NO_FEATURE; undefined when the data has too few anchors to compare (under
 * a few KiB, or content with no variety).
 */
export function sketchOf(data: Uint8Array): Uint32Array | undefined {
  const gear = GEAR;
  const mask = ANCHOR_MASK;
  let features = scratch.features;
  let count = 0;
  let h = 0;
  const n = data.length;
  for (let i = 0; i < n; i++) {
    h = ((h << 8) + (gear[data[i]!] as number)) | 0;
    if ((h & mask) === 0 && i >= 3) {
      if (count === features.length) {
        const grown = new Uint32Array(features.length * 2);
        grown.set(features);
        features = scratch.features = grown;
      }
      features[count++] = mix(h);
    }
  }
  if (count === 0) return undefined;
  const sorted = features.subarray(0, count).sort();
  const sketch = new Uint32Array(SKETCH_SIZE).fill(NO_FEATURE);
  let kept = 0;
  for (let i = 0; i < count && kept < SKETCH_SIZE; i++) {
    const value = sorted[i]!;
    if (kept === 0 || sketch[kept - 1] !== value) sketch[kept++] = value;
  }
  // Fewer than a quarter of a sketch says too little to trust an estimate.
  return kept >= SKETCH_SIZE / 4 ? sketch : undefined;
}

/** A bijective 32-bit mix (murmur3's finalizer), so bottom-k is a random sample. */
function mix(value: number): number {
  let x = value;
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

/** The bottom-k of the union of two sketches: the sketch of both objects' content together. */
export function unionSketch(a: Uint32Array, b: Uint32Array): Uint32Array {
  const out = new Uint32Array(SKETCH_SIZE).fill(NO_FEATURE);
  let i = 0;
  let j = 0;
  for (let k = 0; k < SKETCH_SIZE; k++) {
    const x = a[i] ?? NO_FEATURE;
    const y = b[j] ?? NO_FEATURE;
    if (x === NO_FEATURE && y === NO_FEATURE) break;
    if (x <= y) i++;
    if (y <= x) j++;
    out[k] = Math.min(x, y);
  }
  return out;
}

/**
 * Estimated fraction (0-1) of the content of A (`a`, `aLength` bytes) that is
 * also in B: the Jaccard index J of their feature sets from the bottom-k of
 * the union, turned into containment as J(|A|+|B|) / ((1+J)|A|), with the
 * byte lengths standing in for the set sizes (features are spread evenly).
 */
export function containment(
  a: Uint32Array,
  aLength: number,
  b: Uint32Array,
  bLength: number,
): number {
  let i = 0;
  let j = 0;
  let seen = 0;
  let shared = 0;
  while (seen < SKETCH_SIZE) {
    const x = a[i] ?? NO_FEATURE;
    const y = b[j] ?? NO_FEATURE;
    if (x === NO_FEATURE && y === NO_FEATURE) break;
    seen++;
    if (x === y) {
      shared++;
      i++;
      j++;
    } else if (x < y) {
      i++;
    } else {
      j++;
    }
  }
  if (seen === 0 || aLength === 0) return 0;
  const jaccard = shared / seen;
  return Math.min(1, (jaccard * (aLength + bLength)) / ((1 + jaccard) * aLength));
}
