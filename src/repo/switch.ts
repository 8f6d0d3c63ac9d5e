/**
 * `switch`: move HEAD to another branch (or detach it at a commit), taking
 * the index and working tree along with Git's two-way merge
 * (worktree-update.ts): local changes to paths the two commits agree on come
 * along, and the switch is refused, changing nothing, when a local change or
 * an untracked file would be lost.
 *
 * Order of effects: working tree and index first, then the branch ref (for
 * `-c`), then HEAD, so a refused or failed update leaves every ref as it was.
 * A branch with no commits yet ("unborn") is a valid place to switch from
 * and, with `-c`/`--orphan`, to.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { MediaGitError } from '../errors.ts';
import type { ObjectId } from '../odb/object-id.ts';
import {
  assertNoRefConflict,
  branchExists,
  branchRef,
  BRANCH_PREFIX,
  commitSubject,
  shortBranchName,
} from './branch.ts';
import { StagingIndex } from './index-file.ts';
import {
  clearMergeState,
  operationInProgress,
  readMergeState,
  refuseIfUnmerged,
  type InProgress,
  type Operation,
} from './merge-state.ts';
import { assertBranchName, Refs } from './refs.ts';
import type { Repository } from './repository.ts';
import { resolveCommit } from './revision.ts';
import { flattenCommit, flattenTreeSparse, readCommit } from './tree-ops.ts';
import { loadSparse } from './sparse.ts';
import {
  localChangesAgainst,
  updateWorkTree,
  type FileVersion,
  type LocalChange,
  type WorkTreeUpdateOptions,
} from './worktree-update.ts';

export type SwitchTarget =
  /** An existing branch ("-" is the previously checked-out one). */
  | { readonly kind: 'branch'; readonly name: string }
  /** A new branch at `start` (HEAD by default); `reset` moves an existing one (`-C`). */
  | {
      readonly kind: 'create';
      readonly name: string;
      readonly start?: string | undefined;
      readonly reset?: boolean | undefined;
    }
  /** Detached HEAD at a commit. */
  | { readonly kind: 'detach'; readonly rev: string }
  /**
   * A new branch with no commits; tracked files are removed unless
   * `keepFiles` (which is what `checkout --orphan` does).
   */
  | { readonly kind: 'orphan'; readonly name: string; readonly keepFiles?: boolean | undefined };

export interface SwitchOptions extends WorkTreeUpdateOptions {
  /** Compute the paths that stay locally changed (Git prints them); default true. */
  readonly reportLocalChanges?: boolean | undefined;
  /**
   * How a stopped merge, rebase, cherry-pick or revert bears on the move
   * (Git's two commands differ; absent: not at all, for internal callers such
   * as rebase):
   *   'switch'    any move is refused while one is in progress, resolved or
   *               not ("cannot switch branch while merging"), even forced;
   *   'checkout'  a move that rewrites the index is refused while paths are
   *               unmerged ("you need to resolve your current index first")
   *               unless forced, and a completed checkout ends a stopped
   *               merge, cherry-pick or revert (its state files go, as Git's
   *               remove_branch_state does) -- except that `checkout -b`
   *               keeps one with unmerged paths, which MediaGit records only
   *               in that state (Git keeps them in the index's stages).
   * Refusals come after the target is checked and before anything is written.
   */
  readonly stopped?: 'switch' | 'checkout' | undefined;
}

export interface HeadSummary {
  /** Branch name (short), absent when detached. */
  readonly branch: string | undefined;
  readonly id: ObjectId | undefined;
  readonly subject: string | undefined;
}

export type SwitchOutcome = 'switched' | 'already' | 'created' | 'reset' | 'detached' | 'orphan';

export interface SwitchResult {
  readonly outcome: SwitchOutcome;
  readonly previous: HeadSummary;
  readonly head: HeadSummary;
  readonly localChanges: LocalChange[];
  readonly written: number;
  readonly removed: number;
  /** The stopped operation a checkout ended (Git warns for a cherry-pick or revert). */
  readonly cancelled?: Operation | undefined;
}

/** The branch or commit checked out before the current one (Git's `@{-1}`, `-`). */
export async function previousCheckout(repo: Repository): Promise<string> {
  for (const entry of await new Refs(repo).log('HEAD')) {
    const match = /^checkout: moving from (.+) to .+$/.exec(entry.message);
    if (match) return match[1]!;
  }
  throw new MediaGitError('NO_PREVIOUS_CHECKOUT', 'invalid reference: @{-1}', {
    kind: 'usage',
  });
}

