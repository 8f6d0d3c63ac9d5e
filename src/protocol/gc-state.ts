/**
 * What server gc (server-gc.ts) shares with every server of a root, per
 * repository, through the store itself (docs/gc.md, "Server roots"):
 *
 *   gc/pending.json    loose objects and packs a gc run found unreachable
 *                      (packs: holding nothing live that is not stored
 *                      elsewhere), each with when it was first found so.
 *                      Servers answer `chunks/check` as if these were absent,
 *                      so new pushes upload fresh copies rather than build on
 *                      them; a later run deletes what is still unreachable
 *                      once the grace window has passed.
 *   gc/deleting.json   the sweep in progress: the loose objects and packs
 *                      about to be deleted. A server reads it (fresh, never
 *                      cached) before a write that makes objects reachable —
 *                      a ref update, an LFS object's key — and refuses the
 *                      write when one of those objects has no copy outside
 *                      it (the fence, below).
 *   gc/lock            the lease of the gc run in progress (one at a time).
 *
 * The fence is what makes gc safe against concurrent pushes without a lock
 * on every push: gc writes gc/deleting.json, waits FENCE_WAIT_MS, reads the
 * refs again and keeps whatever they now reach. A server's guarded write
 * either read gc/deleting.json after gc wrote it (and refused), or read it
 * before and finished within FENCE_MS, so before gc's second look at the
 * refs (which then protects its objects). A server whose write took longer
 * reads gc/deleting.json again afterwards and undoes the write if it must.
 * Only durations are compared, each on one host's monotonic clock.
 */
import { MediaGitError } from '../errors.ts';
import { isObjectId, type ObjectId } from '../odb/object-id.ts';
import { isStorageCode, type StorageBackend } from '../storage/backend.ts';

export const PENDING_KEY = 'gc/pending.json';
export const DELETING_KEY = 'gc/deleting.json';
export const LOCK_KEY = 'gc/lock';

/** The longest a guarded write may take from reading gc/deleting.json to finishing. */
export const FENCE_MS = 2000;
/** How long gc waits between writing gc/deleting.json and reading the refs again. */
export const FENCE_WAIT_MS = 2 * FENCE_MS + 1000;
/**
 * A gc/deleting.json older than this is from a gc that died mid-sweep:
 * servers ignore it, and a gc still sweeping past it stops deleting.
 */
export const DELETING_MAX_AGE_MS = 20 * 60 * 1000;
/** How long a server trusts its copy of gc/pending.json: absent, and at most. */
const ABSENT_TTL_MS = 5000;
const MAX_TTL_MS = 60_000;
const MIN_TTL_MS = 250;

export interface PendingList {
  readonly version: 1;
  /** The grace window of the run that wrote it (servers re-read within a quarter of it). */
  readonly graceMs: number;
  readonly writtenAt: number;
  /** Unreachable loose objects: ID -> when first found unreachable (ms since the epoch). */
  readonly objects: Readonly<Record<ObjectId, number>>;
  /** Packs holding nothing live that is not stored elsewhere: name -> when first found so. */
  readonly packs: Readonly<Record<string, number>>;
}

export interface DeletingList {
  readonly version: 1;
  readonly startedAt: number;
  readonly objects: readonly ObjectId[];
  readonly packs: readonly string[];
}

export interface PendingView {
  readonly objects: ReadonlySet<ObjectId>;
  readonly packs: ReadonlySet<string>;
}

const EMPTY_VIEW: PendingView = { objects: new Set(), packs: new Set() };

function badState(key: string, reason: string): MediaGitError {
  return new MediaGitError('GC_STATE_CORRUPT', `${key} is not valid: ${reason}`, {
    kind: 'corrupt',
    data: { key },
  });
}

function idMap(value: unknown, key: string): Record<string, number> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw badState(key, 'expected an object of IDs');
  }
  const out: Record<string, number> = {};
  for (const [id, at] of Object.entries(value)) {
    if (!isObjectId(id) || typeof at !== 'number' || !Number.isFinite(at)) {
      throw badState(key, `bad entry ${id}`);
    }
    out[id] = at;
  }
  return out;
}

/** The JSON object stored under `key`, version 1, or GC_STATE_CORRUPT. */
function parseState<T extends { version: 1 }>(bytes: Uint8Array, key: string): Partial<T> {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    throw badState(key, 'not JSON');
  }
  if ((value as Partial<T> | null)?.version !== 1) throw badState(key, 'unknown version');
  return value as Partial<T>;
}

