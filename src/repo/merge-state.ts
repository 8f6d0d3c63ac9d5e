/**
 * The state of a merge that stopped on conflicts, kept in the repository
 * folder as Git keeps it (docs/format.md, "Merge state"):
 *
 *   MERGE_HEAD       the commit being merged (CHERRY_PICK_HEAD or REVERT_HEAD
 *                    for a cherry-pick or revert that stopped the same way)
 *   ORIG_HEAD        HEAD before the merge (what --abort returns to)
 *   MERGE_MSG        the message the merge commit will get
 *   MERGE_CONFLICTS  JSON: each unresolved path, its conflict type and the
 *                    base, ours and theirs versions (absent when that side
 *                    has no such file)
 *
 * The index holds "ours" for a conflicted path (nothing when we deleted it);
 * resolving is `add` (or `rm`) of the path, which removes it from the list.
 * Every file is written atomically.
 *
 * While paths are unmerged, the verbs that would record, move or set aside
 * the index refuse as Git does, changing nothing (`refuseIfUnmerged`): commit,
 * merge, cherry-pick and revert (Git's "<Verb>ing is not possible because you
 * have unmerged files.", exit 128), stash push/apply/pop ("<path>: needs
 * merge", exit 1), checkout of another commit ("you need to resolve your
 * current index first", exit 1) and rebase ("cannot rebase: You have unstaged
 * changes.", exit 1). `switch` refuses any move while an operation is in
 * progress (`operationInProgress`), resolved or not, as Git's does. The error
 * carries the verb and the paths; the CLI prints Git's exact lines.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { hasErrnoCode, MediaGitError } from '../errors.ts';
import type { Signature } from '../odb/commit.ts';
import type { ObjectId } from '../odb/object-id.ts';
import { writeFileAtomic } from '../storage/durable-file.ts';
import type { Repository } from './repository.ts';
import type { TreeFile } from './tree-ops.ts';
import { compareNames } from '../odb/tree.ts';

export type ConflictType = 'ModifyModify' | 'AddAdd' | 'DeleteModify' | 'ModifyDelete';

export type Version = Pick<TreeFile, 'mode' | 'kind' | 'id' | 'size'>;

export interface ConflictRecord {
  readonly path: string;
  readonly type: ConflictType;
  readonly base?: Version | undefined;
  readonly ours?: Version | undefined;
  readonly theirs?: Version | undefined;
  /** Why a media-aware strategy could not merge it, when one tried. */
  readonly reason?: string | undefined;
}

/** What stopped: a merge (two parents), or a cherry-pick or revert (one). */
export type Operation = 'merge' | 'cherry-pick' | 'revert';

const HEAD_FILES: Record<Operation, string> = {
  merge: 'MERGE_HEAD',
  'cherry-pick': 'CHERRY_PICK_HEAD',
  revert: 'REVERT_HEAD',
};

export interface MergeState {
  readonly operation: Operation;
  readonly theirs: ObjectId;
  /** The author the concluding commit keeps (a cherry-pick keeps the original's). */
  readonly author?: Signature | undefined;
  readonly origHead: ObjectId;
  readonly message: string;
  readonly conflicts: readonly ConflictRecord[];
}

const FILES = ['MERGE_CONFLICTS', 'MERGE_MSG', ...Object.values(HEAD_FILES)];

/** The file rebase.ts keeps while a rebase is stopped (named here so every check sees it). */
export const REBASE_STATE_FILE = 'REBASE_STATE';

/** An operation that stopped and waits to be concluded or aborted. */
export type InProgress = Operation | 'rebase';

/**
 * The operation in progress, in Git's order of precedence (wt_status_get_state):
 * a merge, else a rebase (whose conflicting step is a cherry-pick here), else
 * a cherry-pick, else a revert.
 */
export async function operationInProgress(repo: Repository): Promise<InProgress | undefined> {
  const exists = (name: string) =>
    fs.access(path.join(repo.gitDir, name)).then(
      () => true,
      (error: unknown) => {
        if (hasErrnoCode(error, 'ENOENT')) return false;
        throw error;
      },
    );
  if (await exists(HEAD_FILES.merge)) return 'merge';
  if (await exists(REBASE_STATE_FILE)) return 'rebase';
  if (await exists(HEAD_FILES['cherry-pick'])) return 'cherry-pick';
  if (await exists(HEAD_FILES.revert)) return 'revert';
  return undefined;
}

/**
 * Who refuses while paths are unmerged; each words it as Git does.
 * `cherry-pick -n`/`revert -n` differ from the committing forms (Git's
 * "your index file is unmerged."), and `rebase --continue` from `rebase`.
 */
export type UnmergedRefusal =
  | 'commit'
  | 'merge'
  | 'pull'
  | 'cherry-pick'
  | 'revert'
  | 'cherry-pick -n'
  | 'revert -n'
  | 'stash'
  | 'checkout'
  | 'rebase'
  | 'rebase --continue';

/** The paths a stopped operation left unmerged, in Git's index order (by path bytes). */
export async function unmergedConflicts(repo: Repository): Promise<ConflictRecord[]> {
  const conflicts = [...((await readMergeState(repo))?.conflicts ?? [])];
  return conflicts.sort((a, b) => compareNames(a.path, b.path));
}

