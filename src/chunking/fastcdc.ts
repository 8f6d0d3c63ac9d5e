import { Buffer } from 'node:buffer';
import { GEAR } from './gear.ts';
import { GEAR_SCAN_WASM } from './gear-scan-wasm.ts';

/**
 * Chunk size parameters in bytes. `avg` must be a power of two between 2^3 and 2^30,
 * and `0 <= min <= avg <= max`, all integers.
 */
export interface ChunkSizes {
  readonly min: number;
  readonly avg: number;
  readonly max: number;
}

const MiB = 1024 * 1024;

function tier(avg: number): ChunkSizes {
  return Object.freeze({ min: avg / 2, avg, max: avg * 4 });
}

const TIER_1M = tier(1 * MiB);
const TIER_2M = tier(2 * MiB);
const TIER_4M = tier(4 * MiB);
const TIER_8M = tier(8 * MiB);

/**
 * Size tier for a file of `fileSize` bytes (ARCHITECTURE.md §4), with decimal units and
 * half-open ranges: [0, 100 MB) avg 1 MiB; [100 MB, 10 GB) avg 2 MiB; [10 GB, 100 GB)
 * avg 4 MiB; from 100 GB avg 8 MiB. Always min = avg / 2 and max = avg * 4. The
 * returned objects are frozen and shared.
 */
export function chunkSizesForFile(fileSize: number): ChunkSizes {
  if (!(fileSize >= 0)) throw new RangeError(`invalid file size ${fileSize}`);
  if (fileSize < 100e6) return TIER_1M;
  if (fileSize < 10e9) return TIER_2M;
  if (fileSize < 100e9) return TIER_4M;
  return TIER_8M;
}

function checkSizes(sizes: ChunkSizes): void {
  const { min, avg, max } = sizes;
  const valid =
    Number.isInteger(min) &&
    Number.isInteger(avg) &&
    Number.isInteger(max) &&
    avg >= 8 &&
    avg <= 2 ** 30 &&
    (avg & (avg - 1)) === 0 &&
    min >= 0 &&
    min <= avg &&
    avg <= max;
  if (!valid) {
    throw new RangeError(
      `invalid chunk sizes min=${min} avg=${avg} max=${max}: need integers 0 <= min <= avg <= max with avg a power of two in [8, 2^30]`,
    );
  }
}

/**
 * Length of the chunk that starts at `buf[start]` (FastCDC, normalized chunking level 2).
 *
 * Contract: either `end - start >= sizes.max`, or `end` is the end of the input; the
 * caller streams by keeping at least `max` bytes after `start` until the input is
 * exhausted. Returns n with `min <= n <= max`; or `end - start` when that is at most
 * `min`, or when the input ends before a cut is found. The result depends only on
 * `buf[start .. start + max)` (and on `end` only when `end - start < max`), never on
 * `start` itself or on bytes before it.
 *
 * Algorithm, fixed forever (changing it loses dedup against every existing chunk):
 * a gear hash `h = (h << 1) + GEAR[byte]` in 32-bit two's complement, reset to 0 at
 * `start + min`, fed from byte `start + min` on. A cut after byte j (so the chunk ends
 * with j) happens when the top `k` bits of h are zero, where k = log2(avg) + 2 while the
 * chunk would be at most `avg` long, and k = log2(avg) - 2 after that; the chunk is cut
 * at `max` if neither fires. Top bits are used because bit b of h depends on the last
 * b + 1 bytes only, so the high bits carry the widest (32-byte) window.
 */
export function findChunkLength(
  buf: Uint8Array,
  start: number,
  end: number,
  sizes: ChunkSizes,
): number {
  checkWindow(buf, start, end, sizes);
  if (!primed) prime();
  return cutIn(start, end, sizes, (from, normal, limit, avgBits) =>
    scan(buf, start, from, normal, limit, avgBits),
  );
}

