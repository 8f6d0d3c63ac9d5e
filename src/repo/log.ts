/**
 * `log`: the commits reachable from some revisions, newest first.
 *
 * The walk is Git's default order: a priority queue on committer time (ties
 * in the order commits were reached), every parent followed, each commit
 * listed once. `a..b` and `^a` exclude everything reachable from `a`. With
 * paths, history is simplified as Git does by default: a commit whose tree
 * matches a parent's under the paths is hidden and only that parent is
 * followed. Entries are produced lazily so the CLI can print a long history
 * as it is walked.
 */
import { MediaGitError } from '../errors.ts';
import { decodeTag, type Commit } from '../odb/commit.ts';
import type { ObjectId } from '../odb/object-id.ts';
import { diffTrees, treesEqualUnder, type DiffDetail, type FileDiff } from './diff.ts';
import type { Pathspec } from './pathspec.ts';
import { Refs } from './refs.ts';
import type { Repository } from './repository.ts';
import { resolveCommit } from './revision.ts';
import { readCommit } from './tree-ops.ts';
import { CommitQueue } from './commit-queue.ts';

export interface LogOptions {
  /** Starting revisions (default HEAD); "a..b" and "^a" exclude what `a` reaches. */
  readonly revisions?: readonly string[];
  readonly maxCount?: number | undefined;
  /** Only commits that change these paths (see `parseDiffPaths`). */
  readonly pathspecs?: readonly Pathspec[];
  /** Compute each commit's changed files against its first parent (none for merges). */
  readonly files?: DiffDetail | undefined;
  /** Context lines in patches (default 3). */
  readonly context?: number;
  /** Only commits whose author ("Name <email>") matches (`--author`). */
  readonly author?: RegExp | undefined;
  /** Only commits whose message matches (`--grep`). */
  readonly grep?: RegExp | undefined;
  /** Only commits committed at or after / at or before these times, seconds (`--since`, `--until`). */
  readonly since?: number | undefined;
  readonly until?: number | undefined;
  readonly signal?: AbortSignal | undefined;
}

export interface LogEntry {
  readonly id: ObjectId;
  readonly commit: Commit;
  /** Present when `files` was requested. */
  readonly files?: FileDiff[];
}

/** A ref naming a commit, for `(HEAD -> main, tag: v1)` decorations. */
export interface RefDecoration {
  readonly kind: 'head' | 'branch' | 'remote' | 'tag';
  /** Short name: "main", "origin/main", "v1", "HEAD". */
  readonly name: string;
  /** For the HEAD decoration: the branch it points at, if any. */
  readonly branch?: string;
}

