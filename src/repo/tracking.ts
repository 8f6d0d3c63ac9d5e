/**
 * A branch against its upstream, as Git reports it in `status` and
 * `branch -v`: the remote-tracking branch it follows, and how many commits
 * each side has that the other lacks (ahead / behind).
 */
import type { ObjectId } from '../odb/object-id.ts';
import { Refs } from './refs.ts';
import { readUpstream } from './remote.ts';
import type { Repository } from './repository.ts';
import { CommitQueue } from './commit-queue.ts';
import { readCommit } from './tree-ops.ts';

export interface Tracking {
  /** The remote-tracking branch, short (`origin/main`). */
  readonly upstream: string;
  /** False when the upstream is configured but its ref is missing (`[gone]`). */
  readonly exists: boolean;
  readonly ahead: number;
  readonly behind: number;
}

/** How `branch` (short name) stands against its upstream; undefined when it has none. */
export async function trackingOf(repo: Repository, branch: string): Promise<Tracking | undefined> {
  const upstream = await readUpstream(repo, branch);
  if (!upstream || !upstream.merge.startsWith('refs/heads/')) return undefined;
  const remoteBranch = upstream.merge.slice('refs/heads/'.length);
  const short = `${upstream.remote}/${remoteBranch}`;
  const refs = new Refs(repo);
  const theirs = await refs.read(`refs/remotes/${short}`);
  const ours = await refs.read(`refs/heads/${branch}`);
  if (theirs === undefined) return { upstream: short, exists: false, ahead: 0, behind: 0 };
  if (ours === undefined) return { upstream: short, exists: true, ahead: 0, behind: 0 };
  const { ahead, behind } = await aheadBehind(repo, ours, theirs);
  return { upstream: short, exists: true, ahead, behind };
}

/**
 * Commits reachable from `a` and not from `b` (ahead), and the reverse
 * (behind). Both histories are walked together, newest first, and the walk
 * stops once every commit still queued is reachable from both sides.
 */
export async function aheadBehind(
  repo: Repository,
  a: ObjectId,
  b: ObjectId,
): Promise<{ ahead: number; behind: number }> {
  if (a === b) return { ahead: 0, behind: 0 };
  const FROM_A = 1;
  const FROM_B = 2;
  const BOTH = FROM_A | FROM_B;
  const marks = new Map<ObjectId, number>();
  const queue = new CommitQueue();
  /** Queue entries pushed while their commit was reached from one side only. */
  const partial = new Map<ObjectId, number>();
  let pending = 0;
  const visit = async (id: ObjectId, mark: number): Promise<void> => {
    const before = marks.get(id) ?? 0;
    const now = before | mark;
    if (now === before) return;
    marks.set(id, now);
    // A commit missing here (a shallow boundary) counts, with nothing above it.
    const commit = await readCommit(repo.objects, id).catch(() => undefined);
    if (!commit) return;
    queue.push(id, commit);
    if (now !== BOTH) {
      partial.set(id, (partial.get(id) ?? 0) + 1);
      pending++;
    }
  };
  await visit(a, FROM_A);
  await visit(b, FROM_B);
  // Newest first (Git's rule); done when every queued commit both sides reach.
  while (pending > 0) {
    const { id, commit } = queue.pop()!;
    const count = partial.get(id) ?? 0;
    if (count > 0) {
      partial.set(id, count - 1);
      pending--;
    }
    const mark = marks.get(id)!;
    for (const parent of commit.parents) await visit(parent, mark);
  }
  let ahead = 0;
  let behind = 0;
  for (const mark of marks.values()) {
    if (mark === FROM_A) ahead++;
    else if (mark === FROM_B) behind++;
  }
  return { ahead, behind };
}

/** Git's words for it: `ahead 1, behind 2`, or undefined when level. */
export function aheadBehindText(tracking: Tracking): string | undefined {
  if (!tracking.exists) return 'gone';
  const parts: string[] = [];
  if (tracking.ahead > 0) parts.push(`ahead ${tracking.ahead}`);
  if (tracking.behind > 0) parts.push(`behind ${tracking.behind}`);
  return parts.length > 0 ? parts.join(', ') : undefined;
}
