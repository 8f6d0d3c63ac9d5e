/**
 * The storage interface (ARCHITECTURE.md §3): one narrow contract that every
 * backend (file system, memory, S3, Azure Blob, GCS) implements exactly, so
 * the server and migrations can put a repository anywhere. Retries, the
 * read-through cache and key prefixes are wrappers (wrappers.ts, cache.ts),
 * never code inside a backend.
 *
 * Contract (checked for every backend by conformance.ts):
 * - Keys are relative, '/'-separated paths of safe segments (no '', '.',
 *   '..', NUL, backslash or control characters; no leading '/'); anything
 *   else is STORAGE_BAD_KEY before any request is made.
 * - `put` is atomic: a reader sees the old bytes or the new ones, never a
 *   mix or a prefix, and a crash or a cut connection leaves one or the
 *   other. It returns the new version's ETag: an opaque string that `head`
 *   reports until the object is replaced. A put of different bytes always
 *   makes a new ETag; a put of identical bytes may keep it (S3's ETag is the
 *   bytes' MD5), so callers compare-and-swap on values, never count versions.
 *   `ifNoneMatch: '*'` creates only if absent; `ifMatch: etag` replaces only
 *   if the current ETag is that one; a failed condition is
 *   STORAGE_PRECONDITION_FAILED and changes nothing. Two concurrent
 *   conditional puts on one key never both succeed (this is what makes ref
 *   updates compare-and-swap across server processes).
 * - `get` of a missing key is STORAGE_NOT_FOUND; `getRange(key, start, end)`
 *   returns bytes [start, end) clamped to the object's size.
 * - `head` is undefined for a missing key; `delete` of a missing key is fine.
 * - `list(prefix)` yields every key starting with `prefix`, sorted, however
 *   many there are (backends page through their listings).
 * - Failures are MediaGitErrors naming the backend and the key:
 *   STORAGE_UNAVAILABLE (timeouts, 5xx, dropped connections: `transient`,
 *   safe to retry for reads, unconditional puts and deletes),
 *   STORAGE_ACCESS_DENIED (wrong or missing credentials), STORAGE_NO_BUCKET,
 *   STORAGE_FAILED (anything else).
 * - `child(prefix)` is the same store seen under `prefix/` (a repository
 *   under a server root); `sign`, where `capabilities.signedUrls`, hands out
 *   a time-limited request a client without credentials can make directly
 *   (S3 presigned URLs, Azure SAS, GCS signed URLs).
 */
import { MediaGitError } from '../errors.ts';

export interface StorageCapabilities {
  /** `ifMatch` / `ifNoneMatch` are honoured atomically. */
  readonly conditionalPut: boolean;
  /** `getRange` reads only the range (not the whole object). */
  readonly rangedGet: boolean;
  /** `sign` can hand out direct, credential-free requests. */
  readonly signedUrls: boolean;
  /**
   * Every request is a network round trip to a store (a cloud backend): one
   * listing page of 1,000 keys costs about what one HEAD does.
   */
  readonly remote: boolean;
}

/** A request a client can make without credentials until `expires`. */
export interface SignedRequest {
  readonly method: 'GET' | 'PUT';
  readonly url: string;
  /** Headers the request must carry exactly (they are part of the signature). */
  readonly headers: Readonly<Record<string, string>>;
  /** ISO 8601. */
  readonly expires: string;
}

export interface SignOptions {
  readonly method: 'GET' | 'PUT';
  readonly expiresSeconds: number;
  /** For PUT: the request may only create the object, never replace it. */
  readonly createOnly?: boolean;
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
  /** The same store under `prefix/` (safe segments only). */
  child(prefix: string): StorageBackend;
  /** A direct request for `key`; only where `capabilities.signedUrls`. */
  sign?(key: string, options: SignOptions): Promise<SignedRequest>;
}

// eslint-disable-next-line no-control-regex
const SEGMENT = /^[^/\\\x00-\x1f\x7f]+$/;

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

export type StorageFailure =
  'STORAGE_UNAVAILABLE' | 'STORAGE_ACCESS_DENIED' | 'STORAGE_NO_BUCKET' | 'STORAGE_FAILED';

/**
 * A failure talking to a backend, in one line naming the backend and the key
 * (`key` '' for bucket-wide operations). `transient` failures may succeed if
 * retried (RetryingBackend decides where that is safe).
 */
export function storageFailure(
  code: StorageFailure,
  backend: string,
  key: string,
  reason: string,
  cause?: unknown,
): MediaGitError {
  const where = key === '' ? backend : `${backend} (key ${key})`;
  const kind = code === 'STORAGE_UNAVAILABLE' || code === 'STORAGE_FAILED' ? 'user' : 'config';
  return new MediaGitError(code, `storage ${where}: ${reason}`, {
    kind,
    // A command that cannot use its store is fatal, as Git's "unable to access" is (exit 128).
    data: { backend, key, transient: code === 'STORAGE_UNAVAILABLE', exitCode: 128 },
    cause,
  });
}

/** Whether an error is a backend failure that a retry may cure. */
export function isTransientStorageError(error: unknown): boolean {
  return error instanceof MediaGitError && error.data['transient'] === true;
}

export function isStorageCode(error: unknown, code: string): boolean {
  return error instanceof MediaGitError && error.code === code;
}

/** Joins a prefix ('' or 'a/b') and a key. */
export function joinKey(prefix: string, key: string): string {
  return prefix === '' ? key : `${prefix}/${key}`;
}

/** Checks a child prefix (safe segments, no trailing '/') and returns it. */
export function checkChildPrefix(prefix: string): string {
  return checkKey(prefix);
}
