/**
 * File locks of a server repository (the Git LFS File Locking model, which
 * `mediagit lock` shares): one storage key per lock slot, holding the lock as
 * JSON. A global lock (no ref: every lock taken before per-branch locks, and
 * every lock under `locks.scope = "global"`) sits at
 * `locks/<SHA-256 of the path>`; a branch lock at
 * `locks/<SHA-256 of path NUL ref>`, so one path can be locked on two
 * branches (docs/locks.md). Taking a lock is
 * a create-only put (or, for a path locked before, a put conditional on
 * the released version), so two server processes on one store never grant
 * the same path twice. Releasing leaves a tombstone naming the released lock.
 * Both are idempotent: the owner locking again gets its lock, and unlocking a
 * lock already released by its owner succeeds (a retried request must never
 * turn success into failure).
 */
import { randomBytes } from 'node:crypto';
import { MediaGitError } from '../errors.ts';
import { decodeCommit } from '../odb/commit.ts';
import { sha256Hex, type ObjectId } from '../odb/object-id.ts';
import { decodeTree } from '../odb/tree.ts';
import { parse as parseToml } from 'smol-toml';
import type { BackendRepo } from './backend-repo.ts';

export interface FileLock {
  readonly id: string;
  readonly path: string;
  readonly locked_at: string;
  readonly owner: { readonly name: string };
  /** The branch the lock holds (`refs/heads/<name>`); absent: every branch. */
  readonly ref?: { readonly name: string };
}

/** Where new locks apply: only to the branch they name, or to all branches. */
export type LockScope = 'branch' | 'global';

/**
 * Whether `lock` stops changes to its path on `ref`: a global lock stops
 * them everywhere, a branch lock only on its branch.
 */
export function lockAppliesTo(
  lock: { readonly ref?: { readonly name: string } },
  ref: string,
): boolean {
  return lock.ref === undefined || lock.ref.name === ref;
}

/**
 * The lock scope set in a server repository's config (`[locks] scope`);
 * "branch" when unset.
 */
export async function lockScope(repo: BackendRepo): Promise<LockScope> {
  let text: string;
  try {
    text = Buffer.from(await repo.backend.get('config')).toString('utf8');
  } catch (error) {
    if (error instanceof MediaGitError && error.code === 'STORAGE_NOT_FOUND') return 'branch';
    throw error;
  }
  let table: Record<string, unknown>;
  try {
    table = parseToml(text);
  } catch (error) {
    throw new MediaGitError(
      'CONFIG_INVALID',
      'the repository config on the server is not valid TOML',
      {
        kind: 'config',
        cause: error,
      },
    );
  }
  const locks = table['locks'];
  const scope =
    typeof locks === 'object' && locks !== null ? (locks as { scope?: unknown }).scope : undefined;
  if (scope === undefined || scope === 'branch') return 'branch';
  if (scope === 'global') return 'global';
  throw new MediaGitError(
    'CONFIG_INVALID',
    `locks.scope on the server is ${JSON.stringify(scope)}; use "branch" or "global"`,
    { kind: 'config' },
  );
}

const PREFIX = 'locks/';

/** A repository path as locks name it: relative, '/'-separated, no '.' or '..' segments. */
export function checkLockPath(value: unknown): string {
  const text = typeof value === 'string' ? value : '';
  const segments = text.split('/');
  const bad =
    text === '' ||
    text.length > 4096 ||
    text.startsWith('/') ||
    /[\0\\]/.test(text) ||
    segments.some((s) => s === '' || s === '.' || s === '..');
  if (bad) {
    throw new MediaGitError('BAD_LOCK_PATH', `not a repository path: ${JSON.stringify(value)}`, {
      kind: 'user',
      data: { status: 422 },
    });
  }
  return text;
}

export class LockStore {
  readonly #repo: BackendRepo;

  constructor(repo: BackendRepo) {
    this.#repo = repo;
  }

