/**
 * Wrappers around any backend (ARCHITECTURE.md §3: retries, prefixes and
 * caches are never code inside a backend):
 *
 * - `PrefixedBackend`: the same store seen under `prefix/` (a repository
 *   under a server root, for backends without a cheaper way).
 * - `RetryingBackend`: retries transient failures (STORAGE_UNAVAILABLE:
 *   timeouts, 5xx, dropped connections) with exponential backoff and jitter
 *   where retrying is safe, and never turns a success into a failure: a
 *   conditional put whose first attempt may have been applied (the answer
 *   was lost) and whose retry then fails its condition is resolved by
 *   reading the object back — if it holds exactly the bytes written, the
 *   put succeeded.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import {
  checkKey,
  checkPrefix,
  isStorageCode,
  isTransientStorageError,
  joinKey,
  type ObjectHead,
  type PutOptions,
  type SignedRequest,
  type SignOptions,
  type StorageBackend,
} from './backend.ts';

export class PrefixedBackend implements StorageBackend {
  readonly url: string;
  readonly inner: StorageBackend;
  readonly prefix: string;

  constructor(inner: StorageBackend, prefix: string) {
    this.inner = inner;
    this.prefix = checkKey(prefix);
    this.url = `${inner.url.replace(/\/$/, '')}/${this.prefix}`;
  }

  get capabilities(): StorageBackend['capabilities'] {
    return this.inner.capabilities;
  }

  #key(key: string): string {
    return joinKey(this.prefix, checkKey(key));
  }

  get(key: string): Promise<Uint8Array> {
    return this.inner.get(this.#key(key));
  }

  getRange(key: string, start: number, end: number): Promise<Uint8Array> {
    return this.inner.getRange(this.#key(key), start, end);
  }

  put(key: string, data: Uint8Array, options?: PutOptions): Promise<{ etag: string }> {
    return this.inner.put(this.#key(key), data, options);
  }

  head(key: string): Promise<ObjectHead | undefined> {
    return this.inner.head(this.#key(key));
  }

  async *list(prefix: string): AsyncIterable<string> {
    checkPrefix(prefix);
    const cut = this.prefix.length + 1;
    for await (const key of this.inner.list(`${this.prefix}/${prefix}`)) yield key.slice(cut);
  }

  delete(key: string): Promise<void> {
    return this.inner.delete(this.#key(key));
  }

  child(prefix: string): StorageBackend {
    return new PrefixedBackend(this.inner, joinKey(this.prefix, checkKey(prefix)));
  }

  sign(key: string, options: SignOptions): Promise<SignedRequest> {
    if (!this.inner.sign) throw new Error(`${this.inner.url} cannot sign requests`);
    return this.inner.sign(this.#key(key), options);
  }
}

export interface RetryPolicy {
  /** Attempts in all (the first one included). */
  readonly attempts: number;
  /** The first backoff; each next one doubles, with full jitter. */
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
  /** Told about every retry (logs, metrics). */
  readonly onRetry?:
    ((operation: string, key: string, attempt: number, error: unknown) => void) | undefined;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 6, baseDelayMs: 100, maxDelayMs: 5000 };

export class RetryingBackend implements StorageBackend {
  readonly inner: StorageBackend;
  readonly #policy: RetryPolicy;

  constructor(inner: StorageBackend, policy: RetryPolicy = DEFAULT_RETRY) {
    this.inner = inner;
    this.#policy = policy;
  }

  get url(): string {
    return this.inner.url;
  }

  get capabilities(): StorageBackend['capabilities'] {
    return this.inner.capabilities;
  }

  async #retry<T>(
    operation: string,
    key: string,
    run: (attempt: number) => Promise<T>,
  ): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await run(attempt);
      } catch (error) {
        if (!isTransientStorageError(error) || attempt >= this.#policy.attempts) throw error;
        this.#policy.onRetry?.(operation, key, attempt, error);
        const cap = Math.min(
          this.#policy.maxDelayMs,
          this.#policy.baseDelayMs * 2 ** (attempt - 1),
        );
        await sleep(cap / 2 + Math.random() * (cap / 2));
      }
    }
  }

  get(key: string): Promise<Uint8Array> {
    return this.#retry('get', key, () => this.inner.get(key));
  }

  getRange(key: string, start: number, end: number): Promise<Uint8Array> {
    return this.#retry('getRange', key, () => this.inner.getRange(key, start, end));
  }

  head(key: string): Promise<ObjectHead | undefined> {
    return this.#retry('head', key, () => this.inner.head(key));
  }

  delete(key: string): Promise<void> {
    return this.#retry('delete', key, () => this.inner.delete(key));
  }

  async put(key: string, data: Uint8Array, options: PutOptions = {}): Promise<{ etag: string }> {
    const conditional = options.ifMatch !== undefined || options.ifNoneMatch !== undefined;
    let ambiguous = false;
    return this.#retry('put', key, async () => {
      try {
        return await this.inner.put(key, data, options);
      } catch (error) {
        if (isTransientStorageError(error)) {
          // The request may have been applied with its answer lost.
          ambiguous = true;
          throw error;
        }
        if (conditional && ambiguous && isStorageCode(error, 'STORAGE_PRECONDITION_FAILED')) {
          const written = await this.#holds(key, data);
          if (written) return written;
        }
        throw error;
      }
    });
  }

  /** The object's head when it holds exactly `data` (an earlier attempt landed). */
  async #holds(key: string, data: Uint8Array): Promise<{ etag: string } | undefined> {
    const head = await this.head(key);
    if (!head || head.size !== data.length) return undefined;
    const current = await this.get(key);
    if (!Buffer.from(current.buffer, current.byteOffset, current.byteLength).equals(data)) {
      return undefined;
    }
    // The ETag read before the bytes: a change in between makes a later
    // compare-and-swap on it fail, which is safe (backend-repo.ts readRef).
    return { etag: head.etag };
  }

  async *list(prefix: string): AsyncIterable<string> {
    // A listing cut off part-way restarts and skips what was already yielded
    // (keys come sorted).
    let last: string | undefined;
    for (let attempt = 1; ; attempt++) {
      try {
        for await (const key of this.inner.list(prefix)) {
          if (last !== undefined && key <= last) continue;
          last = key;
          yield key;
        }
        return;
      } catch (error) {
        if (!isTransientStorageError(error) || attempt >= this.#policy.attempts) throw error;
        this.#policy.onRetry?.('list', prefix, attempt, error);
        const cap = Math.min(
          this.#policy.maxDelayMs,
          this.#policy.baseDelayMs * 2 ** (attempt - 1),
        );
        await sleep(cap / 2 + Math.random() * (cap / 2));
      }
    }
  }

  child(prefix: string): StorageBackend {
    return new RetryingBackend(this.inner.child(prefix), this.#policy);
  }

  sign(key: string, options: SignOptions): Promise<SignedRequest> {
    if (!this.inner.sign) throw new Error(`${this.inner.url} cannot sign requests`);
    return this.inner.sign(key, options);
  }
}
