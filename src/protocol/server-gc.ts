/**
 * Server-side gc (`mediagit gc --root`, `POST /admin/gc`): deletes the loose
 * objects and cloud packs of a served repository that nothing reaches, on
 * any storage backend, while servers keep taking pushes (docs/gc.md,
 * "Server roots").
 *
 * Roots: every branch and tag, and every Git LFS object (`lfs/<2>/<62>`
 * naming a manifest; `lfs/whole/<oid>` keys are never touched): the Git
 * commits that point at LFS objects live in a repository the server never
 * sees.
 *
 * A run, holding the repository's gc lease (`gc/lock`):
 * 1. marks everything the roots reach;
 * 2. takes stock of the loose objects and of the packs its indexes name;
 * 3. copies the live records of mostly-garbage packs into new packs (a new
 *    index names them), after which those packs hold nothing not stored
 *    elsewhere: they are "redundant";
 * 4. picks what to delete: unreachable loose objects and redundant packs
 *    that an earlier run recorded in `gc/pending.json` at least the grace
 *    window ago (with `immediate`, everything found now);
 * 5. sweeps behind the fence (gc-state.ts): writes `gc/deleting.json`, waits,
 *    reads the roots again and keeps whatever they now reach, then writes
 *    one index for the packs that stay, deletes the old indexes, the packs
 *    and the loose objects;
 * 6. records what is unreachable or redundant now in `gc/pending.json`.
 *
 * Records a server stores are standalone (never deltas), except in a bare
 * repository made on a local disk (`clone --bare`): there the live records
 * stored loose or in packs with their own index are read for delta bases,
 * and such packs are never rewritten or deleted.
 */
import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { MediaGitError } from '../errors.ts';
import {
  CloudPackWriter,
  cloudPackKey,
  encodeMultiIndex,
  MAX_CLOUD_PACK_BYTES,
  multiIndexKey,
  type IndexedObject,
} from '../odb/cloud-pack.ts';
import { Codec } from '../compression/codec.ts';
import { parseDeltaPayload } from '../odb/delta.ts';
import { decodeManifest } from '../odb/manifest.ts';
import { isObjectId, type ObjectId } from '../odb/object-id.ts';
import { decodeHeader, HEADER_SIZE } from '../odb/object-store.ts';
import type { PackEntry } from '../odb/pack.ts';
import { isStorageCode, type StorageBackend } from '../storage/backend.ts';
import { eachLimited } from '../storage/concurrency.ts';
import { BackendRepo, objectKey } from './backend-repo.ts';
import {
  DELETING_KEY,
  DELETING_MAX_AGE_MS,
  FENCE_WAIT_MS,
  LOCK_KEY,
  PENDING_KEY,
  readPending,
  type DeletingList,
  type PendingList,
} from './gc-state.ts';
import { collectObjects } from './reachability.ts';

/** Servers' default grace window: what an earlier run found unreachable an hour ago goes. */
export const DEFAULT_SERVER_GRACE_MS = 60 * 60 * 1000;
/** A pack with less than this share of live bytes is rewritten. */
const REWRITE_BELOW = 0.5;
/** At most this many live bytes are copied out of mostly-garbage packs per run. */
const MAX_REWRITE_BYTES = 4 * 1024 * 1024 * 1024;
/** More indexes than this are merged into one even when no pack goes. */
const MAX_INDEXES = 8;
/** A gc lease older than this is from a gc that died: the next run takes it over. */
const LEASE_MS = 60 * 60 * 1000;
const CONCURRENCY = 16;
/** Written once every Git LFS blob of a repository has its `lfs/` key (keepLegacyLfsBlobs). */
const LFS_KEYS_MARKER = 'gc/lfs-blob-keys';
/** Most bytes of a delta record's prefix: header, base count, 4 base IDs, depth. */
const DELTA_PREFIX_BYTES = HEADER_SIZE + 2 + 4 * 32 + 1;

