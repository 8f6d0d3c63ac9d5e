/**
 * The MediaGit object store of a Git repository: `<git dir>/mediagit/`,
 * where `filter clean` keeps the content behind each pointer as MediaGit
 * objects (small files one blob, large ones chunks + manifest, so versions
 * share chunks) and `filter smudge` finds it again by the pointer's OID.
 *
 * Layout (the same keys as a server repository, docs/git-interop.md):
 *   objects/             an object store (odb/), loose objects and packs
 *   lfs/<2 hex>/<62 hex>  the manifest ID of a chunked file, by its SHA-256
 *                        (a file stored whole is the blob named by its SHA-256)
 *   tmp/                 content being cleaned, temp files of atomic writes
 *
 * Content kept by git-lfs (`<git dir>/lfs/objects/`) is found too: a pointer
 * git-lfs wrote smudges through MediaGit when git-lfs has the content.
 */
import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { MediaGitError, hasErrnoCode } from '../errors.ts';
import {
  DEFAULT_CHUNK_THRESHOLD,
  FileStore,
  readManifest,
  streamFileContent,
  type FileObjectKind,
} from '../odb/file-store.ts';
import {
  formatPointer,
  lfsObjectKey,
  MAX_POINTER_BYTES,
  parsePointer,
  type LfsPointer,
} from '../odb/lfs-pointer.ts';
import { isObjectId, type ObjectId } from '../odb/object-id.ts';
import { ObjectStore } from '../odb/object-store.ts';
import { profileFor } from '../repo/stage.ts';
import { tempName, writeFileAtomic } from '../storage/durable-file.ts';

/** Where a file's content is: its object and size. */
export interface LocatedContent {
  readonly kind: FileObjectKind;
  readonly id: ObjectId;
  readonly size: number;
}

/** Makes the content behind `pointer` local (a download from a remote), or throws. */
export type ContentFetcher = (pointer: LfsPointer, store: GitMediaStore) => Promise<void>;

export class GitMediaStore {
  readonly gitDir: string;
  readonly dir: string;
  readonly objects: ObjectStore;
  #files: FileStore | undefined;

  private constructor(gitDir: string) {
    this.gitDir = gitDir;
    this.dir = path.join(gitDir, 'mediagit');
    this.objects = new ObjectStore(path.join(this.dir, 'objects'), path.join(this.dir, 'tmp'));
  }

  /** Opens (creating when needed) the store of the repository whose git dir is `gitDir`. */
  static async open(gitDir: string): Promise<GitMediaStore> {
    const store = new GitMediaStore(gitDir);
    await fs.mkdir(path.join(store.dir, 'objects'), { recursive: true });
    await fs.mkdir(path.join(store.dir, 'tmp'), { recursive: true });
    return store;
  }

  /** The store of another repository on this machine, if it has one (a local remote). */
  static async openExisting(gitDir: string): Promise<GitMediaStore | undefined> {
    const store = new GitMediaStore(gitDir);
    const stat = await fs.stat(path.join(store.dir, 'objects')).catch(() => undefined);
    return stat?.isDirectory() ? store : undefined;
  }

  get fileStore(): FileStore {
    this.#files ??= new FileStore(this.objects);
    return this.#files;
  }

  async close(): Promise<void> {
    const files = this.#files;
    this.#files = undefined;
    await files?.close();
    await this.objects.flush();
  }

  /** Where the content with this OID is stored here, or undefined. */
  async locate(oid: ObjectId): Promise<LocatedContent | undefined> {
    if (!isObjectId(oid)) return undefined;
    let manifestId: string | undefined;
    try {
      manifestId = (await fs.readFile(path.join(this.dir, lfsObjectKey(oid)), 'utf8')).trim();
    } catch (error) {
      if (!hasErrnoCode(error, 'ENOENT')) throw error;
    }
    if (manifestId !== undefined && isObjectId(manifestId)) {
      const manifest = await readManifest(this.objects, manifestId);
      return { kind: 'manifest', id: manifestId, size: manifest.size };
    }
    if (await this.objects.has(oid)) {
      const info = await this.objects.info(oid);
      if (info.type === 'blob') return { kind: 'blob', id: oid, size: info.rawSize };
    }
    return undefined;
  }

  /**
   * Records that the file with this OID is the manifest `manifestId`; call it
   * once the manifest and its chunks are durable (the key makes them visible).
   */
  async bindManifest(oid: ObjectId, manifestId: ObjectId): Promise<void> {
    await writeFileAtomic(
      path.join(this.dir, lfsObjectKey(oid)),
      [Buffer.from(`${manifestId}\n`)],
      { tmpDir: this.objects.tmpDir, dirSync: this.objects.dirSync },
    );
  }

