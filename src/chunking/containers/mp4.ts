/**
 * Cut points for ISO BMFF files (MP4, MOV, M4A, 3GP, fragmented MP4): the file is a
 * sequence of top-level boxes, each `u32 size | u32 type` (size 1: a u64 size follows;
 * size 0: the box runs to the end of the file).
 *
 * Cuts:
 * - the start of every top-level box;
 * - the start of `mdat`'s payload, so its header, whose size field changes with any change
 *   to the media, is a chunk of its own and the samples keep their chunks wherever the box
 *   moves;
 * - the start of every child of `moov` (`mvhd`, each `trak`, `udta`, ...);
 * - inside `trak`, `mdia`, `minf` and `stbl`, the start and end of every box of at least
 *   `LARGE_BOX` bytes: the per-sample tables (`stsz`, `stco`/`co64`, `ctts`, `stts`, `stss`,
 *   `sdtp`). The small boxes between them stay together in one chunk.
 *
 * So a metadata edit (a title in `udta`, the bitrate ffmpeg rewrites in `stsd`/`btrt` on a
 * re-mux) changes the `moov` header and a few small chunks, and the sample tables, which
 * are most of a long film's `moov` (megabytes), keep theirs; `stco`, which changes whenever
 * `mdat` moves (`+faststart`), changes alone.
 *
 * Stops, keeping the cuts so far, at a header that does not parse (size below the header
 * size, a type that is not printable ASCII, fewer than 8 bytes left; the end of the last
 * complete box is still cut) or at a box that ends past the end of the file (a truncated
 * file: its start, and for `mdat` its payload start, are still cut). Inside `moov` a box is
 * descended into only when its children tile it exactly; otherwise it stays one unit.
 */
import { fourcc, isPrintableCode, u32be, u64be, type ContainerScan } from './scan.ts';

const MDAT = fourcc('mdat');
const MOOV = fourcc('moov');
/** Boxes under `moov` that hold only boxes and lead to the sample tables. */
const TRACK_CONTAINERS = new Set([fourcc('trak'), fourcc('mdia'), fourcc('minf'), fourcc('stbl')]);
/**
 * A box under a track at least this large is a unit of its own. Below it, a box costs less
 * to store again when a neighbour changes than a chunk of its own costs in every version
 * (an object, a manifest line).
 */
export const LARGE_BOX = 4096;

interface Box {
  readonly type: number;
  /** Bytes of header: 8, or 16 with a 64-bit size. */
  readonly header: number;
  /** Bytes of the whole box, header included; may reach past the file's end. */
  readonly size: number;
}

async function readBox(
  scan: ContainerScan,
  at: number,
  end: number,
  toEndAllowed: boolean,
): Promise<Box | undefined> {
  const b = await scan.bytes(at, 16);
  if (b.length < 8 || !isPrintableCode(b, 4)) return undefined;
  const type = u32be(b, 4);
  const size32 = u32be(b, 0);
  if (size32 === 1) {
    if (b.length < 16) return undefined;
    const size = u64be(b, 8);
    return size >= 16 ? { type, header: 16, size } : undefined;
  }
  if (size32 === 0) return toEndAllowed ? { type, header: 8, size: end - at } : undefined;
  return size32 >= 8 ? { type, header: 8, size: size32 } : undefined;
}

export async function mp4Cuts(scan: ContainerScan): Promise<void> {
  let at = 0;
  while (at < scan.size) {
    scan.step();
    scan.cut(at);
    const box = await readBox(scan, at, scan.size, true);
    if (box === undefined) scan.stop();
    const end = at + box.size;
    if (box.type === MDAT) scan.cut(at + box.header);
    if (end > scan.size) scan.stop();
    if (box.type === MOOV) {
      const inner: number[] = [];
      await moovCuts(scan, at + box.header, end, 0, inner);
      for (const offset of inner) scan.cut(offset);
    }
    at = end;
  }
}

/**
 * Appends to `out` the cuts inside the payload [from, end) of `moov` (depth 0) or of a
 * track container (depth 1-4: trak's children to stbl's children), in ascending order.
 * When the children do not tile [from, end) exactly, appends nothing and returns false.
 */
async function moovCuts(
  scan: ContainerScan,
  from: number,
  end: number,
  depth: number,
  out: number[],
): Promise<boolean> {
  const mark = out.length;
  let at = from;
  while (at < end) {
    scan.step();
    const box = await readBox(scan, at, end, false);
    if (box === undefined || at + box.size > end) {
      out.length = mark;
      return false;
    }
    const boxEnd = at + box.size;
    if (depth === 0) out.push(at);
    if (depth < 4 && TRACK_CONTAINERS.has(box.type)) {
      await moovCuts(scan, at + box.header, boxEnd, depth + 1, out);
    } else if (depth > 0 && box.size >= LARGE_BOX) {
      out.push(at, boxEnd);
    }
    at = boxEnd;
  }
  return true;
}
