/**
 * A bare repository seen through the storage interface (ARCHITECTURE.md §3):
 * what `mediagit serve` and local-path remotes read and write. Its keys are
 * the bare repository's own layout, so a bare repository made by
 * `mediagit init --bare` on a local disk is served as it is:
 *
 *   HEAD                    "ref: refs/heads/<branch>\n"
 *   config                  TOML (branch protection: branch.<name>.protect)
 *   refs/heads/<name>, refs/tags/<name>
 *                           "<id>\n"; an empty value is a deleted ref (a
 *                           tombstone, so that deleting is compare-and-swap too)
 *   objects/<2 hex>/<62 hex>
 *                           standalone object records (odb/record.ts)
 *   keys.json               an encrypted repository's key file (wrapped keys
 *                           only): its records are sealed, checked by format
 *                           (docs/encryption.md)
 *
 * Every ref change is a conditional put (`ifMatch` the ETag read, or
 * `ifNoneMatch: '*'`), so two server processes on one store never lose an
 * update. Objects are verified before they are stored and are immutable.
 */
import { createHash } from 'node:crypto';
import { parse as parseToml, stringify as stringifyToml } from 'smol-toml';
import { LRUCache } from 'lru-cache';
import { MediaGitError, missingObject } from '../errors.ts';
import type { StorageBackend } from '../storage/backend.ts';
import { HEADER_SIZE, decodeHeader, type ObjectTypeName } from '../odb/object-store.ts';
import { isObjectId, type ObjectId } from '../odb/object-id.ts';
import {
  badRecord,
  decodeRecord,
  decodeStoredPlain,
  type DecodedRecord,
  type RecordCheck,
} from '../odb/record.ts';
import { UploadHashes, type PackFeed, type PackOfFile } from './upload-hashes.ts';
import { Codec } from '../compression/codec.ts';
import { parseKeyFile, type KeyFile } from '../security/encryption.ts';
import { KEY_FILE } from '../repo/keys.ts';
import { assertBranchName, isValidRefName } from '../repo/refs.ts';
import type { ObjectReader } from './reachability.ts';
import {
  CloudPackWriter,
  checkDeclaredTable,
  cloudPackError,
  cloudPackKey,
  cloudPackTableOffset,
  encodeMultiIndex,
  MAX_CLOUD_PACK_BYTES,
  multiIndexKey,
  MultiIndex,
  parseCloudPack,
  parseCloudPackTable,
  type IndexedObject,
} from '../odb/cloud-pack.ts';
import { PACK_HEADER_SIZE, type PackEntry } from '../odb/pack.ts';
import { PackCatalog } from './pack-catalog.ts';
import {
  beingCollected,
  FENCE_MS,
  PendingCache,
  readDeleting,
  type DeletingList,
} from './gc-state.ts';

const HEAD_CONCURRENCY = 16;
/** More unpacked IDs than this are looked for loose with a listing, not HEADs. */
const LOOSE_LISTING_THRESHOLD = 32;
/** Keys a store returns per listing page (S3, Azure and GCS: 1,000). */
const LIST_PAGE_KEYS = 1000;
/** More pack names than this are looked for with a listing of `objects/pack/`, not HEADs. */
const PACK_LISTING_THRESHOLD = 4;
const PACK_PREFIX = 'objects/pack/';

export function objectKey(id: ObjectId): string {
  return `objects/${id.slice(0, 2)}/${id.slice(2)}`;
}

export interface RefValue {
  readonly id: ObjectId;
  readonly etag: string;
}

function misnamed(name: string, actual: string): MediaGitError {
  return new MediaGitError(
    'BAD_PACK',
    `pack ${name} was rejected: its record table names it ${actual}`,
    {
      kind: 'user',
      data: { name, actual },
    },
  );
}

/**
 * An uploaded pack that does not parse is the uploader's fault (400), not
 * the server's: the parser's PACK_CORRUPT (kind corrupt, which a server
 * answers with 500 for what it stores) becomes BAD_PACK.
 */
function rejectedUpload(name: string, error: unknown): unknown {
  if (!(error instanceof MediaGitError) || error.code !== 'PACK_CORRUPT') return error;
  const reason = typeof error.data['reason'] === 'string' ? error.data['reason'] : error.message;
  return new MediaGitError('BAD_PACK', `pack ${name} was rejected: ${reason}`, {
    kind: 'user',
    data: { name, reason },
    cause: error,
  });
}

function notUploaded(name: string): MediaGitError {
  return new MediaGitError('PACK_NOT_UPLOADED', `pack ${name} has not been uploaded`, {
    kind: 'user',
    data: { name, status: 409 },
  });
}

function isStorageError(error: unknown, code: string): boolean {
  return error instanceof MediaGitError && error.code === code;
}

