/**
 * A read-through cache in front of any backend (`--cache-dir`): reads of
 * cacheable keys are kept on local disk in 1 MiB blocks, bounded by a byte
 * budget with least-recently-used eviction, so a server on object storage
 * reads a pack's hot ranges once.
 *
 * Contracts:
 * - Every cached read is verified: a block file is named by the SHA-256 of
 *   its bytes, recomputed on every hit; a block that does not match (a
 *   damaged disk, a hand-edited file) is dropped and read from the backend.
 * - Only keys `cacheable(key)` accepts are cached. Puts and deletes through
 *   this wrapper drop the key's blocks, so one process always reads what it
 *   wrote; a key that another process may replace must not be cacheable
 *   (the server caches only immutable, content-addressed objects and packs).
 * - The cache folder survives restarts (its index is rebuilt from the file
 *   names); losing it costs only reads. Block files are written to a temp
 *   name and renamed, never fsynced (a cache needs no durability).
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { LRUCache } from 'lru-cache';
import { hasErrnoCode } from '../errors.ts';
import type {
  ObjectHead,
  PutOptions,
  SignedRequest,
  SignOptions,
  StorageBackend,
} from './backend.ts';

export const CACHE_BLOCK = 1024 * 1024;

export interface CacheOptions {
  readonly dir: string;
  readonly maxBytes: number;
  readonly cacheable: (key: string) => boolean;
}

export interface CacheStats {
  hits: number;
  misses: number;
  /** Blocks whose bytes no longer matched their name. */
  corrupt: number;
}

/** What is cached of one key: its blocks and, once known, its size. */
interface CachedObject {
  size: number | undefined;
  readonly blocks: Map<number, string>;
}

const BLOCK_FILE = /^([0-9a-f]{64})\.(\d+)\.([0-9a-f]{64})$/;
const SIZE_FILE = /^([0-9a-f]{64})\.size\.(\d+)$/;

/** The shared state of one cache folder (children of a wrapper share it). */
class BlockCache {
  readonly dir: string;
  readonly objects = new Map<string, CachedObject>();
  readonly lru: LRUCache<string, number>;
  readonly stats: CacheStats = { hits: 0, misses: 0, corrupt: 0 };
  /** Bumped by every write or delete of a key: a fill started before it is dropped. */
  readonly generations = new Map<string, number>();
  #ready: Promise<void> | undefined;

  constructor(dir: string, maxBytes: number) {
    this.dir = path.resolve(dir);
    this.lru = new LRUCache<string, number>({
      maxSize: maxBytes,
      sizeCalculation: (length) => Math.max(1, length),
      dispose: (_length, file, reason) => {
        if (reason === 'set') return;
        void fs.rm(file, { force: true });
        this.#forget(file);
      },
    });
  }

  ready(): Promise<void> {
    this.#ready ??= this.#load();
    return this.#ready;
  }

