/**
 * The staging index (`.mediagit/index`), with a stat cache.
 *
 * Binary layout (all integers little-endian):
 *   "MGIX" | u32 version (1) | u32 entry count | 32 bytes tree ID
 *   per entry, sorted by path bytes:
 *     u16 path length | path (UTF-8, "/"-separated, relative to the work tree)
 *     u8 mode (0 100644, 1 100755, 2 120000) | u8 kind (0 blob, 1 manifest)
 *     u8 stage (0; conflict stages come later) | u8 reserved
 *     32 bytes object ID | 32 bytes whole-content SHA-256
 *     f64 size | f64 mtimeMs | f64 ctimeMs | f64 ino | f64 dev
 *   32-byte SHA-256 of everything before it.
 * The tree ID is the root tree the entries would be committed as (as Git's
 * cache-tree), so `status` knows "nothing staged" without reading HEAD's trees.
 *
 * Version 2 adds sparse directories (Git's sparse index): an entry with mode
 * byte 3 and a path ending in "/" stands for a whole folder of the tree it
 * names, every file of which is outside a cone-mode sparse checkout, never
 * fetched and not in the working tree. Such files' entries are exactly what
 * the tree says (mode, kind, object, size) with no stat data and the content
 * hash a sparse clone records (`sparseEntry`), so a folder of thousands of
 * them is one entry: `clone --sparse` and `sparse-checkout` never touch them
 * one by one. Every other command
 * reads the index expanded (the folder's trees read back into those exact
 * entries) and a folder whose entries it left as they were is written
 * collapsed again. An index with no such folder is written as version 1.
 * `status` trusts an entry without reading the file when size, mtime, ctime,
 * inode and mode all match and the mtime is older than the index file itself
 * (a file changed in the same instant as the index was written is "racy" and
 * is re-hashed, as in Git).
 */
import { createHash, hash } from 'node:crypto';
import fs from 'node:fs/promises';
import type { Stats } from 'node:fs';
import path from 'node:path';
import { LockFile } from '../storage/durable-file.ts';
import { MediaGitError, hasErrnoCode } from '../errors.ts';
import { compareNames, type FileMode, type TreeEntry } from '../odb/tree.ts';
import type { FileObjectKind } from '../odb/file-store.ts';
import type { ObjectId } from '../odb/object-id.ts';
import { computeTreeId } from './tree-ops.ts';
import { removeStaleTemps } from '../storage/leftovers.ts';

/**
 * The `sha256` of an entry whose content hash is not known here: a file a
 * sparse partial clone never checked out, whose manifest (which records
 * it) stays on the remote until needed. Never the hash of any content.
 */
export const UNKNOWN_SHA256 = '0'.repeat(64);

export interface IndexEntry {
  readonly path: string;
  readonly mode: Exclude<FileMode, '40000'>;
  readonly kind: FileObjectKind;
  readonly id: ObjectId;
  readonly sha256: ObjectId;
  readonly size: number;
  readonly mtimeMs: number;
  readonly ctimeMs: number;
  readonly ino: number;
  readonly dev: number;
}

const MAGIC = 'MGIX';
const VERSION = 1;
/** An index with sparse directories. */
const SPARSE_VERSION = 2;
const MODES = ['100644', '100755', '120000'] as const;
/** The mode byte of a sparse directory entry. */
const SPARSE_DIR = 3;
const FIXED = 4 + 64 + 40;

/** Reads a tree's entries (registered per repository: the index has no object store of its own). */
export type TreeReader = (id: ObjectId) => Promise<TreeEntry[]>;

/** Paths in the order of their UTF-8 bytes (the index's and Git's order). */
export const compareBytes = compareNames;

/**
 * How the trees of an encrypted repository are named (keyed IDs), by the
 * repository's folder; registered when it is unlocked (repository.ts).
 */
const keyedTreeIds = new Map<string, (data: Buffer) => ObjectId>();

export function registerTreeIds(
  gitDir: string,
  treeIdOf: ((data: Buffer) => ObjectId) | undefined,
): void {
  if (treeIdOf) keyedTreeIds.set(path.join(gitDir, 'index'), treeIdOf);
  else keyedTreeIds.delete(path.join(gitDir, 'index'));
}

