/**
 * How a client talks to a remote: over HTTP to `mediagit serve`
 * (http-transport.ts), or straight to a bare repository on a local path or
 * `file://` URL (no server), both with the operations of docs/protocol.md.
 */
import type { PackOfFile } from './upload-hashes.ts';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { MediaGitError } from '../errors.ts';
import type { ObjectId } from '../odb/object-id.ts';
import { FsBackend } from '../storage/fs-backend.ts';
import { BackendRepo } from './backend-repo.ts';
import {
  RepoService,
  type InfoRefs,
  type LocateAnswer,
  type LocatedPack,
  type PackCommit,
  type PackUploadPlan,
  type RefUpdate,
  type RefUpdateResult,
  type WantRequest,
} from './service.ts';
import type { SignedRequest } from '../storage/backend.ts';

export interface Transport {
  readonly url: string;
  infoRefs(): Promise<InfoRefs>;
  want(request: WantRequest): Promise<Buffer>;
  missing(ids: readonly ObjectId[]): Promise<ObjectId[]>;
  putChunk(id: ObjectId, record: Buffer): Promise<void>;
  /**
   * A chunk's standalone record; hand it to `release` once its bytes are
   * stored. With `expectedSize` (the chunk's size in its manifest), an
   * answer longer than such a chunk's record can be is refused unread.
   */
  getChunk(id: ObjectId, expectedSize?: number): Promise<Buffer>;
  /** Gives back the buffer of a record from `getChunk` (it must no longer be used). */
  release(record: Buffer): void;
  sendPack(pack: Buffer): Promise<void>;
  updateRefs(updates: readonly RefUpdate[]): Promise<RefUpdateResult[]>;
  /** Which packs are already stored, and (direct) where to upload the others. */
  beginPacks(packs: readonly { name: string; size: number }[]): Promise<PackUploadPlan[]>;
  /**
   * Uploads a cloud pack: to `upload` when given (straight to the store),
   * else through the server; `file`: its place in an LFS object's upload
   * (upload-hashes.ts).
   */
  putPack(name: string, bytes: Buffer, upload?: SignedRequest, file?: PackOfFile): Promise<void>;
  /** Makes uploaded packs' objects visible; a pack's record table spares the server reading it. */
  commitPacks(packs: readonly PackCommit[]): Promise<void>;
  /**
   * Where objects are stored (docs/protocol.md, objects/locate); `gone`
   * names packs a read found missing (server gc deleted them), so the
   * server looks again.
   */
  locate(ids: readonly ObjectId[], gone?: readonly string[]): Promise<LocateAnswer>;
  /** Bytes [offset, offset + length) of a located pack; its buffer goes back with `release`. */
  readPack(pack: LocatedPack, offset: number, length: number): Promise<Buffer>;
  /** The remote's key file when it is an encrypted repository (docs/encryption.md); undefined when plain. */
  keys(): Promise<Buffer | undefined>;
  /**
   * Makes an empty remote repository encrypted with this key file (the
   * first push of one); with `replaces`, the SHA-256 of the remote's key
   * file as read, replaces that one (`key push`), or fails with KEYS_CHANGED.
   */
  putKeys(keyFile: Buffer, replaces?: string): Promise<void>;
  /** How many chunk transfers to run at once. */
  readonly parallelism: number;
  /**
   * The remote is an encrypted repository with a working tree, whose owner
   * holds its key: its branch and tag names are stored in clear, as that
   * repository's own commands write them, not sealed (docs/encryption.md).
   */
  readonly namesInClear?: boolean;
  /**
   * Who the credential is and what it may do (a server; undefined when the
   * remote has no such notion, or a server too old to say).
   */
  access?(): Promise<RemoteAccess | undefined>;
  /** The file locks held by others than the credential's user (a server with file locking). */
  othersLocks?(): Promise<RemoteLock[] | undefined>;
  close(): Promise<void>;
}

export interface RemoteAccess {
  readonly user: string | null;
  readonly scope: 'none' | 'read' | 'write' | 'admin';
  /** The repository the key is for ('*': all); null for anonymous access. */
  readonly repo: string | null;
}

export interface RemoteLock {
  readonly path: string;
  readonly owner: { readonly name: string };
  /** The branch the lock holds; absent: every branch (docs/locks.md). */
  readonly ref?: { readonly name: string };
}

