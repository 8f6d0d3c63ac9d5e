/**
 * An image file as the merge sees it: an ordered list of segments (JPEG
 * marker segments, PNG chunks, WebP RIFF chunks), each either part of the
 * image data (what codes the pixels: SOF, DQT, DHT, the scans; IHDR, PLTE,
 * IDAT; VP8/VP8L, ALPH) or of a named metadata block (EXIF, XMP, ICC, a PNG
 * text keyword). Parsers read segment headers and the few bytes that name a
 * block, never the entropy-coded data, so a layout costs the file's
 * structure, not its size.
 */
import { createHash } from 'node:crypto';
import type { RandomAccess } from '../../info/random-access.ts';

export interface ByteRange {
  readonly offset: number;
  readonly length: number;
}

/** One unit of the file, in file order. */
export interface Segment extends ByteRange {
  /** The metadata block this segment belongs to; absent for image data. */
  readonly block?: string;
}

export interface MetadataBlock {
  /** Identity across versions: "exif", "icc", "text:Title", "app12:Ducky#2". */
  readonly key: string;
  /** How a message names it: "EXIF", "text 'Title'". */
  readonly label: string;
  /** Its segments (several for a JPEG ICC profile split over APP2 segments). */
  readonly segments: readonly ByteRange[];
  /**
   * Where the block goes in a file that lacks it: 'early' right after the
   * header (PNG colour chunks must precede PLTE), 'late' just before the
   * image data or, for WebP, at the end.
   */
  readonly placement: 'early' | 'late';
}

export type Container = 'jpg' | 'png' | 'webp';

export interface ImageLayout {
  readonly container: Container;
  readonly width: number;
  readonly height: number;
  /** Pixels decode exactly (PNG, VP8L WebP): the tile merge may re-encode them. */
  readonly lossless: boolean;
  /** Several frames (APNG, animated WebP): never tile-merged. */
  readonly animated: boolean;
  readonly segments: readonly Segment[];
  /** The metadata blocks, in file order. */
  readonly blocks: ReadonlyMap<string, MetadataBlock>;
  /** Segment index before which a block this file lacks is inserted. */
  readonly insertAt: { readonly early: number; readonly late: number };
  /** WebP only: what the rebuilt RIFF header and VP8X chunk need. */
  readonly webp?: WebpFrame;
}

export interface WebpFrame {
  /** VP8X flags as found (0 for a simple-format file). */
  readonly flags: number;
  readonly extended: boolean;
  readonly canvasWidth: number;
  readonly canvasHeight: number;
  /** Whether the image carries transparency (VP8X alpha flag, or the VP8L alpha hint). */
  readonly alpha: boolean;
}

/** A file that is not what its layout parser expects: the merge declines it. */
export class LayoutError extends Error {}

/** A file that parses but has a structure the merge does not handle (MPF offsets...). */
export class UnsupportedLayout extends Error {}

/** Groups segments into blocks, giving repeated keys an occurrence number ("comment#2"). */
export class BlockCollector {
  readonly segments: Segment[] = [];
  readonly blocks = new Map<string, MetadataBlock>();
  readonly #seen = new Map<string, number>();

  image(range: ByteRange): void {
    this.segments.push({ offset: range.offset, length: range.length });
  }

  /**
   * Adds a metadata segment; `joined` blocks (a split ICC profile) gather
   * all their segments under one key, others count repeats.
   */
  metadata(
    range: ByteRange,
    key: string,
    label: string,
    placement: MetadataBlock['placement'],
    joined = false,
  ): void {
    let unique = key;
    let name = label;
    const existing = this.blocks.get(key);
    if (joined && existing) {
      (existing.segments as ByteRange[]).push(range);
      this.segments.push({ ...range, block: key });
      return;
    }
    if (!joined) {
      const count = (this.#seen.get(key) ?? 0) + 1;
      this.#seen.set(key, count);
      if (count > 1) {
        unique = `${key}#${count}`;
        name = `${label} #${count}`;
      }
    }
    this.blocks.set(unique, { key: unique, label: name, segments: [range], placement });
    this.segments.push({ ...range, block: unique });
  }
}

/** How much of a range is hashed per read. */
const HASH_SPAN = 1024 * 1024;

/** A digest of the bytes of some ranges, read in bounded pieces. */
export async function digestRanges(
  access: RandomAccess,
  ranges: readonly ByteRange[],
): Promise<string> {
  const hash = createHash('sha256');
  for (const range of ranges) {
    hash.update(`${range.length}:`);
    for (let at = 0; at < range.length;) {
      const data = await access.read(range.offset + at, Math.min(HASH_SPAN, range.length - at));
      if (data.length === 0) throw new LayoutError(`short read at byte ${range.offset + at}`);
      hash.update(data);
      at += data.length;
    }
  }
  return hash.digest('hex');
}

/** The digest of the image data (every segment outside a metadata block). */
export function imageDigest(access: RandomAccess, layout: ImageLayout): Promise<string> {
  return digestRanges(
    access,
    layout.segments.filter((s) => s.block === undefined),
  );
}

/** Each metadata block's digest, by key. */
export async function blockDigests(
  access: RandomAccess,
  layout: ImageLayout,
): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const block of layout.blocks.values()) {
    out.set(block.key, await digestRanges(access, block.segments));
  }
  return out;
}

/** Exactly `length` bytes at `offset`, or a LayoutError. */
export async function exact(access: RandomAccess, offset: number, length: number): Promise<Buffer> {
  if (offset < 0 || offset + length > access.size) {
    throw new LayoutError(`truncated: needs bytes ${offset}-${offset + length} of ${access.size}`);
  }
  const data = await access.read(offset, length);
  if (data.length !== length) throw new LayoutError(`truncated at byte ${offset + data.length}`);
  return Buffer.from(data);
}

/** The printable ASCII prefix of `bytes` up to the first NUL (a JPEG APPn identifier, a PNG keyword). */
export function identifier(bytes: Buffer, max: number): string {
  let end = 0;
  while (end < Math.min(bytes.length, max) && bytes[end] !== 0) end++;
  return bytes.toString('latin1', 0, end).replace(/[^\x20-\x7e]/g, '?');
}