const treeReaders = new Map<string, TreeReader>();

/** How the index of the repository in `gitDir` reads trees back (repository.ts, when opened). */
export function registerTreeReader(gitDir: string, read: TreeReader): void {
  treeReaders.set(path.join(gitDir, 'index'), read);
}

const sharedIndexes = new Map<string, { stamp: string; index: StagingIndex }>();

/** A sparse directory read back into entries, kept to be written collapsed again. */
interface Expanded {
  readonly id: ObjectId;
  readonly members: readonly IndexEntry[];
}

/**
 * The entries by path. It notes whether a change since the index was read
 * touched what the tree ID is made of (a path, mode, kind or object): a
 * command that only refreshes stat data (`status`, a sparse-checkout that
 * fetches files) then saves without rebuilding every tree.
 */
class IndexEntries extends Map<string, IndexEntry> {
  treeChanged = false;

  override set(key: string, value: IndexEntry): this {
    if (!this.treeChanged) {
      const old = super.get(key);
      if (
        old === undefined ||
        old.mode !== value.mode ||
        old.kind !== value.kind ||
        old.id !== value.id
      ) {
        this.treeChanged = true;
      }
    }
    return super.set(key, value);
  }

  override delete(key: string): boolean {
    const deleted = super.delete(key);
    if (deleted) this.treeChanged = true;
    return deleted;
  }

  override clear(): void {
    if (this.size > 0) this.treeChanged = true;
    super.clear();
  }
}

const setEntry = Map.prototype.set as (
  this: Map<string, IndexEntry>,
  key: string,
  value: IndexEntry,
) => Map<string, IndexEntry>;

export class StagingIndex {
  readonly entries: Map<string, IndexEntry> = new IndexEntries();
  /** Root tree ID of the entries as last saved; undefined for a new index. */
  treeId: ObjectId | undefined;
  /** mtime of the index file when read; entries at or after it are racy. */
  fileMtimeMs = 0;
  readonly #file: string;
  /**
   * Sparse directories kept collapsed (read with `sparse: true`, or set by
   * the code that knows them): folder path (no trailing "/") -> tree ID.
   * `entries` holds no path under them.
   */
  readonly #sparseDirs = new Map<string, ObjectId>();
  #sparseDirsChanged = false;
  /** Sparse directories read back into `entries` (an ordinary load), by folder. */
  readonly #expanded = new Map<string, Expanded>();

  constructor(gitDir: string) {
    this.#file = path.join(gitDir, 'index');
  }

