/**
 * Cloud packs (docs/format.md, "Cloud packs"): how a repository on object
 * storage keeps many objects in few objects, as restic's packs and Xet's
 * xorbs do. A push stores its new objects in packs of at most
 * `MAX_CLOUD_PACK_BYTES`, then one multi-pack index naming every pack of
 * the push; readers find an object through the indexes and read exactly its
 * record with one ranged GET (neighbours coalesced).
 *
 * - A pack (version 3) is self-describing: header, records, the record
 *   table (ID, offset, length per record, in pack order), then the SHA-256
 *   of that table, which is also the pack's name. A server can verify an
 *   uploaded pack from its bytes alone (`parseCloudPack`), and a lost index
 *   can be rebuilt from the packs.
 * - A multi-pack index (index version 2) lists the packs it covers and, for
 *   every object, its pack, offset and length, sorted by ID with a fan-out
 *   table; it is named by the SHA-256 of its bytes. An index is written only
 *   after every pack it names is stored and verified, so an object is
 *   visible exactly when it is readable.
 */
import { hash } from 'node:crypto';
import { MediaGitError } from '../errors.ts';
import { isObjectId, type ObjectId } from './object-id.ts';
import { PACK_HEADER_SIZE, PACK_INDEX_MAGIC, PACK_MAGIC, type PackEntry } from './pack.ts';

/** Pack version 3: version 2 plus its record table before the trailer. */
export const CLOUD_PACK_VERSION = 3;
/** Index version 2: several packs per index. */
export const MULTI_INDEX_VERSION = 2;
/** A push's packs are cut at this size (a 1 GiB push: 17 packs, 17 PUTs). */
export const MAX_CLOUD_PACK_BYTES = 64 * 1024 * 1024;
const TABLE_ENTRY = 48;
const TRAILER = 32;
const RECORD_HEADER = 16;
const FANOUT = 256 * 4;
const MULTI_HEADER = 12;

export function cloudPackError(what: string, reason: string): MediaGitError {
  return new MediaGitError('PACK_CORRUPT', `pack ${what} is corrupt: ${reason}`, {
    kind: 'corrupt',
    data: { pack: what, reason },
  });
}

/** Bytes a pack of records of these lengths takes. */
export function cloudPackSize(recordLengths: readonly number[]): number {
  let size = PACK_HEADER_SIZE + TRAILER;
  for (const length of recordLengths) size += length + TABLE_ENTRY;
  return size;
}

/**
 * Lays out a pack in `target` (at least `cloudPackSize` bytes): the caller
 * copies each record to the offset `add` returns; `finish` writes the header,
 * table and trailer and returns the pack's bytes, name and entries.
 */
export class CloudPackWriter {
  readonly #target: Buffer;
  readonly #entries: PackEntry[] = [];
  #at = PACK_HEADER_SIZE;

  constructor(target: Buffer) {
    this.#target = target;
  }

  get size(): number {
    return this.#at + this.#entries.length * TABLE_ENTRY + TRAILER;
  }

  get count(): number {
    return this.#entries.length;
  }

