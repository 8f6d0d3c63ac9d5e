/**
 * Moving the working tree and the index from one tree to another: the shared
 * core of `switch`, `checkout`, `reset --hard` and `restore`.
 *
 * An update is planned first and applied second.
 *
 * Planning decides, path by path, what to write, what to remove and what to
 * keep. In "merge" mode it follows Git's two-way merge (unpack-trees
 * `twoway_merge`): a path the two trees agree on keeps its index entry and
 * working file, local changes included; a path they disagree on is updated
 * only when its index entry and working file still match the current tree (or
 * already match the target), and an untracked file is never overwritten. What
 * would be lost is reported, all at once, as WOULD_OVERWRITE and nothing is
 * touched. In "force" mode the index and working files simply become the
 * target (untracked files in the way are replaced, as with `checkout -f`).
 *
 * Applying guarantees:
 * - Nothing is written or removed outside the work tree: every path passes
 *   `assertSafeRepoPath`, and no file is written, renamed or unlinked through
 *   a parent that is not a real directory (a symlinked parent is never
 *   followed; it is treated as a file in the way).
 * - Every new file is first materialized, with each chunk verified, into a
 *   staging folder under `.mediagit/tmp`; only when all of them are complete
 *   do working files change (removals, then renames into place). So a missing
 *   or corrupt object fails the command naming the object and leaves the
 *   working tree and the index untouched. The cost is that a replaced file's
 *   old and new bytes both occupy disk until its rename.
 * - Folders emptied by removals are removed, as Git does.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import { lstatSync, renameSync, writeFileSync, type Stats } from 'node:fs';
import path from 'node:path';
import { MediaGitError, hasErrnoCode } from '../errors.ts';
import { materializeFile, readFileBytes, readManifest } from '../odb/file-read.ts';
import { ensureFileContent } from './partial-clone.ts';
import type { ObjectId } from '../odb/object-id.ts';
import type { ObjectStore } from '../odb/object-store.ts';
import {
  entryFromStats,
  modeFromStats,
  statMatches,
  StagingIndex,
  UNKNOWN_SHA256,
  type IndexEntry,
} from './index-file.ts';
import type { Repository } from './repository.ts';
import { diffIndexAgainstTree, hashWorkFile, worktreeChanges } from './status.ts';
import type { TreeFile } from './tree-ops.ts';
import { absolutePath, assertSafeRepoPath, IgnoreRules } from './worktree.ts';
import { trackPath, trackTempDir } from '../storage/leftovers.ts';
import { eachLimited } from '../storage/concurrency.ts';
import { loadSparse, type SparseMatcher } from './sparse.ts';
import { lockableMatcher, lockablePatterns, makeReadOnly } from './lockable.ts';

/** A file version as a tree or the index records it: enough to compare and to write it. */
export type FileVersion = Pick<TreeFile, 'path' | 'mode' | 'kind' | 'id' | 'size'>;

/**
 * Bytes written so far, and the share of all the work done: each file also
 * costs FILE_WORK once staged and once placed, so a checkout of many small
 * files moves steadily to the end instead of waiting at 99% while they are
 * renamed into place.
 */
export interface WorkTreeProgress {
  readonly path: string;
  readonly bytes: number;
  readonly total: number;
  readonly work: number;
  readonly totalWork: number;
}

/**
 * What staging or placing one file costs, in bytes' worth of work. Measured
 * here: ~0.25 ms per small file for each step, the time ~64 KiB takes to
 * materialize from the store.
 */
const FILE_WORK = 64 * 1024;

/** How many files are renamed into place at once (independent paths; libuv runs four). */
const PLACE_PARALLEL = 8;
/** Object lookups in flight at once for the entries of files a sparse checkout skips. */
const SKIPPED_LOOKUPS = 16;

/** Files up to this size are staged with a synchronous write. */
const SMALL_FILE = 256 * 1024;

export interface WorkTreeUpdateOptions {
  /** Replace local changes and untracked files in the way instead of refusing. */
  readonly force?: boolean | undefined;
  /**
   * Files already written from verified chunks (a clone writes them while it
   * downloads), by manifest ID: moved into place instead of written again.
   * Each must be complete and in the repository's tmp folder.
   */
  readonly prestaged?: ReadonlyMap<ObjectId, string> | undefined;
  /**
   * The whole-content SHA-256 of files by manifest ID where the caller
   * already knows it (a clone has just decoded every manifest), so the index
   * entries do not read each manifest back; undefined for any it does not know.
   */
  readonly knownSha256?: ((manifest: ObjectId) => ObjectId | undefined) | undefined;
  readonly signal?: AbortSignal | undefined;
  readonly onProgress?: ((event: WorkTreeProgress) => void) | undefined;
}

export interface WorkTreeUpdateResult {
  readonly written: string[];
  readonly removed: string[];
}

