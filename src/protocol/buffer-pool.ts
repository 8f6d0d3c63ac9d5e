/**
 * Reused buffers for chunk bodies, on both sides of a transfer. A push or
 * clone moves hundreds of bodies of a few MiB; a fresh buffer for each costs
 * page faults, copies and garbage collections (bench/README.md,
 * bench:remote). A body is read into a pooled buffer, and the buffer goes
 * back once its bytes are stored (client) or answered (server).
 */
export class BufferPool {
  readonly bufferSize: number;
  readonly maxFree: number;
  readonly #free: Buffer[] = [];

  constructor(bufferSize: number, maxFree: number) {
    this.bufferSize = bufferSize;
    this.maxFree = maxFree;
  }

  /** A buffer of at least `length` bytes (a pooled one when it fits). */
  take(length: number): Buffer {
    if (length > this.bufferSize) return Buffer.allocUnsafe(length);
    return this.#free.pop() ?? Buffer.allocUnsafeSlow(this.bufferSize);
  }

  /** Returns a buffer from `take`; the caller must no longer use it. */
  give(buffer: Buffer): void {
    if (buffer.length === this.bufferSize && this.#free.length < this.maxFree) {
      this.#free.push(buffer);
    }
  }
}

/** Large enough for the largest chunk of every size tier (8 MiB) plus its header. */
export const CHUNK_BODY_BYTES = 8 * 1024 * 1024 + 64;
