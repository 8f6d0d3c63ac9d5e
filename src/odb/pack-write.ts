/**
 * Writing pack files (reading them: pack.ts; format: docs/format.md, "Packs").
 *
 * `packObjects` copies objects, loose or packed, into one new pack without
 * recompressing them: each record is the object's stored bytes, verified
 * (header, decode, hash) as it is copied. The pack is made durable in the
 * order that keeps every object readable whatever instant the process dies:
 *
 *   1. pack written to a temp file in `tmp/`, fsynced;
 *   2. renamed to `objects/pack/pack-<sha256>.pack`, folder fsynced
 *      (a pack without its index is ignored by readers);
 *   3. index written to a temp file, fsynced, renamed to `pack-<sha256>.idx`,
 *      folder fsynced: from here on readers find the objects in the pack;
 *   4. the pack is loaded afresh through the reader (index checksum, pack
 *      header and trailer), read back whole and hashed: its SHA-256 must be
 *      the one computed as the verified records were written, so every
 *      record on disk is a verified one; and the index must hold exactly what
 *      was written, records back to back. (Decoding each record again would
 *      say no more, and costs a delta's bases read and rebuilt a second time:
 *      a third of a `gc` that packed one small delta, measured here.)
 *
 * Only after step 4 may a caller delete the loose copies or older packs.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fsyncDirectory, tempName, writeFileAtomic } from '../storage/durable-file.ts';
import { corruptObject, hasErrnoCode, MediaGitError } from '../errors.ts';
import type { ObjectId } from './object-id.ts';
import { Codec } from '../compression/codec.ts';
import { parseDeltaPayload } from './delta.ts';
import {
  decodeHeader,
  HEADER_SIZE,
  type ObjectStore,
  type ObjectTypeName,
} from './object-store.ts';
import {
  corruptPack,
  encodePackHeader,
  encodePackIndex,
  PACK_HEADER_SIZE,
  PACK_TRAILER_SIZE,
  packFileName,
  packIndexFileName,
  type Pack,
  type PackEntry,
} from './pack.ts';

export interface PackObjectsOptions {
  readonly signal?: AbortSignal | undefined;
  /** Stored bytes copied so far, of `total` (when the caller knows it). */
  readonly onProgress?: ((event: { bytes: number; total: number }) => void) | undefined;
  readonly totalBytes?: number | undefined;
  /** What `surveyObjects` found: small objects' bytes are not read again. */
  readonly survey?: ReadonlyMap<ObjectId, SurveyedObject> | undefined;
  /**
   * Objects whose record copied here is their only stored copy (gc's loose
   * objects that no pack holds). A delta among them is checked for a sound
   * header, delta prefix and zstd frame, not rebuilt from its bases: the pack
   * read back by hash then holds exactly the bytes that were stored, so
   * nothing is lost whatever their state, and fsck --full and every read
   * still verify them in full. Rebuilding one small delta (its bases read,
   * joined and loaded as a dictionary) cost 0.3 s of a 1.2 s gc here.
   */
  readonly soleCopies?: ReadonlySet<ObjectId> | undefined;
}

export interface WrittenPack {
  /** The pack's SHA-256 checksum in hex, which names its files. */
  readonly name: string;
  /** The pack as the reader loaded it back after it was made durable. */
  readonly pack: Pack;
  readonly objects: number;
  /** Size of the pack file plus its index. */
  readonly bytes: number;
}

/** Reads ahead this many records while the current one is verified and written. */
const READ_AHEAD = 8;
/** Small records are gathered into writes of this size. */
const WRITE_BATCH = 1024 * 1024;
/** Verification reads the pack back in pieces of this size. */
const VERIFY_BUFFER = 8 * 1024 * 1024;

/**
 * Writes the objects `ids`, in that order, into one new durable pack and
 * checks it back (see the overview). Every object must be stored (loose or
 * packed) and verify; otherwise nothing is installed and the error names it.
 */
