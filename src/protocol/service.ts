/**
 * The operations behind every endpoint of docs/protocol.md, on one
 * repository seen through the storage interface. The HTTP server's routes
 * call these after authentication; local-path remotes call them directly,
 * so both transports behave the same.
 */
import type { PackOfFile } from './upload-hashes.ts';
import { MediaGitError } from '../errors.ts';
import { decodeCommit } from '../odb/commit.ts';
import { isObjectId, type ObjectId } from '../odb/object-id.ts';
import { decodeRecord, recordType } from '../odb/record.ts';
import { parseFilter } from '../repo/partial-clone.ts';
import { isValidRefName } from '../repo/refs.ts';
import { BackendRepo, packCommitName, type PackCommit } from './backend-repo.ts';
export type { PackCommit } from './backend-repo.ts';
import { changedLockedPaths, lockAppliesTo, LockStore, type FileLock } from './lock-store.ts';
import { collectObjects } from './reachability.ts';
import { cloudPackKey } from '../odb/cloud-pack.ts';
import type { SignedRequest } from '../storage/backend.ts';
import { decodeTransferPack, encodeTransferPack } from './transfer-pack.ts';

export interface InfoRefs {
  /** The branch HEAD names, or null. */
  readonly head: string | null;
  readonly refs: Record<string, ObjectId>;
  /**
   * Set when the repository is encrypted (docs/encryption.md): its branch
   * and tag names are sealed, and `GET keys` gives its key file.
   */
  readonly encrypted?: boolean;
}

/** Object reads a `want` keeps in flight. */
const WANT_READS = 16;

export interface WantRequest {
  readonly wants: readonly ObjectId[];
  readonly haves?: readonly ObjectId[];
  readonly depth?: number;
  /** The client's shallow boundary: commits it has without their parents. */
  readonly shallow?: readonly ObjectId[];
  /**
   * A partial clone's filter spec (`blob:none`, `blob:limit=<bytes>`): the
   * manifests and blobs of the files it leaves out are not sent
   * (docs/partial-clone.md).
   */
  readonly filter?: string;
}

export interface RefUpdate {
  readonly ref: string;
  /** What the client believes the ref holds (null: absent); it must still hold it. */
  readonly old: ObjectId | null;
  /** The new value; null deletes the ref. */
  readonly new: ObjectId | null;
  /** Allow a move that is not a fast-forward (force push). */
  readonly force?: boolean;
}

export interface PackUploadPlan {
  readonly name: string;
  /** A copy of this pack is already stored (not necessarily indexed). */
  readonly present: boolean;
  /** Upload straight to the store with this request (direct transfers). */
  readonly upload?: SignedRequest;
}

export interface LocatedPack {
  readonly name: string;
  /** Read straight from the store with this request (direct transfers). */
  readonly get?: SignedRequest;
}

export type LocatedObject =
  | {
      readonly id: ObjectId;
      readonly pack: number;
      readonly offset: number;
      readonly length: number;
    }
  | { readonly id: ObjectId; readonly loose: true }
  | { readonly id: ObjectId; readonly missing: true };

export interface LocateAnswer {
  readonly packs: LocatedPack[];
  readonly objects: LocatedObject[];
}

/** Signed requests handed to clients live this long. */
const SIGNED_TTL_SECONDS = 3600;

export type RefRejection =
  | 'stale'
  | 'non-fast-forward'
  | 'protected'
  | 'already-exists'
  | 'missing-objects'
  | 'invalid'
  | 'locked'
  | 'checked-out';

export interface RefUpdateResult {
  readonly ref: string;
  readonly ok: boolean;
  readonly old: ObjectId | null;
  readonly new: ObjectId | null;
  readonly reason?: RefRejection;
  readonly message?: string;
}

const METADATA_TYPES = ['commit', 'tree', 'manifest', 'blob', 'tag'] as const;
const FILE_CONTENT_TYPES = ['chunk', 'blob'] as const;

