/**
 * What an interrupted or crashed command leaves behind, and how it goes away.
 *
 * A running command holds lock files (`index.lock`, `refs/heads/x.lock`) and
 * temp files and folders (named `<label>-<pid>-<random>` in a repository's
 * `tmp/`, see durable-file.ts `tempName`). Two rules remove them:
 *
 * 1. **Interrupted**: the CLI's SIGINT/SIGTERM/SIGHUP handler calls
 *    `removeOwnLeftovers()`, which synchronously deletes every lock this
 *    process holds and every entry of the temp folders it used whose name
 *    carries its PID, then the process dies of the signal (as Git does).
 * 2. **Crashed** (SIGKILL, power loss): a lock file records its holder
 *    (`<pid> <hostname>` until its new content is committed). A command that
 *    finds a lock whose holder is a dead process on this machine removes it
 *    and takes the lock (`removeStaleLock`, race-free against a new holder);
 *    a lock of another machine, or one without a holder line, is reported as
 *    before. Temp entries whose PID is dead and that have not been modified
 *    for STALE_TEMP_MS are removed by the next command that takes the index
 *    lock (`removeStaleTemps`). The age keeps a live writer on another
 *    machine sharing the repository (whose PID means nothing here) safe as
 *    long as it keeps writing.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** Temp entries of dead processes younger than this are left alone. */
export const STALE_TEMP_MS = 10 * 60 * 1000;

const heldLocks = new Set<string>();
/** Locks being taken: the open may have created the file before this thread knows. */
const pendingLocks = new Set<string>();
const tempDirs = new Set<string>();
const ownPaths = new Set<string>();
/** Child processes that may be writing into this process's temp entries. */
const children = new Set<{ kill(signal?: NodeJS.Signals): boolean }>();

/** The holder line a lock file carries until its content is committed. */
export function lockOwnerLine(): string {
  return `${process.pid} ${os.hostname()}\n`;
}

export function trackLock(lockPath: string): void {
  heldLocks.add(lockPath);
}

export function untrackLock(lockPath: string): void {
  heldLocks.delete(lockPath);
}

/**
 * Records a lock about to be taken, before its `open` goes to the thread
 * pool: if the process is interrupted before the open's answer arrives, an
 * empty file at that path is the one this open created (a holder writes its
 * line at once), and the sweep removes it. Returns its release.
 */
export function trackPendingLock(lockPath: string): () => void {
  pendingLocks.add(lockPath);
  return () => pendingLocks.delete(lockPath);
}

/** Records a folder this process creates temp entries in (named with its PID). */
export function trackTempDir(dir: string): void {
  tempDirs.add(dir);
}

/**
 * Records a child process (`git clone` into a temp folder) to end before
 * this process's leftovers are deleted, if it is interrupted: a signal sent
 * to this process alone (`kill -INT <pid>`, not Ctrl-C in a terminal, which
 * reaches the whole group) would leave it writing there. Returns its release.
 */
export function trackChild(child: { kill(signal?: NodeJS.Signals): boolean }): () => void {
  children.add(child);
  return () => children.delete(child);
}

/** Records one file or folder to delete if the process is interrupted; returns its release. */
export function trackPath(file: string): () => void {
  ownPaths.add(file);
  return () => ownPaths.delete(file);
}

/** The PID in a temp entry's name (`<label>-<pid>-<hex>[.tmp]`), if it has one. */
export function tempOwner(name: string): number | undefined {
  const match = /-(\d+)-[0-9a-f]{12}(?:\.tmp)?$/.exec(name);
  if (!match) return undefined;
  const pid = Number(match[1]);
  return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
}

/**
 * Deletes, synchronously, every lock this process holds and every temp entry
 * it made. For signal handlers: no promise runs after them.
 *
 * File operations already handed to libuv's thread pool (a temp file being
 * opened for a chunk that was arriving) go on while this thread runs, and
 * one that creates its file after a single sweep would be left behind. So
 * after the first sweep this thread waits, runs no JavaScript (nothing new
 * is queued) and sweeps again every SETTLE_STEP_MS until two sweeps in a row
 * find nothing, for at most SETTLE_MAX_MS.
 */
export function removeOwnLeftovers(): void {
  for (const child of children) child.kill('SIGKILL');
  children.clear();
  for (const lock of heldLocks) fs.rmSync(lock, { force: true });
  heldLocks.clear();
  sweepOwnEntries();
  // Checked on every sweep below, not counted: a pending lock whose open
  // fails (another process holds it) leaves a file that is not ours.
  const pause = new Int32Array(new SharedArrayBuffer(4));
  const deadline = Date.now() + SETTLE_MAX_MS;
  for (let quiet = 0; quiet < 2 && Date.now() < deadline;) {
    Atomics.wait(pause, 0, 0, SETTLE_STEP_MS);
    quiet = sweepOwnEntries() === 0 ? quiet + 1 : 0;
  }
  ownPaths.clear();
}