/**
 * The window both chunkers scan for the chunk at `start`: `run(from,
 * normal, limit, avgBits)` hashes from `start + min`, with the small mask
 * up to `normal` and the large one up to `limit`, and returns the length.
 * Without running it, the length is the rest when that is at most `min`.
 */
function cutIn(
  start: number,
  end: number,
  sizes: ChunkSizes,
  run: (from: number, normal: number, limit: number, avgBits: number) => number,
): number {
  const { min, avg } = sizes;
  let n = end - start;
  if (n <= min) return n;
  if (n > sizes.max) n = sizes.max;
  return run(start + min, start + (n < avg ? n : avg), start + n, 31 - Math.clz32(avg));
}

/** The cut rule's masks: top log2(avg) + 2 bits while the chunk is at most avg long. */
function smallMask(avgBits: number): number {
  return (-1 << (30 - avgBits)) | 0;
}

/** ... and top log2(avg) - 2 bits after that. */
function largeMask(avgBits: number): number {
  return (-1 << (34 - avgBits)) | 0;
}

function checkWindow(buf: Uint8Array, start: number, end: number, sizes: ChunkSizes): void {
  if (!(Number.isInteger(start) && Number.isInteger(end) && 0 <= start && start <= end)) {
    throw new RangeError(`invalid chunk window start=${start} end=${end}`);
  }
  if (end > buf.length) {
    throw new RangeError(`chunk window end=${end} beyond buffer length ${buf.length}`);
  }
  checkSizes(sizes);
}

/** Bytes at the start of a GearScanner's memory that hold the gear table (one wasm page). */
const GEAR_AREA = 65536;
const WASM_PAGE = 65536;
let gearScanModule: WebAssembly.Module | undefined;
/** gear-scan.wat's export: `scan` with addresses for offsets and masks precomputed. */
type WasmScan = (
  start: number,
  from: number,
  normal: number,
  limit: number,
  maskS: number,
  maskL: number,
) => number;

/**
 * `findChunkLength` for bytes in memory shared with WebAssembly: the same
 * cut points (the tests compare them on every golden input and on random
 * ones), with the hot loop compiled from gear-scan.wat. Measured on Node 24
 * here: 0.35 s per GiB of random input against 0.52-0.59 s for the
 * JavaScript loop (V8 keeps bounds checks and int32 conversions in it).
 *
 * The memory is shared (a SharedArrayBuffer), so worker threads can hash the
 * same bytes without a copy.
 */
export class GearScanner {
  readonly #memory: WebAssembly.Memory;
  readonly #scan: WasmScan;
  /** `size` bytes to read into and cut from; views of it may be posted to workers. */
  readonly data: Buffer;
  /** The gear table it cuts with: GEAR, or an encrypted repository's secret one. */
  readonly gearTable: Int32Array;

