/**
 * `fetch`: brings a remote's branches and tags into this repository.
 *
 * Order keeps an interrupted fetch harmless and resumable: the metadata pack
 * is received and verified first (in memory), then the chunks this
 * repository lacks are downloaded in parallel and stored, each durable on
 * its own (so a rerun skips them), then the metadata objects, and only then
 * the refs.
 */
import { remoteFor } from './encrypted.ts';
import fs from 'node:fs/promises';
import path from 'node:path';
import { MediaGitError } from '../errors.ts';
import { decodeCommit } from '../odb/commit.ts';
import { IngestPack } from '../odb/ingest-pack.ts';
import { decodeManifest } from '../odb/manifest.ts';
import type { ObjectId } from '../odb/object-id.ts';
import type { ObjectStore } from '../odb/object-store.ts';
import { decodeRecord, writeRecord, type DecodedRecord } from '../odb/record.ts';
import { Refs } from '../repo/refs.ts';
import { findRemote } from '../repo/remote.ts';
import type { Repository } from '../repo/repository.ts';
import { decodeTransferPack } from './transfer-pack.ts';
import { receiveFromPacks } from './pack-transfer.ts';
import { openTransport, type TransportOptions } from './open-transport.ts';
import type { InfoRefs } from './service.ts';
import type { Transport } from './transport.ts';
import { trackPath } from '../storage/leftovers.ts';
import {
  formatFilter,
  isEager,
  promisorRemote,
  type PartialCloneFilter,
} from '../repo/partial-clone.ts';

/** Receives every downloaded chunk once verified (its bytes are valid during the call only). */
export interface ChunkSink {
  chunk(id: ObjectId, data: Buffer): Promise<void>;
}

export interface FetchOptions extends TransportOptions {
  /** A configured remote's name, or a URL / path. */
  readonly remote: string;
  readonly prune?: boolean;
  readonly depth?: number | undefined;
  readonly unshallow?: boolean;
  /**
   * Partial clone: chunks of files this filter leaves out are not fetched
   * (docs/partial-clone.md). Default: the promisor remote's filter when
   * fetching from it, else none.
   */
  readonly filter?: PartialCloneFilter | undefined;
  /**
   * Store the chunks in one pack made durable at the end instead of one
   * fsynced file each: for a clone, which is removed whole if it fails.
   */
  readonly singlePack?: boolean;
  /**
   * With `singlePack`: when `signal` aborts, make the pack durable with the
   * chunks that arrived instead of dropping it (an interrupted clone resumes).
   */
  readonly keepOnAbort?: boolean;
  /**
   * The repository was created for this fetch and holds no object (a new
   * clone): nothing received needs looking up before it is stored.
   */
  readonly emptyStore?: boolean;
  readonly signal?: AbortSignal | undefined;
  /** Bytes of chunk content received so far, of those to receive. */
  readonly onProgress?: ((done: number, total: number) => void) | undefined;
  /**
   * Called once the metadata has arrived and been verified, before any chunk
   * is downloaded; the sink it returns sees every chunk (clone writes the
   * files it will check out this way, while downloading).
   */
  readonly sinkFor?:
    | ((
        info: InfoRefs,
        metadata: ReadonlyMap<ObjectId, DecodedRecord>,
      ) => Promise<ChunkSink | undefined>)
    | undefined;
}

export interface RefChange {
  readonly ref: string;
  readonly remoteRef: string;
  readonly old: ObjectId | null;
  readonly new: ObjectId | null;
}

export interface TransferStats {
  objects: number;
  chunks: number;
  chunksSkipped: number;
  bytes: number;
}

export interface FetchResult {
  readonly url: string;
  readonly remoteName: string | undefined;
  readonly head: string | null;
  readonly refs: Record<string, ObjectId>;
  readonly changes: RefChange[];
  readonly stats: TransferStats;
}

