/**
 * Crash-safe file writes on a local filesystem.
 *
 * Contract: a file written through `writeFileAtomic` is either absent or
 * complete at its final path, whatever instant the process dies: bytes go to a
 * temp file in the same filesystem, are fsynced, then renamed into place. The
 * rename itself becomes durable when the parent directory is fsynced, which
 * `DirectorySync` batches to once per directory per command.
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { hasErrnoCode } from '../errors.ts';
import { createFile } from './direct-io.ts';
import {
  lockOwnerLine,
  removeStaleLock,
  trackLock,
  trackPendingLock,
  trackTempDir,
  untrackLock,
} from './leftovers.ts';

export function tempName(dir: string, label: string): string {
  trackTempDir(dir);
  return path.join(dir, `${label}-${process.pid}-${randomBytes(6).toString('hex')}.tmp`);
}

/** Directories whose entries changed and must be fsynced before a commit point. */
export class DirectorySync {
  readonly #dirs = new Set<string>();

  add(dir: string): void {
    this.#dirs.add(dir);
  }

  /** Fsyncs every recorded directory, a few at a time, then forgets them. */
  async flush(): Promise<void> {
    const dirs = [...this.#dirs];
    this.#dirs.clear();
    const workers = Array.from({ length: Math.min(8, dirs.length) }, async () => {
      for (let dir = dirs.pop(); dir !== undefined; dir = dirs.pop()) {
        await fsyncDirectory(dir).catch((error: unknown) => {
          // A folder removed meanwhile has no entry left to make durable
          // (repack removes objects/xx/ folders it emptied by packing them).
          if (!hasErrnoCode(error, 'ENOENT')) throw error;
        });
      }
    });
    await Promise.all(workers);
  }
}

export async function fsyncDirectory(dir: string): Promise<void> {
  const handle = await fs.open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Writes `parts` to `finalPath` through a fsynced temp file in `tmpDir`,
 * renamed into place (replacing a file of the same name: content-addressed
 * files with the same name have the same bytes).
 */
export async function writeFileAtomic(
  finalPath: string,
  parts: readonly Uint8Array[],
  options: { tmpDir: string; dirSync?: DirectorySync | undefined; mode?: number },
): Promise<void> {
  const { durable } = await beginAtomicWrite(finalPath, parts, options);
  await durable;
}

/**
 * The two halves of `writeFileAtomic`, for pipelines: `written` resolves once
 * the bytes are handed to the kernel (the caller may reuse its buffers), and
 * `durable` once the file is fsynced and renamed into place. The contract is
 * the same: the final name appears only with complete, fsynced content.
 */
export async function beginAtomicWrite(
  finalPath: string,
  parts: readonly Uint8Array[],
  options: {
    tmpDir: string;
    dirSync?: DirectorySync | undefined;
    mode?: number;
    /**
     * The rename waits for this too (the file is flushed meanwhile): a pack's
     * index appears only once its pack is in place. Rejected, the temp file
     * goes and `durable` rejects with its error.
     */
    renameAfter?: Promise<void>;
  },
): Promise<{ durable: Promise<void> }> {
  const tmp = tempName(options.tmpDir, path.basename(finalPath));
  const handle = await createFile(tmp, parts, options.mode ?? 0o444);
  const durable = (async () => {
    try {
      await handle.sync();
    } catch (error) {
      await handle.close().catch(() => undefined);
      await fs.rm(tmp, { force: true });
      throw error;
    }
    await handle.close();
    try {
      await options.renameAfter;
    } catch (error) {
      await fs.rm(tmp, { force: true });
      throw error;
    }
    try {
      await fs.rename(tmp, finalPath);
    } catch (error) {
      if (!hasErrnoCode(error, 'ENOENT')) {
        await fs.rm(tmp, { force: true });
        throw error;
      }
      await fs.mkdir(path.dirname(finalPath), { recursive: true });
      await fs.rename(tmp, finalPath);
      // The new folder's own entry must become durable too (repack -d
      // removes emptied objects/xx/ folders, so they are created often).
      options.dirSync?.add(path.dirname(path.dirname(finalPath)));
    }
    options.dirSync?.add(path.dirname(finalPath));
  })();
  // The caller awaits `durable` later; until then a failure must not be unhandled.
  durable.catch(() => undefined);
  return { durable };
}

/**
 * A lock file taken with O_EXCL, as Git's `*.lock` files: present means held.
 * Until its new content is committed it holds `<pid> <hostname>`, so a lock
 * left by a process that died on this machine is removed by the next one that
 * wants it (leftovers.ts); an interrupted command removes its own.
 */
export class LockFile {
  readonly path: string;
  readonly #handle: fs.FileHandle;
  #done = false;

  private constructor(lockPath: string, handle: fs.FileHandle) {
    this.path = lockPath;
    this.#handle = handle;
  }

  /**
   * Takes the lock for `target`, or throws EEXIST when another process holds
   * it (a dead process's lock on this machine is removed first).
   */
  static async acquire(target: string): Promise<LockFile> {
    const lockPath = `${target}.lock`;
    let handle: fs.FileHandle;
    // Interrupted while the open is in flight, the sweep still finds the file.
    const settled = trackPendingLock(lockPath);
    try {
      try {
        handle = await fs.open(lockPath, 'wx', 0o644);
      } catch (error) {
        if (!hasErrnoCode(error, 'EEXIST') || !removeStaleLock(lockPath)) throw error;
        handle = await fs.open(lockPath, 'wx', 0o644);
      }
      trackLock(lockPath);
    } finally {
      settled();
    }
    try {
      await handle.write(lockOwnerLine(), 0);
    } catch (error) {
      await handle.close();
      await fs.rm(lockPath, { force: true });
      untrackLock(lockPath);
      throw error;
    }
    return new LockFile(lockPath, handle);
  }

  /** Writes the new content into the lock file and renames it over the target. */
  async commit(content: Uint8Array, dirSync?: DirectorySync): Promise<void> {
    if (this.#done) throw new Error('lock already released');
    this.#done = true;
    try {
      await this.#handle.truncate(0);
      for (let done = 0; done < content.length;) {
        done += (await this.#handle.write(content, done, content.length - done, done)).bytesWritten;
      }
      await this.#handle.sync();
    } finally {
      await this.#handle.close();
    }
    const target = this.path.slice(0, -'.lock'.length);
    await fs.rename(this.path, target);
    untrackLock(this.path);
    if (dirSync) dirSync.add(path.dirname(target));
    else await fsyncDirectory(path.dirname(target));
  }

  async release(): Promise<void> {
    if (this.#done) return;
    this.#done = true;
    await this.#handle.close().catch(() => undefined);
    await fs.rm(this.path, { force: true });
    untrackLock(this.path);
  }
}
