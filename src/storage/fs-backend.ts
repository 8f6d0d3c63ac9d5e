/**
 * The local file-system backend (`file://<dir>`): each key is a file under
 * the root. Puts go to a temp file in `<root>/.tmp`, are fsynced, then
 * renamed (or, for `ifNoneMatch: '*'`, hard-linked, which fails if the key
 * exists: atomic create). `ifMatch` takes a per-key lock file (O_EXCL), the
 * same discipline as refs, so processes sharing a root compare-and-swap
 * safely. Temp files (any `.tmp` folder) and lock files (`*.lock`) are
 * reserved: never listed, refused as keys.
 */
import { randomBytes } from 'node:crypto';
import { readFile, type BigIntStats } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { createFile } from './direct-io.ts';
import { hasErrnoCode, MediaGitError } from '../errors.ts';
import {
  checkKey,
  checkPrefix,
  notFound,
  preconditionFailed,
  type ObjectHead,
  type PutOptions,
  type StorageBackend,
} from './backend.ts';
import { fsyncDirectory } from './durable-file.ts';

const readFileCallback = promisify(readFile);

const LOCK_SUFFIX = '.lock';
const TMP_DIR = '.tmp';
const LOCK_WAIT_MS = 10_000;

export class FsBackend implements StorageBackend {
  readonly url: string;
  readonly root: string;
  readonly capabilities = {
    conditionalPut: true,
    rangedGet: true,
    signedUrls: false,
    remote: false,
  } as const;
  readonly #dirs = new Set<string>();
  readonly #fileMode: number;
  readonly #dirMode: number | undefined;

  /**
   * `fileMode` / `dirMode`: permissions of the files and folders it creates
   * (a server root's state folder keeps its secrets 0600 in a 0700 folder).
   */
  constructor(root: string, options: { fileMode?: number; dirMode?: number } = {}) {
    this.root = path.resolve(root);
    this.url = pathToFileURL(this.root).href;
    this.#fileMode = options.fileMode ?? 0o644;
    this.#dirMode = options.dirMode;
  }

  child(prefix: string): FsBackend {
    return new FsBackend(path.join(this.root, ...checkKey(prefix).split('/')), {
      fileMode: this.#fileMode,
      ...(this.#dirMode !== undefined ? { dirMode: this.#dirMode } : {}),
    });
  }

  static fromUrl(url: string): FsBackend {
    return new FsBackend(fileURLToPath(url));
  }

  #path(key: string): string {
    const full = path.join(this.root, ...checkKey(key).split('/'));
    if (key.endsWith(LOCK_SUFFIX) || key.split('/').includes(TMP_DIR)) {
      throw new MediaGitError('STORAGE_BAD_KEY', `storage key ${key} is reserved`, {
        kind: 'usage',
        data: { key },
      });
    }
    return full;
  }

