/**
 * `repack`: gather loose objects into a pack file, as `git repack` does, so a
 * repository of 100k objects is a few files instead of 100k.
 *
 * `repack` packs the loose objects into one new pack; with `all` (`-a`) the
 * objects of the existing packs join them, so the repository ends up with one
 * pack. `deleteRedundant` (`-d`) then deletes what the new pack makes
 * redundant: the loose objects it holds and, with `all`, the packs it replaces.
 *
 * Crash and concurrency safety: nothing is deleted until the new pack and its
 * index are durable and have been read back and verified (odb/pack-write.ts),
 * and only objects that verified pack holds are deleted. Objects written by
 * another command meanwhile are not in the pack and stay; an object another
 * repack moved meanwhile is read from wherever it now is.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { MediaGitError, hasErrnoCode } from '../errors.ts';
import { readManifest } from '../odb/file-read.ts';
import type { ObjectId } from '../odb/object-id.ts';
import type { ObjectTypeName } from '../odb/object-store.ts';
import { packFileName, packIndexFileName, type Pack } from '../odb/pack.ts';
import { packObjects, surveyObjects, type SurveyedObject } from '../odb/pack-write.ts';
import type { Repository } from './repository.ts';
import { removeStaleTemps } from '../storage/leftovers.ts';
import { eachLimited } from '../storage/concurrency.ts';

export interface RepackOptions {
  /** Also merge every existing pack into the new one (`-a`). */
  readonly all?: boolean;
  /** Delete the loose objects now packed and, with `all`, the packs merged (`-d`). */
  readonly deleteRedundant?: boolean;
  readonly signal?: AbortSignal | undefined;
  /** Stored bytes copied into the new pack so far, of `total`. */
  readonly onProgress?: ((event: { bytes: number; total: number }) => void) | undefined;
}

export interface RepackResult {
  /** The new pack's name (`pack-<name>.pack`), or undefined when there was nothing to pack. */
  readonly pack: string | undefined;
  readonly objects: number;
  /** Size of the new pack file and its index. */
  readonly bytes: number;
  readonly looseRemoved: number;
  readonly packsRemoved: number;
}

/** A pack file without an index this old is debris of a killed repack, not one in progress. */
const ORPHAN_PACK_AGE_MS = 60 * 60 * 1000;
const PARALLEL = 16;

/** Where each kind of object goes in a pack: what history walks read first comes first. */
const TYPE_RANK: Record<ObjectTypeName, number> = {
  commit: 0,
  tag: 1,
  tree: 2,
  manifest: 3,
  blob: 4,
  chunk: 5,
};

export async function repack(repo: Repository, options: RepackOptions = {}): Promise<RepackResult> {
  if (repo.bare) {
    // A bare repository is what `mediagit serve` and local-path remotes read
    // through the storage interface, one key per object (docs/design.md).
    throw new MediaGitError(
      'BARE_REPO',
      'repack cannot be used in a bare repository: served repositories keep one object per key',
      { kind: 'usage' },
    );
  }
  const store = repo.objects;
  const loose: ObjectId[] = [];
  for await (const id of store.listLoose()) loose.push(id);
  const merged: Pack[] = options.all ? await store.packs.all() : [];
  const nothing = { pack: undefined, objects: 0, bytes: 0, looseRemoved: 0, packsRemoved: 0 };
  if (loose.length === 0 && merged.length <= 1) {
    if (options.deleteRedundant) {
      await removeOrphanPacks(store.packs.dir);
      removeDeadTemps(store.tmpDir);
    }
    return nothing;
  }

  const ids = new Set<ObjectId>(loose);
  for (const pack of merged) for (const id of pack.ids()) ids.add(id);
  const sorted = [...ids].sort();
  const survey = await surveyObjects(store, sorted, options.signal);
  let totalBytes = 0;
  for (const { storedSize } of survey.values()) totalBytes += storedSize;
  const written = await packObjects(store, await packOrder(repo, sorted, survey), {
    signal: options.signal,
    onProgress: options.onProgress,
    totalBytes,
    survey,
  });
  const result = { pack: written.name, objects: written.objects, bytes: written.bytes };
  if (!options.deleteRedundant) return { ...result, looseRemoved: 0, packsRemoved: 0 };

  // Only what the pack just written and verified holds may go.
  const holds = (id: ObjectId): boolean => written.pack.indexOf(Buffer.from(id, 'hex')) >= 0;
  let looseRemoved = 0;
  await eachLimited(
    loose.filter((id) => holds(id)),
    PARALLEL,
    async (id) => {
      options.signal?.throwIfAborted();
      try {
        await fs.unlink(store.pathOf(id));
        looseRemoved++;
      } catch (error) {
        if (!hasErrnoCode(error, 'ENOENT')) throw error;
      }
    },
  );
  await removeEmptyFanouts(store.objectsDir);
  let packsRemoved = 0;
  for (const pack of merged) {
    if (pack.name === written.name) continue;
    if (![...pack.ids()].every(holds)) continue;
    // Index first: a pack without its index is ignored by readers.
    await fs.rm(pack.indexPath, { force: true });
    await fs.rm(pack.packPath, { force: true });
    packsRemoved++;
  }
  await removeOrphanPacks(store.packs.dir);
  removeDeadTemps(store.tmpDir);
  return { ...result, looseRemoved, packsRemoved };
}

