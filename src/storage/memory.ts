/** The in-memory backend (`memory://`): for tests and throwaway servers. */
import {
  checkKey,
  checkPrefix,
  notFound,
  preconditionFailed,
  type ObjectHead,
  type PutOptions,
  type StorageBackend,
  type StorageCapabilities,
} from './backend.ts';
import { PrefixedBackend } from './wrappers.ts';

export class MemoryBackend implements StorageBackend {
  readonly url: string;
  readonly capabilities: StorageCapabilities = {
    conditionalPut: true,
    rangedGet: true,
    signedUrls: false,
    remote: false,
  } as const;
  readonly #objects = new Map<string, { data: Uint8Array; etag: string }>();
  /** ETags are version numbers: every put makes a new one. */
  #version = 0;

  constructor(name = 'default') {
    this.url = `memory://${name}`;
  }

  async get(key: string): Promise<Uint8Array> {
    const found = this.#objects.get(checkKey(key));
    if (!found) throw notFound(key);
    return Uint8Array.from(found.data);
  }

  async getRange(key: string, start: number, end: number): Promise<Uint8Array> {
    const data = await this.get(key);
    return data.subarray(Math.max(0, start), Math.min(data.length, end));
  }

  async put(key: string, data: Uint8Array, options: PutOptions = {}): Promise<{ etag: string }> {
    checkKey(key);
    // Synchronous from check to store: nothing can interleave in one process.
    const current = this.#objects.get(key);
    if (options.ifNoneMatch === '*' && current) throw preconditionFailed(key, 'no object');
    if (options.ifMatch !== undefined && current?.etag !== options.ifMatch) {
      throw preconditionFailed(key, options.ifMatch);
    }
    const etag = `${++this.#version}`;
    this.#objects.set(key, { data: Uint8Array.from(data), etag });
    return { etag };
  }

  async head(key: string): Promise<ObjectHead | undefined> {
    const found = this.#objects.get(checkKey(key));
    return found && { size: found.data.length, etag: found.etag };
  }

  async *list(prefix: string): AsyncIterable<string> {
    checkPrefix(prefix);
    const keys = [...this.#objects.keys()].filter((k) => k.startsWith(prefix)).sort();
    yield* keys;
  }

  async delete(key: string): Promise<void> {
    this.#objects.delete(checkKey(key));
  }

  child(prefix: string): StorageBackend {
    return new PrefixedBackend(this, prefix);
  }
}
