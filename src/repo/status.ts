/**
 * `status`: compare HEAD, the index and the working tree.
 *
 * The stat cache decides most files without reading them; `contentReads`
 * reports how many files had to be hashed, so tests and benchmarks can check
 * that an unchanged tree costs no file reads. When hashing proved a file
 * unchanged, the refreshed stat data is saved if the index lock is free.
 */
import { createHash, hash } from 'node:crypto';
import fs from 'node:fs';
import type { ObjectId } from '../odb/object-id.ts';
import type { ObjectStore } from '../odb/object-store.ts';
import { readManifest } from '../odb/file-read.ts';
import {
  entryFromStats,
  modeFromStats,
  statMatches,
  StagingIndex,
  UNKNOWN_SHA256,
  type IndexEntry,
} from './index-file.ts';
import { Refs } from './refs.ts';
import { readMergeState, type ConflictType } from './merge-state.ts';
import type { Repository } from './repository.ts';
import { flattenCommit, readCommit } from './tree-ops.ts';
import { loadSparse } from './sparse.ts';
import { absolutePath, IgnoreRules, walkWorkTree } from './worktree.ts';

export type ChangeKind = 'added' | 'modified' | 'deleted' | 'typechange';

export interface PathChange {
  readonly path: string;
  readonly change: ChangeKind;
}

export interface StatusResult {
  readonly branch: string | undefined;
  readonly head: ObjectId | undefined;
  readonly staged: PathChange[];
  readonly unstaged: PathChange[];
  readonly untracked: string[];
  /** Paths a stopped merge left in conflict (merge-state.ts), with their types. */
  readonly unmerged: { readonly path: string; readonly type: ConflictType }[];
  readonly contentReads: number;
}

/** SHA-256 of a working file's content (a symlink's target for links), streamed. */
export async function hashWorkFile(full: string, stats: fs.Stats): Promise<ObjectId> {
  if (stats.isSymbolicLink()) {
    return createHash('sha256')
      .update(fs.readlinkSync(full, { encoding: 'buffer' }))
      .digest('hex');
  }
  // Small files in one read: a stream per file costs more than its hashing.
  if (stats.size <= SMALL_FILE_READ) return hash('sha256', fs.readFileSync(full), 'hex');
  const hasher = createHash('sha256');
  for await (const piece of fs.createReadStream(full, { highWaterMark: 4 << 20 })) {
    hasher.update(piece as Buffer);
  }
  return hasher.digest('hex');
}

const SMALL_FILE_READ = 1 << 20;

/** An index entry's content SHA-256, read from its manifest when the index does not know it. */
export async function indexedSha256(
  store: ObjectStore,
  entry: Pick<IndexEntry, 'kind' | 'id' | 'sha256'>,
): Promise<ObjectId> {
  if (entry.sha256 !== UNKNOWN_SHA256) return entry.sha256;
  return entry.kind === 'blob'
    ? await store.blobSha256(entry.id)
    : (await readManifest(store, entry.id)).sha256;
}

/**
 * Working-tree changes against the index. Files whose stat data changed are
 * hashed; those proved unchanged get fresh stat data in `refreshed`.
 */
export async function worktreeChanges(
  repo: Repository,
  index: StagingIndex,
  options: { untracked: boolean },
): Promise<{
  changes: PathChange[];
  untracked: string[];
  refreshed: IndexEntry[];
  contentReads: number;
}> {
  const workTree = repo.requireWorkTree('status');
  const rules = new IgnoreRules(workTree);
  const files = repo.context.scanWorkTree?.() ?? walkWorkTree(workTree, '', rules);
  let seenCount = 0;
  const changes: PathChange[] = [];
  const untracked: string[] = [];
  const refreshed: IndexEntry[] = [];
  let contentReads = 0;
  for (const file of files) {
    const entry = index.entries.get(file.path);
    if (!entry) {
      untracked.push(file.path);
      continue;
    }
    seenCount++;
    if (statMatches(entry, file.stats, index.fileMtimeMs)) continue;
    if (modeFromStats(file.stats) !== entry.mode) {
      const typeChanged = (entry.mode === '120000') !== file.stats.isSymbolicLink();
      changes.push({ path: file.path, change: typeChanged ? 'typechange' : 'modified' });
      continue;
    }
    if (entry.size !== file.stats.size) {
      changes.push({ path: file.path, change: 'modified' });
      continue;
    }
    contentReads++;
    const sha = await hashWorkFile(absolutePath(workTree, file.path), file.stats);
    const indexed = await indexedSha256(repo.objects, entry);
    if (sha === indexed) {
      refreshed.push(entryFromStats(entry.path, { ...entry, sha256: indexed }, file.stats));
    } else changes.push({ path: file.path, change: 'modified' });
  }
  // Every tracked path was seen in the common case; otherwise find the missing ones.
  const seen =
    seenCount === index.entries.size ? undefined : new Set(files.map((file) => file.path));
  // Outside the sparse-checkout patterns, a file not found is not checked out (sparse.ts).
  const sparse = seen ? await loadSparse(repo) : undefined;
  for (const p of seen ? index.entries.keys() : []) {
    if (seen?.has(p) || sparse?.includes(p) === false) continue;
    // Ignored but tracked files are still tracked: look at them directly.
    let stats: fs.Stats | undefined;
    try {
      stats = fs.lstatSync(absolutePath(workTree, p));
    } catch {
      stats = undefined;
    }
    if (!stats || stats.isDirectory()) changes.push({ path: p, change: 'deleted' });
    else {
      const entry = index.entries.get(p)!;
      if (!statMatches(entry, stats, index.fileMtimeMs)) {
        contentReads++;
        const sha = await hashWorkFile(absolutePath(workTree, p), stats);
        if (sha !== (await indexedSha256(repo.objects, entry))) {
          changes.push({ path: p, change: 'modified' });
        }
      }
    }
  }
  changes.sort((a, b) => (a.path < b.path ? -1 : 1));
  return {
    changes,
    untracked: options.untracked && untracked.length > 0 ? collapseUntracked(untracked, index) : [],
    refreshed,
    contentReads,
  };
}

