/**
 * Getting a stored file's exact bytes back: into memory (small files, diffs),
 * onto a file handle (checkout, several chunks in flight into reused
 * buffers), atomically over a working file, or as an ordered stream (`show`).
 * Every chunk is verified against its ID before a byte of it is used.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { tempName } from '../storage/durable-file.ts';
import { corruptObject, hasErrnoCode, missingObject } from '../errors.ts';
import { decodeManifest, type ChunkRef, type Manifest } from './manifest.ts';
import type { ObjectId } from './object-id.ts';
import { Codec, decode } from '../compression/codec.ts';
import {
  decodeHeader,
  HEADER_SIZE,
  isFileContent,
  type DecodedStored,
  type ObjectHandle,
  type ObjectStore,
} from './object-store.ts';

export type FileObjectKind = 'blob' | 'manifest';

export async function readManifest(store: ObjectStore, id: ObjectId): Promise<Manifest> {
  return decodeManifest(id, await store.readTyped(id, 'manifest'));
}

/** The chunk IDs of a manifest, fetched in one batch when absent from a partial clone. */
function chunkIds(manifest: Manifest): ObjectId[] {
  return manifest.chunks.map((chunk) => chunk.id);
}

/** Reads a whole stored file into memory; for small files and text diffs only. */
export async function readFileBytes(
  store: ObjectStore,
  kind: FileObjectKind,
  id: ObjectId,
): Promise<Buffer> {
  if (kind === 'blob') return store.readTyped(id, 'blob');
  const manifest = await readManifest(store, id);
  await store.ensureContent(chunkIds(manifest));
  const out = Buffer.allocUnsafe(manifest.size);
  let offset = 0;
  for (const chunk of manifest.chunks) {
    const data = await store.readTyped(chunk.id, 'chunk');
    data.copy(out, offset);
    offset += data.length;
  }
  return out;
}

/**
 * Writes a stored file's exact bytes at `offset` 0 of an open file handle,
 * verifying every chunk. Reads several chunks at once into reused buffers.
 */
export async function writeFileContent(
  store: ObjectStore,
  kind: FileObjectKind,
  id: ObjectId,
  out: fs.FileHandle,
  signal?: AbortSignal,
): Promise<number> {
  if (kind === 'blob') {
    const data = await store.readTyped(id, 'blob');
    await writeAll(out, data, 0);
    return data.length;
  }
  const manifest = await readManifest(store, id);
  await store.ensureContent(chunkIds(manifest), { signal });
  const offsets: number[] = [];
  let total = 0;
  let largest = 0;
  for (const chunk of manifest.chunks) {
    offsets.push(total);
    total += chunk.length;
    largest = Math.max(largest, chunk.length);
  }
  let next = 0;
  const reader = async (): Promise<void> => {
    const scratch = Buffer.allocUnsafe(scratchSize(store, largest));
    for (let index = next++; index < manifest.chunks.length; index = next++) {
      signal?.throwIfAborted();
      const chunk = manifest.chunks[index]!;
      const data = await readChunkInto(store, chunk, scratch);
      await writeAll(out, data, offsets[index]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(4, manifest.chunks.length) }, reader));
  return total;
}

async function writeAll(out: fs.FileHandle, data: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < data.length) {
    const { bytesWritten } = await out.write(data, done, data.length - done, position + done);
    done += bytesWritten;
  }
}

/**
 * The scratch buffer `readChunkInto` needs for chunks of up to `largest`
 * bytes: a record; in an encrypted store, a sealed record and its opened
 * payload side by side (both reused, as fresh memory costs a page fault per
 * 4 KiB).
 */
function scratchSize(store: ObjectStore, largest: number): number {
  return store.cipher === undefined ? HEADER_SIZE + largest : 2 * (HEADER_SIZE + largest + 64);
}

/**
 * readChunkInto in an encrypted store: the sealed record into the first half
 * of `scratch`, opened into the second (its tag checked), decoded and named.
 */
async function readSealedChunkInto(
  store: ObjectStore,
  chunk: ChunkRef,
  handle: ObjectHandle,
  scratch: Buffer,
): Promise<Buffer> {
  let stored: DecodedStored;
  try {
    const half = scratch.length >> 1;
    const { size } = await handle.stat();
    let record: Buffer;
    if (size <= half) {
      let done = 0;
      while (done < size) {
        const { bytesRead } = await handle.read(scratch, done, size - done, done);
        if (bytesRead === 0) throw corruptObject(chunk.id, 'stored bytes are cut short');
        done += bytesRead;
      }
      record = scratch.subarray(0, size);
    } else record = await handle.readFile();
    stored = store.decodeStored(chunk.id, record, scratch.subarray(half));
  } finally {
    await handle.close();
  }
  if (!isFileContent(stored.type)) {
    throw corruptObject(chunk.id, `is a ${stored.type}, not a chunk`);
  }
  if (stored.rawSize !== chunk.length) {
    throw corruptObject(chunk.id, 'length differs from manifest');
  }
  let data: Buffer;
  try {
    data =
      stored.codec === Codec.store
        ? stored.payload
        : await decode(stored.codec, stored.payload, stored.rawSize);
  } catch (error) {
    throw corruptObject(chunk.id, 'payload does not decompress', error);
  }
  if (data.length !== chunk.length || store.idOf('chunk', data) !== chunk.id) {
    throw corruptObject(chunk.id, 'content does not match its hash');
  }
  return data;
}

