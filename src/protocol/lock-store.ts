/**
 * File locks of a server repository (the Git LFS File Locking model, which
 * `mediagit lock` shares): one storage key per locked path,
 * `locks/<SHA-256 of the path>`, holding the lock as JSON. Taking a lock is
 * a create-only put (or, for a path locked before, a put conditional on
 * the released version), so two server processes on one store never grant
 * the same path twice. Releasing leaves an empty value.
 */
import { randomBytes } from 'node:crypto';
import { MediaGitError } from '../errors.ts';
import { sha256Hex } from '../odb/object-id.ts';
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

  /** The lock at `key` (undefined: never locked or released) and the version read. */
  async #read(key: string): Promise<{ lock: FileLock | undefined; etag: string } | undefined> {
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
    return { lock: text === '' ? undefined : (JSON.parse(text) as FileLock), etag: head.etag };
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

  /**
   * Releases `lock` if it still holds its path. The key keeps an empty value
   * (released) instead of being deleted: a delete cannot be conditional, and
   * an unconditional one could remove a lock someone took in between.
   */
  async remove(lock: FileLock): Promise<boolean> {
    const key = this.#key(lock.path);
    for (;;) {
      const current = await this.#read(key);
      if (current?.lock?.id !== lock.id) return false;
      try {
        await this.#repo.backend.put(key, new Uint8Array(0), { ifMatch: current.etag });
        return true;
      } catch (error) {
        if (!(error instanceof MediaGitError && error.code === 'STORAGE_PRECONDITION_FAILED')) {
          throw error;
        }
      }
    }
  }
}