/** Directories holding tracked files, per (shared, read-only) index instance. */
const trackedDirsByIndex = new WeakMap<StagingIndex, Set<string>>();

/** Shows a directory holding only untracked files as "dir/", as Git does. */
function collapseUntracked(paths: string[], index: StagingIndex): string[] {
  let trackedDirs = trackedDirsByIndex.get(index);
  if (!trackedDirs) {
    trackedDirs = new Set<string>();
    for (const p of index.entries.keys()) {
      for (let slash = p.indexOf('/'); slash >= 0; slash = p.indexOf('/', slash + 1)) {
        trackedDirs.add(p.slice(0, slash));
      }
    }
    trackedDirsByIndex.set(index, trackedDirs);
  }
  const out = new Set<string>();
  for (const p of paths) {
    const parts = p.split('/');
    let shown = p;
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      if (!trackedDirs.has(dir)) {
        shown = `${dir}/`;
        break;
      }
    }
    out.add(shown);
  }
  return [...out].sort();
}

export function diffIndexAgainstTree(
  index: StagingIndex,
  tree: ReadonlyMap<string, { id: ObjectId; mode: string }>,
): PathChange[] {
  const changes: PathChange[] = [];
  for (const [p, entry] of index.entries) {
    const old = tree.get(p);
    if (!old) changes.push({ path: p, change: 'added' });
    else if (old.id !== entry.id || old.mode !== entry.mode) {
      const typeChanged = (old.mode === '120000') !== (entry.mode === '120000');
      changes.push({ path: p, change: typeChanged ? 'typechange' : 'modified' });
    }
  }
  for (const p of tree.keys())
    if (!index.entries.has(p)) changes.push({ path: p, change: 'deleted' });
  return changes.sort((a, b) => (a.path < b.path ? -1 : 1));
}

export async function status(
  repo: Repository,
  options: { untracked?: boolean } = {},
): Promise<StatusResult> {
  const head = await new Refs(repo).head();
  const index = await StagingIndex.load(repo.gitDir, { shared: repo.context.shareIndex === true });
  // When the index's tree is HEAD's tree nothing is staged: skip reading HEAD's trees.
  const headTree = head.id ? (await readCommit(repo.objects, head.id)).tree : undefined;
  const staged =
    headTree !== undefined && index.treeId === headTree
      ? []
      : diffIndexAgainstTree(index, await flattenCommit(repo.objects, head.id));
  const work = await worktreeChanges(repo, index, { untracked: options.untracked !== false });
  if (work.refreshed.length > 0) await refreshIndex(repo, work.refreshed);
  // A conflicted path is listed as unmerged only, as Git does.
  const unmerged = ((await readMergeState(repo))?.conflicts ?? []).map((c) => ({
    path: c.path,
    type: c.type,
  }));
  const conflicted = new Set(unmerged.map((c) => c.path));
  return {
    branch: head.branch?.replace(/^refs\/heads\//, ''),
    head: head.id,
    staged: staged.filter((c) => !conflicted.has(c.path)),
    unstaged: work.changes.filter((c) => !conflicted.has(c.path)),
    untracked: work.untracked.filter((p) => !conflicted.has(p)),
    unmerged,
    contentReads: work.contentReads,
  };
}

/** Saves fresher stat data when nobody else holds the index; never blocks or fails status. */
async function refreshIndex(repo: Repository, refreshed: IndexEntry[]): Promise<void> {
  let lock;
  try {
    lock = await StagingIndex.lock(repo.gitDir);
  } catch {
    return;
  }
  try {
    const index = await StagingIndex.load(repo.gitDir);
    for (const entry of refreshed) {
      const current = index.entries.get(entry.path);
      if (current && current.id === entry.id) index.entries.set(entry.path, entry);
    }
    await index.save(lock);
  } catch {
    // A refresh is an optimisation only.
  } finally {
    await lock.release();
  }
}