  /** Whether a record of `length` bytes still fits within `limit` bytes of pack. */
  fits(length: number, limit = MAX_CLOUD_PACK_BYTES): boolean {
    return this.size + length + TABLE_ENTRY <= Math.min(limit, this.#target.length);
  }

  /**
   * Where the next record goes: the bytes a record may take there and still
   * fit within `limit`. A record read into it is added without a copy.
   */
  spare(limit = MAX_CLOUD_PACK_BYTES): Buffer {
    const room = Math.min(limit, this.#target.length) - this.size - TABLE_ENTRY;
    return this.#target.subarray(this.#at, this.#at + Math.max(0, room));
  }

  /** Appends a record (copied now, unless it was read into `spare()`). */
  add(id: ObjectId, record: Uint8Array): void {
    if (!this.fits(record.length, Number.POSITIVE_INFINITY))
      throw new Error('cloud pack buffer too small');
    const inPlace =
      record.buffer === this.#target.buffer &&
      record.byteOffset === this.#target.byteOffset + this.#at;
    if (!inPlace) this.#target.set(record, this.#at);
    this.#entries.push({ id, offset: this.#at, length: record.length });
    this.#at += record.length;
  }

  /** Writes header, table and trailer; `table` is a view of the record table in the pack. */
  finish(): { name: string; bytes: Buffer; entries: PackEntry[]; table: Buffer } {
    const target = this.#target;
    PACK_MAGIC.copy(target, 0);
    target.writeUInt32LE(CLOUD_PACK_VERSION, 4);
    target.writeBigUInt64LE(BigInt(this.#entries.length), 8);
    const tableAt = this.#at;
    const table = target.subarray(tableAt, tableAt + this.#entries.length * TABLE_ENTRY);
    writeCloudPackTable(this.#entries, table);
    const trailerAt = tableAt + table.length;
    const name = hash('sha256', table, 'buffer');
    name.copy(target, trailerAt);
    return {
      name: name.toString('hex'),
      bytes: target.subarray(0, trailerAt + TRAILER),
      entries: [...this.#entries],
      table,
    };
  }
}

/** Writes a pack's record table (ID, offset, length per record) into `out`. */
function writeCloudPackTable(entries: readonly PackEntry[], out: Buffer): void {
  entries.forEach((entry, i) => {
    const at = i * TABLE_ENTRY;
    out.write(entry.id, at, 32, 'hex');
    out.writeBigUInt64LE(BigInt(entry.offset), at + 32);
    out.writeBigUInt64LE(BigInt(entry.length), at + 40);
  });
}

/** A pack laid out before any of its bytes are read: what `CloudPackWriter` will make of them. */
export interface PlannedCloudPack {
  readonly name: string;
  readonly size: number;
  readonly entries: readonly PackEntry[];
  /** The record table, as the pack will hold it (its SHA-256 is the name). */
  readonly table: Buffer;
}

/**
 * Cuts records of known lengths, in the order given, into packs of at most
 * `limit` bytes, exactly as `CloudPackWriter` filled with them would: each
 * pack's name and size are known before a byte of it is read. A record too
 * large for any pack gets a pack of its own (the writer refuses it later).
 */
export function planCloudPacks(
  records: readonly { readonly id: ObjectId; readonly length: number }[],
  limit = MAX_CLOUD_PACK_BYTES,
): PlannedCloudPack[] {
  const packs: PlannedCloudPack[] = [];
  let entries: PackEntry[] = [];
  let at = PACK_HEADER_SIZE;
  const cut = (): void => {
    if (entries.length === 0) return;
    const table = Buffer.allocUnsafe(entries.length * TABLE_ENTRY);
    writeCloudPackTable(entries, table);
    const name = hash('sha256', table, 'hex');
    packs.push({ name, size: at + table.length + TRAILER, entries, table });
    entries = [];
    at = PACK_HEADER_SIZE;
  };
  for (const { id, length } of records) {
    const size = at + (entries.length + 1) * TABLE_ENTRY + TRAILER + length;
    if (entries.length > 0 && size > limit) cut();
    entries.push({ id, offset: at, length });
    at += length;
  }
  cut();
  return packs;
}

/**
 * Checks a pack's record table as its uploader declares it (`table`, for a
 * pack of `size` bytes named `name`): the table hashes to the name and its
 * records tile the pack between header and table. Returns the entries.
 * Throws PACK_CORRUPT naming `what`.
 */
export function checkDeclaredTable(
  name: string,
  size: number,
  table: Uint8Array,
  what: string,
): PackEntry[] {
  const tableAt = size - TRAILER - table.length;
  if (!isPackName(name)) throw cloudPackError(what, 'its name is not a pack name');
  if (tableAt < PACK_HEADER_SIZE) throw cloudPackError(what, 'its record table does not fit');
  const tail = Buffer.concat([table, Buffer.from(name, 'hex')]);
  return parseCloudPackTable(tail, tableAt, what).entries;
}

/**
 * Checks a pack's framing and returns its name and entries (records are not
 * decoded here: the caller verifies each against its ID). Throws
 * PACK_CORRUPT naming `what`.
 */
export function parseCloudPack(
  bytes: Uint8Array,
  what: string,
): { name: string; entries: PackEntry[] } {
  const tableAt = cloudPackTableOffset(bytes.subarray(0, PACK_HEADER_SIZE), bytes.length, what);
  return parseCloudPackTable(bytes.subarray(tableAt), tableAt, what);
}

/**
 * Where a pack of `packSize` bytes keeps its record table, from its first
 * `PACK_HEADER_SIZE` bytes (magic, version, record count). Throws
 * PACK_CORRUPT naming `what`.
 */
export function cloudPackTableOffset(header: Uint8Array, packSize: number, what: string): number {
  const buf = Buffer.from(header.buffer, header.byteOffset, header.byteLength);
  const fail = (reason: string): MediaGitError => cloudPackError(what, reason);
  if (packSize < PACK_HEADER_SIZE + TRAILER || buf.length < PACK_HEADER_SIZE) {
    throw fail('it is truncated');
  }
  if (!buf.subarray(0, 4).equals(PACK_MAGIC)) throw fail('bad magic');
  const version = buf.readUInt32LE(4);
  if (version !== CLOUD_PACK_VERSION) throw fail(`version ${version} is not a cloud pack`);
  const tableBytes = buf.readBigUInt64LE(8) * BigInt(TABLE_ENTRY);
  if (tableBytes > BigInt(packSize - PACK_HEADER_SIZE - TRAILER)) {
    throw fail('its record table does not fit');
  }
  return packSize - TRAILER - Number(tableBytes);
}

/**
 * Checks a pack's record table and trailer (`tail`: the pack's bytes from
 * `tableAt`, where `cloudPackTableOffset` puts the table, to its end): the
 * trailer is the table's checksum and the pack's name, and the records lie
 * back to back between the header and the table. Returns the name and the
 * entries; the records themselves are not read. Throws PACK_CORRUPT naming
 * `what`.
 */
export function parseCloudPackTable(
  tail: Uint8Array,
  tableAt: number,
  what: string,
): { name: string; entries: PackEntry[] } {
  const buf = Buffer.from(tail.buffer, tail.byteOffset, tail.byteLength);
  const fail = (reason: string): MediaGitError => cloudPackError(what, reason);
  if (buf.length < TRAILER || (buf.length - TRAILER) % TABLE_ENTRY !== 0) {
    throw fail('it is truncated');
  }
  const trailerAt = buf.length - TRAILER;
  const name = hash('sha256', buf.subarray(0, trailerAt), 'buffer');
  if (!name.equals(buf.subarray(trailerAt))) {
    throw fail('its record table does not match its checksum');
  }
  const entries: PackEntry[] = [];
  let expected = PACK_HEADER_SIZE;
  for (let at = 0; at < trailerAt; at += TABLE_ENTRY) {
    const id = buf.toString('hex', at, at + 32);
    const offset = Number(buf.readBigUInt64LE(at + 32));
    const length = Number(buf.readBigUInt64LE(at + 40));
    // Records lie back to back between the header and the table.
    if (offset !== expected || length < RECORD_HEADER || offset + length > tableAt) {
      throw fail(`record ${id} lies outside its place`);
    }
    entries.push({ id, offset, length });
    expected = offset + length;
  }
  if (expected !== tableAt) throw fail('bytes between its last record and its table');
  return { name: name.toString('hex'), entries };
}

/** One object's place in a multi-pack index. */
export interface IndexedObject {
  readonly pack: string;
  readonly offset: number;
  readonly length: number;
}

/** Encodes a multi-pack index; returns its bytes and name (the SHA-256 of the bytes). */
export function encodeMultiIndex(
  packs: readonly { readonly name: string; readonly entries: readonly PackEntry[] }[],
): { name: string; bytes: Buffer } {
  const rows: { id: ObjectId; pack: number; offset: number; length: number }[] = [];
  packs.forEach((pack, p) => {
    for (const e of pack.entries)
      rows.push({ id: e.id, pack: p, offset: e.offset, length: e.length });
  });
  rows.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : a.pack - b.pack));
  // An object stored twice (in two packs of one push) is indexed once.
  const unique = rows.filter((row, i) => i === 0 || rows[i - 1]!.id !== row.id);
  const n = unique.length;
  const p = packs.length;
  const out = Buffer.alloc(MULTI_HEADER + p * 32 + FANOUT + n * (32 + 4 + 8 + 8) + 32);
  PACK_INDEX_MAGIC.copy(out, 0);
  out.writeUInt32LE(MULTI_INDEX_VERSION, 4);
  out.writeUInt32LE(p, 8);
  packs.forEach((pack, i) => out.write(pack.name, MULTI_HEADER + i * 32, 32, 'hex'));
  const fanoutAt = MULTI_HEADER + p * 32;
  const idsAt = fanoutAt + FANOUT;
  const packsAt = idsAt + n * 32;
  const offsetsAt = packsAt + n * 4;
  const lengthsAt = offsetsAt + n * 8;
  const counts = new Uint32Array(256);
  unique.forEach((row, i) => {
    out.write(row.id, idsAt + i * 32, 32, 'hex');
    out.writeUInt32LE(row.pack, packsAt + i * 4);
    out.writeBigUInt64LE(BigInt(row.offset), offsetsAt + i * 8);
    out.writeBigUInt64LE(BigInt(row.length), lengthsAt + i * 8);
    counts[out[idsAt + i * 32]!]!++;
  });
  let running = 0;
  for (let b = 0; b < 256; b++) {
    running += counts[b]!;
    out.writeUInt32LE(running, fanoutAt + b * 4);
  }
  const sumAt = lengthsAt + n * 8;
  const digest = hash('sha256', out.subarray(0, sumAt), 'buffer');
  digest.copy(out, sumAt);
  return { name: digest.toString('hex'), bytes: out };
}

/** A loaded multi-pack index: lookups by binary search, nothing copied. */
export class MultiIndex {
  readonly name: string;
  readonly packs: readonly string[];
  readonly count: number;
  readonly #buf: Buffer;
  readonly #fanout: Uint32Array;
  readonly #idsAt: number;
  readonly #packsAt: number;
  readonly #offsetsAt: number;
  readonly #lengthsAt: number;

  private constructor(name: string, buf: Buffer, packs: string[], fanoutAt: number, count: number) {
    this.name = name;
    this.#buf = buf;
    this.packs = packs;
    this.count = count;
    this.#fanout = new Uint32Array(256);
    for (let b = 0; b < 256; b++) this.#fanout[b] = buf.readUInt32LE(fanoutAt + b * 4);
    this.#idsAt = fanoutAt + FANOUT;
    this.#packsAt = this.#idsAt + count * 32;
    this.#offsetsAt = this.#packsAt + count * 4;
    this.#lengthsAt = this.#offsetsAt + count * 8;
  }

  /** Parses and checks an index; `name` is what its key says it is. Throws PACK_CORRUPT. */
  static parse(bytes: Uint8Array, name: string, what: string): MultiIndex {
    const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const fail = (reason: string): MediaGitError => cloudPackError(what, reason);
    if (buf.length < MULTI_HEADER + FANOUT + 32) throw fail('index is truncated');
    if (!buf.subarray(0, 4).equals(PACK_INDEX_MAGIC)) throw fail('bad index magic');
    if (buf.readUInt32LE(4) !== MULTI_INDEX_VERSION)
      throw fail(`index version ${buf.readUInt32LE(4)}`);
    const sumAt = buf.length - 32;
    const digest = hash('sha256', buf.subarray(0, sumAt), 'buffer');
    if (!digest.equals(buf.subarray(sumAt)) || digest.toString('hex') !== name) {
      throw fail('index checksum does not match its contents or its name');
    }
    const p = buf.readUInt32LE(8);
    const fanoutAt = MULTI_HEADER + p * 32;
    if (fanoutAt + FANOUT > sumAt) throw fail('pack list does not fit');
    let previous = 0;
    for (let b = 0; b < 256; b++) {
      const value = buf.readUInt32LE(fanoutAt + b * 4);
      if (value < previous) throw fail('fan-out table is not ascending');
      previous = value;
    }
    const count = previous;
    if (fanoutAt + FANOUT + count * 52 !== sumAt)
      throw fail(`index size does not match its ${count} entries`);
    const packs: string[] = [];
    for (let i = 0; i < p; i++)
      packs.push(buf.toString('hex', MULTI_HEADER + i * 32, MULTI_HEADER + (i + 1) * 32));
    const index = new MultiIndex(name, buf, packs, fanoutAt, count);
    for (let i = 0; i < count; i++) {
      // This ID (source) against the one before it (target): it must be greater.
      const at = index.#idsAt + i * 32;
      if (i > 0 && buf.compare(buf, at - 32, at, at, at + 32) <= 0) {
        throw fail('object IDs are not sorted');
      }
      if (buf.readUInt32LE(index.#packsAt + i * 4) >= p)
        throw fail('an entry names no listed pack');
    }
    return index;
  }

  /** Where `id` (32 raw bytes) is, or undefined. */
  find(id: Buffer): IndexedObject | undefined {
    const first = id[0]!;
    let lo = first === 0 ? 0 : this.#fanout[first - 1]!;
    let hi = this.#fanout[first]!;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const at = this.#idsAt + mid * 32;
      const order = this.#buf.compare(id, 0, 32, at, at + 32);
      if (order === 0) return this.#at(mid);
      if (order < 0) lo = mid + 1;
      else hi = mid;
    }
    return undefined;
  }

  #at(i: number): IndexedObject {
    return {
      pack: this.packs[this.#buf.readUInt32LE(this.#packsAt + i * 4)]!,
      offset: Number(this.#buf.readBigUInt64LE(this.#offsetsAt + i * 8)),
      length: Number(this.#buf.readBigUInt64LE(this.#lengthsAt + i * 8)),
    };
  }

  *entries(): Generator<{ id: ObjectId } & IndexedObject> {
    for (let i = 0; i < this.count; i++) {
      const at = this.#idsAt + i * 32;
      yield { id: this.#buf.toString('hex', at, at + 32), ...this.#at(i) };
    }
  }
}

/** Keys of a repository's cloud packs and indexes. */
export function cloudPackKey(name: string): string {
  return `objects/pack/pack-${name}.pack`;
}

export function multiIndexKey(name: string): string {
  return `objects/index/${name}.idx`;
}

export const MULTI_INDEX_PREFIX = 'objects/index/';
const MULTI_INDEX_KEY = /^objects\/index\/([0-9a-f]{64})\.idx$/;

/** The index name in a key under MULTI_INDEX_PREFIX, or undefined. */
export function multiIndexName(key: string): string | undefined {
  return MULTI_INDEX_KEY.exec(key)?.[1];
}

export function isPackName(name: string): boolean {
  return isObjectId(name);
}
