/**
 * `reset`: move the current branch (or detached HEAD) to a commit, and
 *   --soft   leave the index and working tree alone,
 *   --mixed  make the index match the commit (the default),
 *   --hard   make the index and the working tree match it (local changes to
 *            tracked files are lost; untracked files stay unless in the way).
 * With paths, `reset [<rev>] -- <paths>` only copies those index entries from
 * the commit (unstaging them) and moves nothing.
 *
 * The index and working tree change first and the ref moves last, with a
 * reflog entry "reset: moving to <rev>", as in Git. On a branch with no
 * commits, `reset` without a revision resets to the empty tree.
 */
import { clearMergeState } from './merge-state.ts';
import { MediaGitError } from '../errors.ts';
import type { ObjectId } from '../odb/object-id.ts';
import { commitSubject } from './branch.ts';
import { StagingIndex, type IndexEntry } from './index-file.ts';
import { matchesAny, parsePathspecs } from './pathspec.ts';
import { absolutePath, isUnder, toRepoPath } from './worktree.ts';
import { parentsAreDirectories } from './worktree-update.ts';
import fs from 'node:fs/promises';
import { Refs } from './refs.ts';
import { assertMayMove } from './protect.ts';
import type { Repository } from './repository.ts';
import { namesCommit, revisionFiles } from './restore.ts';
import { resolveCommit } from './revision.ts';
import { flattenCommit } from './tree-ops.ts';
import {
  entryWithoutStats,
  sameVersion,
  unstagedChanges,
  updateWorkTree,
  type FileVersion,
  type LocalChange,
  type WorkTreeUpdateOptions,
} from './worktree-update.ts';

export type ResetMode = 'soft' | 'mixed' | 'hard';

export interface ResetOptions extends Pick<WorkTreeUpdateOptions, 'signal' | 'onProgress'> {
  readonly mode: ResetMode;
  /** Commit to reset to; HEAD when absent. */
  readonly rev?: string | undefined;
  /** Reset only these index entries (mixed mode only). */
  readonly paths?: readonly string[] | undefined;
  readonly cwd: string;
  /** List working-tree changes left after a mixed reset (Git prints them); default true. */
  readonly reportUnstaged?: boolean | undefined;
}

export interface ResetResult {
  /** The commit HEAD now points at (absent on a branch with no commits). */
  readonly id: ObjectId | undefined;
  readonly subject: string | undefined;
  /** Working-tree changes against the new index (mixed mode). */
  readonly unstaged: LocalChange[];
}

export async function reset(repo: Repository, options: ResetOptions): Promise<ResetResult> {
  if (options.paths && options.paths.length > 0) return resetPaths(repo, options);
  const refs = new Refs(repo);
  const head = await refs.head();
  const rev = options.rev ?? 'HEAD';
  const id =
    options.rev === undefined && head.id === undefined ? undefined : await resolveCommit(repo, rev);
  // Refused before any file changes, not only when the branch would move.
  if (head.branch && id !== undefined) await assertMayMove(repo, head.branch, head.id, id);
  if (options.mode !== 'soft') {
    const lock = await StagingIndex.lock(repo.gitDir);
    try {
      const index = await StagingIndex.load(repo.gitDir);
      const target = await flattenCommit(repo.objects, id);
      if (options.mode === 'hard') {
        const current = await flattenCommit(repo.objects, head.id);
        await updateWorkTree(repo, index, current, target, { ...options, force: true });
      } else {
        await resetEntries(repo, index, target, [...target.keys(), ...index.entries.keys()]);
      }
      await index.save(lock);
    } finally {
      await lock.release();
    }
  }
  if (id !== undefined) {
    await refs.updateHead(id, `reset: moving to ${rev}`, head.id ?? null);
    // As Git: a reset of the whole index ends a stopped merge, cherry-pick or revert.
    if (options.mode !== 'soft') await clearMergeState(repo);
  }
  const unstaged =
    options.mode === 'mixed' && options.reportUnstaged !== false && repo.workTree !== undefined
      ? await unstagedChanges(repo)
      : [];
  return { id, subject: id === undefined ? undefined : await commitSubject(repo, id), unstaged };
}

