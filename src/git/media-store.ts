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
import { createReadStream } from 'node:fs';
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

export function lfsKey(oid: ObjectId): string {
  return `lfs/${oid.slice(0, 2)}/${oid.slice(2)}`;
}

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
      manifestId = (await fs.readFile(path.join(this.dir, lfsKey(oid)), 'utf8')).trim();
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
    if (stored.kind === 'manifest') {
      await writeFileAtomic(
        path.join(this.dir, lfsKey(stored.sha256)),
        [Buffer.from(`${stored.id}\n`)],
        {
          tmpDir: this.objects.tmpDir,
          dirSync: this.objects.dirSync,
        },
      );
    }
    await this.objects.flush();
    return { kind: stored.kind, id: stored.id, size: stored.size, oid: stored.sha256 };
  }

  /**
   * The clean filter: stores `content` and returns its pointer. Content that
   * already is a valid pointer passes through unchanged (re-adding a file
   * checked out without its content must not wrap the pointer in a pointer).
   */
  async clean(content: AsyncIterable<Uint8Array>, repoPath = ''): Promise<Buffer> {
    const tmp = tempName(this.objects.tmpDir, 'clean');
    const handle = await fs.open(tmp, 'wx', 0o600);
    try {
      const sha = createHash('sha256');
      let size = 0;
      let head: Buffer[] = [];
      for await (const piece of content) {
        sha.update(piece);
        if (size <= MAX_POINTER_BYTES) head.push(Buffer.from(piece));
        size += piece.length;
        let at = 0;
        while (at < piece.length) {
          const { bytesWritten } = await handle.write(piece, at, piece.length - at);
          at += bytesWritten;
        }
      }
      await handle.close();
      if (size <= MAX_POINTER_BYTES) {
        const bytes = Buffer.concat(head);
        if (parsePointer(bytes).ok) return bytes;
      }
      head = [];
      const oid = sha.digest('hex');
      if (!(await this.locate(oid))) {
        const stored = await this.storeFile(tmp, repoPath);
        if (stored.oid !== oid || stored.size !== size) {
          throw new MediaGitError(
            'FILE_CHANGED',
            `content of ${repoPath || 'the file'} changed while it was stored`,
            {
              kind: 'user',
            },
          );
        }
      }
      return Buffer.from(formatPointer({ oid, size, extra: [] }), 'utf8');
    } finally {
      await handle.close().catch(() => undefined);
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

/** Reads a whole file as an async iterable (for cleaning a file on disk). */
export function fileContent(filePath: string): AsyncIterable<Uint8Array> {
  return createReadStream(filePath, { highWaterMark: 1024 * 1024 });
}
