/**
 * Reused buffers for chunk bodies, on both sides of a transfer. A push or
 * clone moves hundreds of bodies of a few MiB; a fresh buffer for each costs
 * page faults, copies and garbage collections (bench/README.md,
 * bench:remote). A body is read into a pooled buffer, and the buffer goes
 * back once its bytes are stored (client) or answered (server).
 */
export class BufferPool {
  /** Largest buffer pooled; bigger requests get a buffer of their own. */
  readonly bufferSize: number;
  /** Free buffers kept per size class. */
  readonly maxFree: number;
  /** Bytes of free buffers kept in all (size classes together). */
  readonly maxFreeBytes: number;
  /** Free buffers by size class: powers of two from 1 MiB (a 2.3 MiB chunk takes 4 MiB). */
  readonly #free = new Map<number, Buffer[]>();
  #freeBytes = 0;

  /** Makes a new pooled buffer (page-aligned memory when the pool's bodies are written directly). */
  readonly #allocate: (size: number) => Buffer;

  constructor(
    bufferSize: number,
    maxFree: number,
    maxFreeBytes = Number.POSITIVE_INFINITY,
    allocate: (size: number) => Buffer = (size) => Buffer.allocUnsafeSlow(size),
  ) {
    this.bufferSize = bufferSize;
    this.maxFree = maxFree;
    this.maxFreeBytes = maxFreeBytes;
    this.#allocate = allocate;
  }

  /** A buffer of at least `length` bytes (a pooled one when it fits). */
  take(length: number): Buffer {
    if (length > this.bufferSize) return Buffer.allocUnsafe(length);
    const size = sizeClass(length, this.bufferSize);
    const free = this.#free.get(size)?.pop();
    if (free) this.#freeBytes -= free.length;
    return free ?? this.#allocate(size);
  }

  /** Returns a buffer from `take`; the caller must no longer use it. */
  give(buffer: Buffer): void {
    const size = buffer.length;
    if (size > this.bufferSize || sizeClass(size, this.bufferSize) !== size) return;
    const free = this.#free.get(size) ?? [];
    if (free.length >= this.maxFree || this.#freeBytes + size > this.maxFreeBytes) return;
    free.push(buffer);
    this.#freeBytes += size;
    this.#free.set(size, free);
  }
}

function sizeClass(length: number, max: number): number {
  let size = 1024 * 1024;
  while (size < length) size *= 2;
  return Math.min(size, max);
}

/** Large enough for the largest chunk of every size tier (8 MiB) plus its header. */
export const CHUNK_BODY_BYTES = 8 * 1024 * 1024 + 64;