/** What an update will do; built by planning, carried out by `applyWorkTreePlan`. */
export interface WorkTreePlan {
  readonly writes: FileVersion[];
  /** Tracked paths whose working files go away. */
  readonly removes: string[];
  /** Untracked (or ignored) files and symlinks deleted to make room for a write. */
  readonly clobber: string[];
  /** Folders standing where a file goes: emptied by removes/clobber, then removed. */
  readonly clearDirs: string[];
  /** Paths whose local changes the update would lose (merge mode refuses). */
  readonly localChanges: string[];
  /** Untracked files the update would overwrite (merge mode refuses). */
  readonly untracked: string[];
  /**
   * Paths whose working file already holds the target while the index still
   * names the current version (an update to the same target interrupted after
   * placing it): only their index entries change.
   */
  readonly adopt?: FileVersion[];
  /**
   * Writes outside the sparse-checkout patterns whose file is absent: only
   * their index entries change (sparse.ts).
   */
  readonly skipped?: FileVersion[];
}

export function sameVersion(
  a: { readonly id: ObjectId; readonly mode: string } | undefined,
  b: { readonly id: ObjectId; readonly mode: string } | undefined,
): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a.id === b.id && a.mode === b.mode;
}

/** Git's refusal, listing every path at once. */
export function wouldOverwrite(localChanges: string[], untracked: string[]): MediaGitError {
  const blocks: string[] = [];
  if (localChanges.length > 0) {
    blocks.push(
      'Your local changes to the following files would be overwritten by checkout:\n' +
        localChanges.map((p) => `\t${p}\n`).join('') +
        'Please commit your changes or stash them before you switch branches.',
    );
  }
  if (untracked.length > 0) {
    blocks.push(
      'The following untracked working tree files would be overwritten by checkout:\n' +
        untracked.map((p) => `\t${p}\n`).join('') +
        'Please move or remove them before you switch branches.',
    );
  }
  return new MediaGitError('WOULD_OVERWRITE', `${blocks.join('\nerror: ')}\nAborting`, {
    kind: 'user',
    data: { localChanges, untracked },
  });
}

// ---------------------------------------------------------------------------
// Looking at the working tree without following symlinks

type ParentState = { kind: 'ok' } | { kind: 'absent' } | { kind: 'blocked'; by: string };

type PathState =
  { kind: 'absent' } | { kind: 'blocked'; by: string } | { kind: 'present'; stats: Stats };

/** Caches what each folder of the work tree is while a plan is made (nothing changes then). */
class WorkTreeProbe {
  readonly workTree: string;
  readonly #dirs = new Map<string, 'dir' | 'absent' | 'other'>();

  constructor(workTree: string) {
    this.workTree = workTree;
  }

  async #dirState(dir: string): Promise<'dir' | 'absent' | 'other'> {
    let state = this.#dirs.get(dir);
    if (state) return state;
    try {
      const stats = await fs.lstat(absolutePath(this.workTree, dir));
      state = stats.isDirectory() ? 'dir' : 'other';
    } catch (error) {
      if (!hasErrnoCode(error, 'ENOENT') && !hasErrnoCode(error, 'ENOTDIR')) throw error;
      state = 'absent';
    }
    this.#dirs.set(dir, state);
    return state;
  }

  /** Whether every folder above `p` is a real directory. */
  async parents(p: string): Promise<ParentState> {
    const parts = p.split('/');
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      const state = await this.#dirState(dir);
      if (state === 'absent') return { kind: 'absent' };
      if (state === 'other') return { kind: 'blocked', by: dir };
    }
    return { kind: 'ok' };
  }

  /**
   * `state(p)` when what is already known of the folders above `p` settles
   * it (one of them absent or not a folder), without waiting: a sparse
   * checkout plans thousands of paths in folders that are not there.
   */
  knownState(p: string): PathState | undefined {
    for (let at = p.indexOf('/'); at !== -1; at = p.indexOf('/', at + 1)) {
      const state = this.#dirs.get(p.slice(0, at));
      if (state === undefined) return undefined;
      if (state === 'absent') return { kind: 'absent' };
      if (state === 'other') return { kind: 'blocked', by: p.slice(0, at) };
    }
    return undefined;
  }

  async state(p: string): Promise<PathState> {
    const parents = await this.parents(p);
    if (parents.kind !== 'ok') return parents;
    try {
      return { kind: 'present', stats: await fs.lstat(absolutePath(this.workTree, p)) };
    } catch (error) {
      if (hasErrnoCode(error, 'ENOENT') || hasErrnoCode(error, 'ENOTDIR'))
        return { kind: 'absent' };
      throw error;
    }
  }
}

/**
 * Whether the working file at `entry.path` holds exactly `entry` (content and
 * mode): 'missing' when nothing is there, 'clean' or 'dirty' otherwise. The
 * stat cache decides when it can; otherwise the file is hashed.
 */
