/**
 * The loose object store: one file per object under `objects/xx/yyyy…`.
 *
 * Every object file is a 16-byte header followed by its payload:
 *   bytes 0-3  magic "MGO1"
 *   byte  4    object type (see ObjectType)
 *   byte  5    codec (compression/codec.ts)
 *   bytes 6-7  reserved, zero
 *   bytes 8-15 raw (uncompressed) size, unsigned 64-bit little-endian
 * The file's name is the SHA-256 of the raw bytes, and every read checks it:
 * a mismatch is an error naming the object, never silently-wrong bytes.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { LRUCache } from 'lru-cache';
import {
  classifyContent,
  Codec,
  decode,
  decodeDelta,
  encode,
  encodeWithPolicy,
  type CompressionPolicy,
  type ContentClass,
  type Encoded,
} from '../compression/codec.ts';
import { MAX_DELTA_DEPTH, parseDeltaPayload } from './delta.ts';
import { eachLimited } from '../storage/concurrency.ts';
import { DirectorySync, writeFileAtomic } from '../storage/durable-file.ts';
import { corruptObject, hasErrnoCode, missingObject, MediaGitError } from '../errors.ts';
import { isObjectId, objectIdOf, type ObjectId } from './object-id.ts';
import { PackSet, type ObjectHandle } from './pack.ts';
import type { ObjectCipher } from './object-cipher.ts';
import { encodeLinks, isLinking, linksOf, sameLinks, type Link } from './object-links.ts';
import { release } from '../security/encryption.ts';
import { WriterRegistration } from './gc-guard.ts';
import type { ContentFetchOptions, ContentSource } from './promised-content.ts';

export type { ObjectHandle } from './pack.ts';

export const ObjectType = { blob: 1, chunk: 2, manifest: 3, tree: 4, commit: 5, tag: 6 } as const;
export type ObjectTypeName = keyof typeof ObjectType;
const TYPE_NAMES = new Map<number, ObjectTypeName>(
  Object.entries(ObjectType).map(([name, code]) => [code, name as ObjectTypeName]),
);

export const HEADER_SIZE = 16;
/** Object lookups in flight at once when finding which of many objects are absent. */
const PRESENCE_LOOKUPS = 16;
const MAGIC = 0x314f474d; // "MGO1" read as little-endian uint32

export interface StoredObject {
  readonly type: ObjectTypeName;
  readonly data: Buffer;
  /** Its delta chain depth: 0 when stored whole (odb/delta.ts). */
  readonly depth?: number;
}

export interface ObjectInfo {
  readonly type: ObjectTypeName;
  readonly codec: Codec;
  readonly rawSize: number;
  readonly storedSize: number;
}

export function encodeHeader(type: ObjectTypeName, codec: Codec, rawSize: number): Buffer {
  const header = Buffer.alloc(HEADER_SIZE);
  header.writeUInt32LE(MAGIC, 0);
  header[4] = ObjectType[type];
  header[5] = codec;
  header.writeBigUInt64LE(BigInt(rawSize), 8);
  return header;
}

export function decodeHeader(
  id: ObjectId,
  header: Uint8Array,
): { type: ObjectTypeName; codec: Codec; rawSize: number } {
  if (header.length < HEADER_SIZE) throw corruptObject(id, 'truncated header');
  const view = Buffer.from(header.buffer, header.byteOffset, HEADER_SIZE);
  if (view.readUInt32LE(0) !== MAGIC) throw corruptObject(id, 'bad magic');
  const type = TYPE_NAMES.get(view[4] ?? 0);
  if (!type) throw corruptObject(id, `unknown object type ${view[4]}`);
  const codec = view[5] ?? 255;
  if (codec > Codec.sealed) throw corruptObject(id, `unknown codec ${codec}`);
  if (view[6] !== 0 || view[7] !== 0) throw corruptObject(id, 'reserved header bytes are not zero');
  const rawSize = Number(view.readBigUInt64LE(8));
  return { type, codec: codec as Codec, rawSize };
}

