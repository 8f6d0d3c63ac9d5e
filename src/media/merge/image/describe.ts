/**
 * What changed between two versions of an image, for `diff`: whether the
 * pixels changed (by bytes, then by decoded pixels, then tile by tile), a
 * "visually identical" label from a difference hash when the pixels differ
 * but look the same (a re-save), and each metadata block added, removed or
 * changed. Labels only: the merge never uses the perceptual hash.
 */
import type { MediaFormat } from '../../detect.ts';
import { readWhole } from '../../merge-strategy.ts';
import type { RandomAccess } from '../../info/random-access.ts';
import {
  blockDigests,
  imageDigest,
  LayoutError,
  UnsupportedLayout,
  type ImageLayout,
} from './layout.ts';
import { isContainer, layoutOf } from './containers.ts';
import {
  changedTiles,
  decode,
  differenceHash,
  hammingDistance,
  MAX_ENCODED_BYTES,
  PixelProblem,
} from './tiles.ts';
import { tagName, tiffTags } from './tiff.ts';

/** Hash bits two images may differ by and still be called visually identical. */
const VISUALLY_IDENTICAL_BITS = 3;

export async function describeChange(
  before: RandomAccess,
  after: RandomAccess,
  format: MediaFormat,
): Promise<string[]> {
  const id = format.format;
  try {
    if (isContainer(id)) {
      const [a, b] = [await layoutOf(id, before), await layoutOf(id, after)];
      const samePixels = (await imageDigest(before, a)) === (await imageDigest(after, b));
      return [
        samePixels ? 'pixels unchanged' : await pixelChange(before, after),
        ...(await metadataChanges(before, a, after, b)),
      ];
    }
    if (id === 'tif') {
      const [a, b] = [(await tiffTags(before)).tags, (await tiffTags(after)).tags];
      const lines = [await pixelChange(before, after)];
      for (const tag of new Set([...a.keys(), ...b.keys()])) {
        const change = changeOf(a.get(tag), b.get(tag));
        if (change) lines.push(`${tagName(tag)} ${change}`);
      }
      return lines;
    }
  } catch (error) {
    // A file that does not parse as its format gets no account (diff shows
    // the plain binary summary), as a merge of it is declined.
    if (error instanceof LayoutError || error instanceof UnsupportedLayout) return [];
    throw error;
  }
  return [];
}

function changeOf(a: string | undefined, b: string | undefined): string | undefined {
  if (a === b) return undefined;
  return a === undefined ? 'added' : b === undefined ? 'removed' : 'changed';
}

async function metadataChanges(
  before: RandomAccess,
  a: ImageLayout,
  after: RandomAccess,
  b: ImageLayout,
): Promise<string[]> {
  const [da, db] = [await blockDigests(before, a), await blockDigests(after, b)];
  const lines: string[] = [];
  for (const key of new Set([...da.keys(), ...db.keys()])) {
    const change = changeOf(da.get(key), db.get(key));
    const label = (a.blocks.get(key) ?? b.blocks.get(key))!.label;
    if (change) lines.push(`${label} ${change}`);
  }
  return lines;
}

/** How the pixels of two versions whose image data differ compare. */
async function pixelChange(before: RandomAccess, after: RandomAccess): Promise<string> {
  if (Math.max(before.size, after.size) > MAX_ENCODED_BYTES)
    return 'image data changed (too large to decode)';
  const [x, y] = [await readWhole(before), await readWhole(after)];
  try {
    const [a, b] = [await decode(x), await decode(y)];
    if (a.width !== b.width || a.height !== b.height) {
      return `size changed from ${a.width}x${a.height} to ${b.width}x${b.height}`;
    }
    if (a.channels !== b.channels) return `channels changed from ${a.channels} to ${b.channels}`;
    if (a.data.equals(b.data)) return 'pixels unchanged (image data re-encoded)';
    const distance = hammingDistance(await differenceHash(x), await differenceHash(y));
    const { changed, tiles } = changedTiles(a, b);
    const where = `pixels changed in ${changed} of ${tiles} tiles`;
    return distance <= VISUALLY_IDENTICAL_BITS
      ? `visually identical (a re-save: ${where}, perceptual hash ${distance} of 64 bits apart)`
      : where;
  } catch (error) {
    if (error instanceof PixelProblem) return `image data changed (${error.message})`;
    return `image data changed (does not decode: ${(error as Error).message})`;
  }
}