async function writeShallow(repo: Repository, shallow: Set<ObjectId>): Promise<void> {
  const file = path.join(repo.gitDir, 'shallow');
  if (shallow.size === 0) {
    await fs.rm(file, { force: true });
  } else {
    const tmp = `${file}.${process.pid}.tmp`;
    const untrack = trackPath(tmp);
    try {
      await fs.writeFile(tmp, [...shallow].sort().join('\n') + '\n');
      await fs.rename(tmp, file);
    } finally {
      untrack();
    }
  }
  repo.objects.shallow = shallow;
}

export async function resolveRemote(
  repo: Repository,
  remote: string,
): Promise<{ url: string; name: string | undefined }> {
  const named = await findRemote(repo, remote);
  if (named) return { url: named.url, name: named.name };
  if (/^[A-Za-z0-9_.-]+$/.test(remote) && !remote.includes('.') && !remote.includes('/')) {
    throw new MediaGitError(
      'NO_SUCH_REMOTE',
      `'${remote}' does not appear to be a mediagit repository (no remote of that name)`,
      { kind: 'user', data: { remote, exitCode: 128 } },
    );
  }
  return { url: remote, name: undefined };
}

export async function fetch(repo: Repository, options: FetchOptions): Promise<FetchResult> {
  const { url, name } = await resolveRemote(repo, options.remote);
  const transport = await openTransport(url, options);
  try {
    return await fetchWith(repo, remoteFor(repo, transport, 'fetch'), name, options);
  } finally {
    await transport.close();
  }
}

