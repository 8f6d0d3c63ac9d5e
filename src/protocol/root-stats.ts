/**
 * `stats --root`: the figures of every repository of a server root (or of
 * one), read through the storage interface, so a root on local disk, S3,
 * Azure Blob or GCS is measured alike. The figures and the engine are
 * repo/stats.ts's; this file supplies the census of a repository on a
 * backend (docs/stats.md):
 *
 * - one listing of `objects/`: every key is a file of the store;
 * - multi-pack indexes (`objects/index/`) and pack indexes
 *   (`objects/pack/*.idx`) are read whole: they give every packed record's
 *   pack, offset and length; record headers are then read with ranged GETs,
 *   neighbouring ones together;
 * - a pack's size comes from a HEAD; a loose object's from a HEAD, its
 *   header from a ranged GET of 16 bytes (loose objects are rare on a
 *   backend: pushes store cloud packs).
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { MediaGitError, hasErrnoCode } from '../errors.ts';
import { MultiIndex, multiIndexName } from '../odb/cloud-pack.ts';
import type { ObjectId } from '../odb/object-id.ts';
import { checkPackIndex, packIndexEntries } from '../odb/pack.ts';
import {
  computeStats,
  emptyStoreFiles,
  headerRecord,
  readPackHeaders,
  storeFileKind,
  type ObjectStoreCensus,
  type PackRecord,
  type RepoStats,
  type StatsInput,
} from '../repo/stats.ts';
import { isStorageCode, type StorageBackend } from '../storage/backend.ts';
import { eachLimited } from '../storage/concurrency.ts';
import { BackendRepo } from './backend-repo.ts';
import type { ServerRoot } from './server-root.ts';
import { isRepoName } from './token-store.ts';

const OBJECTS = 'objects/';
/** Requests to the store in flight at once. */
const REQUESTS = 16;

export interface RootRepoStats extends RepoStats {
  readonly name: string;
}

export interface RootStats {
  /** The root: its folder or URL. */
  readonly root: string;
  readonly repositories: readonly RootRepoStats[];
}

export interface RootStatsOptions {
  /** One repository instead of all. */
  readonly repo?: string | undefined;
  readonly signal?: AbortSignal | undefined;
  readonly onProgress?:
    | ((event: { repo: string } & Parameters<NonNullable<StatsInput['onProgress']>>[0]) => void)
    | undefined;
}

/**
 * The repositories of a root, sorted by name: every folder (or key prefix)
 * with a HEAD, named as `mediagit serve` accepts; or just `only`, which must
 * be one of them (REPO_NOT_FOUND otherwise).
 */
export async function rootRepositories(root: ServerRoot, only?: string): Promise<string[]> {
  if (only !== undefined) {
    if (!isRepoName(only) || !(await new BackendRepo(root.repo(only)).exists())) {
      throw new MediaGitError('REPO_NOT_FOUND', `no repository '${only}' in ${root.label}`, {
        kind: 'user',
        data: { repo: only, root: root.label },
      });
    }
    return [only];
  }
  await root.check();
  const names: string[] = [];
  if (root.localDir !== undefined) {
    for (const entry of await fs.readdir(root.localDir, { withFileTypes: true })) {
      if (!entry.isDirectory() || !isRepoName(entry.name)) continue;
      if (await new BackendRepo(root.repo(entry.name)).exists()) names.push(entry.name);
    }
  } else {
    // One listing of the whole root: a store has no folders to list instead.
    for await (const key of root.backend.list('')) {
      const match = /^([^/]+)\/HEAD$/.exec(key);
      if (match && isRepoName(match[1]!)) names.push(match[1]!);
    }
  }
  return names.sort();
}

/** The figures of the repositories of `root` (all, or `options.repo`). */
export async function rootStats(
  root: ServerRoot,
  options: RootStatsOptions = {},
): Promise<RootStats> {
  const repositories: RootRepoStats[] = [];
  for (const name of await rootRepositories(root, options.repo)) {
    const backend = root.repo(name);
    const repo = new BackendRepo(backend);
    const tips = (await repo.listRefs()).map((ref) => ref.id);
    const localObjects =
      root.localDir === undefined ? undefined : path.join(root.localDir, name, 'objects');
    const stats = await computeStats({
      census: backendCensus(backend, localObjects),
      tips,
      read: (id) => repo.read(id),
      signal: options.signal,
      onProgress: (event) => options.onProgress?.({ repo: name, ...event }),
    });
    repositories.push({ name, ...stats });
  }
  return { root: root.label, repositories };
}

/**
 * The census of a repository on a storage backend (see the overview).
 * `localObjects`: the same store's `objects/` folder when it is on local
 * disk, for the blocks it takes.
 */
