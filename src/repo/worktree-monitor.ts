/**
 * A live picture of the working tree, kept current by file-system events, so
 * a long-running process (the fsmonitor daemon) can answer `status` without
 * walking and lstat-ing every file again.
 *
 * Contract: after `sync()` resolves, `files()` returns exactly what
 * `walkWorkTree(workTree, '', rules)` would return at that moment (same paths,
 * fresh lstat data), provided the kernel reported every change (inotify does
 * for changes made through paths inside the tree). `sync()` writes a cookie
 * file into the repository folder and waits for its event: every change made
 * before `sync()` was called has then been delivered. When events may have
 * been lost (a watcher error, an event without a name, a changed ignore file),
 * the next `sync()` rescans the whole tree.
 */
import fs from 'node:fs';
import path from 'node:path';
import { isSafeName } from '../odb/tree.ts';
import {
  IGNORE_FILE,
  IgnoreRules,
  isUnder,
  lstatOrUndefined,
  walkWorkTree,
  type WorkFile,
} from './worktree.ts';

const COOKIE_PREFIX = 'fsmonitor--cookie-';

export class WorkTreeMonitor {
  readonly workTree: string;
  readonly gitDir: string;
  #rules: IgnoreRules;
  readonly #files = new Map<string, WorkFile>();
  readonly #watchers = new Map<string, fs.FSWatcher>();
  readonly #dirty = new Set<string>();
  #rescan = true;
  #cookieSeq = 0;
  readonly #cookieWaiters = new Map<string, () => void>();
  #gitDirWatcher: fs.FSWatcher | undefined;
  /**
   * Called for every event on a file directly in the repository folder, in
   * order with the work tree's events: when it runs for a file, every change
   * made before that file was written has been delivered.
   */
  onRepositoryFile: ((name: string) => void) | undefined;
  /** Grows whenever the file list may have changed; equal values mean identical lists. */
  generation = 0;
  /** Set when the work tree or repository disappeared; the owner should stop. */
  gone = false;

  constructor(workTree: string, gitDir: string) {
    this.workTree = workTree;
    this.gitDir = gitDir;
    this.#rules = new IgnoreRules(workTree);
  }

  start(): void {
    this.#gitDirWatcher = fs.watch(this.gitDir, (_event, name) => {
      const file = name?.toString();
      if (file !== undefined) this.onRepositoryFile?.(file);
      if (file?.startsWith(COOKIE_PREFIX)) {
        const resolve = this.#cookieWaiters.get(file);
        if (resolve) {
          this.#cookieWaiters.delete(file);
          resolve();
        }
      }
    });
    this.#gitDirWatcher.on('error', () => {
      this.gone = true;
    });
    this.#fullScan();
  }

  close(): void {
    this.#gitDirWatcher?.close();
    for (const watcher of this.#watchers.values()) watcher.close();
    this.#watchers.clear();
    for (const resolve of this.#cookieWaiters.values()) resolve();
  }

  /** Waits until every change made before the call has been seen, then applies them. */
  async sync(timeoutMs = 2000): Promise<void> {
    const name = `${COOKIE_PREFIX}${process.pid}-${++this.#cookieSeq}`;
    const cookie = path.join(this.gitDir, name);
    const seen = new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.#cookieWaiters.set(name, () => {
        clearTimeout(timer);
        resolve(true);
      });
    });
    fs.writeFileSync(cookie, '');
    const delivered = await seen;
    fs.rmSync(cookie, { force: true });
    if (!delivered) this.#rescan = true;
    this.#apply();
  }

  /** Applies every event delivered so far (the caller knows they are all in). */
  applyDelivered(): void {
    this.#apply();
  }

  /** The files as of the last `sync()` or `applyDelivered()`. */
  files(): WorkFile[] {
    return [...this.#files.values()];
  }

  #fullScan(): void {
    for (const watcher of this.#watchers.values()) watcher.close();
    this.#watchers.clear();
    this.#files.clear();
    this.#dirty.clear();
    this.#rules = new IgnoreRules(this.workTree);
    this.#rescan = false;
    this.#watchDir('');
    for (const file of walkWorkTree(this.workTree, '', this.#rules, {
      onDirectory: (dir) => this.#watchDir(dir),
    })) {
      this.#files.set(file.path, file);
    }
  }

  #watchDir(dir: string): void {
    if (this.#watchers.has(dir)) return;
    const full = dir === '' ? this.workTree : path.join(this.workTree, ...dir.split('/'));
    let watcher: fs.FSWatcher;
    try {
      watcher = fs.watch(full, { persistent: true }, (_event, name) => {
        const entry = name?.toString();
        if (entry === undefined || entry === '') {
          this.#rescan = true;
          return;
        }
        if (entry === IGNORE_FILE) this.#rescan = true;
        this.#dirty.add(dir === '' ? entry : `${dir}/${entry}`);
      });
    } catch {
      this.#rescan = true;
      return;
    }
    watcher.on('error', () => {
      this.#rescan = true;
      if (dir === '') this.gone = !fs.existsSync(this.workTree);
    });
    this.#watchers.set(dir, watcher);
  }

  #apply(): void {
    if (this.#rescan || this.#dirty.size > 0) this.generation++;
    if (this.#rescan) {
      this.#fullScan();
      return;
    }
    const dirty = [...this.#dirty].sort();
    this.#dirty.clear();
    for (const p of dirty) {
      const name = p.slice(p.lastIndexOf('/') + 1);
      if (!isSafeName(name)) continue;
      // Whatever was there before is replaced by what is there now.
      this.#forget(p);
      const stats = lstatOrUndefined(path.join(this.workTree, ...p.split('/')));
      if (!stats) continue;
      if (this.#rules.ignores(p, stats.isDirectory())) continue;
      if (stats.isDirectory()) {
        this.#watchDir(p);
        for (const file of walkWorkTree(this.workTree, p, this.#rules, {
          onDirectory: (dir) => this.#watchDir(dir),
        })) {
          this.#files.set(file.path, file);
        }
      } else if (stats.isFile() || stats.isSymbolicLink()) {
        this.#files.set(p, { path: p, stats });
      }
    }
  }

  /** Drops a path and, if it was a directory, everything under it. */
  #forget(p: string): void {
    this.#files.delete(p);
    if (!this.#watchers.has(p)) return;
    const prefix = `${p}/`;
    for (const key of this.#files.keys()) if (key.startsWith(prefix)) this.#files.delete(key);
    for (const [dir, watcher] of this.#watchers) {
      if (dir !== '' && isUnder(dir, p)) {
        watcher.close();
        this.#watchers.delete(dir);
      }
    }
  }
}