/**
 * Reads one chunk into `scratch` when stored raw (no allocation), verified by
 * hash. A loose chunk is its own file; a packed one is a window on its pack,
 * read with one positional read of exactly the record (ObjectStore.open).
 */
async function readChunkInto(
  store: ObjectStore,
  chunk: ChunkRef,
  scratch: Buffer,
): Promise<Buffer> {
  let handle: ObjectHandle;
  try {
    handle = await store.open(chunk.id);
  } catch (error) {
    if (hasErrnoCode(error, 'ENOENT')) throw missingObject(chunk.id);
    throw error;
  }
  if (store.cipher !== undefined) return readSealedChunkInto(store, chunk, handle, scratch);
  let data: Buffer;
  try {
    const { bytesRead } = await handle.read(scratch, 0, scratch.length, 0);
    const header = decodeHeader(chunk.id, scratch.subarray(0, bytesRead));
    if (!isFileContent(header.type))
      throw corruptObject(chunk.id, `is a ${header.type}, not a chunk`);
    if (header.rawSize !== chunk.length)
      throw corruptObject(chunk.id, 'length differs from manifest');
    if (header.codec === 0 && store.cipher === undefined) {
      const stat = await handle.stat();
      if (stat.size !== HEADER_SIZE + chunk.length || bytesRead !== stat.size) {
        throw corruptObject(chunk.id, 'stored size does not match its header');
      }
      data = scratch.subarray(HEADER_SIZE, HEADER_SIZE + chunk.length);
    } else {
      const stat = await handle.stat();
      const whole =
        bytesRead === stat.size ? scratch.subarray(0, bytesRead) : await handle.readFile();
      // Decoded and verified as any read (a delta's base read from the store).
      return (await store.decodeVerified(chunk.id, whole)).data;
    }
  } finally {
    await handle.close();
  }
  if (data.length !== chunk.length || store.idOf('chunk', data) !== chunk.id) {
    throw corruptObject(chunk.id, 'content does not match its hash');
  }
  return data;
}

/**
 * Replaces `destPath` with the stored file, atomically: the bytes go to a temp
 * file beside it and are renamed over it only once every chunk has verified,
 * so a corrupt object leaves the working file untouched.
 */
export async function materializeFile(
  store: ObjectStore,
  kind: FileObjectKind,
  id: ObjectId,
  destPath: string,
  mode: number,
  signal?: AbortSignal,
  /** `destPath` is new and private (a checkout's staging folder): written there directly. */
  inPlace = false,
): Promise<void> {
  const dir = path.dirname(destPath);
  const tmp = inPlace ? destPath : tempName(dir, '.mediagit-checkout');
  const handle = await fs.open(tmp, 'wx', mode & 0o111 ? 0o755 : 0o644);
  try {
    await writeFileContent(store, kind, id, handle, signal);
    await handle.close();
    if (!inPlace) await fs.rename(tmp, destPath);
  } catch (error) {
    await handle.close().catch(() => undefined);
    await fs.rm(tmp, { force: true });
    throw error;
  }
}

/**
 * Hands a stored file's exact bytes, in order, to `write`, verifying every
 * chunk before it is handed over; for sinks that cannot seek (pipes, sockets,
 * hashes). Memory stays bounded by two chunk buffers whatever the file size:
 * the next chunk is read while the previous one is being written. A chunk
 * passed to `write` may be reused once the promise `write` returned settles,
 * so `write` must finish with it (or copy it) before resolving.
 */
export async function streamFileContent(
  store: ObjectStore,
  kind: FileObjectKind,
  id: ObjectId,
  write: (chunk: Uint8Array) => Promise<void>,
  signal?: AbortSignal,
): Promise<number> {
  if (kind === 'blob') {
    const data = await store.readTyped(id, 'blob');
    await write(data);
    return data.length;
  }
  const manifest = await readManifest(store, id);
  await store.ensureContent(chunkIds(manifest), { signal });
  const chunks = manifest.chunks;
  let largest = 0;
  for (const chunk of chunks) largest = Math.max(largest, chunk.length);
  const scratch = [
    Buffer.allocUnsafe(scratchSize(store, largest)),
    Buffer.allocUnsafe(scratchSize(store, largest)),
  ];
  const read = (index: number): Promise<Buffer> | undefined => {
    const chunk = chunks[index];
    if (!chunk) return undefined;
    const pending = readChunkInto(store, chunk, scratch[index % 2]!);
    // A read may fail while the previous chunk is still being written.
    pending.catch(() => undefined);
    return pending;
  };
  let next = read(0);
  let total = 0;
  for (let index = 0; next; index++) {
    signal?.throwIfAborted();
    const data = await next;
    next = read(index + 1);
    await write(data);
    total += data.length;
  }
  return total;
}

