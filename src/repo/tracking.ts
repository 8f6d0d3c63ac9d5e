/**
 * A branch against its upstream, as Git reports it in `status` and
 * `branch -v`: the remote-tracking branch it follows, and how many commits
 * each side has that the other lacks (ahead / behind).
 */
import type { ObjectId } from '../odb/object-id.ts';
import { Refs } from './refs.ts';
import { readUpstream } from './remote.ts';
import type { Repository } from './repository.ts';
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
  const marks = new Map<ObjectId, number>();
  const times = new Map<ObjectId, number>();
  const queue = new NewestFirst((id) => times.get(id) ?? 0);
  const parentsOf = new Map<ObjectId, readonly ObjectId[]>();
  /** Queued commits not yet reached from both sides: the walk ends at none. */
  let pending = 0;
  const visit = async (id: ObjectId, mark: number): Promise<void> => {
    const before = marks.get(id) ?? 0;
    if ((before | mark) === before) return;
    marks.set(id, before | mark);
    if (!times.has(id)) {
      const commit = await readCommit(repo.objects, id).catch(() => undefined);
      times.set(id, commit?.committer.time ?? 0);
      parentsOf.set(id, commit?.parents ?? []);
    }
    queue.push({ id, mark: before | mark });
    if ((before | mark) !== (FROM_A | FROM_B)) pending++;
  };
  await visit(a, FROM_A);
  await visit(b, FROM_B);
  // Newest first (Git's rule); done when every queued commit both sides reach.
  while (pending > 0) {
    const { id, mark } = queue.pop()!;
    if (mark !== (FROM_A | FROM_B)) pending--;
    for (const parent of parentsOf.get(id) ?? []) await visit(parent, mark);
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

/** A binary heap of queued commits, the newest on top. */
class NewestFirst {
  readonly #items: { id: ObjectId; mark: number }[] = [];
  readonly #time: (id: ObjectId) => number;

  constructor(time: (id: ObjectId) => number) {
    this.#time = time;
  }

  push(item: { id: ObjectId; mark: number }): void {
    const items = this.#items;
    items.push(item);
    for (let i = items.length - 1; i > 0;) {
      const up = (i - 1) >> 1;
      if (this.#time(items[up]!.id) >= this.#time(items[i]!.id)) break;
      [items[up], items[i]] = [items[i]!, items[up]!];
      i = up;
    }
  }

  pop(): { id: ObjectId; mark: number } | undefined {
    const items = this.#items;
    const top = items[0];
    const last = items.pop();
    if (items.length > 0 && last) {
      items[0] = last;
      for (let i = 0; ;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let best = i;
        if (l < items.length && this.#time(items[l]!.id) > this.#time(items[best]!.id)) best = l;
        if (r < items.length && this.#time(items[r]!.id) > this.#time(items[best]!.id)) best = r;
        if (best === i) break;
        [items[best], items[i]] = [items[i]!, items[best]!];
        i = best;
      }
    }
    return top;
  }
}
