/**
 * Reading pack files: many objects in one file, found through a sorted index
 * (docs/format.md, "Packs").
 *
 * A pack (`objects/pack/pack-<name>.pack`) holds object records back to back,
 * each byte-identical to a loose object file (16-byte header + payload), so a
 * packed object is verified exactly as a loose one. Its index (`.idx`) lists
 * the object IDs sorted, with a fan-out table on the first byte, and each
 * record's offset and length. A lookup is a binary search in the index held in
 * memory; a read is one positional read of exactly the record.
 *
 * Contracts:
 * - A pack counts only once its index exists: repack renames the pack into
 *   place first and its index last, so a pack without an index is ignored.
 * - Indexes are loaded lazily and cached; an ID not found in the known packs
 *   makes the set re-read the folder (another process may have repacked) before
 *   it answers "not here".
 * - A damaged index or pack header/trailer is a PACK_CORRUPT error naming the
 *   file; a damaged record is the caller's OBJECT_CORRUPT naming the object.
 */
import { hash, createHash } from 'node:crypto';
import { statSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { corruptObject, hasErrnoCode, MediaGitError } from '../errors.ts';
import {
  DIRECT_MIN_BYTES,
  directIoEnabled,
  openDirectForRead,
  readDirect,
} from '../storage/direct-io.ts';
import { isObjectId, type ObjectId } from './object-id.ts';
import { MultiIndex } from './cloud-pack.ts';

export const PACK_MAGIC = Buffer.from('MGPK', 'latin1');
export const PACK_INDEX_MAGIC = Buffer.from('MGPI', 'latin1');
/**
 * Pack versions: 1 (written by repack) ends in the SHA-256 of every byte
 * before the trailer; 2 (written by add, straight from the chunker) ends in
 * the SHA-256 of its record table (`recordTableChecksum`), since each record
 * is already verified by its own ID and hashing the bytes again would cost a
 * second pass over every added byte.
 */
export const PACK_VERSION = 1;
export const INGEST_PACK_VERSION = 2;
export const PACK_INDEX_VERSION = 1;
/** "MGPK", u32 version, u64 object count. */
export const PACK_HEADER_SIZE = 16;
/** SHA-256 of every byte before it. */
export const PACK_TRAILER_SIZE = 32;
/** The 16-byte object header every record starts with (object-store.ts). */
const RECORD_HEADER_SIZE = 16;
const ID_BYTES = 32;
const IDX_HEADER_SIZE = 8;
const FANOUT_SIZE = 256 * 4;
/** Per object: 32-byte ID, u64 offset, u64 length. */
const IDX_ENTRY_SIZE = ID_BYTES + 8 + 8;
/** Pack checksum, then the index's own checksum. */
const IDX_TRAILER_SIZE = 32 + 32;

const INDEX_NAME = /^pack-([0-9a-f]{64})\.idx$/;

export function packFileName(name: string): string {
  return `pack-${name}.pack`;
}

export function packIndexFileName(name: string): string {
  return `pack-${name}.idx`;
}

/** A pack index or pack file that cannot be trusted; names the file. */
export function corruptPack(file: string, reason: string, id?: ObjectId): MediaGitError {
  const suffix = id === undefined ? '' : ` (looking up object ${id})`;
  return new MediaGitError('PACK_CORRUPT', `pack ${file} is corrupt: ${reason}${suffix}`, {
    kind: 'corrupt',
    data: id === undefined ? { pack: file, reason } : { pack: file, reason, id },
  });
}

/** One entry of a pack index. */
export interface PackEntry {
  readonly id: ObjectId;
  readonly offset: number;
  readonly length: number;
}

/**
 * Encodes a pack index for `entries` (any order; sorted here) of the pack
 * whose trailer is `packChecksum`. Layout in docs/format.md.
 */
export function encodePackIndex(entries: readonly PackEntry[], packChecksum: Uint8Array): Buffer {
  const sorted = [...entries].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const n = sorted.length;
  const out = Buffer.alloc(IDX_HEADER_SIZE + FANOUT_SIZE + n * IDX_ENTRY_SIZE + IDX_TRAILER_SIZE);
  PACK_INDEX_MAGIC.copy(out, 0);
  out.writeUInt32LE(PACK_INDEX_VERSION, 4);
  const idsAt = IDX_HEADER_SIZE + FANOUT_SIZE;
  const offsetsAt = idsAt + n * ID_BYTES;
  const lengthsAt = offsetsAt + n * 8;
  const counts = new Uint32Array(256);
  for (const [i, entry] of sorted.entries()) {
    if (i > 0 && sorted[i - 1]!.id === entry.id) throw new Error(`duplicate entry ${entry.id}`);
    out.write(entry.id, idsAt + i * ID_BYTES, ID_BYTES, 'hex');
    out.writeBigUInt64LE(BigInt(entry.offset), offsetsAt + i * 8);
    out.writeBigUInt64LE(BigInt(entry.length), lengthsAt + i * 8);
    counts[out[idsAt + i * ID_BYTES]!]!++;
  }
  let running = 0;
  for (let b = 0; b < 256; b++) {
    running += counts[b]!;
    out.writeUInt32LE(running, IDX_HEADER_SIZE + b * 4);
  }
  const trailerAt = lengthsAt + n * 8;
  Buffer.from(packChecksum).copy(out, trailerAt);
  hash('sha256', out.subarray(0, trailerAt + 32), 'buffer').copy(out, trailerAt + 32);
  return out;
}

/**
 * The checksum of a version-2 pack: SHA-256 over its records in pack order,
 * each as 32 raw ID bytes, u64 LE offset, u64 LE length.
 */
export function recordTableChecksum(entries: readonly PackEntry[]): Buffer {
  const ordered = [...entries].sort((a, b) => a.offset - b.offset);
  const table = Buffer.alloc(ordered.length * 48);
  ordered.forEach((entry, i) => {
    table.write(entry.id, i * 48, 32, 'hex');
    table.writeBigUInt64LE(BigInt(entry.offset), i * 48 + 32);
    table.writeBigUInt64LE(BigInt(entry.length), i * 48 + 40);
  });
  return hash('sha256', table, 'buffer');
}

/** The 16-byte header of a pack holding `count` objects. */
export function encodePackHeader(count: number, version = PACK_VERSION): Buffer {
  const header = Buffer.alloc(PACK_HEADER_SIZE);
  PACK_MAGIC.copy(header, 0);
  header.writeUInt32LE(version, 4);
  header.writeBigUInt64LE(BigInt(count), 8);
  return header;
}

/** What a reader of one object sees, whether the object is loose or packed. */
export interface ObjectHandle {
  /** Reads from the object's bytes (header + payload) at `position`. */
  read(
    buffer: Buffer,
    offset: number,
    length: number,
    position: number,
  ): Promise<{ bytesRead: number }>;
  /** `size` is the object's stored size: header + payload. */
  stat(): Promise<{ size: number }>;
  readFile(): Promise<Buffer>;
  close(): Promise<void>;
}

/** How long an unused pack file stays open for the next read. */
const IDLE_CLOSE_MS = 1000;

/**
 * One open pack file shared by every read of it, so a packed read is one
 * positional read rather than open, read, close. It closes once unused for
 * a moment, so a pack that a repack deleted does not keep its disk space, and
 * a long-running process does not gather open files. (A pack renamed over by
 * another with the same name has the same bytes: the name is the checksum.)
 */
class SharedPackFile {
  readonly #path: string;
  #open: Promise<fs.FileHandle> | undefined;
  /** A second descriptor for direct reads of large records (undefined: refused). */
  #direct: Promise<fs.FileHandle | undefined> | undefined;
  #users = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(filePath: string) {
    this.#path = filePath;
  }

  async acquire(): Promise<fs.FileHandle> {
    this.#users++;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const opening = (this.#open ??= fs.open(this.#path, 'r'));
    try {
      return await opening;
    } catch (error) {
      if (this.#open === opening) this.#open = undefined;
      this.release();
      throw error;
    }
  }

  /** The pack opened for direct reads, while acquired; undefined where refused. */
  direct(): Promise<fs.FileHandle | undefined> {
    return (this.#direct ??= openDirectForRead(this.#path).catch(() => undefined));
  }

  release(): void {
    if (--this.#users > 0) return;
    this.#timer = setTimeout(() => {
      if (this.#users > 0) return;
      const opening = this.#open;
      const direct = this.#direct;
      this.#open = undefined;
      this.#direct = undefined;
      opening?.then((file) => file.close()).catch(() => undefined);
      direct?.then((file) => file?.close()).catch(() => undefined);
    }, IDLE_CLOSE_MS);
    this.#timer.unref();
  }
}

/** A window on one record of an open pack file. */
class PackedObjectHandle implements ObjectHandle {
  readonly #shared: SharedPackFile;
  readonly #file: fs.FileHandle;
  readonly #offset: number;
  readonly #length: number;
  #closed = false;

  constructor(shared: SharedPackFile, file: fs.FileHandle, offset: number, length: number) {
    this.#shared = shared;
    this.#file = file;
    this.#offset = offset;
    this.#length = length;
  }

  async read(
    buffer: Buffer,
    offset: number,
    length: number,
    position: number,
  ): Promise<{ bytesRead: number }> {
    const wanted = Math.max(0, Math.min(length, this.#length - position));
    const bytesRead = await readFully(this.#file, buffer, offset, wanted, this.#offset + position);
    return { bytesRead };
  }

  async stat(): Promise<{ size: number }> {
    return { size: this.#length };
  }

  /** All of the record: into the start of `into` when it fits there, else a new buffer. */
  async readFile(into?: Buffer): Promise<Buffer> {
    // Large records are read around the page cache (src/storage/direct-io.ts):
    // a 1 GiB file's chunks filled the cache at a second of system time here.
    if (this.#length >= DIRECT_MIN_BYTES && directIoEnabled()) {
      const direct = await this.#shared.direct();
      const record = direct && (await readDirect(direct, this.#offset, this.#length, into));
      if (record) return record;
    }
    const out =
      into && into.length >= this.#length
        ? into.subarray(0, this.#length)
        : Buffer.allocUnsafe(this.#length);
    const bytesRead = await readFully(this.#file, out, 0, this.#length, this.#offset);
    return out.subarray(0, bytesRead);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#shared.release();
  }
}

/** Positional read that only stops short at the end of the file. */
async function readFully(
  file: fs.FileHandle,
  buffer: Buffer,
  offset: number,
  length: number,
  position: number,
): Promise<number> {
  let done = 0;
  while (done < length) {
    const { bytesRead } = await file.read(buffer, offset + done, length - done, position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return done;
}

/** One loaded pack: its index in memory, checked against its pack file. */
/**
 * Checks a pack index's bytes (docs/format.md, "Pack index") for pack `name`:
 * magic, version, checksum, fan-out, size and ID order. Throws PACK_CORRUPT
 * naming `what`.
 */
export function checkPackIndex(
  index: Buffer,
  name: string,
  what: string,
): { count: number; packChecksum: Buffer } {
  const fail = (reason: string): MediaGitError => corruptPack(what, reason);
  const minimum = IDX_HEADER_SIZE + FANOUT_SIZE + IDX_TRAILER_SIZE;
  if (index.length < minimum) throw fail(`index is truncated (${index.length} bytes)`);
  if (!index.subarray(0, 4).equals(PACK_INDEX_MAGIC)) throw fail('bad index magic');
  const version = index.readUInt32LE(4);
  if (version !== PACK_INDEX_VERSION) throw fail(`unknown index version ${version}`);
  const sumAt = index.length - 32;
  if (!hash('sha256', index.subarray(0, sumAt), 'buffer').equals(index.subarray(sumAt))) {
    throw fail('index checksum does not match its contents');
  }
  let previous = 0;
  for (let b = 0; b < 256; b++) {
    const value = index.readUInt32LE(IDX_HEADER_SIZE + b * 4);
    if (value < previous) throw fail('fan-out table is not ascending');
    previous = value;
  }
  const count = previous;
  if (index.length !== minimum + count * IDX_ENTRY_SIZE) {
    throw fail(`index size does not match its ${count} entries`);
  }
  const packChecksum = index.subarray(sumAt - 32, sumAt);
  if (packChecksum.toString('hex') !== name) throw fail('pack checksum does not match the name');
  checkSortedIds(index, count, fail);
  return { count, packChecksum };
}

/** The entries of a checked pack index (`checkPackIndex`), in ID order. */
export function packIndexEntries(index: Buffer, count: number): PackEntry[] {
  const idsAt = IDX_HEADER_SIZE + FANOUT_SIZE;
  const offsetsAt = idsAt + count * ID_BYTES;
  const lengthsAt = offsetsAt + count * 8;
  const entries: PackEntry[] = [];
  for (let i = 0; i < count; i++) {
    entries.push({
      id: index.toString('hex', idsAt + i * ID_BYTES, idsAt + (i + 1) * ID_BYTES),
      offset: Number(index.readBigUInt64LE(offsetsAt + i * 8)),
      length: Number(index.readBigUInt64LE(lengthsAt + i * 8)),
    });
  }
  return entries;
}

export class Pack {
  /** The pack's checksum in hex, which is also its name. */
  readonly name: string;
  readonly packPath: string;
  readonly indexPath: string;
  readonly count: number;
  readonly packSize: number;
  /** 1 or 2: what the trailer checksums (PACK_VERSION, INGEST_PACK_VERSION). */
  readonly version: number;
  /** The pack file, kept open between reads. */
  readonly file: SharedPackFile;
  readonly #index: Buffer;
  readonly #fanout: Uint32Array;
  readonly #idsAt: number;
  readonly #offsetsAt: number;
  readonly #lengthsAt: number;

  private constructor(dir: string, name: string, index: Buffer, packSize: number, version: number) {
    this.name = name;
    this.version = version;
    this.packPath = path.join(dir, packFileName(name));
    this.indexPath = path.join(dir, packIndexFileName(name));
    this.#index = index;
    this.#fanout = new Uint32Array(256);
    for (let b = 0; b < 256; b++) this.#fanout[b] = index.readUInt32LE(IDX_HEADER_SIZE + b * 4);
    this.count = this.#fanout[255]!;
    this.#idsAt = IDX_HEADER_SIZE + FANOUT_SIZE;
    this.#offsetsAt = this.#idsAt + this.count * ID_BYTES;
    this.#lengthsAt = this.#offsetsAt + this.count * 8;
    this.packSize = packSize;
    this.file = new SharedPackFile(this.packPath);
  }

  /**
   * Loads and checks the index of pack `name` in `dir`, and checks the pack's
   * header and trailer against it. Throws PACK_CORRUPT naming the bad file, or
   * an ENOENT error when the index itself is gone.
   */
  static async load(dir: string, name: string): Promise<Pack> {
    const indexPath = path.join(dir, packIndexFileName(name));
    const index = await fs.readFile(indexPath);
    const { count, packChecksum } = checkPackIndex(index, name, indexPath);

    const packPath = path.join(dir, packFileName(name));
    let file: fs.FileHandle;
    try {
      file = await fs.open(packPath, 'r');
    } catch (error) {
      if (!hasErrnoCode(error, 'ENOENT')) throw error;
      // Gone with its index (another repack removed both), or lost on its own.
      await fs.access(indexPath);
      throw corruptPack(packPath, 'the pack file is missing but its index is present');
    }
    try {
      const { size } = await file.stat();
      const failPack = (reason: string): MediaGitError => corruptPack(packPath, reason);
      if (size < PACK_HEADER_SIZE + PACK_TRAILER_SIZE) throw failPack('pack is truncated');
      const header = Buffer.alloc(PACK_HEADER_SIZE);
      const trailer = Buffer.alloc(PACK_TRAILER_SIZE);
      await readFully(file, header, 0, PACK_HEADER_SIZE, 0);
      await readFully(file, trailer, 0, PACK_TRAILER_SIZE, size - PACK_TRAILER_SIZE);
      if (!header.subarray(0, 4).equals(PACK_MAGIC)) throw failPack('bad pack magic');
      const packVersion = header.readUInt32LE(4);
      if (
        packVersion !== PACK_VERSION &&
        packVersion !== INGEST_PACK_VERSION &&
        packVersion !== 3
      ) {
        throw failPack(`unknown pack version ${packVersion}`);
      }
      if (header.readBigUInt64LE(8) !== BigInt(count)) {
        throw failPack(`pack header counts ${header.readBigUInt64LE(8)} objects, index ${count}`);
      }
      if (!trailer.equals(packChecksum)) {
        throw failPack('pack trailer does not match the checksum in its index');
      }
      return new Pack(dir, name, index, size, packVersion);
    } finally {
      await file.close();
    }
  }

  /**
   * A cloud pack (version 3) named by a multi-pack index (`objects/index/`,
   * cloud-pack.ts): its entries come from that index, checked against the
   * pack's header and trailer like a pack index's.
   */
  static async fromEntries(
    dir: string,
    name: string,
    entries: readonly PackEntry[],
  ): Promise<Pack> {
    const packPath = path.join(dir, packFileName(name));
    const file = await fs.open(packPath, 'r');
    try {
      const { size } = await file.stat();
      const failPack = (reason: string): MediaGitError => corruptPack(packPath, reason);
      if (size < PACK_HEADER_SIZE + PACK_TRAILER_SIZE) throw failPack('pack is truncated');
      const header = Buffer.alloc(PACK_HEADER_SIZE);
      const trailer = Buffer.alloc(PACK_TRAILER_SIZE);
      await readFully(file, header, 0, PACK_HEADER_SIZE, 0);
      await readFully(file, trailer, 0, PACK_TRAILER_SIZE, size - PACK_TRAILER_SIZE);
      if (!header.subarray(0, 4).equals(PACK_MAGIC)) throw failPack('bad pack magic');
      if (header.readUInt32LE(4) !== 3)
        throw failPack(`version ${header.readUInt32LE(4)} is not a cloud pack`);
      if (header.readBigUInt64LE(8) !== BigInt(entries.length)) {
        throw failPack(
          `pack header counts ${header.readBigUInt64LE(8)} objects, its index ${entries.length}`,
        );
      }
      if (trailer.toString('hex') !== name) throw failPack('pack trailer does not match its name');
      return new Pack(dir, name, encodePackIndex(entries, trailer), size, 3);
    } finally {
      await file.close();
    }
  }

  /** The index of `id` (32 raw bytes) in the sorted table, or -1. */
  indexOf(id: Buffer): number {
    const first = id[0]!;
    let lo = first === 0 ? 0 : this.#fanout[first - 1]!;
    let hi = this.#fanout[first]!;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const at = this.#idsAt + mid * ID_BYTES;
      const order = this.#index.compare(id, 0, ID_BYTES, at, at + ID_BYTES);
      if (order === 0) return mid;
      if (order < 0) lo = mid + 1;
      else hi = mid;
    }
    return -1;
  }

  idAt(i: number): ObjectId {
    const at = this.#idsAt + i * ID_BYTES;
    return this.#index.toString('hex', at, at + ID_BYTES);
  }

  /** The record of entry `i`, bounds-checked against the pack file. */
  entryAt(i: number): PackEntry {
    const id = this.idAt(i);
    const offset = Number(this.#index.readBigUInt64LE(this.#offsetsAt + i * 8));
    const length = Number(this.#index.readBigUInt64LE(this.#lengthsAt + i * 8));
    if (
      offset < PACK_HEADER_SIZE ||
      length < RECORD_HEADER_SIZE ||
      offset + length > this.packSize - PACK_TRAILER_SIZE
    ) {
      throw corruptPack(this.indexPath, 'record lies outside the pack', id);
    }
    return { id, offset, length };
  }

  /** The IDs in the index whose hex form starts with `prefix`. */
  idsWithPrefix(prefix: string): ObjectId[] {
    const low = Buffer.from(prefix.padEnd(64, '0'), 'hex');
    const out: ObjectId[] = [];
    let lo = 0;
    let hi = this.count;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const at = this.#idsAt + mid * ID_BYTES;
      if (this.#index.compare(low, 0, ID_BYTES, at, at + ID_BYTES) < 0) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < this.count; i++) {
      const id = this.idAt(i);
      if (!id.startsWith(prefix)) break;
      out.push(id);
    }
    return out;
  }

  *ids(): Generator<ObjectId> {
    for (let i = 0; i < this.count; i++) yield this.idAt(i);
  }

  /**
   * Re-reads the whole pack file and checks it against its trailer (for
   * repack before it deletes anything, and for fsck); for a version-2 pack,
   * checks the record table against it. Throws PACK_CORRUPT.
   */
  async verifyChecksum(signal?: AbortSignal): Promise<void> {
    if (this.version !== PACK_VERSION) {
      // The record table, from the index; the records themselves are checked
      // against their IDs by verifyPack.
      const entries: PackEntry[] = [];
      for (let i = 0; i < this.count; i++) entries.push(this.entryAt(i));
      if (recordTableChecksum(entries).toString('hex') !== this.name) {
        throw corruptPack(this.packPath, 'record table does not match the pack checksum');
      }
      return;
    }
    const file = await fs.open(this.packPath, 'r');
    try {
      const digest = createHash('sha256');
      const buffer = Buffer.allocUnsafe(8 * 1024 * 1024);
      const end = this.packSize - PACK_TRAILER_SIZE;
      for (let position = 0; position < end;) {
        signal?.throwIfAborted();
        const want = Math.min(buffer.length, end - position);
        const got = await readFully(file, buffer, 0, want, position);
        if (got !== want) throw corruptPack(this.packPath, 'pack is shorter than its index says');
        digest.update(buffer.subarray(0, got));
        position += got;
      }
      if (digest.digest('hex') !== this.name) {
        throw corruptPack(this.packPath, 'pack contents do not match its checksum');
      }
    } finally {
      await file.close();
    }
  }
}

/** IDs strictly ascending, each in the fan-out bucket of its first byte. */
function checkSortedIds(index: Buffer, count: number, fail: (reason: string) => Error): void {
  const idsAt = IDX_HEADER_SIZE + FANOUT_SIZE;
  let bucket = 0;
  let bucketEnd = index.readUInt32LE(IDX_HEADER_SIZE);
  for (let i = 0; i < count; i++) {
    const at = idsAt + i * ID_BYTES;
    if (i > 0 && index.compare(index, at - ID_BYTES, at, at, at + ID_BYTES) <= 0) {
      throw fail('object IDs are not sorted');
    }
    while (i >= bucketEnd) bucketEnd = index.readUInt32LE(IDX_HEADER_SIZE + ++bucket * 4);
    if (index[at] !== bucket) throw fail('fan-out table does not match the object IDs');
  }
}

/**
 * A folder modified this recently before a scan is listed again on the next
 * lookup: modification times move in clock ticks (up to 10 ms on Linux
 * filesystems, 2 s on FAT).
 */
const RACY_MS = 2500;

/** A folder's modification time in ns, or -1 when it does not exist. */
function mtimeNs(dir: string): bigint {
  return statSync(dir, { bigint: true, throwIfNoEntry: false })?.mtimeNs ?? -1n;
}

/** Where a packed object is: its pack and its record. */
export interface PackedObject {
  readonly pack: Pack;
  readonly entry: PackEntry;
}

/**
 * The packs of one object folder (`objects/pack`), loaded lazily and cached.
 * A pack whose index or header is damaged is remembered as broken: lookups
 * skip it, and an object found nowhere else is reported with its error.
 */
export class PackSet {
  readonly dir: string;
  readonly #packs = new Map<string, Pack>();
  readonly #broken = new Map<string, MediaGitError>();
  readonly #loading = new Map<string, Promise<void>>();
  /** Loaded multi-pack indexes: per index, its packs' entries. */
  readonly #multis = new Map<string, Map<string, PackEntry[]>>();
  /** Multi-pack indexes of cloud packs (objects/index/, cloud-pack.ts). */
  readonly #indexDir: string;
  #scanned = false;
  /** The scan `find` started last, while it runs (#scanSince). */
  #scanning: { started: number; done: Promise<void> } | undefined;
  /** The folders' modification times (ns; -1 when absent) as the last scan began. */
  #stamp: { startedNs: bigint; packNs: bigint; indexNs: bigint } | undefined;

  constructor(dir: string) {
    this.dir = dir;
    this.#indexDir = path.join(path.dirname(dir), 'index');
  }

  /** Finds `id` in the known packs, re-reading the folder once when it is not there. */
  async find(id: ObjectId): Promise<PackedObject | undefined> {
    if (!isObjectId(id)) return undefined;
    const asked = performance.now();
    const key = Buffer.from(id, 'hex');
    if (this.#scanned) {
      const found = this.#lookup(key);
      if (found) return found;
      if (this.#unchangedSinceScan()) return undefined;
    }
    await this.#scanSince(asked);
    return this.#lookup(key);
  }

  /**
   * `find` for many IDs at once, with at most one listing of the folders
   * for all of them (one that began after this call): a partial clone's
   * checkout asks about hundreds of absent chunks right after writing a
   * pack, while each `find` would list the racily new folder again.
   */
  async findMany(ids: readonly ObjectId[]): Promise<(PackedObject | undefined)[]> {
    const asked = performance.now();
    const keys = ids.map((id) => (isObjectId(id) ? Buffer.from(id, 'hex') : undefined));
    const lookup = (): (PackedObject | undefined)[] =>
      keys.map((key) => (key === undefined ? undefined : this.#lookup(key)));
    if (this.#scanned) {
      const found = lookup();
      const settled = found.every((hit, i) => hit !== undefined || keys[i] === undefined);
      if (settled || this.#unchangedSinceScan()) return found;
    }
    await this.#scanSince(asked);
    return lookup();
  }

  /**
   * A scan that began at or after `asked`: the one in flight if it did,
   * else a new one once the one in flight has ended. Lookups made together
   * (a fetch checks hundreds of absent chunks, 16 at a time, and while a
   * folder is racily new each of them must list it) share one listing
   * instead of each starting its own, and a lookup still never trusts a
   * listing that began before it asked.
   */
  async #scanSince(asked: number): Promise<void> {
    for (let current = this.#scanning; current; current = this.#scanning) {
      if (current.started >= asked) return current.done;
      await current.done.catch(() => undefined);
    }
    const started = performance.now();
    const done: Promise<void> = this.scan().finally(() => {
      if (this.#scanning?.done === done) this.#scanning = undefined;
    });
    this.#scanning = { started, done };
    return done;
  }

  /**
   * Whether neither folder changed since the last scan, by their modification
   * times (two stat calls instead of two listings: an `add` of 1 GiB asks
   * about ~420 new chunks, and re-listing for each cost its main thread
   * 50-70 ms). A folder modified within RACY_MS before that scan started may
   * change again within the same clock tick without its time moving, so it
   * is listed again, as Git treats a racily clean index entry.
   */
  #unchangedSinceScan(): boolean {
    const stamp = this.#stamp;
    if (!stamp) return false;
    const racy = stamp.startedNs - BigInt(RACY_MS) * 1_000_000n;
    if (stamp.packNs > racy || stamp.indexNs > racy) return false;
    return mtimeNs(this.dir) === stamp.packNs && mtimeNs(this.#indexDir) === stamp.indexNs;
  }

  #lookup(key: Buffer): PackedObject | undefined {
    for (const pack of this.#packs.values()) {
      const i = pack.indexOf(key);
      if (i >= 0) return { pack, entry: pack.entryAt(i) };
    }
    return undefined;
  }

  /**
   * The error for an object found in no pack: a broken pack's (it may hold
   * the object) when there is one, else OBJECT_MISSING from `missing`.
   */
  notFound(id: ObjectId, missing: MediaGitError): MediaGitError {
    const broken = this.#broken.values().next().value;
    if (broken === undefined) return missing;
    return corruptPack(String(broken.data['pack']), String(broken.data['reason']), id);
  }

  /**
   * Re-reads the folder: loads indexes that appeared, forgets packs that were
   * removed. Packs already loaded are not re-read (a pack's name is its
   * checksum, so the same name always means the same bytes).
   */
  async scan(): Promise<void> {
    // Taken before listing: a change after this makes the next check list again.
    const stamp = {
      startedNs: BigInt(Date.now()) * 1_000_000n,
      packNs: mtimeNs(this.dir),
      indexNs: mtimeNs(this.#indexDir),
    };
    let names: string[];
    try {
      names = await fs.readdir(this.dir);
    } catch (error) {
      if (!hasErrnoCode(error, 'ENOENT')) throw error;
      names = [];
    }
    const present = new Set<string>();
    for (const file of names) {
      const match = INDEX_NAME.exec(file);
      if (match) present.add(match[1]!);
    }
    // Cloud packs pushed to a bare repository on local disk: their packs are
    // named by multi-pack indexes in objects/index/ (cloud-pack.ts).
    const multi = await this.#multiIndexed();
    for (const name of multi.keys()) present.add(name);
    for (const name of [...this.#packs.keys()]) if (!present.has(name)) this.#packs.delete(name);
    for (const name of [...this.#broken.keys()]) if (!present.has(name)) this.#broken.delete(name);
    const loads: Promise<void>[] = [];
    for (const name of [...present].sort()) {
      if (this.#packs.has(name) || this.#broken.has(name)) continue;
      let loading = this.#loading.get(name);
      if (!loading) {
        loading = this.#load(name).finally(() => this.#loading.delete(name));
        this.#loading.set(name, loading);
      }
      loads.push(loading);
    }
    await Promise.all(loads);
    this.#scanned = true;
    this.#stamp = stamp;
  }

  /** Packs named by multi-pack indexes, with their entries (from every index naming them). */
  async #multiIndexed(): Promise<Map<string, PackEntry[]>> {
    const indexDir = this.#indexDir;
    let files: string[];
    try {
      files = await fs.readdir(indexDir);
    } catch (error) {
      if (!hasErrnoCode(error, 'ENOENT')) throw error;
      files = [];
    }
    for (const file of files) {
      const match = /^([0-9a-f]{64})\.idx$/.exec(file);
      if (!match || this.#multis.has(match[1]!)) continue;
      const where = path.join(indexDir, file);
      try {
        const index = MultiIndex.parse(await fs.readFile(where), match[1]!, where);
        const byPack = new Map<string, PackEntry[]>();
        for (const entry of index.entries()) {
          const list = byPack.get(entry.pack) ?? [];
          list.push({ id: entry.id, offset: entry.offset, length: entry.length });
          byPack.set(entry.pack, list);
        }
        this.#multis.set(match[1]!, byPack);
      } catch (error) {
        if (hasErrnoCode(error, 'ENOENT')) continue;
        if (error instanceof MediaGitError && error.code === 'PACK_CORRUPT') {
          this.#broken.set(match[1]!, error);
          continue;
        }
        throw error;
      }
    }
    const packs = new Map<string, PackEntry[]>();
    for (const byPack of this.#multis.values()) {
      for (const [name, entries] of byPack) if (!packs.has(name)) packs.set(name, entries);
    }
    return packs;
  }

  async #load(name: string): Promise<void> {
    try {
      const multi = (await this.#multiIndexed()).get(name);
      if (multi) {
        this.#packs.set(name, await Pack.fromEntries(this.dir, name, multi));
        return;
      }
      this.#packs.set(name, await Pack.load(this.dir, name));
    } catch (error) {
      if (hasErrnoCode(error, 'ENOENT')) return; // removed since the folder was read
      if (error instanceof MediaGitError && error.code === 'PACK_CORRUPT') {
        this.#broken.set(name, error);
        return;
      }
      throw error;
    }
  }

  /** The loaded packs, after a scan; throws the first broken pack's error. */
  async all(): Promise<Pack[]> {
    await this.scan();
    const broken = this.#broken.values().next().value;
    if (broken) throw broken;
    return [...this.#packs.values()];
  }

  /** Loads pack `name` afresh from disk, bypassing the cache (repack's check). */
  load(name: string): Promise<Pack> {
    return Pack.load(this.dir, name);
  }

  /**
   * Opens a packed object for reading, or returns undefined when no pack has
   * it. A pack removed between lookup and open (another repack merged it) is
   * looked up again.
   */
  async open(id: ObjectId): Promise<PackedObjectHandle | undefined> {
    for (let attempt = 0; ; attempt++) {
      const found = await this.find(id);
      if (!found) return undefined;
      try {
        const file = await found.pack.file.acquire();
        const { offset, length } = found.entry;
        return new PackedObjectHandle(found.pack.file, file, offset, length);
      } catch (error) {
        if (!hasErrnoCode(error, 'ENOENT') || attempt >= 2) throw error;
        await this.scan();
      }
    }
  }

  /**
   * Reads a packed object's record (header + payload), or undefined when no
   * pack has it: into the start of `into` when it fits there.
   */
  async readRecord(id: ObjectId, into?: Buffer): Promise<Buffer | undefined> {
    const handle = await this.open(id);
    if (!handle) return undefined;
    try {
      const { size } = await handle.stat();
      const record = await handle.readFile(into);
      if (record.length !== size) throw corruptObject(id, 'record is cut short in its pack');
      return record;
    } finally {
      await handle.close();
    }
  }

  /** Packed IDs starting with `prefix` (hex, at least 2 digits), from every pack. */
  async idsWithPrefix(prefix: string): Promise<ObjectId[]> {
    await this.scan();
    const out = new Set<ObjectId>();
    for (const pack of this.#packs.values())
      for (const id of pack.idsWithPrefix(prefix)) out.add(id);
    return [...out];
  }
}
