/**
 * `cherry-pick` and `revert`: apply one commit's change (or its inverse) to
 * HEAD with the three-way merge of merge.ts, as Git does: a cherry-pick of C
 * merges C into HEAD against C's parent as the base and keeps C's author and
 * message; a revert of C merges C's parent against C itself, with the message
 * `Revert "<subject>"`. A conflict stops with the same state as a merge
 * (CHERRY_PICK_HEAD or REVERT_HEAD instead of MERGE_HEAD); `commit` or
 * `--continue` concludes it and `--abort` returns to ORIG_HEAD. While any
 * operation is stopped, another pick is refused, writing nothing
 * (`refuseWhileStopped`).
 */
import { MediaGitError } from '../errors.ts';
import type { Signature } from '../odb/commit.ts';
import type { ObjectId } from '../odb/object-id.ts';
import { writeCommit } from './commit.ts';
import { StagingIndex } from './index-file.ts';
import {
  mergeFiles,
  mergeStopped,
  refuseWhileStopped,
  resolveContent,
  withNewline,
} from './merge.ts';
import { writeMergeState, type Operation } from './merge-state.ts';
import { Refs } from './refs.ts';
import type { Repository } from './repository.ts';
import { resolveCommit, shortId } from './revision.ts';
import { flattenCommit, readCommit, writeTreeFromFiles } from './tree-ops.ts';
import { updateWorkTree, type WorkTreeUpdateOptions } from './worktree-update.ts';
import { absolutePath } from './worktree.ts';

export interface PickOptions extends WorkTreeUpdateOptions {
  readonly rev: string;
  /** Apply to the index and working tree only, without committing (`-n`). */
  readonly noCommit?: boolean | undefined;
  /** Whether media-aware strategies may merge files (`-X media=off`: false). */
  readonly media?: boolean | undefined;
}

export interface PickResult {
  /** The new commit, or undefined with `noCommit`. */
  readonly id: ObjectId | undefined;
  readonly subject: string;
}

export function cherryPick(repo: Repository, options: PickOptions): Promise<PickResult> {
  return apply(repo, 'cherry-pick', options);
}

export function revert(repo: Repository, options: PickOptions): Promise<PickResult> {
  return apply(repo, 'revert', options);
}

async function apply(
  repo: Repository,
  operation: Exclude<Operation, 'merge'>,
  options: PickOptions,
): Promise<PickResult> {
  const workTree = repo.requireWorkTree(operation);
  const refs = new Refs(repo);
  const head = await refs.head();
  if (!head.id) {
    throw new MediaGitError('UNBORN_HEAD', `cannot ${operation} onto an empty branch`, {
      kind: 'conflict',
    });
  }
  const picked = await resolveCommit(repo, options.rev);
  // After the revision, as Git parses it before looking at the index.
  await refuseWhileStopped(repo, operation, options.noCommit === true);
  const commit = await readCommit(repo.objects, picked);
  if (commit.parents.length > 1) {
    throw new MediaGitError(
      'PICK_MERGE_COMMIT',
      `commit ${picked} is a merge but no -m option was given.`,
      { kind: 'conflict' },
    );
  }
  const parent = commit.parents[0];
  const subject = commit.message.split('\n')[0] ?? '';
  const label = `${shortId(picked)} (${subject})`;
  // Cherry-pick: base = parent, theirs = the commit. Revert: the other way round.
  const [baseId, theirsId, theirsLabel] =
    operation === 'cherry-pick' ? [parent, picked, label] : [picked, parent, `parent of ${label}`];
  const message = withNewline(
    operation === 'cherry-pick'
      ? commit.message
      : `Revert "${subject}"\n\nThis reverts commit ${picked}.\n`,
  );
  const author: Signature | undefined = operation === 'cherry-pick' ? commit.author : undefined;

  const ours = await flattenCommit(repo.objects, head.id);
  const base = await flattenCommit(repo.objects, baseId);
  const theirs = await flattenCommit(repo.objects, theirsId);
  let id: ObjectId | undefined;
  const lock = await StagingIndex.lock(repo.gitDir);
  try {
    const index = await StagingIndex.load(repo.gitDir);
    const merged = mergeFiles(base, ours, theirs);
    const stopped = await resolveContent(
      repo,
      merged,
      { base, ours, theirs },
      theirsLabel,
      options.media !== false,
    );
    await updateWorkTree(repo, index, ours, merged.files, options);
    if (stopped.conflicts.length > 0) {
      for (const [p, write] of stopped.workFiles) await write(absolutePath(workTree, p));
      await index.save(lock);
      await writeMergeState(repo, {
        operation,
        theirs: picked,
        author,
        origHead: head.id,
        message,
        conflicts: stopped.conflicts,
      });
      throw mergeStopped(stopped.conflicts, theirsLabel);
    }
    if (!options.noCommit) {
      const tree = await writeTreeFromFiles(repo.objects, index.entries.values());
      id = await writeCommit(repo, tree, [head.id], message, author);
    }
    await index.save(lock);
  } finally {
    await lock.release();
  }
  if (id !== undefined) {
    await refs.updateHead(id, `${operation}: ${message.split('\n')[0] ?? ''}`, head.id);
  }
  return { id, subject: message.split('\n')[0] ?? '' };
}
