/**
 * PNG: IHDR (size, depth, colour type, interlace), then chunk headers up to
 * the first IDAT to see whether a tRNS chunk adds transparency. Image data
 * is never read.
 */
import type { MediaReader } from './random-access.ts';
import type { MediaProperties } from './types.ts';

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** Colour type → [colour space, channels without tRNS]. */
const COLOR_TYPES: Record<number, [string, number]> = {
  0: ['gray', 1],
  2: ['rgb', 3],
  3: ['palette', 3],
  4: ['gray', 2],
  6: ['rgb', 4],
};

export async function readPng(r: MediaReader): Promise<MediaProperties> {
  const head = await r.bytes(0, 33);
  if (!head.subarray(0, 8).equals(SIGNATURE)) throw r.fail('no PNG signature');
  if (head.toString('latin1', 12, 16) !== 'IHDR') throw r.fail('the first chunk is not IHDR');
  const colorType = head[25]!;
  const known = COLOR_TYPES[colorType];
  if (!known) throw r.fail(`unknown colour type ${colorType}`);
  const [colorSpace, baseChannels] = known;
  const width = head.readUInt32BE(16);
  const height = head.readUInt32BE(20);
  if (width === 0 || height === 0) throw r.fail(`image of ${width}x${height} pixels`);
  let transparency = false;
  for (let offset = 33; offset + 8 <= r.size;) {
    const chunk = await r.bytes(offset, 8);
    const type = chunk.toString('latin1', 4, 8);
    if (type === 'IDAT' || type === 'IEND') break;
    if (type === 'tRNS') transparency = true;
    offset += 12 + chunk.readUInt32BE(0);
  }
  const hasAlpha = colorType === 4 || colorType === 6 || transparency;
  return {
    width,
    height,
    // A palette's entries are 8-bit samples whatever the index depth.
    bitDepth: colorType === 3 ? 8 : head[24]!,
    channels:
      baseChannels +
      (transparency && (colorType === 0 || colorType === 2 || colorType === 3) ? 1 : 0),
    colorSpace,
    hasAlpha,
    interlaced: head[28] === 1,
  };
}
