/**
 * File locks of a server repository (the Git LFS File Locking model, which
 * `mediagit lock` shares): one storage key per locked path,
 * `locks/<SHA-256 of the path>`, holding the lock as JSON. Taking a lock is
 * a create-only put, so two server processes on one store never grant the
 * same path twice.
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

  async #read(key: string): Promise<FileLock | undefined> {
    try {
      return JSON.parse(
        Buffer.from(await this.#repo.backend.get(key)).toString('utf8'),
      ) as FileLock;
    } catch (error) {
      if (error instanceof MediaGitError && error.code === 'STORAGE_NOT_FOUND') return undefined;
      throw error;
    }
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
    try {
      await this.#repo.backend.put(key, Buffer.from(JSON.stringify(lock)), { ifNoneMatch: '*' });
      return { created: true, lock };
    } catch (error) {
      if (!(error instanceof MediaGitError && error.code === 'STORAGE_PRECONDITION_FAILED'))
        throw error;
    }
    const held = await this.#read(key);
    if (!held) return this.create(filePath, owner); // unlocked meanwhile
    return { created: false, lock: held };
  }

  /** Every lock, by path. */
  async list(): Promise<FileLock[]> {
    const locks: FileLock[] = [];
    for await (const key of this.#repo.backend.list(PREFIX)) {
      const lock = await this.#read(key);
      if (lock) locks.push(lock);
    }
    return locks.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }

  async find(id: string): Promise<FileLock | undefined> {
    return (await this.list()).find((lock) => lock.id === id);
  }

  async remove(lock: FileLock): Promise<void> {
    await this.#repo.backend.delete(this.#key(lock.path));
  }
}
