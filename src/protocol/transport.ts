/**
 * How a client talks to a remote: over HTTP to `mediagit serve`
 * (http-transport.ts), or straight to a bare repository on a local path or
 * `file://` URL (no server), both with the operations of docs/protocol.md.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { MediaGitError } from '../errors.ts';
import type { ObjectId } from '../odb/object-id.ts';
import { FsBackend } from '../storage/fs-backend.ts';
import { BackendRepo } from './backend-repo.ts';
import {
  RepoService,
  type InfoRefs,
  type RefUpdate,
  type RefUpdateResult,
  type WantRequest,
} from './service.ts';

export interface Transport {
  readonly url: string;
  infoRefs(): Promise<InfoRefs>;
  want(request: WantRequest): Promise<Buffer>;
  missing(ids: readonly ObjectId[]): Promise<ObjectId[]>;
  putChunk(id: ObjectId, record: Buffer): Promise<void>;
  /** A chunk's standalone record; hand it to `release` once its bytes are stored. */
  getChunk(id: ObjectId): Promise<Buffer>;
  /** Gives back the buffer of a record from `getChunk` (it must no longer be used). */
  release(record: Buffer): void;
  sendPack(pack: Buffer): Promise<void>;
  updateRefs(updates: readonly RefUpdate[]): Promise<RefUpdateResult[]>;
  /** How many chunk transfers to run at once. */
  readonly parallelism: number;
  close(): Promise<void>;
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

  private constructor(url: string, service: RepoService) {
    this.url = url;
    this.#service = service;
  }

  static async open(url: string, cwd: string): Promise<LocalTransport> {
    const dir = localRemotePath(url, cwd);
    const repo = new BackendRepo(new FsBackend(dir));
    if (!(await repo.exists())) {
      throw new MediaGitError(
        'REMOTE_NOT_FOUND',
        `'${url}' does not appear to be a mediagit repository (no HEAD in ${dir})`,
        { kind: 'user', data: { url, exitCode: 128 } },
      );
    }
    return new LocalTransport(url, new RepoService(repo));
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

  updateRefs(updates: readonly RefUpdate[]): Promise<RefUpdateResult[]> {
    return this.#service.updateRefs(updates);
  }

  async close(): Promise<void> {}
}
