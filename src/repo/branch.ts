/**
 * `branch`: list, create, delete and rename branches (refs/heads/*).
 *
 * Every change goes through Refs (compare-and-swap under the ref's lock, with
 * a reflog entry). Like Git, deleting refuses the checked-out branch, and
 * `-d` refuses a branch whose commits HEAD does not contain.
 */
import { MediaGitError } from '../errors.ts';
import type { ObjectId } from '../odb/object-id.ts';
import { globToRegExp } from './pathspec.ts';
import { assertBranchName, isValidRefName, Refs } from './refs.ts';
import type { Repository } from './repository.ts';
import { resolveCommit } from './revision.ts';
import { readCommit } from './tree-ops.ts';

export const BRANCH_PREFIX = 'refs/heads/';

export interface BranchInfo {
  readonly name: string;
  readonly id: ObjectId;
  readonly current: boolean;
  /** First line of the tip commit's message. */
  readonly subject: string;
}

export interface BranchList {
  /** The checked-out branch (it may have no commits yet), absent when HEAD is detached. */
  readonly current: string | undefined;
  readonly head: ObjectId | undefined;
  /** First line of HEAD's commit message. */
  readonly headSubject: string | undefined;
  readonly detached: boolean;
  readonly branches: BranchInfo[];
}

export function shortBranchName(ref: string): string {
  return ref.startsWith(BRANCH_PREFIX) ? ref.slice(BRANCH_PREFIX.length) : ref;
}

/** The full ref of a branch name, or undefined when the name cannot be a branch. */
export function branchRef(name: string): string | undefined {
  const ref = `${BRANCH_PREFIX}${name}`;
  return isValidRefName(ref) && !name.startsWith('-') ? ref : undefined;
}

export async function commitSubject(repo: Repository, id: ObjectId): Promise<string> {
  return (await readCommit(repo.objects, id)).message.split('\n')[0] ?? '';
}

export async function listBranches(
  repo: Repository,
  options: { patterns?: readonly string[] } = {},
): Promise<BranchList> {
  const refs = new Refs(repo);
  const head = await refs.head();
  const globs = (options.patterns ?? []).map(globToRegExp);
  const branches: BranchInfo[] = [];
  for (const { name: ref, id } of await refs.list(BRANCH_PREFIX)) {
    const name = shortBranchName(ref);
    if (globs.length > 0 && !globs.some((glob) => glob.test(name))) continue;
    branches.push({
      name,
      id,
      current: ref === head.branch,
      subject: await commitSubject(repo, id),
    });
  }
  return {
    current: head.branch === undefined ? undefined : shortBranchName(head.branch),
    head: head.id,
    headSubject: head.id === undefined ? undefined : await commitSubject(repo, head.id),
    detached: head.branch === undefined,
    branches,
  };
}

/** The remote-tracking branches (`origin/main`, from refs/remotes/), matching any pattern given. */
export async function listRemoteBranches(
  repo: Repository,
  patterns: readonly string[] = [],
): Promise<{ name: string; id: ObjectId; subject: string }[]> {
  const globs = patterns.map(globToRegExp);
  const out: { name: string; id: ObjectId; subject: string }[] = [];
  for (const { name: ref, id } of await new Refs(repo).list('refs/remotes/')) {
    const name = ref.slice('refs/remotes/'.length);
    if (globs.length > 0 && !globs.some((glob) => glob.test(name))) continue;
    out.push({ name, id, subject: await commitSubject(repo, id) });
  }
  return out;
}

/** The checked-out branch's name, even with no commits yet; undefined when detached. */
export async function currentBranch(repo: Repository): Promise<string | undefined> {
  const head = await new Refs(repo).head();
  return head.branch === undefined ? undefined : shortBranchName(head.branch);
}

export function branchExists(name: string): MediaGitError {
  return new MediaGitError('BRANCH_EXISTS', `a branch named '${name}' already exists`, {
    kind: 'usage',
    data: { branch: name },
  });
}

/**
 * Refuses a ref that would collide with an existing one as file and folder
 * (refs/heads/a and refs/heads/a/b cannot both exist), as Git does.
 */
export async function assertNoRefConflict(
  refs: Refs,
  ref: string,
  ignoring?: string,
): Promise<void> {
  for (const { name } of await refs.list(BRANCH_PREFIX)) {
    if (name === ignoring || name === ref) continue;
    if (ref.startsWith(`${name}/`) || name.startsWith(`${ref}/`)) {
      throw new MediaGitError(
        'REF_CONFLICT',
        `cannot lock ref '${ref}': '${name}' exists; cannot create '${ref}'`,
        { kind: 'usage', data: { ref, existing: name } },
      );
    }
  }
}

function checkedOutError(repo: Repository, name: string, verb: string): MediaGitError {
  return new MediaGitError(
    'BRANCH_CHECKED_OUT',
    `${verb} '${name}' checked out at '${repo.workTree ?? repo.gitDir}'`,
    { kind: 'usage', data: { branch: name } },
  );
}

export interface CreateBranchOptions {
  readonly name: string;
  /** Start point (any commit-ish); HEAD when absent. */
  readonly start?: string | undefined;
  /** Move the branch if it exists (`-f`). */
  readonly force?: boolean | undefined;
}

export interface CreateBranchResult {
  readonly name: string;
  readonly id: ObjectId;
  /** The branch existed and was moved. */
  readonly previous: ObjectId | undefined;
}

