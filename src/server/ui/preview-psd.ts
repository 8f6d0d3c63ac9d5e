/**
 * The flattened image of a PSD/PSB (the "Image Data" section at the end of
 * the file, written when the document is saved with Maximize Compatibility),
 * decoded through RandomAccess without reading the layers.
 *
 * `locatePsdComposite` reads the header, the colour mode data (an indexed
 * document's palette), walks the image resources' headers (resource 1057,
 * version info, says whether the composite is real), reads the layer and
 * mask section's length fields and layer count (a negative count means the
 * first extra channel is the composite's transparency) and the image data's
 * compression and row-length table. `decodePsdComposite` then streams the
 * planar channels (raw or PackBits, 8/16/32-bit) a row at a time, box-averaging
 * into an RGBA image at most `maxSide` on its long side, so memory is that
 * small image plus a buffer per channel, whatever the document's size.
 */
import type { RandomAccess } from '../../media/info/random-access.ts';
import { MediaReader } from '../../media/info/random-access.ts';
import { checkPixels, type Deadline, PreviewRefused } from './preview-context.ts';

const NO_COMPOSITE = 'no composite image in this PSD';

export interface PsdComposite {
  readonly psb: boolean;
  readonly width: number;
  readonly height: number;
  readonly depth: number;
  /** 0 bitmap, 1 gray, 2 indexed, 3 RGB, 4 CMYK, 8 duotone (shown as gray). */
  readonly mode: number;
  /** Channels stored in the image data section. */
  readonly channels: number;
  /** Colour channels used (1, 3 or 4) and whether the next one is transparency. */
  readonly colourChannels: number;
  readonly alpha: boolean;
  readonly compression: 0 | 1;
  /** Where the row-length table (RLE) or the first channel's rows (raw) start. */
  readonly dataOffset: number;
  /** Indexed colour: 256 reds, then 256 greens, then 256 blues. */
  readonly palette?: Buffer;
}

const COLOUR_CHANNELS: Record<number, number> = { 0: 1, 1: 1, 2: 1, 3: 3, 4: 4, 8: 1 };
const MODE_NAMES: Record<number, string> = { 7: 'multichannel', 9: 'Lab' };

/** Reads a section of a file sequentially in blocks (copies: access buffers may be shared). */
class BlockReader {
  readonly #access: RandomAccess;
  readonly #end: number;
  readonly #block: number;
  #at: number;
  #buffer = Buffer.alloc(0);
  #pos = 0;

  constructor(access: RandomAccess, offset: number, end: number, block: number) {
    this.#access = access;
    this.#at = offset;
    this.#end = end;
    this.#block = block;
  }

