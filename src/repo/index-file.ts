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
import { compareNames, type FileMode } from '../odb/tree.ts';
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
const MODES = ['100644', '100755', '120000'] as const;
const FIXED = 4 + 64 + 40;

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

const sharedIndexes = new Map<string, { stamp: string; index: StagingIndex }>();

export class StagingIndex {
  readonly entries = new Map<string, IndexEntry>();
  /** Root tree ID of the entries as last saved; undefined for a new index. */
  treeId: ObjectId | undefined;
  /** mtime of the index file when read; entries at or after it are racy. */
  fileMtimeMs = 0;
  readonly #file: string;

  constructor(gitDir: string) {
    this.#file = path.join(gitDir, 'index');
  }

  /**
   * Reads the index. With `shared`, a long-running process gets the instance
   * it decoded before while the file is unchanged; such an instance must be
   * treated as read-only.
   */
  static async load(gitDir: string, options: { shared?: boolean } = {}): Promise<StagingIndex> {
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
      const cached = options.shared ? sharedIndexes.get(index.#file) : undefined;
      if (cached && cached.stamp === stamp) return cached.index;
      index.fileMtimeMs = stats.mtimeMs;
      index.#decode(await handle.readFile());
      if (options.shared) sharedIndexes.set(index.#file, { stamp, index });
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
    if (data.readUInt32LE(4) !== VERSION)
      throw this.#corrupt(`unsupported version ${data.readUInt32LE(4)}`);
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
      const mode = MODES[data[offset] ?? 9];
      const kind = data[offset + 1] === 1 ? 'manifest' : 'blob';
      if (!mode) throw this.#corrupt('bad mode');
      offset += 4;
      const id = data.toString('hex', offset, offset + 32);
      const sha256 = data.toString('hex', offset + 32, offset + 64);
      offset += 64;
      this.entries.set(entryPath, {
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
  }

  encode(): Buffer {
    const sorted = [...this.entries.values()].sort((a, b) => compareBytes(a.path, b.path));
    const keyed = keyedTreeIds.get(this.#file);
    this.treeId = computeTreeId(sorted, keyed);
    // One buffer for the whole file (a clone's index holds thousands of entries).
    const nameLengths = sorted.map((entry) => Buffer.byteLength(entry.path, 'utf8'));
    let size = 44 + 32;
    for (const length of nameLengths) size += 2 + length + FIXED;
    const out = Buffer.alloc(size);
    out.write(MAGIC, 0, 'latin1');
    out.writeUInt32LE(VERSION, 4);
    out.writeUInt32LE(sorted.length, 8);
    out.write(this.treeId, 12, 'hex');
    let offset = 44;
    sorted.forEach((entry, i) => {
      out.writeUInt16LE(nameLengths[i]!, offset);
      offset += 2;
      offset += out.write(entry.path, offset, 'utf8');
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