export interface ServerGcOptions {
  /** Delete what an earlier run found unreachable before this instant (ms since the epoch). */
  readonly pruneBefore: number;
  /** Delete what this run finds unreachable, without waiting for a later run (`--prune=now`). */
  readonly immediate?: boolean | undefined;
  /** Report what would go; change nothing. */
  readonly dryRun?: boolean | undefined;
  /** The grace window recorded for servers (they re-read the pending list within a quarter of it). */
  readonly graceMs?: number | undefined;
  /** How long the sweep waits behind its fence (default FENCE_WAIT_MS; tests shorten it). */
  readonly fenceWaitMs?: number | undefined;
  readonly signal?: AbortSignal | undefined;
  readonly onProgress?:
    ((event: { phase: string; done: number; total: number }) => void) | undefined;
}

export interface ServerGcResult {
  readonly repo: string;
  readonly refs: number;
  readonly lfsObjects: number;
  /** Objects the roots reach (metadata and chunks). */
  readonly reachable: number;
  readonly deletedObjects: number;
  readonly deletedPacks: number;
  readonly deletedIndexes: number;
  readonly rewrittenPacks: number;
  /** Packs no index names (uploads never committed); they go after the grace window. */
  readonly orphanPacks: number;
  /** Live records copied out of mostly-garbage packs. */
  readonly copiedObjects: number;
  /** Unreachable loose objects and redundant packs left for a later run. */
  readonly pendingObjects: number;
  readonly pendingPacks: number;
  /** Candidates the second look at the roots found reachable again (a push landed meanwhile). */
  readonly rescued: number;
  readonly bytesBefore: number;
  readonly bytesAfter: number;
  readonly bytesReclaimed: number;
}

interface Roots {
  readonly refs: Map<string, ObjectId>;
  readonly lfs: Set<ObjectId>;
}

function gcRunning(repo: string, holder: string): MediaGitError {
  return new MediaGitError('GC_RUNNING', `gc is already running on ${repo} (${holder})`, {
    kind: 'user',
    data: { repo, holder, status: 409 },
  });
}

/** Takes the repository's gc lease; returns its release. */
async function takeLease(backend: StorageBackend, label: string): Promise<() => Promise<void>> {
  const holder = `${os.hostname()} pid ${process.pid}`;
  const body = Buffer.from(JSON.stringify({ holder, expiresAt: Date.now() + LEASE_MS }) + '\n');
  const release = async (): Promise<void> => {
    await backend.delete(LOCK_KEY).catch(() => undefined);
  };
  try {
    await backend.put(LOCK_KEY, body, { ifNoneMatch: '*' });
    return release;
  } catch (error) {
    if (!isStorageCode(error, 'STORAGE_PRECONDITION_FAILED')) throw error;
  }
  const head = await backend.head(LOCK_KEY);
  let current: { holder?: string; expiresAt?: number } = {};
  try {
    current = JSON.parse(
      Buffer.from(await backend.get(LOCK_KEY)).toString('utf8'),
    ) as typeof current;
  } catch {
    // Unreadable or gone: treated as expired.
  }
  if (typeof current.expiresAt === 'number' && current.expiresAt > Date.now()) {
    throw gcRunning(label, current.holder ?? 'unknown holder');
  }
  try {
    await backend.put(LOCK_KEY, body, head ? { ifMatch: head.etag } : { ifNoneMatch: '*' });
  } catch (error) {
    if (isStorageCode(error, 'STORAGE_PRECONDITION_FAILED')) throw gcRunning(label, 'another gc');
    throw error;
  }
  return release;
}

async function readRoots(repo: BackendRepo): Promise<Roots> {
  const refs = new Map<string, ObjectId>();
  for (const ref of await repo.listRefs()) refs.set(ref.name, ref.id);
  const lfs = new Set<ObjectId>();
  for await (const key of repo.backend.list('lfs/')) {
    if (!/^lfs\/[0-9a-f]{2}\/[0-9a-f]{62}$/.test(key)) continue;
    let text: string;
    try {
      text = Buffer.from(await repo.backend.get(key))
        .toString('utf8')
        .trim();
    } catch (error) {
      if (isStorageCode(error, 'STORAGE_NOT_FOUND')) continue;
      throw error;
    }
    if (isObjectId(text)) lfs.add(text);
    else if (text === 'blob') lfs.add(`${key.slice(4, 6)}${key.slice(7)}`);
  }
  return { refs, lfs };
}