async function compareWorkFile(
  probe: WorkTreeProbe,
  entry: IndexEntry,
  indexMtimeMs: number,
): Promise<'clean' | 'dirty' | 'missing'> {
  const state = await probe.state(entry.path);
  if (state.kind !== 'present') return 'missing';
  return compareStats(probe.workTree, entry, state.stats, indexMtimeMs);
}

async function compareStats(
  workTree: string,
  entry: Pick<IndexEntry, 'path' | 'mode' | 'sha256' | 'size'> & Partial<IndexEntry>,
  stats: Stats,
  indexMtimeMs: number,
): Promise<'clean' | 'dirty'> {
  if (!stats.isFile() && !stats.isSymbolicLink()) return 'dirty';
  if (isFullEntry(entry) && statMatches(entry, stats, indexMtimeMs)) return 'clean';
  if (modeFromStats(stats) !== entry.mode || stats.size !== entry.size) return 'dirty';
  const sha = await hashWorkFile(absolutePath(workTree, entry.path), stats);
  return sha === entry.sha256 ? 'clean' : 'dirty';
}

function isFullEntry(entry: Partial<IndexEntry>): entry is IndexEntry {
  return entry.mtimeMs !== undefined && entry.ino !== undefined;
}

// ---------------------------------------------------------------------------
// Planning

/**
 * Plans moving the index and working tree from `current` (the HEAD tree) to
 * `target`. In merge mode the caller refuses when `localChanges` or
 * `untracked` is non-empty.
 */
export async function planTreeUpdate(
  repo: Repository,
  index: StagingIndex,
  current: ReadonlyMap<string, FileVersion>,
  target: ReadonlyMap<string, FileVersion>,
  options: { force: boolean },
): Promise<WorkTreePlan> {
  const workTree = repo.requireWorkTree('checkout');
  const probe = new WorkTreeProbe(workTree);
  const rules = new IgnoreRules(workTree);
  const paths = new Set([...current.keys(), ...index.entries.keys(), ...target.keys()]);
  const writes: FileVersion[] = [];
  const removes: string[] = [];
  const localChanges: string[] = [];
  const untracked: string[] = [];
  const adopt: FileVersion[] = [];
  for (const p of [...paths].sort()) {
    assertSafeRepoPath(p);
    const h = current.get(p);
    const i = index.entries.get(p);
    const m = target.get(p);
    if (options.force) {
      if (m) {
        const clean =
          i !== undefined &&
          sameVersion(i, m) &&
          (await compareWorkFile(probe, i, index.fileMtimeMs)) === 'clean';
        if (!clean) writes.push(m);
      } else if (i) removes.push(p);
      continue;
    }
    // Two-way merge: keep what the trees agree on, or what already matches the target.
    if (sameVersion(h, m) || sameVersion(i, m)) continue;
    if (!sameVersion(i, h)) {
      localChanges.push(p);
      continue;
    }
    if (i) {
      if ((await compareWorkFile(probe, i, index.fileMtimeMs)) === 'dirty') {
        // Changed since the index, but maybe to exactly the target (Git's
        // two-way merge keeps such a file): an earlier update to it, stopped
        // after placing the file and before writing the index.
        if (m && (await holdsVersion(repo, probe, m))) adopt.push(m);
        else localChanges.push(p);
        continue;
      }
    } else {
      const state = probe.knownState(p) ?? (await probe.state(p));
      const stats = state.kind === 'present' ? state.stats : undefined;
      if (stats && !stats.isDirectory() && !rules.ignores(p, false)) {
        // Already the target's file (an interrupted update placed it): kept.
        if (m && (await holdsVersion(repo, probe, m))) adopt.push(m);
        else untracked.push(p);
        continue;
      }
    }
    if (m) writes.push(m);
    else removes.push(p);
  }
  const sparse = await splitSparse(probe, writes, await loadSparse(repo));
  const blockers = await findBlockers(probe, rules, index, sparse.writes, removes, options.force);
  return {
    writes: sparse.writes,
    skipped: sparse.skipped,
    removes,
    clobber: blockers.clobber,
    clearDirs: blockers.clearDirs,
    localChanges: [...localChanges, ...blockers.localChanges].sort(),
    untracked: [...untracked, ...blockers.untracked].sort(),
    adopt,
  };
}

/** Whether the working file at `version.path` holds exactly `version` (content and mode). */
async function holdsVersion(
  repo: Repository,
  probe: WorkTreeProbe,
  version: FileVersion,
): Promise<boolean> {
  const state = await probe.state(version.path);
  if (state.kind !== 'present') return false;
  const expected = {
    path: version.path,
    mode: version.mode,
    size: version.size,
    sha256: await contentSha256(repo.objects, version),
  };
  return (await compareStats(probe.workTree, expected, state.stats, 0)) === 'clean';
}

