/**
 * Writing new files around the page cache (O_DIRECT), where the filesystem
 * allows it. On the virtual machines MediaGit is measured on, every new
 * page-cache page is expensive: 1 GiB written buffered plus fsync took
 * 0.9-3.2 s and 0.46-2.9 s of system time from run to run, direct
 * 0.85-1.1 s and 0.13-0.17 s (docs/design.md). Large writes that are fsynced
 * at once anyway (objects, packs) gain; nothing reads them back soon.
 *
 * Direct writes need file offsets, lengths and memory addresses that are
 * multiples of the device's block: data is copied into aligned memory (or
 * written from where it is, when the caller filled pageAlignedBuffer memory)
 * and the file cut to its exact length afterwards. Filesystems without direct
 * I/O (tmpfs) and `MEDIAGIT_DIRECT_IO=0` get ordinary writes; the bytes on
 * disk are the same either way.
 *
 * Direct writes are kept only while the device rewards them: `directWritePace`
 * measures the pace at which they complete, and after SLOW_WINDOWS windows
 * below SLOW_DIRECT_MBPS new writes go through the page cache for COOLDOWN_MS (docs/design.md, "Which
 * write path"). `MEDIAGIT_DIRECT_IO=1` keeps them direct whatever the pace.
 */
import { constants } from 'node:fs';
import fs from 'node:fs/promises';
import { hasErrnoCode } from '../errors.ts';

/** Direct I/O unit (covers 512-byte and 4 KiB sectors; larger ones refuse the probe). */
export const DIRECT_BLOCK = 4096;
/** Files smaller than this are written through the page cache. */
export const DIRECT_MIN_BYTES = 256 * 1024;
const MiB = 1024 * 1024;
/** Memory page size of the machines MediaGit runs on (x86-64, arm64 with 4 KiB pages). */
const PAGE = 4096;
/** Aligned buffers kept for reuse, in bytes (16 chunk uploads in flight fit). */
const POOL_LIMIT = 96 * MiB;

export function directIoEnabled(): boolean {
  return process.env['MEDIAGIT_DIRECT_IO'] !== '0' && constants.O_DIRECT !== undefined;
}

/** Bytes of direct writes over which their pace is judged. */
export const PACE_WINDOW = 32 * MiB;
/**
 * Consecutive slow windows before the page cache takes over: a file's first
 * window pays for allocating its extents (162-225 MB/s measured in a clone
 * whose later windows ran at 600-2900 MB/s), a slow device stays slow.
 */
export const SLOW_WINDOWS = 2;
/**
 * A process's first windows are measured but not judged: they pay for
 * allocating new files' extents and, after a large delete, probably for
 * the filesystem's discard of the freed blocks (ext4 `discard`). Measured in
 * clones of 473 MiB run one after another, each after deleting the last:
 * the first two windows ran at 109-254 MB/s in four commands of six, every
 * later one at 300-3400 MB/s; judged, they sent the rest of those clones
 * through the page cache (0.6-1.8 s more system time and a 0.3 s longer
 * `sync`).
 */
export const WARMUP_WINDOWS = 2;
/**
 * Below this pace (MB/s, while a direct write is in flight) the page cache
 * wins: buffered writes and fsync of a GiB flushed at ~1 GB/s here, and direct
 * writes from page-aligned memory ran at 600-2900 MB/s. The 90-120 MB/s
 * phases first seen turned out to be direct writes from memory that was not
 * page-aligned (docs/design.md, "Which write path"); this meter is the safety
 * net for a device that is slow at direct writes for reasons of its own.
 */
export const SLOW_DIRECT_MBPS = 200;
/** How long writes stay buffered after direct ones were found slow. */
export const COOLDOWN_MS = 5 * 60 * 1000;

/**
 * The pace of direct writes, process-wide: bytes completed over the time at
 * least one was in flight (so many writes at once do not look slow because
 * each waits for the others), judged every PACE_WINDOW bytes; SLOW_WINDOWS
 * slow ones in a row make it slow.
 */
export class WritePace {
  readonly #now: () => number;
  #inFlight = 0;
  #since = 0;
  #busyMs = 0;
  #bytes = 0;
  #slowUntil = -Infinity;
  #slowWindows = 0;
  #windows = 0;
  /** Pace of the last window, MB/s (undefined before the first). */
  lastMBps: number | undefined;

  constructor(now: () => number = () => performance.now()) {
    this.#now = now;
  }

  started(): void {
    this.#tick();
    this.#inFlight++;
  }

