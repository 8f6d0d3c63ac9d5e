/**
 * `gc`: make a local repository hold what its history needs and little else
 * (docs/gc.md), as `git gc` does:
 *
 * 1. expire old reflog entries (reflog-expire.ts; Git's 90 / 30 days);
 * 2. remove temp files and locks of processes that are gone;
 * 3. mark every object reachable from the roots (reachable.ts);
 * 4. pack: the reachable loose objects smaller than 256 KiB (all of them
 *    with `aggressive`) and the reachable objects of packs worth rewriting
 *    (packs with a tenth or more garbage, small packs once there are eight,
 *    all packs with `aggressive`) go into one new pack, written and
 *    verified before anything is deleted (odb/pack-write.ts); with
 *    `aggressive`, their blobs and chunks are first weighed for delta
 *    encoding again (gc-deltas.ts);
 * 5. under gc.lock, once no other process is writing objects (gc-guard.ts),
 *    mark again from the roots as they are now, then delete: loose copies the
 *    new pack holds, unreachable loose objects older than the prune date, and
 *    rewritten or all-garbage packs whose reachable objects are all stored
 *    elsewhere (index first, then the pack).
 *
 * The prune date (`--prune`, default two weeks ago, `gc.pruneExpire`) is never
 * later than the instant marking began, so an object written since is kept
 * even with `--prune=now`; a pack's objects count as old as the pack file.
 * A reachable object that is missing or corrupt stops gc before it deletes
 * anything: the walk cannot know what the lost object would have kept.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { MediaGitError, hasErrnoCode } from '../errors.ts';
import { acquireGcLock, waitForWriters } from '../odb/gc-guard.ts';
import type { ObjectId } from '../odb/object-id.ts';
import type { Pack } from '../odb/pack.ts';
import { packObjects, surveyObjects } from '../odb/pack-write.ts';
import { removeStaleLock, removeStaleTemps } from '../storage/leftovers.ts';
import { eachLimited } from '../storage/concurrency.ts';
import { markBasesOfEveryCopy } from './gc-copies.ts';
import { recomputeDeltas, type DeltaStats } from './gc-deltas.ts';
import { collectRoots, Marker } from './reachable.ts';
import { reflogExpire } from './reflog-expire.ts';
import { packOrder, removeEmptyFanouts, removeOrphanPacks } from './repack.ts';
import type { Repository } from './repository.ts';

export const DEFAULT_PRUNE_MS = 14 * 24 * 60 * 60 * 1000;
/** Packs smaller than this are merged into the new pack once there are SMALL_PACKS_TO_MERGE. */
const SMALL_PACK_BYTES = 32 * 1024 * 1024;
const SMALL_PACKS_TO_MERGE = 8;
/** Loose objects this large stay loose (unless aggressive): see `gc`. */
const LARGE_LOOSE_BYTES = 256 * 1024;
/** A pack with at least this fraction of unreachable bytes is rewritten. */
const GARBAGE_FRACTION = 0.1;
const PARALLEL = 16;
const PARALLEL_REMOVALS = 4;

export interface GcOptions {
  /** Unreachable objects older than this instant (ms) go; -Infinity prunes nothing. */
  readonly pruneBefore: number;
  /** Reflog expiry instants (ms), or undefined to leave reflogs alone. */
  readonly reflog?: { expire: number; expireUnreachable: number } | undefined;
  /** Rewrite every pack into one. */
  readonly aggressive?: boolean | undefined;
  /** Report what would be removed; change nothing. */
  readonly dryRun?: boolean | undefined;
  /** How long to wait for other processes writing objects before giving up on deleting. */
  readonly writerTimeoutMs?: number | undefined;
  readonly signal?: AbortSignal | undefined;
  readonly onProgress?:
    ((event: { phase: string; bytes: number; total: number }) => void) | undefined;
}

export interface GcResult {
  readonly reachable: number;
  readonly reflogEntriesExpired: number;
  /** Unreachable objects removed (or that would be, with dryRun). */
  readonly prunedObjects: number;
  readonly looseRemoved: number;
  readonly packsRemoved: number;
  /** The new pack (`pack-<name>.pack`), if one was written. */
  readonly pack: string | undefined;
  readonly packedObjects: number;
  /** Stored bytes (loose objects and packs) before and after. */
  readonly bytesBefore: number;
  readonly bytesAfter: number;
  /** What `aggressive` did with deltas (gc-deltas.ts); undefined without it. */
  readonly deltas: DeltaStats | undefined;
  readonly tempsRemoved: number;
  readonly locksRemoved: number;
  /** Why nothing was deleted, when gc had to hold back. */
  readonly skipped: string | undefined;
}