/**
 * How `commitPacks` checks a pack this process did not verify itself (one
 * uploaded straight to the bucket through a signed URL, or through another
 * server):
 * - `full` reads it back and hashes every record against its ID;
 * - `table` reads only its header and record table (a few KiB) and checks
 *   the table against the pack's name and the records' framing. The record
 *   bytes are trusted to the writer that uploaded them and verified by every
 *   reader (fetch and clone hash each record), so a server does not touch the
 *   bytes of a direct upload. See docs/design.md, "Verifying direct uploads".
 */
export type UploadVerification = 'full' | 'table';

/**
 * A pack named in `commitPacks`: its name alone (the server reads its table
 * back), or with the record table its uploader made (the server checks the
 * table against the name and learns the pack's objects without reading it).
 */
export type PackCommit =
  string | { readonly name: string; readonly size: number; readonly table: Uint8Array };

export function packCommitName(pack: PackCommit): string {
  return typeof pack === 'string' ? pack : pack.name;
}

/** Bytes of a pack verified between turns of the event loop. */
const VERIFY_SLICE_BYTES = 4 * 1024 * 1024;

export class BackendRepo implements ObjectReader {
  readonly backend: StorageBackend;
  readonly #metadata = new LRUCache<ObjectId, DecodedRecord>({
    maxSize: 32 * 1024 * 1024,
    sizeCalculation: (value) => Math.max(1, value.data.length),
  });

  readonly catalog: PackCatalog;
  /** What server gc found unreachable (gc-state.ts): steers deduplication and reads. */
  readonly pending: PendingCache;
  /** Packs this process verified (their entries), so a commit does not read them back. */
  readonly #verified = new LRUCache<string, PackEntry[]>({ max: 4096 });

  readonly #verifyUploads: UploadVerification;
  /** When the latest read of gc/deleting.json that found none started (fencedWrite). */
  #noSweepSince: number | undefined;
  /** Set once a listing of `objects/pack/` ran too long to be worth repeating. */
  #tooManyPacksToList = false;

  constructor(backend: StorageBackend, options: { verifyUploads?: UploadVerification } = {}) {
    this.backend = backend;
    this.catalog = new PackCatalog(backend);
    this.pending = new PendingCache(backend);
    this.#verifyUploads = options.verifyUploads ?? 'full';
  }

  /**
   * Makes an empty bare repository in `backend` (config, then HEAD, which
   * marks it as a repository), or finds one there and changes nothing.
   */
  static async initialize(backend: StorageBackend, branch: string): Promise<{ created: boolean }> {
    assertBranchName(branch);
    if (await backend.head('HEAD')) return { created: false };
    const config = stringifyToml({ core: { formatVersion: 1, bare: true } });
    try {
      await backend.put('config', Buffer.from(`${config}\n`), { ifNoneMatch: '*' });
    } catch (error) {
      if (!isStorageError(error, 'STORAGE_PRECONDITION_FAILED')) throw error;
    }
    try {
      await backend.put('HEAD', Buffer.from(`ref: refs/heads/${branch}\n`), { ifNoneMatch: '*' });
      return { created: true };
    } catch (error) {
      if (isStorageError(error, 'STORAGE_PRECONDITION_FAILED')) return { created: false };
      throw error;
    }
  }

  /** True when the store holds a repository (its HEAD exists). */
  async exists(): Promise<boolean> {
    return (await this.backend.head('HEAD').catch(() => undefined)) !== undefined;
  }

  async has(id: ObjectId): Promise<boolean> {
    return (await this.missing([id])).length === 0;
  }

  /**
   * Which of `ids` are stored nowhere (in no loaded or newly listed pack
   * index, not loose), in the order given. One listing of the indexes at
   * most; loose objects (written by older servers) are looked for with
   * `#looseAmong`. With `pendingAsAbsent`, objects server gc found
   * unreachable (gc-state.ts) count as absent, so that a client deciding
   * what to upload sends fresh copies instead of building on them.
   */
  async missing(
    ids: readonly ObjectId[],
    options: { pendingAsAbsent?: boolean } = {},
  ): Promise<ObjectId[]> {
    const since = performance.now();
    const pending = options.pendingAsAbsent ? await this.pending.view() : undefined;
    const avoid = pending?.packs;
    const settled = (found: IndexedObject | undefined): boolean =>
      found !== undefined && !(avoid?.has(found.pack) ?? false);
    const candidates = ids.filter(
      (id) =>
        isObjectId(id) &&
        !(pending === undefined && this.#metadata.has(id)) &&
        !settled(this.catalog.peek(id, avoid)),
    );
    const absent = new Set<ObjectId>(ids.filter((id) => !isObjectId(id)));
    if (candidates.length > 0) {
      const located = await this.catalog.locate(candidates, since, avoid);
      const unpacked = candidates.filter((_, i) => !settled(located[i]));
      const loose = await this.#looseAmong(unpacked.filter((id) => !pending?.objects.has(id)));
      for (const id of unpacked) if (!loose.has(id)) absent.add(id);
    }
    return ids.filter((id) => absent.has(id));
  }

  /**
   * Runs `write` (a ref update, an LFS object's key: anything that makes
   * `ids` reachable) unless a gc sweep in progress is deleting the only copy
   * of one of them: then it throws GC_COLLECTING and writes nothing. A write
   * that took longer than FENCE_MS is checked again afterwards and undone
   * (`undo`) if a sweep started meanwhile (gc-state.ts, the fence).
   */
  async fencedWrite<T>(
    ids: readonly ObjectId[],
    write: () => Promise<T>,
    undo: () => Promise<void>,
    packs: readonly string[] = [],
  ): Promise<T> {
    const lostIn = async (deleting: DeletingList | undefined): Promise<string | undefined> => {
      if (deleting === undefined) return undefined;
      return packs.find((pack) => deleting.packs.includes(pack)) ?? this.#lostIn(deleting, ids);
    };
    // A read of gc/deleting.json a moment old serves (a push's pack commit
    // and ref update come one after the other); the bound counts from it.
    // Only an absent one is remembered: a sweep seen is always looked at again.
    const cached =
      this.#noSweepSince !== undefined && performance.now() - this.#noSweepSince < FENCE_MS / 4;
    const started = cached ? this.#noSweepSince! : performance.now();
    const deleting = cached ? undefined : await readDeleting(this.backend);
    if (!cached) this.#noSweepSince = deleting === undefined ? started : undefined;
    const lost = await lostIn(deleting);
    if (lost !== undefined) throw beingCollected(lost);
    const result = await write();
    if (performance.now() - started > FENCE_MS) {
      const lostLate = await lostIn(await readDeleting(this.backend));
      if (lostLate !== undefined) {
        await undo();
        throw beingCollected(lostLate);
      }
    }
    return result;
  }

  /** An ID of `ids` whose every copy the sweep `deleting` removes, or undefined. */
  async #lostIn(deleting: DeletingList, ids: readonly ObjectId[]): Promise<ObjectId | undefined> {
    const packs = new Set(deleting.packs);
    const loose = new Set(deleting.objects);
    const since = performance.now();
    const located = await this.catalog.locate(ids, since, packs);
    const unpacked = ids.filter((_, i) => located[i] === undefined || packs.has(located[i]!.pack));
    if (unpacked.length === 0) return undefined;
    const kept = await this.#looseAmong(unpacked.filter((id) => !loose.has(id)));
    return unpacked.find((id) => !kept.has(id));
  }

  /** The object's type from its header, or undefined when it is not stored. */
  async typeOf(id: ObjectId): Promise<ObjectTypeName | undefined> {
    return (await this.header(id))?.type;
  }

  /** The object's header (type, codec, size), or undefined when it is not stored. */
  async header(id: ObjectId): Promise<ReturnType<typeof decodeHeader> | undefined> {
    if (!isObjectId(id)) return undefined;
    const bytes = await this.#readStored(id, HEADER_SIZE);
    return bytes === undefined ? undefined : decodeHeader(id, bytes);
  }

  async getRecord(id: ObjectId): Promise<Buffer> {
    if (!isObjectId(id)) throw missingObject(id);
    const record = await this.#readStored(id);
    if (record === undefined) throw missingObject(id);
    return record;
  }

  /**
   * The stored record of `id` (or its first `prefix` bytes), packed or loose,
   * or undefined. Packs known in memory first (where new objects are), then
   * the loose key, then the indexes listed again.
   */
  async #readStored(id: ObjectId, prefix?: number): Promise<Buffer | undefined> {
    const since = performance.now();
    const fromPack = (where: IndexedObject): Promise<Buffer> =>
      this.catalog.readRange(
        where.pack,
        where.offset,
        Math.min(where.length, prefix ?? where.length),
      );
    // A pack found gone (gc deleted it after copying what it held that
    // lives) makes the indexes be listed again.
    const fromPackOrGone = async (where: IndexedObject): Promise<Buffer | undefined> => {
      try {
        return await fromPack(where);
      } catch (error) {
        if (!isStorageError(error, 'STORAGE_NOT_FOUND')) throw error;
        this.catalog.dropPack(where.pack);
        return undefined;
      }
    };
    const known = this.catalog.peek(id);
    if (known) {
      const bytes = await fromPackOrGone(known);
      if (bytes) return bytes;
    }
    try {
      const bytes =
        prefix === undefined
          ? await this.backend.get(objectKey(id))
          : await this.backend.getRange(objectKey(id), 0, prefix);
      return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    } catch (error) {
      if (!isStorageError(error, 'STORAGE_NOT_FOUND')) throw error;
    }
    const [found] = await this.catalog.locate([id], since);
    if (!found) return undefined;
    const bytes = await fromPackOrGone(found);
    if (bytes) return bytes;
    const [again] = await this.catalog.locate([id], performance.now());
    return again ? fromPackOrGone(again) : undefined;
  }

  /**
   * Which of `ids` are stored loose (`objects/xx/…`, written by older
   * servers). On local storage, and for a few IDs, with a HEAD each, 16 at
   * a time. On a remote store, for more, one listing of `objects/` usually
   * costs far fewer requests (a cloud root keeps its objects in packs: a
   * 1 GiB push asked ~450 HEADs, each a signed round trip). The listing
   * stops, and HEADs are used after all, once it has read as many pages as
   * the HEADs would take rounds.
   */
  async #looseAmong(ids: readonly ObjectId[]): Promise<Set<ObjectId>> {
    const found = new Set<ObjectId>();
    if (ids.length === 0) return found;
    if (this.backend.capabilities.remote && ids.length > LOOSE_LISTING_THRESHOLD) {
      const wanted = new Set(ids);
      const budget = Math.ceil(ids.length / HEAD_CONCURRENCY) * LIST_PAGE_KEYS;
      let seen = 0;
      for await (const key of this.backend.list('objects/')) {
        if (++seen > budget) break;
        const match = /^objects\/([0-9a-f]{2})\/([0-9a-f]{62})$/.exec(key);
        const id = match ? `${match[1]}${match[2]}` : undefined;
        if (id !== undefined && wanted.has(id)) found.add(id);
      }
      if (seen <= budget) return found;
      found.clear();
    }
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(HEAD_CONCURRENCY, ids.length) }, async () => {
        for (let i = next++; i < ids.length; i = next++) {
          if ((await this.backend.head(objectKey(ids[i]!))) !== undefined) found.add(ids[i]!);
        }
      }),
    );
    return found;
  }

  /** Where each ID is: a pack (name, offset, length), 'loose', or undefined (nowhere). */
  async locate(ids: readonly ObjectId[]): Promise<(IndexedObject | 'loose' | undefined)[]> {
    const avoid = (await this.pending.view()).packs;
    const packed = await this.catalog.locate(
      ids.filter((id) => isObjectId(id)),
      performance.now(),
      avoid,
    );
    const byId = new Map<ObjectId, IndexedObject | undefined>();
    ids.filter((id) => isObjectId(id)).forEach((id, i) => byId.set(id, packed[i]));
    const out: (IndexedObject | 'loose' | undefined)[] = ids.map((id) => byId.get(id));
    const loose = await this.#looseAmong(
      ids.filter((id, i) => out[i] === undefined && isObjectId(id)),
    );
    ids.forEach((id, i) => {
      if (loose.has(id)) out[i] = 'loose';
    });
    return out;
  }

  /**
   * Verifies an uploaded cloud pack (framing, and every record decoded and
   * hashed to its ID) and stores it under its name, not yet indexed: its
   * objects become visible with `commitPacks`. A pack already stored under
   * that name is kept (names are checksums of the record table).
   */
  async storePack(name: string, bytes: Uint8Array, file?: PackOfFile): Promise<PackEntry[]> {
    const feed = file === undefined ? undefined : await this.uploadHashes.feed(file);
    const key = cloudPackKey(name);
    // Written while it is verified: the store's write and flush overlap the
    // hashing (each took tens of ms per 48 MiB, one after the other). Stored
    // but not committed, a pack is not visible; one that fails is deleted,
    // and one a crash leaves unverified is checked at commit time, as a
    // direct upload is. False: a copy was there already, and is kept.
    const stored = this.backend.put(key, bytes, { ifNoneMatch: '*' }).then(
      () => true,
      (error: unknown) => {
        if (isStorageError(error, 'STORAGE_PRECONDITION_FAILED')) return false;
        throw error;
      },
    );
    stored.catch(() => undefined);
    let entries: PackEntry[];
    try {
      entries = await this.#verifyPack(name, bytes, feed);
    } catch (error) {
      feed?.fail();
      if (await stored.catch(() => false)) await this.backend.delete(key);
      throw error;
    }
    // Its bytes hashed by then (on another thread: upload-hashes.ts).
    await feed?.done();
    if (!(await stored)) {
      // A copy is there (a retry, or a direct upload not yet checked): check
      // it at commit time like any pack not verified by this process.
      this.#verified.delete(name);
      return entries;
    }
    this.#verified.set(name, entries);
    this.catalog.noteSize(name, bytes.length);
    return entries;
  }

  async #verifyPack(name: string, bytes: Uint8Array, feed?: PackFeed): Promise<PackEntry[]> {
    const what = `${this.backend.url}/${cloudPackKey(name)}`;
    let parsed: ReturnType<typeof parseCloudPack>;
    try {
      parsed = parseCloudPack(bytes, what);
    } catch (error) {
      throw rejectedUpload(name, error);
    }
    const { name: actual, entries } = parsed;
    if (actual !== name) throw misnamed(name, actual);
    const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let sinceYield = 0;
    for (const entry of entries) {
      // Hashing a 48 MiB pack takes tens of ms: other requests (a pusher's
      // chunks/check) are answered in between, every few MiB.
      if (sinceYield >= VERIFY_SLICE_BYTES) {
        sinceYield = 0;
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
      sinceYield += entry.length;
      const record = view.subarray(entry.offset, entry.offset + entry.length);
      const check = await this.recordCheck(record);
      const object = await decodeRecord(entry.id, record, undefined, check);
      // A plain chunk of an LFS object arriving in order: into its SHA-256 (upload-hashes.ts).
      if (feed && check === undefined && object.type === 'chunk')
        feed.update(entry.id, object.data);
    }
    return entries;
  }

  /**
   * Verifies a pack already in the store (whole, or its table only; see
   * `UploadVerification`). A pack that fails is deleted.
   */
  async #verifyStoredPack(name: string): Promise<PackEntry[]> {
    const key = cloudPackKey(name);
    const read = async <T>(step: () => Promise<T>): Promise<T> => {
      try {
        return await step();
      } catch (error) {
        if (isStorageError(error, 'STORAGE_NOT_FOUND')) throw notUploaded(name);
        throw error;
      }
    };
    // What fails verification is deleted: nothing of it ever becomes visible.
    const verified = async <T>(check: () => Promise<T> | T): Promise<T> => {
      try {
        return await check();
      } catch (error) {
        await this.backend.delete(key);
        throw rejectedUpload(name, error);
      }
    };
    if (this.#verifyUploads === 'full') {
      const bytes = await read(() => this.backend.get(key));
      return verified(() => this.#verifyPack(name, bytes));
    }
    const what = `${this.backend.url}/${key}`;
    const [head, header] = await read(() =>
      Promise.all([this.backend.head(key), this.backend.getRange(key, 0, PACK_HEADER_SIZE)]),
    );
    if (head === undefined) throw notUploaded(name);
    const tableAt = await verified(() => cloudPackTableOffset(header, head.size, what));
    const tail = await read(() => this.backend.getRange(key, tableAt, head.size));
    return verified(() => {
      const { name: actual, entries } = parseCloudPackTable(tail, tableAt, what);
      if (actual !== name) throw misnamed(name, actual);
      return entries;
    });
  }

  /**
   * Which of these packs are stored, and their sizes where known: with a
   * HEAD each, or, on a remote store and for more than a few, with one
   * listing of `objects/pack/` (existence only). A listing that runs past
   * what the HEADs would cost in rounds stops, HEADs answer, and this
   * process lists no more (a repository's packs only grow).
   */
  async storedPacks(names: readonly string[]): Promise<Map<string, number | undefined>> {
    const found = new Map<string, number | undefined>();
    if (names.length === 0) return found;
    if (
      this.backend.capabilities.remote &&
      names.length > PACK_LISTING_THRESHOLD &&
      !this.#tooManyPacksToList
    ) {
      const wanted = new Set(names);
      const budget = Math.ceil(names.length / HEAD_CONCURRENCY) * LIST_PAGE_KEYS;
      let seen = 0;
      for await (const key of this.backend.list(PACK_PREFIX)) {
        if (++seen > budget) break;
        const name = /^objects\/pack\/pack-([0-9a-f]{64})\.pack$/.exec(key)?.[1];
        if (name !== undefined && wanted.has(name)) found.set(name, undefined);
      }
      if (seen <= budget) return found;
      this.#tooManyPacksToList = true;
      found.clear();
    }
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(HEAD_CONCURRENCY, names.length) }, async () => {
        for (let i = next++; i < names.length; i = next++) {
          const head = await this.backend.head(cloudPackKey(names[i]!));
          if (head !== undefined) found.set(names[i]!, head.size);
        }
      }),
    );
    return found;
  }

  /**
   * Makes the objects of stored packs visible, then writes one multi-pack
   * index naming them all. A pack this process did not verify itself (it
   * went straight to the bucket, or through another server) is checked
   * first: with `full`, read back and every record hashed; with `table`,
   * from the record table its uploader declares (checked against the
   * pack's name; the pack is only confirmed stored, with one listing for
   * many) or, when none is declared, from the table read back. A pack that
   * fails is refused (and deleted when its stored bytes are at fault):
   * nothing of it becomes visible.
   */
  async commitPacks(packs: readonly PackCommit[]): Promise<{ index: string; objects: number }> {
    const entriesOf = new Map<string, PackEntry[]>();
    const declared: { name: string; size: number }[] = [];
    /** Verified by this process earlier: still to be confirmed stored. */
    const remembered: string[] = [];
    for (const pack of packs) {
      const name = packCommitName(pack);
      const known = this.#verified.get(name);
      if (known) {
        entriesOf.set(name, known);
        remembered.push(name);
      } else if (typeof pack !== 'string' && this.#verifyUploads === 'table') {
        const what = `${this.backend.url}/${cloudPackKey(name)}`;
        try {
          entriesOf.set(name, checkDeclaredTable(name, pack.size, pack.table, what));
        } catch (error) {
          throw new MediaGitError(
            'BAD_PACK',
            `pack ${name} was rejected: ${error instanceof Error ? error.message : String(error)}`,
            { kind: 'user', data: { name }, cause: error },
          );
        }
        declared.push({ name, size: pack.size });
      }
    }
    if (declared.length > 0) {
      const stored = await this.storedPacks(declared.map((d) => d.name));
      for (const { name, size } of declared) {
        if (!stored.has(name)) throw notUploaded(name);
        const storedSize = stored.get(name);
        if (storedSize !== undefined && storedSize !== size) {
          // Not the pack its table describes: delete it (a rerun uploads it again).
          await this.backend.delete(cloudPackKey(name));
          throw cloudPackError(
            `${this.backend.url}/${cloudPackKey(name)}`,
            `it is ${storedSize} bytes, its record table says ${size}`,
          );
        }
      }
      for (const { name, size } of declared) {
        this.#verified.set(name, entriesOf.get(name)!);
        this.catalog.noteSize(name, size);
      }
    }
    if (remembered.length > 0) {
      // A pack this process verified may be gone since: server gc deletes a
      // garbage pack, and a push whose content is the same makes a pack of
      // the same name, finds it stored at packs/begin and skips uploading
      // it. Committing an index that names a deleted pack would let the
      // ref update land on objects that no longer exist (seen under load
      // in test/server-gc.test.ts): refuse, and the push uploads it again.
      const stored = await this.storedPacks(remembered);
      for (const name of remembered) {
        if (stored.has(name)) continue;
        this.#verified.delete(name);
        throw notUploaded(name);
      }
    }
    const ordered: { name: string; entries: PackEntry[] }[] = [];
    for (const pack of packs) {
      const name = packCommitName(pack);
      let entries = entriesOf.get(name);
      if (!entries) {
        entries = await this.#verifyStoredPack(name);
        this.#verified.set(name, entries);
      }
      ordered.push({ name, entries });
    }
    const { name, bytes } = encodeMultiIndex(ordered);
    // Indexing packs makes them visible: fenced against a gc sweep deleting
    // one of them (an upload left uncommitted past the grace window).
    let created = false;
    await this.fencedWrite(
      [],
      async () => {
        try {
          await this.backend.put(multiIndexKey(name), bytes, { ifNoneMatch: '*' });
          created = true;
        } catch (error) {
          // The same index (same packs) committed before: a retried request.
          if (!isStorageError(error, 'STORAGE_PRECONDITION_FAILED')) throw error;
        }
      },
      async () => {
        if (created) await this.backend.delete(multiIndexKey(name));
      },
      ordered.map((pack) => pack.name),
    );
    const index = MultiIndex.parse(bytes, name, multiIndexKey(name));
    this.catalog.add(index);
    return { index: name, objects: index.count };
  }

  /**
   * Stores objects written by the server itself (a Git LFS upload cut into
   * chunks) in cloud packs, skipping those already stored, and commits them:
   * a few requests to the store per 64 MiB instead of one per chunk.
   */
  async storeObjects(
    ids: readonly ObjectId[],
    read: (id: ObjectId) => Promise<Buffer>,
  ): Promise<void> {
    const wanted = await this.missing([...new Set(ids)], { pendingAsAbsent: true });
    if (wanted.length === 0) return;
    const buffer = Buffer.allocUnsafeSlow(MAX_CLOUD_PACK_BYTES);
    const names: string[] = [];
    let writer = new CloudPackWriter(buffer);
    const flush = async (): Promise<void> => {
      const pack = writer.finish();
      await this.storePack(pack.name, pack.bytes);
      names.push(pack.name);
      writer = new CloudPackWriter(buffer);
    };
    for (const id of wanted) {
      const record = await read(id);
      if (!writer.fits(record.length)) await flush();
      writer.add(id, record);
    }
    if (writer.count > 0) await flush();
    await this.commitPacks(names);
  }

  /**
   * Whether the repository is encrypted (docs/encryption.md): it holds a
   * key file. Remembered once true (a repository never goes back); looked
   * up again while false when a sealed record turns up, as it does after
   * another server accepted the first push of an encrypted repository.
   */
  async encrypted(refresh = false): Promise<boolean> {
    if (this.#encrypted === undefined || (refresh && !this.#encrypted)) {
      this.#encrypted = (await this.backend.head(KEY_FILE)) !== undefined;
    }
    return this.#encrypted;
  }

  #encrypted: boolean | undefined;

  /** How this repository checks `record` (odb/record.ts): by format alone when encrypted. */
  async recordCheck(record?: Uint8Array): Promise<RecordCheck> {
    const sealed = record !== undefined && record[5] === Codec.sealed;
    return (await this.encrypted(sealed)) ? 'sealed' : undefined;
  }

  /** An encrypted repository's key file as stored (wrapped keys only); undefined in a plain one. */
  async keyFile(): Promise<Buffer | undefined> {
    try {
      return Buffer.from(await this.backend.get(KEY_FILE));
    } catch (error) {
      if (isStorageError(error, 'STORAGE_NOT_FOUND')) return undefined;
      throw error;
    }
  }

  /**
   * Makes an empty repository encrypted with `keyFile` (the first push of
   * an encrypted repository): refused once it holds a branch or tag, or
   * another repository's key file. The same key file again is a retry, and
   * succeeds. With `replaces` (the SHA-256 of the key file the client read,
   * `key push`), the stored key file is replaced by this one of the same
   * repository, unless it changed since it was read (compare-and-swap on
   * its ETag): then KEYS_CHANGED, and the client merges again.
   */
  async adoptKeyFile(bytes: Uint8Array, replaces?: string): Promise<void> {
    let offered: KeyFile;
    try {
      offered = parseKeyFile(JSON.parse(Buffer.from(bytes).toString('utf8')));
    } catch (error) {
      throw new MediaGitError('BAD_KEY_FILE', 'the key file sent is not a valid key file', {
        kind: 'user',
        cause: error,
      });
    }
    const refused = (reason: string): MediaGitError =>
      new MediaGitError('ENCRYPTED_REPOSITORY', reason, { kind: 'user', data: { status: 409 } });
    const head = await this.backend.head(KEY_FILE);
    const current = head === undefined ? undefined : await this.keyFile();
    if (current === undefined) {
      if (replaces !== undefined) {
        throw refused('this repository is not encrypted: it has no key slots to replace');
      }
      if ((await this.listRefs()).length > 0) {
        throw refused(
          'this repository is not encrypted and holds branches: an encrypted repository cannot be pushed into it',
        );
      }
      try {
        await this.backend.put(KEY_FILE, bytes, { ifNoneMatch: '*' });
        this.#encrypted = true;
        return;
      } catch (error) {
        if (!isStorageError(error, 'STORAGE_PRECONDITION_FAILED')) throw error;
      }
    }
    const storedBytes = Buffer.from(current ?? (await this.backend.get(KEY_FILE)));
    const stored = parseKeyFile(JSON.parse(storedBytes.toString('utf8')));
    this.#encrypted = true;
    if (stored.repository !== offered.repository) {
      throw refused('this repository is encrypted under other keys: it is another repository');
    }
    if (replaces === undefined) return;
    const changed = (): MediaGitError =>
      new MediaGitError(
        'KEYS_CHANGED',
        "the repository's key slots changed since they were read; nothing was replaced (run `mediagit key push` again)",
        { kind: 'conflict', data: { status: 409 } },
      );
    if (head === undefined || createHash('sha256').update(storedBytes).digest('hex') !== replaces) {
      throw changed();
    }
    try {
      // The ETag read before the bytes: a change in between fails the put.
      await this.backend.put(KEY_FILE, bytes, { ifMatch: head.etag });
    } catch (error) {
      if (isStorageError(error, 'STORAGE_PRECONDITION_FAILED')) throw changed();
      throw error;
    }
  }

  /**
   * Reads a chunk of a plaintext repository without hashing it again (every
   * record was verified when it was stored): for a caller that checks the
   * bytes another way, the whole-file SHA-256 of an LFS object.
   */
  async readStoredChunk(id: ObjectId, length: number): Promise<Buffer> {
    const record = await this.getRecord(id);
    if (await this.encrypted()) return (await this.read(id)).data;
    const object = await decodeStoredPlain(id, record, length);
    if (object.type !== 'chunk') throw badRecord(id, `it is a ${object.type}, not a chunk`);
    return object.data;
  }

  /** LFS objects hashed as their packs arrive (upload-hashes.ts). */
  readonly uploadHashes = new UploadHashes();

  /** Reads and verifies an object (metadata is cached; chunks are not). */
  async read(id: ObjectId): Promise<DecodedRecord> {
    const cached = this.#metadata.get(id);
    if (cached) return cached;
    const record = await this.getRecord(id);
    const object = await decodeRecord(id, record, undefined, await this.recordCheck(record));
    if (object.type !== 'chunk' && object.type !== 'blob') this.#metadata.set(id, object);
    return object;
  }

  /**
   * Verifies a standalone record against `id` and stores it unless present.
   * `expected` restricts the type (a chunk upload must be a chunk). Returns
   * whether it was written.
   */
  async putRecord(
    id: ObjectId,
    record: Uint8Array,
    expected?: readonly ObjectTypeName[],
  ): Promise<boolean> {
    const object = await decodeRecord(id, record, undefined, await this.recordCheck(record));
    if (expected && !expected.includes(object.type)) {
      throw new MediaGitError(
        'BAD_OBJECT_RECORD',
        `object ${id} was rejected: it is a ${object.type}, expected ${expected.join(' or ')}`,
        { kind: 'user', data: { id, type: object.type } },
      );
    }
    return this.putVerified(id, record);
  }

  /**
   * Stores a record the caller has already verified with `decodeRecord`
   * (a pack is verified whole before any of it is stored) unless present.
   */
  async putVerified(id: ObjectId, record: Uint8Array): Promise<boolean> {
    // No existence check first: clients upload only what chunks/check called
    // missing, and the conditional put refuses a duplicate anyway.
    try {
      await this.backend.put(objectKey(id), record, { ifNoneMatch: '*' });
      return true;
    } catch (error) {
      if (isStorageError(error, 'STORAGE_PRECONDITION_FAILED')) return false; // a racing upload
      throw error;
    }
  }

  async head(): Promise<string | undefined> {
    try {
      const text = Buffer.from(await this.backend.get('HEAD'))
        .toString('utf8')
        .trim();
      return text.startsWith('ref: ') ? text.slice(5) : undefined;
    } catch (error) {
      if (isStorageError(error, 'STORAGE_NOT_FOUND')) return undefined;
      throw error;
    }
  }

  /** A ref's value and ETag; a tombstone is reported with id undefined. */
  async readRef(name: string): Promise<{ id: ObjectId | undefined; etag: string } | undefined> {
    // The ETag first, then the bytes: if the ref changes in between, the bytes
    // are newer than the ETag and a compare-and-swap on it fails (safe); the
    // other order could act on old bytes with a current ETag.
    const head = await this.backend.head(name);
    if (head === undefined) return undefined;
    const etag = head.etag;
    let bytes: Uint8Array;
    try {
      bytes = await this.backend.get(name);
    } catch (error) {
      if (isStorageError(error, 'STORAGE_NOT_FOUND')) return undefined;
      throw error;
    }
    return { id: refValue(name, bytes), etag };
  }

  /** Every branch and tag with its commit, sorted by name. */
  async listRefs(): Promise<{ name: string; id: ObjectId }[]> {
    const refs: { name: string; id: ObjectId }[] = [];
    for await (const key of this.backend.list('refs/')) {
      if (!isValidRefName(key)) continue;
      // The value alone (no ETag, so no HEAD): one request per ref.
      let id: ObjectId | undefined;
      try {
        id = refValue(key, await this.backend.get(key));
      } catch (error) {
        if (isStorageError(error, 'STORAGE_NOT_FOUND')) continue; // deleted since the listing
        throw error;
      }
      if (id !== undefined) refs.push({ name: key, id });
    }
    return refs;
  }

  /**
   * Sets `name` to `id` (or deletes it, `id` null) if it still has the ETag
   * read before (`etag` undefined: if it does not exist). Returns false when
   * another writer got there first.
   */
  async casRef(name: string, etag: string | undefined, id: ObjectId | null): Promise<boolean> {
    const body = Buffer.from(id === null ? '' : `${id}\n`);
    try {
      await this.backend.put(
        name,
        body,
        etag === undefined ? { ifNoneMatch: '*' } : { ifMatch: etag },
      );
      return true;
    } catch (error) {
      if (isStorageError(error, 'STORAGE_PRECONDITION_FAILED')) return false;
      throw error;
    }
  }

  /** Whether `branch.<name>.protect` is set in the repository's config. */
  async isProtected(ref: string): Promise<boolean> {
    if (!ref.startsWith('refs/heads/')) return false;
    const branch = ref.slice('refs/heads/'.length);
    let table: Record<string, unknown>;
    try {
      table = parseToml(Buffer.from(await this.backend.get('config')).toString('utf8'));
    } catch (error) {
      if (isStorageError(error, 'STORAGE_NOT_FOUND')) return false;
      throw new MediaGitError(
        'CONFIG_INVALID',
        'the repository config on the server is not valid TOML',
        {
          kind: 'config',
          cause: error,
        },
      );
    }
    const branches = table['branch'];
    if (typeof branches !== 'object' || branches === null) return false;
    const entry = (branches as Record<string, unknown>)[branch];
    return (
      typeof entry === 'object' &&
      entry !== null &&
      (entry as { protect?: unknown }).protect === true
    );
  }
}

/** The object ID a stored ref holds, or undefined for a tombstone (a deleted ref). */
function refValue(name: string, bytes: Uint8Array): ObjectId | undefined {
  const text = Buffer.from(bytes).toString('utf8').trim();
  if (text === '') return undefined;
  if (!isObjectId(text)) {
    throw new MediaGitError('BAD_REF', `ref ${name} does not hold an object ID`, {
      kind: 'corrupt',
      data: { ref: name },
    });
  }
  return text;
}
