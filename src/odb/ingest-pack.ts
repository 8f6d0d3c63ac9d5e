/**
 * A pack written while a large file is added (docs/format.md, "Packs"): its
 * new chunks go into one file instead of one file each, as Git streams a big
 * file straight into a pack. Measured here for 512 chunks of 2 MiB: one file
 * and one fsync take 0.8 s (0.5 s of system time), a file and an fsync per
 * chunk 1.7-2.4 s (1.9-3.0 s of system time).
 *
 * Records are copied, in the order they are appended (whatever order
 * compression finishes in), into staging memory written a segment at a time,
 * bypassing the page cache where the filesystem allows and the device keeps
 * pace (src/storage/direct-io.ts: once direct writes are found slow, the
 * rest of the pack goes through the page cache). The pack becomes
 * visible only when complete: written to `tmp/`, fsynced, renamed into
 * `objects/pack/`, then its index (always last), each step fsynced, as repack
 * does; a crash before that leaves a temp file and no object anyone can see.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import {
  alignedMemory,
  DIRECT_BLOCK,
  directWritesWanted,
  openDirect,
  writeDirect,
  writeFully,
} from '../storage/direct-io.ts';
import { beginAtomicWrite, fsyncDirectory, tempName } from '../storage/durable-file.ts';
import type { ObjectId } from './object-id.ts';
import type { ObjectStore } from './object-store.ts';
import {
  encodePackHeader,
  encodePackIndex,
  INGEST_PACK_VERSION,
  PACK_HEADER_SIZE,
  packFileName,
  packIndexFileName,
  recordTableChecksum,
  type PackEntry,
} from './pack.ts';

/**
 * The pack is assembled in a ring of staging segments and written a whole
 * segment at a time. Where the filesystem allows, the file is opened with
 * O_DIRECT: the segments go straight to the disk, with no page-cache copy.
 * (src/storage/direct-io.ts has the measurements). Adding 1 GiB is CPU-bound
 * on two cores, so the system time saved goes to hashing and cutting.
 */
const SEGMENT_SIZE = 4 * 1024 * 1024;
/** Segments in the ring: one being filled while the others are written. */
const SEGMENTS = 4;
/**
 * Bytes between background fdatasyncs: the disk writes while the chunker
 * works, so the final fsync finds little left. Buffered packs need it for
 * the page cache (one fsync at the end of 1 GiB was a 0.7 s tail here);
 * direct ones too, for the virtual disk's own write cache: 1 GiB written
 * directly (by this code or `dd oflag=direct`) then fsynced waited 0.43-0.76
 * s in that fsync, the device flushing what it had only acknowledged.
 * `mediagit add` of 1 GiB, 4 rounds alternating: 1.65-1.99 s with a flush
 * every 32 MiB, 1.84-2.10 s every 128 MiB, 1.97-2.24 s with none.
 */
const FLUSH_EVERY = 32 * 1024 * 1024;

export interface IngestPackOptions {
  /**
   * Try O_DIRECT writes (default: yes, unless MEDIAGIT_DIRECT_IO=0). Packs
   * are byte-identical either way; a filesystem without direct I/O (tmpfs)
   * gets buffered writes.
   */
  readonly directIo?: boolean | undefined;
}

export class IngestPack {
  readonly #store: ObjectStore;
  readonly #tmpPath: string;
  readonly #file: fs.FileHandle;
  /** Segments are being written with O_DIRECT (through `#file`). */
  #direct: boolean;
  /** The same file opened without O_DIRECT, once direct writes turned slow. */
  #buffered: Promise<fs.FileHandle> | undefined;
  readonly #entries: PackEntry[] = [];
  /** The staging ring, SEGMENT_SIZE bytes each, block-aligned in memory when direct. */
  readonly #segments: Buffer[];
  /** Block 0 as it was written, kept to put the header in at the end. */
  readonly #firstBlock: Buffer;
  /** Each segment's write in flight, if any. */
  readonly #writes: (Promise<void> | undefined)[] = [];
  #current = 0;
  /** File offset of the current segment's first byte, and bytes filled in it. */
  #segmentStart = 0;
  #fill = PACK_HEADER_SIZE;
  /** Appends run one after another: each copies its record in whole. */
  #queue: Promise<void> = Promise.resolve();
  #failure: unknown;
  #closed = false;
  /** Renamed into objects/pack/: from then on it is the store's, not ours to remove. */
  #renamed = false;
  /** Where the next background flush is due (buffered only), and the one running. */
  #flushAt = FLUSH_EVERY;
  #flushing: Promise<void> | undefined;