/** Why a name is not a branch: Git's two messages. */
async function notABranch(repo: Repository, name: string): Promise<MediaGitError> {
  try {
    await resolveCommit(repo, name);
  } catch {
    return new MediaGitError('INVALID_REFERENCE', `invalid reference: ${name}`, {
      kind: 'usage',
      data: { name },
    });
  }
  const isTag =
    (await new Refs(repo).read(`refs/tags/${name}`).catch(() => undefined)) !== undefined;
  return new MediaGitError(
    'NOT_A_BRANCH',
    `a branch is expected, got ${isTag ? 'tag' : 'commit'} '${name}'\n` +
      'hint: If you want to detach HEAD at the commit, try again with the --detach option.',
    { kind: 'usage', data: { name } },
  );
}

async function summarize(
  repo: Repository,
  branch: string | undefined,
  id: ObjectId | undefined,
): Promise<HeadSummary> {
  return {
    branch: branch === undefined ? undefined : shortBranchName(branch),
    id,
    subject: id === undefined ? undefined : await commitSubject(repo, id),
  };
}

/**
 * Moves the index and working tree from commit `from` to commit `to` (either
 * may be absent: the empty tree) under the index lock; returns the target's files.
 */
export async function checkoutCommit(
  repo: Repository,
  from: ObjectId | undefined,
  to: ObjectId | undefined,
  options: WorkTreeUpdateOptions & {
    /**
     * A first checkout (a new clone) under cone-mode sparse patterns keeps
     * each folder wholly outside them as one sparse directory of the index,
     * never reading its trees. `target` then lacks those folders' files.
     */
    readonly sparseIndex?: boolean | undefined;
  },
): Promise<{ target: Map<string, FileVersion>; written: number; removed: number }> {
  const lock = await StagingIndex.lock(repo.gitDir);
  try {
    const index = await StagingIndex.load(repo.gitDir);
    const current = await flattenCommit(repo.objects, from);
    let target: Map<string, FileVersion>;
    let folders = new Map<string, ObjectId>();
    const sparse = options.sparseIndex === true ? await loadSparse(repo) : undefined;
    if (sparse && from === undefined && to !== undefined && index.entries.size === 0) {
      const workTree = repo.requireWorkTree('checkout');
      // A folder already in the working tree (files put there before the
      // checkout) is read as usual, so the checkout sees what is in the way.
      const outside = (folder: string): boolean =>
        sparse.excludesFolder(folder) && !existsSync(path.join(workTree, folder));
      const tree = (await readCommit(repo.objects, to)).tree;
      ({ files: target, folders } = await flattenTreeSparse(repo.objects, tree, outside));
    } else {
      target = from === to ? current : await flattenCommit(repo.objects, to);
    }
    const result = await updateWorkTree(repo, index, current, target, options);
    for (const [folder, id] of folders) index.setSparseDir(folder, id);
    await index.save(lock);
    return { target, written: result.written.length, removed: result.removed.length };
  } finally {
    await lock.release();
  }
}

