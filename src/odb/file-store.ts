/**
 * Storing a working file as objects (reading them back: file-read.ts).
 *
 * A file below the chunking threshold (or added with no-chunking) becomes one
 * blob whose ID is the file's SHA-256. A larger file is cut by FastCDC into
 * chunks, each stored once however many files and versions share it, plus a
 * manifest listing them. Storing streams the file through three reused shared
 * buffers (memory shared with the WebAssembly chunker): the main thread
 * reads and cuts, a worker computes the chunk IDs (BLAKE3) and the
 * whole-file SHA-256, and the libuv pool compresses and
 * writes chunks (into one ingest pack for a file of 64 MiB or more), so
 * memory stays bounded by the buffers whatever the file size.
 */
import { constants, readSync } from 'node:fs';
import fs from 'node:fs/promises';
import { LRUCache } from 'lru-cache';
import { chunkSizesForFile, GearScanner, type ChunkSizes } from '../chunking/fastcdc.ts';
import { GEAR } from '../chunking/gear.ts';
import {
  Codec,
  classifyContent,
  encode,
  encodeDelta,
  encodeWithPolicy,
  type CompressionPolicy,
  type ContentClass,
  type Encoded,
} from '../compression/codec.ts';
import { sketchOf } from '../chunking/sketch.ts';
import {
  CONTAINER_CUT_RULES,
  FIXED_CHUNK_SIZE,
  structuralCuts,
  type ChunkingStrategy,
} from '../chunking/containers.ts';
import { beginAtomicWrite } from '../storage/durable-file.ts';
import { hasErrnoCode, MediaGitError } from '../errors.ts';
import { deltaPrefix, MAX_BASE_BYTES, MAX_BASES, SketchIndex, type DeltaOptions } from './delta.ts';
import { IngestPack } from './ingest-pack.ts';
import { encodeManifest, type ChunkRef, type Manifest } from './manifest.ts';
import { objectIdOf, type ObjectId } from './object-id.ts';
import { HEADER_SIZE, type ObjectStore, type StoredObject } from './object-store.ts';
import { WholeFileHasher } from './whole-file-hasher.ts';
import { readManifest, type FileObjectKind } from './file-read.ts';

/** What a stored file is: its object, its size and its whole-file SHA-256. */
export interface StoredFile {
  readonly kind: FileObjectKind;
  readonly id: ObjectId;
  readonly size: number;
  readonly sha256: ObjectId;
}

export interface StoreStats {
  chunks: number;
  newChunks: number;
  newBytes: number;
  /** New objects stored as deltas against similar earlier ones. */
  deltas: number;
}

export interface StoreFileOptions {
  readonly chunkThreshold: number;
  readonly noChunking?: boolean;
  /** Files at least this large put their new chunks in one pack (default INGEST_PACK_MIN_SIZE). */
  readonly packThreshold?: number | undefined;
  /**
   * Chooses how to cut and compress the file from its first bytes (up to
   * 64 KiB) and size: the caller's format detection. Without it, FastCDC alone
   * and a codec chosen by content probe.
   */
  readonly profile?: ((head: Uint8Array, size: number) => FileProfile) | undefined;
  /**
   * The previous version of the same path, if any: a chunked file's new
   * chunks may be stored as deltas against the old chunks at the same place
   * (NearbyBases). Leave it out to store no such deltas (`add --no-delta`).
   */
  readonly previous?: { readonly kind: FileObjectKind; readonly id: ObjectId } | undefined;
  readonly signal?: AbortSignal | undefined;
  /** Called with bytes consumed so far of this file. */
  readonly onBytes?: ((bytes: number) => void) | undefined;
  /**
   * Where a chunked file's new objects go instead of this store (git-lfs's
   * transfer agent sends them to a server as they are made): the store is
   * then only asked how to encode, and nothing is written to it.
   */
  readonly sink?: ChunkSink | undefined;
  /**
   * The file's SHA-256 when the caller knows it already (git-lfs's OID,
   * which the receiver checks): a chunked file's is then not computed.
   */
  readonly sha256?: ObjectId | undefined;
}

