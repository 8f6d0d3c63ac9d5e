/**
 * Sample frames compared in place: one pass reads base, ours and theirs in
 * frame-aligned blocks through their RandomAccess inputs (never a whole file)
 * and records, for each side, the runs of frames that differ from base.
 */
import { createHash } from 'node:crypto';
import type { RandomAccess } from '../../info/random-access.ts';

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

/** Bytes read from each input at once (a few stored chunks). */
const BLOCK_BYTES = 4 << 20;
/** Bytes compared at once inside a block that differs, before going frame by frame. */
const SPAN_BYTES = 4096;
/**
 * More changed runs than this on one side are not kept one by one: a new run
 * then extends the last, which can only widen a range (a conflict, never a
 * wrong merge), and bounds memory for noise-like edits.
 */
export const MAX_RANGES = 4096;

async function readExact(region: SampleRegion, offset: number, length: number): Promise<Buffer> {
  const data = await region.access.read(region.at + offset, length);
  if (data.length !== length) throw new Error(`short read at byte ${region.at + offset}`);
  return data;
}

class RangeList {
  readonly ranges: FrameRange[] = [];
  add(start: number, end: number): void {
    const last = this.ranges.at(-1);
    if (last && (last.end === start || this.ranges.length >= MAX_RANGES)) {
      this.ranges[this.ranges.length - 1] = { start: last.start, end };
    } else this.ranges.push({ start, end });
  }
}

/** Adds to `list` the runs of frames where `a` and `b` differ; both hold `frames` frames from `first`. */
function diffBlock(a: Buffer, b: Buffer, frameBytes: number, first: number, list: RangeList): void {
  const span = Math.max(frameBytes, Math.floor(SPAN_BYTES / frameBytes) * frameBytes);
  let runStart = -1;
  const close = (frame: number) => {
    if (runStart >= 0) list.add(runStart, frame);
    runStart = -1;
  };
  for (let s = 0; s < a.length; s += span) {
    const e = Math.min(a.length, s + span);
    if (a.compare(b, s, e, s, e) === 0) {
      close(first + s / frameBytes);
      continue;
    }
    for (let f = s; f < e; f += frameBytes) {
      const frame = first + f / frameBytes;
      if (a.compare(b, f, f + frameBytes, f, f + frameBytes) === 0) close(frame);
      else if (runStart < 0) runStart = frame;
    }
  }
  close(first + a.length / frameBytes);
}

/**
 * The frames each of `others` changed against `base`, within the frames both
 * hold (a length change is the caller's to account for). One read of each
 * input, BLOCK_BYTES at a time, the inputs read concurrently.
 */
export async function changedRanges(
  base: SampleRegion,
  others: readonly SampleRegion[],
  frameBytes: number,
  /** Tests pass small blocks, so that runs cross block boundaries. */
  blockBytes = BLOCK_BYTES,
): Promise<FrameRange[][]> {
  const lists = others.map(() => new RangeList());
  const blockFrames = Math.max(1, Math.floor(blockBytes / frameBytes));
  const common = others.map((other) => Math.min(base.frames, other.frames));
  const until = Math.max(0, ...common);
  // One block of every input at a time, read together: the inputs are different
  // readers, so no read can reuse a buffer another has returned (an input given
  // twice is copied).
  const readBlock = (frame: number) => {
    const count = Math.min(blockFrames, until - frame);
    return Promise.all([
      readExact(base, frame * frameBytes, count * frameBytes),
      ...others.map(async (other, i) => {
        const n = Math.min(count, common[i]! - frame);
        if (n <= 0) return undefined;
        const block = await readExact(other, frame * frameBytes, n * frameBytes);
        return other.access === base.access ? Buffer.from(block) : block;
      }),
    ]);
  };
  for (let frame = 0; frame < until; frame += blockFrames) {
    const [baseBlock, ...blocks] = await readBlock(frame);
    blocks.forEach((block, i) => {
      if (!block) return;
      const mine = baseBlock!.subarray(0, block.length);
      if (!mine.equals(block)) diffBlock(mine, block, frameBytes, frame, lists[i]!);
    });
  }
  return lists.map((list) => list.ranges);
}

/** Whether `length` bytes at `a` and at `b` are equal, read BLOCK_BYTES at a time. */
export async function sameBytes(
  a: RandomAccess,
  aAt: number,
  b: RandomAccess,
  bAt: number,
  length: number,
): Promise<boolean> {
  for (let done = 0; done < length; done += BLOCK_BYTES) {
    const n = Math.min(BLOCK_BYTES, length - done);
    const x = Buffer.from(await a.read(aAt + done, n));
    const y = await b.read(bAt + done, n);
    if (x.length !== n || !x.equals(y)) return false;
  }
  return true;
}

/** A digest of `length` bytes at `at`, read BLOCK_BYTES at a time. */
export async function digestBytes(
  access: RandomAccess,
  at: number,
  length: number,
): Promise<string> {
  const hash = createHash('sha256');
  for (let done = 0; done < length; done += BLOCK_BYTES) {
    const n = Math.min(BLOCK_BYTES, length - done);
    const data = await access.read(at + done, n);
    if (data.length !== n) throw new Error(`short read at byte ${at + done}`);
    hash.update(data);
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
