/**
 * Git LFS objects in a server repository: a whole file named by its SHA-256
 * (the LFS OID), stored as MediaGit content so every version shares chunks
 * with the others. Uploads are streamed to a temp file, checked against
 * their OID and size, then cut and stored like `mediagit add` stores a file;
 * a file stored whole is the blob named by its OID, a chunked one is its
 * manifest plus the key `lfs/<2 hex>/<62 hex>` naming that manifest (the
 * same key `PUT manifests/:oid` writes), put last so that an OID is
 * visible only once all its objects are.
 *
 * An object a client uploaded straight to the store (direct transfers, a
 * signed PUT to `lfs/whole/<oid>`) is kept whole there, as Git LFS servers
 * on object storage keep theirs, so downloads can be signed GETs too; the
 * server binds it (`whole <size>` under the OID's key) only once it has read
 * it back and it hashes to its OID (adoptWholeLfsObject). docs/design.md,
 * "Git LFS on object storage".
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { MediaGitError } from '../errors.ts';
import { DEFAULT_CHUNK_THRESHOLD, FileStore } from '../odb/file-store.ts';
import { lfsObjectKey } from '../odb/lfs-pointer.ts';
import { decodeManifest, type Manifest } from '../odb/manifest.ts';
import { isObjectId, type ObjectId } from '../odb/object-id.ts';
import { ObjectStore } from '../odb/object-store.ts';
import { profileFor } from '../repo/stage.ts';
import { tempName } from '../storage/durable-file.ts';
import { FsBackend } from '../storage/fs-backend.ts';
import type { BackendRepo } from './backend-repo.ts';

/** Where an LFS object's content is. */
export type LfsContent =
  | { readonly kind: 'blob'; readonly id: ObjectId; readonly size: number }
  /** Stored whole under `lfsWholeKey(id)` (id: the OID). */
  | { readonly kind: 'whole'; readonly id: ObjectId; readonly size: number }
  | {
      readonly kind: 'manifest';
      readonly id: ObjectId;
      readonly size: number;
      readonly manifest: Manifest;
    };

function badUpload(message: string, status = 422): MediaGitError {
  return new MediaGitError('LFS_BAD_UPLOAD', message, { kind: 'user', data: { status } });
}

/** Where an object uploaded straight to the store is kept whole. */
export function lfsWholeKey(oid: ObjectId): string {
  return `lfs/whole/${oid}`;
}

/** Pieces a whole object is read in (ranged GETs, two ahead). */
const WHOLE_PIECE = 8 * 1024 * 1024;

/**
 * What the OID's key says (`lfs/<oid>`): a manifest ID, or `whole <size>`;
 * undefined when there is none (the content may still be a blob).
 */
export async function lfsBinding(repo: BackendRepo, oid: ObjectId): Promise<string | undefined> {
  try {
    return Buffer.from(await repo.backend.get(lfsObjectKey(oid)))
      .toString('utf8')
      .trim();
  } catch (error) {
    if (!(error instanceof MediaGitError && error.code === 'STORAGE_NOT_FOUND')) throw error;
    return undefined;
  }
}

/** The stored content with this OID, or undefined. */
export async function findLfsObject(
  repo: BackendRepo,
  oid: ObjectId,
): Promise<LfsContent | undefined> {
  if (!isObjectId(oid)) return undefined;
  const manifestId = await lfsBinding(repo, oid);
  const whole = /^whole (\d+)$/.exec(manifestId ?? '');
  if (whole) return { kind: 'whole', id: oid, size: Number(whole[1]) };
  if (manifestId !== undefined && isObjectId(manifestId)) {
    const record = await repo.read(manifestId);
    const manifest = decodeManifest(manifestId, record.data);
    return { kind: 'manifest', id: manifestId, size: manifest.size, manifest };
  }
  const header = await repo.header(oid);
  if (header?.type === 'blob') return { kind: 'blob', id: oid, size: header.rawSize };
  return undefined;
}

/**
 * Hands the content's bytes, in order and verified, to `write` (which must
 * be done with each piece when its promise settles).
 */
