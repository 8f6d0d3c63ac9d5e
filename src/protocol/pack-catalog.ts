/**
 * The cloud packs of one repository on a storage backend (odb/cloud-pack.ts,
 * docs/format.md): which objects its multi-pack indexes cover, where, and
 * reading them with ranged GETs.
 *
 * - Indexes (`objects/index/<name>.idx`) are loaded lazily and kept in
 *   memory (about 52 bytes per object); a lookup is a binary search per
 *   index. An ID found nowhere makes the catalog list the indexes again
 *   before answering "missing" — another server sharing the bucket may have
 *   indexed it — but at most once per caller: `refreshAfter(t)` lists only
 *   if no listing started after `t`.
 * - Small packs (metadata packs, at most `WHOLE_PACK_BYTES`) are read whole
 *   once and kept in a small LRU, so walking trees and commits costs one GET
 *   per pack rather than one per object.
 * - Packs written by the server are verified before their index is written
 *   (`verifyPack` in backend-repo.ts); readers still verify every record
 *   against its ID.
 */
import { LRUCache } from 'lru-cache';
import {
  cloudPackKey,
  encodeMultiIndex,
  MULTI_INDEX_PREFIX,
  multiIndexName,
  MultiIndex,
  type IndexedObject,
} from '../odb/cloud-pack.ts';
import { isObjectId, type ObjectId } from '../odb/object-id.ts';
import { checkPackIndex, packIndexEntries } from '../odb/pack.ts';
import { isStorageCode, type StorageBackend } from '../storage/backend.ts';

const WHOLE_PACK_BYTES = 4 * 1024 * 1024;
/**
 * A small record of a large pack is read with this much around it: a push's
 * commit, trees and manifests lie side by side at the end of its last pack,
 * so checking what a new commit reaches costs one ranged GET, not one each.
 */
const READ_AROUND_BYTES = 256 * 1024;
const LOAD_CONCURRENCY = 8;
const PACK_PREFIX = 'objects/pack/';
const PACK_INDEX_KEY = /^objects\/pack\/pack-([0-9a-f]{64})\.idx$/;
/** How a version-1/2 pack's own index is keyed among the loaded indexes. */
const PACK_INDEX_LABEL = 'pack-';

export interface Located extends IndexedObject {
  readonly id: ObjectId;
}

