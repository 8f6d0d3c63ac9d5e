/**
 * TIFF (and BigTIFF): the first IFD only — size, samples, depth, photometric
 * interpretation, compression, orientation. Strips and tiles are not read.
 * The IFD reader also serves EXIF orientation inside JPEG (jpeg.ts).
 */
import type { MediaReader } from './random-access.ts';
import type { MediaProperties } from './types.ts';

const PHOTOMETRIC: Record<number, [string, number]> = {
  0: ['gray', 1],
  1: ['gray', 1],
  2: ['rgb', 3],
  3: ['palette', 1],
  4: ['gray', 1],
  5: ['cmyk', 4],
  6: ['ycbcr', 3],
  8: ['lab', 3],
  9: ['lab', 3],
};

const COMPRESSION: Record<number, string> = {
  1: 'none',
  2: 'ccitt-rle',
  3: 'ccitt-fax3',
  4: 'ccitt-fax4',
  5: 'lzw',
  6: 'jpeg-old',
  7: 'jpeg',
  8: 'deflate',
  32946: 'deflate',
  32773: 'packbits',
  34712: 'jpeg2000',
  34887: 'lerc',
  34925: 'lzma',
  50000: 'zstd',
  50001: 'webp',
};

const TYPE_SIZES: Record<number, number> = {
  1: 1,
  2: 1,
  3: 2,
  4: 4,
  6: 1,
  7: 1,
  8: 2,
  9: 4,
  16: 8,
  17: 8,
};

/** The first IFD's entries: tag → its values (integers only; other types give []). */
export async function readFirstIfd(r: MediaReader, base: number): Promise<Map<number, number[]>> {
  const head = await r.bytes(base, 16);
  const order = head.toString('latin1', 0, 2);
  if (order !== 'II' && order !== 'MM') throw r.fail('no TIFF byte-order mark');
  const le = order === 'II';
  const u16 = (b: Buffer, p: number): number => (le ? b.readUInt16LE(p) : b.readUInt16BE(p));
  const u32 = (b: Buffer, p: number): number => (le ? b.readUInt32LE(p) : b.readUInt32BE(p));
  const u64 = (b: Buffer, p: number): number =>
    Number(le ? b.readBigUInt64LE(p) : b.readBigUInt64BE(p));
  const version = u16(head, 2);
  if (version !== 42 && version !== 43) throw r.fail(`unknown TIFF version ${version}`);
  const big = version === 43;
  const ifd = base + (big ? u64(head, 8) : u32(head, 4));
  const countBytes = await r.bytes(ifd, big ? 8 : 2);
  const count = big ? u64(countBytes, 0) : u16(countBytes, 0);
  const entrySize = big ? 20 : 12;
  if (count > 4096) throw r.fail(`first IFD claims ${count} entries`);
  const table = await r.bytes(ifd + countBytes.length, count * entrySize);
  const entries = new Map<number, number[]>();
  for (let i = 0; i < count; i++) {
    const p = i * entrySize;
    const tag = u16(table, p);
    const type = u16(table, p + 2);
    const n = big ? u64(table, p + 4) : u32(table, p + 4);
    const size = TYPE_SIZES[type];
    if (size === undefined || ![1, 3, 4, 16].includes(type) || n > 1024) {
      entries.set(tag, []);
      continue;
    }
    const inline = big ? 8 : 4;
    const valueAt = p + (big ? 12 : 8);
    const data =
      n * size <= inline
        ? table.subarray(valueAt, valueAt + n * size)
        : await r.bytes(base + (big ? u64(table, valueAt) : u32(table, valueAt)), n * size);
    const values: number[] = [];
    for (let k = 0; k < n; k++) {
      values.push(
        type === 1
          ? data[k]!
          : type === 3
            ? u16(data, k * 2)
            : type === 4
              ? u32(data, k * 4)
              : u64(data, k * 8),
      );
    }
    entries.set(tag, values);
  }
  return entries;
}

export async function readTiff(r: MediaReader): Promise<MediaProperties> {
  const ifd = await readFirstIfd(r, 0);
  const first = (tag: number): number | undefined => ifd.get(tag)?.[0];
  const width = first(256);
  const height = first(257);
  if (width === undefined || height === undefined) throw r.fail('no ImageWidth or ImageLength');
  const photometric = first(262) ?? 1;
  const samples = first(277) ?? 1;
  const [colorSpace, colorChannels] = PHOTOMETRIC[photometric] ?? [
    `photometric-${photometric}`,
    samples,
  ];
  const props: MediaProperties = {
    width,
    height,
    bitDepth: first(258) ?? 1,
    channels: samples,
    colorSpace,
    hasAlpha: samples > colorChannels,
    compression: COMPRESSION[first(259) ?? 1] ?? `tiff-${first(259)}`,
  };
  const orientation = first(274);
  if (orientation !== undefined) props.orientation = orientation;
  return props;
}