export async function streamLfsObject(
  repo: BackendRepo,
  content: LfsContent,
  write: (data: Uint8Array) => Promise<void>,
  /** How a chunk is read: verified against its ID unless the caller checks the bytes itself. */
  readChunk: (id: ObjectId, length: number) => Promise<Buffer> = async (id) =>
    (await repo.read(id)).data,
): Promise<void> {
  if (content.kind === 'blob') {
    await write((await repo.read(content.id)).data);
    return;
  }
  if (content.kind === 'whole') {
    await streamWhole(repo, lfsWholeKey(content.id), content.size, write);
    return;
  }
  // Several chunks read ahead of the one being handed over, so the disk and
  // the consumer (a socket, a hash) overlap.
  const chunks = content.manifest.chunks;
  const read = (i: number): Promise<Buffer> => {
    const pending = readChunk(chunks[i]!.id, chunks[i]!.length);
    pending.catch(() => undefined);
    return pending;
  };
  const ahead: Promise<Buffer>[] = [];
  for (let i = 0; i < Math.min(READ_AHEAD, chunks.length); i++) ahead.push(read(i));
  for (let i = 0; i < chunks.length; i++) {
    const data = await ahead.shift()!;
    if (i + READ_AHEAD < chunks.length) ahead.push(read(i + READ_AHEAD));
    await write(data);
  }
}

/** Chunks read ahead of the one being handed over. */
const READ_AHEAD = 4;

/** A stored object's bytes in order, read in ranges a few pieces ahead of `write`. */
async function streamWhole(
  repo: BackendRepo,
  key: string,
  size: number,
  write: (data: Uint8Array) => Promise<void>,
): Promise<void> {
  const read = (at: number): Promise<Uint8Array> => {
    const pending = repo.backend.getRange(key, at, Math.min(size, at + WHOLE_PIECE));
    pending.catch(() => undefined);
    return pending;
  };
  const ahead: Promise<Uint8Array>[] = [];
  let next = 0;
  for (; next < size && ahead.length < 2; next += WHOLE_PIECE) ahead.push(read(next));
  for (let at = 0; at < size; at += WHOLE_PIECE) {
    const piece = await ahead.shift()!;
    const expected = Math.min(WHOLE_PIECE, size - at);
    if (piece.length !== expected) {
      throw new MediaGitError(
        'LFS_OBJECT_CORRUPT',
        `${repo.backend.url}/${key} is shorter than its ${size} bytes`,
        { kind: 'corrupt', data: { key } },
      );
    }
    if (next < size) {
      ahead.push(read(next));
      next += WHOLE_PIECE;
    }
    await write(piece);
  }
}

/**
 * Binds an object a client uploaded straight to the store, once it is read
 * back whole and hashes to `oid` with `size` bytes: 'stored'. A copy that
 * does not is deleted ('bad': the client may upload again); 'absent' when
 * nothing was uploaded. For an OID not bound yet (callers look first).
 */
export async function adoptWholeLfsObject(
  repo: BackendRepo,
  oid: ObjectId,
  size: number,
): Promise<'stored' | 'bad' | 'absent'> {
  const key = lfsWholeKey(oid);
  const head = await repo.backend.head(key);
  if (head === undefined) return 'absent';
  let good = head.size === size;
  if (good) {
    const sha = createHash('sha256');
    try {
      await streamWhole(repo, key, size, async (data) => {
        sha.update(data);
      });
      good = sha.digest('hex') === oid;
    } catch (error) {
      // A copy shorter than it said (replaced meanwhile?) is bad; a store failure is not.
      if (!(error instanceof MediaGitError && error.code === 'LFS_OBJECT_CORRUPT')) throw error;
      good = false;
    }
  }
  if (!good) {
    await repo.backend.delete(key);
    return 'bad';
  }
  await repo.backend.put(lfsObjectKey(oid), Buffer.from(`whole ${size}\n`));
  return 'stored';
}

/** The SHA-256 of stored content, every chunk read and verified on the way. */
export async function contentSha256(repo: BackendRepo, content: LfsContent): Promise<ObjectId> {
  const hash = createHash('sha256');
  // The chunks are not hashed again against their IDs (each was verified
  // when stored): the SHA-256 checks every byte, at half the cost.
  await streamLfsObject(
    repo,
    content,
    async (data) => {
      hash.update(data);
    },
    (id, length) => repo.readStoredChunk(id, length),
  );
  return hash.digest('hex');
}

