/**
 * Storing a working file as objects, and getting its exact bytes back.
 *
 * A file below the chunking threshold (or added with no-chunking) becomes one
 * blob whose ID is the file's SHA-256. A larger file is cut by FastCDC into
 * chunks, each stored once however many files and versions share it, plus a
 * manifest listing them. Storing streams the file through two reused shared
 * buffers: the main thread cuts and hashes chunks, a worker hashes the whole
 * file, and the libuv pool compresses and writes chunks, so memory stays
 * bounded by the buffers whatever the file size.
 */
import { constants } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { hash } from 'node:crypto';
import { chunkSizesForFile, findChunkLength, type ChunkSizes } from '../chunking/fastcdc.ts';
import { classifyContent, decode, encode, type ContentClass } from '../compression/codec.ts';
import { tempName, writeFileAtomic } from '../storage/durable-file.ts';
import { corruptObject, hasErrnoCode, missingObject, MediaGitError } from '../errors.ts';
import { encodeManifest, decodeManifest, type ChunkRef, type Manifest } from './manifest.ts';
import { sha256Hex, type ObjectId } from './object-id.ts';
import {
  decodeHeader,
  encodeHeader,
  HEADER_SIZE,
  isFileContent,
  type ObjectStore,
} from './object-store.ts';
import { WholeFileHasher } from './whole-file-hasher.ts';

export type FileObjectKind = 'blob' | 'manifest';

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
}

export interface StoreFileOptions {
  readonly chunkThreshold: number;
  readonly noChunking?: boolean;
  readonly signal?: AbortSignal | undefined;
  /** Called with bytes consumed so far of this file. */
  readonly onBytes?: ((bytes: number) => void) | undefined;
}

export const DEFAULT_CHUNK_THRESHOLD = 4 * 1024 * 1024;
/**
 * Largest file stored whole: a blob is read and verified in memory, so above
 * this a file is always chunked (a configured threshold is capped here) and
 * `--no-chunking` is refused, keeping memory bounded whatever the file size.
 */
export const MAX_BLOB_SIZE = 256 * 1024 * 1024;
const CHUNKER_NAME = 'fastcdc-v1';
const BUFFER_SIZE = 16 * 1024 * 1024;

/** Stores files; holds the worker thread and stats for one command. */
export class FileStore {
  readonly store: ObjectStore;
  readonly stats: StoreStats = { chunks: 0, newChunks: 0, newBytes: 0 };
  readonly #hasher = new WholeFileHasher();

  constructor(store: ObjectStore) {
    this.store = store;
  }

  async close(): Promise<void> {
    await this.#hasher.close();
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
        return await this.storeBlob(data);
      }
      return await this.#storeChunked(handle, filePath, size, options);
    } finally {
      await handle.close();
    }
  }

  /** Stores bytes already in memory as a blob (symlink targets, small files). */
  async storeBlob(data: Uint8Array): Promise<StoredFile> {
    const result = await this.store.write('blob', data);
    if (result.written) this.stats.newBytes += result.storedSize;
    return { kind: 'blob', id: result.id, size: data.length, sha256: result.id };
  }

  async #storeChunked(
    handle: fs.FileHandle,
    filePath: string,
    size: number,
    options: StoreFileOptions,
  ): Promise<StoredFile> {
    const sizes = chunkSizesForFile(size);
    const capacity = Math.max(BUFFER_SIZE, sizes.max * 2);
    const shared = [new SharedArrayBuffer(capacity), new SharedArrayBuffer(capacity)];
    const buffers = shared.map((sab) => Buffer.from(sab));
    const pending: Promise<unknown>[][] = [[], []];
    this.#hasher.begin(shared);

    const chunks: ChunkRef[] = [];
    const seen = new Set<ObjectId>();
    let contentClass: ContentClass | undefined;
    let current = 0;
    let pos = 0;
    let end = 0;
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

    while (true) {
      options.signal?.throwIfAborted();
      const buffer = buffers[current]!;
      while (end < capacity && !eof) {
        const { bytesRead } = await handle.read(buffer, end, capacity - end, fileOffset);
        if (bytesRead === 0) {
          eof = true;
          break;
        }
        track(current, this.#hasher.update(current, end, end + bytesRead));
        end += bytesRead;
        fileOffset += bytesRead;
        options.onBytes?.(fileOffset);
        if (fileOffset > size) throw fileChanged(filePath);
      }
      contentClass ??= classifyContent(buffer.subarray(0, Math.min(end, 64 * 1024)));
      while (end - pos >= sizes.max || (eof && pos < end)) {
        const length = findChunkLength(buffer, pos, end, sizes);
        const view = buffer.subarray(pos, pos + length);
        const id = hash('sha256', view, 'hex');
        chunks.push({ id, length });
        this.stats.chunks++;
        if (!seen.has(id)) {
          seen.add(id);
          track(current, this.#writeChunk(id, view, contentClass));
        }
        pos += length;
      }
      if (failure !== undefined) throw failure;
      if (eof) break;
      const next = 1 - current;
      await Promise.all(pending[next]!);
      pending[next] = [];
      buffer.copy(buffers[next]!, 0, pos, end);
      end -= pos;
      pos = 0;
      current = next;
    }
    await Promise.all([...pending[0]!, ...pending[1]!]);
    if (failure !== undefined) throw failure;
    const sha256 = await this.#hasher.finish();
    if (fileOffset !== size) throw fileChanged(filePath);
    const manifest: Manifest = { size, sha256, chunker: chunkerLabel(sizes), chunks };
    const result = await this.store.write('manifest', encodeManifest(manifest), 'text');
    if (result.written) this.stats.newBytes += result.storedSize;
    return { kind: 'manifest', id: result.id, size, sha256 };
  }

  async #writeChunk(id: ObjectId, view: Uint8Array, contentClass: ContentClass): Promise<void> {
    if (await this.store.has(id)) return;
    const encoded = await encode(view, contentClass);
    const header = encodeHeader('chunk', encoded.codec, view.length);
    try {
      await writeFileAtomic(this.store.pathOf(id), [header, encoded.payload], {
        tmpDir: this.store.tmpDir,
        dirSync: this.store.dirSync,
      });
    } catch (error) {
      if (hasErrnoCode(error, 'ENOSPC')) {
        throw new MediaGitError('DISK_FULL', 'no space left on device while storing chunks', {
          cause: error,
        });
      }
      throw error;
    }
    this.stats.newChunks++;
    this.stats.newBytes += HEADER_SIZE + encoded.payload.length;
  }
}