/** The size above which `want` leaves a file out (its manifest or blob), for a partial clone's filter. */
function fileLimit(spec: string | undefined): number | undefined {
  if (spec === undefined) return undefined;
  const filter = parseFilter(spec);
  return filter.kind === 'blob:none' ? -1 : filter.limit;
}

export function protocolError(code: string, message: string, data: Record<string, unknown> = {}) {
  return new MediaGitError(code, message, { kind: 'user', data });
}

/**
 * 409 ENCRYPTED_REPOSITORY: what a server cannot do without the key in an
 * encrypted repository (docs/encryption.md), and `why`.
 */
export function refusedWhenEncrypted(why: string): MediaGitError {
  return new MediaGitError(
    'ENCRYPTED_REPOSITORY',
    `the repository is encrypted and the server holds no key: ${why}`,
    { kind: 'user', data: { status: 409 } },
  );
}

export class RepoService {
  readonly repo: BackendRepo;

  constructor(repo: BackendRepo) {
    this.repo = repo;
  }

  async infoRefs(): Promise<InfoRefs> {
    const refs: Record<string, ObjectId> = {};
    for (const { name, id } of await this.repo.listRefs()) refs[name] = id;
    const head = (await this.repo.head()) ?? null;
    return (await this.repo.encrypted()) ? { head, refs, encrypted: true } : { head, refs };
  }

  /** An encrypted repository's key file (wrapped keys only); undefined for a plain one. */
  async keys(): Promise<Buffer | undefined> {
    return this.repo.keyFile();
  }

  /** Makes an empty repository encrypted with this key file, or replaces its key file (BackendRepo.adoptKeyFile). */
  async adoptKeys(keyFile: Uint8Array, replaces?: string): Promise<void> {
    await this.repo.adoptKeyFile(keyFile, replaces);
  }