export async function fetchWith(
  repo: Repository,
  transport: Transport,
  remoteName: string | undefined,
  options: Omit<FetchOptions, 'remote'>,
): Promise<FetchResult> {
  const info = await transport.infoRefs();
  const store = repo.objects;
  const refs = new Refs(repo);
  const stats: TransferStats = { objects: 0, chunks: 0, chunksSkipped: 0, bytes: 0 };
  const shallow = new Set(store.shallow);
  const promisor = promisorRemote(repo);
  const filter =
    options.filter ??
    (promisor !== undefined && promisor.name === remoteName ? promisor.filter : undefined);
  const wanted = [...new Set(Object.values(info.refs))];
  const wants: ObjectId[] = [];
  for (const id of wanted) if (!(await store.has(id))) wants.push(id);
  if (options.unshallow && shallow.size > 0) wants.push(...shallow);
  if (wants.length > 0) {
    const haves = [...new Set((await refs.list('refs/')).map((ref) => ref.id))];
    const pack = await transport.want({
      wants,
      haves,
      // The manifests of files the filter leaves out stay on the remote too.
      ...(filter !== undefined ? { filter: formatFilter(filter) } : {}),
      ...(options.depth !== undefined ? { depth: options.depth } : {}),
      ...(shallow.size > 0 ? { shallow: [...shallow] } : {}),
    });
    stats.bytes += pack.length;
    const entries = decodeTransferPack(pack);
    const chunkIds: ObjectId[] = [];
    /** Each chunk's length, from its manifest: progress is counted in bytes. */
    const seen = new Map<ObjectId, number>();
    const commits: { id: ObjectId; parents: readonly ObjectId[] }[] = [];
    const metadata = new Map<ObjectId, DecodedRecord>();
    for (const { id, record } of entries) {
      const object = await decodeRecord(id, record, undefined, store.cipher);
      metadata.set(id, object);
      if (object.type === 'manifest') {
        const manifest = decodeManifest(id, object.data);
        // A partial clone fetches these later, when a command reads them.
        if (!isEager(filter, manifest.size)) continue;
        for (const chunk of manifest.chunks) {
          if (!seen.has(chunk.id)) {
            seen.set(chunk.id, chunk.length);
            chunkIds.push(chunk.id);
          }
        }
      } else if (object.type === 'commit') {
        commits.push({ id, parents: decodeCommit(id, object.data).parents });
      }
    }
    const absent = new Set(
      options.emptyStore === true ? chunkIds : await store.absentAmong(chunkIds),
    );
    const needed: ObjectId[] = [];
    let neededBytes = 0;
    for (const id of chunkIds) {
      if (!absent.has(id)) stats.chunksSkipped++;
      else {
        needed.push(id);
        neededBytes += seen.get(id) ?? 0;
      }
    }
    const sink = await options.sinkFor?.(info, metadata);
    await downloadChunks(
      store,
      transport,
      needed,
      neededBytes,
      stats,
      options,
      sink,
      options.singlePack === true && !repo.bare,
      options.keepOnAbort === true ? 'interrupted' : 'never',
      seen,
    );
    stats.objects += await storeMetadata(store, entries, options.emptyStore === true);
    await store.flush();
    store.remember(metadata);
    // The shallow boundary: received commits whose parents are not here.
    const inPack = new Set(commits.map((c) => c.id));
    for (const { id, parents } of commits) {
      let cut = false;
      for (const parent of parents) {
        if (!inPack.has(parent) && !(await store.has(parent))) cut = true;
      }
      if (cut) shallow.add(id);
      else shallow.delete(id);
    }
    if (options.unshallow) {
      for (const id of [...shallow]) {
        const commit = decodeCommit(id, await store.readTyped(id, 'commit'));
        let complete = true;
        for (const parent of commit.parents) if (!(await store.has(parent))) complete = false;
        if (complete) shallow.delete(id);
      }
    }
    await writeShallow(repo, shallow);
  }

  const changes: RefChange[] = [];
  if (remoteName !== undefined) {
    const prefix = `refs/remotes/${remoteName}/`;
    const existing = new Map((await refs.list(prefix)).map((ref) => [ref.name, ref.id]));
    for (const [ref, id] of Object.entries(info.refs)) {
      if (!ref.startsWith('refs/heads/')) continue;
      const local = prefix + ref.slice('refs/heads/'.length);
      const old = existing.get(local) ?? null;
      existing.delete(local);
      if (old === id) continue;
      await refs.update(local, id, { message: `fetch: ${old ? 'fast-forward' : 'storing head'}` });
      changes.push({ ref: local, remoteRef: ref, old, new: id });
    }
    if (options.prune) {
      for (const [local, old] of existing) {
        if (local === `${prefix}HEAD`) continue;
        await refs.update(local, null, { message: 'fetch: prune' });
        changes.push({ ref: local, remoteRef: '', old, new: null });
      }
    }
  }
  // Tags: created when missing, never moved (Git's default without --force).
  for (const [ref, id] of Object.entries(info.refs)) {
    if (!ref.startsWith('refs/tags/')) continue;
    if ((await refs.read(ref)) !== undefined || !(await store.has(id))) continue;
    await refs.update(ref, id, { expected: null, message: 'fetch: tag' });
    changes.push({ ref, remoteRef: ref, old: null, new: id });
  }
  return {
    url: transport.url,
    remoteName,
    head: info.head,
    refs: info.refs,
    changes,
    stats,
  };
}

/**
 * Metadata objects received at once from which they go into one pack: a
 * pack costs about three fsyncs, a loose object one each (43 commits and
 * trees stored loose took 170 ms of a 0.6 s sparse clone). A pack is also
 * all or nothing, so a cut-off store never keeps a commit without its
 * parents; loose objects are written oldest first for the same reason.
 * `gc --auto` folds the packs once there are gc.autoPackLimit of them.
 */
const METADATA_PACK_MIN = 8;

/**
 * Stores the metadata of a transfer pack that is not here yet; returns how
 * many objects were new. A few go in as files; more (a commit of
 * thousands of files brings as many manifests) go into one pack with one
 * fsync instead of a file and an fsync each (measured: 2,000 manifests took
 * 2.5 s as files).
 */