/**
 * Plans writing `writes` and removing `removes` whatever the working files
 * hold (`checkout -- <paths>`, `restore`): local changes are overwritten and
 * untracked files in the way replaced, as Git does for these verbs.
 */
export async function planForcedWrites(
  repo: Repository,
  index: StagingIndex,
  writes: FileVersion[],
  removes: string[],
  /** `sparse: null` writes every file, whatever the sparse-checkout patterns say. */
  options: { sparse?: SparseMatcher | null } = {},
): Promise<WorkTreePlan> {
  const workTree = repo.requireWorkTree('checkout');
  const probe = new WorkTreeProbe(workTree);
  for (const p of [...writes.map((w) => w.path), ...removes]) assertSafeRepoPath(p);
  const sparse = await splitSparse(
    probe,
    writes,
    options.sparse === null ? undefined : (options.sparse ?? (await loadSparse(repo))),
  );
  const blockers = await findBlockers(
    probe,
    new IgnoreRules(workTree),
    index,
    sparse.writes,
    removes,
    true,
  );
  return { writes: sparse.writes, skipped: sparse.skipped, removes, ...blockers };
}

/**
 * Sets apart the writes outside the sparse-checkout patterns whose working
 * file is absent: they stay not checked out. A file that is there (a
 * conflict written outside the patterns, a file created by hand) is an
 * ordinary working file and is updated as usual.
 */
async function splitSparse(
  probe: WorkTreeProbe,
  writes: FileVersion[],
  sparse: SparseMatcher | undefined,
): Promise<{ writes: FileVersion[]; skipped: FileVersion[] }> {
  if (!sparse) return { writes, skipped: [] };
  const kept: FileVersion[] = [];
  const skipped: FileVersion[] = [];
  for (const write of writes) {
    if (
      !sparse.includes(write.path) &&
      (probe.knownState(write.path) ?? (await probe.state(write.path))).kind !== 'present'
    ) {
      skipped.push(write);
    } else kept.push(write);
  }
  return { writes: kept, skipped };
}

/**
 * Finds what stands where a write goes: a file or symlink where a folder is
 * needed, or a folder where a file goes. Tracked paths being removed anyway
 * are fine; untracked ones are replaced when forced or ignored, and reported
 * otherwise; a tracked file that stays is a local change.
 */
async function findBlockers(
  probe: WorkTreeProbe,
  rules: IgnoreRules,
  index: StagingIndex,
  writes: readonly FileVersion[],
  removes: readonly string[],
  force: boolean,
): Promise<Pick<WorkTreePlan, 'clobber' | 'clearDirs' | 'localChanges' | 'untracked'>> {
  const removed = new Set(removes);
  const written = new Set(writes.map((w) => w.path));
  const clobber = new Set<string>();
  const clearDirs: string[] = [];
  const localChanges = new Set<string>();
  const untracked = new Set<string>();
  const goesAway = (p: string): boolean => removed.has(p) || clobber.has(p);
  for (const write of writes) {
    const parents = await probe.parents(write.path);
    if (parents.kind === 'blocked') {
      const by = parents.by;
      if (goesAway(by)) {
        // Removed before the write.
      } else if (index.entries.has(by) && !written.has(by)) localChanges.add(write.path);
      else if (force || rules.ignores(by, false)) clobber.add(by);
      else untracked.add(by);
      continue;
    }
    if (parents.kind === 'absent') continue;
    const state = await probe.state(write.path);
    if (state.kind !== 'present' || !state.stats.isDirectory()) continue;
    // A folder where a file goes: every file in it must go away.
    const inside = await listFolder(probe.workTree, write.path);
    for (const item of inside.files) {
      if (goesAway(item)) continue;
      if (index.entries.has(item) && !written.has(item)) localChanges.add(item);
      else if (force || rules.ignores(item, false)) clobber.add(item);
      else untracked.add(item);
    }
    for (const item of inside.unremovable) untracked.add(item);
    clearDirs.push(write.path);
  }
  return {
    clobber: [...clobber].sort(),
    clearDirs,
    localChanges: [...localChanges],
    untracked: [...untracked],
  };
}

/**
 * Every file and symlink under a folder (symlinks are not followed), and the
 * names this code will never delete (a nested `.mediagit`, unsafe names).
 */
async function listFolder(
  workTree: string,
  dir: string,
): Promise<{ files: string[]; unremovable: string[] }> {
  const files: string[] = [];
  const unremovable: string[] = [];
  const visit = async (rel: string): Promise<void> => {
    for (const entry of await fs.readdir(absolutePath(workTree, rel), { withFileTypes: true })) {
      const child = `${rel}/${entry.name}`;
      try {
        assertSafeRepoPath(child);
      } catch {
        unremovable.push(child);
        continue;
      }
      if (entry.isDirectory()) await visit(child);
      else files.push(child);
    }
  };
  await visit(dir);
  return { files, unremovable };
}

// ---------------------------------------------------------------------------
// Applying

