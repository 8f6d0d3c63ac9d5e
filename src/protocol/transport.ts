/**
 * How a client talks to a remote: over HTTP to `mediagit serve`
 * (http-transport.ts), or straight to a bare repository on a local path or
 * `file://` URL (no server: local-transport.ts, loaded only for those), both
 * with the operations of docs/protocol.md.
 */
import type { PackOfFile } from './upload-hashes.ts';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ObjectId } from '../odb/object-id.ts';
import type {
  InfoRefs,
  LocateAnswer,
  LocatedPack,
  PackCommit,
  PackUploadPlan,
  RefUpdate,
  RefUpdateResult,
  WantRequest,
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

/** `transport` with some of its methods replaced (the rest bound to it). */
export function overriding(transport: Transport, overrides: Record<string, unknown>): Transport {
  return new Proxy(transport, {
    get(target, property) {
      if (typeof property === 'string' && Object.hasOwn(overrides, property)) {
        return overrides[property];
      }
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}