export async function createBranch(
  repo: Repository,
  options: CreateBranchOptions,
): Promise<CreateBranchResult> {
  assertBranchName(options.name);
  const refs = new Refs(repo);
  const ref = `${BRANCH_PREFIX}${options.name}`;
  const head = await refs.head();
  const existing = await refs.read(ref);
  if (existing && !options.force) throw branchExists(options.name);
  if (existing && head.branch === ref) {
    throw checkedOutError(repo, options.name, 'cannot force update the branch');
  }
  const startLabel = options.start ?? 'HEAD';
  let id: ObjectId | undefined;
  try {
    id = options.start === undefined ? head.id : await resolveCommit(repo, options.start);
  } catch (error) {
    if (!(error instanceof MediaGitError) || error.code !== 'UNKNOWN_REVISION') throw error;
  }
  if (id === undefined) {
    const what = options.start ?? shortBranchName(head.branch ?? 'HEAD');
    throw new MediaGitError('NOT_AN_OBJECT', `not a valid object name: '${what}'`, {
      kind: 'usage',
      data: { revision: what },
    });
  }
  if (!existing) await assertNoRefConflict(refs, ref);
  await refs.update(ref, id, {
    expected: existing ?? null,
    message: existing ? `branch: Reset to ${startLabel}` : `branch: Created from ${startLabel}`,
  });
  return { name: options.name, id, previous: existing };
}

export type DeleteOutcome = 'deleted' | 'not-found' | 'not-merged' | 'checked-out';

export interface DeleteBranchResult {
  readonly name: string;
  readonly outcome: DeleteOutcome;
  /** The tip the branch had (when it exists). */
  readonly id: ObjectId | undefined;
}

/**
 * Deletes each named branch that exists, is not checked out and (unless
 * `force`) is merged into HEAD; reports the others without stopping, as Git does.
 */
export async function deleteBranches(
  repo: Repository,
  options: { names: readonly string[]; force?: boolean | undefined },
): Promise<DeleteBranchResult[]> {
  const refs = new Refs(repo);
  const head = await refs.head();
  const results: DeleteBranchResult[] = [];
  for (const name of options.names) {
    const ref = branchRef(name);
    const id = ref ? await refs.read(ref) : undefined;
    if (ref !== undefined && ref === head.branch) {
      results.push({ name, outcome: 'checked-out', id });
    } else if (!ref || !id) {
      results.push({ name, outcome: 'not-found', id: undefined });
    } else if (
      !options.force &&
      (head.id === undefined || !(await isAncestor(repo, id, head.id)))
    ) {
      results.push({ name, outcome: 'not-merged', id });
    } else {
      await refs.update(ref, null, { expected: id, message: 'branch: deleted' });
      results.push({ name, outcome: 'deleted', id });
    }
  }
  return results;
}

export interface RenameBranchOptions {
  /** The branch to rename; the current one when absent. */
  readonly from?: string | undefined;
  readonly to: string;
  /** Replace an existing branch named `to` (`-M`). */
  readonly force?: boolean | undefined;
}

/**
 * Renames a branch with its reflog; HEAD follows when it is the current
 * branch (which may have no commits yet).
 */
export async function renameBranch(
  repo: Repository,
  options: RenameBranchOptions,
): Promise<{ from: string; to: string }> {
  const refs = new Refs(repo);
  const head = await refs.head();
  const from = options.from ?? (head.branch ? shortBranchName(head.branch) : undefined);
  if (from === undefined) {
    throw new MediaGitError('DETACHED_HEAD', 'cannot rename the current branch while not on any', {
      kind: 'usage',
    });
  }
  assertBranchName(options.to);
  const fromRef = branchRef(from);
  const toRef = `${BRANCH_PREFIX}${options.to}`;
  const id = fromRef ? await refs.read(fromRef) : undefined;
  const isCurrent = fromRef !== undefined && head.branch === fromRef;
  if (!fromRef || (!id && !isCurrent)) {
    throw new MediaGitError('NO_SUCH_BRANCH', `No branch named '${from}'.`, {
      kind: 'usage',
      data: { branch: from },
    });
  }
  if (fromRef === toRef) return { from, to: options.to };
  const existing = await refs.read(toRef);
  if (existing && !options.force) throw branchExists(options.to);
  if (existing && head.branch === toRef) {
    throw checkedOutError(repo, options.to, 'cannot force update the branch');
  }
  const message = `Branch: renamed ${fromRef} to ${toRef}`;
  if (id) {
    await assertNoRefConflict(refs, toRef, fromRef);
    await refs.renameLog(fromRef, toRef);
    try {
      await refs.update(toRef, id, { expected: existing ?? null, message });
    } catch (error) {
      await refs.renameLog(toRef, fromRef);
      throw error;
    }
    await refs.update(fromRef, null, { expected: id, message });
  }
  if (isCurrent) await refs.setHeadBranch(toRef, message, id);
  return { from, to: options.to };
}

/** Whether `ancestor` is `descendant` or reachable from it through parents. */
export async function isAncestor(
  repo: Repository,
  ancestor: ObjectId,
  descendant: ObjectId,
): Promise<boolean> {
  const seen = new Set<ObjectId>([descendant]);
  const queue = [descendant];
  while (queue.length > 0) {
    const id = queue.pop()!;
    if (id === ancestor) return true;
    for (const parent of (await readCommit(repo.objects, id)).parents) {
      if (!seen.has(parent)) {
        seen.add(parent);
        queue.push(parent);
      }
    }
  }
  return false;
}