/**
 * Blobs and chunks are both plain file bytes named by their SHA-256, so the
 * same bytes stored as one (a small file) and needed as the other (a chunk of
 * a file added with a lower chunk threshold or with --no-chunking) share one
 * object file: whichever was stored first serves both.
 */
export function isFileContent(type: ObjectTypeName): boolean {
  return type === 'blob' || type === 'chunk';
}

export interface WriteResult {
  readonly id: ObjectId;
  /** False when the object was already stored (deduplicated). */
  readonly written: boolean;
  readonly storedSize: number;
}

export class ObjectStore {
  readonly objectsDir: string;
  readonly tmpDir: string;
  readonly dirSync = new DirectorySync();
  readonly #cache = new LRUCache<ObjectId, StoredObject>({
    maxSize: 64 * 1024 * 1024,
    sizeCalculation: (value) => Math.max(1, value.data.length),
  });
  /** Objects being written (`rememberStoring`), readable meanwhile, and their writes. */
  readonly #storing = {
    objects: new Map<ObjectId, StoredObject>(),
    writes: new Set<Promise<void>>(),
  };

  /**
   * Packed objects (`objects/pack/`, pack.ts). Every read looks for a loose
   * object first and then in the packs: repack writes a pack before it
   * deletes the loose files, so an object is always in one place or the other.
   */
  readonly packs: PackSet;

  /**
   * Commits of a shallow clone whose parents were not fetched (the
   * repository's `shallow` file): read as root commits (repo/tree-ops.ts).
   */
  shallow: ReadonlySet<ObjectId> = new Set();

  /**
   * This process's registration as a writer, made before its first write or
   * existence check, so that gc never deletes an object it is about to
   * reference (gc-guard.ts).
   */
  readonly writer: WriterRegistration;

  /**
   * Where absent chunks come from in a partial clone (promised-content.ts);
   * undefined in a complete repository, where an absent object is missing.
   */
  contentSource: ContentSource | undefined;

  /**
   * An encrypted repository's keys (object-cipher.ts): IDs are keyed and
   * every payload written is sealed. Undefined in a plain repository.
   */
  cipher: ObjectCipher | undefined;

  /** Set for an encrypted repository, unlocked or not: no record is written without `cipher`. */
  encrypted = false;

  constructor(objectsDir: string, tmpDir: string) {
    this.objectsDir = objectsDir;
    this.tmpDir = tmpDir;
    this.packs = new PackSet(path.join(objectsDir, 'pack'));
    this.writer = new WriterRegistration(objectsDir);
  }

  /** The ID an object of `type` with these bytes has in this store (keyed when encrypted). */
  idOf(type: ObjectTypeName, data: Uint8Array): ObjectId {
    return this.cipher ? this.cipher.idOf(type, data) : objectIdOf(type, data);
  }

  /** The ID in this store of content whose plain ID (object-id.ts) is `plainId`. */
  keyId(plainId: ObjectId): ObjectId {
    return this.cipher ? this.cipher.keyId(plainId) : plainId;
  }

  /**
   * The parts of the record to store for an object: its header and its
   * payload, sealed in an encrypted store (object-cipher.ts). Every writer
   * of records goes through here.
   */
  recordParts(
    id: ObjectId,
    type: ObjectTypeName,
    codec: Codec,
    rawSize: number,
    payload: readonly Uint8Array[],
    /** A linking type's content (object-links.ts), when the payload is compressed: its links go outside the seal. */
    data?: Uint8Array,
  ): Uint8Array[] {
    if (this.cipher === undefined) {
      if (this.encrypted) {
        throw new MediaGitError(
          'LOCKED',
          `object ${id} cannot be written: the repository is not unlocked`,
          {
            kind: 'internal',
          },
        );
      }
      return [encodeHeader(type, codec, rawSize), ...payload];
    }
    const header = encodeHeader(type, Codec.sealed, rawSize);
    if (codec === Codec.sealed) return [header, ...payload]; // sealed already, and verified by the caller
    let links: Buffer | undefined;
    if (isLinking(type)) {
      if (data === undefined) {
        throw new MediaGitError('INTERNAL', `object ${id}: a ${type} is sealed with its links`, {
          kind: 'internal',
        });
      }
      links = encodeLinks(
        linksOf(type, id, Buffer.from(data.buffer, data.byteOffset, data.byteLength)),
      );
    }
    return [header, ...this.cipher.sealPayload(id, header, codec, payload, links)];
  }

  /**
   * Frees the memory of record parts `recordParts` sealed, once they are
   * written (security/encryption.ts, `release`); nothing in a plain store, whose parts are
   * the caller's.
   */
  releaseRecord(parts: readonly Uint8Array[]): void {
    if (this.cipher) release(parts);
  }

  /**
   * A stored record's header and the payload to decode: opened when sealed.
   * OBJECT_CORRUPT naming `id` when a sealed payload does not open, when this
   * store has no key for it, or when an encrypted store holds a payload in
   * clear.
   */
  decodeStored(id: ObjectId, record: Buffer, into?: Buffer): DecodedStored {
    return decodeStored(this.cipher, id, record, into);
  }

  /**
   * A blob's SHA-256: its ID in a plain store; in an encrypted one (keyed
   * IDs) read and hashed, once per process.
   */
  async blobSha256(id: ObjectId): Promise<ObjectId> {
    if (this.cipher === undefined) return id;
    // Made on first use: an LRU this size costs ~10 ms to build, and only
    // encrypted repositories need it.
    this.#blobSha256 ??= new LRUCache<ObjectId, ObjectId>({ max: 65536 });
    let sha = this.#blobSha256.get(id);
    if (sha === undefined) {
      sha = objectIdOf('blob', await this.readTyped(id, 'blob'));
      this.#blobSha256.set(id, sha);
    }
    return sha;
  }

  #blobSha256: LRUCache<ObjectId, ObjectId> | undefined;

  pathOf(id: ObjectId): string {
    return path.join(this.objectsDir, id.slice(0, 2), id.slice(2));
  }

  /**
   * Whether `id` is stored. Callers use the answer to skip writing it, so the
   * process registers as a writer first (gc-guard.ts).
   */
  async has(id: ObjectId): Promise<boolean> {
    await this.writer.register();
    if (this.#cache.has(id)) return true;
    return (await this.#isLoose(id)) || (await this.packs.find(id)) !== undefined;
  }

  /**
   * Makes sure the file content objects `ids` are stored, fetching the absent
   * ones from the content source in one batch (a partial clone); a no-op
   * without a source. Callers that are about to change the working tree call
   * it first, so an unreachable remote fails them before anything changed.
   */
  async ensureContent(ids: Iterable<ObjectId>, options: ContentFetchOptions = {}): Promise<void> {
    const source = this.contentSource;
    if (source === undefined) return;
    const absent = await this.absentAmong(new Set(ids));
    if (absent.length > 0) await source.fetch(absent, options);
  }

  /** Which of `ids` are not stored here, in their order (looked up several at a time). */
  async absentAmong(ids: Iterable<ObjectId>): Promise<ObjectId[]> {
    const list = [...ids];
    if (list.length === 0) return [];
    await this.writer.register();
    // One listing of objects/ first: an object whose fan-out folder is not
    // there is not loose. A partial clone's store keeps nearly everything in
    // packs, so this spares hundreds of file-system calls before a checkout
    // (a folder made after the listing costs at most a needless fetch).
    const folders = new Set(await fs.readdir(this.objectsDir).catch(() => []));
    const notLoose: ObjectId[] = [];
    await eachLimited(list, PRESENCE_LOOKUPS, async (id) => {
      if (this.#cache.has(id)) return;
      if (folders.has(id.slice(0, 2)) && (await this.#isLoose(id))) return;
      notLoose.push(id);
    });
    // Then the packs, with one listing of their folder for all of them.
    const packed = await this.packs.findMany(notLoose);
    const absent = new Set(notLoose.filter((_, i) => packed[i] === undefined));
    return list.filter((id) => absent.has(id));
  }

  async #isLoose(id: ObjectId): Promise<boolean> {
    try {
      await fs.access(this.pathOf(id));
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Makes sure the manifests of `files` are stored, fetching the absent ones
   * in one request (a filtered clone leaves them on the remote; a failure
   * names the files whose manifests were absent); a no-op without a content
   * source. Readers of many manifests call it first, so that they are not
   * fetched one request each.
   */
  async ensureMetadata(
    files: Iterable<{ readonly id: ObjectId; readonly path: string }>,
    options: Pick<ContentFetchOptions, 'signal' | 'durableAtFlush'> = {},
  ): Promise<void> {
    const source = this.contentSource;
    if (source?.fetchObjects === undefined) return;
    const pathOf = new Map<ObjectId, string>();
    for (const file of files) if (!pathOf.has(file.id)) pathOf.set(file.id, file.path);
    const ids = await this.absentAmong(pathOf.keys());
    if (ids.length === 0) return;
    await source.fetchObjects(ids, { ...options, files: ids.map((id) => pathOf.get(id)!) });
  }

  /**
   * An absent object asked for from the content source: true when it now is
   * stored. Only `read` (and `readTyped`) fall back so: content readers. The
   * raw accessors `open` and `readRecord`, which maintenance (gc, fsck) and
   * push use, never fetch: they see what is here.
   */
  async #fetchPromised(id: ObjectId): Promise<boolean> {
    const source = this.contentSource;
    if (source === undefined || !isObjectId(id)) return false;
    // Any type: a manifest has no other way to arrive.
    if (source.fetchObjects) await source.fetchObjects([id], {});
    else await source.fetch([id], {});
    return this.has(id);
  }

  /**
   * Opens an object's stored bytes (header + payload), loose or packed, for
   * readers that verify it themselves (file-read.ts); OBJECT_MISSING when absent.
   */
  async open(id: ObjectId): Promise<ObjectHandle> {
    if (!isObjectId(id)) throw missingObject(id);
    try {
      return await fs.open(this.pathOf(id), 'r');
    } catch (error) {
      if (!hasErrnoCode(error, 'ENOENT')) throw error;
    }
    const packed = await this.packs.open(id);
    if (!packed) throw this.packs.notFound(id, missingObject(id));
    return packed;
  }

  /**
   * Stores `data` as an object of `type` unless it is already stored.
   * `contentClass` steers compression; by default a sample is classified.
   */
  async write(
    type: ObjectTypeName,
    data: Uint8Array,
    contentClass?: ContentClass,
    knownId?: ObjectId,
    policy: CompressionPolicy = 'auto',
  ): Promise<WriteResult> {
    const id = knownId ?? this.idOf(type, data);
    if (await this.has(id)) return { id, written: false, storedSize: 0 };
    const encoded =
      policy === 'auto'
        ? await encode(data, contentClass ?? classifyContent(data))
        : await encodeWithPolicy(data, policy);
    return this.#writeRecord(
      id,
      this.recordParts(id, type, encoded.codec, data.length, [encoded.payload], data),
    );
  }

  /**
   * An object's stored bytes (header + payload), loose or packed, unverified:
   * read into the start of `into` when they fit there (a push fills its pack
   * buffer so), else into a new buffer.
   */
  async readRecord(id: ObjectId, into?: Buffer): Promise<Buffer> {
    if (!isObjectId(id)) throw missingObject(id);
    try {
      return into ? await readWholeFile(this.pathOf(id), into) : await fs.readFile(this.pathOf(id));
    } catch (error) {
      if (!hasErrnoCode(error, 'ENOENT')) throw error;
    }
    const record = await this.packs.readRecord(id, into);
    if (!record) throw this.packs.notFound(id, missingObject(id));
    return record;
  }

  /**
   * The length of an object's stored record (what `readRecord` returns),
   * from its loose file's size or its pack's index, without reading it; or
   * undefined when it is not stored.
   */
  async recordSize(id: ObjectId): Promise<number | undefined> {
    if (!isObjectId(id)) return undefined;
    try {
      return (await fs.stat(this.pathOf(id))).size;
    } catch (error) {
      if (!hasErrnoCode(error, 'ENOENT')) throw error;
    }
    return (await this.packs.find(id))?.entry.length;
  }

  /** Reads and verifies an object; throws OBJECT_MISSING or OBJECT_CORRUPT naming it. */
  async read(id: ObjectId): Promise<StoredObject> {
    return this.#read(id, 0);
  }

  /**
   * `read` without the content source: an object absent from a partial
   * clone is OBJECT_MISSING here, not fetched (for maintenance that looks
   * at what is stored, such as `stats`).
   */
  async readHere(id: ObjectId): Promise<StoredObject> {
    return this.#read(id, 0, false);
  }

  async #read(id: ObjectId, nesting: number, fetch = true): Promise<StoredObject> {
    const cached = this.#cache.get(id) ?? this.#storing.objects.get(id);
    if (cached) return cached;
    if (!isObjectId(id)) throw missingObject(id);
    let file: Buffer;
    try {
      file = await fs.readFile(this.pathOf(id));
    } catch (error) {
      if (!hasErrnoCode(error, 'ENOENT')) throw error;
      const record = await this.packs.readRecord(id);
      if (!record) {
        if (fetch && (await this.#fetchPromised(id))) return this.#read(id, nesting);
        throw this.packs.notFound(id, missingObject(id));
      }
      file = record;
    }
    const object = await this.#decodeVerified(id, file, nesting);
    if (object.type !== 'chunk' && object.type !== 'blob') this.#cache.set(id, object);
    return object;
  }

  /**
   * Keeps objects just stored here, decoded and verified by the caller (a
   * fetch's commits, trees and manifests), so the checkout that follows
   * reads them from memory instead of reading and hashing them again. Only
   * for objects already stored durably: `has` trusts this cache.
   */
  remember(objects: Iterable<readonly [ObjectId, { type: ObjectTypeName; data: Buffer }]>): void {
    for (const [id, object] of objects) {
      if (object.type === 'chunk' || object.type === 'blob') continue;
      this.#cache.set(id, { type: object.type, data: object.data, depth: 0 });
    }
  }

  /**
   * Decodes an object's stored bytes (header + payload, as in a loose file or
   * a pack record) and verifies them as a read does; a delta's base is read
   * from this store, verified too.
   */
  async decodeVerified(id: ObjectId, record: Buffer): Promise<StoredObject> {
    return this.#decodeVerified(id, record, 0);
  }

  async #decodeVerified(id: ObjectId, record: Buffer, nesting: number): Promise<StoredObject> {
    const { type, codec, rawSize, payload, links } = this.decodeStored(id, record);
    let data: Buffer;
    let depth = 0;
    if (codec === Codec.delta) {
      const delta = parseDeltaPayload(id, payload);
      depth = delta.depth;
      // Each step of a chain is one level deeper; a chain can only be longer
      // than the limit if its objects were tampered with.
      if (nesting >= MAX_DELTA_DEPTH) {
        throw corruptObject(id, `delta chain longer than ${MAX_DELTA_DEPTH}`);
      }
      let bases: Buffer[];
      try {
        bases = await Promise.all(
          delta.bases.map(async (base) => (await this.#read(base, nesting + 1)).data),
        );
      } catch (error) {
        if (error instanceof MediaGitError && error.code === 'OBJECT_MISSING') {
          throw corruptObject(id, `a delta base of it is missing: ${error.message}`, error);
        }
        throw error;
      }
      try {
        const dictionary = bases.length === 1 ? bases[0]! : Buffer.concat(bases);
        data = await decodeDelta(delta.frame, dictionary, rawSize);
      } catch (error) {
        throw corruptObject(id, 'delta does not decode against its bases', error);
      }
    } else {
      try {
        data = await decode(codec, payload, rawSize);
      } catch (error) {
        throw corruptObject(id, 'payload does not decompress', error);
      }
    }
    if (data.length !== rawSize) throw corruptObject(id, 'size does not match its header');
    if (this.idOf(type, data) !== id) throw corruptObject(id, 'content does not match its hash');
    if (links !== undefined) checkLinks(id, type, data, links);
    return { type, data, depth };
  }

  /**
   * Stores an object already encoded by the caller (a delta, or a payload
   * compressed off the main path) under its known ID, unless already stored.
   */
  async writeEncoded(
    type: ObjectTypeName,
    id: ObjectId,
    rawSize: number,
    encoded: Encoded,
  ): Promise<WriteResult> {
    if (await this.has(id)) return { id, written: false, storedSize: 0 };
    return this.#writeRecord(
      id,
      this.recordParts(id, type, encoded.codec, rawSize, [encoded.payload]),
    );
  }

  async #writeRecord(id: ObjectId, parts: readonly Uint8Array[]): Promise<WriteResult> {
    await writeFileAtomic(this.pathOf(id), parts, { tmpDir: this.tmpDir, dirSync: this.dirSync });
    const storedSize = parts.reduce((sum, part) => sum + part.length, 0);
    this.releaseRecord(parts);
    return { id, written: true, storedSize };
  }

  async readTyped(id: ObjectId, expected: ObjectTypeName): Promise<Buffer> {
    const object = await this.read(id);
    if (object.type !== expected && !(isFileContent(object.type) && isFileContent(expected))) {
      throw new MediaGitError(
        'OBJECT_TYPE',
        `object ${id} is a ${object.type}, not a ${expected}`,
        {
          data: { id, type: object.type, expected },
        },
      );
    }
    return object.data;
  }

  async info(id: ObjectId): Promise<ObjectInfo> {
    const handle = await this.open(id);
    try {
      const header = Buffer.alloc(HEADER_SIZE);
      const { bytesRead } = await handle.read(header, 0, HEADER_SIZE, 0);
      const decoded = decodeHeader(id, header.subarray(0, bytesRead));
      const stat = await handle.stat();
      return { ...decoded, storedSize: stat.size };
    } finally {
      await handle.close();
    }
  }

  /** Makes every object written so far durable (their directories fsynced). */
  async flush(): Promise<void> {
    // Each write leaves the set once done, a failed one once reported: a
    // flush that starts while another waits waits for the same writes.
    const writes = [...this.#storing.writes];
    const outcomes = await Promise.allSettled(writes);
    let failure: { reason: unknown } | undefined;
    outcomes.forEach((outcome, i) => {
      if (outcome.status === 'fulfilled') return;
      this.#storing.writes.delete(writes[i]!);
      failure ??= { reason: outcome.reason };
    });
    if (failure) throw failure.reason;
    await this.dirSync.flush();
  }

  /**
   * Objects whose durable write `stored` is still under way, decoded and
   * verified by the caller: read from memory meanwhile, but not counted as
   * stored (`has` says no until the write is done). `flush()` awaits the
   * write and throws its failure.
   */
  rememberStoring(
    objects: ReadonlyMap<ObjectId, { type: ObjectTypeName; data: Buffer }>,
    stored: Promise<void>,
  ): void {
    for (const [id, object] of objects) {
      if (object.type === 'chunk' || object.type === 'blob') continue;
      this.#storing.objects.set(id, { type: object.type, data: object.data, depth: 0 });
    }
    const settle = (): void => {
      for (const id of objects.keys()) this.#storing.objects.delete(id);
    };
    const tracked: Promise<void> = stored.then(
      () => {
        this.remember(objects);
        settle();
        this.#storing.writes.delete(tracked);
      },
      (error: unknown) => {
        settle();
        throw error;
      },
    );
    // Reported by flush(); until then a failure must not be unhandled.
    tracked.catch(() => undefined);
    this.#storing.writes.add(tracked);
  }

  /**
   * Lists every stored object ID once (for fsck and gc): loose ones, sorted,
   * then packed ones not also loose. Throws PACK_CORRUPT when a pack's index
   * cannot be read, rather than list less than is stored.
   */
  async *list(): AsyncGenerator<ObjectId> {
    const loose = new Set<ObjectId>();
    for await (const id of this.listLoose()) {
      loose.add(id);
      yield id;
    }
    for (const pack of await this.packs.all()) {
      for (const id of pack.ids()) {
        if (loose.has(id)) continue;
        loose.add(id);
        yield id;
      }
    }
  }

  /** IDs of stored objects starting with `prefix` (hex, 2 to 64 digits), loose or packed. */
  async idsWithPrefix(prefix: string): Promise<ObjectId[]> {
    if (!/^[0-9a-f]{2,64}$/.test(prefix)) return [];
    const found = new Set<ObjectId>();
    try {
      for (const rest of await fs.readdir(path.join(this.objectsDir, prefix.slice(0, 2)))) {
        const id = prefix.slice(0, 2) + rest;
        if (id.startsWith(prefix) && isObjectId(id)) found.add(id);
      }
    } catch (error) {
      if (!hasErrnoCode(error, 'ENOENT')) throw error;
    }
    for (const id of await this.packs.idsWithPrefix(prefix)) found.add(id);
    return [...found].sort();
  }

  /** Lists every loose object ID, sorted. */
  async *listLoose(): AsyncGenerator<ObjectId> {
    let fanouts: string[];
    try {
      fanouts = await fs.readdir(this.objectsDir);
    } catch {
      return;
    }
    for (const fanout of fanouts.sort()) {
      if (!/^[0-9a-f]{2}$/.test(fanout)) continue;
      // A repack may remove a folder it emptied between the two reads.
      const names = await fs.readdir(path.join(this.objectsDir, fanout)).catch((error: unknown) => {
        if (hasErrnoCode(error, 'ENOENT')) return [];
        throw error;
      });
      for (const rest of names.sort()) {
        const id = fanout + rest;
        if (isObjectId(id)) yield id;
      }
    }
  }
}

/** A stored record's header fields, and its payload as stored before any sealing. */
export interface DecodedStored {
  readonly type: ObjectTypeName;
  readonly codec: Codec;
  readonly rawSize: number;
  readonly payload: Buffer;
  /** A sealed linking object's links, as listed outside its seal (object-links.ts). */
  readonly links?: readonly Link[];
}

/**
 * Checks that the links listed outside an object's seal are exactly those
 * of its content: a pusher who hid a link from the server (so that its gc
 * would delete something still needed) is caught by the next reader.
 */
export function checkLinks(
  id: ObjectId,
  type: ObjectTypeName,
  data: Buffer,
  links: readonly Link[],
): void {
  if (!sameLinks(links, linksOf(type, id, data))) {
    throw corruptObject(id, 'the links listed outside its seal are not those of its content');
  }
}

/** ObjectStore.decodeStored, for readers that hold a cipher but no store (a worker thread). */
export function decodeStored(
  cipher: ObjectCipher | undefined,
  id: ObjectId,
  record: Buffer,
  /** Where an opened payload goes when it fits (a reused buffer other than `record`). */
  into?: Buffer,
): DecodedStored {
  const { type, codec, rawSize } = decodeHeader(id, record);
  const payload = record.subarray(HEADER_SIZE);
  if (codec === Codec.sealed) {
    if (cipher === undefined) {
      throw corruptObject(id, 'is encrypted, and this repository holds no key for it');
    }
    const opened = cipher.openPayload(
      id,
      record.subarray(0, HEADER_SIZE),
      payload,
      into,
      isLinking(type),
    );
    return { type, rawSize, ...opened };
  }
  if (cipher !== undefined) {
    throw corruptObject(id, 'is stored unencrypted in an encrypted repository');
  }
  return { type, codec, rawSize, payload };
}

/** A whole file, into the start of `into` when it fits there, else into a new buffer. */
async function readWholeFile(file: string, into: Buffer): Promise<Buffer> {
  const handle = await fs.open(file, 'r');
  try {
    const { size } = await handle.stat();
    if (size > into.length) return await handle.readFile();
    let done = 0;
    while (done < size) {
      const { bytesRead } = await handle.read(into, done, size - done, done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    return into.subarray(0, done);
  } finally {
    await handle.close();
  }
}