/**
 * Adds to `live` everything `roots` reach that is not reachable from
 * `known` (commits already marked): commits, tags, trees, manifests,
 * blobs, chunks, and LFS manifests with their chunks.
 */
async function mark(
  repo: BackendRepo,
  tips: readonly ObjectId[],
  lfs: Iterable<ObjectId>,
  live: Set<ObjectId>,
  known: readonly ObjectId[],
  signal: AbortSignal | undefined,
): Promise<void> {
  if (tips.length > 0) {
    const collected = await collectObjects(repo, tips, { haves: known, signal });
    for (const id of collected.objects) live.add(id);
    for (const id of collected.chunks) live.add(id);
  }
  for (const id of lfs) {
    if (live.has(id)) continue;
    signal?.throwIfAborted();
    live.add(id);
    const object = await repo.read(id);
    if (object.type !== 'manifest') continue;
    for (const chunk of decodeManifest(id, object.data).chunks) live.add(chunk.id);
  }
}

/**
 * Adds the delta bases of live records that may be deltas (stored loose or
 * in packs with their own index, in a repository on a local disk).
 */
async function markDeltaBases(
  repo: BackendRepo,
  live: Set<ObjectId>,
  loose: Set<ObjectId>,
): Promise<void> {
  if (repo.backend.capabilities.remote) return;
  let frontier = [...live].filter((id) => {
    const where = repo.catalog.peek(id);
    return where === undefined ? loose.has(id) : repo.catalog.isOwnIndexed(where.pack);
  });
  while (frontier.length > 0) {
    const next: ObjectId[] = [];
    for (const id of frontier) {
      const where = repo.catalog.peek(id);
      let prefix: Buffer;
      try {
        prefix = where
          ? await repo.catalog.readRange(
              where.pack,
              where.offset,
              Math.min(where.length, DELTA_PREFIX_BYTES),
            )
          : Buffer.from(await repo.backend.getRange(objectKey(id), 0, DELTA_PREFIX_BYTES));
      } catch (error) {
        if (isStorageCode(error, 'STORAGE_NOT_FOUND')) continue;
        throw error;
      }
      if (prefix.length < HEADER_SIZE || decodeHeader(id, prefix).codec !== Codec.delta) continue;
      for (const base of parseDeltaPayload(id, prefix.subarray(HEADER_SIZE)).bases) {
        if (!live.has(base)) {
          live.add(base);
          next.push(base);
        }
      }
    }
    frontier = next;
  }
}

async function listLoose(backend: StorageBackend): Promise<Set<ObjectId>> {
  const loose = new Set<ObjectId>();
  for await (const key of backend.list('objects/')) {
    const match = /^objects\/([0-9a-f]{2})\/([0-9a-f]{62})$/.exec(key);
    if (match) loose.add(`${match[1]}${match[2]}`);
  }
  return loose;
}

async function sizes(
  backend: StorageBackend,
  keys: readonly string[],
): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  await eachLimited(keys, CONCURRENCY, async (key) => {
    const head = await backend.head(key);
    if (head !== undefined) out.set(key, head.size);
  });
  return out;
}

