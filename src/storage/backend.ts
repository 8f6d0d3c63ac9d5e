/**
 * The storage interface (ARCHITECTURE.md §3): one narrow contract that every
 * backend (file system, memory; cloud backends later) implements exactly, so
 * the server and migrations can put a repository anywhere. Retries,
 * concurrency limits and caches are wrappers, never code inside a backend.
 *
 * Contract (checked for every backend by conformance.ts):
 * - Keys are relative, '/'-separated paths of safe segments (no '', '.',
 *   '..', NUL or backslash; no leading '/'); anything else is STORAGE_BAD_KEY
 *   before any I/O.
 * - `put` is atomic: a reader sees the old bytes or the new ones, never a
 *   mix, and a crash leaves one or the other. It returns the new version's
 *   ETag: an opaque string that `head` reports until the object is replaced
 *   (every put makes a new one, even of the same bytes; backends choose how:
 *   S3's ETag, the file backend's inode + size + mtime, a counter in memory).
 *   `ifNoneMatch: '*'` creates only if absent; `ifMatch: etag`
 *   replaces only if the current ETag is that one; a failed condition is
 *   STORAGE_PRECONDITION_FAILED and changes nothing. Two concurrent
 *   conditional puts on one key never both succeed (this is what makes ref
 *   updates compare-and-swap across server processes).
 * - `get` of a missing key is STORAGE_NOT_FOUND; `getRange(key, start, end)`
 *   returns bytes [start, end) clamped to the object's size.
 * - `head` is undefined for a missing key; `delete` of a missing key is fine.
 * - `list(prefix)` yields every key starting with `prefix`, sorted.
 */
import { MediaGitError } from '../errors.ts';

export interface StorageCapabilities {
  /** `ifMatch` / `ifNoneMatch` are honoured atomically. */
  readonly conditionalPut: boolean;
  /** `getRange` reads only the range (not the whole object). */
  readonly rangedGet: boolean;
}

export interface PutOptions {
  readonly ifNoneMatch?: '*' | undefined;
  readonly ifMatch?: string | undefined;
}

export interface ObjectHead {
  readonly size: number;
  readonly etag: string;
}

export interface StorageBackend {
  readonly url: string;
  readonly capabilities: StorageCapabilities;
  get(key: string): Promise<Uint8Array>;
  getRange(key: string, start: number, end: number): Promise<Uint8Array>;
  put(key: string, data: Uint8Array, options?: PutOptions): Promise<{ etag: string }>;
  head(key: string): Promise<ObjectHead | undefined>;
  list(prefix: string): AsyncIterable<string>;
  delete(key: string): Promise<void>;
}

const SEGMENT = /^[^/\\\0]+$/;

/** Throws STORAGE_BAD_KEY unless `key` is a safe relative key. */
export function checkKey(key: string): string {
  const segments = key.split('/');
  const bad =
    key === '' || segments.some((s) => s === '' || s === '.' || s === '..' || !SEGMENT.test(s));
  if (bad) {
    throw new MediaGitError('STORAGE_BAD_KEY', `invalid storage key ${JSON.stringify(key)}`, {
      kind: 'usage',
      data: { key },
    });
  }
  return key;
}

/** Prefixes may be empty or end in '/'; otherwise they follow the key rules. */
export function checkPrefix(prefix: string): string {
  if (prefix !== '') checkKey(prefix.endsWith('/') ? prefix.slice(0, -1) : prefix);
  return prefix;
}

export function notFound(key: string): MediaGitError {
  return new MediaGitError('STORAGE_NOT_FOUND', `no object at key ${key}`, {
    kind: 'user',
    data: { key },
  });
}

export function preconditionFailed(key: string, expected: string): MediaGitError {
  return new MediaGitError(
    'STORAGE_PRECONDITION_FAILED',
    `object at key ${key} changed (expected ${expected})`,
    { kind: 'conflict', data: { key, expected } },
  );
}
