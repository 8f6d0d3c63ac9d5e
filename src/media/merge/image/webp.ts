/**
 * WebP layout: the RIFF chunks after the header. The header and the VP8X
 * chunk are not segments: they are rebuilt for the merged file (RIFF size,
 * and the VP8X flags for ICC, EXIF and XMP set from the blocks it has).
 * Metadata blocks are ICCP, EXIF and XMP; every other chunk (VP8, VP8L,
 * ALPH, ANIM, ANMF, unknown) is image data.
 */
import type { RandomAccess } from '../../info/random-access.ts';
import { BlockCollector, exact, LayoutError, type ImageLayout, type WebpFrame } from './layout.ts';

export const VP8X_ICC = 0x20;
export const VP8X_ALPHA = 0x10;
export const VP8X_EXIF = 0x08;
export const VP8X_XMP = 0x04;
export const VP8X_ANIMATION = 0x02;

const BLOCKS: Record<string, [string, string, 'early' | 'late']> = {
  ICCP: ['icc', 'ICC profile', 'early'],
  EXIF: ['exif', 'EXIF', 'late'],
  'XMP ': ['xmp', 'XMP', 'late'],
};

export async function webpLayout(access: RandomAccess): Promise<ImageLayout> {
  const head = await exact(access, 0, 12);
  if (head.toString('latin1', 0, 4) !== 'RIFF' || head.toString('latin1', 8, 12) !== 'WEBP') {
    throw new LayoutError('no RIFF WEBP header');
  }
  const end = Math.min(access.size, 8 + head.readUInt32LE(4));
  const out = new BlockCollector();
  let frame: Omit<WebpFrame, 'alpha'> & { alpha: boolean } = {
    flags: 0,
    extended: false,
    canvasWidth: 0,
    canvasHeight: 0,
    alpha: false,
  };
  let image: 'lossy' | 'lossless' | undefined;
  let alphaChunk = false;
  for (let offset = 12; offset < end;) {
    const header = await exact(access, offset, 8);
    const id = header.toString('latin1', 0, 4);
    const size = header.readUInt32LE(4);
    const range = { offset, length: 8 + size + (size & 1) };
    if (offset + 8 + size > access.size) throw new LayoutError(`chunk '${id}' runs past the end`);
    // The pad byte may be missing at the very end of a sloppy file: keep what is there.
    const clipped = { offset, length: Math.min(range.length, access.size - offset) };
    if (id === 'VP8X') {
      if (offset !== 12 || size < 10) throw new LayoutError('misplaced or short VP8X chunk');
      const body = await exact(access, offset + 8, 10);
      frame = {
        flags: body[0]!,
        extended: true,
        canvasWidth: body.readUIntLE(4, 3) + 1,
        canvasHeight: body.readUIntLE(7, 3) + 1,
        alpha: (body[0]! & VP8X_ALPHA) !== 0,
      };
    } else if (BLOCKS[id]) {
      const [key, label, placement] = BLOCKS[id];
      out.metadata(clipped, key, label, placement);
    } else {
      if (id === 'VP8 ' || id === 'VP8L') {
        if (image) throw new LayoutError('more than one image chunk');
        image = id === 'VP8L' ? 'lossless' : 'lossy';
        const frameHead = await exact(access, offset + 8, 10);
        if (!frame.extended) {
          const [w, h, alpha] =
            id === 'VP8L'
              ? vp8lSize(frameHead)
              : [frameHead.readUInt16LE(6) & 0x3fff, frameHead.readUInt16LE(8) & 0x3fff, false];
          frame = { ...frame, canvasWidth: w, canvasHeight: h, alpha };
        }
      }
      if (id === 'ALPH') alphaChunk = true;
      out.image(clipped);
    }
    offset += range.length;
  }
  const animated = (frame.flags & VP8X_ANIMATION) !== 0;
  if (!image && !animated) throw new LayoutError('no VP8 or VP8L image chunk');
  // ICC goes right after VP8X (index 0 of the chunks after it); EXIF and XMP at the end.
  return {
    container: 'webp',
    width: frame.canvasWidth,
    height: frame.canvasHeight,
    lossless: image === 'lossless' && !alphaChunk,
    animated,
    segments: out.segments,
    blocks: out.blocks,
    insertAt: { early: 0, late: out.segments.length },
    webp: frame,
  };
}

function vp8lSize(head: Buffer): [number, number, boolean] {
  if (head[0] !== 0x2f) throw new LayoutError('no VP8L signature');
  const bits = head.readUInt32LE(1);
  return [(bits & 0x3fff) + 1, ((bits >>> 14) & 0x3fff) + 1, ((bits >>> 28) & 1) === 1];
}

/** The RIFF header and VP8X chunk for a merged body of `bodyLength` bytes with these blocks. */
export function webpHeader(
  frame: WebpFrame,
  bodyLength: number,
  keys: ReadonlySet<string>,
): Buffer {
  const metadata = keys.has('icc') || keys.has('exif') || keys.has('xmp');
  const extended = frame.extended || metadata;
  const vp8x = Buffer.alloc(extended ? 18 : 0);
  if (extended) {
    let flags = frame.flags & ~(VP8X_ICC | VP8X_EXIF | VP8X_XMP);
    if (frame.alpha) flags |= VP8X_ALPHA;
    if (keys.has('icc')) flags |= VP8X_ICC;
    if (keys.has('exif')) flags |= VP8X_EXIF;
    if (keys.has('xmp')) flags |= VP8X_XMP;
    vp8x.write('VP8X', 0, 'latin1');
    vp8x.writeUInt32LE(10, 4);
    vp8x[8] = flags;
    vp8x.writeUIntLE(frame.canvasWidth - 1, 12, 3);
    vp8x.writeUIntLE(frame.canvasHeight - 1, 15, 3);
  }
  const riff = Buffer.alloc(12);
  riff.write('RIFF', 0, 'latin1');
  riff.writeUInt32LE(4 + vp8x.length + bodyLength, 4);
  riff.write('WEBP', 8, 'latin1');
  return Buffer.concat([riff, vp8x]);
}