  /** Rebuilds the index from the folder (files of an earlier run are kept). */
  async #load(): Promise<void> {
    await fs.mkdir(this.dir, { recursive: true });
    for (const sub of await fs.readdir(this.dir)) {
      if (!/^[0-9a-f]{2}$/.test(sub)) continue;
      const folder = path.join(this.dir, sub);
      for (const name of await fs.readdir(folder).catch(() => [] as string[])) {
        const file = path.join(folder, name);
        const block = BLOCK_FILE.exec(name);
        const size = SIZE_FILE.exec(name);
        if (block) {
          const stat = await fs.stat(file).catch(() => undefined);
          if (!stat) continue;
          this.#object(block[1]!).blocks.set(Number(block[2]), file);
          this.lru.set(file, stat.size);
        } else if (size) {
          this.#object(size[1]!).size = Number(size[2]);
        } else if (name.endsWith('.tmp')) {
          await fs.rm(file, { force: true });
        }
      }
    }
  }

  #object(keyHash: string): CachedObject {
    let object = this.objects.get(keyHash);
    if (!object) this.objects.set(keyHash, (object = { size: undefined, blocks: new Map() }));
    return object;
  }

  #forget(file: string): void {
    const match = BLOCK_FILE.exec(path.basename(file));
    if (!match) return;
    const object = this.objects.get(match[1]!);
    if (object?.blocks.get(Number(match[2])) === file) object.blocks.delete(Number(match[2]));
  }

  /** The verified bytes of a cached block, or undefined. */
  async readBlock(keyHash: string, block: number): Promise<Buffer | undefined> {
    const file = this.objects.get(keyHash)?.blocks.get(block);
    if (file === undefined) return undefined;
    let data: Buffer;
    try {
      data = await fs.readFile(file);
    } catch (error) {
      if (!hasErrnoCode(error, 'ENOENT')) throw error;
      this.lru.delete(file);
      this.#forget(file);
      return undefined;
    }
    const expected = BLOCK_FILE.exec(path.basename(file))![3];
    if (createHash('sha256').update(data).digest('hex') !== expected) {
      this.stats.corrupt++;
      this.lru.delete(file);
      this.#forget(file);
      await fs.rm(file, { force: true });
      return undefined;
    }
    this.lru.get(file); // touch
    return data;
  }

  async writeBlock(keyHash: string, block: number, data: Uint8Array): Promise<void> {
    const digest = createHash('sha256').update(data).digest('hex');
    const folder = path.join(this.dir, keyHash.slice(0, 2));
    const file = path.join(folder, `${keyHash}.${block}.${digest}`);
    await fs.mkdir(folder, { recursive: true });
    const tmp = path.join(folder, `${randomBytes(6).toString('hex')}.tmp`);
    await fs.writeFile(tmp, data);
    await fs.rename(tmp, file);
    const object = this.#object(keyHash);
    const old = object.blocks.get(block);
    if (old !== undefined && old !== file) {
      this.lru.delete(old);
      await fs.rm(old, { force: true });
    }
    object.blocks.set(block, file);
    this.lru.set(file, data.length);
  }

  async writeSize(keyHash: string, size: number): Promise<void> {
    const object = this.#object(keyHash);
    if (object.size === size) return;
    const folder = path.join(this.dir, keyHash.slice(0, 2));
    await fs.mkdir(folder, { recursive: true });
    await fs.writeFile(path.join(folder, `${keyHash}.size.${size}`), '');
    object.size = size;
  }

  async drop(keyHash: string): Promise<void> {
    const object = this.objects.get(keyHash);
    if (!object) return;
    this.objects.delete(keyHash);
    for (const file of object.blocks.values()) {
      this.lru.delete(file);
      await fs.rm(file, { force: true });
    }
    if (object.size !== undefined) {
      await fs.rm(path.join(this.dir, keyHash.slice(0, 2), `${keyHash}.size.${object.size}`), {
        force: true,
      });
    }
  }
}

export class CachingBackend implements StorageBackend {
  readonly inner: StorageBackend;
  readonly #cache: BlockCache;
  readonly #cacheable: (key: string) => boolean;
  /** Names the full key of this view in the shared cache (children differ). */
  readonly #scope: string;

  constructor(inner: StorageBackend, options: CacheOptions, shared?: BlockCache, scope = '') {
    this.inner = inner;
    this.#cache = shared ?? new BlockCache(options.dir, options.maxBytes);
    this.#cacheable = options.cacheable;
    this.#scope = scope;
    this.#options = options;
  }

  readonly #options: CacheOptions;

  get url(): string {
    return this.inner.url;
  }

  get capabilities(): StorageBackend['capabilities'] {
    return this.inner.capabilities;
  }

  get stats(): CacheStats {
    return this.#cache.stats;
  }