export function isHttpUrl(url: string): boolean {
  return /^https?:\/\//i.test(url);
}

/** The local directory a path or `file://` remote names. */
export function localRemotePath(url: string, cwd: string): string {
  return url.startsWith('file://') ? fileURLToPath(url) : path.resolve(cwd, url);
}

export class LocalTransport implements Transport {
  readonly url: string;
  readonly parallelism = 4;
  readonly #service: RepoService;

  /** A repository with a working tree (its `.mediagit/`), whose checked-out branch a push may not move. */
  readonly #withWorkTree: boolean;

  private constructor(url: string, service: RepoService, withWorkTree: boolean) {
    this.url = url;
    this.#service = service;
    this.#withWorkTree = withWorkTree;
  }

  get namesInClear(): boolean {
    return this.#withWorkTree;
  }

  static async open(url: string, cwd: string): Promise<LocalTransport> {
    const given = localRemotePath(url, cwd);
    let dir = given;
    let repo = new BackendRepo(new FsBackend(dir));
    if (!(await repo.exists())) {
      // A repository with a working tree: its data is in .mediagit/, the same layout.
      dir = path.join(given, '.mediagit');
      repo = new BackendRepo(new FsBackend(dir));
    }
    if (!(await repo.exists())) {
      dir = given;
      throw new MediaGitError(
        'REMOTE_NOT_FOUND',
        `'${url}' does not appear to be a mediagit repository (no HEAD in ${dir})`,
        { kind: 'user', data: { url, exitCode: 128 } },
      );
    }
    return new LocalTransport(url, new RepoService(repo), dir !== given);
  }

  infoRefs(): Promise<InfoRefs> {
    return this.#service.infoRefs();
  }

  want(request: WantRequest): Promise<Buffer> {
    return this.#service.want(request);
  }

  missing(ids: readonly ObjectId[]): Promise<ObjectId[]> {
    return this.#service.missing(ids);
  }

  async putChunk(id: ObjectId, record: Buffer): Promise<void> {
    await this.#service.putChunk(id, record);
  }

  getChunk(id: ObjectId): Promise<Buffer> {
    return this.#service.getChunk(id);
  }

  release(): void {}

  async sendPack(pack: Buffer): Promise<void> {
    await this.#service.receivePack(pack);
  }

  async updateRefs(updates: readonly RefUpdate[]): Promise<RefUpdateResult[]> {
    // Git's receive.denyCurrentBranch: moving the branch a working tree has
    // checked out would leave its index and files describing another commit.
    const checkedOut = this.#withWorkTree ? (await this.#service.infoRefs()).head : null;
    const refused = (u: RefUpdate): boolean => u.ref === checkedOut;
    const applied = await this.#service.updateRefs(updates.filter((u) => !refused(u)));
    return updates.map((u) =>
      refused(u)
        ? {
            ref: u.ref,
            ok: false,
            old: u.old,
            new: u.new,
            reason: 'checked-out',
            message: `refusing to update checked out branch: ${u.ref}`,
          }
        : applied.shift()!,
    );
  }

  beginPacks(packs: readonly { name: string; size: number }[]): Promise<PackUploadPlan[]> {
    return this.#service.beginPacks(packs, false);
  }

  async putPack(
    name: string,
    bytes: Buffer,
    _upload?: SignedRequest,
    file?: PackOfFile,
  ): Promise<void> {
    await this.#service.putPack(name, bytes, file);
  }

  async commitPacks(packs: readonly PackCommit[]): Promise<void> {
    await this.#service.commitPacks(packs);
  }

  locate(ids: readonly ObjectId[], gone?: readonly string[]): Promise<LocateAnswer> {
    return this.#service.locate(ids, false, gone);
  }

  readPack(pack: LocatedPack, offset: number, length: number): Promise<Buffer> {
    return this.#service.readPack(pack.name, offset, length);
  }

  keys(): Promise<Buffer | undefined> {
    return this.#service.keys();
  }

  putKeys(keyFile: Buffer, replaces?: string): Promise<void> {
    return this.#service.adoptKeys(keyFile, replaces);
  }

  async close(): Promise<void> {}
}
