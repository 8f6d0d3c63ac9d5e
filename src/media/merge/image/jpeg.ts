/**
 * JPEG layout: the marker segments before the first scan, then everything
 * from SOS to the end of the file as one image-data segment (the
 * entropy-coded scans are never read). Metadata blocks are APP1 EXIF and
 * XMP (and extended XMP), APP2 ICC (all its segments, one block), APP13
 * IPTC, COM, and any other APPn by its identifier; APP0 (JFIF) and APP14
 * (Adobe colour transform) belong to the image data, as they change how the
 * pixels decode.
 */
import type { RandomAccess } from '../../info/random-access.ts';
import {
  BlockCollector,
  exact,
  identifier,
  LayoutError,
  UnsupportedLayout,
  type ImageLayout,
} from './layout.ts';

const SOF = new Set([0xc0, 0xc1, 0xc2, 0xc3, 0xc5, 0xc6, 0xc7, 0xc9, 0xca, 0xcb, 0xcd, 0xce, 0xcf]);

/** APPn identifiers that name a known block: [marker, identifier, key, label, joined]. */
const KNOWN: readonly [number, string, string, string, boolean][] = [
  [0xe1, 'Exif', 'exif', 'EXIF', false],
  [0xe1, 'http://ns.adobe.com/xap/1.0/', 'xmp', 'XMP', false],
  [0xe1, 'http://ns.adobe.com/xmp/extension/', 'xmp-extended', 'extended XMP', true],
  [0xe2, 'ICC_PROFILE', 'icc', 'ICC profile', true],
  [0xed, 'Photoshop 3.0', 'iptc', 'IPTC (APP13)', false],
];

export async function jpegLayout(access: RandomAccess): Promise<ImageLayout> {
  const soi = await exact(access, 0, 2);
  if (soi[0] !== 0xff || soi[1] !== 0xd8) throw new LayoutError('no SOI marker');
  const out = new BlockCollector();
  out.image({ offset: 0, length: 2 });
  let size: [number, number] | undefined;
  // New blocks go after SOI and a leading APP0, where JFIF requires it to stay.
  let insertAt = 1;
  for (let offset = 2; ;) {
    const marker = await exact(access, offset, 2);
    if (marker[0] !== 0xff) throw new LayoutError(`no marker at byte ${offset}`);
    const code = marker[1]!;
    if (code === 0xff) {
      out.image({ offset, length: 1 });
      offset += 1;
      continue;
    }
    if (code === 0x01 || (code >= 0xd0 && code <= 0xd8)) {
      out.image({ offset, length: 2 });
      offset += 2;
      continue;
    }
    if (code === 0xd9) throw new LayoutError('EOI before the first scan');
    if (code === 0xda) {
      if (!size) throw new LayoutError('no SOF marker before the image data');
      out.image({ offset, length: access.size - offset });
      return {
        container: 'jpg',
        width: size[0],
        height: size[1],
        lossless: false,
        animated: false,
        segments: out.segments,
        blocks: out.blocks,
        insertAt: { early: insertAt, late: insertAt },
      };
    }
    const length = (await exact(access, offset + 2, 2)).readUInt16BE(0);
    if (length < 2) throw new LayoutError(`segment of length ${length} at byte ${offset}`);
    const range = { offset, length: 2 + length };
    if (offset + range.length > access.size)
      throw new LayoutError(`segment at byte ${offset} runs past the end`);
    if (SOF.has(code)) {
      const sof = await exact(access, offset + 4, Math.min(length - 2, 6));
      if (sof.length < 5) throw new LayoutError('SOF segment too short');
      size = [sof.readUInt16BE(3), sof.readUInt16BE(1)];
    }
    if (code === 0xe0 && insertAt === out.segments.length) insertAt++;
    if ((code >= 0xe1 && code <= 0xef && code !== 0xee) || code === 0xfe) {
      const head = await exact(access, offset + 4, Math.min(length - 2, 40));
      const name = identifier(head, 40);
      if (code === 0xe2 && name === 'MPF') {
        // Its offsets point past EOI relative to itself: moving it breaks them.
        throw new UnsupportedLayout('a multi-picture JPEG (MPF) is not merged');
      }
      const known = KNOWN.find(([m, id]) => m === code && id === name);
      if (code === 0xfe) out.metadata(range, 'comment', 'comment', 'late');
      else if (known) out.metadata(range, known[2], known[3], 'late', known[4]);
      else out.metadata(range, `app${code - 0xe0}:${name}`, `APP${code - 0xe0} '${name}'`, 'late');
    } else {
      out.image(range);
    }
    offset += range.length;
  }
}
