/**
 * What keeps `gc` from deleting an object a running command is about to
 * reference (docs/gc.md, "Concurrency").
 *
 * The danger is a command that writes objects, or decides not to write one
 * because it is already stored (deduplication), and only later makes a ref or
 * the index name it: until then nothing reachable names the object, so a gc
 * marking in between would judge it garbage. Git narrows that window with a
 * two-week grace period; `gc --prune=now` must close it. Two files do:
 *
 * - `objects/info/writers/<pid>-<random>` ("<pid> <hostname>"): a process
 *   registers before its first object write or existence check meant for
 *   writing (ObjectStore.has/write/writeEncoded, ingest packs, packing) and
 *   deregisters when it exits (or is interrupted). A registration of a dead
 *   process on this machine counts for nothing and is removed by gc.
 * - `objects/info/gc.lock` ("<pid> <hostname>"): held by gc while it deletes.
 *
 * gc takes the lock, then waits until no other live process is registered,
 * then reads every root again and only then deletes. A writer registers
 * first and then looks for the lock; if a live gc holds it, the writer
 * withdraws its registration, waits for the lock to go, and registers again.
 * Whichever of the two reaches its second step first, the other sees it: gc
 * never deletes while a writer is between its first write and its exit, and
 * the roots gc reads after the writers finished name everything they wrote.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { hasErrnoCode, MediaGitError } from '../errors.ts';
import { LockFile } from '../storage/durable-file.ts';
import { isAlive, lockOwnerLine, removeStaleLock, trackPath } from '../storage/leftovers.ts';

/** How long a writer waits for a running gc to finish deleting before giving up. */
const GC_WAIT_MS = 10 * 60 * 1000;
const POLL_MS = 50;

export function writersDir(objectsDir: string): string {
  return path.join(objectsDir, 'info', 'writers');
}

export function gcLockTarget(objectsDir: string): string {
  return path.join(objectsDir, 'info', 'gc');
}

interface Holder {
  readonly pid: number;
  readonly host: string;
}

function parseHolder(text: string): Holder | undefined {
  const match = /^(\d+) (\S+)\n?$/.exec(text);
  return match ? { pid: Number(match[1]), host: match[2]! } : undefined;
}

/** A holder on another machine, or one whose line cannot be read, counts as alive. */
function holderAlive(holder: Holder | undefined): boolean {
  if (!holder || holder.host !== os.hostname()) return true;
  return holder.pid === process.pid || isAlive(holder.pid);
}

/**
 * One process's registration as a writer of one object store: made once, on
 * the first `register()`, and kept until the process exits.
 */
export class WriterRegistration {
  readonly #objectsDir: string;
  #registered: Promise<void> | undefined;

  constructor(objectsDir: string) {
    this.#objectsDir = objectsDir;
  }

  /** Resolves once this process is registered and no gc is deleting. */
  register(): Promise<void> {
    this.#registered ??= this.#register().catch((error: unknown) => {
      this.#registered = undefined;
      throw error;
    });
    return this.#registered;
  }

  async #register(): Promise<void> {
    const dir = writersDir(this.#objectsDir);
    const deadline = Date.now() + GC_WAIT_MS;
    for (;;) {
      const file = path.join(dir, `${process.pid}-${randomBytes(6).toString('hex')}`);
      try {
        await fsp.writeFile(file, lockOwnerLine(), { flag: 'wx' });
      } catch (error) {
        if (!hasErrnoCode(error, 'ENOENT')) throw error;
        await fsp.mkdir(dir, { recursive: true });
        await fsp.writeFile(file, lockOwnerLine(), { flag: 'wx' });
      }
      const untrack = trackPath(file);
      const holder = await gcHolder(this.#objectsDir);
      if (holder === undefined || holder.pid === process.pid) {
        process.once('exit', () => fs.rmSync(file, { force: true }));
        return;
      }
      // A gc is deleting: step back so it can finish, then register again.
      untrack();
      await fsp.rm(file, { force: true });
      if (Date.now() > deadline) {
        throw new MediaGitError(
          'GC_RUNNING',
          `gc (pid ${holder.pid} on ${holder.host}) has been pruning this repository for over ${GC_WAIT_MS / 60_000} minutes; ` +
            `if no gc runs, remove ${gcLockTarget(this.#objectsDir)}.lock`,
          { kind: 'conflict', data: { pid: holder.pid, host: holder.host } },
        );
      }
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  }
}

/** The live holder of gc.lock, or undefined (a dead holder's lock is removed). */
async function gcHolder(objectsDir: string): Promise<Holder | undefined> {
  const lockPath = `${gcLockTarget(objectsDir)}.lock`;
  let text: string;
  try {
    text = await fsp.readFile(lockPath, 'utf8');
  } catch (error) {
    if (hasErrnoCode(error, 'ENOENT')) return undefined;
    throw error;
  }
  const holder = parseHolder(text);
  if (holderAlive(holder)) return holder ?? { pid: 0, host: 'unknown' };
  removeStaleLock(lockPath);
  return undefined;
}

/** The other processes registered as writers and alive; dead ones' files are removed. */
export async function liveWriters(objectsDir: string): Promise<Holder[]> {
  const dir = writersDir(objectsDir);
  let names: string[];
  try {
    names = await fsp.readdir(dir);
  } catch (error) {
    if (hasErrnoCode(error, 'ENOENT')) return [];
    throw error;
  }
  const live: Holder[] = [];
  for (const name of names) {
    const file = path.join(dir, name);
    let text: string;
    try {
      text = await fsp.readFile(file, 'utf8');
    } catch (error) {
      if (hasErrnoCode(error, 'ENOENT')) continue;
      throw error;
    }
    const holder = parseHolder(text);
    if (holder?.pid === process.pid && holder.host === os.hostname()) continue;
    // A file still being written has no line yet: it is a live registration.
    if (text === '' || holderAlive(holder)) live.push(holder ?? { pid: 0, host: 'unknown' });
    else await fsp.rm(file, { force: true });
  }
  return live;
}

/**
 * Takes gc.lock (a dead gc's lock is removed first), or throws GC_RUNNING
 * naming the live gc that holds it.
 */
export async function acquireGcLock(objectsDir: string): Promise<LockFile> {
  await fsp.mkdir(path.dirname(gcLockTarget(objectsDir)), { recursive: true });
  try {
    return await LockFile.acquire(gcLockTarget(objectsDir));
  } catch (error) {
    if (!hasErrnoCode(error, 'EEXIST')) throw error;
    const holder = await gcHolder(objectsDir);
    throw new MediaGitError(
      'GC_RUNNING',
      `another gc is running on this repository (pid ${holder?.pid ?? '?'} on ${holder?.host ?? '?'})`,
      { kind: 'conflict', data: { pid: holder?.pid, host: holder?.host } },
    );
  }
}

/**
 * Waits until no other live process is registered as a writer; false when
 * `timeoutMs` passed first (the caller then deletes nothing).
 */
export async function waitForWriters(
  objectsDir: string,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    signal?.throwIfAborted();
    if ((await liveWriters(objectsDir)).length === 0) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}
