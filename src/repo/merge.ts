/**
 * `merge`: bring another commit's history into the current branch, as Git
 * does: nothing when it is already contained, a fast-forward when the current
 * commit is its ancestor (unless `--no-ff`), otherwise a three-way merge
 * against the merge base and a merge commit with two parents.
 *
 * What is implemented so far (docs/design.md, "Merge"): the path-level
 * three-way merge. A path changed on one side only, or the same way on both,
 * merges cleanly; anything else is one of the four conflict types
 * (ModifyModify, AddAdd, DeleteModify, ModifyDelete). Content-level merging
 * and the conflict state (markers, `--abort`, `--continue`) are not built
 * yet: a merge that would conflict is refused with the conflicting paths and
 * their types, and changes nothing. With several merge bases (criss-cross
 * history) the bases are first merged into a virtual base the same way, as
 * Git's ort strategy does; a conflict there is refused likewise.
 *
 * Order of effects: working tree and index first (refusing, unchanged, when a
 * local change would be lost), then objects, then HEAD's branch by
 * compare-and-swap with a reflog entry.
 */
import { MediaGitError } from '../errors.ts';
import { encodeCommit } from '../odb/commit.ts';
import type { ObjectId } from '../odb/object-id.ts';
import { shortBranchName } from './branch.ts';
import { signatureFor } from './commit.ts';
import { StagingIndex } from './index-file.ts';
import { isAncestor, mergeBases } from './merge-base.ts';
import { Refs } from './refs.ts';
import type { Repository } from './repository.ts';
import { resolveCommit } from './revision.ts';
import { flattenCommit, writeTreeFromFiles, type TreeFile } from './tree-ops.ts';
import { sameVersion, updateWorkTree, type WorkTreeUpdateOptions } from './worktree-update.ts';

export type ConflictType = 'ModifyModify' | 'AddAdd' | 'DeleteModify' | 'ModifyDelete';

export interface PathConflict {
  readonly path: string;
  readonly type: ConflictType;
}

export interface MergeOptions extends WorkTreeUpdateOptions {
  readonly rev: string;
  readonly noFastForward?: boolean | undefined;
  readonly fastForwardOnly?: boolean | undefined;
  readonly message?: string | undefined;
}

export interface MergeResult {
  readonly outcome: 'up-to-date' | 'fast-forward' | 'merged';
  readonly from: ObjectId | undefined;
  readonly to: ObjectId;
  readonly bases: readonly ObjectId[];
}

type Files = ReadonlyMap<string, TreeFile>;

export async function merge(repo: Repository, options: MergeOptions): Promise<MergeResult> {
  repo.requireWorkTree('merge');
  const refs = new Refs(repo);
  const head = await refs.head();
  const theirs = await resolveCommit(repo, options.rev);
  if (head.id !== undefined && (await isAncestor(repo, theirs, head.id))) {
    return { outcome: 'up-to-date', from: head.id, to: head.id, bases: [theirs] };
  }
  const bases = head.id === undefined ? [] : await mergeBases(repo, head.id, theirs);
  const fastForward = head.id === undefined || bases.includes(head.id);
  if (!fastForward && options.fastForwardOnly) {
    throw new MediaGitError('NOT_FAST_FORWARD', 'Not possible to fast-forward, aborting.', {
      kind: 'conflict',
    });
  }
  if (!fastForward && bases.length === 0) {
    throw new MediaGitError('UNRELATED_HISTORIES', 'refusing to merge unrelated histories', {
      kind: 'conflict',
      data: { rev: options.rev },
    });
  }

  const ours = await flattenCommit(repo.objects, head.id);
  let target: Files;
  let commitId: ObjectId;
  const lock = await StagingIndex.lock(repo.gitDir);
  try {
    const index = await StagingIndex.load(repo.gitDir);
    if (fastForward && !options.noFastForward) {
      target = await flattenCommit(repo.objects, theirs);
      await updateWorkTree(repo, index, ours, target, options);
      await index.save(lock);
      await refs.updateHead(theirs, `merge ${options.rev}: Fast-forward`, head.id ?? null);
      return { outcome: 'fast-forward', from: head.id, to: theirs, bases };
    }
    const base = await baseFiles(repo, bases);
    const merged = mergeFiles(base, ours, await flattenCommit(repo.objects, theirs));
    if (merged.conflicts.length > 0) throw conflictsNotSupported(merged.conflicts);
    target = merged.files;
    await updateWorkTree(repo, index, ours, target, options);
    const tree = await writeTreeFromFiles(repo.objects, index.entries.values());
    const signature = signatureFor(repo);
    let message = options.message ?? (await defaultMessage(repo, options.rev, head.branch));
    if (!message.endsWith('\n')) message += '\n';
    commitId = (
      await repo.objects.write(
        'commit',
        encodeCommit({
          tree,
          parents: [head.id!, theirs],
          author: signature,
          committer: signature,
          message,
        }),
        'text',
      )
    ).id;
    await repo.objects.flush();
    await index.save(lock);
  } finally {
    await lock.release();
  }
  await refs.updateHead(
    commitId,
    `merge ${options.rev}: Merge made by the 'ort' strategy.`,
    head.id ?? null,
  );
  return { outcome: 'merged', from: head.id, to: commitId, bases };
}

