/**
 * A new file of known length written from pieces that arrive in any order
 * (a clone writes each file to check out as its chunks come in, from several
 * ranged reads at once), around the page cache where it can be.
 *
 * Direct writes need whole, aligned blocks, and pieces are neither: they are
 * copied into BLOCK-sized staging memory, and a block is written, directly,
 * once every byte of it has arrived. On this kind of VM the page cache's
 * copy of a 1 GiB clone's working file cost 0.7-3.5 s of system time, most
 * of it first touches of fresh page-cache pages (docs/design.md, "Which write
 * path"). Staging memory is bounded across all files (`BlockBudget`): when a
 * block waits too long for its last bytes, the bytes it has are written
 * through the page cache and the rest of that block follows them there. A
 * device found slow for direct writes (`directWritesWanted`) gets every
 * later block buffered. The bytes are the same either way.
 *
 * The file is not fsynced here (a working tree, as in Git); `close` leaves
 * it complete and cut to its exact length.
 */
import { constants } from 'node:fs';
import fs from 'node:fs/promises';
import { hasErrnoCode } from '../errors.ts';
import {
  acquireAligned,
  DIRECT_BLOCK,
  DIRECT_MIN_BYTES,
  directWritesWanted,
  releaseAligned,
  writeDirect,
  writeFully,
} from './direct-io.ts';

/** Staging block: the unit of a direct write. */
export const BLOCK = 4 * 1024 * 1024;
/** Direct writes in flight per file. */
const WRITES_IN_FLIGHT = 4;

/** Staging blocks waiting for bytes, shared by the files of one operation. */
export class BlockBudget {
  readonly maxBlocks: number;
  /** Waiting blocks, oldest first (a Set keeps insertion order). */
  readonly waiting = new Set<PendingBlock>();

  constructor(maxBytes = 64 * 1024 * 1024) {
    this.maxBlocks = Math.max(1, Math.floor(maxBytes / BLOCK));
  }
}

interface PendingBlock {
  readonly file: AssembledFile;
  readonly index: number;
  readonly memory: Buffer;
  /** Byte ranges of the block that have arrived: sorted, disjoint, [start, end). */
  readonly ranges: [number, number][];
  filled: number;
}

export class AssembledFile {
  readonly path: string;
  readonly length: number;
  readonly #budget: BlockBudget;
  /** O_RDWR | O_DIRECT descriptor, if the filesystem gave one (closed at the end). */
  readonly #directHandle: fs.FileHandle | undefined;
  /** Blocks still go around the page cache (false once aligned memory was refused). */
  #directOk: boolean;
  readonly #buffered: fs.FileHandle;
  readonly #blocks = new Map<number, PendingBlock>();
  /** Blocks that went (or go) through the page cache: their later pieces follow. */
  readonly #spilled = new Set<number>();
  /** Blocks written whole: a piece arriving again for one is already there. */
  readonly #written = new Set<number>();
  readonly #writes = new Set<Promise<void>>();
  #failure: unknown;

  private constructor(
    path: string,
    length: number,
    budget: BlockBudget,
    direct: fs.FileHandle | undefined,
    buffered: fs.FileHandle,
  ) {
    this.path = path;
    this.length = length;
    this.#budget = budget;
    this.#directHandle = direct;
    this.#directOk = direct !== undefined;
    this.#buffered = buffered;
  }

  /** Creates `path` (it must not exist) for `length` bytes. */
  static async create(
    path: string,
    length: number,
    mode: number,
    budget: BlockBudget,
  ): Promise<AssembledFile> {
    const buffered = await fs.open(path, 'wx', mode);
    let direct: fs.FileHandle | undefined;
    try {
      if (length >= DIRECT_MIN_BYTES && directWritesWanted()) {
        // Full length at once (a sparse file): no write extends it, and the
        // aligned-memory probe reads a hole instead of writing anything.
        await buffered.truncate(length);
        direct = await fs.open(path, constants.O_RDWR | constants.O_DIRECT).catch(() => undefined); // a filesystem without direct I/O: buffered only
      }
    } catch (error) {
      await buffered.close().catch(() => undefined);
      await fs.rm(path, { force: true });
      throw error;
    }
    return new AssembledFile(path, length, budget, direct, buffered);
  }

  /** Whether blocks are still being written around the page cache. */
  get direct(): boolean {
    return this.#directOk;
  }

