/**
 * The state of one structural scan: a small read-ahead window over the file, the cut list
 * being built, and the limits that bound the work (ARCHITECTURE.md §4; the rules per format
 * are in `../containers.ts`).
 *
 * A format parser walks headers with `bytes`, records boundaries with `cut`, calls `step`
 * once per header it visits, and calls `stop` when the bytes stop making sense. Stopping is
 * not an error: the cuts found so far stand and the rest of the file is cut by FastCDC alone.
 */

/** Reads up to `buffer.length` bytes at `position`; resolves to the count read (0 at the end). */
export interface PositionalReader {
  readonly size: number;
  read(buffer: Uint8Array, position: number): Promise<number>;
}

/**
 * Thrown by `ContainerScan` to end a scan early (malformed input, cut or step limit). Caught
 * by the scan's driver, which then returns the cuts recorded so far.
 */
export class ScanStop extends Error {
  readonly reason: 'malformed' | 'max-cuts' | 'max-steps';
  constructor(reason: ScanStop['reason']) {
    super(`structural scan stopped: ${reason}`);
    this.reason = reason;
  }
}

/** Wraps an error thrown by the caller's reader, so the driver can rethrow it as is. */
export class ReaderFailure extends Error {
  constructor(cause: unknown) {
    super('the reader failed during a structural scan', { cause });
  }
}

/**
 * Bytes read at a time. Headers are at most 24 bytes, but a read of 16 bytes costs the same
 * as one of 4 KiB (one page), and the window then serves the next headers when units are
 * small (EBML blocks in an unknown-size cluster, RIFF and AIFF chunks, moov children).
 */
const WINDOW_SIZE = 4096;

export class ContainerScan {
  readonly size: number;
  readonly maxCuts: number;
  readonly maxSteps: number;
  readonly cuts: number[] = [];
  readonly #reader: PositionalReader;
  readonly #signal: AbortSignal | undefined;
  readonly #window = new Uint8Array(WINDOW_SIZE);
  #windowStart = 0;
  #windowLength = 0;
  #steps = 0;

  constructor(
    reader: PositionalReader,
    limits: { maxCuts: number; maxSteps: number },
    signal?: AbortSignal,
  ) {
    this.#reader = reader;
    this.size = reader.size;
    this.maxCuts = limits.maxCuts;
    this.maxSteps = limits.maxSteps;
    this.#signal = signal;
  }

  /**
   * The file's bytes at [position, position + length), `length <= 4096`; fewer only where the
   * file (or the reader) ends, none for a position outside the file. The view is valid until
   * the next call.
   */
  async bytes(position: number, length: number): Promise<Uint8Array> {
    if (!(position >= 0 && position < this.size)) return this.#window.subarray(0, 0);
    const wanted = Math.min(length, WINDOW_SIZE, this.size - position);
    const offset = position - this.#windowStart;
    if (offset >= 0 && offset + wanted <= this.#windowLength) {
      return this.#window.subarray(offset, offset + wanted);
    }
    const target = Math.min(WINDOW_SIZE, this.size - position);
    this.#windowStart = position;
    this.#windowLength = 0;
    while (this.#windowLength < target) {
      let count: number;
      try {
        count = await this.#reader.read(
          this.#window.subarray(this.#windowLength, target),
          position + this.#windowLength,
        );
      } catch (error) {
        throw new ReaderFailure(error);
      }
      if (!(count > 0)) break;
      this.#windowLength += Math.min(Math.floor(count), target - this.#windowLength);
    }
    return this.#window.subarray(0, Math.min(wanted, this.#windowLength));
  }

  /**
   * Records a boundary. Offsets that are not strictly inside the file, or not above the last
   * cut, are ignored, so parsers may offer the same boundary twice (a unit's end is the next
   * unit's start) and never produce an invalid list. Ends the scan once `maxCuts` are held.
   */
  cut(offset: number): void {
    const last = this.cuts.length === 0 ? 0 : this.cuts[this.cuts.length - 1]!;
    if (!(offset > last && offset < this.size && Number.isSafeInteger(offset))) return;
    if (this.cuts.length >= this.maxCuts) throw new ScanStop('max-cuts');
    this.cuts.push(offset);
  }

  /** Counts one visited header; ends the scan past `maxSteps`, and honours the abort signal. */
  step(): void {
    this.#signal?.throwIfAborted();
    if (++this.#steps > this.maxSteps) throw new ScanStop('max-steps');
  }

  /** Ends the scan because the bytes do not follow the format. */
  stop(): never {
    throw new ScanStop('malformed');
  }
}

export function u32le(b: Uint8Array, at: number): number {
  return (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16)) + b[at + 3]! * 0x1000000;
}

export function u32be(b: Uint8Array, at: number): number {
  return b[at]! * 0x1000000 + ((b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!);
}

/** Unsigned 64-bit values as doubles: exact below 2^53, and above it far past any file size. */
export function u64le(b: Uint8Array, at: number): number {
  return u32le(b, at + 4) * 0x100000000 + u32le(b, at);
}

export function u64be(b: Uint8Array, at: number): number {
  return u32be(b, at) * 0x100000000 + u32be(b, at + 4);
}

/** A four-character code as a big-endian number: `fourcc('moov') === 0x6d6f6f76`. */
export function fourcc(code: string): number {
  let value = 0;
  for (let i = 0; i < 4; i++) value = value * 256 + (code.charCodeAt(i) & 0xff);
  return value;
}

/**
 * Whether the four bytes at `at` are printable ASCII (0x20-0x7e), as the type of every
 * MP4 box and every RIFF, AIFF chunk ID is; the cheapest test that a header is where the
 * parser thinks it is.
 */
export function isPrintableCode(b: Uint8Array, at: number): boolean {
  for (let i = at; i < at + 4; i++) {
    const c = b[i];
    if (c === undefined || c < 0x20 || c > 0x7e) return false;
  }
  return true;
}
