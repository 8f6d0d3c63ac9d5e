/**
 * `restore`: put paths back as a source has them, in the working tree
 * (default, from the index), in the index (`--staged`, from HEAD), or both.
 * `--source <rev>` picks another commit. Local changes to the named paths
 * are overwritten, as in Git.
 *
 * By default a path the source lacks is removed from the destinations
 * (Git's no-overlay mode, what `restore` does); in overlay mode such paths
 * are left alone (what `checkout <rev> -- <paths>` does, which is this same
 * operation on both the index and the working tree).
 */
import { MediaGitError } from '../errors.ts';
import type { ObjectId } from '../odb/object-id.ts';
import { entryFromStats, StagingIndex, type IndexEntry } from './index-file.ts';
import { resolveConflicts, unmergedConflicts } from './merge-state.ts';
import { matchesPathspec, parsePathspecs, type Pathspec } from './pathspec.ts';
import { Refs } from './refs.ts';
import type { Repository } from './repository.ts';
import { resolveCommit } from './revision.ts';
import { flattenTree, readCommit } from './tree-ops.ts';
import {
  applyWorkTreePlan,
  contentSha256,
  entryWithoutStats,
  planForcedWrites,
  sameVersion,
  workFileMatches,
  type FileVersion,
  type WorkTreeUpdateOptions,
} from './worktree-update.ts';

export interface RestoreOptions extends Pick<WorkTreeUpdateOptions, 'signal' | 'onProgress'> {
  readonly paths: readonly string[];
  /** Directory the paths are relative to. */
  readonly cwd: string;
  /** Revision to restore from; default the index (worktree only) or HEAD (`--staged`). */
  readonly source?: string | undefined;
  readonly staged?: boolean | undefined;
  /** Restore working files; the default when `staged` is not set. */
  readonly worktree?: boolean | undefined;
  /** Leave alone paths the source lacks instead of removing them. */
  readonly overlay?: boolean | undefined;
}

export interface RestoreResult {
  /** Working files rewritten. */
  readonly written: string[];
  /** Working files removed (no-overlay mode). */
  readonly removed: string[];
  /** Index entries that now name a different version (or were removed). */
  readonly staged: string[];
  /** The tree restored from, absent when the source was the index. */
  readonly sourceTree: ObjectId | undefined;
}

export function pathspecNoMatch(specs: readonly Pathspec[]): MediaGitError {
  const lines = specs.map(
    (spec) => `pathspec '${spec.original}' did not match any file(s) known to mediagit`,
  );
  return new MediaGitError('PATHSPEC_NO_MATCH', lines.join('\nerror: '), {
    kind: 'user',
    data: { pathspecs: specs.map((s) => s.original) },
  });
}

/** Whether `rev` names a commit (a missing or corrupt object is still an error). */
export async function namesCommit(repo: Repository, rev: string): Promise<boolean> {
  try {
    await resolveCommit(repo, rev);
    return true;
  } catch (error) {
    if (error instanceof MediaGitError && error.kind !== 'corrupt') return false;
    throw error;
  }
}

/** The files of a revision's tree (an unborn HEAD is the empty tree). */
export async function revisionFiles(
  repo: Repository,
  rev: string,
): Promise<{ files: Map<string, FileVersion>; tree: ObjectId | undefined }> {
  if (rev === 'HEAD' || rev === '@') {
    const head = await new Refs(repo).head();
    if (head.id === undefined) return { files: new Map(), tree: undefined };
  }
  const commit = await readCommit(repo.objects, await resolveCommit(repo, rev));
  return { files: await flattenTree(repo.objects, commit.tree), tree: commit.tree };
}