/**
 * Carries out a plan; returns fresh index entries (stat data included) for
 * every written path. Objects are all read and verified before the first
 * working file changes.
 */
export async function applyWorkTreePlan(
  repo: Repository,
  plan: Pick<WorkTreePlan, 'writes' | 'removes' | 'clobber' | 'clearDirs' | 'skipped'>,
  options: Pick<WorkTreeUpdateOptions, 'signal' | 'onProgress' | 'prestaged' | 'knownSha256'> = {},
): Promise<Map<string, IndexEntry>> {
  const workTree = repo.requireWorkTree('checkout');
  const entries = new Map<string, IndexEntry>();
  // Lookups several at a time: a sparse checkout skips thousands of files.
  const skipped = new Map<string, IndexEntry>();
  await eachLimited(plan.skipped ?? [], SKIPPED_LOOKUPS, async (version) => {
    const known = version.kind === 'manifest' ? options.knownSha256?.(version.id) : undefined;
    skipped.set(version.path, await entryWithoutStats(repo.objects, version, known));
  });
  for (const version of plan.skipped ?? []) entries.set(version.path, skipped.get(version.path)!);
  if (plan.writes.length === 0 && plan.removes.length === 0 && plan.clobber.length === 0) {
    return entries;
  }
  // A partial clone fetches what it lacks first, in one batch, before any
  // change; the files it fetches are written out as their chunks arrive.
  const fetched = await ensureFileContent(repo, plan.writes, options.signal, true);
  const prestaged = new Map([...(options.prestaged ?? []), ...(fetched.prestaged ?? [])]);
  trackTempDir(repo.objects.tmpDir);
  const staging = path.join(
    repo.objects.tmpDir,
    `checkout-${process.pid}-${randomBytes(6).toString('hex')}`,
  );
  try {
    await fs.mkdir(staging, { recursive: true });
    const staged = await stageWrites(repo, plan.writes, staging, { ...options, prestaged });
    // Lockable files go in read-only until their lock is taken (lockable.ts).
    const lockable = lockableMatcher(lockablePatterns(repo));
    if (lockable) {
      const files = plan.writes.filter((w) => w.mode !== '120000' && lockable(w.path));
      await makeReadOnly(files.map((w) => staged.get(w.path)!.stagedPath));
    }
    const pruneCandidates = new Set<string>();
    for (const p of [...plan.removes, ...plan.clobber]) {
      if (await removeWorkFile(workTree, p)) pruneCandidates.add(parentOf(p));
    }
    for (const dir of plan.clearDirs) {
      await removeEmptyFolders(workTree, dir);
      pruneCandidates.add(parentOf(dir));
    }
    await pruneEmptyParents(workTree, pruneCandidates);
    const progress = workProgress(plan.writes);
    progress.bytes = progress.total;
    progress.work = progress.total + plan.writes.length * FILE_WORK;
    const folders = new Set<string>();
    const placed = new Map<string, IndexEntry>();
    let next = 0;
    const place = async (): Promise<void> => {
      for (let i = next++; i < plan.writes.length; i = next++) {
        options.signal?.throwIfAborted();
        const write = plan.writes[i]!;
        const item = staged.get(write.path)!;
        placed.set(write.path, await placeFile(repo, workTree, write, item, folders));
        progress.work += FILE_WORK;
        options.onProgress?.({ path: write.path, ...progress });
      }
    };
    // Two writes to one path never happen (a plan holds each path once), and
    // folders are created idempotently, so placements may overlap.
    await Promise.all(Array.from({ length: PLACE_PARALLEL }, place));
    for (const write of plan.writes) entries.set(write.path, placed.get(write.path)!);
  } finally {
    await fs.rm(staging, { recursive: true, force: true });
    // Files fetched ahead that were not used (a failure, or one content at two paths).
    for (const file of fetched.prestaged?.values() ?? []) await fs.rm(file, { force: true });
  }
  return entries;
}

interface StagedFile {
  readonly stagedPath: string;
  readonly sha256: ObjectId;
}

/** Progress counters for writing `writes`: bytes, and work with each file's two steps counted. */
function workProgress(writes: readonly FileVersion[]): Omit<WorkTreeProgress, 'path'> & {
  bytes: number;
  work: number;
} {
  const total = writes.reduce((sum, w) => sum + w.size, 0);
  return { bytes: 0, total, work: 0, totalWork: total + 2 * FILE_WORK * writes.length };
}