/**
 * Random access to a stored file: `read(offset, length)` fetches, verifies and
 * keeps only the chunks that cover the range, so reading a few headers of a
 * 4 GiB video costs a few chunks, not the file (`media info`). A blob (a file
 * below the chunking threshold) is one object, read whole on first use.
 * `bytesRead` counts the raw bytes of every object read (the manifest
 * included), each time it is read; a small cache of recent chunks keeps
 * neighbouring reads from fetching the same chunk twice.
 */
/** What StoredFileReader reads objects through: a local store, or a server's (BackendRepo). */
export type TypedObjectReader = Pick<ObjectStore, 'readTyped'>;

export class StoredFileReader {
  readonly size: number;
  /** Raw bytes of the objects read so far (manifest and chunks, or the blob). */
  bytesRead = 0;
  chunksRead = 0;
  readonly #store: TypedObjectReader;
  readonly #chunks: readonly ChunkRef[];
  /** Start offset of each chunk, plus the file size at the end. */
  readonly #starts: number[];
  readonly #cache = new Map<number, Buffer>();
  readonly #blob: ObjectId | undefined;

  private constructor(
    store: TypedObjectReader,
    size: number,
    chunks: readonly ChunkRef[],
    blob: ObjectId | undefined,
  ) {
    this.#store = store;
    this.size = size;
    this.#chunks = chunks;
    this.#blob = blob;
    this.#starts = [0];
    for (const chunk of chunks) this.#starts.push(this.#starts.at(-1)! + chunk.length);
  }

  /** Chunks kept after use; parsers revisit the chunk they just read, rarely older ones. */
  static readonly CACHED_CHUNKS = 4;

  static async open(
    store: TypedObjectReader,
    kind: FileObjectKind,
    id: ObjectId,
    /** The size recorded for the file (tree or index entry); a blob's is checked on read. */
    size: number,
  ): Promise<StoredFileReader> {
    if (kind === 'blob') return new StoredFileReader(store, size, [{ id, length: size }], id);
    const record = await store.readTyped(id, 'manifest');
    const manifest = decodeManifest(id, record);
    const reader = new StoredFileReader(store, manifest.size, manifest.chunks, undefined);
    reader.bytesRead += record.length;
    return reader;
  }

  async read(offset: number, length: number): Promise<Buffer> {
    const start = Math.max(0, Math.min(offset, this.size));
    const end = Math.max(start, Math.min(offset + length, this.size));
    if (start === end) return Buffer.alloc(0);
    let index = this.#chunkAt(start);
    const parts: Buffer[] = [];
    for (let at = start; at < end; index++) {
      const data = await this.#chunk(index);
      const chunkStart = this.#starts[index]!;
      const piece = data.subarray(
        at - chunkStart,
        Math.min(end, chunkStart + data.length) - chunkStart,
      );
      parts.push(piece);
      at += piece.length;
    }
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  }

  /** Bytes from `offset` to the end of the chunk holding it (a blob is one chunk). */
  fetchSpan(offset: number): number {
    if (offset >= this.size) return 0;
    return this.#starts[this.#chunkAt(offset) + 1]! - offset;
  }

  /** The stored object holding byte `offset` (the chunk, or the blob). */
  chunkId(offset: number): string | undefined {
    if (offset < 0 || offset >= this.size) return undefined;
    return this.#chunks[this.#chunkAt(offset)]!.id;
  }

  /** The index of the chunk holding byte `offset` (binary search over the starts). */
  #chunkAt(offset: number): number {
    let low = 0;
    let high = this.#chunks.length - 1;
    while (low < high) {
      const mid = (low + high + 1) >> 1;
      if (this.#starts[mid]! <= offset) low = mid;
      else high = mid - 1;
    }
    return low;
  }

  async #chunk(index: number): Promise<Buffer> {
    const cached = this.#cache.get(index);
    if (cached) {
      this.#cache.delete(index);
      this.#cache.set(index, cached);
      return cached;
    }
    const chunk = this.#chunks[index]!;
    const data =
      this.#blob === undefined
        ? await this.#store.readTyped(chunk.id, 'chunk')
        : await this.#store.readTyped(this.#blob, 'blob');
    this.bytesRead += data.length;
    this.chunksRead++;
    if (data.length !== chunk.length)
      throw corruptObject(
        chunk.id,
        `holds ${data.length} bytes where ${chunk.length} were recorded`,
      );
    this.#cache.set(index, data);
    if (this.#cache.size > StoredFileReader.CACHED_CHUNKS)
      this.#cache.delete(this.#cache.keys().next().value!);
    return data;
  }
}