function chunkerLabel(sizes: ChunkSizes): string {
  return `${CHUNKER_NAME} ${sizes.min} ${sizes.avg} ${sizes.max}`;
}

function fileChanged(filePath: string): MediaGitError {
  return new MediaGitError('FILE_CHANGED', `${filePath} changed while it was being added`, {
    data: { path: filePath },
  });
}

export async function readManifest(store: ObjectStore, id: ObjectId): Promise<Manifest> {
  return decodeManifest(id, await store.readTyped(id, 'manifest'));
}

/** Reads a whole stored file into memory; for small files and text diffs only. */
export async function readFileBytes(
  store: ObjectStore,
  kind: FileObjectKind,
  id: ObjectId,
): Promise<Buffer> {
  if (kind === 'blob') return store.readTyped(id, 'blob');
  const manifest = await readManifest(store, id);
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
    const scratch = Buffer.allocUnsafe(HEADER_SIZE + largest);
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

/** Reads one chunk into `scratch` when stored raw (no allocation), verified by hash. */
async function readChunkInto(
  store: ObjectStore,
  chunk: ChunkRef,
  scratch: Buffer,
): Promise<Buffer> {
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(store.pathOf(chunk.id), constants.O_RDONLY);
  } catch (error) {
    if (hasErrnoCode(error, 'ENOENT')) throw missingObject(chunk.id);
    throw error;
  }
  let data: Buffer;
  try {
    const { bytesRead } = await handle.read(scratch, 0, scratch.length, 0);
    const header = decodeHeader(chunk.id, scratch.subarray(0, bytesRead));
    if (!isFileContent(header.type))
      throw corruptObject(chunk.id, `is a ${header.type}, not a chunk`);
    if (header.rawSize !== chunk.length)
      throw corruptObject(chunk.id, 'length differs from manifest');
    if (header.codec === 0) {
      const stat = await handle.stat();
      if (stat.size !== HEADER_SIZE + chunk.length || bytesRead !== stat.size) {
        throw corruptObject(chunk.id, 'stored size does not match its header');
      }
      data = scratch.subarray(HEADER_SIZE, HEADER_SIZE + chunk.length);
    } else {
      const stat = await handle.stat();
      const whole =
        bytesRead === stat.size ? scratch.subarray(0, bytesRead) : await handle.readFile();
      try {
        data = await decode(header.codec, whole.subarray(HEADER_SIZE), header.rawSize);
      } catch (error) {
        throw corruptObject(chunk.id, 'payload does not decompress', error);
      }
    }
  } finally {
    await handle.close();
  }
  if (data.length !== chunk.length || sha256Hex(data) !== chunk.id) {
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
): Promise<void> {
  const dir = path.dirname(destPath);
  const tmp = tempName(dir, '.mediagit-checkout');
  const handle = await fs.open(tmp, 'wx', mode & 0o111 ? 0o755 : 0o644);
  try {
    await writeFileContent(store, kind, id, handle, signal);
    await handle.close();
    await fs.rename(tmp, destPath);
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
  const chunks = manifest.chunks;
  let largest = 0;
  for (const chunk of chunks) largest = Math.max(largest, chunk.length);
  const scratch = [
    Buffer.allocUnsafe(HEADER_SIZE + largest),
    Buffer.allocUnsafe(HEADER_SIZE + largest),
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