  /** A write started earlier ended; `bytes` counted only when it succeeded. */
  finished(bytes: number): void {
    this.#tick();
    this.#inFlight--;
    this.#bytes += bytes;
    if (this.#bytes < PACE_WINDOW) return;
    const mbps = this.#bytes / Math.max(this.#busyMs, 0.001) / 1000;
    this.lastMBps = mbps;
    this.#windows++;
    if (this.#windows <= WARMUP_WINDOWS) {
      this.#bytes = 0;
      this.#busyMs = 0;
      return;
    }
    this.#slowWindows = mbps < SLOW_DIRECT_MBPS ? this.#slowWindows + 1 : 0;
    if (this.#slowWindows >= SLOW_WINDOWS) {
      this.#slowUntil = this.#now() + COOLDOWN_MS;
      this.#slowWindows = 0;
    }
    this.#bytes = 0;
    this.#busyMs = 0;
  }

  /** Forgets every measurement (tests). */
  reset(): void {
    this.#bytes = 0;
    this.#busyMs = 0;
    this.#slowUntil = -Infinity;
    this.#slowWindows = 0;
    this.#windows = 0;
    this.lastMBps = undefined;
  }

  /** Whether direct writes were found slow within the last COOLDOWN_MS. */
  get slow(): boolean {
    return this.#now() < this.#slowUntil;
  }

  #tick(): void {
    const now = this.#now();
    if (this.#inFlight > 0) this.#busyMs += now - this.#since;
    this.#since = now;
  }
}

export const directWritePace = new WritePace();

/**
 * Whether a new write should go around the page cache: direct I/O allowed
 * and, unless `MEDIAGIT_DIRECT_IO=1`, not found slow lately.
 */
export function directWritesWanted(): boolean {
  if (!directIoEnabled()) return false;
  return process.env['MEDIAGIT_DIRECT_IO'] === '1' || !directWritePace.slow;
}

/** writeFully on a file opened with O_DIRECT, its pace counted in directWritePace. */
export async function writeDirect(
  file: fs.FileHandle,
  buffer: Uint8Array,
  length: number,
  position: number,
): Promise<void> {
  directWritePace.started();
  let written = 0;
  try {
    await writeFully(file, buffer, length, position);
    written = length;
  } finally {
    directWritePace.finished(written);
  }
}

/**
 * Creates `file` (it must not exist) for writing with O_DIRECT; undefined
 * when the filesystem refuses the flag.
 */
export async function openDirect(file: string, mode: number): Promise<fs.FileHandle | undefined> {
  const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_DIRECT;
  return await fs.open(file, flags, mode).catch((error: unknown) => {
    if (hasErrnoCode(error, 'EINVAL')) return undefined;
    throw error;
  });
}

/**
 * `size` bytes of memory whose start the kernel accepts for direct I/O on
 * `file` (opened with O_DIRECT, empty, about to be written from offset 0),
 * or undefined. JavaScript cannot see addresses, so this asks the kernel: a
 * one-block direct write at offset 0 from a 16-byte step into a larger
 * allocation fails with EINVAL until the step is aligned. Backing stores of
 * ArrayBuffers never move, so the answer holds for the memory's life.
 */
export async function alignedMemory(
  file: fs.FileHandle,
  size: number,
): Promise<Buffer | undefined> {
  return await probeAlignment(size, async (raw, shift) => {
    await file.write(raw, shift, DIRECT_BLOCK, 0);
  });
}

/** As alignedMemory, for a file opened O_RDONLY | O_DIRECT at least a block long. */
async function alignedMemoryForRead(
  file: fs.FileHandle,
  size: number,
): Promise<Buffer | undefined> {
  return await probeAlignment(size, async (raw, shift) => {
    await file.read(raw, shift, DIRECT_BLOCK, 0);
  });
}

/**
 * Page-aligned memory first: V8 reserves a resizable ArrayBuffer's memory
 * with mmap, so its first byte starts a page. The kernel accepts any
 * 512-byte alignment on this kind of VM (dma_alignment 511), but a buffer
 * that is not page-aligned straddles a page boundary in every 4 KiB and is
 * split into twice the segments: 1 GiB written directly in 4 MiB pieces took
 * 2.1-3.0 s from memory at a page + 512 bytes, 1.2-1.7 s page-aligned, as
 * `dd oflag=direct` does (docs/design.md, "Which write path"). Where that
 * memory is refused, a larger ordinary allocation is probed at 16-byte
 * steps, the step that worked last time first (allocations of one size
 * class land at the same offset within a page).
 */
let lastShift = 0;

/**
 * `size` bytes of memory that start a page (see probeAlignment): a buffer
 * the caller fills and hands to createFile is then written directly, with
 * no copy into aligned memory.
 */
export function pageAlignedBuffer(size: number): Buffer {
  return Buffer.from(new ArrayBuffer(size, { maxByteLength: size }), 0, size);
}

/** Whether `part` starts a page (a view at a whole page of pageAlignedBuffer memory). */
function startsPage(part: Uint8Array): boolean {
  const backing = part.buffer;
  return backing instanceof ArrayBuffer && backing.resizable && part.byteOffset % PAGE === 0;
}

async function probeAlignment(
  size: number,
  probe: (raw: Buffer, shift: number) => Promise<void>,
): Promise<Buffer | undefined> {
  const paged = pageAlignedBuffer(size);
  paged.fill(0, 0, Math.min(size, 2 * DIRECT_BLOCK));
  if (size >= DIRECT_BLOCK) {
    try {
      await probe(paged, 0);
      return paged;
    } catch (error) {
      if (!hasErrnoCode(error, 'EINVAL')) return undefined;
    }
  }
  const raw = Buffer.allocUnsafeSlow(size + DIRECT_BLOCK);
  raw.fill(0, 0, 2 * DIRECT_BLOCK);
  const first = lastShift;
  for (let step = 0; step < DIRECT_BLOCK; step += 16) {
    const shift = (first + step) % DIRECT_BLOCK;
    try {
      await probe(raw, shift);
      lastShift = shift;
      return raw.subarray(shift, shift + size);
    } catch (error) {
      if (!hasErrnoCode(error, 'EINVAL')) return undefined;
    }
  }
  return undefined;
}

/** Opens `file` for direct reads; undefined when the filesystem refuses the flag. */
export async function openDirectForRead(file: string): Promise<fs.FileHandle | undefined> {
  return await fs.open(file, constants.O_RDONLY | constants.O_DIRECT).catch((error: unknown) => {
    if (hasErrnoCode(error, 'EINVAL')) return undefined;
    throw error;
  });
}

/**
 * Reads `length` bytes at `position` of `file` (opened by openDirectForRead)
 * into `into` when it is big enough (the start of it is returned), else into
 * a new buffer, around the page cache: whole blocks into aligned memory,
 * then the wanted range copied out. Stops short only at the end of the file.
 * Undefined when the kernel refuses the read (the caller reads normally).
 */
export async function readDirect(
  file: fs.FileHandle,
  position: number,
  length: number,
  into?: Buffer,
): Promise<Buffer | undefined> {
  const start = Math.floor(position / DIRECT_BLOCK) * DIRECT_BLOCK;
  const end = Math.ceil((position + length) / DIRECT_BLOCK) * DIRECT_BLOCK;
  const span = end - start;
  const memory = await acquire(span, (capacity) => alignedMemoryForRead(file, capacity));
  if (!memory) return undefined;
  let done = 0;
  try {
    while (done < span) {
      const { bytesRead } = await file.read(memory, done, span - done, start + done);
      done += bytesRead;
      // A direct read stops short only at the end of the file.
      if (bytesRead === 0 || bytesRead % DIRECT_BLOCK !== 0) break;
    }
  } catch (error) {
    if (hasErrnoCode(error, 'EINVAL')) return undefined;
    throw error;
  }
  const from = position - start;
  const available = Math.max(0, Math.min(length, done - from));
  const out =
    into && into.length >= available ? into.subarray(0, available) : Buffer.allocUnsafe(available);
  memory.copy(out, 0, from, from + available);
  release(memory);
  return out;
}

/** Writes `length` bytes of `buffer` at `position`, however many calls it takes. */
export async function writeFully(
  file: fs.FileHandle,
  buffer: Uint8Array,
  length: number,
  position: number,
): Promise<void> {
  for (let done = 0; done < length;) {
    const { bytesWritten } = await file.write(buffer, done, length - done, position + done);
    if (bytesWritten === 0) throw new Error('write made no progress');
    done += bytesWritten;
  }
}

/**
 * `size` bytes (rounded up to whole MiB) of aligned memory from the pool, or
 * probed by direct reads of block 0 of `file` (opened O_RDWR | O_DIRECT and
 * at least a block long; nothing is written); undefined when no alignment works.
 */
export async function acquireAligned(
  size: number,
  file: fs.FileHandle,
): Promise<Buffer | undefined> {
  return await acquire(size, (capacity) => alignedMemoryForRead(file, capacity));
}

/** Gives memory from acquireAligned back to the pool. */
export function releaseAligned(buffer: Buffer): void {
  release(buffer);
}

/** Aligned buffers by capacity (whole MiB), reused across writes. */
const pool = new Map<number, Buffer[]>();
let pooledBytes = 0;

async function acquire(
  size: number,
  allocate: (capacity: number) => Promise<Buffer | undefined>,
): Promise<Buffer | undefined> {
  const capacity = Math.ceil(size / MiB) * MiB;
  const free = pool.get(capacity)?.pop();
  if (free) {
    pooledBytes -= capacity;
    return free;
  }
  return await allocate(capacity);
}

function release(buffer: Buffer): void {
  if (pooledBytes + buffer.length > POOL_LIMIT) return;
  pooledBytes += buffer.length;
  const list = pool.get(buffer.length) ?? [];
  list.push(buffer);
  pool.set(buffer.length, list);
}

/**
 * Writes `data` (page-aligned memory) directly to `handle` from where it is:
 * its whole blocks as they are, the last partial block through a block of
 * page-aligned memory, then the file cut to length. False when the kernel refuses
 * (EINVAL: the caller copies into memory it probed instead).
 */
async function writeInPlace(handle: fs.FileHandle, data: Uint8Array): Promise<boolean> {
  const whole = Math.floor(data.length / DIRECT_BLOCK) * DIRECT_BLOCK;
  try {
    if (whole > 0) await writeDirect(handle, data, whole, 0);
    if (whole === data.length) return true;
    // Not probed (a probe writes block 0): memory of the same kind was just accepted.
    const tail = pageAlignedBuffer(DIRECT_BLOCK);
    tail.set(data.subarray(whole));
    tail.fill(0, data.length - whole, DIRECT_BLOCK);
    await writeDirect(handle, tail, DIRECT_BLOCK, whole);
    await handle.truncate(data.length);
    return true;
  } catch (error) {
    if (hasErrnoCode(error, 'EINVAL')) return false;
    throw error;
  }
}

/**
 * Creates `file` (O_EXCL, `mode`) holding `parts`, directly when it is at
 * least DIRECT_MIN_BYTES and the filesystem allows, and returns it open for
 * the caller to fsync, stat and close. On failure the file is removed.
 */
export async function createFile(
  file: string,
  parts: readonly Uint8Array[],
  mode: number,
): Promise<fs.FileHandle> {
  const length = parts.reduce((sum, part) => sum + part.length, 0);
  if (length >= DIRECT_MIN_BYTES && directWritesWanted()) {
    const handle = await openDirect(file, mode);
    if (handle && parts.length === 1 && startsPage(parts[0]!)) {
      let written: boolean;
      try {
        written = await writeInPlace(handle, parts[0]!);
      } catch (error) {
        await handle.close().catch(() => undefined);
        await fs.rm(file, { force: true });
        throw error;
      }
      if (written) return handle;
      await handle.truncate(0);
    }
    if (handle) {
      const rounded = Math.ceil(length / DIRECT_BLOCK) * DIRECT_BLOCK;
      const memory = await acquire(rounded, (capacity) => alignedMemory(handle, capacity));
      if (memory) {
        try {
          let at = 0;
          for (const part of parts) {
            // Buffer#copy is a memcpy (TypedArray#set from shared memory is not).
            Buffer.from(part.buffer, part.byteOffset, part.length).copy(memory, at);
            at += part.length;
          }
          memory.fill(0, length, rounded);
          await writeDirect(handle, memory, rounded, 0);
          if (rounded !== length) await handle.truncate(length);
          release(memory);
          return handle;
        } catch (error) {
          // EINVAL: this memory suits another device's alignment, not this
          // one's (the pool is shared): drop it and write normally.
          if (!hasErrnoCode(error, 'EINVAL')) {
            release(memory);
            await handle.close().catch(() => undefined);
            await fs.rm(file, { force: true });
            throw error;
          }
        }
      }
      // No alignment the kernel accepts: start again through the page cache.
      await handle.close();
      await fs.rm(file, { force: true });
    }
  }
  const handle = await fs.open(file, 'wx', mode);
  try {
    const { bytesWritten } = await handle.writev(parts as Uint8Array[], 0);
    if (bytesWritten < length) {
      const rest = Buffer.concat(parts).subarray(bytesWritten);
      await writeFully(handle, rest, rest.length, bytesWritten);
    }
    return handle;
  } catch (error) {
    await handle.close().catch(() => undefined);
    await fs.rm(file, { force: true });
    throw error;
  }
}
