/**
 * `rebase`: replay the current branch's commits that `upstream` lacks onto
 * `upstream` (or `--onto <newbase>`), one cherry-pick at a time (pick.ts),
 * with HEAD detached; the branch moves to the result only at the end, by
 * compare-and-swap (so a protected branch refuses it, and `--abort` has only
 * to check the branch out again). `-i` lets an editor rewrite the todo list:
 * pick, reword, squash, fixup, drop, edit.
 *
 * State, while a rebase is stopped (a conflict, or `edit`): REBASE_STATE in
 * the repository folder, JSON {headName, origHead, onto, todo, done}, next to
 * the cherry-pick state of a conflicting step. `--continue` concludes that
 * step (after `add` of the resolved paths) and goes on; `--skip` drops it;
 * `--abort` returns to the branch as it was.
 *
 * A new rebase is refused, writing nothing, while another operation is
 * stopped; with paths unmerged as Git's require_clean_work_tree words it
 * ("cannot rebase: You have unstaged changes.", exit 1), and `--continue`
 * too ("<path>: needs merge", exit 1) until they are resolved.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { MediaGitError } from '../errors.ts';
import type { ObjectId } from '../odb/object-id.ts';
import { writeFileAtomic } from '../storage/durable-file.ts';
import { commit as commitIndex, writeCommit } from './commit.ts';
import { StagingIndex } from './index-file.ts';
import { abortMerge } from './merge.ts';
import { isAncestor } from './merge-base.ts';
import {
  clearMergeState,
  readMergeState,
  REBASE_STATE_FILE,
  refuseIfUnmerged,
} from './merge-state.ts';
import { cherryPick } from './pick.ts';
import { assertMayMove } from './protect.ts';
import { Refs } from './refs.ts';
import type { Repository } from './repository.ts';
import { resolveCommit, shortId } from './revision.ts';
import { switchTo } from './switch.ts';
import { readCommit, writeTreeFromFiles } from './tree-ops.ts';

export type TodoAction = 'pick' | 'reword' | 'squash' | 'fixup' | 'drop' | 'edit';

interface TodoItem {
  readonly action: TodoAction;
  readonly id: ObjectId;
}

interface RebaseState {
  readonly headName: string;
  readonly origHead: ObjectId;
  readonly onto: ObjectId;
  readonly todo: TodoItem[];
  /** The step that stopped (conflict or edit), concluded by --continue. */
  readonly current?: TodoItem | undefined;
}

export interface RebaseOptions {
  readonly upstream?: string | undefined;
  readonly onto?: string | undefined;
  readonly interactive?: boolean | undefined;
  /** The editor command for -i (MEDIAGIT_EDITOR, else EDITOR). */
  readonly editor?: string | undefined;
}

export type RebaseOutcome = 'up-to-date' | 'rebased' | 'stopped';

const STATE = REBASE_STATE_FILE;

async function readState(repo: Repository): Promise<RebaseState | undefined> {
  try {
    return JSON.parse(await fs.readFile(path.join(repo.gitDir, STATE), 'utf8')) as RebaseState;
  } catch {
    return undefined;
  }
}

async function writeState(repo: Repository, state: RebaseState): Promise<void> {
  await writeFileAtomic(path.join(repo.gitDir, STATE), [Buffer.from(JSON.stringify(state))], {
    tmpDir: repo.objects.tmpDir,
  });
}

export async function rebase(repo: Repository, options: RebaseOptions): Promise<RebaseOutcome> {
  repo.requireWorkTree('rebase');
  const inProgress = () =>
    new MediaGitError(
      'REBASE_IN_PROGRESS',
      'a rebase, merge or cherry-pick is in progress; --continue or --abort it first',
      { kind: 'conflict' },
    );
  if (await readState(repo)) throw inProgress();
  const refs = new Refs(repo);
  const head = await refs.head();
  if (!head.branch || !head.id) {
    throw new MediaGitError('REBASE_DETACHED', 'rebase needs a branch checked out', {
      kind: 'conflict',
    });
  }
  if (options.upstream === undefined)
    throw new MediaGitError('REBASE_USAGE', 'rebase needs an upstream', { kind: 'usage' });
  const upstream = await resolveCommit(repo, options.upstream);
  const onto = options.onto === undefined ? upstream : await resolveCommit(repo, options.onto);
  // As Git: the upstream is checked first, then the index (unmerged paths
  // are unstaged and uncommitted changes to its require_clean_work_tree).
  await refuseIfUnmerged(repo, 'rebase');
  if (await readMergeState(repo)) throw inProgress();
  // The commits to replay: reachable from HEAD and not from upstream, oldest first, merges left out.
  const excluded = new Set<ObjectId>();
  for (const stack = [upstream]; stack.length > 0;) {
    const id = stack.pop()!;
    if (excluded.has(id)) continue;
    excluded.add(id);
    stack.push(...(await readCommit(repo.objects, id)).parents);
  }
  const commits: ObjectId[] = [];
  for (let id: ObjectId | undefined = head.id; id && !excluded.has(id);) {
    const c = await readCommit(repo.objects, id);
    if (c.parents.length <= 1) commits.push(id);
    id = c.parents[0];
  }
  commits.reverse();
  // Already on top of upstream: nothing to do (Git: "Current branch is up to date").
  if (!options.interactive && onto === upstream && (await isAncestor(repo, upstream, head.id))) {
    return 'up-to-date';
  }
  let todo: TodoItem[] = commits.map((id) => ({ action: 'pick' as const, id }));
  if (options.interactive) todo = await editTodo(repo, todo, options.editor);
  await assertMayMove(repo, head.branch, head.id, onto);
  await switchTo(repo, { kind: 'detach', rev: onto }, { reportLocalChanges: false });
  await writeState(repo, { headName: head.branch, origHead: head.id, onto, todo });
  return run(repo, options.editor);
}

