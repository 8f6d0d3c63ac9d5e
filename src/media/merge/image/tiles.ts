/**
 * Pixels: decoding with sharp to raw 8-bit samples, the tile-by-tile
 * three-way merge (64×64 tiles, compared by their bytes), deterministic
 * lossless re-encoding, and the difference hash that labels a re-save in
 * `describe`. Decoding is bounded: sharp refuses inputs over MAX_PIXELS
 * (`limitInputPixels`), so a decompression bomb fails instead of allocating.
 */
import sharp from 'sharp';

export const TILE = 64;

/**
 * The largest image decoded for a merge: 4096×4096, at most 64 MiB of RGBA
 * per side. A pixel merge holds the three rasters (the merge writes into
 * ours) and one encoded file at a time: under 256 MiB with MAX_ENCODED_BYTES.
 */
export const MAX_PIXELS = 4096 * 4096;

/** The largest encoded file read whole for a pixel merge. */
export const MAX_ENCODED_BYTES = 64 * 1024 * 1024;

export interface Raster {
  readonly width: number;
  readonly height: number;
  readonly channels: 1 | 2 | 3 | 4;
  /** Stored as palette indices: decodes exactly, but a re-encode would be truecolour. */
  readonly palette: boolean;
  readonly data: Buffer;
}

/** Why a file's pixels cannot be tile-merged, in the words of a conflict. */
export class PixelProblem extends Error {}

/** What decides whether two rasters can be merged tile by tile. */
export function shapeOf(r: Raster): string {
  return `${r.width}x${r.height}, ${r.channels} channel${r.channels > 1 ? 's' : ''}`;
}

/**
 * The raw 8-bit pixels, exactly as stored: no ICC conversion, no rotation.
 * Throws PixelProblem for a file too large, deeper than 8
 * bits or multi-page, and sharp's error for one that does not decode.
 */
export async function decode(bytes: Buffer): Promise<Raster> {
  const options = { limitInputPixels: MAX_PIXELS } as const;
  // The header alone, unlimited, so a bomb is named rather than refused by sharp.
  const meta = await sharp(bytes, { limitInputPixels: false }).metadata();
  const pixels = (meta.width ?? 0) * (meta.height ?? 0);
  if (pixels > MAX_PIXELS) {
    throw new PixelProblem(
      `too large to merge (${meta.width}x${meta.height} pixels; the tile merge decodes at most ${MAX_PIXELS} pixels)`,
    );
  }
  if ((meta.pages ?? 1) > 1)
    throw new PixelProblem('a multi-page or animated image is not tile-merged');
  if (meta.depth !== 'uchar')
    throw new PixelProblem(`${meta.depth ?? 'unknown'} samples are not tile-merged (8-bit only)`);
  const { data, info } = await sharp(bytes, options)
    .keepIccProfile()
    .raw()
    .toBuffer({ resolveWithObject: true });
  return {
    width: info.width,
    height: info.height,
    channels: info.channels,
    palette: meta.isPalette === true,
    data,
  };
}

/** A tile's corners, inclusive, as messages name it: "(64,128)-(127,191)". */
export function tileName(x: number, y: number, r: Pick<Raster, 'width' | 'height'>): string {
  return `(${x},${y})-(${Math.min(x + TILE, r.width) - 1},${Math.min(y + TILE, r.height) - 1})`;
}

function tileEqual(a: Raster, b: Raster, x: number, y: number): boolean {
  const row = a.width * a.channels;
  const from = x * a.channels;
  const to = Math.min(x + TILE, a.width) * a.channels;
  for (let line = y; line < Math.min(y + TILE, a.height); line++) {
    const at = line * row;
    if (!a.data.subarray(at + from, at + to).equals(b.data.subarray(at + from, at + to)))
      return false;
  }
  return true;
}

