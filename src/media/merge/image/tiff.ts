/**
 * TIFF tags: the first IFD's entries other than those that lay out the
 * pixels (size, samples, compression, strips, tiles...), each with a digest
 * of its type, count and value bytes. TIFF metadata is not spliced (a tag's
 * value may sit anywhere in the file, at an offset other tags point past):
 * the merge only checks that no side's tags are lost.
 */
import { createHash } from 'node:crypto';
import type { RandomAccess } from '../../info/random-access.ts';
import { exact, LayoutError, UnsupportedLayout } from './layout.ts';

/** Tags that describe how the pixels are stored, not what the image is about. */
const CODING = new Set([
  254, 255, 256, 257, 258, 259, 262, 266, 273, 274, 277, 278, 279, 280, 281, 284, 317, 320, 322,
  323, 324, 325, 338, 339, 340, 341, 347, 529, 530, 531, 532,
]);

/** Tags whose value is an offset to another IFD: their contents cannot be compared by bytes. */
const POINTERS: Record<number, string> = {
  330: 'SubIFDs',
  34665: 'EXIF',
  34853: 'GPS',
  40965: 'Interoperability',
};

export const TAG_NAMES: Record<number, string> = {
  269: 'DocumentName',
  270: 'ImageDescription',
  271: 'Make',
  272: 'Model',
  282: 'XResolution',
  283: 'YResolution',
  285: 'PageName',
  296: 'ResolutionUnit',
  305: 'Software',
  306: 'DateTime',
  315: 'Artist',
  316: 'HostComputer',
  700: 'XMP',
  33432: 'Copyright',
  33723: 'IPTC',
  34377: 'Photoshop',
  34675: 'ICC profile',
};

const TYPE_SIZES: Record<number, number> = {
  1: 1,
  2: 1,
  3: 2,
  4: 4,
  5: 8,
  6: 1,
  7: 1,
  8: 2,
  9: 4,
  10: 8,
  11: 4,
  12: 8,
  13: 4,
};

/** The largest tag value compared (an ICC profile or XMP packet is far smaller). */
const MAX_VALUE = 16 * 1024 * 1024;

export function tagName(tag: number): string {
  return `tag ${TAG_NAMES[tag] ?? tag}`;
}

/** Compression schemes that decode to exactly what was encoded. */
const LOSSLESS = new Set([1, 2, 3, 4, 5, 8, 32773, 32946, 34925, 50000]);

export interface TiffTags {
  /** The descriptive tags: tag → digest of its type, count and value. */
  readonly tags: Map<number, string>;
  /** Whether the pixels are stored losslessly (no JPEG, WebP, LERC...). */
  readonly lossless: boolean;
}

/** The first IFD's descriptive tags, and whether its compression is lossless. */
export async function tiffTags(access: RandomAccess): Promise<TiffTags> {
  const head = await exact(access, 0, 8);
  const order = head.toString('latin1', 0, 2);
  if (order !== 'II' && order !== 'MM') throw new LayoutError('no TIFF byte-order mark');
  const le = order === 'II';
  const u16 = (b: Buffer, p: number): number => (le ? b.readUInt16LE(p) : b.readUInt16BE(p));
  const u32 = (b: Buffer, p: number): number => (le ? b.readUInt32LE(p) : b.readUInt32BE(p));
  const version = u16(head, 2);
  if (version === 43) throw new UnsupportedLayout('BigTIFF is not merged');
  if (version !== 42) throw new LayoutError(`unknown TIFF version ${version}`);
  const ifd = u32(head, 4);
  const count = u16(await exact(access, ifd, 2), 0);
  const table = await exact(access, ifd + 2, count * 12);
  const tags = new Map<number, string>();
  let compression = 1;
  for (let i = 0; i < count; i++) {
    const entry = table.subarray(i * 12, i * 12 + 12);
    const tag = u16(entry, 0);
    if (tag === 259) compression = u16(entry, 8);
    if (CODING.has(tag)) continue;
    const pointer = POINTERS[tag];
    if (pointer)
      throw new UnsupportedLayout(
        `a TIFF with a ${pointer} sub-IFD is not merged (its tags are not compared)`,
      );
    const type = u16(entry, 2);
    const n = u32(entry, 4);
    const length = (TYPE_SIZES[type] ?? 1) * n;
    if (length > MAX_VALUE)
      throw new UnsupportedLayout(`TIFF tag ${tag} is larger than ${MAX_VALUE} bytes`);
    // Values that fit in 4 bytes sit in the entry itself.
    const value =
      length <= 4 ? entry.subarray(8, 8 + length) : await exact(access, u32(entry, 8), length);
    // Integers are hashed in one byte order, so a file rewritten in the other still compares equal.
    const hash = createHash('sha256').update(`${type}:${n}:`);
    hash.update(le ? value : swap(value, TYPE_SIZES[type] ?? 1, type));
    tags.set(tag, hash.digest('hex'));
  }
  return { tags, lossless: LOSSLESS.has(compression) };
}

function swap(value: Buffer, size: number, type: number): Buffer {
  if (size === 1) return value;
  // RATIONAL and SRATIONAL are two 4-byte integers each.
  const unit = type === 5 || type === 10 ? 4 : size;
  const out = Buffer.from(value);
  for (let at = 0; at + unit <= out.length; at += unit) out.subarray(at, at + unit).reverse();
  return out;
}