  /** Whether the content is here or in git-lfs's store beside it (nothing to download). */
  async hasLocally(oid: ObjectId): Promise<boolean> {
    if (await this.locate(oid)) return true;
    return (await fs.stat(this.gitLfsPath(oid)).catch(() => undefined)) !== undefined;
  }

  /** The file git-lfs keeps for this OID in this repository, if any. */
  gitLfsPath(oid: ObjectId): string {
    return path.join(this.gitDir, 'lfs', 'objects', oid.slice(0, 2), oid.slice(2, 4), oid);
  }

  /**
   * Stores the file at `filePath` (whose SHA-256 the caller may already know)
   * and returns its pointer fields.
   */
  async storeFile(filePath: string, repoPath = ''): Promise<LocatedContent & { oid: ObjectId }> {
    const stored = await this.fileStore.storeFile(filePath, {
      chunkThreshold: DEFAULT_CHUNK_THRESHOLD,
      profile: (head, size) => profileFor(head, repoPath, size, false),
    });
    await this.objects.flush();
    if (stored.kind === 'manifest') await this.bindManifest(stored.sha256, stored.id);
    return { kind: stored.kind, id: stored.id, size: stored.size, oid: stored.sha256 };
  }

  /**
   * The clean filter: stores `content` and returns its pointer. Content that
   * already is a valid pointer passes through unchanged (re-adding a file
   * checked out without its content must not wrap the pointer in a pointer).
   *
   * Git hands the content on a pipe, but the chunker needs a file. Usually
   * the content is the working file itself (`git add`), so it is compared
   * with `workFile` as it arrives and, when equal, stored from there; only
   * content that differs (or has no working file) is written to a temp file.
   * If the working file changes before it is stored, the stored SHA-256
   * disagrees with the content's and the clean fails (FILE_CHANGED).
   *
   * Content smaller than `minSize` (`track --min-size`) is returned as it is:
   * Git keeps it as an ordinary blob, and smudge passes it through.
   */
  async clean(
    content: AsyncIterable<Uint8Array>,
    repoPath = '',
    workFile?: string,
    minSize = 0,
  ): Promise<Buffer> {
    const tmp = tempName(this.objects.tmpDir, 'clean');
    const source = await CleanSource.open(workFile, tmp);
    try {
      const sha = createHash('sha256');
      let size = 0;
      let head: Buffer[] = [];
      for await (const piece of content) {
        sha.update(piece);
        if (size <= MAX_POINTER_BYTES) head.push(Buffer.from(piece));
        await source.take(piece, size);
        size += piece.length;
      }
      const file = await source.finish(size);
      if (size <= MAX_POINTER_BYTES) {
        const bytes = Buffer.concat(head);
        if (parsePointer(bytes).ok) return bytes;
      }
      if (size < minSize) return await fs.readFile(file);
      head = [];
      const oid = sha.digest('hex');
      if (!(await this.locate(oid))) {
        const stored = await this.storeFile(file, repoPath);
        if (stored.oid !== oid || stored.size !== size) {
          throw new MediaGitError(
            'FILE_CHANGED',
            `${repoPath || 'the file'} changed while it was being stored; run git add again`,
            { kind: 'user', data: { path: repoPath } },
          );
        }
      }
      return Buffer.from(formatPointer({ oid, size, extra: [] }), 'utf8');
    } finally {
      await source.close();
      await fs.rm(tmp, { force: true });
    }
  }

  /**
   * Makes the content behind `pointer` available here: already stored, or
   * imported from git-lfs's store, or fetched by `fetch`. Throws a clear
   * error when it cannot be had or its size disagrees with the pointer.
   */
  async ensure(pointer: LfsPointer, fetch?: ContentFetcher): Promise<LocatedContent> {
    let found = await this.locate(pointer.oid);
    if (!found) {
      const lfsFile = this.gitLfsPath(pointer.oid);
      if (await fs.stat(lfsFile).catch(() => undefined)) {
        const stored = await this.storeFile(lfsFile);
        if (stored.oid !== pointer.oid) {
          throw new MediaGitError(
            'OBJECT_CORRUPT',
            `git-lfs's copy of ${pointer.oid} does not hash to its name`,
            {
              kind: 'corrupt',
            },
          );
        }
        found = stored;
      } else if (fetch) {
        await fetch(pointer, this);
        found = await this.locate(pointer.oid);
      }
    }
    if (!found) {
      throw new MediaGitError(
        'CONTENT_MISSING',
        `the content of ${pointer.oid} (${pointer.size} bytes) is not in this repository and no MediaGit remote has it (set one with \`git config mediagit.url <url>\`)`,
        { kind: 'user', data: { oid: pointer.oid } },
      );
    }
    if (found.size !== pointer.size) {
      throw new MediaGitError(
        'POINTER_SIZE_MISMATCH',
        `the pointer for ${pointer.oid} says ${pointer.size} bytes but that content is ${found.size} bytes; the pointer is damaged`,
        { kind: 'user', data: { oid: pointer.oid, size: pointer.size, actual: found.size } },
      );
    }
    return found;
  }