export async function packObjects(
  store: ObjectStore,
  ids: readonly ObjectId[],
  options: PackObjectsOptions = {},
): Promise<WrittenPack> {
  await store.writer.register();
  const order = [...new Set(ids)];
  const packDir = store.packs.dir;
  const tmpPath = tempName(store.tmpDir, 'pack');
  const writer = await PackFileWriter.create(tmpPath, order.length);
  const entries: PackEntry[] = [];
  let trailer: Buffer;
  try {
    const slots = Array.from({ length: Math.min(READ_AHEAD, order.length) }, () => Buffer.alloc(0));
    const reads: Promise<Buffer>[] = [];
    const startRead = (i: number): void => {
      const id = order[i];
      if (id === undefined) return;
      const kept = options.survey?.get(id)?.bytes;
      const read = kept
        ? Promise.resolve(kept)
        : readStoredBytes(store, id, slots, i % slots.length);
      read.catch(() => undefined); // awaited in order below
      reads[i] = read;
    };
    for (let i = 0; i < slots.length; i++) startRead(i);
    let copied = 0;
    for (let i = 0; i < order.length; i++) {
      options.signal?.throwIfAborted();
      const id = order[i]!;
      const record = await reads[i]!;
      delete reads[i];
      if (options.soleCopies?.has(id)) await checkSoleCopy(store, id, record);
      else await verifyRecord(store, id, record);
      entries.push({ id, offset: writer.position, length: record.length });
      await writer.append(record);
      startRead(i + slots.length);
      copied += record.length;
      options.onProgress?.({ bytes: copied, total: options.totalBytes ?? 0 });
    }
    trailer = await writer.finish();
  } catch (error) {
    await writer.abort();
    throw error;
  }

  // Steps 2 and 3: the pack, then its index, each durable before the next.
  const name = trailer.toString('hex');
  await fs.mkdir(packDir, { recursive: true });
  await fs.rename(tmpPath, path.join(packDir, packFileName(name)));
  await fsyncDirectory(packDir);
  const index = encodePackIndex(entries, trailer);
  await writeFileAtomic(path.join(packDir, packIndexFileName(name)), [index], {
    tmpDir: store.tmpDir,
    mode: 0o444,
  });
  await fsyncDirectory(packDir);

  // Step 4: read it back as any reader would, before anyone relies on it.
  let pack: Pack;
  try {
    pack = await store.packs.load(name);
    await verifyWrittenPack(pack, options.signal);
  } catch (error) {
    if (!hasErrnoCode(error, 'ENOENT')) throw error;
    // Another `repack -a -d` merged it and removed it: its objects are safe
    // in that pack, but this one cannot vouch for them, so it deletes nothing.
    throw new MediaGitError(
      'PACK_SUPERSEDED',
      `pack ${name} was merged into another pack by a concurrent repack before it could be checked; nothing was deleted`,
      { data: { pack: name }, cause: error },
    );
  }
  if (pack.count !== entries.length) {
    throw new Error(
      `pack ${name} indexes ${pack.count} objects, not the ${entries.length} written`,
    );
  }
  for (const entry of entries) {
    const i = pack.indexOf(Buffer.from(entry.id, 'hex'));
    const found = i < 0 ? undefined : pack.entryAt(i);
    if (found?.offset !== entry.offset || found.length !== entry.length) {
      throw new Error(`pack ${name} does not index object ${entry.id} as written`);
    }
  }
  return { name, pack, objects: entries.length, bytes: pack.packSize + index.length };
}

export interface SurveyedObject {
  readonly type: ObjectTypeName;
  /** Header + payload, as stored. */
  readonly storedSize: number;
  /** The stored bytes of a small object, kept so that packing reads it once. */
  readonly bytes?: Buffer | undefined;
}

/** Objects stored in fewer bytes than this are kept whole by the survey... */
const KEEP_BELOW = 16 * 1024;
/** ...up to this many bytes in all. */
const KEEP_TOTAL = 64 * 1024 * 1024;
const SURVEY_PARALLEL = 16;

/**
 * The type and stored size of each object (loose or packed), from its header:
 * what a packer needs to order objects before it copies them. One read per
 * object, which for a small object is the whole of it, kept for `packObjects`
 * (a repository of many small files is then read once). OBJECT_MISSING or
 * OBJECT_CORRUPT (bad header) naming the object.
 */