/** Materializes every write into the staging folder: small files 8 at a time, large ones alone. */
async function stageWrites(
  repo: Repository,
  writes: readonly FileVersion[],
  staging: string,
  options: Pick<WorkTreeUpdateOptions, 'signal' | 'onProgress' | 'prestaged'>,
): Promise<Map<string, StagedFile>> {
  const out = new Map<string, StagedFile>();
  const progress = workProgress(writes);
  let counter = 0;
  /** Prestaged files already moved (two paths with one content: the second is written). */
  const used = new Set<string>();
  const stageOne = async (write: FileVersion): Promise<void> => {
    options.signal?.throwIfAborted();
    const stagedPath = path.join(staging, String(counter++));
    const prestaged =
      write.kind === 'manifest' && write.mode !== '120000'
        ? options.prestaged?.get(write.id)
        : undefined;
    if (prestaged !== undefined && !used.has(prestaged)) {
      used.add(prestaged);
      await fs.chmod(prestaged, write.mode === '100755' ? 0o755 : 0o644);
      await fs.rename(prestaged, stagedPath);
    } else if (write.kind === 'blob' && write.mode !== '120000' && write.size <= SMALL_FILE) {
      // A small file: written with one synchronous call on this thread, which
      // here costs less than the thread-pool round trips of open, write and close.
      const data = await repo.objects.readTyped(write.id, 'blob');
      writeFileSync(stagedPath, data, {
        flag: 'wx',
        mode: write.mode === '100755' ? 0o755 : 0o644,
      });
    } else {
      await materializeVersion(repo.objects, write, stagedPath, options.signal, true);
    }
    out.set(write.path, { stagedPath, sha256: await contentSha256(repo.objects, write) });
    progress.bytes += write.size;
    progress.work += write.size + FILE_WORK;
    options.onProgress?.({ path: write.path, ...progress });
  };
  const small = writes.filter((w) => w.kind === 'blob');
  for (const write of writes) if (write.kind !== 'blob') await stageOne(write);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(8, small.length) }, async () => {
      for (let i = next++; i < small.length; i = next++) await stageOne(small[i]!);
    }),
  );
  return out;
}

/** Writes one version at `dest` (a regular file, or a symlink for mode 120000), atomically. */
export async function materializeVersion(
  store: ObjectStore,
  file: FileVersion,
  dest: string,
  signal?: AbortSignal,
  /** `dest` is a new path in a private folder: no temp file and rename needed. */
  inPlace = false,
): Promise<void> {
  if (file.mode === '120000') {
    const target = await readFileBytes(store, file.kind, file.id);
    const tmp = path.join(
      path.dirname(dest),
      `.mediagit-link-${process.pid}-${randomBytes(6).toString('hex')}.tmp`,
    );
    const untrack = trackPath(tmp);
    try {
      await fs.symlink(target, tmp);
      await fs.rename(tmp, dest);
    } catch (error) {
      await fs.rm(tmp, { force: true });
      throw error;
    } finally {
      untrack();
    }
    return;
  }
  await materializeFile(
    store,
    file.kind,
    file.id,
    dest,
    file.mode === '100755' ? 0o755 : 0o644,
    signal,
    inPlace,
  );
}

/** The whole-content SHA-256 of a stored file (a manifest records it; a blob's ID is it). */
export async function contentSha256(
  store: ObjectStore,
  file: Pick<FileVersion, 'kind' | 'id'>,
): Promise<ObjectId> {
  return file.kind === 'blob'
    ? await store.blobSha256(file.id)
    : (await readManifest(store, file.id)).sha256;
}

/**
 * `contentSha256` for an index entry without stats (a file not checked out,
 * or staged without its work file): UNKNOWN_SHA256 when its manifest is
 * absent from a partial clone (it stays on the remote until the file is
 * needed; status fetches it if a work file ever has to be compared).
 */
async function skippedSha256(store: ObjectStore, file: FileVersion): Promise<ObjectId> {
  if (file.kind === 'manifest' && store.contentSource !== undefined && !(await store.has(file.id)))
    return UNKNOWN_SHA256;
  return contentSha256(store, file);
}

/**
 * An index entry for a version that is not (known to be) in the working tree:
 * no stat data, so the next status hashes the file before trusting it.
 */
export async function entryWithoutStats(
  store: ObjectStore,
  file: FileVersion,
  /** The content's SHA-256 when the caller knows it already. */
  sha256?: ObjectId,
): Promise<IndexEntry> {
  return {
    path: file.path,
    mode: file.mode,
    kind: file.kind,
    id: file.id,
    sha256: sha256 ?? (await skippedSha256(store, file)),
    size: file.size,
    mtimeMs: 0,
    ctimeMs: 0,
    ino: 0,
    dev: 0,
  };
}

/** The folder holding `p` ('' at the top). */
export function parentOf(p: string): string {
  const slash = p.lastIndexOf('/');
  return slash < 0 ? '' : p.slice(0, slash);
}

/**
 * Whether every folder above `p` is a real directory right now. A symlinked
 * folder is never written through: from the repository's point of view
 * nothing under it exists.
 */