/** A destination for a chunked file's objects other than the store (StoreFileOptions.sink). */
export interface ChunkSink {
  /** Which of these chunk IDs the destination lacks (asked once per buffer of chunks). */
  missing(ids: readonly ObjectId[]): Promise<ReadonlySet<ObjectId>>;
  /**
   * Takes a chunk's record, given as parts (reused once this resolves).
   * `order` numbers the chunks appended, 0, 1, 2, ... in file order; calls
   * may come out of that order (chunks are compressed in parallel).
   */
  append(id: ObjectId, record: readonly Uint8Array[], order: number): Promise<void>;
  /** A chunk numbered `order` failed before it was appended: appends waiting for it must fail. */
  abort(order: number, error: unknown): void;
  /** Takes the file's manifest record, after every chunk was appended. */
  finish(id: ObjectId, record: Buffer): Promise<void>;
}

export interface FileProfile {
  readonly chunking: ChunkingStrategy;
  readonly compression: CompressionPolicy;
  /** Store new objects as deltas against similar earlier ones; absent: never. */
  readonly delta?: DeltaOptions | undefined;
}

/**
 * Chunks of the previous version of the same path that overlap a new chunk's
 * place in the file: the natural delta bases for an edit (an insert, an
 * overwrite) whatever the format. `budget` is shared by the file's chunks:
 * after NEARBY_MISSES deltas in a row that do not pay, the file is taken to
 * be rewritten rather than edited and no more are tried.
 */
interface NearbyBases {
  readonly ids: readonly ObjectId[];
  readonly maxDepth: number;
  readonly budget: { misses: number };
}

/** Consecutive unprofitable nearby deltas after which a file stops trying them. */
const NEARBY_MISSES = 4;
/** Chain depth for nearby deltas in formats whose category sets none. */
const NEARBY_MAX_DEPTH = 3;

/** An object ready to write, and what delta bookkeeping it needs. */
interface EncodedObject {
  readonly codec: Codec;
  readonly parts: readonly Uint8Array[];
  readonly storedSize: number;
  /** Its delta chain depth (0: stored whole) and sketch, when it may serve as a base. */
  readonly base?: { readonly depth: number; readonly sketch: Uint32Array } | undefined;
}

/** Delta bases kept decoded: a few chunks (2 MiB on average, 8 MiB at most) either side. */
const BASE_CACHE_ENTRIES = 8;
/** A delta this much smaller than the raw object is kept without trying a full encoding. */
const CLEARLY_SMALLER = 8;

const PROFILE_HEAD_BYTES = 64 * 1024;

export { DEFAULT_CHUNK_THRESHOLD } from './manifest.ts';
/**
 * Largest file stored whole: a blob is read and verified in memory, so above
 * this a file is always chunked (a configured threshold is capped here) and
 * `--no-chunking` is refused, keeping memory bounded whatever the file size.
 */
export const MAX_BLOB_SIZE = 256 * 1024 * 1024;
const CHUNKER_NAME = 'fastcdc-v1';
const BUFFER_SIZE = 16 * 1024 * 1024;
/**
 * Buffers in the ring: one being read and cut while the worker hashes the one
 * before and its chunks are written (two left the reader waiting ~15% of the time).
 */
const BUFFERS = 3;
/** Files at least this large put their new chunks in one pack, not a file each. */
export const INGEST_PACK_MIN_SIZE = 64 * 1024 * 1024;
/** Chunk files written but not yet fsynced and renamed (each holds a descriptor). */
const MAX_PENDING_DURABLE = 128;
/**
 * Sealed chunk records (an encrypted repository) made but not yet in the
 * pack or written: sealing runs ahead of the disk this far, and no further.
 */