  #keyHash(key: string): string {
    return createHash('sha256').update(`${this.inner.url}\n${key}`).digest('hex');
  }

  #generation(keyHash: string): number {
    return this.#cache.generations.get(keyHash) ?? 0;
  }

  async #invalidate(key: string): Promise<void> {
    const keyHash = this.#keyHash(key);
    this.#cache.generations.set(keyHash, this.#generation(keyHash) + 1);
    await this.#cache.ready();
    await this.#cache.drop(keyHash);
  }

  async get(key: string): Promise<Uint8Array> {
    if (!this.#cacheable(`${this.#scope}${key}`)) return this.inner.get(key);
    await this.#cache.ready();
    const keyHash = this.#keyHash(key);
    const size = this.#cache.objects.get(keyHash)?.size;
    if (size !== undefined) {
      const cached = await this.#readCached(keyHash, 0, size);
      if (cached) {
        this.#cache.stats.hits++;
        return cached;
      }
    }
    this.#cache.stats.misses++;
    const generation = this.#generation(keyHash);
    const data = await this.inner.get(key);
    if (this.#generation(keyHash) === generation) await this.#fill(keyHash, 0, data, data.length);
    return data;
  }

  async getRange(key: string, start: number, end: number): Promise<Uint8Array> {
    if (!this.#cacheable(`${this.#scope}${key}`)) return this.inner.getRange(key, start, end);
    await this.#cache.ready();
    const keyHash = this.#keyHash(key);
    const size = this.#cache.objects.get(keyHash)?.size;
    const from = Math.max(0, start);
    const to = size === undefined ? end : Math.min(end, size);
    if (to <= from && size !== undefined) return new Uint8Array(0);
    const cached = await this.#readCached(keyHash, from, to);
    if (cached) {
      this.#cache.stats.hits++;
      return cached;
    }
    this.#cache.stats.misses++;
    // Read whole blocks, so the next read nearby is a hit.
    const first = Math.floor(from / CACHE_BLOCK);
    const last = Math.ceil(to / CACHE_BLOCK);
    const generation = this.#generation(keyHash);
    const data = await this.inner.getRange(key, first * CACHE_BLOCK, last * CACHE_BLOCK);
    const knownSize =
      data.length < (last - first) * CACHE_BLOCK ? first * CACHE_BLOCK + data.length : undefined;
    if (this.#generation(keyHash) === generation) await this.#fill(keyHash, first, data, knownSize);
    const offset = from - first * CACHE_BLOCK;
    return data.subarray(
      Math.min(offset, data.length),
      Math.min(to - first * CACHE_BLOCK, data.length),
    );
  }

  /** Bytes [from, to) from cached blocks, or undefined if any block is missing. */
  async #readCached(keyHash: string, from: number, to: number): Promise<Uint8Array | undefined> {
    const object = this.#cache.objects.get(keyHash);
    if (!object) return undefined;
    const size = object.size;
    const end = size === undefined ? to : Math.min(to, size);
    if (end <= from) return size === undefined ? undefined : new Uint8Array(0);
    const first = Math.floor(from / CACHE_BLOCK);
    const last = Math.ceil(end / CACHE_BLOCK);
    const parts: Buffer[] = [];
    for (let block = first; block < last; block++) {
      const data = await this.#cache.readBlock(keyHash, block);
      if (!data) return undefined;
      parts.push(data);
      // A short block is the object's last: a range past it needs the size.
      if (data.length < CACHE_BLOCK && block < last - 1) return undefined;
    }
    const joined = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
    const offset = from - first * CACHE_BLOCK;
    const wanted = end - from;
    if (size === undefined && joined.length - offset < wanted) return undefined;
    return joined.subarray(offset, offset + wanted);
  }

  /** Stores `data` (starting at block `first`, block-aligned) as blocks. */
  async #fill(
    keyHash: string,
    first: number,
    data: Uint8Array,
    size: number | undefined,
  ): Promise<void> {
    try {
      for (let at = 0, block = first; at < data.length; at += CACHE_BLOCK, block++) {
        await this.#cache.writeBlock(
          keyHash,
          block,
          data.subarray(at, Math.min(data.length, at + CACHE_BLOCK)),
        );
      }
      if (size !== undefined) await this.#cache.writeSize(keyHash, size);
    } catch {
      // A full or read-only cache disk costs only the caching.
    }
  }

  async put(key: string, data: Uint8Array, options?: PutOptions): Promise<{ etag: string }> {
    if (this.#cacheable(`${this.#scope}${key}`)) await this.#invalidate(key);
    try {
      return await this.inner.put(key, data, options);
    } finally {
      if (this.#cacheable(`${this.#scope}${key}`)) await this.#invalidate(key);
    }
  }

  head(key: string): Promise<ObjectHead | undefined> {
    return this.inner.head(key);
  }

  list(prefix: string): AsyncIterable<string> {
    return this.inner.list(prefix);
  }

  async delete(key: string): Promise<void> {
    try {
      await this.inner.delete(key);
    } finally {
      if (this.#cacheable(`${this.#scope}${key}`)) await this.#invalidate(key);
    }
  }

  child(prefix: string): StorageBackend {
    return new CachingBackend(
      this.inner.child(prefix),
      this.#options,
      this.#cache,
      `${this.#scope}${prefix}/`,
    );
  }

  sign(key: string, options: SignOptions): Promise<SignedRequest> {
    if (!this.inner.sign) throw new Error(`${this.inner.url} cannot sign requests`);
    return this.inner.sign(key, options);
  }
}