  private constructor(
    store: ObjectStore,
    tmpPath: string,
    file: fs.FileHandle,
    memory: Buffer | undefined,
  ) {
    this.#store = store;
    this.#tmpPath = tmpPath;
    this.#file = file;
    this.#direct = memory !== undefined;
    const ring = memory ?? Buffer.allocUnsafeSlow(SEGMENTS * SEGMENT_SIZE + DIRECT_BLOCK);
    this.#segments = Array.from({ length: SEGMENTS }, (_, i) =>
      ring.subarray(i * SEGMENT_SIZE, (i + 1) * SEGMENT_SIZE),
    );
    this.#firstBlock = ring.subarray(
      SEGMENTS * SEGMENT_SIZE,
      SEGMENTS * SEGMENT_SIZE + DIRECT_BLOCK,
    );
    this.#segments[0]!.fill(0, 0, PACK_HEADER_SIZE);
  }

  static async create(store: ObjectStore, options: IngestPackOptions = {}): Promise<IngestPack> {
    await store.writer.register();
    const tmpPath = tempName(store.tmpDir, 'ingest-pack');
    if (options.directIo ?? directWritesWanted()) {
      // Filesystems without direct I/O refuse the flag: write through the page cache.
      const file = await openDirect(tmpPath, 0o444);
      if (file) {
        const memory = await alignedMemory(file, SEGMENTS * SEGMENT_SIZE + DIRECT_BLOCK);
        if (memory) return new IngestPack(store, tmpPath, file, memory);
        await file.close();
        await fs.rm(tmpPath, { force: true });
      }
    }
    const file = await fs.open(tmpPath, 'wx', 0o444);
    return new IngestPack(store, tmpPath, file, undefined);
  }

  get count(): number {
    return this.#entries.length;
  }

  /** Whether this pack's writes bypass the page cache (O_DIRECT). */
  get direct(): boolean {
    return this.#direct;
  }

  /**
   * Appends the record of object `id` (its header and payload, as a loose
   * file holds them; or a function making it, called in turn). Resolves once the bytes are copied into the pack's
   * staging memory, so the caller may reuse them; a failed write of earlier
   * bytes rejects it. Each ID must be appended once.
   */
  append(
    id: ObjectId,
    record: readonly Uint8Array[] | (() => readonly Uint8Array[]),
  ): Promise<void> {
    const run = this.#queue.then(async () => {
      if (this.#failure !== undefined) throw this.#failure;
      if (this.#closed) throw new Error('append to a finished ingest pack');
      // A record made on its turn (sealed, in an encrypted repository) holds
      // memory only while it is copied, however far ahead its callers run.
      const parts = typeof record === 'function' ? record() : record;
      const offset = this.#segmentStart + this.#fill;
      let length = 0;
      for (const part of parts) {
        await this.#copyIn(part);
        length += part.length;
      }
      this.#entries.push({ id, offset, length });
    });
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /** Copies bytes at the end of the pack, writing each segment as it fills. */
  async #copyIn(bytes: Uint8Array): Promise<void> {
    const source = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
    for (let done = 0; done < bytes.length;) {
      const segment = this.#segments[this.#current]!;
      const n = Math.min(bytes.length - done, SEGMENT_SIZE - this.#fill);
      // Buffer#copy is a memcpy; TypedArray#set from a SharedArrayBuffer (the
      // chunker's ring) copies with atomics, 4x slower in the profile.
      source.copy(segment, this.#fill, done, done + n);
      this.#fill += n;
      done += n;
      if (this.#fill === SEGMENT_SIZE) await this.#rotate();
    }
  }

  /** Starts writing the full current segment and waits until the next one is free. */
  async #rotate(): Promise<void> {
    if (this.#segmentStart === 0) this.#segments[0]!.copy(this.#firstBlock, 0, 0, DIRECT_BLOCK);
    this.#startWrite(this.#current, SEGMENT_SIZE);
    this.#current = (this.#current + 1) % SEGMENTS;
    this.#segmentStart += SEGMENT_SIZE;
    this.#fill = 0;
    await this.#writes[this.#current];
    if (this.#failure !== undefined) throw this.#failure;
  }

  #startWrite(index: number, length: number): void {
    const at = this.#segmentStart;
    const write = this.#write(this.#segments[index]!, length, at).then(
      () => this.#flushSometimes(at + length),
      (error: unknown) => {
        this.#failure ??= error;
      },
    );
    this.#writes[index] = write;
  }

  /**
   * One segment, directly while the device keeps pace, else through a
   * second, buffered descriptor of the same file (the ranges never overlap:
   * a direct write already sent only ever precedes the buffered ones).
   */
  async #write(bytes: Buffer, length: number, at: number): Promise<void> {
    if (this.#direct && !directWritesWanted()) {
      this.#direct = false;
      this.#buffered = fs.open(this.#tmpPath, 'r+');
    }
    if (this.#direct) return await writeDirect(this.#file, bytes, length, at);
    return await writeFully((await this.#buffered) ?? this.#file, bytes, length, at);
  }

  /** An fdatasync in the background every FLUSH_EVERY bytes (one at a time). */
  #flushSometimes(position: number): void {
    if (position < this.#flushAt || this.#flushing) return;
    this.#flushAt = position + FLUSH_EVERY;
    // Errors surface at the final fsync, which covers the same bytes.
    this.#flushing = this.#file
      .datasync()
      .catch(() => undefined)
      .finally(() => (this.#flushing = undefined));
  }

  /**
   * Makes the pack durable and visible: header, trailer, fsync, rename into
   * `objects/pack/`, then its index. Returns the pack's name.
   */
  async finish(): Promise<string> {
    await this.#queue;
    if (this.#failure !== undefined) throw this.#failure;
    this.#closed = true;
    const trailer = recordTableChecksum(this.#entries);
    const header = encodePackHeader(this.#entries.length, INGEST_PACK_VERSION);
    const name = trailer.toString('hex');
    const packDir = path.join(this.#store.objectsDir, 'pack');
    // The index is written and flushed while the pack is (one flush's wait,
    // not two in a row); its name appears only once the pack's is durable.
    let packPlaced!: () => void;
    let packFailed!: (error: unknown) => void;
    const packInPlace = new Promise<void>((resolve, reject) => {
      packPlaced = resolve;
      packFailed = reject;
    });
    // Rejected before the index write began, nothing else waits on it.
    packInPlace.catch(() => undefined);
    let indexDurable: Promise<void> | undefined;
    try {
      await this.#copyIn(trailer);
      const total = this.#segmentStart + this.#fill;
      if (this.#segmentStart === 0) header.copy(this.#segments[0]!, 0);
      // The last segment is written whole blocks long (a direct write cannot
      // be shorter), then the file is cut to its exact length.
      const tail = Math.ceil(this.#fill / DIRECT_BLOCK) * DIRECT_BLOCK;
      this.#segments[this.#current]!.fill(0, this.#fill, tail);
      if (tail > 0) this.#startWrite(this.#current, tail);
      await Promise.all(this.#writes);
      if (this.#segmentStart > 0) {
        header.copy(this.#firstBlock, 0);
        await writeFully(this.#file, this.#firstBlock, DIRECT_BLOCK, 0).catch((error: unknown) => {
          this.#failure ??= error;
        });
      }
      await this.#flushing;
      if (this.#failure !== undefined) throw this.#failure;
      if (tail !== this.#fill) await this.#file.truncate(total);
      await fs.mkdir(packDir, { recursive: true });
      indexDurable = (
        await beginAtomicWrite(
          path.join(packDir, packIndexFileName(name)),
          [encodePackIndex(this.#entries, trailer)],
          { tmpDir: this.#store.tmpDir, mode: 0o444, renameAfter: packInPlace },
        )
      ).durable;
      // fsync covers the inode: the buffered descriptor's pages as well.
      await this.#file.sync();
    } catch (error) {
      packFailed(error);
      await indexDurable?.catch(() => undefined);
      throw error;
    } finally {
      await this.#closeBuffered();
      await this.#file.close();
    }
    try {
      await fs.rename(this.#tmpPath, path.join(packDir, packFileName(name)));
      this.#renamed = true;
      await fsyncDirectory(packDir);
    } catch (error) {
      packFailed(error);
      await indexDurable.catch(() => undefined);
      throw error;
    }
    packPlaced();
    await indexDurable;
    await fsyncDirectory(packDir);
    return name;
  }

  /**
   * Drops a pack that did not become visible (after an error, also one from
   * `finish`): no object in it was ever readable.
   */
  async abort(): Promise<void> {
    if (this.#renamed) return;
    this.#closed = true;
    await this.#queue;
    await Promise.all(this.#writes);
    await this.#flushing;
    await this.#closeBuffered();
    await this.#file.close().catch(() => undefined);
    await fs.rm(this.#tmpPath, { force: true });
  }

  async #closeBuffered(): Promise<void> {
    const buffered = await this.#buffered?.catch(() => undefined);
    await buffered?.close().catch(() => undefined);
  }
}