export async function parentsAreDirectories(workTree: string, p: string): Promise<boolean> {
  const parts = p.split('/');
  for (let i = 1; i < parts.length; i++) {
    try {
      const stats = await fs.lstat(absolutePath(workTree, parts.slice(0, i).join('/')));
      if (!stats.isDirectory()) return false;
    } catch (error) {
      if (hasErrnoCode(error, 'ENOENT') || hasErrnoCode(error, 'ENOTDIR')) return false;
      throw error;
    }
  }
  return true;
}

/** Unlinks a working file or symlink; returns whether something was removed. */
export async function removeWorkFile(workTree: string, p: string): Promise<boolean> {
  assertSafeRepoPath(p);
  if (!(await parentsAreDirectories(workTree, p))) return false;
  const full = absolutePath(workTree, p);
  let stats: Stats;
  try {
    stats = await fs.lstat(full);
  } catch (error) {
    if (hasErrnoCode(error, 'ENOENT')) return false;
    throw error;
  }
  if (stats.isDirectory()) return false;
  await fs.unlink(full);
  return true;
}

/** Removes a folder whose files are all gone; fails naming it when something remains. */
async function removeEmptyFolders(workTree: string, dir: string): Promise<void> {
  if (!(await parentsAreDirectories(workTree, dir))) return;
  const visit = async (rel: string): Promise<void> => {
    const full = absolutePath(workTree, rel);
    let entries;
    try {
      entries = await fs.readdir(full, { withFileTypes: true });
    } catch (error) {
      if (hasErrnoCode(error, 'ENOENT') || hasErrnoCode(error, 'ENOTDIR')) return;
      throw error;
    }
    for (const entry of entries) if (entry.isDirectory()) await visit(`${rel}/${entry.name}`);
    try {
      await fs.rmdir(full);
    } catch (error) {
      if (hasErrnoCode(error, 'ENOTEMPTY') || hasErrnoCode(error, 'EEXIST')) {
        throw new MediaGitError(
          'PATH_BLOCKED',
          `cannot replace folder '${rel}' with a file: it is not empty`,
          { kind: 'user', data: { path: rel } },
        );
      }
      throw error;
    }
  };
  await visit(dir);
}

/** Removes folders left empty by removals, deepest first, up to (not including) the root. */
export async function pruneEmptyParents(workTree: string, dirs: Iterable<string>): Promise<void> {
  const all = new Set<string>();
  for (const dir of dirs) {
    for (let d = dir; d !== ''; d = parentOf(d)) all.add(d);
  }
  const sorted = [...all].sort(
    (a, b) => b.split('/').length - a.split('/').length || (a < b ? 1 : -1),
  );
  for (const dir of sorted) {
    if (!(await parentsAreDirectories(workTree, dir))) continue;
    try {
      const stats = await fs.lstat(absolutePath(workTree, dir));
      if (stats.isDirectory()) await fs.rmdir(absolutePath(workTree, dir));
    } catch (error) {
      if (
        !hasErrnoCode(error, 'ENOTEMPTY') &&
        !hasErrnoCode(error, 'EEXIST') &&
        !hasErrnoCode(error, 'ENOENT')
      ) {
        throw error;
      }
    }
  }
}

/**
 * Creates the folders above `p` one level at a time, checking with lstat that
 * each is a real directory, so a write never goes through a symlink.
 */
async function ensureParentDirectories(
  workTree: string,
  p: string,
  known?: Set<string>,
): Promise<void> {
  const parts = p.split('/');
  for (let i = 1; i < parts.length; i++) {
    const rel = parts.slice(0, i).join('/');
    if (known?.has(rel)) continue;
    const full = absolutePath(workTree, rel);
    let stats: Stats | undefined;
    try {
      stats = await fs.lstat(full);
    } catch (error) {
      if (!hasErrnoCode(error, 'ENOENT')) throw error;
    }
    if (!stats) {
      try {
        await fs.mkdir(full);
        known?.add(rel);
        continue;
      } catch (error) {
        if (!hasErrnoCode(error, 'EEXIST')) throw error;
        stats = await fs.lstat(full);
      }
    }
    if (!stats.isDirectory()) {
      throw new MediaGitError(
        'PATH_BLOCKED',
        `cannot create '${p}': '${rel}' is in the way and is not a folder`,
        { kind: 'user', data: { path: p, blocker: rel } },
      );
    }
    known?.add(rel);
  }
}

/**
 * Moves a staged file into the working tree and records its fresh stat data.
 * `folders` remembers the folders this update has already checked or made.
 */