export async function storeMetadata(
  store: ObjectStore,
  entries: readonly { id: ObjectId; record: Buffer }[],
  emptyStore: boolean,
): Promise<number> {
  const unique = new Map<ObjectId, Buffer>();
  for (const { id, record } of entries) if (!unique.has(id)) unique.set(id, record);
  // Thousands of lookups in a large clone: several at a time, kept in the
  // pack's order.
  const absent = new Set(emptyStore ? unique.keys() : await store.absentAmong(unique.keys()));
  const fresh = [...unique]
    .filter(([id]) => absent.has(id))
    .map(([id, record]) => ({ id, record }));
  if (fresh.length < METADATA_PACK_MIN) {
    let written = 0;
    for (const { id, record } of fresh) if (await writeRecord(store, id, record)) written++;
    return written;
  }
  const pack = await IngestPack.create(store);
  try {
    for (const { id, record } of fresh) await pack.append(id, [record]);
    await pack.finish();
  } catch (error) {
    await pack.abort();
    throw error;
  }
  return fresh.length;
}

/**
 * Downloads `ids` (chunks or blobs) and stores them, each verified; with
 * `singlePack` into one pack made durable at the end, else one fsynced file
 * each. Also the lazy content fetch of a partial clone (lazy-content.ts).
 */
export async function downloadChunks(
  store: ObjectStore,
  transport: Transport,
  ids: readonly ObjectId[],
  totalBytes: number,
  stats: TransferStats,
  options: Pick<FetchOptions, 'signal' | 'onProgress'>,
  sink: ChunkSink | undefined,
  singlePack: boolean,
  /**
   * With `singlePack`: whether a download that ends early keeps the chunks
   * that arrived (the pack made durable with them): never, only when
   * `signal` aborted it (a clone, which a failure removes whole), or always.
   */
  keepWhatArrived: 'never' | 'interrupted' | 'always',
  /** Each chunk's raw size where known (from the manifests): a record claiming another is refused unread. */
  sizes?: ReadonlyMap<ObjectId, number>,
): Promise<void> {
  if (ids.length === 0) return;
  let done = 0;
  // One file per chunk, each fsynced as it is written (their folders at the
  // end, before any ref moves): a fetch that is cut off keeps every chunk
  // that arrived, and a rerun downloads only the rest. (Ingest packs made
  // durable every few MiB lost up to three packs' worth when killed, and
  // their fsync pauses slowed the download; `repack` packs these later.)
  // A clone, removed whole if it fails, uses one pack made durable at the
  // end, and so does a partial clone's checkout (its files are written as
  // their chunks arrive, and the per-chunk fsyncs cost more than the
  // download): a kill -9 loses what arrived, anything else keeps it.
  const pack = singlePack ? await IngestPack.create(store) : undefined;
  const keep = (id: ObjectId, record: Buffer): Promise<unknown> =>
    pack ? pack.append(id, [record]) : writeRecord(store, id, record);
  const store1 = async (id: ObjectId, record: Buffer, object: DecodedRecord): Promise<void> => {
    if (object.type !== 'chunk' && object.type !== 'blob') {
      throw new MediaGitError(
        'BAD_OBJECT_RECORD',
        `the remote sent a ${object.type} for chunk ${id}`,
        {
          kind: 'user',
          data: { id },
        },
      );
    }
    stats.chunks++;
    stats.bytes += record.length;
    await Promise.all([keep(id, record), sink?.chunk(id, object.data)]);
    done += object.data.length;
    options.onProgress?.(done, totalBytes);
  };
  const fetchLoose = async (id: ObjectId): Promise<void> => {
    const record = await transport.getChunk(id, sizes?.get(id));
    try {
      await store1(id, record, await decodeRecord(id, record, sizes?.get(id), store.cipher));
    } finally {
      transport.release(record);
    }
  };
  try {
    await receiveFromPacks(transport, ids, {
      signal: options.signal,
      onObject: store1,
      fetchLoose,
      sizeOf: sizes ? (id) => sizes.get(id) : undefined,
      check: store.cipher,
    });
    await pack?.finish();
  } catch (error) {
    // An interrupted clone keeps the chunks that arrived, for its rerun.
    const keepIt =
      keepWhatArrived === 'always' ||
      (keepWhatArrived === 'interrupted' && options.signal?.aborted === true);
    if (pack && keepIt && pack.count > 0) {
      await pack.finish().catch(() => pack.abort());
    } else {
      await pack?.abort();
    }
    throw error;
  }
}