interface LooseObject {
  readonly id: ObjectId;
  readonly size: number;
  readonly mtimeMs: number;
}

interface PackPlan {
  readonly pack: Pack;
  readonly mtimeMs: number;
  readonly bytes: number;
  readonly action: 'keep' | 'rewrite' | 'drop';
}

export async function gc(repo: Repository, options: GcOptions): Promise<GcResult> {
  if (repo.bare) {
    throw new MediaGitError(
      'NOT_IMPLEMENTED',
      'gc of a bare repository is not implemented yet (its objects are kept one per key, as a server root)',
      { kind: 'usage' },
    );
  }
  const store = repo.objects;
  const dryRun = options.dryRun === true;
  const reflogExpired = options.reflog
    ? (await reflogExpire(repo, { ...options.reflog, dryRun, signal: options.signal })).removed
    : 0;
  const tempsRemoved = dryRun ? 0 : removeStaleTemps(store.tmpDir, { minAgeMs: 0 });
  const locksRemoved = dryRun ? 0 : await removeDeadLocks(repo.gitDir);

  const markStart = Date.now();
  const cutoff = Math.min(options.pruneBefore, markStart);
  const marker = new Marker(store, options.signal);
  options.onProgress?.({ phase: 'Marking', bytes: 0, total: 0 });
  await marker.mark(await collectRoots(repo));
  failOnProblems(marker);

  const loose = await listLoose(store.objectsDir);
  const looseIds = new Set(loose.map((o) => o.id));
  await markBasesOfEveryCopy(store, marker, looseIds);
  failOnProblems(marker);
  const plans = await planPacks(await store.packs.all(), marker.marked, cutoff, options.aggressive);
  const bytesBefore = sum(loose.map((o) => o.size)) + sum(plans.map((p) => p.bytes));
  const inKeptPack = (id: ObjectId): boolean =>
    plans.some((p) => p.action === 'keep' && p.pack.indexOf(Buffer.from(id, 'hex')) >= 0);

  // What goes into the new pack: reachable objects not already in a kept pack.
  const toPack = new Set<ObjectId>();
  // Large loose objects (chunks) are already one file per megabyte or more:
  // copying them into a pack would cost a rewrite of the repository's bulk
  // for few files saved, so only --aggressive packs them.
  for (const object of loose) {
    if (!marker.marked.has(object.id) || inKeptPack(object.id)) continue;
    if (options.aggressive || object.size < LARGE_LOOSE_BYTES) toPack.add(object.id);
  }
  for (const plan of plans) {
    if (plan.action !== 'rewrite') continue;
    for (const id of plan.pack.ids()) {
      // A recent pack's unreachable objects are not pruned yet: they move along.
      const keepGarbage = plan.mtimeMs >= cutoff;
      if ((marker.marked.has(id) || keepGarbage) && !inKeptPack(id)) toPack.add(id);
    }
  }
  const prunable = loose.filter((o) => !marker.marked.has(o.id) && o.mtimeMs < cutoff);
  if (dryRun) {
    const dropped = plans.filter((p) => p.action !== 'keep');
    let prunedObjects = prunable.length;
    for (const plan of dropped)
      for (const id of plan.pack.ids()) if (!marker.marked.has(id)) prunedObjects++;
    return {
      reachable: marker.marked.size,
      reflogEntriesExpired: reflogExpired,
      prunedObjects,
      looseRemoved: prunable.length + loose.filter((o) => toPack.has(o.id)).length,
      packsRemoved: dropped.length,
      pack: undefined,
      packedObjects: toPack.size,
      bytesBefore,
      bytesAfter: bytesBefore,
      deltas: undefined,
      tempsRemoved,
      locksRemoved,
      skipped: undefined,
    };
  }

  // Re-encoded records are renamed over (or beside) the loose copies, so
  // packing below copies them; loose files it created go once packed.
  // No deltas in an encrypted repository (docs/encryption.md): a delta's
  // similarity search reads content that sealing keeps from the store.
  const deltaPass =
    options.aggressive && toPack.size > 0 && !repo.encrypted
      ? await recomputeDeltas(repo, {
          toPack,
          marked: marker.marked,
          loose,
          cutoff,
          signal: options.signal,
          onProgress: (event) => options.onProgress?.({ phase: 'Deltas', ...event }),
        })
      : undefined;
  for (const created of deltaPass?.createdLoose ?? []) {
    loose.push(created);
    looseIds.add(created.id);
  }
  let written: Awaited<ReturnType<typeof packObjects>> | undefined;
  if (toPack.size > 0) {
    const sorted = [...toPack].sort();
    const survey = await surveyObjects(store, sorted, options.signal);
    let totalBytes = 0;
    for (const { storedSize } of survey.values()) totalBytes += storedSize;
    written = await packObjects(store, await packOrder(repo, sorted, survey), {
      signal: options.signal,
      totalBytes,
      survey,
      soleCopies: options.aggressive ? undefined : soleCopies(sorted, looseIds, plans),
      onProgress: (event) => options.onProgress?.({ phase: 'Packing', ...event }),
    });
  }
  const inNewPack = (id: ObjectId): boolean =>
    written !== undefined && written.pack.indexOf(Buffer.from(id, 'hex')) >= 0;

  const lock = await acquireGcLock(store.objectsDir);
  let prunedObjects = 0;
  let looseRemoved = 0;
  let packsRemoved = 0;
  let skipped: string | undefined;
  try {
    if (
      !(await waitForWriters(
        store.objectsDir,
        options.writerTimeoutMs ?? 10 * 60_000,
        options.signal,
      ))
    ) {
      skipped = 'other processes kept writing objects; nothing was deleted';
    } else {
      // Everything another command wrote before gc took the lock is named by
      // the roots now: mark from them again (only new objects are visited).
      const markedBefore = marker.marked.size;
      await marker.mark(await collectRoots(repo));
      await markBasesOfEveryCopy(store, marker, looseIds);
      failOnProblems(marker);
      await deltaPass?.settle(markedSince(marker.marked, markedBefore));
      const stillNeeded = (id: ObjectId): boolean => marker.marked.has(id) && !inNewPack(id);
      await eachLimited(loose, PARALLEL, async (object) => {
        const pruned = !marker.marked.has(object.id) && object.mtimeMs < cutoff;
        if (!pruned && !inNewPack(object.id)) return;
        if (await unlinkIfPresent(store.pathOf(object.id))) {
          looseRemoved++;
          if (pruned) prunedObjects++;
        }
      });
      // Packs go in parallel: freeing a large file's extents is most of the
      // time of gc after a branch is deleted (~90 ms per 300 MB pack here, the
      // disk discarding them), and the device overlaps several.
      const doomed = plans.filter((p) => p.action !== 'keep' && p.pack.name !== written?.name);
      await eachLimited(doomed, PARALLEL_REMOVALS, async (plan) => {
        const ids = [...plan.pack.ids()];
        // A pack goes only when each object it holds that is needed lives on
        // elsewhere (in the new pack, a kept pack, or loose).
        let safe = true;
        for (const id of ids) {
          if (!stillNeeded(id) || inKeptPack(id)) continue;
          if (!(await exists(store.pathOf(id)))) {
            safe = false;
            break;
          }
        }
        if (!safe) return;
        if (plan.mtimeMs < cutoff) {
          for (const id of ids) if (!marker.marked.has(id) && !inNewPack(id)) prunedObjects++;
        }
        await fs.rm(plan.pack.indexPath, { force: true });
        await fs.rm(plan.pack.packPath, { force: true });
        packsRemoved++;
      });
      await removeEmptyFanouts(store.objectsDir);
      await removeOrphanPacks(store.packs.dir);
    }
  } finally {
    await lock.release();
  }
  const bytesAfter = await storedBytes(repo);
  return {
    reachable: marker.marked.size,
    reflogEntriesExpired: reflogExpired,
    prunedObjects,
    looseRemoved,
    packsRemoved,
    pack: written?.name,
    packedObjects: written?.objects ?? 0,
    bytesBefore,
    bytesAfter,
    deltas: deltaPass?.stats,
    tempsRemoved,
    locksRemoved,
    skipped,
  };
}