export async function surveyObjects(
  store: ObjectStore,
  ids: readonly ObjectId[],
  signal?: AbortSignal,
): Promise<Map<ObjectId, SurveyedObject>> {
  const out = new Map<ObjectId, SurveyedObject>();
  let kept = 0;
  let next = 0;
  const worker = async (): Promise<void> => {
    const scratch = Buffer.allocUnsafe(KEEP_BELOW);
    for (let i = next++; i < ids.length; i = next++) {
      signal?.throwIfAborted();
      const id = ids[i]!;
      const handle = await store.open(id);
      try {
        const { bytesRead } = await handle.read(scratch, 0, KEEP_BELOW, 0);
        const { type } = decodeHeader(id, scratch.subarray(0, bytesRead));
        if (bytesRead < KEEP_BELOW) {
          // A short read is the whole object.
          const keep = kept + bytesRead <= KEEP_TOTAL;
          if (keep) kept += bytesRead;
          const bytes = keep ? Buffer.from(scratch.subarray(0, bytesRead)) : undefined;
          out.set(id, { type, storedSize: bytesRead, bytes });
        } else {
          out.set(id, { type, storedSize: (await handle.stat()).size });
        }
      } finally {
        await handle.close();
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(SURVEY_PARALLEL, ids.length) }, worker));
  return out;
}