/**
 * Sets the index entries of `paths` to `target`'s versions (removing those it
 * lacks). Entries that already name the same version keep their stat data.
 */
async function resetEntries(
  repo: Repository,
  index: StagingIndex,
  target: ReadonlyMap<string, FileVersion>,
  paths: Iterable<string>,
): Promise<void> {
  const updates = new Map<string, IndexEntry | undefined>();
  for (const p of paths) {
    if (updates.has(p)) continue;
    const wanted = target.get(p);
    const entry = index.entries.get(p);
    if (!wanted) updates.set(p, undefined);
    else if (!sameVersion(entry, wanted))
      updates.set(p, await entryWithoutStats(repo.objects, wanted));
  }
  for (const [p, entry] of updates) {
    if (entry) index.entries.set(p, entry);
    else index.entries.delete(p);
  }
}

async function resetPaths(repo: Repository, options: ResetOptions): Promise<ResetResult> {
  if (options.mode !== 'mixed') {
    throw new MediaGitError('RESET_PATHS', `Cannot do ${options.mode} reset with paths.`, {
      kind: 'usage',
    });
  }
  const workTree = repo.requireWorkTree('reset');
  const specs = parsePathspecs(workTree, options.cwd, options.paths ?? []);
  const { files: target } = await revisionFiles(repo, options.rev ?? 'HEAD');
  const lock = await StagingIndex.lock(repo.gitDir);
  try {
    const index = await StagingIndex.load(repo.gitDir);
    const paths = [...target.keys(), ...index.entries.keys()].filter((p) => matchesAny(specs, p));
    await resetEntries(repo, index, target, paths);
    await index.save(lock);
  } finally {
    await lock.release();
  }
  const head = await new Refs(repo).head();
  return {
    id: head.id,
    subject: head.id === undefined ? undefined : await commitSubject(repo, head.id),
    unstaged: options.reportUnstaged === false ? [] : await unstagedChanges(repo),
  };
}

/**
 * Git's reading of `reset <args>`: with `--`, the one argument before it is
 * the revision and the rest are paths. Without it, the first argument is the
 * revision when it names a commit, and every other argument must be a path
 * present in the working tree or the index (else Git's "ambiguous argument").
 */
export async function interpretResetArgs(
  repo: Repository,
  cwd: string,
  before: readonly string[],
  afterDash: readonly string[] | undefined,
): Promise<{ rev: string | undefined; paths: string[] }> {
  if (afterDash !== undefined) {
    if (before.length > 1) throw ambiguousArgument(before[1]!);
    return { rev: before[0], paths: [...afterDash] };
  }
  const [first, ...rest] = before;
  if (first === undefined) return { rev: undefined, paths: [] };
  const named = await namesCommit(repo, first);
  const paths = named ? rest : [...before];
  const workTree = repo.requireWorkTree('reset');
  const index = await StagingIndex.load(repo.gitDir);
  for (const userPath of paths) {
    const p = toRepoPath(workTree, cwd, userPath);
    if (index.sortedPaths().some((tracked) => isUnder(tracked, p))) continue;
    if (p === '' || (await existsInWorkTree(workTree, p))) continue;
    throw ambiguousArgument(userPath);
  }
  return { rev: named ? first : undefined, paths };
}

async function existsInWorkTree(workTree: string, p: string): Promise<boolean> {
  if (!(await parentsAreDirectories(workTree, p))) return false;
  try {
    await fs.lstat(absolutePath(workTree, p));
    return true;
  } catch {
    return false;
  }
}

function ambiguousArgument(arg: string): MediaGitError {
  return new MediaGitError(
    'AMBIGUOUS_ARGUMENT',
    `ambiguous argument '${arg}': unknown revision or path not in the working tree.\n` +
      "Use '--' to separate paths from revisions, like this:\n" +
      "'mediagit <command> [<revision>...] -- [<file>...]'",
    { kind: 'usage', data: { argument: arg } },
  );
}