const GERUND: Partial<Record<UnmergedRefusal, string>> = {
  commit: 'Committing',
  merge: 'Merging',
  pull: 'Pulling',
  'cherry-pick': 'Cherry-picking',
  revert: 'Reverting',
};

/**
 * Throws UNMERGED_PATHS when a stopped operation left paths unmerged; call it
 * before writing anything, so the refusal leaves the conflict state as it
 * was. `data` holds the verb, the paths and the conflicts (their versions
 * too: `-n` prints them); the message is Git's main line for the verb.
 */
export async function refuseIfUnmerged(repo: Repository, verb: UnmergedRefusal): Promise<void> {
  const conflicts = await unmergedConflicts(repo);
  if (conflicts.length === 0) return;
  const paths = conflicts.map((c) => c.path);
  const gerund = GERUND[verb];
  let message: string;
  if (gerund !== undefined) message = `${gerund} is not possible because you have unmerged files.`;
  else if (verb === 'checkout') message = 'you need to resolve your current index first';
  else if (verb === 'rebase') message = 'cannot rebase: You have unstaged changes.';
  else if (verb === 'cherry-pick -n' || verb === 'revert -n')
    message = 'your index file is unmerged.';
  else message = paths.map((p) => `${p}: needs merge`).join('\n');
  // Fatal (exit 128) for the verbs that would record a commit, an error
  // (exit 1) for the others, as in Git.
  const fatal = gerund !== undefined || verb === 'cherry-pick -n' || verb === 'revert -n';
  throw new MediaGitError('UNMERGED_PATHS', message, {
    kind: fatal ? 'conflict' : 'user',
    data: { verb, paths, conflicts },
  });
}

export async function readMergeState(repo: Repository): Promise<MergeState | undefined> {
  const read = async (name: string): Promise<string | undefined> => {
    try {
      return await fs.readFile(path.join(repo.gitDir, name), 'utf8');
    } catch (error) {
      if (hasErrnoCode(error, 'ENOENT')) return undefined;
      throw error;
    }
  };
  let operation: Operation | undefined;
  let theirs: string | undefined;
  for (const [op, file] of Object.entries(HEAD_FILES) as [Operation, string][]) {
    theirs = (await read(file))?.trim();
    if (theirs !== undefined) {
      operation = op;
      break;
    }
  }
  if (theirs === undefined || operation === undefined) return undefined;
  let conflicts: ConflictRecord[] = [];
  let author: Signature | undefined;
  const listed = await read('MERGE_CONFLICTS');
  if (listed !== undefined) {
    try {
      const parsed = JSON.parse(listed) as { conflicts: ConflictRecord[]; author?: Signature };
      conflicts = parsed.conflicts;
      author = parsed.author;
    } catch (error) {
      throw new MediaGitError(
        'MERGE_STATE_CORRUPT',
        `${repo.gitDir}/MERGE_CONFLICTS is not valid JSON`,
        {
          kind: 'corrupt',
          cause: error,
        },
      );
    }
  }
  return {
    operation,
    theirs,
    author,
    origHead: (await read('ORIG_HEAD'))?.trim() ?? theirs,
    message: (await read('MERGE_MSG')) ?? `Merge commit '${theirs}'\n`,
    conflicts,
  };
}

export async function writeMergeState(repo: Repository, state: MergeState): Promise<void> {
  const write = (name: string, text: string) =>
    writeFileAtomic(path.join(repo.gitDir, name), [Buffer.from(text)], {
      tmpDir: repo.objects.tmpDir,
    });
  await write('ORIG_HEAD', `${state.origHead}\n`);
  await write('MERGE_MSG', state.message);
  const record = { version: 1, conflicts: state.conflicts, author: state.author };
  await write('MERGE_CONFLICTS', `${JSON.stringify(record, null, 1)}\n`);
  // Last: its presence is what says the operation is in progress.
  await write(HEAD_FILES[state.operation], `${state.theirs}\n`);
}

/** Ends the merge state (after its commit, or an abort); ORIG_HEAD stays, as in Git. */
export async function clearMergeState(repo: Repository): Promise<void> {
  for (const name of FILES) await fs.rm(path.join(repo.gitDir, name), { force: true });
}

/** Marks `paths` resolved (after `add`/`rm` of them); returns how many were conflicted. */
export async function resolveConflicts(repo: Repository, paths: Iterable<string>): Promise<number> {
  const state = await readMergeState(repo);
  if (!state || state.conflicts.length === 0) return 0;
  const resolved = new Set(paths);
  const left = state.conflicts.filter((c) => !resolved.has(c.path));
  if (left.length === state.conflicts.length) return 0;
  const record = { version: 1, conflicts: left, author: state.author };
  await writeFileAtomic(
    path.join(repo.gitDir, 'MERGE_CONFLICTS'),
    [Buffer.from(`${JSON.stringify(record, null, 1)}\n`)],
    { tmpDir: repo.objects.tmpDir },
  );
  return state.conflicts.length - left.length;
}