/** gc of one repository (`name` labels it in messages). */
export async function serverGc(
  backend: StorageBackend,
  name: string,
  options: ServerGcOptions,
): Promise<ServerGcResult> {
  const { signal, dryRun } = options;
  const progress = options.onProgress ?? (() => {});
  const repo = new BackendRepo(backend);
  if (!(await repo.exists())) {
    throw new MediaGitError('REPO_NOT_FOUND', `no repository ${name}`, {
      kind: 'user',
      data: { repo: name },
    });
  }
  const release = dryRun ? async () => {} : await takeLease(backend, name);
  try {
    const startedAt = Date.now();
    const prior: PendingList | undefined = (await readPending(backend).catch(() => undefined))
      ?.list;

    // 1. Mark.
    progress({ phase: 'Marking', done: 0, total: 1 });
    const roots = await readRoots(repo);
    const tips = [...new Set(roots.refs.values())];
    const live = new Set<ObjectId>();
    await mark(repo, tips, roots.lfs, live, [], signal);
    progress({ phase: 'Marking', done: 1, total: 1 });

    // 2. Take stock.
    await repo.catalog.refresh();
    const indexes = repo.catalog.multiIndexes();
    const own = new Set<string>();
    for (const index of repo.catalog.ownIndexes()) for (const pack of index.packs) own.add(pack);
    const loose = await listLoose(backend);
    await markDeltaBases(repo, live, loose);
    const packEntries = new Map<string, Map<ObjectId, IndexedObject>>();
    /** Where each object is, besides loose: the packs holding it. */
    const holders = new Map<ObjectId, string[]>();
    for (const index of [...indexes, ...repo.catalog.ownIndexes()]) {
      for (const pack of index.packs) if (!packEntries.has(pack)) packEntries.set(pack, new Map());
      for (const entry of index.entries()) {
        const entries = packEntries.get(entry.pack)!;
        if (entries.has(entry.id)) continue;
        entries.set(entry.id, entry);
        const list = holders.get(entry.id);
        if (list) list.push(entry.pack);
        else holders.set(entry.id, [entry.pack]);
      }
    }
    await keepLegacyLfsBlobs(repo, live, loose, packEntries, roots.lfs, dryRun === true);
    const cloudPacks = [...packEntries.keys()].filter((pack) => !own.has(pack));
    // Packs no index names: uploads whose push never committed them.
    const orphans = new Set<string>();
    for await (const key of backend.list('objects/pack/')) {
      const pack = /^objects\/pack\/pack-([0-9a-f]{64})\.pack$/.exec(key)?.[1];
      if (pack !== undefined && !packEntries.has(pack) && !own.has(pack)) orphans.add(pack);
    }
    const packSize = new Map<string, number>();
    for (const [key, size] of await sizes(backend, [...cloudPacks, ...orphans].map(cloudPackKey))) {
      packSize.set(/pack-([0-9a-f]{64})\.pack$/.exec(key)![1]!, size);
    }
    const looseSize = await sizes(backend, [...loose].map(objectKey));
    const totalLoose = [...looseSize.values()].reduce((a, b) => a + b, 0);
    const totalPacks = [...packSize.values()].reduce((a, b) => a + b, 0);
    const bytesBefore = totalLoose + totalPacks;

    // 3. Packs mostly garbage: copy their live records into new packs.
    const liveBytes = (pack: string): number => {
      let bytes = 0;
      for (const [id, entry] of packEntries.get(pack)!) if (live.has(id)) bytes += entry.length;
      return bytes;
    };
    const keptLoose = (id: ObjectId): boolean => loose.has(id) && live.has(id);
    /** Whether every live object of `pack` has a copy outside `going`. */
    const redundant = (pack: string, going: ReadonlySet<string>): boolean => {
      for (const id of packEntries.get(pack)!.keys()) {
        if (!live.has(id) || keptLoose(id)) continue;
        if (!holders.get(id)!.some((other) => other !== pack && !going.has(other))) return false;
      }
      return true;
    };
    const retiring = new Set<string>();
    let budget = MAX_REWRITE_BYTES;
    const byLiveShare = cloudPacks
      .filter((pack) => packSize.has(pack))
      .map((pack) => ({ pack, live: liveBytes(pack), size: packSize.get(pack)! }))
      .filter((p) => p.live < p.size * REWRITE_BELOW)
      .sort((a, b) => a.live / a.size - b.live / b.size);
    for (const p of byLiveShare) {
      if (p.live > budget) continue;
      budget -= p.live;
      retiring.add(p.pack);
    }
    const toCopy = new Map<ObjectId, IndexedObject>();
    for (const pack of retiring) {
      for (const [id, entry] of packEntries.get(pack)!) {
        if (!live.has(id) || keptLoose(id) || toCopy.has(id)) continue;
        if (holders.get(id)!.some((other) => !retiring.has(other))) continue;
        toCopy.set(id, entry);
      }
    }
    let rewrittenPacks = 0;
    if (!dryRun && toCopy.size > 0) {
      const written = await copyRecords(repo, toCopy, progress, signal);
      rewrittenPacks = retiring.size;
      for (const { name: pack, entries } of written) {
        const map = new Map<ObjectId, IndexedObject>();
        for (const entry of entries) {
          map.set(entry.id, { pack, offset: entry.offset, length: entry.length });
          holders.get(entry.id)?.push(pack);
        }
        packEntries.set(pack, map);
      }
    }

    // 4. What goes now.
    const eligible = (at: number | undefined): boolean =>
      options.immediate === true || (at !== undefined && at < options.pruneBefore);
    const garbageLoose = [...loose].filter((id) => !live.has(id));
    const deleteLoose = new Set(garbageLoose.filter((id) => eligible(prior?.objects[id])));
    const deletePacks = new Set<string>();
    const redundantPacks: string[] = [];
    for (const pack of cloudPacks) {
      if (!packSize.has(pack)) continue;
      if (!redundant(pack, deletePacks)) continue;
      redundantPacks.push(pack);
      if (eligible(prior?.packs[pack])) deletePacks.add(pack);
    }
    // An orphan goes only after the grace window, even with `immediate`:
    // it may be a push's upload about to be committed.
    const deleteOrphans = new Set(
      [...orphans].filter((pack) => {
        const at = prior?.packs[pack];
        return at !== undefined && at < options.pruneBefore;
      }),
    );

    let rescued = 0;
    let deletedIndexes = 0;
    let bytesReclaimed = 0;
    const deletedPacks = new Set<string>();
    const deletedObjects = new Set<ObjectId>();
    const mergeIndexes = deletePacks.size > 0 || indexes.length > MAX_INDEXES;
    if (!dryRun && (deleteLoose.size > 0 || deletePacks.size > 0 || mergeIndexes)) {
      // 5. Sweep behind the fence.
      const fence: DeletingList = {
        version: 1,
        startedAt: Date.now(),
        objects: [...deleteLoose],
        packs: [...deletePacks, ...deleteOrphans],
      };
      const fenced = deleteLoose.size > 0 || deletePacks.size > 0 || deleteOrphans.size > 0;
      if (fenced) {
        await backend.put(DELETING_KEY, Buffer.from(JSON.stringify(fence)));
        await sleep(options.fenceWaitMs ?? FENCE_WAIT_MS, undefined, { signal });
      }
      try {
        if (fenced) {
          // The second look: whatever a push made reachable meanwhile stays,
          // and so does a pack an index committed meanwhile names: an
          // orphan, or a garbage pack a push found stored (its content
          // made a pack of the same name) and committed again, whose ref
          // update may not have landed yet.
          await repo.catalog.refresh();
          const stocked = new Set(indexes.map((index) => index.name));
          for (const index of repo.catalog.multiIndexes()) {
            if (stocked.has(index.name)) continue;
            for (const pack of index.packs) {
              if (deleteOrphans.delete(pack)) rescued++;
              if (deletePacks.delete(pack)) rescued++;
            }
          }
          const again = await readRoots(repo);
          const newTips = [...new Set(again.refs.values())].filter((id) => !live.has(id));
          const newLfs = [...again.lfs].filter((id) => !live.has(id));
          if (newTips.length > 0 || newLfs.length > 0) {
            const before = new Set(live);
            await mark(repo, newTips, newLfs, live, tips, signal);
            await markDeltaBases(repo, live, loose);
            for (const id of live) {
              if (before.has(id)) continue;
              if (deleteLoose.delete(id)) rescued++;
            }
            // Packs whose newly live objects have no other copy stay.
            for (let changed = true; changed;) {
              changed = false;
              for (const pack of deletePacks) {
                if (redundant(pack, deletePacks)) continue;
                deletePacks.delete(pack);
                rescued++;
                changed = true;
              }
            }
          }
        }
        const deadline = fence.startedAt + DELETING_MAX_AGE_MS - FENCE_WAIT_MS;
        const checkDeadline = (): void => {
          if (Date.now() > deadline) {
            throw new MediaGitError(
              'GC_TOO_SLOW',
              `gc of ${name} ran past its fence; run it again`,
              {
                kind: 'conflict',
                data: { repo: name },
              },
            );
          }
        };
        // One index for every pack that stays, then the old indexes, the packs
        // and the loose objects.
        if (deletePacks.size > 0 || indexes.length > MAX_INDEXES) {
          const keep: { name: string; entries: PackEntry[] }[] = [];
          const seen = new Set<string>();
          for (const index of indexes) {
            for (const pack of index.packs) {
              if (seen.has(pack) || deletePacks.has(pack) || !packSize.has(pack)) continue;
              seen.add(pack);
              const entries = [...packEntries.get(pack)!].map(([id, e]) => ({
                id,
                offset: e.offset,
                length: e.length,
              }));
              keep.push({ name: pack, entries });
            }
          }
          const written = new Set<string>();
          if (keep.length > 0) {
            const merged = encodeMultiIndex(keep);
            written.add(merged.name);
            try {
              await backend.put(multiIndexKey(merged.name), merged.bytes, { ifNoneMatch: '*' });
            } catch (error) {
              if (!isStorageCode(error, 'STORAGE_PRECONDITION_FAILED')) throw error;
            }
          }
          for (const index of indexes) {
            if (written.has(index.name)) continue;
            checkDeadline();
            await backend.delete(multiIndexKey(index.name));
            deletedIndexes++;
          }
        }
        const packList = [...deletePacks, ...deleteOrphans];
        let done = 0;
        const total = packList.length + deleteLoose.size;
        await eachLimited(packList, CONCURRENCY, async (pack) => {
          checkDeadline();
          await backend.delete(cloudPackKey(pack));
          deletedPacks.add(pack);
          bytesReclaimed += packSize.get(pack) ?? 0;
          progress({ phase: 'Deleting', done: ++done, total });
        });
        await eachLimited([...deleteLoose], CONCURRENCY, async (id) => {
          checkDeadline();
          await backend.delete(objectKey(id));
          deletedObjects.add(id);
          bytesReclaimed += looseSize.get(objectKey(id)) ?? 0;
          progress({ phase: 'Deleting', done: ++done, total });
        });
      } finally {
        if (fenced) await backend.delete(DELETING_KEY).catch(() => undefined);
      }
    }

    // 6. What a later run may delete.
    const pendingObjects: Record<ObjectId, number> = {};
    for (const id of garbageLoose) {
      if (!deletedObjects.has(id) && !live.has(id))
        pendingObjects[id] = prior?.objects[id] ?? startedAt;
    }
    const pendingPacks: Record<string, number> = {};
    for (const pack of redundantPacks) {
      if (!deletedPacks.has(pack) && redundant(pack, deletedPacks)) {
        pendingPacks[pack] = prior?.packs[pack] ?? startedAt;
      }
    }
    for (const pack of retiring) {
      if (!deletedPacks.has(pack) && !(pack in pendingPacks) && redundant(pack, deletedPacks)) {
        pendingPacks[pack] = startedAt;
      }
    }
    for (const pack of orphans) {
      if (!deletedPacks.has(pack)) pendingPacks[pack] = prior?.packs[pack] ?? startedAt;
    }
    if (!dryRun) {
      const list: PendingList = {
        version: 1,
        graceMs: options.graceMs ?? DEFAULT_SERVER_GRACE_MS,
        writtenAt: Date.now(),
        objects: pendingObjects,
        packs: pendingPacks,
      };
      await backend.put(PENDING_KEY, Buffer.from(JSON.stringify(list)));
    }
    const copied = dryRun ? 0 : toCopy.size;
    return {
      repo: name,
      refs: roots.refs.size,
      lfsObjects: roots.lfs.size,
      reachable: live.size,
      deletedObjects: dryRun ? deleteLoose.size : deletedObjects.size,
      deletedPacks: dryRun ? deletePacks.size : deletedPacks.size,
      deletedIndexes,
      rewrittenPacks,
      copiedObjects: copied,
      pendingObjects: Object.keys(pendingObjects).length,
      pendingPacks: Object.keys(pendingPacks).length,
      rescued,
      bytesBefore,
      bytesAfter: bytesBefore - bytesReclaimed + (dryRun ? 0 : copiedBytes(toCopy)),
      orphanPacks: orphans.size,
      bytesReclaimed,
    };
  } finally {
    await release();
  }
}