  /**
   * Writes `data` at `offset` (within the file's length). Resolves once the
   * bytes are copied or written, so the caller may reuse `data`; a failed
   * earlier write rejects it.
   */
  async write(data: Uint8Array, offset: number): Promise<void> {
    if (this.#failure !== undefined) throw this.#failure;
    if (offset < 0 || offset + data.length > this.length) {
      throw new RangeError(`a write at ${offset} of ${data.length} bytes is outside the file`);
    }
    const bytes = Buffer.from(data.buffer, data.byteOffset, data.length);
    for (let done = 0; done < bytes.length;) {
      const at = offset + done;
      const index = Math.floor(at / BLOCK);
      const within = at - index * BLOCK;
      const n = Math.min(bytes.length - done, BLOCK - within);
      const piece = bytes.subarray(done, done + n);
      done += n;
      for (;;) {
        if (this.#written.has(index)) break;
        if (!this.#directOk || this.#spilled.has(index)) {
          await writeFully(this.#buffered, piece, n, at);
          break;
        }
        // From this check to the copy nothing awaits: the block cannot be spilled meanwhile.
        const block = this.#blocks.get(index);
        if (block) {
          piece.copy(block.memory, within);
          block.filled += addRange(block.ranges, within, within + n);
          if (block.filled === this.#blockLength(index)) this.#complete(block);
          break;
        }
        await this.#stage(index);
      }
    }
    while (this.#writes.size > WRITES_IN_FLIGHT) await Promise.race(this.#writes);
    if (this.#failure !== undefined) throw this.#failure;
  }

  /** Writes what is still staged, cuts the file to its length and closes it. */
  async close(): Promise<void> {
    try {
      for (const block of [...this.#blocks.values()]) await this.#spill(block);
      await Promise.all(this.#writes);
      if (this.#failure !== undefined) throw this.#failure;
      await this.#buffered.truncate(this.length);
    } finally {
      await this.#closeHandles();
    }
  }

  /** Closes the file and removes it. */
  async abort(): Promise<void> {
    await Promise.allSettled([...this.#writes]);
    for (const block of [...this.#blocks.values()]) this.#forget(block);
    await this.#closeHandles();
    await fs.rm(this.path, { force: true });
  }

  #blockLength(index: number): number {
    return Math.min(BLOCK, this.length - index * BLOCK);
  }

  /** Makes room in the budget, then a staging block for `index` (unless another call did). */
  async #stage(index: number): Promise<void> {
    const budget = this.#budget;
    while (budget.waiting.size >= budget.maxBlocks) {
      const oldest = budget.waiting.values().next().value!;
      await oldest.file.#spill(oldest);
    }
    const memory = await acquireAligned(BLOCK, this.#directHandle!);
    if (!memory) {
      // No alignment the kernel accepts: the rest goes through the page cache.
      this.#directOk = false;
      return;
    }
    if (this.#blocks.has(index) || this.#spilled.has(index) || this.#written.has(index)) {
      releaseAligned(memory);
      return;
    }
    const block: PendingBlock = { file: this, index, memory, ranges: [], filled: 0 };
    this.#blocks.set(index, block);
    budget.waiting.add(block);
  }

  /** A whole block: written directly (or buffered, on a device found slow). */
  #complete(block: PendingBlock): void {
    this.#forget(block, false);
    this.#written.add(block.index);
    const length = this.#blockLength(block.index);
    const position = block.index * BLOCK;
    const direct = this.#directOk && directWritesWanted() ? this.#directHandle : undefined;
    // A direct write is whole sectors long; the file is cut to length at close.
    const rounded = direct ? Math.ceil(length / DIRECT_BLOCK) * DIRECT_BLOCK : length;
    block.memory.fill(0, length, rounded);
    const buffered = (): Promise<void> =>
      writeFully(this.#buffered, block.memory, length, position);
    const write: Promise<void> = (
      direct
        ? writeDirect(direct, block.memory, rounded, position).catch((error: unknown) => {
            // EINVAL: pooled memory aligned for another device; the page cache takes the rest.
            if (!hasErrnoCode(error, 'EINVAL')) throw error;
            this.#directOk = false;
            return buffered();
          })
        : buffered()
    )
      .catch((error: unknown) => {
        this.#failure ??= error;
      })
      .finally(() => {
        releaseAligned(block.memory);
        this.#writes.delete(write);
      });
    this.#writes.add(write);
  }

  /** Writes the bytes a block has through the page cache; its later pieces follow them. */
  async #spill(block: PendingBlock): Promise<void> {
    this.#forget(block, false);
    this.#spilled.add(block.index);
    try {
      const base = block.index * BLOCK;
      for (const [start, end] of block.ranges) {
        await writeFully(
          this.#buffered,
          block.memory.subarray(start, end),
          end - start,
          base + start,
        );
      }
    } catch (error) {
      this.#failure ??= error;
      throw error;
    } finally {
      releaseAligned(block.memory);
    }
  }

  /** Takes a block off the books (and gives its memory back unless `release` is false). */
  #forget(block: PendingBlock, release = true): void {
    this.#blocks.delete(block.index);
    this.#budget.waiting.delete(block);
    if (release) releaseAligned(block.memory);
  }

  async #closeHandles(): Promise<void> {
    await this.#directHandle?.close().catch(() => undefined);
    await this.#buffered.close().catch(() => undefined);
  }
}

/**
 * Adds [start, end) to sorted, disjoint `ranges`; returns how many of its
 * bytes were new (a piece written twice is counted once).
 */
export function addRange(ranges: [number, number][], start: number, end: number): number {
  let added = end - start;
  let i = 0;
  while (i < ranges.length && ranges[i]![1] < start) i++;
  let newStart = start;
  let newEnd = end;
  let j = i;
  while (j < ranges.length && ranges[j]![0] <= end) {
    const [s, e] = ranges[j]!;
    added -= Math.max(0, Math.min(e, end) - Math.max(s, start));
    newStart = Math.min(newStart, s);
    newEnd = Math.max(newEnd, e);
    j++;
  }
  ranges.splice(i, j - i, [newStart, newEnd]);
  return added;
}
