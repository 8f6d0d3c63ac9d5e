/**
 * Sample frames compared in place: one pass reads base, ours and theirs in
 * segments through their RandomAccess inputs (never a whole file)
 * and records, for each side, the runs of frames that differ from base.
 */
import { createHash } from 'node:crypto';
import { knownEqualSpan, type RandomAccess } from '../../info/random-access.ts';

/** Frames [start, end): half-open, in base's frame numbers. */
export interface FrameRange {
  readonly start: number;
  readonly end: number;
}

/** Where one version's frames lie. */
export interface SampleRegion {
  readonly access: RandomAccess;
  readonly at: number;
  readonly frames: number;
}

/**
 * The most read from one input at once. Reads also stop at the end of the
 * input's stored chunk (`fetchSpan`), so a read is a view of one chunk and
 * never a copy of several joined (fresh memory is slow on a busy machine).
 */
const BLOCK_BYTES = 4 << 20;
/** Bytes compared at once inside a segment that differs, before going byte by byte. */
const SPAN_BYTES = 4096;
/**
 * More changed runs than this on one side are not kept one by one: a new run
 * then extends the last, which can only widen a range (a conflict, never a
 * wrong merge), and bounds memory for noise-like edits.
 */
export const MAX_RANGES = 4096;

/** How much to read at `offset`: up to `max`, within one stored chunk when the input says where they end. */
export function spanAt(access: RandomAccess, offset: number, max: number): number {
  const span = access.fetchSpan?.(offset) ?? max;
  return Math.max(1, Math.min(max, span));
}

async function readExact(region: SampleRegion, offset: number, length: number): Promise<Buffer> {
  const data = await region.access.read(region.at + offset, length);
  if (data.length !== length) throw new Error(`short read at byte ${region.at + offset}`);
  return data;
}

class RangeList {
  readonly ranges: FrameRange[] = [];
  add(start: number, end: number): void {
    const last = this.ranges.at(-1);
    if (last && (start <= last.end || this.ranges.length >= MAX_RANGES)) {
      this.ranges[this.ranges.length - 1] = { start: last.start, end: Math.max(last.end, end) };
    } else this.ranges.push({ start, end });
  }
}

/**
 * Adds to `list` the frames where `a` and `b` differ: equal-length views of
 * the sample bytes from byte `offset` (not frame-aligned: segments end where
 * stored chunks do). A frame differs when any of its bytes does.
 */
function diffSegment(
  a: Buffer,
  b: Buffer,
  offset: number,
  frameBytes: number,
  list: RangeList,
): void {
  let i = 0;
  while (i < a.length) {
    const end = Math.min(a.length, i + SPAN_BYTES);
    if (a.compare(b, i, end, i, end) === 0) {
      i = end;
      continue;
    }
    while (a[i] === b[i]) i++;
    const frame = Math.floor((offset + i) / frameBytes);
    list.add(frame, frame + 1);
    i = (frame + 1) * frameBytes - offset;
  }
}

/**
 * The frames each of `others` changed against `base`, within the frames both
 * hold (a length change is the caller's to account for). One read of each
 * input, in segments of at most BLOCK_BYTES that end where any input's stored
 * chunk ends; the inputs are read concurrently.
 */
export async function changedRanges(
  base: SampleRegion,
  others: readonly SampleRegion[],
  frameBytes: number,
  /** Tests pass small blocks, so that runs cross block boundaries. */
  blockBytes = BLOCK_BYTES,
): Promise<FrameRange[][]> {
  const lists = others.map(() => new RangeList());
  const common = others.map((other) => Math.min(base.frames, other.frames) * frameBytes);
  const until = Math.max(0, ...common);
  for (let at = 0; at < until;) {
    let length = spanAt(base.access, base.at + at, Math.min(blockBytes, until - at));
    others.forEach((other, i) => {
      if (at < common[i]!)
        length = spanAt(other.access, other.at + at, Math.min(length, common[i]! - at));
    });
    // A segment in the same stored chunk, at the same place in it, as base's
    // is equal unread: an edit of a few MiB in a 500 MB take reads little.
    const unread = others.map(
      (other, i) =>
        at >= common[i]! ||
        knownEqualSpan(base.access, base.at + at, other.access, other.at + at) >= length,
    );
    if (unread.every(Boolean)) {
      at += length;
      continue;
    }
    // The inputs are different readers, so no read can reuse a buffer another
    // has returned (an input given twice is copied).
    const [mine, ...theirs] = await Promise.all([
      readExact(base, at, length),
      ...others.map(async (other, i) => {
        if (unread[i]) return undefined;
        const block = await readExact(other, at, length);
        return other.access === base.access ? Buffer.from(block) : block;
      }),
    ]);
    theirs.forEach((block, i) => {
      if (block && !mine!.equals(block)) diffSegment(mine!, block, at, frameBytes, lists[i]!);
    });
    at += length;
  }
  return lists.map((list) => list.ranges);
}

/** Whether `length` bytes at `a` and at `b` are equal (random-access.ts). */
export { sameBytes } from '../../info/random-access.ts';

/** A digest of `length` bytes at `at`, read in segments. */
export async function digestBytes(
  access: RandomAccess,
  at: number,
  length: number,
): Promise<string> {
  const hash = createHash('sha256');
  for (let done = 0; done < length;) {
    const n = spanAt(access, at + done, Math.min(BLOCK_BYTES, length - done));
    const data = await access.read(at + done, n);
    if (data.length !== n) throw new Error(`short read at byte ${at + done}`);
    hash.update(data);
    done += n;
  }
  return hash.digest('hex');
}

/** The first pair of ranges, one from each list, that overlap; lists are sorted. */
export function overlaps(
  a: readonly FrameRange[],
  b: readonly FrameRange[],
): [FrameRange, FrameRange][] {
  const found: [FrameRange, FrameRange][] = [];
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const x = a[i]!;
    const y = b[j]!;
    if (x.start < y.end && y.start < x.end) found.push([x, y]);
    if (x.end <= y.end) i++;
    else j++;
  }
  return found;
}

/**
 * Ranges for people to read: runs closer than `gap` frames joined (an edit
 * that left a few frames as they were is one edit to whoever reads about it).
 */
export function clusters(ranges: readonly FrameRange[], gap: number): FrameRange[] {
  const out: FrameRange[] = [];
  for (const range of ranges) {
    const last = out.at(-1);
    if (last && range.start - last.end <= gap)
      out[out.length - 1] = { start: last.start, end: Math.max(last.end, range.end) };
    else out.push(range);
  }
  return out;
}

/** "12.000 s–12.500 s (frames 576000–599999)". */
export function describeRange(range: FrameRange, sampleRate: number): string {
  const seconds = (frame: number) => (sampleRate > 0 ? (frame / sampleRate).toFixed(3) : '?');
  return `${seconds(range.start)} s–${seconds(range.end)} s (frames ${range.start}–${range.end - 1})`;
}