/** The IDs added to `marked` after its first `count` (a Set keeps insertion order). */
function* markedSince(marked: ReadonlySet<ObjectId>, count: number): Generator<ObjectId> {
  let i = 0;
  for (const id of marked) if (i++ >= count) yield id;
}

/** What gc will do with each pack (see the overview). */
async function planPacks(
  packs: readonly Pack[],
  marked: ReadonlySet<ObjectId>,
  cutoff: number,
  aggressive: boolean | undefined,
): Promise<PackPlan[]> {
  const plans: PackPlan[] = [];
  for (const pack of packs) {
    const stats = await fs.stat(pack.packPath);
    const bytes = stats.size + (await fs.stat(pack.indexPath)).size;
    let live = 0;
    let garbage = 0;
    for (let i = 0; i < pack.count; i++) {
      const entry = pack.entryAt(i);
      if (marked.has(entry.id)) live += entry.length;
      else garbage += entry.length;
    }
    const old = stats.mtimeMs < cutoff;
    let action: PackPlan['action'] = 'keep';
    if (old && live === 0) action = 'drop';
    else if (aggressive) action = 'rewrite';
    else if (old && garbage >= GARBAGE_FRACTION * (live + garbage)) action = 'rewrite';
    plans.push({ pack, mtimeMs: stats.mtimeMs, bytes, action });
  }
  // Small packs accumulate (one per gc, one per add of a large file that
  // compresses well): once there are many, they are merged into the new
  // pack. A few are left alone, since copying them verifies (decodes)
  // every record they hold, however small the pack file.
  const small = plans.filter((p) => p.action === 'keep' && p.pack.packSize < SMALL_PACK_BYTES);
  if (small.length >= SMALL_PACKS_TO_MERGE) {
    for (const plan of small) plans[plans.indexOf(plan)] = { ...plan, action: 'rewrite' };
  }
  return plans;
}