export class PackCatalog {
  readonly backend: StorageBackend;
  readonly #indexes = new Map<string, MultiIndex>();
  /** Indexes that failed to load: skipped by lookups, reported when nothing else has an object. */
  readonly #broken = new Map<string, unknown>();
  #refreshing: Promise<void> | undefined;
  /** When the latest listing started (performance.now()), -1 before the first. */
  #listedAt = -1;
  /** Whether a listing found packs with their own index (see `refresh`). */
  #hasPackIndexes = false;
  readonly #smallPacks = new LRUCache<string, Buffer>({
    maxSize: 64 * 1024 * 1024,
    sizeCalculation: (value) => Math.max(1, value.length),
  });
  /** Packs loaded through their own index (version 1/2 packs of a local repository). */
  readonly #ownIndexed = new Set<string>();
  /** Pack sizes learnt from heads and commits (to know which are small). */
  readonly #packSizes = new Map<string, number>();
  /** The latest bytes read around a small record, per pack. */
  readonly #around = new LRUCache<string, { start: number; bytes: Buffer }>({ max: 16 });

  constructor(backend: StorageBackend) {
    this.backend = backend;
  }

  /** Lists the indexes unless a listing started at or after `since` (performance.now()). */
  async refreshAfter(since: number): Promise<void> {
    if (this.#listedAt >= since) {
      await this.#refreshing;
      return;
    }
    await this.refresh();
  }

  /** Lists the indexes and loads new ones (one listing at a time; callers share it). */
  refresh(): Promise<void> {
    if (this.#refreshing) return this.#refreshing;
    const started = performance.now();
    const running = (async () => {
      const names: string[] = [];
      // Indexes loaded before this listing that it no longer finds were
      // replaced by gc (server-gc.ts): forget them, so lookups stop
      // answering with packs that are gone.
      const before = new Set(
        [...this.#indexes.keys()].filter((n) => !n.startsWith(PACK_INDEX_LABEL)),
      );
      for await (const key of this.backend.list(MULTI_INDEX_PREFIX)) {
        const name = multiIndexName(key);
        if (name === undefined) continue;
        before.delete(name);
        if (!this.#indexes.has(name) && !this.#broken.has(name)) names.push(name);
      }
      for (const gone of before) this.#indexes.delete(gone);
      // Packs with their own index (repack, gc, add's ingest packs) exist
      // only in repositories made on a local disk: a remote store is never
      // listed for them, and a local one again only if the first listing
      // found some.
      const packIndexes: string[] = [];
      if (!this.backend.capabilities.remote && (this.#listedAt < 0 || this.#hasPackIndexes)) {
        for await (const key of this.backend.list(PACK_PREFIX)) {
          const name = PACK_INDEX_KEY.exec(key)?.[1];
          if (name === undefined) continue;
          this.#hasPackIndexes = true;
          const label = `${PACK_INDEX_LABEL}${name}`;
          if (!this.#indexes.has(label) && !this.#broken.has(label)) packIndexes.push(name);
        }
      }
      const jobs = [
        ...names.map((name) => () => this.#load(name)),
        ...packIndexes.map((name) => () => this.#loadPackIndex(name)),
      ];
      let next = 0;
      await Promise.all(
        Array.from({ length: Math.min(LOAD_CONCURRENCY, jobs.length) }, async () => {
          for (let i = next++; i < jobs.length; i = next++) await jobs[i]!();
        }),
      );
      this.#listedAt = started;
    })();
    this.#refreshing = running;
    return running.finally(() => {
      if (this.#refreshing === running) this.#refreshing = undefined;
    });
  }

  async #load(name: string): Promise<void> {
    const key = `${MULTI_INDEX_PREFIX}${name}.idx`;
    try {
      const bytes = await this.backend.get(key);
      this.#indexes.set(name, MultiIndex.parse(bytes, name, `${this.backend.url}/${key}`));
    } catch (error) {
      if (isStorageCode(error, 'STORAGE_NOT_FOUND')) return; // removed since listed
      if (isStorageCode(error, 'PACK_CORRUPT')) {
        this.#broken.set(name, error);
        return;
      }
      throw error;
    }
  }

  /**
   * Loads the index of a version-1/2 pack (`objects/pack/pack-<name>.idx`)
   * as a one-pack multi-index, so its objects are read like a cloud pack's.
   */
  async #loadPackIndex(name: string): Promise<void> {
    const key = `${PACK_PREFIX}pack-${name}.idx`;
    const label = `${PACK_INDEX_LABEL}${name}`;
    try {
      const bytes = Buffer.from(await this.backend.get(key));
      const what = `${this.backend.url}/${key}`;
      const { count } = checkPackIndex(bytes, name, what);
      const encoded = encodeMultiIndex([{ name, entries: packIndexEntries(bytes, count) }]);
      this.#indexes.set(label, MultiIndex.parse(encoded.bytes, encoded.name, what));
      this.#ownIndexed.add(name);
    } catch (error) {
      if (isStorageCode(error, 'STORAGE_NOT_FOUND')) return;
      if (isStorageCode(error, 'PACK_CORRUPT')) {
        this.#broken.set(label, error);
        return;
      }
      throw error;
    }
  }

  /** Adds an index this process just wrote (no listing needed to see it). */
  add(index: MultiIndex): void {
    this.#indexes.set(index.name, index);
  }

  /**
   * Where `id` is in the indexes loaded so far (no listing). With `avoid`,
   * a copy in a pack not named there is preferred (gc's pending packs).
   */
  peek(id: ObjectId, avoid?: ReadonlySet<string>): IndexedObject | undefined {
    return this.#lookup(id, avoid);
  }

  #lookup(id: ObjectId, avoid?: ReadonlySet<string>): IndexedObject | undefined {
    if (!isObjectId(id)) return undefined;
    const raw = Buffer.from(id, 'hex');
    let fallback: IndexedObject | undefined;
    for (const index of this.#indexes.values()) {
      const found = index.find(raw);
      if (!found) continue;
      if (avoid === undefined || avoid.size === 0 || !avoid.has(found.pack)) return found;
      fallback ??= found;
    }
    return fallback;
  }

  /**
   * Where each ID is (undefined: in no index). IDs not found make one
   * listing, shared with concurrent callers, unless one started after `since`.
   * With `avoid`, an ID found only in packs named there also makes the
   * listing look for another copy (one gc wrote), and is answered with the
   * avoided copy if there is no other.
   */
  async locate(
    ids: readonly ObjectId[],
    since = performance.now(),
    avoid?: ReadonlySet<string>,
  ): Promise<(IndexedObject | undefined)[]> {
    if (this.#listedAt < 0) await this.refresh();
    const settled = (f: IndexedObject | undefined): boolean =>
      f !== undefined && (avoid === undefined || !avoid.has(f.pack));
    let found = ids.map((id) => this.#lookup(id, avoid));
    if (!found.every(settled)) {
      await this.refreshAfter(since);
      found = found.map((f, i) => (settled(f) ? f : (this.#lookup(ids[i]!, avoid) ?? f)));
    }
    return found;
  }

  /**
   * Forgets every loaded index naming `pack` (a read found it gone: gc
   * removed it and wrote indexes without it), so the next listing loads
   * what replaced them.
   */
  dropPack(pack: string): void {
    for (const [name, index] of this.#indexes) {
      if (index.packs.includes(pack)) this.#indexes.delete(name);
    }
    this.#smallPacks.delete(pack);
    this.#around.delete(pack);
    this.#listedAt = -1;
  }

  /** Whether `pack` was loaded through its own index (a version-1/2 pack). */
  isOwnIndexed(pack: string): boolean {
    return this.#ownIndexed.has(pack);
  }

  /** The loaded multi-pack indexes (not the packs with their own index). */
  multiIndexes(): MultiIndex[] {
    return [...this.#indexes.entries()]
      .filter(([name]) => !name.startsWith(PACK_INDEX_LABEL))
      .map(([, index]) => index);
  }

  /** The loaded indexes of packs with their own index. */
  ownIndexes(): MultiIndex[] {
    return [...this.#indexes.entries()]
      .filter(([name]) => name.startsWith(PACK_INDEX_LABEL))
      .map(([, index]) => index);
  }

  async has(id: ObjectId, since?: number): Promise<boolean> {
    return (await this.locate([id], since))[0] !== undefined;
  }

  /** The first load error of a broken index, if any (for a "missing" answer that may be wrong). */
  get brokenError(): unknown {
    return this.#broken.values().next().value;
  }

  /** Remembers a pack's size (learnt when it was committed), so reads need not ask. */
  noteSize(name: string, size: number): void {
    this.#packSizes.set(name, size);
  }

  /** The bytes [offset, offset + length) of pack `name`. */
  async readRange(name: string, offset: number, length: number): Promise<Buffer> {
    const whole = this.#smallPacks.get(name);
    if (whole) return whole.subarray(offset, offset + length);
    const around = this.#around.get(name);
    if (around && offset >= around.start && offset + length <= around.start + around.bytes.length) {
      return around.bytes.subarray(offset - around.start, offset - around.start + length);
    }
    const key = cloudPackKey(name);
    let size = this.#packSizes.get(name);
    if (size === undefined && length < WHOLE_PACK_BYTES / 4) {
      size = (await this.backend.head(key))?.size;
      if (size !== undefined) this.#packSizes.set(name, size);
    }
    if (size !== undefined && size <= WHOLE_PACK_BYTES) {
      const bytes = Buffer.from(await this.backend.get(key));
      this.#smallPacks.set(name, bytes);
      return bytes.subarray(offset, offset + length);
    }
    if (length <= READ_AROUND_BYTES / 4) {
      const start = Math.max(0, offset - READ_AROUND_BYTES / 2);
      const got = await this.backend.getRange(key, start, offset + length + READ_AROUND_BYTES / 2);
      const bytes = Buffer.from(got.buffer, got.byteOffset, got.byteLength);
      this.#around.set(name, { start, bytes });
      return bytes.subarray(offset - start, offset - start + length);
    }
    const bytes = await this.backend.getRange(key, offset, offset + length);
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** Every indexed object (after a listing), for verification and migration. */
  async *objects(): AsyncIterable<Located> {
    await this.refresh();
    for (const index of this.#indexes.values()) {
      for (const entry of index.entries()) yield entry;
    }
  }

  /** The names of the loaded indexes. */
  indexNames(): string[] {
    return [...this.#indexes.keys()];
  }
}