async function placeFile(
  repo: Repository,
  workTree: string,
  write: FileVersion,
  staged: StagedFile,
  folders?: Set<string>,
): Promise<IndexEntry> {
  assertSafeRepoPath(write.path);
  await ensureParentDirectories(workTree, write.path, folders);
  const dest = absolutePath(workTree, write.path);
  // Synchronous: two quick calls on this thread cost less than two thread-pool round trips.
  try {
    renameSync(staged.stagedPath, dest);
  } catch (error) {
    if (hasErrnoCode(error, 'EISDIR') || hasErrnoCode(error, 'ENOTEMPTY')) {
      // An (empty) folder where the file goes: replaced, as Git does.
      await fs.rmdir(dest);
      await fs.rename(staged.stagedPath, dest);
    } else if (hasErrnoCode(error, 'EXDEV')) {
      // The work tree spans filesystems: write in place, still atomically per file.
      await materializeVersion(repo.objects, write, dest);
    } else throw error;
  }
  const stats = lstatSync(dest);
  return entryFromStats(
    write.path,
    { kind: write.kind, id: write.id, sha256: staged.sha256 },
    stats,
  );
}

// ---------------------------------------------------------------------------
// The whole update

/**
 * Moves `index` (loaded under its lock by the caller, who saves it) and the
 * working tree from `current` to `target`. Refuses with WOULD_OVERWRITE,
 * changing nothing, when local changes or untracked files would be lost and
 * `force` is not set.
 */
export async function updateWorkTree(
  repo: Repository,
  index: StagingIndex,
  current: ReadonlyMap<string, FileVersion>,
  target: ReadonlyMap<string, FileVersion>,
  options: WorkTreeUpdateOptions = {},
): Promise<WorkTreeUpdateResult> {
  const force = options.force === true;
  const plan = await planTreeUpdate(repo, index, current, target, { force });
  if (!force && (plan.localChanges.length > 0 || plan.untracked.length > 0)) {
    throw wouldOverwrite(plan.localChanges, plan.untracked);
  }
  const written = await applyWorkTreePlan(repo, plan, options);
  for (const p of plan.removes) index.entries.delete(p);
  for (const [p, entry] of written) index.entries.set(p, entry);
  for (const version of plan.adopt ?? []) {
    const stats = lstatSync(absolutePath(repo.requireWorkTree('checkout'), version.path));
    const sha256 = await contentSha256(repo.objects, version);
    index.entries.set(
      version.path,
      entryFromStats(version.path, { kind: version.kind, id: version.id, sha256 }, stats),
    );
  }
  if (force) {
    for (const p of [...index.entries.keys()]) if (!target.has(p)) index.entries.delete(p);
  }
  return { written: [...written.keys()], removed: [...plan.removes] };
}

// ---------------------------------------------------------------------------
// Reporting what stays changed

export type LocalChangeStatus = 'A' | 'M' | 'D' | 'T';

export interface LocalChange {
  readonly path: string;
  readonly status: LocalChangeStatus;
}

const LETTER = { added: 'A', modified: 'M', deleted: 'D', typechange: 'T' } as const;

/**
 * Paths whose index entry or working file differs from `tree` (Git's
 * `show_local_changes` after a checkout). Reads the saved index.
 */
export async function localChangesAgainst(
  repo: Repository,
  tree: ReadonlyMap<string, FileVersion>,
): Promise<LocalChange[]> {
  const index = await StagingIndex.load(repo.gitDir);
  const out = new Map<string, LocalChangeStatus>();
  for (const change of diffIndexAgainstTree(index, tree))
    out.set(change.path, LETTER[change.change]);
  const work = await worktreeChanges(repo, index, { untracked: false });
  for (const change of work.changes) {
    if (!out.has(change.path)) out.set(change.path, LETTER[change.change]);
  }
  return [...out]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([p, status]) => ({ path: p, status }));
}

/** Working-tree changes against the saved index, as `reset` lists them afterwards. */
export async function unstagedChanges(repo: Repository): Promise<LocalChange[]> {
  const index = await StagingIndex.load(repo.gitDir);
  const work = await worktreeChanges(repo, index, { untracked: false });
  return work.changes.map((c) => ({ path: c.path, status: LETTER[c.change] }));
}

/** Whether the working file at `p` holds exactly `version` (used by restore and mv). */
export async function workFileMatches(
  repo: Repository,
  version: FileVersion & { sha256?: ObjectId },
  indexEntry: IndexEntry | undefined,
  indexMtimeMs: number,
): Promise<{ matches: boolean; stats: Stats | undefined }> {
  const workTree = repo.requireWorkTree('restore');
  if (!(await parentsAreDirectories(workTree, version.path)))
    return { matches: false, stats: undefined };
  let stats: Stats;
  try {
    stats = await fs.lstat(absolutePath(workTree, version.path));
  } catch (error) {
    if (hasErrnoCode(error, 'ENOENT')) return { matches: false, stats: undefined };
    throw error;
  }
  if (indexEntry && sameVersion(indexEntry, version)) {
    const result = await compareStats(workTree, indexEntry, stats, indexMtimeMs);
    return { matches: result === 'clean', stats };
  }
  const sha256 = version.sha256 ?? (await contentSha256(repo.objects, version));
  const result = await compareStats(workTree, { ...version, sha256 }, stats, indexMtimeMs);
  return { matches: result === 'clean', stats };
}
