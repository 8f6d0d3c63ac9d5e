/**
 * File locks of a server repository (the Git LFS File Locking model, which
 * `mediagit lock` shares): one storage key per locked path,
 * `locks/<SHA-256 of the path>`, holding the lock as JSON. Taking a lock is
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
import type { BackendRepo } from './backend-repo.ts';

export interface FileLock {
  readonly id: string;
  readonly path: string;
  readonly locked_at: string;
  readonly owner: { readonly name: string };
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

  #key(filePath: string): string {
    return `${PREFIX}${sha256Hex(Buffer.from(filePath, 'utf8'))}`;
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

  /** Locks `filePath` for `owner`; when it is already locked, returns the lock that holds it. */
  async create(filePath: string, owner: string): Promise<{ created: boolean; lock: FileLock }> {
    const key = this.#key(checkLockPath(filePath));
    const lock: FileLock = {
      id: randomBytes(10).toString('hex'),
      path: filePath,
      locked_at: new Date().toISOString(),
      owner: { name: owner },
    };
    const body = Buffer.from(JSON.stringify(lock));
    for (;;) {
      const current = await this.#read(key);
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

  /** Every lock, by path. */
  async list(): Promise<FileLock[]> {
    const locks: FileLock[] = [];
    for await (const key of this.#repo.backend.list(PREFIX)) {
      const lock = (await this.#read(key))?.lock;
      if (lock) locks.push(lock);
    }
    return locks.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
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
    const key = this.#key(lock.path);
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
  const entryAt = async (commit: ObjectId | null, filePath: string): Promise<string> => {
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
  };
  const changed: L[] = [];
  for (const lock of locks) {
    if ((await entryAt(from, lock.path)) !== (await entryAt(to, lock.path))) changed.push(lock);
  }
  return changed;
}
