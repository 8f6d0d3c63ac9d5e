/**
 * Merge bases: the best common ancestors of two commits, as `git merge-base
 * --all` finds them. Both histories are walked newest first (by committer
 * time), painting each commit with the side(s) it is reachable from; a commit
 * reached from both is a candidate and everything below it is stale. Then
 * candidates that are ancestors of other candidates are dropped, leaving the
 * lowest common ancestors (more than one in a criss-cross history).
 */
import type { ObjectId } from '../odb/object-id.ts';
import type { Repository } from './repository.ts';
import { readCommit } from './tree-ops.ts';

const SIDE1 = 1;
const SIDE2 = 2;
const STALE = 4;

interface Node {
  readonly id: ObjectId;
  readonly time: number;
  readonly parents: readonly ObjectId[];
}

class CommitGraph {
  readonly #repo: Repository;
  readonly #nodes = new Map<ObjectId, Promise<Node>>();

  constructor(repo: Repository) {
    this.#repo = repo;
  }

  node(id: ObjectId): Promise<Node> {
    let node = this.#nodes.get(id);
    if (!node) {
      node = readCommit(this.#repo.objects, id).then((commit) => ({
        id,
        time: commit.committer.time,
        parents: commit.parents,
      }));
      this.#nodes.set(id, node);
    }
    return node;
  }
}

/** Every lowest common ancestor of `a` and `b` (empty when they share no history). */
export async function mergeBases(repo: Repository, a: ObjectId, b: ObjectId): Promise<ObjectId[]> {
  if (a === b) return [a];
  const graph = new CommitGraph(repo);
  const candidates = await paintDownToCommon(graph, a, [b]);
  return removeRedundant(repo, graph, candidates);
}

/** Whether `ancestor` is reachable from `descendant` (a commit is its own ancestor). */
export async function isAncestor(
  repo: Repository,
  ancestor: ObjectId,
  descendant: ObjectId,
  graph = new CommitGraph(repo),
): Promise<boolean> {
  if (ancestor === descendant) return true;
  const floor = (await graph.node(ancestor)).time;
  const seen = new Set<ObjectId>([descendant]);
  const queue = [descendant];
  while (queue.length > 0) {
    const node = await graph.node(queue.pop()!);
    for (const parent of node.parents) {
      if (parent === ancestor) return true;
      if (seen.has(parent)) continue;
      seen.add(parent);
      // Clock skew aside, an ancestor is never newer than its descendants;
      // Git prunes the same way (with a day of slack).
      if ((await graph.node(parent)).time >= floor - 86_400) queue.push(parent);
    }
  }
  return false;
}

async function paintDownToCommon(
  graph: CommitGraph,
  one: ObjectId,
  twos: readonly ObjectId[],
): Promise<ObjectId[]> {
  const flags = new Map<ObjectId, number>();
  const queue: Node[] = [];
  const push = async (id: ObjectId, flag: number): Promise<void> => {
    const had = flags.get(id) ?? 0;
    if ((had & flag) === flag) return;
    flags.set(id, had | flag);
    queue.push(await graph.node(id));
  };
  await push(one, SIDE1);
  for (const two of twos) await push(two, SIDE2);
  const result: ObjectId[] = [];
  // Newest first; ties by ID so the walk is deterministic.
  const newest = (): Node => {
    let best = 0;
    for (let i = 1; i < queue.length; i++) {
      const q = queue[i]!;
      const b = queue[best]!;
      if (q.time > b.time || (q.time === b.time && q.id > b.id)) best = i;
    }
    return queue.splice(best, 1)[0]!;
  };
  while (queue.some((node) => !((flags.get(node.id) ?? 0) & STALE))) {
    const node = newest();
    let flag = flags.get(node.id)! & (SIDE1 | SIDE2 | STALE);
    if (flag === (SIDE1 | SIDE2)) {
      if (!result.includes(node.id)) result.push(node.id);
      // Everything below a common ancestor is stale.
      flag |= STALE;
    }
    for (const parent of node.parents) await push(parent, flag);
  }
  // A candidate later reached through another one's ancestry is not lowest.
  return result.filter((id) => !((flags.get(id) ?? 0) & STALE));
}

/** Drops candidates that are ancestors of another candidate; newest first, as Git lists them. */
async function removeRedundant(
  repo: Repository,
  graph: CommitGraph,
  candidates: ObjectId[],
): Promise<ObjectId[]> {
  const keep: ObjectId[] = [];
  for (const candidate of candidates) {
    let redundant = false;
    for (const other of candidates) {
      if (other !== candidate && (await isAncestor(repo, candidate, other, graph))) {
        redundant = true;
        break;
      }
    }
    if (!redundant) keep.push(candidate);
  }
  const nodes = await Promise.all(keep.map((id) => graph.node(id)));
  nodes.sort((x, y) => y.time - x.time || (x.id < y.id ? -1 : 1));
  return nodes.map((node) => node.id);
}