  /**
   * Reads the index. With `shared`, a long-running process gets the instance
   * it decoded before while the file is unchanged; such an instance must be
   * treated as read-only.
   */
  static async load(
    gitDir: string,
    options: {
      shared?: boolean;
      /**
       * Keep sparse directories collapsed (`sparseDirs()`) instead of reading
       * their files into `entries`: for code that handles them.
       */
      sparse?: boolean;
    } = {},
  ): Promise<StagingIndex> {
    const index = new StagingIndex(gitDir);
    let handle: fs.FileHandle;
    try {
      handle = await fs.open(index.#file, 'r');
    } catch (error) {
      if (hasErrnoCode(error, 'ENOENT')) return index;
      throw error;
    }
    try {
      const stats = await handle.stat();
      const stamp = `${stats.ino}:${stats.size}:${stats.mtimeMs}:${stats.ctimeMs}`;
      const shared = options.shared === true && options.sparse !== true;
      const cached = shared ? sharedIndexes.get(index.#file) : undefined;
      if (cached && cached.stamp === stamp) return cached.index;
      index.fileMtimeMs = stats.mtimeMs;
      index.#decode(await handle.readFile());
      if (options.sparse !== true) await index.#expandAll();
      if (shared) sharedIndexes.set(index.#file, { stamp, index });
      return index;
    } finally {
      await handle.close();
    }
  }

  #corrupt(reason: string): MediaGitError {
    return new MediaGitError('INDEX_CORRUPT', `index file ${this.#file} is corrupt: ${reason}`, {
      kind: 'corrupt',
    });
  }

  #decode(data: Buffer): void {
    if (data.length < 44 || data.toString('latin1', 0, 4) !== MAGIC)
      throw this.#corrupt('bad header');
    const body = data.subarray(0, data.length - 32);
    if (hash('sha256', body, 'hex') !== data.subarray(data.length - 32).toString('hex')) {
      throw this.#corrupt('checksum mismatch');
    }
    const version = data.readUInt32LE(4);
    if (version !== VERSION && version !== SPARSE_VERSION)
      throw this.#corrupt(`unsupported version ${version}`);
    const count = data.readUInt32LE(8);
    this.treeId = data.toString('hex', 12, 44);
    let offset = 44;
    for (let i = 0; i < count; i++) {
      if (offset + 2 > body.length) throw this.#corrupt('truncated');
      const pathLength = data.readUInt16LE(offset);
      offset += 2;
      if (offset + pathLength + FIXED > body.length) throw this.#corrupt('truncated');
      const entryPath = data.toString('utf8', offset, offset + pathLength);
      offset += pathLength;
      if (data[offset] === SPARSE_DIR && version === SPARSE_VERSION) {
        if (!entryPath.endsWith('/') || entryPath.length < 2)
          throw this.#corrupt(`sparse directory ${entryPath} does not name a folder`);
        this.#sparseDirs.set(entryPath.slice(0, -1), data.toString('hex', offset + 4, offset + 36));
        offset += 4 + 64 + 40;
        continue;
      }
      const mode = MODES[data[offset] ?? 9];
      const kind = data[offset + 1] === 1 ? 'manifest' : 'blob';
      if (!mode) throw this.#corrupt('bad mode');
      offset += 4;
      const id = data.toString('hex', offset, offset + 32);
      const sha256 = data.toString('hex', offset + 32, offset + 64);
      offset += 64;
      // Map's own set: what is read is not a change (IndexEntries.set).
      setEntry.call(this.entries, entryPath, {
        path: entryPath,
        mode,
        kind,
        id,
        sha256,
        size: data.readDoubleLE(offset),
        mtimeMs: data.readDoubleLE(offset + 8),
        ctimeMs: data.readDoubleLE(offset + 16),
        ino: data.readDoubleLE(offset + 24),
        dev: data.readDoubleLE(offset + 32),
      });
      offset += 40;
    }
    (this.entries as IndexEntries).treeChanged = false;
  }

  /** The sparse directories kept collapsed: folder path -> tree ID. */
  sparseDirs(): ReadonlyMap<string, ObjectId> {
    return this.#sparseDirs;
  }

  /** Keeps folder `dir` (every file of tree `id`, none in `entries`) as one entry. */
  setSparseDir(dir: string, id: ObjectId): void {
    this.#sparseDirs.set(dir, id);
    this.#sparseDirsChanged = true;
  }

  /**
   * Reads sparse directory `dir` back into `entries`; folders below it for
   * which `keep` says so stay collapsed. Returns the paths added.
   */
  async expandSparseDir(
    dir: string,
    keep: (folder: string) => boolean = () => false,
  ): Promise<string[]> {
    const id = this.#sparseDirs.get(dir);
    if (id === undefined) return [];
    const { files, kept } = await this.#readFolder(dir, id, keep);
    this.#sparseDirs.delete(dir);
    this.#sparseDirsChanged = true;
    for (const [folder, treeId] of kept) this.#sparseDirs.set(folder, treeId);
    for (const file of files) this.entries.set(file.path, file);
    return files.map((file) => file.path);
  }

  /**
   * The entries folder `dir` (tree `id`) stands for, and the folders below
   * it that `keep` leaves whole, with their tree IDs.
   */
  async #readFolder(
    dir: string,
    id: ObjectId,
    keep: (folder: string) => boolean,
  ): Promise<{ files: IndexEntry[]; kept: Map<string, ObjectId> }> {
    const read = this.#treeReader();
    const keyed = keyedTreeIds.has(this.#file);
    const files: IndexEntry[] = [];
    const kept = new Map<string, ObjectId>();
    const visit = async (treeId: ObjectId, folder: string): Promise<void> => {
      for (const entry of await read(treeId)) {
        const p = `${folder}/${entry.name}`;
        if (entry.kind !== 'tree') files.push(sparseEntry(p, entry, keyed));
        else if (keep(p)) kept.set(p, entry.id);
        else await visit(entry.id, p);
      }
    };
    await visit(id, dir);
    return { files, kept };
  }

  #treeReader(): TreeReader {
    const read = treeReaders.get(this.#file);
    if (read === undefined) {
      throw new MediaGitError(
        'INDEX_SPARSE_UNREADABLE',
        `index file ${this.#file} keeps folders as sparse directories, which need the repository's trees to read`,
        { kind: 'internal' },
      );
    }
    return read;
  }

  /** An ordinary load: every sparse directory read back into its files' entries. */
  async #expandAll(): Promise<void> {
    for (const [dir, id] of this.#sparseDirs) {
      const { files: members } = await this.#readFolder(dir, id, () => false);
      for (const member of members) this.entries.set(member.path, member);
      this.#expanded.set(dir, { id, members });
    }
    this.#sparseDirs.clear();
    (this.entries as IndexEntries).treeChanged = false;
  }

