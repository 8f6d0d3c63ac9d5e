/**
 * `stash`: set local changes aside and bring them back, stored as Git stores
 * them. A stash is a commit W whose tree is the working tree's tracked files,
 * with parents HEAD, I (a commit of the index) and, with
 * `--include-untracked`, U (a root commit of the untracked files). `refs/stash`
 * points at the newest and its reflog is the stack (`stash@{n}`). Files are
 * stored like any add, so a large file in a stash costs only its new chunks.
 *
 * Applying merges W into the current state three-way against W's first
 * parent (merge.ts); changes come back unstaged except files the stash had
 * newly added (as Git does), or staged as they were with `--index`. A stash
 * whose changes conflict with the current state is refused, changing nothing
 * (conflicted stash application is not built yet).
 *
 * While a stopped merge, cherry-pick or revert has unmerged paths, push and
 * apply refuse as Git does ("<path>: needs merge", exit 1), writing nothing:
 * stashing would reset the conflicted files and lose the conflict.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { MediaGitError } from '../errors.ts';
import type { ObjectId } from '../odb/object-id.ts';
import { writeCommit } from './commit.ts';
import { StagingIndex } from './index-file.ts';
import { conflictLine, mergeFiles, resolveContent } from './merge.ts';
import { refuseIfUnmerged } from './merge-state.ts';
import { diffTrees, type DiffDetail, type FileDiff } from './diff.ts';
import { Refs } from './refs.ts';
import type { Repository } from './repository.ts';
import { reset } from './reset.ts';
import { resolveCommit, shortId } from './revision.ts';
import { stageFiles } from './stage.ts';
import { worktreeChanges } from './status.ts';
import { flattenCommit, readCommit, writeTreeFromFiles, type TreeFile } from './tree-ops.ts';
import {
  entryWithoutStats,
  materializeVersion,
  sameVersion,
  updateWorkTree,
} from './worktree-update.ts';
import { absolutePath } from './worktree.ts';
import { ensureFileContent } from './partial-clone.ts';

const STASH_REF = 'refs/stash';

export interface StashEntry {
  readonly selector: string;
  readonly id: ObjectId;
  readonly message: string;
}

function commitOf(
  repo: Repository,
  tree: ObjectId,
  parents: ObjectId[],
  message: string,
): Promise<ObjectId> {
  return writeCommit(repo, tree, parents, `${message}\n`);
}

/** `stash push`: returns the new stash's message, or undefined when nothing changed. */
export async function stashPush(
  repo: Repository,
  options: { message?: string | undefined; includeUntracked?: boolean | undefined; cwd: string },
): Promise<string | undefined> {
  const workTree = repo.requireWorkTree('stash');
  await refuseIfUnmerged(repo, 'stash');
  const refs = new Refs(repo);
  const head = await refs.head();
  if (!head.id) {
    throw new MediaGitError('UNBORN_HEAD', 'You do not have the initial commit yet', {
      kind: 'conflict',
    });
  }
  const headCommit = await readCommit(repo.objects, head.id);
  const index = await StagingIndex.load(repo.gitDir);
  const indexTree = await writeTreeFromFiles(repo.objects, index.entries.values());
  const work = await worktreeChanges(repo, index, { untracked: options.includeUntracked === true });
  const untracked = options.includeUntracked ? work.untracked : [];
  if (indexTree === headCommit.tree && work.changes.length === 0 && untracked.length === 0)
    return undefined;

  // W: the index with every tracked working file staged over it.
  const stashIndex = new StagingIndex(repo.gitDir);
  for (const [p, entry] of index.entries) stashIndex.entries.set(p, entry);
  const present = [];
  for (const change of work.changes) {
    const full = absolutePath(workTree, change.path);
    const stats = await fs.lstat(full).catch(() => undefined);
    if (stats) present.push({ path: change.path, stats });
    else stashIndex.entries.delete(change.path);
  }
  await stageFiles(repo, stashIndex, present, {});
  const workTreeId = await writeTreeFromFiles(repo.objects, stashIndex.entries.values());

  const branch = head.branch?.replace(/^refs\/heads\//, '') ?? '(no branch)';
  const subject = headCommit.message.split('\n')[0] ?? '';
  const where = `${branch}: ${shortId(head.id)} ${subject}`;
  const parents = [head.id, await commitOf(repo, indexTree, [head.id], `index on ${where}`)];
  if (untracked.length > 0) {
    const untrackedIndex = new StagingIndex(repo.gitDir);
    const files = [];
    for (const p of untracked)
      files.push({ path: p, stats: await fs.lstat(absolutePath(workTree, p)) });
    await stageFiles(repo, untrackedIndex, files, {});
    const tree = await writeTreeFromFiles(repo.objects, untrackedIndex.entries.values());
    parents.push(await commitOf(repo, tree, [], `untracked files on ${where}`));
  }
  const message = options.message ? `On ${branch}: ${options.message}` : `WIP on ${where}`;
  const stash = await commitOf(repo, workTreeId, parents, message);
  await refs.update(STASH_REF, stash, { message });

  // Back to HEAD, and the stashed untracked files gone.
  await reset(repo, { mode: 'hard', cwd: options.cwd, reportUnstaged: false });
  for (const p of untracked) await fs.rm(absolutePath(workTree, p), { force: true });
  return message;
}

export async function stashList(repo: Repository): Promise<StashEntry[]> {
  return (await new Refs(repo).log(STASH_REF)).map((entry, n) => ({
    selector: `stash@{${n}}`,
    id: entry.newId,
    message: entry.message,
  }));
}

/** `stash apply`: brings stash `rev` (stash@{0} by default) back; see the module comment. */
export async function stashApply(
  repo: Repository,
  options: { rev?: string | undefined; index?: boolean | undefined },
): Promise<void> {
  const workTree = repo.requireWorkTree('stash');
  const rev = options.rev ?? 'stash@{0}';
  if ((await stashList(repo)).length === 0) {
    throw new MediaGitError('NO_STASH', 'No stash entries found.', {
      kind: 'user',
      data: { exitCode: 1 },
    });
  }
  const stash = await resolveCommit(repo, rev);
  const commit = await readCommit(repo.objects, stash);
  const [baseId, indexId, untrackedId] = commit.parents;
  if (!baseId || !indexId) {
    throw new MediaGitError('NOT_A_STASH', `'${rev}' is not a stash-like commit`, {
      kind: 'usage',
    });
  }
  // After the stash is known to exist, as Git checks its index only then.
  await refuseIfUnmerged(repo, 'stash');
  const base = await flattenCommit(repo.objects, baseId);
  const stashed = await flattenCommit(repo.objects, stash);
  const stagedThen = await flattenCommit(repo.objects, indexId);
  const untracked = untrackedId
    ? await flattenCommit(repo.objects, untrackedId)
    : new Map<string, TreeFile>();
  for (const p of untracked.keys()) {
    if (await fs.lstat(absolutePath(workTree, p)).catch(() => undefined)) {
      throw new MediaGitError('STASH_UNTRACKED_EXISTS', `${p} already exists, no checkout`, {
        kind: 'user',
        data: { exitCode: 1 },
      });
    }
  }
  await ensureFileContent(repo, untracked.values());
  const lock = await StagingIndex.lock(repo.gitDir);
  try {
    const index = await StagingIndex.load(repo.gitDir);
    // Index entries are file versions; a copy, since the update changes the index.
    const ours = new Map<string, TreeFile>(index.entries);
    const merged = mergeFiles(base, ours, stashed);
    const stopped = await resolveContent(
      repo,
      merged,
      { base, ours, theirs: stashed },
      'Stashed changes',
    );
    if (stopped.conflicts.length > 0) {
      throw new MediaGitError(
        'STASH_CONFLICT',
        `${stopped.conflicts.map((c) => conflictLine(c, 'Stashed changes')).join('\n')}\nstash: these paths conflict with your changes; applying a conflicting stash is not implemented yet, so nothing was changed`,
        { kind: 'user', data: { exitCode: 1 } },
      );
    }
    await updateWorkTree(repo, index, ours, merged.files);
    // The index: as it was before applying, except what the stash staged
    // (with --index) or newly added (always, as Git does).
    for (const [p, file] of merged.files) {
      const before = ours.get(p);
      if (sameVersion(before, file)) continue;
      const wanted = options.index ? stagedThen.get(p) : base.has(p) ? before : file;
      if (wanted) index.entries.set(p, await entryWithoutStats(repo.objects, wanted));
      else index.entries.delete(p);
    }
    for (const p of ours.keys()) {
      if (!merged.files.has(p) && options.index !== true && base.has(p)) {
        index.entries.set(p, await entryWithoutStats(repo.objects, ours.get(p)!));
      }
    }
    await index.save(lock);
  } finally {
    await lock.release();
  }
  for (const [p, file] of untracked) {
    const full = absolutePath(workTree, p);
    await fs.mkdir(path.dirname(full), { recursive: true });
    await materializeVersion(repo.objects, file, full);
  }
}

/** `stash drop`: removes entry `rev` (stash@{0} by default) from the stack. */
export async function stashDrop(repo: Repository, rev = 'stash@{0}'): Promise<StashEntry> {
  const entries = await stashList(repo);
  const match = /^(?:stash)?@\{(\d+)\}$/.exec(rev) ?? (rev === 'stash' ? ['', '0'] : undefined);
  const n = match ? Number(match[1]) : NaN;
  const dropped = entries[n];
  if (!dropped) {
    throw new MediaGitError('NO_STASH', `${rev} is not a valid reference`, {
      kind: 'user',
      data: { exitCode: 1 },
    });
  }
  const kept = entries.filter((_, i) => i !== n);
  const refs = new Refs(repo);
  const logFile = path.join(repo.gitDir, 'logs', STASH_REF);
  const oldLog = await fs.readFile(logFile, 'utf8');
  // The reflog is oldest first; entry n counts from the newest.
  const lines = oldLog.split('\n').filter((line) => line !== '');
  lines.splice(lines.length - 1 - n, 1);
  if (kept.length === 0) {
    await refs.update(STASH_REF, null, { message: 'stash: drop' });
  } else {
    await refs.update(STASH_REF, kept[0]!.id, { message: kept[0]!.message });
    await fs.writeFile(logFile, lines.map((line) => `${line}\n`).join(''));
  }
  return dropped;
}

export async function stashClear(repo: Repository): Promise<void> {
  if ((await new Refs(repo).read(STASH_REF)) === undefined) return;
  await new Refs(repo).update(STASH_REF, null, { message: 'stash: clear' });
}

/** The paths stash `rev` changes against its base, with A/M/D letters. */
/** What a stash changed against the commit it was made on, as `diff` reports it. */
export async function stashDiff(
  repo: Repository,
  rev: string,
  detail: DiffDetail,
): Promise<FileDiff[]> {
  const stash = await resolveCommit(repo, rev);
  const commit = await readCommit(repo.objects, stash);
  const base = commit.parents[0]
    ? (await readCommit(repo.objects, commit.parents[0])).tree
    : undefined;
  return diffTrees(repo, base, commit.tree, { detail, context: 3 });
}