/** Writes the todo list, lets the editor change it, reads it back. */
async function editTodo(
  repo: Repository,
  todo: TodoItem[],
  editor: string | undefined,
): Promise<TodoItem[]> {
  const lines = [];
  for (const item of todo) {
    const subject = (await readCommit(repo.objects, item.id)).message.split('\n')[0] ?? '';
    lines.push(`pick ${item.id} ${subject}`);
  }
  lines.push(
    '',
    '# Commands: pick, reword, squash, fixup, drop, edit (p, r, s, f, d, e).',
    '# Lines may be reordered or removed.',
  );
  const file = path.join(repo.gitDir, 'rebase-todo');
  await fs.writeFile(file, `${lines.join('\n')}\n`);
  await runEditor(repo, file, editor);
  const text = await fs.readFile(file, 'utf8');
  await fs.rm(file, { force: true });
  const short: Record<string, TodoAction> = {
    p: 'pick',
    r: 'reword',
    s: 'squash',
    f: 'fixup',
    d: 'drop',
    e: 'edit',
  };
  const out: TodoItem[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const [word = '', rev = ''] = line.split(/\s+/);
    const action = (short[word] ?? word) as TodoAction;
    if (!['pick', 'reword', 'squash', 'fixup', 'drop', 'edit'].includes(action)) {
      throw new MediaGitError('REBASE_TODO', `unknown rebase command '${word}' in the todo list`, {
        kind: 'usage',
      });
    }
    out.push({ action, id: await resolveCommit(repo, rev) });
  }
  if (out.length > 0 && (out[0]!.action === 'squash' || out[0]!.action === 'fixup')) {
    throw new MediaGitError('REBASE_TODO', `cannot '${out[0]!.action}' without a previous commit`, {
      kind: 'usage',
    });
  }
  return out;
}

async function runEditor(
  repo: Repository,
  file: string,
  editor: string | undefined,
): Promise<void> {
  if (!editor) {
    throw new MediaGitError('NO_EDITOR', 'set MEDIAGIT_EDITOR or EDITOR to edit the todo list', {
      kind: 'config',
    });
  }
  const result = spawnSync('sh', ['-c', `${editor} "$1"`, 'editor', file], {
    stdio: 'inherit',
    cwd: repo.workTree,
  });
  if (result.status !== 0) {
    throw new MediaGitError(
      'EDITOR_FAILED',
      `the editor '${editor}' exited with ${result.status}`,
      { kind: 'user' },
    );
  }
}

/** Works through the todo list until it is done or a step stops. */
async function run(repo: Repository, editor: string | undefined): Promise<RebaseOutcome> {
  for (;;) {
    const state = (await readState(repo))!;
    const [item, ...rest] = state.todo;
    if (!item) return finish(repo, state);
    await writeState(repo, { ...state, todo: rest, current: item });
    if (item.action === 'drop') continue;
    try {
      if (item.action === 'squash' || item.action === 'fixup') {
        await cherryPick(repo, { rev: item.id, noCommit: true });
        await squashIntoHead(repo, item);
      } else {
        await cherryPick(repo, { rev: item.id });
        if (item.action === 'reword') await reword(repo, editor);
      }
    } catch (error) {
      if (error instanceof MediaGitError && error.code === 'MERGE_CONFLICT') {
        throw new MediaGitError(
          'REBASE_STOPPED',
          `${error.message}\nCould not apply ${shortId(item.id)}; resolve the conflicts, 'mediagit add' them, then 'mediagit rebase --continue' (or --skip, --abort).`,
          { kind: 'user', data: { exitCode: 1 } },
        );
      }
      throw error;
    }
    if (item.action === 'edit') return 'stopped';
  }
}