export async function restore(repo: Repository, options: RestoreOptions): Promise<RestoreResult> {
  const workTree = repo.requireWorkTree('restore');
  if (options.paths.length === 0) {
    throw new MediaGitError('NO_PATHS', 'you must specify path(s) to restore', { kind: 'usage' });
  }
  const specs = parsePathspecs(workTree, options.cwd, options.paths);
  const toIndex = options.staged === true;
  const toWorkTree = options.worktree === true || !toIndex;
  const lock = await StagingIndex.lock(repo.gitDir);
  try {
    const index = await StagingIndex.load(repo.gitDir);
    const conflicts = await unmergedConflicts(repo);
    let source: ReadonlyMap<string, FileVersion> = index.entries;
    let sourceTree: ObjectId | undefined;
    if (options.source !== undefined || toIndex) {
      const resolved = await revisionFiles(repo, options.source ?? 'HEAD');
      source = resolved.files;
      sourceTree = resolved.tree;
    }

    const candidates = new Set<string>();
    const matched = new Set<Pathspec>();
    const consider = (p: string): void => {
      for (const spec of specs) {
        if (matchesPathspec(spec, p)) {
          matched.add(spec);
          candidates.add(p);
        }
      }
    };
    for (const p of source.keys()) consider(p);
    if (!options.overlay) for (const p of index.entries.keys()) consider(p);
    for (const conflict of conflicts) consider(conflict.path);
    const unmatched = specs.filter((spec) => !matched.has(spec));
    if (unmatched.length > 0) throw pathspecNoMatch(unmatched);
    const paths = [...candidates].sort();
    // An unmerged path has no one version in the index to restore from: Git
    // refuses (before writing anything) unless a source is named, and a
    // restore to the index resolves the path.
    const unmerged = paths.filter((p) => conflicts.some((c) => c.path === p));
    if (unmerged.length > 0 && !toIndex && options.source === undefined) {
      throw new MediaGitError(
        'PATH_UNMERGED',
        unmerged.map((p) => `path '${p}' is unmerged`).join('\nerror: '),
        { kind: 'user', data: { paths: unmerged } },
      );
    }

    // Working files that already hold the source version are not rewritten.
    const writes: FileVersion[] = [];
    const removes: string[] = [];
    const matching = new Map<string, IndexEntry>();
    if (toWorkTree) {
      // A partial clone's absent manifests, in one request that names the files.
      const wantedFiles = paths.flatMap((p) => {
        const wanted = source.get(p);
        return wanted?.kind === 'manifest' ? [wanted] : [];
      });
      await repo.objects.ensureMetadata(wantedFiles);
      for (const p of paths) {
        const wanted = source.get(p);
        const entry = index.entries.get(p);
        if (!wanted) {
          removes.push(p);
          continue;
        }
        const sha256 = await contentSha256(repo.objects, wanted);
        const found = await workFileMatches(repo, { ...wanted, sha256 }, entry, index.fileMtimeMs);
        if (!found.matches) writes.push(wanted);
        else if (found.stats) {
          matching.set(
            p,
            entryFromStats(p, { kind: wanted.kind, id: wanted.id, sha256 }, found.stats),
          );
        }
      }
    }
    const plan = await planForcedWrites(repo, index, writes, removes);
    if (plan.localChanges.length > 0) {
      throw new MediaGitError(
        'PATH_BLOCKED',
        `cannot restore: tracked files are in the way of ${plan.localChanges.join(', ')}`,
        { kind: 'user', data: { paths: plan.localChanges } },
      );
    }
    const written = await applyWorkTreePlan(repo, plan, options);

    const staged: string[] = [];
    let indexChanged = written.size > 0;
    for (const p of paths) {
      const wanted = source.get(p);
      const entry = index.entries.get(p);
      const fresh = written.get(p) ?? matching.get(p);
      if (toIndex) {
        if (!sameVersion(entry, wanted)) staged.push(p);
        if (!wanted) index.entries.delete(p);
        else if (fresh) index.entries.set(p, fresh);
        else if (!sameVersion(entry, wanted))
          index.entries.set(p, await entryWithoutStats(repo.objects, wanted));
        indexChanged = true;
      } else if (fresh && entry && sameVersion(entry, fresh)) {
        // The working file now matches its entry: refresh the stat cache.
        index.entries.set(p, fresh);
      }
    }
    if (indexChanged) await index.save(lock);
    if (toIndex && unmerged.length > 0) await resolveConflicts(repo, unmerged);
    return {
      written: [...written.keys()],
      removed: [...plan.removes],
      staged,
      sourceTree,
    };
  } finally {
    await lock.release();
  }
}