export async function switchTo(
  repo: Repository,
  target: SwitchTarget,
  options: SwitchOptions = {},
): Promise<SwitchResult> {
  repo.requireWorkTree('switch');
  const refs = new Refs(repo);
  const head = await refs.head();
  const previous = await summarize(repo, head.branch, head.id);
  const from = head.branch ? shortBranchName(head.branch) : (head.id ?? 'HEAD');
  let outcome: SwitchOutcome;
  let files = new Map<string, FileVersion>();
  let written = 0;
  let removed = 0;
  const move = async (to: ObjectId | undefined): Promise<void> => {
    const moved = await checkoutCommit(repo, head.id, to, options);
    files = moved.target;
    written = moved.written;
    removed = moved.removed;
  };
  /** The stopped-operation refusals of `options.stopped`; `rewritesIndex` false for a bare `checkout -b`. */
  const refuseWhileStopped = async (rewritesIndex = true): Promise<void> => {
    if (options.stopped === 'switch') {
      const operation = await operationInProgress(repo);
      if (operation) throw cannotSwitch(operation);
    } else if (options.stopped === 'checkout' && rewritesIndex && !options.force) {
      await refuseIfUnmerged(repo, 'checkout');
    }
  };

  switch (target.kind) {
    case 'branch': {
      const name = target.name === '-' ? await previousCheckout(repo) : target.name;
      const ref = branchRef(name);
      const id = ref ? await refs.read(ref) : undefined;
      if (ref !== undefined && ref === head.branch) {
        await refuseWhileStopped();
        outcome = 'already';
        // Forced, it still discards local changes, as Git's does.
        if (options.force) await move(head.id);
        else files = await flattenCommit(repo.objects, head.id);
        break;
      }
      if (!ref || !id) throw await notABranch(repo, name);
      await refuseWhileStopped();
      await move(id);
      await refs.setHeadBranch(ref, `checkout: moving from ${from} to ${name}`, head.id);
      outcome = 'switched';
      break;
    }
    case 'detach': {
      const id = await resolveCommit(repo, target.rev);
      await refuseWhileStopped();
      await move(id);
      await refs.setHeadDetached(id, `checkout: moving from ${from} to ${target.rev}`, head.id);
      outcome = 'detached';
      break;
    }
    case 'create': {
      assertBranchName(target.name);
      const ref = `${BRANCH_PREFIX}${target.name}`;
      const existing = await refs.read(ref);
      if (existing && !target.reset) throw branchExists(target.name);
      if (!existing) await assertNoRefConflict(refs, ref);
      const startLabel = target.start ?? 'HEAD';
      let start: ObjectId | undefined = head.id;
      if (target.start !== undefined) {
        try {
          start = await resolveCommit(repo, target.start);
        } catch (error) {
          if (error instanceof MediaGitError && error.code === 'UNKNOWN_REVISION') {
            throw new MediaGitError('INVALID_REFERENCE', `invalid reference: ${target.start}`, {
              kind: 'usage',
              data: { name: target.start },
            });
          }
          throw error;
        }
      }
      // Git's `checkout -b <new>` (no start point) leaves the index alone.
      await refuseWhileStopped(target.start !== undefined || target.reset === true);
      if (start === undefined) {
        // HEAD has no commits and no start point was given: the new branch is unborn too.
        if (existing) {
          throw new MediaGitError('NOT_AN_OBJECT', `not a valid object name: 'HEAD'`, {
            kind: 'usage',
          });
        }
        await refs.setHeadBranch(ref, `checkout: moving from ${from} to ${target.name}`);
        outcome = 'created';
        break;
      }
      await move(start);
      await refs.update(ref, start, {
        expected: existing ?? null,
        message: existing ? `branch: Reset to ${startLabel}` : `branch: Created from ${startLabel}`,
        logHead: true,
      });
      await refs.setHeadBranch(ref, `checkout: moving from ${from} to ${target.name}`, head.id);
      outcome = existing ? 'reset' : 'created';
      break;
    }
    case 'orphan': {
      assertBranchName(target.name);
      const ref = `${BRANCH_PREFIX}${target.name}`;
      if (await refs.read(ref)) throw branchExists(target.name);
      await assertNoRefConflict(refs, ref);
      await refuseWhileStopped();
      if (!target.keepFiles) await move(undefined);
      await refs.setHeadBranch(ref, `checkout: moving from ${from} to ${target.name}`);
      outcome = 'orphan';
      break;
    }
  }

  const cancelled = options.stopped === 'checkout' ? await endStopped(repo, options) : undefined;
  const after = await refs.head();
  const localChanges =
    options.reportLocalChanges === false ? [] : await localChangesAgainst(repo, files);
  return {
    outcome,
    previous,
    head: await summarize(repo, after.branch, after.id),
    localChanges,
    written,
    removed,
    cancelled,
  };
}

const SWITCHING_WHILE: Record<InProgress, string> = {
  merge: 'merging',
  rebase: 'rebasing',
  'cherry-pick': 'cherry-picking',
  revert: 'reverting',
};

/** Git's refusal of `switch` during an operation (MediaGit has no --quit: --abort, or conclude it). */
function cannotSwitch(operation: InProgress): MediaGitError {
  return new MediaGitError(
    'OPERATION_IN_PROGRESS',
    `cannot switch branch while ${SWITCHING_WHILE[operation]}\n` +
      `Consider "mediagit ${operation} --abort", or conclude it first.`,
    { kind: 'conflict', data: { operation } },
  );
}

/**
 * After a checkout: ends a stopped merge, cherry-pick or revert as Git does,
 * unless paths are still unmerged and the checkout left the index alone
 * (`checkout -b`); returns the operation ended.
 */
async function endStopped(
  repo: Repository,
  options: SwitchOptions,
): Promise<Operation | undefined> {
  const state = await readMergeState(repo);
  if (!state || (state.conflicts.length > 0 && !options.force)) return undefined;
  await clearMergeState(repo);
  return state.operation;
}