  /** Writes the content of a located file, verified chunk by chunk, to `write`. */
  async writeContent(
    found: LocatedContent,
    write: (data: Uint8Array) => Promise<void>,
  ): Promise<void> {
    await streamFileContent(this.objects, found.kind, found.id, write);
  }
}

/** Bytes of the working file read at a time to compare the content with. */
const COMPARE_BYTES = 4 * 1024 * 1024;

/**
 * Where clean's content ends up: the working file while the content keeps
 * matching it, else a temp file (the matching prefix copied from the working
 * file, the rest written as it arrives).
 */
class CleanSource {
  readonly #tmp: string;
  #work: fs.FileHandle | undefined;
  #workFile: string | undefined;
  #workSize = 0;
  #out: fs.FileHandle | undefined;
  readonly #buffer = Buffer.allocUnsafe(COMPARE_BYTES);
  /** The working file's bytes held in #buffer: [#windowStart, #windowStart + #windowLength). */
  #windowStart = 0;
  #windowLength = 0;

  private constructor(tmp: string) {
    this.#tmp = tmp;
  }

  static async open(workFile: string | undefined, tmp: string): Promise<CleanSource> {
    const source = new CleanSource(tmp);
    if (workFile) {
      const handle = await fs
        .open(workFile, constants.O_RDONLY | constants.O_NOFOLLOW)
        .catch(() => undefined);
      const stat = await handle?.stat().catch(() => undefined);
      if (handle && stat?.isFile()) {
        source.#work = handle;
        source.#workFile = workFile;
        source.#workSize = stat.size;
      } else {
        await handle?.close();
      }
    }
    if (!source.#work) source.#out = await fs.open(tmp, 'wx', 0o600);
    return source;
  }

  async #readWork(position: number, length: number): Promise<Buffer> {
    this.#windowLength = 0;
    let done = 0;
    while (done < length) {
      const { bytesRead } = await this.#work!.read(
        this.#buffer,
        done,
        length - done,
        position + done,
      );
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    return this.#buffer.subarray(0, done);
  }

  /** Stops comparing: the first `upTo` bytes (equal to the working file's) go to the temp file. */
  async #diverge(upTo: number): Promise<void> {
    const out = await fs.open(this.#tmp, 'wx', 0o600);
    this.#out = out;
    for (let at = 0; at < upTo;) {
      const part = await this.#readWork(at, Math.min(COMPARE_BYTES, upTo - at));
      if (part.length === 0)
        throw new MediaGitError('FILE_CHANGED', 'the working file shrank while it was read', {
          kind: 'user',
        });
      await writeAll(out, part);
      at += part.length;
    }
    await this.#work!.close();
    this.#work = undefined;
  }

  /** The working file's bytes [position, position + length), read ahead a window at a time. */
  async #workBytes(position: number, length: number): Promise<Buffer> {
    const end = this.#windowStart + this.#windowLength;
    if (position < this.#windowStart || position + length > end) {
      const window = await this.#readWork(
        position,
        Math.min(COMPARE_BYTES, this.#workSize - position),
      );
      this.#windowStart = position;
      this.#windowLength = window.length;
    }
    const from = position - this.#windowStart;
    return this.#buffer.subarray(from, Math.min(from + length, this.#windowLength));
  }

  /** The next piece of content, which starts at `offset`. */
  async take(piece: Uint8Array, offset: number): Promise<void> {
    if (this.#work) {
      let same = offset + piece.length <= this.#workSize;
      for (let at = 0; same && at < piece.length; at += COMPARE_BYTES) {
        const length = Math.min(COMPARE_BYTES, piece.length - at);
        const work = await this.#workBytes(offset + at, length);
        same = work.length === length && work.equals(piece.subarray(at, at + length));
      }
      if (same) return;
      await this.#diverge(offset);
    }
    await writeAll(this.#out!, piece);
  }

  /** The file holding the content (`size` bytes in all). */
  async finish(size: number): Promise<string> {
    if (this.#work && size !== this.#workSize) await this.#diverge(size);
    if (this.#work) return this.#workFile!;
    await this.#out!.close();
    this.#out = undefined;
    return this.#tmp;
  }

  async close(): Promise<void> {
    await this.#work?.close().catch(() => undefined);
    await this.#out?.close().catch(() => undefined);
  }
}

async function writeAll(handle: fs.FileHandle, data: Uint8Array): Promise<void> {
  for (let at = 0; at < data.length;)
    at += (await handle.write(data, at, data.length - at)).bytesWritten;
}