export function unbornBranch(branch: string | undefined): MediaGitError {
  const name = (branch ?? 'HEAD').replace(/^refs\/heads\//, '');
  return new MediaGitError(
    'UNBORN_BRANCH',
    `your current branch '${name}' does not have any commits yet`,
    { kind: 'usage', data: { branch: name } },
  );
}

async function excludedCommits(repo: Repository, tips: ObjectId[]): Promise<Set<ObjectId>> {
  const seen = new Set<ObjectId>();
  const stack = [...tips];
  while (stack.length > 0) {
    const id = stack.pop()!;
    if (seen.has(id)) continue;
    seen.add(id);
    stack.push(...(await readCommit(repo.objects, id)).parents);
  }
  return seen;
}

/** Splits revisions into starting points and exclusions ("a..b" = "^a b"). */
async function startingPoints(
  repo: Repository,
  revisions: readonly string[],
): Promise<{ include: ObjectId[]; exclude: ObjectId[] }> {
  const include: ObjectId[] = [];
  const exclude: ObjectId[] = [];
  for (const rev of revisions) {
    const range = /^(.*?)\.\.(?!\.)(.*)$/.exec(rev);
    if (range && !rev.includes('...')) {
      exclude.push(await resolveCommit(repo, range[1] || 'HEAD'));
      include.push(await resolveCommit(repo, range[2] || 'HEAD'));
    } else if (rev.startsWith('^')) {
      exclude.push(await resolveCommit(repo, rev.slice(1)));
    } else {
      include.push(await resolveCommit(repo, rev));
    }
  }
  return { include, exclude };
}

export async function* log(repo: Repository, options: LogOptions = {}): AsyncGenerator<LogEntry> {
  const store = repo.objects;
  let revisions = options.revisions ?? [];
  if (revisions.length === 0) {
    const head = await new Refs(repo).head();
    if (!head.id) throw unbornBranch(head.branch);
    revisions = ['HEAD'];
  }
  const { include, exclude } = await startingPoints(repo, revisions);
  const hidden = await excludedCommits(repo, exclude);
  const pathspecs = options.pathspecs ?? [];
  const queue = new CommitQueue();
  const queued = new Set<ObjectId>();
  const enqueue = async (id: ObjectId): Promise<void> => {
    if (queued.has(id) || hidden.has(id)) return;
    queued.add(id);
    queue.push(id, await readCommit(store, id));
  };
  for (const id of include) await enqueue(id);
  let shown = 0;
  const limit = options.maxCount ?? Infinity;
  while (queue.size > 0 && shown < limit) {
    options.signal?.throwIfAborted();
    const { id, commit } = queue.pop()!;
    let parents = commit.parents;
    let visible = true;
    if (pathspecs.length > 0) {
      // Git's default simplification: follow the first parent that is the same
      // under the paths, and hide the commit; a root shows if it has any such path.
      let sameParent: ObjectId | undefined;
      for (const parent of parents) {
        const parentTree = (await readCommit(store, parent)).tree;
        if (await treesEqualUnder(repo, parentTree, commit.tree, pathspecs)) {
          sameParent = parent;
          break;
        }
      }
      if (sameParent !== undefined) {
        parents = [sameParent];
        visible = false;
      } else if (parents.length === 0) {
        visible = !(await treesEqualUnder(repo, undefined, commit.tree, pathspecs));
      }
    }
    for (const parent of parents) await enqueue(parent);
    if (!visible || !passesFilters(commit, options)) continue;
    shown++;
    if (options.files === undefined) {
      yield { id, commit };
      continue;
    }
    let files: FileDiff[] = [];
    if (commit.parents.length <= 1) {
      const parentTree = commit.parents[0]
        ? (await readCommit(store, commit.parents[0])).tree
        : undefined;
      files = await diffTrees(repo, parentTree, commit.tree, {
        detail: options.files,
        context: options.context ?? 3,
        pathspecs,
        signal: options.signal,
      });
    }
    yield { id, commit, files };
  }
}

/** `--author`, `--grep`, `--since` and `--until`, as Git applies them (before `-n`). */
function passesFilters(commit: Commit, options: LogOptions): boolean {
  if (options.author && !options.author.test(`${commit.author.name} <${commit.author.email}>`)) {
    return false;
  }
  if (options.grep && !options.grep.test(commit.message)) return false;
  if (options.since !== undefined && commit.committer.time < options.since) return false;
  if (options.until !== undefined && commit.committer.time > options.until) return false;
  return true;
}

/**
 * Which refs point at each commit: HEAD, branches and tags (annotated tags
 * peeled to their commit), in the order Git prints them: HEAD first, then
 * the rest by full ref name, descending.
 */
export async function refDecorations(repo: Repository): Promise<Map<ObjectId, RefDecoration[]>> {
  const refs = new Refs(repo);
  const out = new Map<ObjectId, RefDecoration[]>();
  const add = (id: ObjectId, decoration: RefDecoration): void => {
    out.set(id, [...(out.get(id) ?? []), decoration]);
  };
  const head = await refs.head();
  if (head.id) {
    const branch = head.branch?.replace(/^refs\/heads\//, '');
    add(
      head.id,
      branch === undefined
        ? { kind: 'head', name: 'HEAD' }
        : { kind: 'head', name: 'HEAD', branch },
    );
  }
  const named = [
    ...(await refs.list('refs/heads/')),
    ...(await refs.list('refs/remotes/')),
    ...(await refs.list('refs/tags/')),
  ].sort((a, b) => (a.name < b.name ? 1 : a.name > b.name ? -1 : 0));
  for (const ref of named) {
    if (ref.name.startsWith('refs/heads/')) {
      add(ref.id, { kind: 'branch', name: ref.name.slice('refs/heads/'.length) });
      continue;
    }
    if (ref.name.startsWith('refs/remotes/')) {
      add(ref.id, { kind: 'remote', name: ref.name.slice('refs/remotes/'.length) });
      continue;
    }
    let id = ref.id;
    for (let depth = 0; depth < 10; depth++) {
      const object = await repo.objects.read(id).catch(() => undefined);
      if (object?.type !== 'tag') break;
      id = decodeTag(id, object.data).object;
    }
    add(id, { kind: 'tag', name: ref.name.slice('refs/tags/'.length) });
  }
  return out;
}