/**
 * The loose objects among `ids` that no pack holds: packing copies their only
 * record, so a delta among them need not be rebuilt to be copied safely
 * (packObjects' `soleCopies`). A copy elsewhere could be the good one, and
 * `--aggressive` wrote some of these records itself: both are verified in full.
 */
function soleCopies(
  ids: readonly ObjectId[],
  looseIds: ReadonlySet<ObjectId>,
  plans: readonly PackPlan[],
): Set<ObjectId> {
  const out = new Set<ObjectId>();
  for (const id of ids) {
    if (!looseIds.has(id)) continue;
    const key = Buffer.from(id, 'hex');
    if (plans.every((p) => p.pack.indexOf(key) < 0)) out.add(id);
  }
  return out;
}

function failOnProblems(marker: Marker): void {
  if (marker.problems.length === 0) return;
  const first = marker.problems.slice(0, 3).map((p) => p.reason);
  throw new MediaGitError(
    'GC_UNREADABLE',
    `gc stopped before deleting anything: ${marker.problems.length} reachable object(s) cannot be read (${first.join('; ')}); run \`mediagit fsck\``,
    { kind: 'corrupt', data: { problems: marker.problems.slice(0, 100) } },
  );
}

/** Removes lock files of dead processes (index.lock, HEAD.lock, refs/**.lock). */
async function removeDeadLocks(gitDir: string): Promise<number> {
  let removed = 0;
  const visit = async (dir: string, deep: boolean): Promise<void> => {
    let entries;
    try {
      entries = await fs.readdir(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const entry of entries) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory() && deep) await visit(full, true);
      else if (entry.isFile() && entry.name.endsWith('.lock') && removeStaleLock(full)) removed++;
    }
  };
  await visit(gitDir, false);
  await visit(path.join(gitDir, 'refs'), true);
  return removed;
}

async function listLoose(objectsDir: string): Promise<LooseObject[]> {
  const out: LooseObject[] = [];
  let fanouts: string[];
  try {
    fanouts = await fs.readdir(objectsDir);
  } catch {
    return out;
  }
  for (const fanout of fanouts) {
    if (!/^[0-9a-f]{2}$/.test(fanout)) continue;
    let names: string[];
    try {
      names = await fs.readdir(path.join(objectsDir, fanout));
    } catch {
      continue;
    }
    await eachLimited(names, PARALLEL, async (name) => {
      if (!/^[0-9a-f]{62}$/.test(name)) return;
      const stats = await fs.stat(path.join(objectsDir, fanout, name)).catch(() => undefined);
      if (stats) out.push({ id: fanout + name, size: stats.size, mtimeMs: stats.mtimeMs });
    });
  }
  return out;
}

/** Bytes of every loose object and pack file (with indexes) of the repository. */
export async function storedBytes(repo: Repository): Promise<number> {
  const loose = await listLoose(repo.objects.objectsDir);
  let total = sum(loose.map((o) => o.size));
  for (const dir of [repo.objects.packs.dir, path.join(repo.objects.objectsDir, 'index')]) {
    let names: string[] = [];
    try {
      names = await fs.readdir(dir);
    } catch (error) {
      if (!hasErrnoCode(error, 'ENOENT')) throw error;
    }
    for (const name of names) {
      if (!/\.(pack|idx)$/.test(name)) continue;
      total += (await fs.stat(path.join(dir, name)).catch(() => ({ size: 0 }))).size;
    }
  }
  return total;
}

async function unlinkIfPresent(file: string): Promise<boolean> {
  try {
    await fs.unlink(file);
    return true;
  } catch (error) {
    if (hasErrnoCode(error, 'ENOENT')) return false;
    throw error;
  }
}

async function exists(file: string): Promise<boolean> {
  try {
    await fs.access(file);
    return true;
  } catch {
    return false;
  }
}

function sum(values: readonly number[]): number {
  let total = 0;
  for (const value of values) total += value;
  return total;
}
