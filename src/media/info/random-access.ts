/**
 * The one way a media parser reads a file: positional reads through a
 * `RandomAccess`, so the same parser runs on a working-tree file and on stored
 * content (a reader over a manifest that fetches and verifies only the chunks
 * a read touches). Parsers read headers and indexes, never payloads: they walk
 * boxes, elements and chunks by their declared sizes and skip what they do
 * not need, so what a parse costs is the structure, not the file's size.
 */
import type { FileHandle } from 'node:fs/promises';
import { MediaGitError } from '../../errors.ts';

export interface RandomAccess {
  /** The file's length in bytes. */
  readonly size: number;
  /**
   * Up to `length` bytes from `offset`; fewer only at the end of the file.
   * The buffer may be a view into a shared cache: callers copy what they keep.
   */
  read(offset: number, length: number): Promise<Buffer>;
  /**
   * How many bytes from `offset` one fetch brings (to the end of the stored
   * chunk holding it); absent when every read costs what it reads.
   */
  fetchSpan?(offset: number): number;
  /**
   * The ID of the stored object holding byte `offset` (with `fetchSpan`):
   * two inputs whose bytes at two offsets lie in the same object, at the
   * same distance from its end, hold the same bytes there, unread.
   */
  chunkId?(offset: number): string | undefined;
}

/**
 * Whether the bytes from `aAt` in `a` and from `bAt` in `b` are known equal
 * up to the end of the stored object holding them, without reading: how
 * many bytes are (0 when it cannot be told).
 */
export function knownEqualSpan(a: RandomAccess, aAt: number, b: RandomAccess, bAt: number): number {
  if (!a.chunkId || !b.chunkId || !a.fetchSpan || !b.fetchSpan) return 0;
  const span = a.fetchSpan(aAt);
  if (span <= 0 || span !== b.fetchSpan(bAt)) return 0;
  const id = a.chunkId(aAt);
  return id !== undefined && id === b.chunkId(bAt) ? span : 0;
}

/**
 * Whether `length` bytes at `aAt` in `a` and at `bAt` in `b` are equal:
 * spans known equal by their stored object are skipped, the rest is read
 * and compared at most `block` bytes (and one stored object) at a time.
 */
export async function sameBytes(
  a: RandomAccess,
  aAt: number,
  b: RandomAccess,
  bAt: number,
  length: number,
  block = 4 * 1024 * 1024,
): Promise<boolean> {
  for (let done = 0; done < length;) {
    const left = length - done;
    const known = knownEqualSpan(a, aAt + done, b, bAt + done);
    if (known > 0) {
      done += Math.min(known, left);
      continue;
    }
    const n = Math.max(
      1,
      Math.min(block, left, a.fetchSpan?.(aAt + done) ?? left, b.fetchSpan?.(bAt + done) ?? left),
    );
    const x = await a.read(aAt + done, n);
    const y = await b.read(bAt + done, n);
    if (x.length !== n || y.length !== n || !x.equals(y)) return false;
    done += n;
  }
  return true;
}

/** A file in memory (tests, and blobs read whole). */
export function bufferAccess(data: Buffer): RandomAccess {
  return {
    size: data.length,
    read: (offset, length) =>
      Promise.resolve(
        data.subarray(Math.min(offset, data.length), Math.min(offset + length, data.length)),
      ),
  };
}

/**
 * An open file (a working-tree file, a Git merge driver's input) as a
 * RandomAccess of `size` bytes; `counted` receives every byte read.
 */
export function handleAccess(
  handle: FileHandle,
  size: number,
  counted?: (bytes: number) => void,
): RandomAccess {
  return {
    size,
    read: async (offset, length) => {
      const want = Math.max(0, Math.min(length, size - offset));
      const buffer = Buffer.allocUnsafe(want);
      let done = 0;
      while (done < want) {
        const { bytesRead } = await handle.read(buffer, done, want - done, offset + done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
      counted?.(done);
      return buffer.subarray(0, done);
    },
  };
}

/** A file whose structure does not parse: a user-facing error (exit 1), never a stack. */
export function corruptMedia(format: string, reason: string): MediaGitError {
  return new MediaGitError('MEDIA_CORRUPT', `not a valid ${format.toUpperCase()} file: ${reason}`, {
    kind: 'user',
    data: { format, reason },
  });
}

/**
 * A parser's view of one file: exact reads that fail as corrupt media (not as
 * a range error) when the file ends early, and the abort check between reads.
 */
export class MediaReader {
  readonly format: string;
  readonly size: number;
  readonly #access: RandomAccess;
  readonly #signal: AbortSignal | undefined;

  constructor(access: RandomAccess, format: string, signal?: AbortSignal) {
    this.#access = access;
    this.format = format;
    this.size = access.size;
    this.#signal = signal;
  }

  /** Exactly `length` bytes at `offset`, or a MEDIA_CORRUPT error naming the truncation. */
  async bytes(offset: number, length: number): Promise<Buffer> {
    this.#signal?.throwIfAborted();
    if (offset < 0 || length < 0 || offset + length > this.size)
      throw this.fail(`truncated: needs bytes ${offset}-${offset + length} of ${this.size}`);
    const data = await this.#access.read(offset, length);
    if (data.length !== length) throw this.fail(`truncated at byte ${offset + data.length}`);
    return data;
  }

  /** Up to `length` bytes at `offset` (fewer at the end of the file). */
  async upTo(offset: number, length: number): Promise<Buffer> {
    this.#signal?.throwIfAborted();
    if (offset >= this.size) return Buffer.alloc(0);
    return this.#access.read(offset, Math.min(length, this.size - offset));
  }

  fail(reason: string): MediaGitError {
    return corruptMedia(this.format, reason);
  }
}

/** Seconds and rates to the microsecond, as ffprobe prints them. */
export function round(value: number): number {
  return Math.round(value * 1e6) / 1e6;
}