/** Reads an object's stored bytes into `slots[slot]`, growing it as needed. */
async function readStoredBytes(
  store: ObjectStore,
  id: ObjectId,
  slots: Buffer[],
  slot: number,
): Promise<Buffer> {
  const handle = await store.open(id);
  try {
    const { size } = await handle.stat();
    // Powers of two, so a slot is reallocated a few times at most.
    if (slots[slot]!.length < size)
      slots[slot] = Buffer.allocUnsafe(2 ** Math.ceil(Math.log2(size)));
    const buffer = slots[slot]!;
    let done = 0;
    while (done < size) {
      const { bytesRead } = await handle.read(buffer, done, size - done, done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    if (done !== size) throw corruptObject(id, 'stored bytes are cut short');
    return buffer.subarray(0, size);
  } finally {
    await handle.close();
  }
}

/**
 * Reads every record of `pack` front to back and verifies each as a read
 * would, against the ID the index gives it: OBJECT_CORRUPT naming the first
 * object that fails, PACK_CORRUPT when the records do not tile the pack.
 * (For chunks this is cheaper than re-hashing the pack: BLAKE3 names them.)
 */
export async function verifyPack(
  pack: Pack,
  store: ObjectStore,
  signal?: AbortSignal,
): Promise<void> {
  const entries: PackEntry[] = [];
  for (let i = 0; i < pack.count; i++) entries.push(pack.entryAt(i));
  entries.sort((a, b) => a.offset - b.offset);
  let buffer = Buffer.allocUnsafe(VERIFY_BUFFER);
  let pos = 0; // where the next record starts in the buffer
  let filled = 0; // bytes of the buffer read from the pack
  let start = PACK_HEADER_SIZE; // pack offset of buffer[pos]
  const file = await fs.open(pack.packPath, 'r');
  try {
    for (const entry of entries) {
      signal?.throwIfAborted();
      if (entry.offset !== start) {
        throw corruptPack(pack.indexPath, 'records do not lie back to back', entry.id);
      }
      if (pos + entry.length > buffer.length) {
        const target = entry.length > buffer.length ? Buffer.allocUnsafe(entry.length) : buffer;
        buffer.copy(target, 0, pos, filled);
        buffer = target;
        filled -= pos;
        pos = 0;
      }
      while (filled - pos < entry.length) {
        const at = start + (filled - pos);
        const { bytesRead } = await file.read(buffer, filled, buffer.length - filled, at);
        if (bytesRead === 0) throw corruptObject(entry.id, 'record is cut short in its pack');
        filled += bytesRead;
      }
      await verifyRecord(store, entry.id, buffer.subarray(pos, pos + entry.length));
      pos += entry.length;
      start += entry.length;
    }
  } finally {
    await file.close();
  }
  if (start !== pack.packSize - PACK_TRAILER_SIZE) {
    throw corruptPack(pack.packPath, 'bytes between the last record and the trailer');
  }
}

/** The first bytes of every zstd frame (RFC 8878). */
const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);

/**
 * `soleCopies` (see PackObjectsOptions): a delta record's header, prefix and
 * frame magic; any other record verified in full, as that is cheap.
 */
async function checkSoleCopy(store: ObjectStore, id: ObjectId, record: Buffer): Promise<void> {
  const { codec } = decodeHeader(id, record);
  if (codec !== Codec.delta) {
    await verifyRecord(store, id, record);
    return;
  }
  const { frame } = parseDeltaPayload(id, record.subarray(HEADER_SIZE));
  if (!ZSTD_MAGIC.equals(frame.subarray(0, ZSTD_MAGIC.length))) {
    throw corruptObject(id, 'delta frame is not a zstd frame');
  }
}

/**
 * Step 4 of `packObjects`: the records tile the pack as its index says, and
 * the pack file hashes to its name, the SHA-256 computed as the verified
 * records were written (`Pack.load` checked the trailer against it).
 * PACK_CORRUPT naming the pack otherwise.
 */
export async function verifyWrittenPack(pack: Pack, signal?: AbortSignal): Promise<void> {
  const entries: PackEntry[] = [];
  for (let i = 0; i < pack.count; i++) entries.push(pack.entryAt(i));
  entries.sort((a, b) => a.offset - b.offset);
  let start = PACK_HEADER_SIZE;
  for (const entry of entries) {
    if (entry.offset !== start) {
      throw corruptPack(pack.indexPath, 'records do not lie back to back', entry.id);
    }
    start += entry.length;
  }
  if (start !== pack.packSize - PACK_TRAILER_SIZE) {
    throw corruptPack(pack.packPath, 'bytes between the last record and the trailer');
  }
  await pack.verifyChecksum(signal);
}

/**
 * Checks stored bytes exactly as a read does (header, decode, size, hash; a
 * delta against its base, read from `store`) and returns the object's type;
 * OBJECT_CORRUPT naming the object otherwise.
 */
export async function verifyRecord(
  store: ObjectStore,
  id: ObjectId,
  record: Buffer,
): Promise<ObjectTypeName> {
  return (await store.decodeVerified(id, record)).type;
}

/** Appends records to a temp pack file, hashing everything for the trailer. */
class PackFileWriter {
  readonly #path: string;
  readonly #file: fs.FileHandle;
  readonly #digest = createHash('sha256');
  readonly #batch = Buffer.allocUnsafe(WRITE_BATCH);
  #batched = 0;
  #written = 0;

  private constructor(filePath: string, file: fs.FileHandle) {
    this.#path = filePath;
    this.#file = file;
  }

  static async create(filePath: string, count: number): Promise<PackFileWriter> {
    const file = await fs.open(filePath, 'wx', 0o444);
    const writer = new PackFileWriter(filePath, file);
    await writer.append(encodePackHeader(count));
    return writer;
  }

  /** Where the next appended byte lands in the pack. */
  get position(): number {
    return this.#written + this.#batched;
  }

  async append(bytes: Uint8Array): Promise<void> {
    this.#digest.update(bytes);
    await this.#appendRaw(bytes);
  }

  async #appendRaw(bytes: Uint8Array): Promise<void> {
    if (bytes.length <= this.#batch.length / 2) {
      if (bytes.length > this.#batch.length - this.#batched) await this.#flush();
      this.#batch.set(bytes, this.#batched);
      this.#batched += bytes.length;
      return;
    }
    await this.#flush();
    await writeAll(this.#file, bytes, this.#written);
    this.#written += bytes.length;
  }

  async #flush(): Promise<void> {
    if (this.#batched === 0) return;
    await writeAll(this.#file, this.#batch.subarray(0, this.#batched), this.#written);
    this.#written += this.#batched;
    this.#batched = 0;
  }

  /** Appends the trailer, fsyncs and closes; returns the trailer (the pack's checksum). */
  async finish(): Promise<Buffer> {
    const trailer = this.#digest.digest();
    await this.#appendRaw(trailer);
    await this.#flush();
    await this.#file.sync();
    await this.#file.close();
    return trailer;
  }

  async abort(): Promise<void> {
    await this.#file.close().catch(() => undefined);
    await fs.rm(this.#path, { force: true });
  }
}

async function writeAll(file: fs.FileHandle, data: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < data.length) {
    const { bytesWritten } = await file.write(data, done, data.length - done, position + done);
    done += bytesWritten;
  }
}