/**
 * The files of the merge base: none without one; with several (criss-cross),
 * their own merge, recursively, as a virtual base.
 */
async function baseFiles(repo: Repository, bases: readonly ObjectId[]): Promise<Files> {
  let files: Files = await flattenCommit(repo.objects, bases[0]);
  let commits = [bases[0]!];
  for (const next of bases.slice(1)) {
    const below = await mergeBases(repo, commits[0]!, next);
    const merged = mergeFiles(
      await baseFiles(repo, below),
      files,
      await flattenCommit(repo.objects, next),
    );
    if (merged.conflicts.length > 0) throw conflictsNotSupported(merged.conflicts, 'virtual base');
    files = merged.files;
    commits = [next];
  }
  return files;
}

/**
 * The path-level three-way merge: a path the two sides agree on, or that only
 * one side changed, takes that version; every other path is a conflict.
 */
export function mergeFiles(
  base: Files,
  ours: Files,
  theirs: Files,
): { files: Map<string, TreeFile>; conflicts: PathConflict[] } {
  const files = new Map<string, TreeFile>();
  const conflicts: PathConflict[] = [];
  const paths = new Set([...base.keys(), ...ours.keys(), ...theirs.keys()]);
  for (const p of [...paths].sort()) {
    const b = base.get(p);
    const o = ours.get(p);
    const t = theirs.get(p);
    let result: TreeFile | undefined;
    if (sameVersion(o, t)) result = o;
    else if (sameVersion(b, o)) result = t;
    else if (sameVersion(b, t)) result = o;
    else {
      const type: ConflictType =
        b === undefined
          ? 'AddAdd'
          : o === undefined
            ? 'DeleteModify'
            : t === undefined
              ? 'ModifyDelete'
              : 'ModifyModify';
      conflicts.push({ path: p, type });
      continue;
    }
    if (result) files.set(p, result);
  }
  // A file on one side where the other now has a folder.
  for (const p of files.keys()) {
    for (let at = p.indexOf('/'); at >= 0; at = p.indexOf('/', at + 1)) {
      const parent = p.slice(0, at);
      if (files.has(parent)) conflicts.push({ path: parent, type: 'AddAdd' });
    }
  }
  return { files, conflicts };
}

function conflictsNotSupported(conflicts: readonly PathConflict[], where?: string): MediaGitError {
  const list = conflicts.map((c) => `CONFLICT (${c.type}): ${c.path}`).join('\n');
  return new MediaGitError(
    'MERGE_CONFLICT_UNSUPPORTED',
    `${list}\nmerge: these paths conflict${where ? ` in the ${where}` : ''}; content merging and ` +
      'conflict resolution are not implemented yet, so nothing was changed',
    { kind: 'user', data: { conflicts: [...conflicts], exitCode: 1 } },
  );
}

/** Git's default message: "Merge branch 'x'" (plus " into y" off main/master). */
async function defaultMessage(
  repo: Repository,
  rev: string,
  current: string | undefined,
): Promise<string> {
  const refs = new Refs(repo);
  let what = `commit '${rev}'`;
  if ((await refs.read(`refs/heads/${rev}`)) !== undefined) what = `branch '${rev}'`;
  else if ((await refs.read(`refs/tags/${rev}`)) !== undefined) what = `tag '${rev}'`;
  const branch = current === undefined ? undefined : shortBranchName(current);
  const into =
    branch === undefined || branch === 'main' || branch === 'master' ? '' : ` into ${branch}`;
  return `Merge ${what}${into}`;
}
