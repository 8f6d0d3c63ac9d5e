/**
 * PNG layout: the signature, then one segment per chunk (CRCs are not
 * checked here: the tile merge decodes through libpng, which does). Image
 * data is the critical chunks (IHDR, PLTE, IDAT, IEND), tRNS (it changes the
 * decoded pixels) and the APNG frame chunks; every other ancillary chunk is a
 * metadata block keyed by its type, text chunks (tEXt, zTXt, iTXt) by their
 * keyword, so two sides that set different keywords both keep theirs.
 */
import type { RandomAccess } from '../../info/random-access.ts';
import { BlockCollector, exact, identifier, LayoutError, type ImageLayout } from './layout.ts';

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** Ancillary chunks that belong to the image data. */
const IMAGE_ANCILLARY = new Set(['tRNS', 'acTL', 'fcTL', 'fdAT']);

/** Chunks that must precede PLTE and IDAT: a file lacking them gets them right after IHDR. */
const EARLY = new Set([
  'iCCP',
  'sRGB',
  'gAMA',
  'cHRM',
  'sBIT',
  'cICP',
  'mDCV',
  'cLLI',
  'mDCv',
  'cLLi',
]);

const LABELS: Record<string, string> = { eXIf: 'EXIF', iCCP: 'ICC profile', tIME: 'tIME' };

export async function pngLayout(access: RandomAccess): Promise<ImageLayout> {
  const head = await exact(access, 0, 33);
  if (!head.subarray(0, 8).equals(SIGNATURE)) throw new LayoutError('no PNG signature');
  if (head.toString('latin1', 12, 16) !== 'IHDR')
    throw new LayoutError('the first chunk is not IHDR');
  const width = head.readUInt32BE(16);
  const height = head.readUInt32BE(20);
  if (width === 0 || height === 0) throw new LayoutError(`image of ${width}x${height} pixels`);
  const out = new BlockCollector();
  out.image({ offset: 0, length: 8 });
  let late: number | undefined;
  let animated = false;
  let ended = false;
  let offset = 8;
  while (!ended) {
    const chunk = await exact(access, offset, 8);
    const length = chunk.readUInt32BE(0);
    const type = chunk.toString('latin1', 4, 8);
    if (!/^[A-Za-z]{4}$/.test(type)) throw new LayoutError(`bad chunk type at byte ${offset}`);
    const range = { offset, length: 12 + length };
    if (offset + range.length > access.size)
      throw new LayoutError(`chunk ${type} runs past the end`);
    if (type === 'IDAT' || type === 'fcTL' || type === 'acTL') late ??= out.segments.length;
    if (type === 'acTL') animated = true;
    ended = type === 'IEND';
    const ancillary = type.charCodeAt(0) >= 0x61;
    if (!ancillary || IMAGE_ANCILLARY.has(type)) {
      out.image(range);
    } else if (type === 'tEXt' || type === 'zTXt' || type === 'iTXt') {
      const keyword = identifier(await exact(access, offset + 8, Math.min(length, 80)), 80);
      out.metadata(range, `text:${keyword}`, `text '${keyword}'`, 'late');
    } else {
      out.metadata(
        range,
        type,
        LABELS[type] ?? `${type} chunk`,
        EARLY.has(type) ? 'early' : 'late',
      );
    }
    offset += range.length;
  }
  if (late === undefined) throw new LayoutError('no IDAT chunk');
  // Whatever follows IEND stays with the image data.
  if (offset < access.size) out.image({ offset, length: access.size - offset });
  return {
    container: 'png',
    width,
    height,
    lossless: true,
    animated,
    segments: out.segments,
    blocks: out.blocks,
    insertAt: { early: 2, late },
  };
}
