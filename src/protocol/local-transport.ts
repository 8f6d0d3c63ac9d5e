/**
 * The transport to a bare repository on a local path or `file://` URL: the
 * server's own service code run in this process (transport.ts). Its own
 * module, loaded only for such remotes: a command talking to a server does
 * not load the server's repository code.
 */
import type { PackOfFile } from './upload-hashes.ts';
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
import path from 'node:path';
import { localRemotePath, type Transport } from './transport.ts';

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
