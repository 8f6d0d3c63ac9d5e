/**
 * Cut points for EBML files (Matroska: MKV, MKA, MK3D; WebM). An element is
 * `ID (vint, 1-4 bytes, marker bits kept) | size (vint, 1-8 bytes) | payload`; a size whose
 * value bits are all ones is "unknown" (live streams): the element then ends where an
 * element that cannot be its child begins.
 *
 * Cuts: the start of every top-level element (the EBML header ends where the Segment
 * starts); the start of the Segment's payload, so the Segment header, whose size changes
 * with any edit, is a chunk of its own; and the start of every child of the Segment
 * (SeekHead, Void, Info, Tracks, Chapters, Attachments, Tags, Cues, and every Cluster),
 * so media in clusters keeps its chunks when the metadata before it grows or shrinks.
 *
 * An unknown-size Cluster is walked element by element (Timestamp, SimpleBlock, BlockGroup,
 * ...) to the next Segment-level element; an unknown-size Segment runs to the end of the
 * file, or to the next EBML header (chained live streams). Stops, keeping the cuts so far
 * (the end of the last complete element included), when the file does not start with an
 * EBML header, at an ID or size that does not parse,
 * at an element that ends past its parent or the file (truncation), and at an unknown size
 * on any element other than a Segment or Cluster.
 */
import type { ContainerScan } from './scan.ts';

const EBML_HEADER = 0x1a45dfa3;
const SEGMENT = 0x18538067;
const CLUSTER = 0x1f43b675;

/** IDs whose appearance ends an unknown-size Cluster (its siblings and the top level). */
const ENDS_UNKNOWN_CLUSTER = new Set([
  EBML_HEADER,
  SEGMENT,
  CLUSTER,
  0x114d9b74, // SeekHead
  0x1549a966, // Info
  0x1654ae6b, // Tracks
  0x1c53bb6b, // Cues
  0x1941a469, // Attachments
  0x1043a770, // Chapters
  0x1254c367, // Tags
]);

interface Element {
  readonly id: number;
  /** Bytes of ID and size. */
  readonly header: number;
  /** Payload bytes, or undefined for an unknown size. */
  readonly size: number | undefined;
}

async function readElement(scan: ContainerScan, at: number): Promise<Element | undefined> {
  const b = await scan.bytes(at, 12);
  const first = b[0];
  if (first === undefined || first < 0x10) return undefined;
  const idLength = Math.clz32(first) - 23;
  const sizeFirst = b[idLength];
  if (sizeFirst === undefined || sizeFirst === 0) return undefined;
  const sizeLength = Math.clz32(sizeFirst) - 23;
  if (b.length < idLength + sizeLength) return undefined;
  let id = 0;
  for (let i = 0; i < idLength; i++) id = id * 256 + b[i]!;
  const valueMask = 0xff >> sizeLength;
  let size = sizeFirst & valueMask;
  let allOnes = size === valueMask;
  for (let i = idLength + 1; i < idLength + sizeLength; i++) {
    size = size * 256 + b[i]!;
    allOnes &&= b[i] === 0xff;
  }
  return { id, header: idLength + sizeLength, size: allOnes ? undefined : size };
}

export async function ebmlCuts(scan: ContainerScan): Promise<void> {
  let at = 0;
  while (at < scan.size) {
    scan.step();
    scan.cut(at);
    const element = await readElement(scan, at);
    if (element === undefined || (at === 0 && element.id !== EBML_HEADER)) scan.stop();
    const payload = at + element.header;
    if (element.id === SEGMENT) {
      scan.cut(payload);
      const declaredEnd = element.size === undefined ? undefined : payload + element.size;
      at = await segmentChildCuts(scan, payload, declaredEnd);
      continue;
    }
    if (element.size === undefined || payload + element.size > scan.size) scan.stop();
    at = payload + element.size;
  }
}

/**
 * Cuts at the Segment's children from `at`; returns where the top level resumes: the
 * declared end, or for an unknown size the end of the file or the next EBML header.
 */
async function segmentChildCuts(
  scan: ContainerScan,
  from: number,
  declaredEnd: number | undefined,
): Promise<number> {
  const end = Math.min(declaredEnd ?? scan.size, scan.size);
  let at = from;
  while (at < end) {
    scan.step();
    scan.cut(at);
    const element = await readElement(scan, at);
    if (element === undefined) scan.stop();
    if (declaredEnd === undefined && (element.id === EBML_HEADER || element.id === SEGMENT)) {
      return at;
    }
    const payload = at + element.header;
    if (element.size === undefined) {
      if (element.id !== CLUSTER) scan.stop();
      at = await unknownClusterEnd(scan, payload, end);
      continue;
    }
    if (payload + element.size > end) scan.stop();
    at = payload + element.size;
  }
  if (declaredEnd !== undefined && declaredEnd > scan.size) scan.stop();
  return at;
}

/** Walks an unknown-size Cluster's children from `at` to the first element outside it. */
async function unknownClusterEnd(scan: ContainerScan, from: number, end: number): Promise<number> {
  let at = from;
  while (at < end) {
    scan.step();
    const element = await readElement(scan, at);
    if (element === undefined) scan.stop();
    if (ENDS_UNKNOWN_CLUSTER.has(element.id)) return at;
    if (element.size === undefined) scan.stop();
    at += element.header + element.size;
    if (at > end) scan.stop();
  }
  return at;
}