const SETTLE_STEP_MS = 25;
const SETTLE_MAX_MS = 1500;

/** Deletes this process's tracked paths and PID-named temp entries; returns how many there were. */
function sweepOwnEntries(): number {
  let found = 0;
  for (const lock of pendingLocks) {
    const stats = fs.lstatSync(lock, { throwIfNoEntry: false });
    if (stats?.isFile() && stats.size === 0) {
      found++;
      fs.rmSync(lock, { force: true });
    }
  }
  // A folder something still writes into fails with ENOTEMPTY: counted as
  // found, so the next sweep tries again.
  const remove = (file: string): void => {
    try {
      fs.rmSync(file, { recursive: true, force: true });
    } catch {
      // Swept again below.
    }
  };
  for (const file of ownPaths) {
    if (fs.lstatSync(file, { throwIfNoEntry: false })) found++;
    remove(file);
  }
  for (const dir of tempDirs) {
    let names: string[];
    try {
      names = fs.readdirSync(dir);
    } catch {
      continue;
    }
    for (const name of names) {
      if (tempOwner(name) === process.pid) {
        found++;
        remove(path.join(dir, name));
      }
    }
  }
  return found;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes `lockPath` if its holder is a dead process of this machine; true
 * when it did (the caller then tries to take the lock again). The lock is
 * first renamed aside: if what was moved is not the file that was judged
 * stale (a new holder took the lock in between), it is put back.
 */
export function removeStaleLock(lockPath: string): boolean {
  let fd: number;
  try {
    fd = fs.openSync(lockPath, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  } catch {
    return false;
  }
  let judged: fs.Stats;
  let head: string;
  try {
    judged = fs.fstatSync(fd);
    const bytes = Buffer.alloc(256);
    head = bytes.toString('utf8', 0, fs.readSync(fd, bytes, 0, bytes.length, 0));
  } finally {
    fs.closeSync(fd);
  }
  const match = /^(\d+) (\S+)\n$/.exec(head);
  if (!match || match[2] !== os.hostname()) return false;
  const pid = Number(match[1]);
  if (pid === process.pid || isAlive(pid)) return false;
  const aside = `${lockPath}-stale-${process.pid}-${randomBytes(4).toString('hex')}.lock`;
  try {
    fs.renameSync(lockPath, aside);
  } catch {
    return false;
  }
  const moved = fs.lstatSync(aside);
  if (moved.ino === judged.ino && moved.dev === judged.dev) {
    fs.rmSync(aside, { force: true });
    return true;
  }
  try {
    fs.linkSync(aside, lockPath);
  } catch {
    // Yet another holder took it meanwhile: theirs stands.
  }
  fs.rmSync(aside, { force: true });
  return false;
}

/**
 * Removes the entries of `dir` (a repository's tmp/) left by processes that
 * are gone: a PID in the name that is not alive here, and no change for
 * `minAgeMs` (default STALE_TEMP_MS; `repack -d` and `gc` pass 0). Returns
 * how many it removed.
 */
export function removeStaleTemps(
  dir: string,
  options: { minAgeMs?: number; now?: number } = {},
): number {
  const now = options.now ?? Date.now();
  const minAge = options.minAgeMs ?? STALE_TEMP_MS;
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return 0;
  }
  let removed = 0;
  for (const name of names) {
    const pid = tempOwner(name);
    if (pid === undefined || pid === process.pid || isAlive(pid)) continue;
    const file = path.join(dir, name);
    const stats = fs.lstatSync(file, { throwIfNoEntry: false });
    if (!stats || (minAge > 0 && now - lastChange(file, stats) < minAge)) continue;
    fs.rmSync(file, { recursive: true, force: true });
    removed++;
  }
  return removed;
}

/** The latest write to a temp entry: its own, or for a folder, its direct children's too. */
function lastChange(file: string, stats: fs.Stats): number {
  let latest = stats.mtimeMs;
  if (!stats.isDirectory()) return latest;
  try {
    for (const name of fs.readdirSync(file)) {
      const child = fs.lstatSync(path.join(file, name), { throwIfNoEntry: false });
      if (child) latest = Math.max(latest, child.mtimeMs);
    }
  } catch {
    // Removed meanwhile.
  }
  return latest;
}