/**
 * Servers before server gc stored a small Git LFS object as a blob named by
 * its OID with no `lfs/` key. Once per repository (until LFS_KEYS_MARKER is
 * written), the unreachable records are read for their type and every blob
 * among them is kept as a Git LFS object, its key written: a blob gc cannot
 * tell from an LFS object is never deleted.
 */
async function keepLegacyLfsBlobs(
  repo: BackendRepo,
  live: Set<ObjectId>,
  loose: ReadonlySet<ObjectId>,
  packEntries: ReadonlyMap<string, ReadonlyMap<ObjectId, IndexedObject>>,
  lfs: Set<ObjectId>,
  dryRun: boolean,
): Promise<void> {
  const backend = repo.backend;
  if ((await backend.head(LFS_KEYS_MARKER)) !== undefined) return;
  const unreachable = new Map<ObjectId, IndexedObject | 'loose'>();
  for (const id of loose) if (!live.has(id)) unreachable.set(id, 'loose');
  for (const entries of packEntries.values()) {
    for (const [id, where] of entries)
      if (!live.has(id) && !unreachable.has(id)) unreachable.set(id, where);
  }
  const blobs: ObjectId[] = [];
  await eachLimited([...unreachable], CONCURRENCY, async ([id, where]) => {
    let header: Uint8Array;
    try {
      header =
        where === 'loose'
          ? await backend.getRange(objectKey(id), 0, HEADER_SIZE)
          : await repo.catalog.readRange(where.pack, where.offset, HEADER_SIZE);
    } catch (error) {
      if (isStorageCode(error, 'STORAGE_NOT_FOUND')) return;
      throw error;
    }
    if (header.length >= HEADER_SIZE && decodeHeader(id, header).type === 'blob') blobs.push(id);
  });
  for (const id of blobs) {
    live.add(id);
    lfs.add(id);
  }
  if (dryRun) return;
  await eachLimited(blobs, CONCURRENCY, async (id) => {
    await backend
      .put(`lfs/${id.slice(0, 2)}/${id.slice(2)}`, Buffer.from('blob\n'), { ifNoneMatch: '*' })
      .catch((error: unknown) => {
        if (!isStorageCode(error, 'STORAGE_PRECONDITION_FAILED')) throw error;
      });
  });
  await backend.put(LFS_KEYS_MARKER, Buffer.from(`${new Date().toISOString()}\n`));
}