  #key(filePath: string, ref?: string): string {
    const name = ref === undefined ? filePath : `${filePath}\0${ref}`;
    return `${PREFIX}${sha256Hex(Buffer.from(name, 'utf8'))}`;
  }

  /**
   * The lock at `key` (undefined: never locked or released), the lock last
   * released there, and the version read.
   */
  async #read(
    key: string,
  ): Promise<{ lock: FileLock | undefined; released?: FileLock; etag: string } | undefined> {
    // The ETag first, then the bytes (backend-repo.ts readRef): a change in
    // between makes a conditional put on this ETag fail, never act on old bytes.
    const head = await this.#repo.backend.head(key);
    if (!head) return undefined;
    let bytes: Uint8Array;
    try {
      bytes = await this.#repo.backend.get(key);
    } catch (error) {
      if (error instanceof MediaGitError && error.code === 'STORAGE_NOT_FOUND') return undefined;
      throw error;
    }
    const text = Buffer.from(bytes).toString('utf8');
    if (text === '') return { lock: undefined, etag: head.etag };
    const value = JSON.parse(text) as FileLock | { released: FileLock };
    if ('released' in value) return { lock: undefined, released: value.released, etag: head.etag };
    return { lock: value, etag: head.etag };
  }

  /**
   * Locks `filePath` for `owner`, on branch `ref` only (undefined: on every
   * branch); when it is already locked there, returns the lock that holds
   * it. A global lock and a branch lock on one path conflict; they sit at
   * two keys, so that check is a read before the put, not part of it (two
   * such requests racing could both succeed: docs/locks.md).
   */
  async create(
    filePath: string,
    owner: string,
    ref?: string,
  ): Promise<{ created: boolean; lock: FileLock }> {
    const key = this.#key(checkLockPath(filePath), ref);
    const lock: FileLock = {
      id: randomBytes(10).toString('hex'),
      path: filePath,
      locked_at: new Date().toISOString(),
      owner: { name: owner },
      ...(ref !== undefined ? { ref: { name: ref } } : {}),
    };
    const body = Buffer.from(JSON.stringify(lock));
    for (;;) {
      const current = await this.#read(key);
      if (!current?.lock) {
        const blocking = await this.#otherSlot(filePath, owner, ref);
        if (blocking) return { created: false, lock: blocking };
      }
      // The owner asking again (a retried request whose answer was lost)
      // gets the lock it holds: locking is idempotent.
      if (current?.lock && current.lock.owner.name === owner)
        return { created: true, lock: current.lock };
      if (current?.lock) return { created: false, lock: current.lock };
      try {
        // Absent: create-only; released (an empty value): replace that version only.
        await this.#repo.backend.put(
          key,
          body,
          current ? { ifMatch: current.etag } : { ifNoneMatch: '*' },
        );
        return { created: true, lock };
      } catch (error) {
        if (!(error instanceof MediaGitError && error.code === 'STORAGE_PRECONDITION_FAILED')) {
          throw error;
        }
        // Someone else locked or released it meanwhile: look again.
      }
    }
  }

  /** Another owner's lock on `filePath` in the other kind of slot (global vs branch). */
  async #otherSlot(filePath: string, owner: string, ref?: string): Promise<FileLock | undefined> {
    if (ref !== undefined) {
      const global = (await this.#read(this.#key(filePath)))?.lock;
      return global && global.owner.name !== owner ? global : undefined;
    }
    return (await this.list()).find(
      (l) => l.path === filePath && l.ref !== undefined && l.owner.name !== owner,
    );
  }

  /** Every lock, by path (then ref, global first). */
  async list(): Promise<FileLock[]> {
    const locks: FileLock[] = [];
    for await (const key of this.#repo.backend.list(PREFIX)) {
      const lock = (await this.#read(key))?.lock;
      if (lock) locks.push(lock);
    }
    const order = (l: FileLock) => `${l.path}\0${l.ref?.name ?? ''}`;
    return locks.sort((a, b) => (order(a) < order(b) ? -1 : order(a) > order(b) ? 1 : 0));
  }

  async find(id: string): Promise<FileLock | undefined> {
    return (await this.list()).find((lock) => lock.id === id);
  }

  /** The lock with this ID if it was released and nothing was locked there since. */
  async findReleased(id: string): Promise<FileLock | undefined> {
    for await (const key of this.#repo.backend.list(PREFIX)) {
      const released = (await this.#read(key))?.released;
      if (released?.id === id) return released;
    }
    return undefined;
  }

  /**
   * Releases `lock` if it still holds its path. The key keeps a tombstone
   * naming the released lock (`{"released": lock}`) instead of being
   * deleted: a delete cannot be conditional, and an unconditional one could
   * remove a lock someone took in between; the tombstone also lets a retried
   * unlock succeed (`findReleased`).
   */
  async remove(lock: FileLock): Promise<boolean> {
    const key = this.#key(lock.path, lock.ref?.name);
    for (;;) {
      const current = await this.#read(key);
      if (current?.lock?.id !== lock.id) return false;
      try {
        const tombstone = Buffer.from(JSON.stringify({ released: lock }));
        await this.#repo.backend.put(key, tombstone, { ifMatch: current.etag });
        return true;
      } catch (error) {
        if (!(error instanceof MediaGitError && error.code === 'STORAGE_PRECONDITION_FAILED')) {
          throw error;
        }
      }
    }
  }
}

/**
 * The locks whose path differs between the trees of two commits (`from`
 * null: none): what a branch update would change under others' locks. The
 * server refuses such an update; `push` checks first, with its own objects.
 */
export async function changedLockedPaths<L extends { readonly path: string }>(
  read: (id: ObjectId) => Promise<Buffer>,
  from: ObjectId | null,
  to: ObjectId,
  locks: readonly L[],
): Promise<L[]> {
  const entryAt = (commit: ObjectId | null, filePath: string) => pathEntry(read, commit, filePath);
  const changed: L[] = [];
  for (const lock of locks) {
    if ((await entryAt(from, lock.path)) !== (await entryAt(to, lock.path))) changed.push(lock);
  }
  return changed;
}

/** `<mode> <id>` of `filePath` in `commit`'s tree; '' when absent (or `commit` is null). */
async function pathEntry(
  read: (id: ObjectId) => Promise<Buffer>,
  commit: ObjectId | null,
  filePath: string,
): Promise<string> {
  if (commit === null) return '';
  let tree = decodeCommit(commit, await read(commit)).tree;
  const parts = filePath.split('/');
  for (let i = 0; i < parts.length; i++) {
    const entry = decodeTree(tree, await read(tree)).find((e) => e.name === parts[i]);
    if (!entry) return '';
    if (i === parts.length - 1) return `${entry.mode} ${entry.id}`;
    if (entry.kind !== 'tree') return '';
    tree = entry.id;
  }
  return '';
}

/** How many commits the stale-lock check walks back from the client's base before giving up. */
const STALE_WALK_LIMIT = 10_000;

/**
 * The smart-lock rule (Plastic's): locking `filePath` on a branch whose tip
 * is `tip` from a client whose HEAD is `base` is refused when the file at
 * `tip` differs from the file at `base` and `tip` is not in `base`'s history
 * (the client would edit an old version). Returns `tip` then, undefined when
 * the lock may be taken. A `base` the server does not have (unpushed local
 * commits) cannot be judged and passes (docs/locks.md).
 */
export async function staleLockTip(
  repo: Pick<BackendRepo, 'has' | 'read'>,
  tip: ObjectId | undefined,
  base: ObjectId,
  filePath: string,
): Promise<ObjectId | undefined> {
  if (tip === undefined || tip === base || !(await repo.has(base))) return undefined;
  const read = async (id: ObjectId): Promise<Buffer> => (await repo.read(id)).data;
  if ((await pathEntry(read, base, filePath)) === (await pathEntry(read, tip, filePath))) {
    return undefined;
  }
  // The client may be ahead of the tip (it pulled, then committed): not stale.
  const seen = new Set<ObjectId>([base]);
  const queue: ObjectId[] = [base];
  while (queue.length > 0 && seen.size <= STALE_WALK_LIMIT) {
    const id = queue.shift()!;
    for (const parent of decodeCommit(id, await read(id)).parents) {
      if (parent === tip) return undefined;
      if (!seen.has(parent) && (await repo.has(parent))) {
        seen.add(parent);
        queue.push(parent);
      }
    }
  }
  return tip;
}