export function parsePending(bytes: Uint8Array): PendingList {
  const v = parseState<PendingList>(bytes, PENDING_KEY);
  const graceMs = typeof v.graceMs === 'number' && v.graceMs >= 0 ? v.graceMs : 0;
  const writtenAt = typeof v.writtenAt === 'number' ? v.writtenAt : 0;
  return {
    version: 1,
    graceMs,
    writtenAt,
    objects: idMap(v.objects, PENDING_KEY),
    packs: idMap(v.packs, PENDING_KEY),
  };
}

export function parseDeleting(bytes: Uint8Array): DeletingList {
  const v = parseState<DeletingList>(bytes, DELETING_KEY);
  const ids = (list: unknown): string[] => {
    if (!Array.isArray(list) || !list.every((id) => typeof id === 'string' && isObjectId(id))) {
      throw badState(DELETING_KEY, 'expected a list of IDs');
    }
    return list as string[];
  };
  if (typeof v.startedAt !== 'number') throw badState(DELETING_KEY, 'no start time');
  return { version: 1, startedAt: v.startedAt, objects: ids(v.objects), packs: ids(v.packs) };
}

/** The pending list and its ETag, or undefined when no gc has written one. */
export async function readPending(
  backend: StorageBackend,
): Promise<{ list: PendingList; etag: string } | undefined> {
  const head = await backend.head(PENDING_KEY);
  if (head === undefined) return undefined;
  try {
    return { list: parsePending(await backend.get(PENDING_KEY)), etag: head.etag };
  } catch (error) {
    if (isStorageCode(error, 'STORAGE_NOT_FOUND')) return undefined;
    throw error;
  }
}

/** The sweep in progress, or undefined (none, or one too old to be alive). */
export async function readDeleting(
  backend: StorageBackend,
  now = Date.now(),
): Promise<DeletingList | undefined> {
  let bytes: Uint8Array;
  try {
    bytes = await backend.get(DELETING_KEY);
  } catch (error) {
    if (isStorageCode(error, 'STORAGE_NOT_FOUND')) return undefined;
    throw error;
  }
  const list = parseDeleting(bytes);
  return now - list.startedAt > DELETING_MAX_AGE_MS ? undefined : list;
}

/**
 * A server's view of gc/pending.json, re-read (a HEAD, and a GET when it
 * changed) at most every quarter of the grace window, and every few seconds
 * while there is none. A damaged list is treated as empty: it only steers
 * deduplication, never what gc deletes.
 */
export class PendingCache {
  readonly #backend: StorageBackend;
  #view: PendingView = EMPTY_VIEW;
  #etag: string | undefined;
  #checkedAt = -Infinity;
  #ttl = ABSENT_TTL_MS;
  #reading: Promise<PendingView> | undefined;

  constructor(backend: StorageBackend) {
    this.#backend = backend;
  }

  async view(): Promise<PendingView> {
    if (performance.now() - this.#checkedAt < this.#ttl) return this.#view;
    this.#reading ??= this.#read().finally(() => (this.#reading = undefined));
    return this.#reading;
  }

  /** Forgets the cached copy (the next `view` reads the store). */
  invalidate(): void {
    this.#checkedAt = -Infinity;
  }

  async #read(): Promise<PendingView> {
    const started = performance.now();
    const head = await this.#backend.head(PENDING_KEY);
    if (head === undefined) {
      this.#view = EMPTY_VIEW;
      this.#etag = undefined;
      this.#ttl = ABSENT_TTL_MS;
    } else if (head.etag !== this.#etag) {
      try {
        const list = parsePending(await this.#backend.get(PENDING_KEY));
        this.#view = {
          objects: new Set(Object.keys(list.objects)),
          packs: new Set(Object.keys(list.packs)),
        };
        this.#ttl = Math.min(MAX_TTL_MS, Math.max(MIN_TTL_MS, list.graceMs / 4));
      } catch (error) {
        if (!(error instanceof MediaGitError)) throw error;
        this.#view = EMPTY_VIEW;
        this.#ttl = ABSENT_TTL_MS;
      }
      this.#etag = head.etag;
    }
    this.#checkedAt = started;
    return this.#view;
  }
}

/** The refusal of a write that would make objects being deleted reachable. */
export function beingCollected(id: ObjectId): MediaGitError {
  return new MediaGitError(
    'GC_COLLECTING',
    `object ${id} is being removed by gc on the server; push again to upload it`,
    { kind: 'user', data: { id, status: 409 } },
  );
}