/** Folds the index into HEAD's commit (squash keeps both messages, fixup HEAD's). */
async function squashIntoHead(repo: Repository, item: TodoItem): Promise<void> {
  const index = await StagingIndex.load(repo.gitDir);
  await squashTree(repo, item, await writeTreeFromFiles(repo.objects, index.entries.values()));
}

async function reword(repo: Repository, editor: string | undefined): Promise<void> {
  const refs = new Refs(repo);
  const head = await refs.head();
  const current = await readCommit(repo.objects, head.id!);
  const file = path.join(repo.gitDir, 'COMMIT_EDITMSG');
  await fs.writeFile(file, current.message);
  await runEditor(repo, file, editor);
  const message = (await fs.readFile(file, 'utf8')).replace(/^#.*\n?/gm, '');
  if (message.trim() === '')
    throw new MediaGitError('EMPTY_MESSAGE', 'Aborting: empty commit message', { kind: 'usage' });
  const id = await writeCommit(repo, current.tree, current.parents, message, current.author);
  await refs.updateHead(id, `rebase (reword): ${message.split('\n')[0] ?? ''}`, head.id!);
}

async function finish(repo: Repository, state: RebaseState): Promise<RebaseOutcome> {
  const refs = new Refs(repo);
  const head = await refs.head();
  await refs.update(state.headName, head.id!, {
    expected: state.origHead,
    message: `rebase (finish): ${state.headName} onto ${state.onto}`,
  });
  await refs.setHeadBranch(
    state.headName,
    `rebase (finish): returning to ${state.headName}`,
    head.id,
  );
  await fs.rm(path.join(repo.gitDir, STATE), { force: true });
  return 'rebased';
}

/** `rebase --continue`: concludes the stopped step (if its conflicts are resolved) and goes on. */
export async function rebaseContinue(
  repo: Repository,
  editor: string | undefined,
): Promise<RebaseOutcome> {
  const state = await requireState(repo);
  const picking = await readMergeState(repo);
  if (picking) {
    await refuseIfUnmerged(repo, 'rebase --continue');
    await commitIndex(repo, { cwd: repo.workTree ?? '.' });
    const item = state.current;
    if (item?.action === 'squash' || item?.action === 'fixup') {
      // The concluded step made its own commit: fold it into the one before.
      const refs = new Refs(repo);
      const head = await refs.head();
      const made = await readCommit(repo.objects, head.id!);
      await refs.updateHead(made.parents[0]!, 'rebase: fold', head.id!);
      await squashTree(repo, item, made.tree);
    }
  }
  return run(repo, editor);
}

/** Replaces HEAD's commit by one of `tree` that also carries `item` (squash or fixup). */
async function squashTree(repo: Repository, item: TodoItem, tree: ObjectId): Promise<void> {
  const refs = new Refs(repo);
  const head = await refs.head();
  const previous = await readCommit(repo.objects, head.id!);
  const folded = await readCommit(repo.objects, item.id);
  const message =
    item.action === 'squash'
      ? `${previous.message.trimEnd()}\n\n${folded.message.trimEnd()}\n`
      : previous.message;
  const id = await writeCommit(repo, tree, previous.parents, message, previous.author);
  await refs.updateHead(id, `rebase (${item.action}): ${message.split('\n')[0] ?? ''}`, head.id!);
}

/** `rebase --skip`: drops the stopped step's changes and goes on. */
export async function rebaseSkip(
  repo: Repository,
  editor: string | undefined,
): Promise<RebaseOutcome> {
  await requireState(repo);
  if (await readMergeState(repo)) await abortMerge(repo);
  return run(repo, editor);
}

/** `rebase --abort`: the branch as it was, checked out again; the state removed. */
export async function rebaseAbort(repo: Repository): Promise<void> {
  const state = await requireState(repo);
  if (await readMergeState(repo)) await clearMergeState(repo);
  await switchTo(
    repo,
    { kind: 'branch', name: state.headName.replace(/^refs\/heads\//, '') },
    { force: true, reportLocalChanges: false },
  );
  await fs.rm(path.join(repo.gitDir, STATE), { force: true });
}

async function requireState(repo: Repository): Promise<RebaseState> {
  const state = await readState(repo);
  if (!state) throw new MediaGitError('NO_REBASE', 'No rebase in progress?', { kind: 'conflict' });
  return state;
}