const SEALED_AHEAD = 16 * 1024 * 1024;
/** Chunk compressions running at once (the libuv pool has four threads). */
const MAX_PARALLEL_ENCODES = 4;

/** Stores files; holds the worker thread and stats for one command. */
export class FileStore {
  readonly store: ObjectStore;
  readonly stats: StoreStats = { chunks: 0, newChunks: 0, newBytes: 0, deltas: 0 };
  readonly #hasher = new WholeFileHasher();
  /** The chunker and its ring buffers, kept for the next chunked file. */
  #scanner: GearScanner | undefined;
  #encoding = 0;
  readonly #sealing = new ByteBudget(SEALED_AHEAD);
  readonly #encodeWaiters: (() => void)[] = [];
  /** Chunk writes whose fsync and rename are still running. */
  readonly #durable = new Set<Promise<void>>();
  #sketches: Promise<SketchIndex> | undefined;
  /** Recently read delta bases (#readBase), by ID. */
  readonly #bases = new LRUCache<ObjectId, Promise<StoredObject>>({ max: BASE_CACHE_ENTRIES });
  /** Objects of the file being stored that may serve as bases once it is stored. */
  #newBases: { id: ObjectId; depth: number; length: number; sketch: Uint32Array }[] = [];

  constructor(store: ObjectStore) {
    this.store = store;
  }