  /** A transfer pack of every metadata object the client lacks. */
  async want(request: WantRequest, signal?: AbortSignal): Promise<Buffer> {
    if (request.filter !== undefined && (await this.repo.encrypted())) {
      throw refusedWhenEncrypted('a partial clone filter needs file sizes, which are sealed');
    }
    // One lookup for them all: a partial clone asks for thousands of manifests at once.
    const [unknown] = await this.repo.missing(request.wants);
    if (unknown !== undefined) {
      throw protocolError('WANT_UNKNOWN', `the server has no object ${unknown}`, { id: unknown });
    }
    const collected = await collectObjects(this.repo, request.wants, {
      haves: request.haves,
      depth: request.depth,
      receiverShallow: request.shallow,
      chunks: false,
      omitFilesOver: fileLimit(request.filter),
      signal,
    });
    // Records read a few at a time: a served repository keeps one key per
    // object, and a commit of thousands of files has thousands of manifests.
    const records = new Array<Buffer>(collected.objects.length);
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(WANT_READS, collected.objects.length) }, async () => {
        for (let i = next++; i < collected.objects.length; i = next++) {
          signal?.throwIfAborted();
          records[i] = await this.repo.getRecord(collected.objects[i]!);
        }
      }),
    );
    return encodeTransferPack(collected.objects.map((id, i) => ({ id, record: records[i]! })));
  }

  /**
   * Which of these chunk IDs the repository lacks, in the order given (for
   * a client deciding what to upload: objects server gc found unreachable
   * count as lacking, see gc-state.ts).
   */
  async missing(ids: readonly ObjectId[]): Promise<ObjectId[]> {
    return this.repo.missing(ids, { pendingAsAbsent: true });
  }

  /**
   * The first step of a pack upload: for each pack, whether a copy is
   * already stored (a push resumed after an interruption) and, with
   * `direct` where the backend can sign, a request to upload it straight to
   * the store (create-only, so it cannot replace anything).
   */
  async beginPacks(
    packs: readonly { name: string; size: number }[],
    direct: boolean,
  ): Promise<PackUploadPlan[]> {
    const backend = this.repo.backend;
    const canSign = direct && backend.capabilities.signedUrls && backend.sign !== undefined;
    for (const { name } of packs) {
      if (!isObjectId(name))
        throw protocolError('BAD_PACK_NAME', `${name} is not a pack name`, { name });
    }
    const stored = await this.repo.storedPacks(packs.map((p) => p.name));
    return Promise.all(
      packs.map(async ({ name, size }): Promise<PackUploadPlan> => {
        if (stored.has(name)) {
          const storedSize = stored.get(name);
          // Known by a listing (existence only), or a copy of the same size.
          if (storedSize === undefined || storedSize === size) return { name, present: true };
          await backend.delete(cloudPackKey(name)); // a different, unindexed copy: replace it
        }
        if (!canSign) return { name, present: false };
        const upload = await backend.sign!(cloudPackKey(name), {
          method: 'PUT',
          expiresSeconds: SIGNED_TTL_SECONDS,
          createOnly: true,
        });
        return { name, present: false, upload };
      }),
    );
  }

  /** Stores a pack sent through the server (verified first; see BackendRepo.storePack). */
  /** Stores an uploaded pack; `file`: its place in an LFS object's upload (upload-hashes.ts). */
  async putPack(name: string, bytes: Uint8Array, file?: PackOfFile): Promise<{ objects: number }> {
    if (!isObjectId(name))
      throw protocolError('BAD_PACK_NAME', `${name} is not a pack name`, { name });
    return { objects: (await this.repo.storePack(name, bytes, file)).length };
  }

  /** Makes uploaded packs' objects visible (BackendRepo.commitPacks). */
  async commitPacks(packs: readonly PackCommit[]): Promise<{ index: string; objects: number }> {
    for (const pack of packs) {
      const name = packCommitName(pack);
      if (!isObjectId(name))
        throw protocolError('BAD_PACK_NAME', `${name} is not a pack name`, { name });
    }
    return this.repo.commitPacks(packs);
  }

  /**
   * Where the objects are, for a reader to fetch them itself: a pack range
   * each (packs listed once, with a signed GET where asked and possible),
   * 'loose' for one stored on its own, 'missing' for one stored nowhere.
   */
  async locate(
    ids: readonly ObjectId[],
    direct: boolean,
    gone: readonly string[] = [],
  ): Promise<LocateAnswer> {
    // Packs a client found missing: gc deleted them; forget their indexes.
    for (const pack of gone) {
      if (!isObjectId(pack)) continue;
      if ((await this.repo.backend.head(cloudPackKey(pack))) === undefined) {
        this.repo.catalog.dropPack(pack);
      }
    }
    const found = await this.repo.locate(ids);
    const backend = this.repo.backend;
    const canSign = direct && backend.capabilities.signedUrls && backend.sign !== undefined;
    const packIndex = new Map<string, number>();
    const packs: LocatedPack[] = [];
    const objects: LocatedObject[] = [];
    for (const [i, where] of found.entries()) {
      const id = ids[i]!;
      if (where === undefined) objects.push({ id, missing: true });
      else if (where === 'loose') objects.push({ id, loose: true });
      else {
        let p = packIndex.get(where.pack);
        if (p === undefined) {
          packIndex.set(where.pack, (p = packs.length));
          packs.push({ name: where.pack });
        }
        objects.push({ id, pack: p, offset: where.offset, length: where.length });
      }
    }
    if (canSign) {
      await Promise.all(
        packs.map(async (pack, i) => {
          const get = await backend.sign!(cloudPackKey(pack.name), {
            method: 'GET',
            expiresSeconds: SIGNED_TTL_SECONDS,
          });
          packs[i] = { name: pack.name, get };
        }),
      );
    }
    return { packs, objects };
  }

  /** Bytes of a stored pack, for readers without direct access. */
  async readPack(name: string, offset: number, length: number): Promise<Buffer> {
    if (!isObjectId(name))
      throw protocolError('BAD_PACK_NAME', `${name} is not a pack name`, { name });
    try {
      const bytes = await this.repo.backend.getRange(cloudPackKey(name), offset, offset + length);
      return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    } catch (error) {
      if (error instanceof MediaGitError && error.code === 'STORAGE_NOT_FOUND') {
        this.repo.catalog.dropPack(name);
        throw new MediaGitError('OBJECT_MISSING', `no pack ${name}`, {
          kind: 'user',
          data: { status: 404 },
        });
      }
      throw error;
    }
  }

  /** Stores an uploaded chunk after verifying it hashes to `id`. */
  async putChunk(id: ObjectId, record: Uint8Array): Promise<boolean> {
    return this.repo.putRecord(id, record, FILE_CONTENT_TYPES);
  }

  async getChunk(id: ObjectId): Promise<Buffer> {
    const record = await this.repo.getRecord(id);
    const type = recordType(id, record);
    if (type !== 'chunk' && type !== 'blob') {
      throw protocolError('NOT_A_CHUNK', `object ${id} is a ${type}, not a chunk`, { id });
    }
    return record;
  }

  /**
   * Stores the metadata objects of a pushed transfer pack: every record is
   * verified before the first is stored, so a bad pack stores nothing.
   */
  async receivePack(body: Uint8Array): Promise<{ objects: number; stored: number }> {
    const entries = decodeTransferPack(body);
    for (const { id, record } of entries) {
      const object = await decodeRecord(id, record, undefined, await this.repo.recordCheck(record));
      if (!(METADATA_TYPES as readonly string[]).includes(object.type)) {
        throw protocolError('BAD_TRANSFER_PACK', `a ${object.type} does not travel in a pack`, {
          id,
        });
      }
    }
    let stored = 0;
    for (const { id, record } of entries) {
      if (await this.repo.putVerified(id, record)) stored++;
    }
    return { objects: entries.length, stored };
  }

  /**
   * Applies each update on its own (not atomically as a group), as Git does
   * by default. With `pusher`, a branch update that changes a file locked by
   * someone else (lock-store.ts) is refused.
   */
  async updateRefs(updates: readonly RefUpdate[], pusher?: string): Promise<RefUpdateResult[]> {
    const results: RefUpdateResult[] = [];
    let othersLocks: FileLock[] | undefined;
    // Locks name paths, which an encrypted repository's trees keep sealed: none are taken there.
    const locking = pusher !== undefined && !(await this.repo.encrypted());
    for (const update of updates) {
      if (locking && update.ref.startsWith('refs/heads/') && update.new !== null) {
        othersLocks ??= (await new LockStore(this.repo).list()).filter(
          (lock) => lock.owner.name !== pusher,
        );
      }
      results.push(await this.#updateRef(update, othersLocks ?? []));
    }
    return results;
  }

  async #updateRef(update: RefUpdate, othersLocks: readonly FileLock[]): Promise<RefUpdateResult> {
    const { ref } = update;
    const reject = (reason: RefRejection, message: string): RefUpdateResult => ({
      ref,
      ok: false,
      old: update.old,
      new: update.new,
      reason,
      message,
    });
    const validName =
      isValidRefName(ref) && (ref.startsWith('refs/heads/') || ref.startsWith('refs/tags/'));
    if (!validName) return reject('invalid', `${ref} is not a branch or tag name`);
    for (const id of [update.old, update.new]) {
      if (id !== null && !isObjectId(id)) return reject('invalid', `${id} is not an object ID`);
    }
    const current = await this.repo.readRef(ref);
    const currentId = current?.id ?? null;
    if (currentId !== update.old) {
      // Already where the client wants it: a retry of an update whose answer
      // was lost (or someone else made the same move). Success either way:
      // a retried request must never turn success into failure.
      if (currentId === update.new) return { ref, ok: true, old: update.old, new: update.new };
      return reject(
        'stale',
        `${ref} is at ${currentId ?? 'nothing'}, not ${update.old ?? 'nothing'}`,
      );
    }
    if (update.new === currentId) return { ref, ok: true, old: currentId, new: update.new };
    const protectedBranch = await this.repo.isProtected(ref);
    let closure: ObjectId[] = [];
    if (update.new === null) {
      if (protectedBranch) return reject('protected', `${ref} is protected: it cannot be deleted`);
    } else {
      const { missing, reached } = await this.#missingObjects(update.new);
      if (missing) return reject('missing-objects', missing);
      closure = reached;
      if (currentId !== null) {
        if (ref.startsWith('refs/tags/') && !update.force) {
          return reject('already-exists', `${ref} already exists`);
        }
        const fastForward = await this.#isAncestor(currentId, update.new);
        if (!fastForward && protectedBranch) {
          return reject('protected', `${ref} is protected: only fast-forwards are allowed`);
        }
        if (!fastForward && !update.force) {
          return reject('non-fast-forward', `${ref} cannot be fast-forwarded to ${update.new}`);
        }
      }
    }
    if (update.new !== null && othersLocks.length > 0 && ref.startsWith('refs/heads/')) {
      // A new branch is compared with the branch HEAD names.
      const head = await this.repo.head();
      const base = currentId ?? (head ? ((await this.repo.readRef(head))?.id ?? null) : null);
      const changed = await changedLockedPaths(
        (id) => this.repo.read(id).then((o) => o.data),
        base,
        update.new,
        othersLocks.filter((lock) => lockAppliesTo(lock, ref)),
      );
      if (changed.length > 0) {
        return reject(
          'locked',
          `it changes files locked by others: ${changed.map((l) => `${l.path} (${l.owner.name})`).join(', ')}`,
        );
      }
    }
    // The objects the new value reaches that no ref reached: a gc sweep in
    // progress must not be deleting their only copies (gc-state.ts).
    let swapped: boolean;
    try {
      swapped = await this.repo.fencedWrite(
        closure,
        () => this.repo.casRef(ref, current?.etag, update.new),
        async () => {
          const now = await this.repo.readRef(ref);
          if (now?.id === update.new) await this.repo.casRef(ref, now.etag, currentId);
        },
      );
    } catch (error) {
      if (error instanceof MediaGitError && error.code === 'GC_COLLECTING') {
        return reject('missing-objects', error.message);
      }
      throw error;
    }
    if (!swapped) return reject('stale', `${ref} changed while it was being updated`);
    return { ref, ok: true, old: currentId, new: update.new };
  }

  /**
   * Whether `id` and everything it reaches are stored (`missing`: a reason
   * when not), and what it reaches that no ref reaches yet (`reached`).
   */
  async #missingObjects(id: ObjectId): Promise<{ missing?: string; reached: ObjectId[] }> {
    const type = await this.repo.typeOf(id);
    if (type === undefined) return { missing: `object ${id} is not on the server`, reached: [] };
    if (type !== 'commit' && type !== 'tag') {
      return { missing: `object ${id} is a ${type}, not a commit`, reached: [] };
    }
    // Every branch and tag is complete on the server; HEAD names one of them.
    const haves = (await this.repo.listRefs()).map((ref) => ref.id);
    let collected;
    try {
      collected = await collectObjects(this.repo, [id], { haves });
    } catch (error) {
      if (error instanceof MediaGitError && error.code === 'OBJECT_MISSING') {
        return { missing: error.message, reached: [] };
      }
      throw error;
    }
    const missing = await this.repo.missing(collected.chunks);
    if (missing.length > 0) {
      return { missing: `${missing.length} chunks of ${id} are not on the server`, reached: [] };
    }
    return { reached: [...collected.objects, ...collected.chunks] };
  }

  async #isAncestor(ancestor: ObjectId, descendant: ObjectId): Promise<boolean> {
    const seen = new Set<ObjectId>();
    const stack = [descendant];
    while (stack.length > 0) {
      const id = stack.pop()!;
      if (id === ancestor) return true;
      if (seen.has(id)) continue;
      seen.add(id);
      const object = await this.repo.read(id).catch(() => undefined);
      if (object?.type !== 'commit') continue;
      stack.push(...decodeCommit(id, object.data).parents);
    }
    return false;
  }
}