  async get(key: string): Promise<Uint8Array> {
    try {
      // The callback form: measured ~30 % faster than fs/promises' readFile
      // over thousands of small objects (a clone's metadata).
      return await readFileCallback(this.#path(key));
    } catch (error) {
      if (hasErrnoCode(error, 'ENOENT') || hasErrnoCode(error, 'ENOTDIR')) throw notFound(key);
      throw error;
    }
  }

  async getRange(key: string, start: number, end: number): Promise<Uint8Array> {
    let handle: fs.FileHandle;
    try {
      handle = await fs.open(this.#path(key), 'r');
    } catch (error) {
      if (hasErrnoCode(error, 'ENOENT') || hasErrnoCode(error, 'ENOTDIR')) throw notFound(key);
      throw error;
    }
    try {
      const { size } = await handle.stat();
      const from = Math.max(0, start);
      const to = Math.min(size, end);
      // Not zero-filled: every byte returned is read (a short file returns fewer).
      const out = Buffer.allocUnsafe(Math.max(0, to - from));
      let done = 0;
      while (done < out.length) {
        const { bytesRead } = await handle.read(out, done, out.length - done, from + done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
      return out.subarray(0, done);
    } finally {
      await handle.close();
    }
  }

  async put(key: string, data: Uint8Array, options: PutOptions = {}): Promise<{ etag: string }> {
    const target = this.#path(key);
    await this.#ensureDir(path.dirname(target));
    const tmpDir = path.join(this.root, '.tmp');
    await this.#ensureDir(tmpDir);
    const tmp = path.join(tmpDir, `${process.pid}-${randomBytes(6).toString('hex')}`);
    const handle = await createFile(tmp, [data], this.#fileMode);
    let etag: string;
    try {
      await handle.sync();
      // The version's identity: this new file's inode, size and mtime, which
      // the link or rename below keep (docs/design.md, storage backends).
      etag = etagOf(await handle.stat({ bigint: true }));
    } finally {
      await handle.close();
    }
    try {
      if (options.ifNoneMatch === '*') {
        try {
          await fs.link(tmp, target);
        } catch (error) {
          if (hasErrnoCode(error, 'EEXIST')) throw preconditionFailed(key, 'no object');
          throw error;
        }
      } else if (options.ifMatch !== undefined) {
        const release = await this.#lock(target, key);
        try {
          const current = await this.head(key);
          if (current?.etag !== options.ifMatch) throw preconditionFailed(key, options.ifMatch);
          await fs.rename(tmp, target);
        } finally {
          await release();
        }
      } else {
        await fs.rename(tmp, target);
      }
      await fsyncDirectory(path.dirname(target));
      return { etag };
    } finally {
      await fs.rm(tmp, { force: true });
    }
  }

  /** mkdir -p, once per folder per process (folders are never removed under a running server). */
  async #ensureDir(dir: string): Promise<void> {
    if (this.#dirs.has(dir)) return;
    await fs.mkdir(dir, {
      recursive: true,
      ...(this.#dirMode !== undefined ? { mode: this.#dirMode } : {}),
    });
    this.#dirs.add(dir);
  }

  /** Takes `<target>.lock` (O_EXCL), waiting for another holder for up to 10 s. */
  async #lock(target: string, key: string): Promise<() => Promise<void>> {
    const lock = target + LOCK_SUFFIX;
    const deadline = Date.now() + LOCK_WAIT_MS;
    for (let delay = 1; ; delay = Math.min(delay * 2, 50)) {
      try {
        await (await fs.open(lock, 'wx')).close();
        return () => fs.rm(lock, { force: true });
      } catch (error) {
        if (!hasErrnoCode(error, 'EEXIST')) throw error;
        if (Date.now() > deadline) {
          throw new MediaGitError('STORAGE_LOCKED', `storage key ${key} is locked (${lock})`, {
            kind: 'conflict',
            data: { key, lock },
          });
        }
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }

  async head(key: string): Promise<ObjectHead | undefined> {
    try {
      const stats = await fs.stat(this.#path(key), { bigint: true });
      if (!stats.isFile()) return undefined;
      return { size: Number(stats.size), etag: etagOf(stats) };
    } catch (error) {
      if (hasErrnoCode(error, 'ENOENT') || hasErrnoCode(error, 'ENOTDIR')) return undefined;
      throw error;
    }
  }

  async *list(prefix: string): AsyncIterable<string> {
    checkPrefix(prefix);
    const keys: string[] = [];
    const walk = async (dir: string, rel: string): Promise<void> => {
      let entries;
      try {
        entries = await fs.readdir(dir, { withFileTypes: true });
      } catch (error) {
        if (hasErrnoCode(error, 'ENOENT') || hasErrnoCode(error, 'ENOTDIR')) return;
        throw error;
      }
      for (const entry of entries) {
        const key = rel === '' ? entry.name : `${rel}/${entry.name}`;
        // Temp folders (this backend's, or a child backend's under its prefix).
        if (entry.name === TMP_DIR) continue;
        if (entry.name.endsWith(LOCK_SUFFIX)) continue;
        if (entry.isDirectory()) {
          if (prefix.startsWith(`${key}/`) || key.startsWith(prefix) || prefix.startsWith(key)) {
            await walk(path.join(dir, entry.name), key);
          }
        } else if (entry.isFile() && key.startsWith(prefix)) keys.push(key);
      }
    };
    await walk(this.root, '');
    yield* keys.sort();
  }

  async delete(key: string): Promise<void> {
    await fs.rm(this.#path(key), { force: true });
  }
}

/** A file version's ETag: inode, size and modification time (ns); a new file per put. */
function etagOf(stats: BigIntStats): string {
  return `${stats.ino.toString(16)}-${stats.size.toString(16)}-${stats.mtimeNs.toString(16)}`;
}