/**
 * Stores an uploaded object: `body` is streamed to a temp file under
 * `tmpDir`, refused unless it is exactly `size` bytes hashing to `oid`,
 * then stored as MediaGit objects. Nothing of a refused upload remains.
 */
export async function receiveLfsObject(
  repo: BackendRepo,
  oid: ObjectId,
  size: number,
  body: Readable,
  tmpDir: string,
): Promise<{ stored: boolean }> {
  await fs.mkdir(tmpDir, { recursive: true });
  const tmp = tempName(tmpDir, 'lfs-upload');
  const handle = await fs.open(tmp, 'wx', 0o600);
  try {
    const sha = createHash('sha256');
    let received = 0;
    for await (const part of body as AsyncIterable<Buffer>) {
      received += part.length;
      if (received > size)
        throw badUpload(`upload of ${oid} is longer than its ${size} bytes`, 400);
      sha.update(part);
      let at = 0;
      while (at < part.length) at += (await handle.write(part, at, part.length - at)).bytesWritten;
    }
    await handle.close();
    if (received !== size)
      throw badUpload(`upload of ${oid} ended after ${received} of ${size} bytes`, 400);
    if (sha.digest('hex') !== oid) throw badUpload(`uploaded content does not hash to ${oid}`);
    if (await findLfsObject(repo, oid)) return { stored: false };
    await storeFile(repo, tmp, oid, tmpDir);
    return { stored: true };
  } finally {
    await handle.close().catch(() => undefined);
    await fs.rm(tmp, { force: true });
  }
}

/**
 * Cuts and stores a verified file. A repository on the file backend is an
 * object store itself (the same `objects/<2>/<62>` layout), so chunks are
 * written in place, skipping those already there; any other backend gets
 * them through a staging store, in cloud packs (BackendRepo.storeObjects).
 */
async function storeFile(
  repo: BackendRepo,
  file: string,
  oid: ObjectId,
  tmpDir: string,
): Promise<void> {
  const backend = repo.backend;
  const direct = backend instanceof FsBackend;
  const staging = direct
    ? new ObjectStore(path.join(backend.root, 'objects'), path.join(backend.root, '.tmp'))
    : new ObjectStore(tempName(tmpDir, 'lfs-staging'), tmpDir);
  await fs.mkdir(staging.tmpDir, { recursive: true });
  const files = new FileStore(staging);
  try {
    const stored = await files.storeFile(file, {
      chunkThreshold: DEFAULT_CHUNK_THRESHOLD,
      // Loose objects only (the server reads no packs), never deltas (every
      // record a server holds decodes on its own).
      packThreshold: Number.POSITIVE_INFINITY,
      profile: (head, fileSize) => profileFor(head, '', fileSize, true),
    });
    if (stored.sha256 !== oid) throw badUpload(`stored content does not hash to ${oid}`, 500);
    await staging.flush();
    if (!direct) {
      // The file's chunks in file order (a reader of the file reads the packs
      // front to back), then its manifest and anything else staged.
      const ids: ObjectId[] = [];
      if (stored.kind === 'manifest') {
        const manifest = decodeManifest(stored.id, (await staging.read(stored.id)).data);
        for (const chunk of manifest.chunks) ids.push(chunk.id);
      }
      for await (const id of staging.listLoose()) ids.push(id);
      await repo.storeObjects(ids, (id) => staging.readRecord(id));
    }
    if (stored.kind === 'manifest') {
      // Naming the manifest makes it and its chunks reachable: fenced
      // against a gc sweep deleting one of them (gc-state.ts).
      const key = lfsObjectKey(oid);
      const manifest = decodeManifest(stored.id, (await staging.read(stored.id)).data);
      await repo.fencedWrite(
        [stored.id, ...manifest.chunks.map((c) => c.id)],
        () => backend.put(key, Buffer.from(`${stored.id}\n`)),
        () => backend.delete(key),
      );
    } else {
      // A small object stored as one blob (its ID is the OID): the key says
      // so, which makes it a root for server gc (server-gc.ts).
      const key = lfsObjectKey(oid);
      await repo.fencedWrite(
        [oid],
        () => backend.put(key, Buffer.from('blob\n')),
        () => backend.delete(key),
      );
    }
  } finally {
    await files.close();
    if (!direct) await fs.rm(staging.objectsDir, { recursive: true, force: true });
  }
}