export function backendCensus(backend: StorageBackend, localObjects?: string): ObjectStoreCensus {
  return {
    async scan(visit, signal) {
      const totals = emptyStoreFiles(
        localObjects === undefined ? null : await allocatedBytes(localObjects),
      );
      const loose: string[] = [];
      const sized: { key: string; kind: 'packs' | 'other' }[] = [];
      const multiIndexes: { key: string; name: string }[] = [];
      const packIndexes: { key: string; pack: string }[] = [];
      const packKeys = new Set<string>();
      for await (const key of backend.list(OBJECTS)) {
        const relative = key.slice(OBJECTS.length);
        const kind = storeFileKind(relative);
        if (kind === 'loose') loose.push(key);
        else if (kind === 'indexes') {
          const multi = multiIndexName(key);
          if (multi !== undefined) multiIndexes.push({ key, name: multi });
          else packIndexes.push({ key, pack: /pack-([0-9a-f]{64})\.idx$/.exec(key)![1]! });
        } else {
          if (kind === 'packs') packKeys.add(key);
          sized.push({ key, kind });
        }
      }
      signal?.throwIfAborted();
      await eachLimited(sized, REQUESTS, async ({ key, kind }) => {
        const head = await backend.head(key);
        if (head === undefined) return; // removed since listed
        totals[kind].files++;
        totals[kind].bytes += head.size;
      });
      // Each pack's records, from the first index (in name order) naming it.
      const recordsOf = new Map<string, PackRecord[]>();
      const fetchIndex = async (key: string): Promise<Uint8Array | undefined> => {
        try {
          const bytes = await backend.get(key);
          totals.indexes.files++;
          totals.indexes.bytes += bytes.length;
          return bytes;
        } catch (error) {
          if (isStorageCode(error, 'STORAGE_NOT_FOUND')) return undefined;
          throw error;
        }
      };
      for (const { key, name } of multiIndexes) {
        signal?.throwIfAborted();
        const bytes = await fetchIndex(key);
        if (!bytes) continue;
        const byPack = new Map<string, PackRecord[]>();
        for (const entry of MultiIndex.parse(bytes, name, `${backend.url}/${key}`).entries()) {
          let list = byPack.get(entry.pack);
          if (!list) byPack.set(entry.pack, (list = []));
          list.push({ id: entry.id, offset: entry.offset, length: entry.length });
        }
        for (const [pack, records] of byPack)
          if (!recordsOf.has(pack)) recordsOf.set(pack, records);
      }
      for (const { key, pack } of packIndexes) {
        signal?.throwIfAborted();
        const bytes = await fetchIndex(key);
        if (!bytes) continue;
        if (!recordsOf.has(pack)) {
          const index = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
          const { count } = checkPackIndex(index, pack, `${backend.url}/${key}`);
          recordsOf.set(pack, packIndexEntries(index, count));
        }
      }
      // Loose objects: the size and the header.
      await eachLimited(loose, REQUESTS, async (key) => {
        signal?.throwIfAborted();
        const id: ObjectId = key.slice(OBJECTS.length).replace('/', '');
        const head = await backend.head(key);
        if (head === undefined) return;
        let bytes: Uint8Array;
        try {
          bytes = await backend.getRange(key, 0, 16);
        } catch (error) {
          if (isStorageCode(error, 'STORAGE_NOT_FOUND')) return;
          throw error;
        }
        totals.loose.files++;
        totals.loose.bytes += head.size;
        visit(headerRecord(id, head.size, false, bytes));
      });
      // Packed objects; a pack its index names but the store lacks holds nothing.
      for (const [pack, records] of [...recordsOf].sort(([a], [b]) => (a < b ? -1 : 1))) {
        const key = `${OBJECTS}pack/pack-${pack}.pack`;
        if (!packKeys.has(key)) continue;
        await readPackHeaders(
          records,
          async (start, end) => backend.getRange(key, start, end),
          visit,
          signal,
        );
      }
      return totals;
    },
  };
}

/** Blocks allocated to a local folder and everything in it, as `du -B1` counts them. */
async function allocatedBytes(dir: string): Promise<number> {
  let total = 0;
  const walk = async (folder: string): Promise<void> => {
    let stat;
    try {
      stat = await fs.lstat(folder);
    } catch (error) {
      if (hasErrnoCode(error, 'ENOENT')) return;
      throw error;
    }
    total += stat.blocks * 512;
    if (!stat.isDirectory()) return;
    for (const entry of await fs.readdir(folder)) await walk(path.join(folder, entry));
  };
  await walk(dir);
  return total;
}