  /** Saves the sketches of new objects (for later deltas) and stops the worker. */
  async close(): Promise<void> {
    try {
      if (this.#sketches) await (await this.#sketches).save();
    } finally {
      await this.#hasher.close();
    }
  }

  /** Stores the regular file at `filePath`. */
  async storeFile(filePath: string, options: StoreFileOptions): Promise<StoredFile> {
    const handle = await fs.open(filePath, constants.O_RDONLY);
    try {
      const { size } = await handle.stat();
      if (options.noChunking && size > MAX_BLOB_SIZE) {
        throw new MediaGitError(
          'BLOB_TOO_LARGE',
          `${filePath} is ${size} bytes; files above ${MAX_BLOB_SIZE} bytes are always stored as chunks (drop --no-chunking)`,
          { kind: 'usage', data: { path: filePath, size, limit: MAX_BLOB_SIZE } },
        );
      }
      if (size < Math.min(options.chunkThreshold, MAX_BLOB_SIZE) || options.noChunking) {
        const data = await handle.readFile();
        if (data.length !== size) throw fileChanged(filePath);
        options.onBytes?.(size);
        const profile = options.profile?.(data.subarray(0, PROFILE_HEAD_BYTES), size);
        return await this.storeBlob(data, profile?.compression, profile?.delta);
      }
      let profile: FileProfile = { chunking: 'cdc', compression: 'auto' };
      if (options.profile) {
        const head = Buffer.alloc(Math.min(PROFILE_HEAD_BYTES, size));
        const { bytesRead } = await handle.read(head, 0, head.length, 0);
        profile = options.profile(head.subarray(0, bytesRead), size);
      }
      return await this.#storeChunked(handle, filePath, size, options, profile);
    } finally {
      await handle.close();
    }
  }

  /** Stores bytes already in memory as a blob (symlink targets, small files). */
  async storeBlob(
    data: Uint8Array,
    compression: CompressionPolicy = 'auto',
    delta?: DeltaOptions,
  ): Promise<StoredFile> {
    const sha256 = objectIdOf('blob', data);
    const id = this.store.keyId(sha256);
    if (!(await this.store.has(id))) {
      const encoded = await this.#encodeObject(
        data,
        compression,
        classifyContent(data.subarray(0, 64 * 1024)),
        delta,
      );
      const result = await this.store.writeEncoded('blob', id, data.length, {
        codec: encoded.codec,
        payload: encoded.parts.length === 1 ? encoded.parts[0]! : Buffer.concat(encoded.parts),
      });
      if (result.written) {
        this.stats.newBytes += result.storedSize;
        if (encoded.base) {
          (await this.#sketchIndex()).add(id, encoded.base.depth, data.length, encoded.base.sketch);
        }
      }
    }
    return { kind: 'blob', id, size: data.length, sha256 };
  }

  /**
   * A delta base's bytes, verified. Neighbouring chunks of a new version
   * usually share bases (an edit that moves a cut point makes each new chunk
   * straddle two old ones), so recent ones are kept rather than decoded and
   * hashed again.
   */
  #readBase(id: ObjectId): Promise<StoredObject> {
    let base = this.#bases.get(id);
    if (!base) {
      base = this.store.read(id);
      base.catch(() => this.#bases.delete(id));
      this.#bases.set(id, base);
    }
    return base;
  }

  /**
   * For a file whose previous version was chunked: a function giving the old
   * chunks that overlap a byte range of the new version (NearbyBases).
   */
  async #nearbyFinder(
    previous: StoreFileOptions['previous'],
    profile: FileProfile,
  ): Promise<((offset: number, length: number) => NearbyBases | undefined) | undefined> {
    if (previous?.kind !== 'manifest') return undefined;
    let old: Manifest;
    try {
      old = await readManifest(this.store, previous.id);
    } catch {
      return undefined; // unreadable: simply no nearby deltas
    }
    const starts: number[] = [];
    let at = 0;
    for (const chunk of old.chunks) {
      starts.push(at);
      at += chunk.length;
    }
    const budget = { misses: 0 };
    const maxDepth = profile.delta?.maxDepth ?? NEARBY_MAX_DEPTH;
    return (offset, length) => {
      // The first old chunk ending after `offset`, then those starting before the end.
      let lo = 0;
      let hi = starts.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (starts[mid]! + old.chunks[mid]!.length <= offset) lo = mid + 1;
        else hi = mid;
      }
      const ids: ObjectId[] = [];
      let bytes = 0;
      for (let i = lo; i < starts.length && starts[i]! < offset + length; i++) {
        const chunk = old.chunks[i]!;
        if (ids.length === MAX_BASES || bytes + chunk.length > MAX_BASE_BYTES) break;
        if (!ids.includes(chunk.id)) ids.push(chunk.id);
        bytes += chunk.length;
      }
      return ids.length > 0 ? { ids, maxDepth, budget } : undefined;
    };
  }

  #sketchIndex(): Promise<SketchIndex> {
    this.#sketches ??= SketchIndex.load(this.store.objectsDir);
    return this.#sketches;
  }

  /**
   * Encodes a new object: as a delta against the most similar earlier object
   * when `delta` allows and the delta is smaller than the object compressed
   * on its own, else compressed by `policy`.
   */
  async #encodeObject(
    data: Uint8Array,
    policy: CompressionPolicy,
    contentClass: ContentClass,
    deltaOption: DeltaOptions | undefined,
    nearbyOption?: NearbyBases,
  ): Promise<EncodedObject> {
    // No deltas in an encrypted repository: a sketch summarizes content
    // outside what sealing hides (docs/encryption.md).
    const plain = this.store.cipher === undefined;
    const delta = plain ? deltaOption : undefined;
    const nearby = plain ? nearbyOption : undefined;
    const sketch = delta ? sketchOf(data) : undefined;
    const found = delta && sketch && (await this.#sketchIndex()).find(sketch, data.length, delta);
    let viaDelta = found
      ? await this.#deltaAgainst(data, found.ids, delta.maxDepth, sketch)
      : undefined;
    const tryNearby = !viaDelta && nearby !== undefined && nearby.budget.misses < NEARBY_MISSES;
    if (tryNearby) viaDelta = await this.#deltaAgainst(data, nearby.ids, nearby.maxDepth, sketch);
    if (viaDelta && viaDelta.storedSize * CLEARLY_SMALLER < data.length) {
      if (tryNearby) nearby.budget.misses = 0;
      return viaDelta;
    }
    const whole: Encoded =
      policy === 'auto' ? await encode(data, contentClass) : await encodeWithPolicy(data, policy);
    if (viaDelta && viaDelta.storedSize < HEADER_SIZE + whole.payload.length) {
      if (tryNearby) nearby.budget.misses = 0;
      return viaDelta;
    }
    if (tryNearby) nearby.budget.misses++;
    return {
      codec: whole.codec,
      parts: [whole.payload],
      storedSize: HEADER_SIZE + whole.payload.length,
      base: sketch && { depth: 0, sketch },
    };
  }

  /** `data` as a delta against `ids`, unless a base is gone or the chain would pass `maxDepth`. */
  async #deltaAgainst(
    data: Uint8Array,
    ids: readonly ObjectId[],
    maxDepth: number,
    sketch: Uint32Array | undefined,
  ): Promise<EncodedObject | undefined> {
    const bases = await Promise.all(ids.map((id) => this.#readBase(id))).catch(
      () => undefined, // a base gone since it was found: no delta
    );
    if (!bases) return undefined;
    const depth = 1 + Math.max(...bases.map((base) => base.depth ?? 0));
    if (depth > maxDepth) return undefined;
    const dictionary =
      bases.length === 1 ? bases[0]!.data : Buffer.concat(bases.map((b) => b.data));
    const frame = await encodeDelta(data, dictionary);
    const prefix = deltaPrefix(ids, depth);
    return {
      codec: Codec.delta,
      parts: [prefix, frame],
      storedSize: HEADER_SIZE + prefix.length + frame.length,
      base: sketch && { depth, sketch },
    };
  }

  async #storeChunked(
    handle: fs.FileHandle,
    filePath: string,
    size: number,
    options: StoreFileOptions,
    profile: FileProfile,
  ): Promise<StoredFile> {
    const sizes = chunkSizesForFile(size);
    const capacity = Math.max(BUFFER_SIZE, sizes.max * 2);
    // The ring lives in memory shared with the WebAssembly chunker and the
    // hashing worker: nothing is copied between them. Files are stored one
    // at a time (the worker hashes one), so the next file reuses it.
    if (
      this.#scanner?.data.length !== BUFFERS * capacity ||
      this.#scanner.gearTable !== (this.store.cipher?.gearTable ?? GEAR)
    ) {
      this.#scanner = new GearScanner(BUFFERS * capacity, this.store.cipher?.gearTable);
    }
    const scanner = this.#scanner;
    const buffers = Array.from({ length: BUFFERS }, (_, i) =>
      scanner.data.subarray(i * capacity, (i + 1) * capacity),
    );
    const pending: Promise<unknown>[][] = buffers.map(() => []);
    this.#hasher.begin(buffers);

    const strategy = profile.chunking;
    const sink = options.sink;
    this.#newBases = [];
    // A large file's new chunks go into one pack (ingest-pack.ts), a smaller
    // one's into loose files.
    let ingest: Promise<IngestPack> | undefined;
    const packFor =
      size >= (options.packThreshold ?? INGEST_PACK_MIN_SIZE) && !sink
        ? () => (ingest ??= IngestPack.create(this.store))
        : undefined;
    const nearbyFor = sink ? undefined : await this.#nearbyFinder(options.previous, profile);
    // Structural cut points (container boundaries) as file offsets; a chunk
    // always ends at each one, and FastCDC cuts between them.
    const cuts = await structuralCuts(
      strategy,
      {
        size,
        read: async (target, position) =>
          (await handle.read(target, 0, target.length, position)).bytesRead,
      },
      { signal: options.signal },
    );
    const fixed = strategy === 'fixed';
    const chunks: ChunkRef[] = [];
    const seen = new Set<ObjectId>();
    /** The sink's chunk numbering: the next number, and the batch whose turn it is. */
    let sinkOrder = 0;
    let sinkTurn = Promise.resolve();
    /** Chunks cut from the current buffer whose IDs are yet to be asked: start, length pairs. */
    let ranges: number[] = [];
    let contentClass: ContentClass | undefined;
    let current = 0;
    let pos = 0;
    let end = 0;
    /** File offset of buffer[0] of the current buffer. */
    let base = 0;
    let cutIndex = 0;
    let fileOffset = 0;
    let eof = false;
    let failure: unknown;
    const track = (index: number, work: Promise<unknown>): void => {
      pending[index]!.push(
        work.catch((error: unknown) => {
          failure ??= error;
        }),
      );
    };

    try {
      while (true) {
        options.signal?.throwIfAborted();
        const buffer = buffers[current]!;
        while (end < capacity && !eof) {
          // Synchronous: from the page cache this is a memcpy at several GB/s, and
          // an async read would leave the cutting thread idle for each refill.
          const bytesRead = readSync(handle.fd, buffer, end, capacity - end, fileOffset);
          if (bytesRead === 0) {
            eof = true;
            break;
          }
          if (!options.sha256) track(current, this.#hasher.update(current, end, end + bytesRead));
          end += bytesRead;
          fileOffset += bytesRead;
          options.onBytes?.(fileOffset);
          if (fileOffset > size) throw fileChanged(filePath);
        }
        contentClass ??= classifyContent(buffer.subarray(0, Math.min(end, 64 * 1024)));
        while (pos < end) {
          // The next structural cut bounds this chunk like an end of input.
          const cut = cuts[cutIndex];
          const cutInBuffer = cut === undefined ? Infinity : cut - base;
          const limit = Math.min(end, cutInBuffer);
          const hardEnd = cutInBuffer <= end || eof;
          const available = limit - pos;
          let length: number;
          if (fixed) {
            if (available < FIXED_CHUNK_SIZE && !hardEnd) break;
            length = Math.min(FIXED_CHUNK_SIZE, available);
          } else {
            length = scanner.findChunkLength(buffer, pos, limit, sizes);
            // Short of `max` bytes, a cut found before the end of the bytes at
            // hand is the one more bytes would give (the rule reads no byte
            // past its cut); none found waits for the next read. Stopping at
            // `max` instead left ~40% of every buffer to copy into the next.
            if (available < sizes.max && !hardEnd && length >= available) break;
          }
          ranges.push(pos, length);
          pos += length;
          if (pos === cutInBuffer) cutIndex++;
        }
        if (ranges.length > 0) {
          // IDs come from the worker; writes start as they arrive, and the
          // buffer is reused only once they are done.
          const first = chunks.length;
          chunks.length += ranges.length / 2;
          this.stats.chunks += ranges.length / 2;
          const batch = ranges;
          const batchBase = base;
          const cc = contentClass;
          ranges = [];
          track(
            current,
            this.#hasher.chunkIds(current, batch).then(async (plainIds) => {
              const ids = plainIds.map((plainId) => this.store.keyId(plainId));
              const fresh = new Set<ObjectId>();
              for (const id of ids) if (!seen.has(id)) fresh.add(id);
              for (const id of fresh) seen.add(id);
              let absent: ReadonlySet<ObjectId> | undefined;
              let orders: number[] = [];
              if (sink) {
                // Batches (taken in file order here, before any await) number
                // the chunks they send in file order, whatever order the
                // answers about what is missing come back in.
                const turn = sinkTurn;
                let done!: () => void;
                sinkTurn = new Promise<void>((resolve) => (done = resolve));
                try {
                  absent = fresh.size > 0 ? await sink.missing([...fresh]) : new Set();
                  await turn;
                  orders = numberSent(ids, fresh, absent, () => sinkOrder++);
                } finally {
                  done();
                }
              }
              await settleAll(
                ids.map((id, k) => {
                  const start = batch[2 * k]!;
                  const length = batch[2 * k + 1]!;
                  chunks[first + k] = { id, length };
                  if (!fresh.delete(id) || (absent && !absent.has(id))) return undefined;
                  const view = buffer.subarray(start, start + length);
                  const nearby = nearbyFor?.(batchBase + start, length);
                  const sent = sink ? { sink, order: orders[k]! } : undefined;
                  const writing = this.#writeChunk(id, view, cc, profile, packFor, nearby, sent);
                  return sent
                    ? writing.catch((error: unknown) => {
                        sent.sink.abort(sent.order, error);
                        throw error;
                      })
                    : writing;
                }),
              );
            }),
          );
        }
        if (failure !== undefined) throw failure;
        if (eof) break;
        const next = (current + 1) % BUFFERS;
        await Promise.all(pending[next]!);
        pending[next] = [];
        buffer.copy(buffers[next]!, 0, pos, end);
        base += pos;
        end -= pos;
        pos = 0;
        current = next;
      }
      await Promise.all(pending.flat());
      if (failure !== undefined) throw failure;
      // Every chunk durable and in place before the manifest that names them.
      if (ingest) await (await ingest).finish();
      await this.#settleDurable();
    } catch (error) {
      // Writes still running end first (each is caught into `failure`).
      await Promise.all(pending.flat());
      if (ingest) await (await ingest.catch(() => undefined))?.abort();
      throw error;
    }
    // Now readable, this file's chunks may serve as bases for the next file.
    if (this.#newBases.length > 0) {
      const index = await this.#sketchIndex();
      for (const { id, depth, length, sketch } of this.#newBases)
        index.add(id, depth, length, sketch);
      this.#newBases = [];
    }
    const sha256 = options.sha256 ?? (await this.#hasher.finish());
    if (fileOffset !== size) throw fileChanged(filePath);
    const manifest: Manifest = { size, sha256, chunker: chunkerLabel(sizes, strategy), chunks };
    if (sink) {
      const data = encodeManifest(manifest);
      const id = this.store.idOf('manifest', data);
      const encoded = await encode(data, 'text');
      const parts = this.store.recordParts(id, 'manifest', encoded.codec, data.length, [
        encoded.payload,
      ]);
      await sink.finish(id, Buffer.concat(parts));
      return { kind: 'manifest', id, size, sha256 };
    }
    const result = await this.store.write('manifest', encodeManifest(manifest), 'text');
    if (result.written) this.stats.newBytes += result.storedSize;
    return { kind: 'manifest', id: result.id, size, sha256 };
  }

  async #settleDurable(): Promise<void> {
    await settleAll([...this.#durable]).catch((error: unknown) => {
      throw diskError(error);
    });
  }

  async #writeChunk(
    id: ObjectId,
    view: Uint8Array,
    contentClass: ContentClass,
    profile: FileProfile,
    packFor: (() => Promise<IngestPack>) | undefined,
    nearby: NearbyBases | undefined,
    sent?: { readonly sink: ChunkSink; readonly order: number },
  ): Promise<void> {
    if (!sent && (await this.store.has(id))) return;
    // Compression holds an output buffer and a codec context per job: a few at a
    // time keep both cores busy, more would only hold memory.
    while (this.#encoding >= MAX_PARALLEL_ENCODES) {
      await new Promise<void>((resolve) => this.#encodeWaiters.push(resolve));
    }
    this.#encoding++;
    let encoded;
    try {
      encoded = await this.#encodeObject(
        view,
        profile.compression,
        contentClass,
        profile.delta,
        nearby,
      );
    } finally {
      this.#encoding--;
      this.#encodeWaiters.shift()?.();
    }
    // Sealing (an encrypted repository) copies the chunk: at most
    // SEALED_AHEAD bytes of copies wait for the pack or the disk at once.
    const sealed = this.store.cipher === undefined ? 0 : view.length;
    if (sealed > 0) await this.#sealing.acquire(sealed);
    const record = this.store.recordParts(id, 'chunk', encoded.codec, view.length, encoded.parts);
    const recordSize = record.reduce((sum, part) => sum + part.length, 0);
    try {
      if (sent) {
        await sent.sink.append(id, record, sent.order);
      } else if (packFor) {
        await (await packFor()).append(id, record);
      } else {
        // Returns once the bytes are written, so the shared buffer can be reused
        // while the fsync and rename finish in the background.
        while (this.#durable.size >= MAX_PENDING_DURABLE) await Promise.race(this.#durable);
        const { durable } = await beginAtomicWrite(this.store.pathOf(id), record, {
          tmpDir: this.store.tmpDir,
          dirSync: this.store.dirSync,
        });
        const tracked = durable.finally(() => this.#durable.delete(tracked));
        this.#durable.add(tracked);
      }
    } catch (error) {
      throw diskError(error);
    } finally {
      if (sealed > 0) this.#sealing.release(sealed);
    }
    // Copied into the pack, or handed to the kernel: a sealed record's memory goes now.
    this.store.releaseRecord(record);
    this.stats.newChunks++;
    this.stats.newBytes += recordSize;
    if (encoded.codec === Codec.delta) this.stats.deltas++;
    if (encoded.base) this.#newBases.push({ id, length: view.length, ...encoded.base });
  }
}

/**
 * Bytes that may be held at once (one holder may always take more than the
 * whole budget, alone).
 */
class ByteBudget {
  readonly #limit: number;
  #held = 0;
  #waiters: (() => void)[] = [];

  constructor(limit: number) {
    this.#limit = limit;
  }

  async acquire(bytes: number): Promise<void> {
    while (this.#held > 0 && this.#held + bytes > this.#limit) {
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
    this.#held += bytes;
  }

  release(bytes: number): void {
    this.#held -= bytes;
    const waiting = this.#waiters;
    this.#waiters = [];
    for (const wake of waiting) wake();
  }
}

/**
 * The order numbers of a batch's chunks that go to a sink (each new and
 * absent chunk, once), -1 for the others.
 */
function numberSent(
  ids: readonly ObjectId[],
  fresh: ReadonlySet<ObjectId>,
  absent: ReadonlySet<ObjectId>,
  next: () => number,
): number[] {
  const numbered = new Set<ObjectId>();
  return ids.map((id) => {
    if (!fresh.has(id) || !absent.has(id) || numbered.has(id)) return -1;
    numbered.add(id);
    return next();
  });
}

/** Waits for every promise, then rejects with the first failure if any. */
async function settleAll(work: readonly (Promise<unknown> | undefined)[]): Promise<void> {
  const results = await Promise.allSettled(work);
  const failed = results.find((r) => r.status === 'rejected');
  if (failed) throw (failed as PromiseRejectedResult).reason;
}

function diskError(error: unknown): unknown {
  if (hasErrnoCode(error, 'ENOSPC')) {
    return new MediaGitError('DISK_FULL', 'no space left on device while storing chunks', {
      cause: error,
    });
  }
  return error;
}

/** The manifest's description of how the file was cut (informational). */
function chunkerLabel(sizes: ChunkSizes, strategy: ChunkingStrategy): string {
  const label = `${CHUNKER_NAME} ${sizes.min} ${sizes.avg} ${sizes.max}`;
  if (strategy === 'cdc') return label;
  if (strategy === 'fixed') return `${label} fixed-${FIXED_CHUNK_SIZE}`;
  return `${label} ${CONTAINER_CUT_RULES}-${strategy}`;
}

function fileChanged(filePath: string): MediaGitError {
  return new MediaGitError('FILE_CHANGED', `${filePath} changed while it was being added`, {
    data: { path: filePath },
  });
}

export {
  materializeFile,
  readFileBytes,
  readManifest,
  streamFileContent,
  writeFileContent,
  type FileObjectKind,
} from './file-read.ts';