/**
 * The order objects go into the pack: commits, tags, trees and manifests
 * first (what log, status and diff read), then each manifest's chunks in file
 * order (so a checkout reads the pack front to back), then the rest by ID.
 */
export async function packOrder(
  repo: Repository,
  ids: readonly ObjectId[],
  survey: ReadonlyMap<ObjectId, SurveyedObject>,
): Promise<ObjectId[]> {
  const rank = (id: ObjectId): number => TYPE_RANK[survey.get(id)!.type];
  const order = ids.filter((id) => rank(id) <= TYPE_RANK.manifest);
  order.sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : 1));
  const placed = new Set<ObjectId>(order);
  for (const id of order) {
    if (survey.get(id)!.type !== 'manifest') continue;
    for (const chunk of (await readManifest(repo.objects, id)).chunks) {
      if (survey.has(chunk.id) && !placed.has(chunk.id)) {
        placed.add(chunk.id);
        order.push(chunk.id);
      }
    }
  }
  for (const id of ids) if (!placed.has(id)) order.push(id);
  return order;
}

/**
 * Removes emptied `objects/xx/` folders, including those a killed repack
 * emptied. A writer that loses the race recreates its folder (writeFileAtomic);
 * a folder that is not empty is left alone by rmdir itself.
 */
export async function removeEmptyFanouts(objectsDir: string): Promise<void> {
  const names = await fs.readdir(objectsDir).catch(() => [] as string[]);
  const fanouts = names.filter((name) => /^[0-9a-f]{2}$/.test(name));
  await eachLimited(fanouts, PARALLEL, async (name) => {
    await fs.rmdir(path.join(objectsDir, name)).catch(() => undefined);
  });
}

/** The entries of `dir`, none when it does not exist. */
async function namesIn(dir: string): Promise<string[]> {
  try {
    return await fs.readdir(dir);
  } catch (error) {
    if (hasErrnoCode(error, 'ENOENT')) return [];
    throw error;
  }
}

/** Removes pack files left without an index by a killed repack, once they are old. */
export async function removeOrphanPacks(dir: string): Promise<void> {
  const names = await namesIn(dir);
  const present = new Set(names);
  for (const file of names) {
    const match = /^pack-([0-9a-f]{64})\.pack$/.exec(file);
    if (!match || present.has(packIndexFileName(match[1]!))) continue;
    const full = path.join(dir, packFileName(match[1]!));
    const stats = await fs.stat(full).catch(() => undefined);
    if (stats && Date.now() - stats.mtimeMs > ORPHAN_PACK_AGE_MS) {
      await fs.rm(full, { force: true });
    }
  }
}

/**
 * Deletes temp files and folders left by commands that died (a killed add can
 * leave a whole ingest pack there, a killed checkout its staging folder):
 * each temp name carries its writer's PID (storage/durable-file.ts
 * `tempName`), and one whose process is gone is debris. A live process's
 * files are never touched, however old.
 */
function removeDeadTemps(dir: string): void {
  removeStaleTemps(dir, { minAgeMs: 0 });
}