function copyTile(into: Buffer, from: Raster, x: number, y: number): void {
  const row = from.width * from.channels;
  const start = x * from.channels;
  const end = Math.min(x + TILE, from.width) * from.channels;
  for (let line = y; line < Math.min(y + TILE, from.height); line++) {
    from.data.copy(into, line * row + start, line * row + start, line * row + end);
  }
}

export type TileMerge =
  | { readonly conflicts: readonly string[] }
  | {
      readonly pixels: Buffer;
      readonly fromOurs: number;
      readonly fromTheirs: number;
      readonly tiles: number;
    };

/**
 * Three-way merge tile by tile. The rasters must have one shape (the caller
 * checks and names a size or colour change). A tile one side changed takes
 * that side's pixels; one both changed to different pixels is a conflict.
 * The merged pixels are written into `ours.data` (no fourth raster): ours is
 * spent afterwards.
 */
export function mergeTiles(base: Raster, ours: Raster, theirs: Raster): TileMerge {
  const conflicts: string[] = [];
  const pixels = ours.data;
  let fromOurs = 0;
  let fromTheirs = 0;
  let tiles = 0;
  for (let y = 0; y < base.height; y += TILE) {
    for (let x = 0; x < base.width; x += TILE) {
      tiles++;
      const oursChanged = !tileEqual(base, ours, x, y);
      const theirsChanged = !tileEqual(base, theirs, x, y);
      if (oursChanged && theirsChanged) {
        if (!tileEqual(ours, theirs, x, y)) conflicts.push(tileName(x, y, base));
        else fromOurs++;
      } else if (theirsChanged) {
        copyTile(pixels, theirs, x, y);
        fromTheirs++;
      } else if (oursChanged) fromOurs++;
    }
  }
  if (conflicts.length > 0) return { conflicts };
  return { pixels, fromOurs, fromTheirs, tiles };
}

/** How many tiles differ between two rasters of one shape. */
export function changedTiles(a: Raster, b: Raster): { changed: number; tiles: number } {
  let changed = 0;
  let tiles = 0;
  for (let y = 0; y < a.height; y += TILE) {
    for (let x = 0; x < a.width; x += TILE) {
      tiles++;
      if (!tileEqual(a, b, x, y)) changed++;
    }
  }
  return { changed, tiles };
}

export type LosslessFormat = 'png' | 'webp' | 'tif';

/** Encodes merged pixels losslessly; the same pixels give the same bytes. */
export function encode(
  format: LosslessFormat,
  shape: Omit<Raster, 'data' | 'palette'>,
  pixels: Buffer,
): Promise<Buffer> {
  const image = sharp(pixels, {
    raw: { width: shape.width, height: shape.height, channels: shape.channels },
  });
  switch (format) {
    case 'png':
      return image.png({ compressionLevel: 6, adaptiveFiltering: false }).toBuffer();
    case 'webp':
      return image.webp({ lossless: true, exact: true, effort: 4 }).toBuffer();
    case 'tif':
      return image.tiff({ compression: 'deflate', predictor: 'horizontal' }).toBuffer();
  }
}

/**
 * A 64-bit difference hash: the image reduced to 9×8 grey pixels, one bit
 * per horizontal neighbour pair (is the left one brighter?). Two files a
 * few bits apart look the same to a person; the merge never uses it.
 */
export async function differenceHash(bytes: Buffer): Promise<bigint> {
  const grey = await sharp(bytes, { limitInputPixels: MAX_PIXELS })
    .greyscale()
    .resize(9, 8, { fit: 'fill', kernel: 'cubic' })
    .raw()
    .toBuffer();
  let hash = 0n;
  for (let y = 0; y < 8; y++) {
    for (let x = 0; x < 8; x++) {
      hash = (hash << 1n) | (grey[y * 9 + x]! > grey[y * 9 + x + 1]! ? 1n : 0n);
    }
  }
  return hash;
}

export function hammingDistance(a: bigint, b: bigint): number {
  let bits = a ^ b;
  let count = 0;
  while (bits > 0n) {
    count += Number(bits & 1n);
    bits >>= 1n;
  }
  return count;
}