  /** Exactly `n` bytes (a view valid until the next call), or a refusal at the end of the data. */
  async bytes(n: number): Promise<Buffer> {
    if (this.#buffer.length - this.#pos < n) {
      const left = this.#buffer.subarray(this.#pos);
      const want = Math.min(Math.max(n - left.length, this.#block), this.#end - this.#at);
      if (want < n - left.length) throw new PreviewRefused('the PSD composite image is truncated');
      const read = await this.#access.read(this.#at, want);
      if (read.length !== want) throw new PreviewRefused('the PSD composite image is truncated');
      this.#at += want;
      this.#buffer = Buffer.concat([left, read]);
      this.#pos = 0;
    }
    const out = this.#buffer.subarray(this.#pos, this.#pos + n);
    this.#pos += n;
    return out;
  }
}

/**
 * The composite's layout, or a refusal: too many pixels, no composite, a
 * colour mode, depth or compression not decoded here. Structure that does not
 * parse is MEDIA_CORRUPT.
 */
export async function locatePsdComposite(
  access: RandomAccess,
  maxPixels: number,
): Promise<PsdComposite> {
  const r = new MediaReader(access, 'psd');
  const header = await r.bytes(0, 26);
  if (header.toString('latin1', 0, 4) !== '8BPS') throw r.fail("no '8BPS' signature");
  const version = header.readUInt16BE(4);
  if (version !== 1 && version !== 2) throw r.fail(`unknown version ${version}`);
  const psb = version === 2;
  const channels = header.readUInt16BE(12);
  const height = header.readUInt32BE(14);
  const width = header.readUInt32BE(18);
  const depth = header.readUInt16BE(22);
  const mode = header.readUInt16BE(24);
  if (channels < 1 || channels > 56) throw r.fail(`${channels} channels`);
  if (width === 0 || height === 0) throw r.fail(`${width} x ${height} pixels`);
  checkPixels(width, height, maxPixels);
  const colourChannels = COLOUR_CHANNELS[mode];
  if (colourChannels === undefined)
    throw new PreviewRefused(
      `the ${MODE_NAMES[mode] ?? `mode ${mode}`} colour mode of this PSD is not previewed`,
    );
  if (mode === 0 ? depth !== 1 : ![8, 16, 32].includes(depth))
    throw new PreviewRefused(`${depth}-bit PSD composites are not previewed`);
  if (channels < colourChannels) throw r.fail(`${channels} channels in colour mode ${mode}`);

  const colourModeLength = (await r.bytes(26, 4)).readUInt32BE(0);
  let palette: Buffer | undefined;
  if (mode === 2) {
    if (colourModeLength < 768) throw r.fail('an indexed document without a palette');
    palette = Buffer.from(await r.bytes(30, 768));
  }
  const resourcesAt = 30 + colourModeLength;
  const resourcesLength = (await r.bytes(resourcesAt, 4)).readUInt32BE(0);
  if ((await realMergedData(r, resourcesAt + 4, resourcesLength)) === false)
    throw new PreviewRefused(NO_COMPOSITE);

  const lengthSize = psb ? 8 : 4;
  const length = async (at: number): Promise<number> =>
    psb
      ? Number((await r.bytes(at, 8)).readBigUInt64BE(0))
      : (await r.bytes(at, 4)).readUInt32BE(0);
  const sectionAt = resourcesAt + 4 + resourcesLength;
  const sectionLength = await length(sectionAt);
  const imageAt = sectionAt + lengthSize + sectionLength;
  let mergedAlpha = false;
  if (sectionLength >= lengthSize + 2) {
    const infoLength = await length(sectionAt + lengthSize);
    if (infoLength >= 2)
      mergedAlpha = (await r.bytes(sectionAt + 2 * lengthSize, 2)).readInt16BE(0) < 0;
  }
  if (imageAt + 2 > r.size) throw new PreviewRefused(NO_COMPOSITE);
  const compression = (await r.bytes(imageAt, 2)).readUInt16BE(0);
  if (compression === 2 || compression === 3)
    throw new PreviewRefused('ZIP-compressed PSD composites are not previewed');
  if (compression !== 0 && compression !== 1) throw r.fail(`image data compression ${compression}`);
  const rowBytes = mode === 0 ? Math.ceil(width / 8) : width * (depth / 8);
  const needed =
    compression === 0 ? channels * height * rowBytes : channels * height * (psb ? 4 : 2);
  if (imageAt + 2 + needed > r.size) throw new PreviewRefused(NO_COMPOSITE);
  return {
    psb,
    width,
    height,
    depth,
    mode,
    channels,
    colourChannels,
    // Only a layered document's negative count makes the extra channel transparency
    // (in a flat document it is a saved selection).
    alpha: mergedAlpha && channels > colourChannels,
    compression,
    dataOffset: imageAt + 2,
    ...(palette ? { palette } : {}),
  };
}

/** The version info resource's `hasRealMergedData`, or undefined when the file has none. */
async function realMergedData(
  r: MediaReader,
  start: number,
  length: number,
): Promise<boolean | undefined> {
  const end = start + length;
  for (let at = start; at + 12 <= end;) {
    const head = await r.bytes(at, 7);
    if (head.toString('latin1', 0, 4) !== '8BIM') return undefined;
    const id = head.readUInt16BE(4);
    const nameField = (head[6]! + 2) & ~1;
    const size = (await r.bytes(at + 6 + nameField, 4)).readUInt32BE(0);
    const data = at + 6 + nameField + 4;
    if (id === 1057 && size >= 5) return (await r.bytes(data + 4, 1))[0] !== 0;
    at = data + size + (size & 1);
  }
  return undefined;
}

export interface RgbaImage {
  readonly data: Buffer;
  readonly width: number;
  readonly height: number;
}

/** The composite as 8-bit RGBA, box-averaged to at most `maxSide` on its long side. */
export async function decodePsdComposite(
  access: RandomAccess,
  c: PsdComposite,
  maxSide: number,
  deadline: Deadline,
): Promise<RgbaImage> {
  const { width, height, depth, mode } = c;
  const factor = Math.max(1, Math.ceil(Math.max(width, height) / maxSide));
  const outWidth = Math.ceil(width / factor);
  const outHeight = Math.ceil(height / factor);
  const used = c.colourChannels + (c.alpha ? 1 : 0);
  const rowBytes = mode === 0 ? Math.ceil(width / 8) : width * (depth / 8);
  const rows = await channelRows(access, c, used, rowBytes);
  const decoded = Array.from({ length: used }, () => Buffer.alloc(rowBytes));
  const sample = sampleReader(depth, mode);
  const sums = new Float64Array(outWidth * 4);
  const out = Buffer.alloc(outWidth * outHeight * 4);
  const pixel = new Float64Array(4);
  const values = new Float64Array(used);
  let groupRows = 0;
  let outY = 0;
  for (let y = 0; y < height; y++) {
    if ((y & 15) === 0) deadline.check();
    for (let ch = 0; ch < used; ch++) await rows[ch]!(decoded[ch]!);
    for (let x = 0; x < width; x++) {
      for (let ch = 0; ch < used; ch++) values[ch] = sample(decoded[ch]!, x);
      toRgba(c, values, pixel);
      const o = Math.floor(x / factor) * 4;
      sums[o] = sums[o]! + pixel[0]!;
      sums[o + 1] = sums[o + 1]! + pixel[1]!;
      sums[o + 2] = sums[o + 2]! + pixel[2]!;
      sums[o + 3] = sums[o + 3]! + pixel[3]!;
    }
    groupRows++;
    if (groupRows === factor || y === height - 1) {
      for (let ox = 0; ox < outWidth; ox++) {
        const columns = Math.min(factor, width - ox * factor);
        const n = columns * groupRows;
        const o = ox * 4;
        const p = (outY * outWidth + ox) * 4;
        for (let k = 0; k < 4; k++) out[p + k] = Math.round(sums[o + k]! / n);
      }
      sums.fill(0);
      groupRows = 0;
      outY++;
    }
  }
  return { data: out, width: outWidth, height: outHeight };
}

/** For each used channel, a function that decodes its next row into a buffer. */
async function channelRows(
  access: RandomAccess,
  c: PsdComposite,
  used: number,
  rowBytes: number,
): Promise<((into: Buffer) => Promise<void>)[]> {
  const { height, channels } = c;
  const end = access.size;
  const block = 1024 * 1024;
  if (c.compression === 0) {
    return Array.from({ length: used }, (_, ch) => {
      const reader = new BlockReader(access, c.dataOffset + ch * height * rowBytes, end, block);
      return async (into: Buffer) => {
        (await reader.bytes(rowBytes)).copy(into);
      };
    });
  }
  // RLE: a table of every row's packed length (channel after channel), then the rows.
  const countSize = c.psb ? 4 : 2;
  const tableLength = channels * height * countSize;
  const starts: number[] = [];
  let at = c.dataOffset + tableLength;
  const table = new BlockReader(access, c.dataOffset, c.dataOffset + tableLength, 64 * 1024);
  for (let ch = 0; ch < used; ch++) {
    starts.push(at);
    for (let y = 0; y < height; y++) {
      const count = await table.bytes(countSize);
      at += c.psb ? count.readUInt32BE(0) : count.readUInt16BE(0);
    }
  }
  return starts.map((start, ch) => {
    const counts = new BlockReader(
      access,
      c.dataOffset + ch * height * countSize,
      c.dataOffset + tableLength,
      64 * 1024,
    );
    const reader = new BlockReader(access, start, end, block);
    return async (into: Buffer) => {
      const count = await counts.bytes(countSize);
      const packed = await reader.bytes(c.psb ? count.readUInt32BE(0) : count.readUInt16BE(0));
      unpackBits(packed, into);
    };
  });
}

/** PackBits: a header n, then n+1 literal bytes (n < 128) or one byte repeated 257-n times. */
function unpackBits(packed: Buffer, into: Buffer): void {
  let o = 0;
  let i = 0;
  while (i < packed.length && o < into.length) {
    const n = packed[i++]!;
    if (n < 128) {
      const count = Math.min(n + 1, into.length - o, packed.length - i);
      packed.copy(into, o, i, i + count);
      o += count;
      i += n + 1;
    } else if (n > 128) {
      const count = Math.min(257 - n, into.length - o);
      into.fill(packed[i++] ?? 0, o, o + count);
      o += count;
    }
  }
  if (o < into.length) into.fill(0, o);
}

/** A sample of a decoded row as 0..255 (32-bit float is linear light: encoded to sRGB). */
function sampleReader(depth: number, mode: number): (row: Buffer, x: number) => number {
  if (mode === 0) return (row, x) => ((row[x >> 3]! >> (7 - (x & 7))) & 1 ? 0 : 255);
  if (depth === 8) return (row, x) => row[x]!;
  if (depth === 16) return (row, x) => row.readUInt16BE(x * 2) / 257;
  return (row, x) => {
    const v = Math.max(0, Math.min(1, row.readFloatBE(x * 4)));
    return 255 * (v <= 0.0031308 ? 12.92 * v : 1.055 * v ** (1 / 2.4) - 0.055);
  };
}

function toRgba(c: PsdComposite, values: Float64Array, out: Float64Array): void {
  switch (c.mode) {
    case 3:
      out[0] = values[0]!;
      out[1] = values[1]!;
      out[2] = values[2]!;
      break;
    case 4: {
      // Stored inverted (255 = no ink): a naive conversion without a profile.
      const k = values[3]! / 255;
      out[0] = values[0]! * k;
      out[1] = values[1]! * k;
      out[2] = values[2]! * k;
      break;
    }
    case 2: {
      const index = Math.round(values[0]!);
      const palette = c.palette!;
      out[0] = palette[index]!;
      out[1] = palette[256 + index]!;
      out[2] = palette[512 + index]!;
      break;
    }
    default:
      out[0] = out[1] = out[2] = values[0]!;
  }
  out[3] = c.alpha ? values[c.colourChannels]! : 255;
}