  /**
   * The folders written as sparse directories: those kept collapsed, and
   * those read back whose entries are all still there, unchanged, with no
   * other path under them.
   */
  #collapsedDirs(): Map<string, ObjectId> {
    const out = new Map(this.#sparseDirs);
    if (this.#expanded.size === 0) return out;
    const under = new Map<string, number>();
    for (const p of this.entries.keys()) {
      for (let slash = p.indexOf('/'); slash >= 0; slash = p.indexOf('/', slash + 1)) {
        const folder = p.slice(0, slash);
        if (this.#expanded.has(folder)) {
          under.set(folder, (under.get(folder) ?? 0) + 1);
          break;
        }
      }
    }
    for (const [dir, { id, members }] of this.#expanded) {
      if (under.get(dir) !== members.length) continue;
      if (members.every((member) => this.entries.get(member.path) === member)) out.set(dir, id);
    }
    return out;
  }

  encode(): Buffer {
    const all = [...this.entries.values()].sort((a, b) => compareBytes(a.path, b.path));
    const entries = this.entries as IndexEntries;
    if (this.treeId === undefined || entries.treeChanged || this.#sparseDirsChanged) {
      this.treeId = computeTreeId(all, keyedTreeIds.get(this.#file), this.#sparseDirs);
      entries.treeChanged = false;
      this.#sparseDirsChanged = false;
    }
    const collapsed = this.#collapsedDirs();
    const sorted: (IndexEntry | { path: string; dir: ObjectId })[] =
      collapsed.size === 0 ? all : all.filter((entry) => !insideAny(entry.path, collapsed));
    for (const [dir, id] of collapsed) sorted.push({ path: `${dir}/`, dir: id });
    if (collapsed.size > 0) sorted.sort((a, b) => compareBytes(a.path, b.path));
    // One buffer for the whole file (a clone's index holds thousands of entries).
    const nameLengths = sorted.map((entry) => Buffer.byteLength(entry.path, 'utf8'));
    let size = 44 + 32;
    for (const length of nameLengths) size += 2 + length + FIXED;
    const out = Buffer.alloc(size);
    out.write(MAGIC, 0, 'latin1');
    out.writeUInt32LE(collapsed.size > 0 ? SPARSE_VERSION : VERSION, 4);
    out.writeUInt32LE(sorted.length, 8);
    out.write(this.treeId, 12, 'hex');
    let offset = 44;
    sorted.forEach((entry, i) => {
      out.writeUInt16LE(nameLengths[i]!, offset);
      offset += 2;
      offset += out.write(entry.path, offset, 'utf8');
      if ('dir' in entry) {
        // Zero content hash and stat data (the buffer starts zeroed).
        out[offset] = SPARSE_DIR;
        out.write(entry.dir, offset + 4, 'hex');
        offset += 4 + 64 + 40;
        return;
      }
      out[offset] = MODES.indexOf(entry.mode);
      out[offset + 1] = entry.kind === 'manifest' ? 1 : 0;
      offset += 4;
      out.write(entry.id, offset, 'hex');
      out.write(entry.sha256, offset + 32, 'hex');
      offset += 64;
      out.writeDoubleLE(entry.size, offset);
      out.writeDoubleLE(entry.mtimeMs, offset + 8);
      out.writeDoubleLE(entry.ctimeMs, offset + 16);
      out.writeDoubleLE(entry.ino, offset + 24);
      out.writeDoubleLE(entry.dev, offset + 32);
      offset += 40;
    });
    hashInto(out.subarray(0, offset), out, offset);
    return out;
  }

  /** Takes index.lock; the caller writes with `save` or gives up with `release`. */
  static async lock(gitDir: string): Promise<LockFile> {
    // Commands that change the index are the ones that meet temp files of
    // interrupted commands: those of dead processes go (leftovers.ts).
    removeStaleTemps(path.join(gitDir, 'tmp'));
    try {
      return await LockFile.acquire(path.join(gitDir, 'index'));
    } catch (error) {
      if (hasErrnoCode(error, 'EEXIST')) {
        throw new MediaGitError(
          'INDEX_LOCKED',
          `unable to create '${path.join(gitDir, 'index.lock')}': File exists. Another mediagit process seems to be running in this repository; if it crashed, remove the file and try again`,
          { kind: 'conflict' },
        );
      }
      throw error;
    }
  }

  async save(lock: LockFile): Promise<void> {
    await lock.commit(this.encode());
  }

  sortedPaths(): string[] {
    return [...this.entries.keys()].sort(compareBytes);
  }
}

/** Whether `p` lies under one of `dirs` (folder paths). */
function insideAny(p: string, dirs: ReadonlyMap<string, unknown>): boolean {
  for (let slash = p.indexOf('/'); slash >= 0; slash = p.indexOf('/', slash + 1)) {
    if (dirs.has(p.slice(0, slash))) return true;
  }
  return false;
}

/**
 * The entry a file of a sparse directory stands for: the tree's, no stat
 * data, and the content hash a sparse clone records for a file it never
 * fetched: unknown, except a blob's in a repository that is not encrypted,
 * which is its ID (ObjectStore.blobSha256).
 */
function sparseEntry(p: string, entry: TreeEntry, keyed: boolean): IndexEntry {
  return {
    path: p,
    mode: entry.mode as IndexEntry['mode'],
    kind: entry.kind as FileObjectKind,
    id: entry.id,
    sha256: entry.kind === 'blob' && !keyed ? entry.id : UNKNOWN_SHA256,
    size: entry.size,
    mtimeMs: 0,
    ctimeMs: 0,
    ino: 0,
    dev: 0,
  };
}

export function modeFromStats(stats: Stats): Exclude<FileMode, '40000'> {
  if (stats.isSymbolicLink()) return '120000';
  return stats.mode & 0o100 ? '100755' : '100644';
}

/** True when the entry's stat data proves the file unchanged without reading it. */
export function statMatches(entry: IndexEntry, stats: Stats, indexMtimeMs: number): boolean {
  return (
    entry.size === stats.size &&
    entry.mtimeMs === stats.mtimeMs &&
    entry.ctimeMs === stats.ctimeMs &&
    entry.ino === stats.ino &&
    entry.dev === stats.dev &&
    entry.mode === modeFromStats(stats) &&
    stats.mtimeMs < indexMtimeMs
  );
}

export function entryFromStats(
  entryPath: string,
  stored: { kind: FileObjectKind; id: ObjectId; sha256: ObjectId },
  stats: Stats,
): IndexEntry {
  return {
    path: entryPath,
    mode: modeFromStats(stats),
    kind: stored.kind,
    id: stored.id,
    sha256: stored.sha256,
    size: stats.size,
    mtimeMs: stats.mtimeMs,
    ctimeMs: stats.ctimeMs,
    ino: stats.ino,
    dev: stats.dev,
  };
}

/** Writes the SHA-256 of `body` into `out` at `at`. */
function hashInto(body: Buffer, out: Buffer, at: number): void {
  createHash('sha256').update(body).digest().copy(out, at);
}
