/**
 * Lockable files go read-only again once a push has published their change
 * (docs/locks.md): the edit the lock protected is on the server, and the
 * next edit starts with `mediagit lock` again (idempotent while the lock is
 * still held), as a Perforce submit closes a `+l` file.
 */
import { diffTrees } from './diff.ts';
import { lockableMatcher, lockablePatterns, makeReadOnly } from './lockable.ts';
import type { ObjectId } from '../odb/object-id.ts';
import { readCommit } from './tree-ops.ts';
import { Refs } from './refs.ts';
import type { Repository } from './repository.ts';
import { status } from './status.ts';
import { absolutePath } from './worktree.ts';

export interface PublishedUpdate {
  /** The remote branch's commit before the push (null: a new branch). */
  readonly old: ObjectId | null;
  readonly new: ObjectId;
}

/**
 * Makes read-only the lockable files that `updates` changed, when the push
 * published the checked-out commit and the file is unchanged since (it
 * matches the index, and the index matches HEAD). Returns their paths.
 */
export async function readOnlyAfterPush(
  repo: Repository,
  updates: readonly PublishedUpdate[],
): Promise<string[]> {
  if (repo.bare) return [];
  const matcher = lockableMatcher(lockablePatterns(repo));
  if (!matcher) return [];
  const head = await new Refs(repo).head();
  const candidates = new Set<string>();
  for (const update of updates) {
    if (head.id === undefined || update.new !== head.id) continue;
    const oldTree = update.old === null ? undefined : await treeOf(repo, update.old);
    if (update.old !== null && oldTree === undefined) continue; // not here: cannot tell
    const changes = await diffTrees(repo, oldTree, await treeOf(repo, update.new), {
      detail: 'names',
      renames: false,
    });
    for (const change of changes) {
      if (change.new !== undefined && matcher(change.path)) candidates.add(change.path);
    }
  }
  if (candidates.size === 0) return [];
  const now = await status(repo, { untracked: false });
  for (const change of [...now.staged, ...now.unstaged, ...now.unmerged]) {
    candidates.delete(change.path);
  }
  const workTree = repo.requireWorkTree('push');
  const paths = [...candidates].sort();
  await makeReadOnly(paths.map((p) => absolutePath(workTree, p)));
  return paths;
}

async function treeOf(repo: Repository, commit: ObjectId): Promise<ObjectId | undefined> {
  if (!(await repo.objects.has(commit))) return undefined;
  return (await readCommit(repo.objects, commit)).tree;
}