  constructor(size: number, gearTable: Int32Array = GEAR) {
    if (gearTable.length !== 256) throw new RangeError('a gear table has 256 entries');
    if (!(Number.isInteger(size) && size > 0 && size <= 2 ** 31 - GEAR_AREA)) {
      throw new RangeError(`invalid scanner size ${size}`);
    }
    const pages = Math.ceil((GEAR_AREA + size) / WASM_PAGE);
    this.#memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
    gearScanModule ??= new WebAssembly.Module(Buffer.from(GEAR_SCAN_WASM, 'base64'));
    const instance = new WebAssembly.Instance(gearScanModule, { env: { memory: this.#memory } });
    this.#scan = instance.exports['scan'] as WasmScan;
    // WebAssembly memory is little-endian whatever the machine.
    const table = new DataView(this.#memory.buffer, 0, 1024);
    this.gearTable = gearTable;
    gearTable.forEach((value, i) => table.setInt32(i * 4, value, true));
    this.data = Buffer.from(this.#memory.buffer, GEAR_AREA, size);
  }

  /** `findChunkLength(view, start, end, sizes)` for a view into `data`. */
  findChunkLength(view: Uint8Array, start: number, end: number, sizes: ChunkSizes): number {
    if (view.buffer !== this.#memory.buffer || view.byteOffset < GEAR_AREA) {
      throw new RangeError('GearScanner.findChunkLength needs a view of its own data');
    }
    checkWindow(view, start, end, sizes);
    // The module sees addresses in its memory, not offsets in the view.
    const at = view.byteOffset;
    return cutIn(start, end, sizes, (from, normal, limit, avgBits) =>
      this.#scan(
        at + start,
        at + from,
        at + normal,
        at + limit,
        smallMask(avgBits),
        largeMask(avgBits),
      ),
    );
  }
}

/**
 * The hot loop, kept apart from validation so V8 sees a small function with only int32
 * locals and typed-array reads (PERFORMANCE-NOTES.md: a non-int32 code shape costs 5x).
 * Measured on Node 24 (GB/s of input, 2 MiB tier, warm): this shape 2.0; `>>> shift`
 * tests instead of masks 1.85; `return` inside the loops 1.35; one loop nest whose
 * shift variable switches at `normal` 0.65 to 1.0.
 */
function scan(
  buf: Uint8Array,
  start: number,
  from: number,
  normal: number,
  limit: number,
  avgBits: number,
): number {
  const gear = GEAR;
  const maskS = smallMask(avgBits);
  const maskL = largeMask(avgBits);
  let hash = 0;
  let i = from;
  for (; i < normal; i++) {
    hash = ((hash << 1) + gear[buf[i]!]!) | 0;
    if ((hash & maskS) === 0) break;
  }
  if (i < normal) return i + 1 - start;
  for (; i < limit; i++) {
    hash = ((hash << 1) + gear[buf[i]!]!) | 0;
    if ((hash & maskL) === 0) break;
  }
  if (i < limit) return i + 1 - start;
  return limit - start;
}

let primed = false;

/**
 * Runs every path of `scan` on tiny inputs, as Uint8Array and as Buffer, before the first
 * real call. V8 builds its first optimized code for a 1 MiB loop while the loop runs, so
 * code after the loop that has never run deoptimizes on every exit, and an addition
 * that has never overflowed int32 is compiled to deoptimize when it does; both left the
 * first few hundred chunks at under half speed. With avgBits = 3 the small mask is the
 * top 5 bits and the large one the top bit: `cut` (GEAR entry with top 5 bits zero) cuts
 * at its first byte in either loop; `pass` (a, b) never cuts and its second step
 * overflows int32 before the `| 0`.
 */
function prime(): void {
  primed = true;
  const cut = GEAR.findIndex((g) => g >>> 27 === 0);
  let pass: number[] = [];
  for (let a = 0; a < 256 && pass.length === 0; a++) {
    for (let b = 0; b < 256; b++) {
      const sum = (GEAR[a]! << 1) + GEAR[b]!;
      if (GEAR[a]! < -(2 ** 30) && sum >= 2 ** 31 && (sum | 0) < 0) {
        pass = [a, b];
        break;
      }
    }
  }
  for (const [cutInput, passInput] of [
    [Uint8Array.of(cut), Uint8Array.from(pass)],
    [Buffer.of(cut), Buffer.from(pass)],
  ] as const) {
    for (let k = 0; k < 4; k++) {
      scan(cutInput, 0, 0, 1, 1, 3);
      scan(cutInput, 0, 0, 0, 1, 3);
      scan(passInput, 0, 0, 2, 2, 3);
      scan(passInput, 0, 0, 0, 2, 3);
      scan(passInput, 0, 0, 0, 0, 3);
    }
  }
}

/** Lengths of the successive chunks of `data`, for tests and small in-memory inputs. */
export function* chunkLengths(data: Uint8Array, sizes: ChunkSizes): Generator<number> {
  let start = 0;
  while (start < data.length) {
    const n = findChunkLength(data, start, data.length, sizes);
    yield n;
    start += n;
  }
}