function copiedBytes(copied: ReadonlyMap<ObjectId, IndexedObject>): number {
  let sum = 0;
  for (const where of copied.values()) sum += where.length;
  return sum;
}

/** Copies records into new cloud packs, stored and committed (one new index). */
async function copyRecords(
  repo: BackendRepo,
  records: ReadonlyMap<ObjectId, IndexedObject>,
  progress: (event: { phase: string; done: number; total: number }) => void,
  signal: AbortSignal | undefined,
): Promise<{ name: string; entries: PackEntry[] }[]> {
  const buffer = Buffer.allocUnsafeSlow(MAX_CLOUD_PACK_BYTES);
  const written: { name: string; entries: PackEntry[] }[] = [];
  let writer = new CloudPackWriter(buffer);
  const flush = async (): Promise<void> => {
    const pack = writer.finish();
    const entries = await repo.storePack(pack.name, pack.bytes);
    written.push({ name: pack.name, entries });
    writer = new CloudPackWriter(buffer);
  };
  // In pack order, so each old pack is read front to back.
  const ordered = [...records]
    .map(([id, where]) => ({ id, where }))
    .sort((a, b) =>
      a.where.pack === b.where.pack
        ? a.where.offset - b.where.offset
        : a.where.pack < b.where.pack
          ? -1
          : 1,
    );
  let done = 0;
  for (const { id, where } of ordered) {
    signal?.throwIfAborted();
    const record = await repo.catalog.readRange(where.pack, where.offset, where.length);
    if (!writer.fits(record.length)) await flush();
    writer.add(id, record);
    progress({ phase: 'Rewriting', done: ++done, total: ordered.length });
  }
  if (writer.count > 0) await flush();
  if (written.length > 0) await repo.commitPacks(written.map((w) => w.name));
  return written;
}
