/**
 * `merge`: bring another commit's history into the current branch, as Git
 * does: nothing when it is already contained, a fast-forward when the current
 * commit is its ancestor (unless `--no-ff`), otherwise a three-way merge
 * against the merge base and a merge commit with two parents.
 *
 * The three-way merge is path-level first: a path changed on one side only,
 * or the same way on both, merges cleanly; anything else is one of the four
 * conflict types (ModifyModify, AddAdd, DeleteModify, ModifyDelete). Text
 * files both sides changed are then merged line by line (text-merge.ts);
 * what still conflicts stops the merge (merge-state.ts): text files get
 * Git-style markers, binary files keep ours in the working tree (never
 * mangled), a file we deleted and they modified is left as theirs, and the
 * index keeps ours. `commit` (or `merge --continue`) concludes it once every
 * path is resolved with `add`/`rm`; `merge --abort` returns to ORIG_HEAD.
 * With several merge bases (criss-cross history) the bases are first merged
 * into a virtual base the same way, as Git's ort strategy does; a conflict
 * inside that virtual base is refused as not implemented.
 *
 * Order of effects: working tree and index first (refusing, unchanged, when a
 * local change would be lost), then objects, then HEAD's branch by
 * compare-and-swap with a reflog entry.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { MediaGitError } from '../errors.ts';
import { detectFormat } from '../media/detect.ts';
import {
  hasMergeStrategy,
  mergedSize,
  mergeStrategyFor,
  writeMerged,
} from '../media/merge-strategy.ts';
import { StoredFileReader } from '../odb/file-read.ts';
import { FileStore, MAX_BLOB_SIZE, readFileBytes, type StoredFile } from '../odb/file-store.ts';
import { tempName } from '../storage/durable-file.ts';
import { profileFor } from './stage.ts';
import { ensureFileContent } from './partial-clone.ts';
import type { ObjectId } from '../odb/object-id.ts';
import { shortBranchName } from './branch.ts';
import { writeCommit } from './commit.ts';
import { StagingIndex } from './index-file.ts';
import { isAncestor, mergeBases } from './merge-base.ts';
import {
  clearMergeState,
  readMergeState,
  refuseIfUnmerged,
  writeMergeState,
  type ConflictRecord,
  type ConflictType,
  type Operation,
  type Version,
} from './merge-state.ts';
import { looksBinary } from './text-diff.ts';
import { mergeText } from './text-merge.ts';
import { absolutePath, toRepoPath } from './worktree.ts';
import { Refs } from './refs.ts';
import type { Repository } from './repository.ts';
import { resolveCommit } from './revision.ts';
import { flattenCommit, writeTreeFromFiles, type TreeFile } from './tree-ops.ts';
import {
  materializeVersion,
  sameVersion,
  updateWorkTree,
  type WorkTreeUpdateOptions,
} from './worktree-update.ts';

export type { ConflictType } from './merge-state.ts';

export interface PathConflict {
  readonly path: string;
  readonly type: ConflictType;
}

export interface MergeOptions extends WorkTreeUpdateOptions {
  readonly rev: string;
  /** More commits to merge at once (an octopus merge, with `rev`). */
  readonly more?: readonly string[] | undefined;
  readonly noFastForward?: boolean | undefined;
  readonly fastForwardOnly?: boolean | undefined;
  readonly message?: string | undefined;
  /** Whether media-aware strategies may merge files (`-X media=off`: false). */
  readonly media?: boolean | undefined;
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
  await refuseWhileStopped(repo, 'merge');
  if (options.more && options.more.length > 0) return octopus(repo, options);
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
    const theirsFiles = await flattenCommit(repo.objects, theirs);
    const merged = mergeFiles(base, ours, theirsFiles);
    const message = withNewline(
      options.message ?? (await defaultMessage(repo, options.rev, head.branch)),
    );
    const stopped = await resolveContent(
      repo,
      merged,
      { base, ours, theirs: theirsFiles },
      options.rev,
      options.media !== false,
    );
    if (stopped.conflicts.length > 0) {
      await updateWorkTree(repo, index, ours, merged.files, options);
      for (const [p, write] of stopped.workFiles)
        await write(absolutePath(repo.requireWorkTree('merge'), p));
      await index.save(lock);
      await writeMergeState(repo, {
        operation: 'merge',
        theirs,
        origHead: head.id!,
        message,
        conflicts: stopped.conflicts,
      });
      throw mergeStopped(stopped.conflicts, options.rev);
    }
    target = merged.files;
    await updateWorkTree(repo, index, ours, target, options);
    const tree = await writeTreeFromFiles(repo.objects, index.entries.values());
    commitId = await writeCommit(repo, tree, [head.id!, theirs], message);
    await index.save(lock);
  } finally {
    await lock.release();
  }
  await refs.updateHead(
    commitId,
    `merge ${options.rev}: Merge made by the 'mediagit' strategy.`,
    head.id ?? null,
  );
  return { outcome: 'merged', from: head.id, to: commitId, bases };
}

/**
 * Several commits at once, as Git's octopus strategy does: each is merged in
 * turn into the running result against its merge base with HEAD, and the one
 * commit made has them all as parents. Any conflict refuses the whole merge,
 * changing nothing (Git's octopus also refuses to record conflicts).
 */
async function octopus(repo: Repository, options: MergeOptions): Promise<MergeResult> {
  const refs = new Refs(repo);
  const head = await refs.head();
  if (!head.id)
    throw new MediaGitError('UNBORN_HEAD', 'cannot octopus-merge into an empty branch', {
      kind: 'conflict',
    });
  const revs = [options.rev, ...(options.more ?? [])];
  const heads: ObjectId[] = [];
  for (const rev of revs) {
    const id = await resolveCommit(repo, rev);
    if (!(await isAncestor(repo, id, head.id)) && !heads.includes(id)) heads.push(id);
  }
  if (heads.length === 0) return { outcome: 'up-to-date', from: head.id, to: head.id, bases: [] };
  const ours = await flattenCommit(repo.objects, head.id);
  let running: Files = ours;
  const bases: ObjectId[] = [];
  for (const id of heads) {
    const found = await mergeBases(repo, head.id, id);
    if (found.length === 0) {
      throw new MediaGitError('UNRELATED_HISTORIES', 'refusing to merge unrelated histories', {
        kind: 'conflict',
      });
    }
    bases.push(...found);
    const base = await baseFiles(repo, found);
    const theirs = await flattenCommit(repo.objects, id);
    const step = mergeFiles(base, running, theirs);
    const stopped = await resolveContent(
      repo,
      step,
      { base, ours: running, theirs },
      id,
      options.media !== false,
    );
    if (stopped.conflicts.length > 0) {
      throw new MediaGitError(
        'OCTOPUS_FAILED',
        `${stopped.conflicts.map((c) => conflictLine(c, 'theirs')).join('\n')}\nMerge with strategy octopus failed; nothing was changed (merge the commits one at a time to resolve conflicts).`,
        { kind: 'user', data: { exitCode: 2 } },
      );
    }
    running = step.files;
  }
  const lock = await StagingIndex.lock(repo.gitDir);
  let commitId: ObjectId;
  try {
    const index = await StagingIndex.load(repo.gitDir);
    await updateWorkTree(repo, index, ours, running, options);
    const tree = await writeTreeFromFiles(repo.objects, index.entries.values());
    const message = withNewline(options.message ?? `Merge ${revs.map((r) => `'${r}'`).join(', ')}`);
    commitId = await writeCommit(repo, tree, [head.id, ...heads], message);
    await index.save(lock);
  } finally {
    await lock.release();
  }
  await refs.updateHead(
    commitId,
    `merge ${revs.join(' ')}: Merge made by the 'octopus' strategy.`,
    head.id,
  );
  return { outcome: 'merged', from: head.id, to: commitId, bases };
}

const HEAD_FILE: Record<Operation, string> = {
  merge: 'MERGE_HEAD',
  'cherry-pick': 'CHERRY_PICK_HEAD',
  revert: 'REVERT_HEAD',
};

/**
 * Refuses to start a merge, cherry-pick or revert (`verb`; `noCommit` for
 * `-n`) while one is stopped: with paths unmerged, Git's "<Verb>ing is not
 * possible because you have unmerged files."; with all resolved, "You have
 * not concluded your <operation>". Nothing is written.
 */
export async function refuseWhileStopped(
  repo: Repository,
  verb: Operation,
  noCommit = false,
): Promise<void> {
  await refuseIfUnmerged(
    repo,
    verb === 'merge' ? 'merge' : noCommit ? (`${verb} -n` as const) : verb,
  );
  const state = await readMergeState(repo);
  if (!state) return;
  const { operation } = state;
  // Git's merge names the file it found; cherry-pick and revert refuse on
  // their own terms (MediaGit keeps the older wording there).
  const message =
    verb === 'merge'
      ? `You have not concluded your ${operation} (${HEAD_FILE[operation]} exists).\nPlease, commit your changes before you merge.`
      : `You have not concluded your ${operation === 'merge' ? 'merge (MERGE_HEAD exists)' : operation}.\nPlease, commit your changes (or --abort) first.`;
  throw new MediaGitError('OPERATION_IN_PROGRESS', message, {
    kind: 'conflict',
    data: { operation },
  });
}

/**
 * `merge --abort`: back to ORIG_HEAD, as before the merge: the index and
 * every path the merge touched are reset (local changes the merge refused
 * to touch could not exist on those paths), and the merge state removed.
 */
export async function abortMerge(
  repo: Repository,
  options: WorkTreeUpdateOptions = {},
): Promise<void> {
  const state = await readMergeState(repo);
  if (!state) {
    throw new MediaGitError('NO_MERGE', 'There is no merge to abort (MERGE_HEAD missing).', {
      kind: 'conflict',
    });
  }
  const lock = await StagingIndex.lock(repo.gitDir);
  try {
    const index = await StagingIndex.load(repo.gitDir);
    // Index entries are file versions; a copy, since the update changes the index.
    const current = new Map<string, TreeFile>(index.entries);
    const target = await flattenCommit(repo.objects, state.origHead);
    await ensureFileContent(
      repo,
      state.conflicts.flatMap((c) => target.get(c.path) ?? []),
      options.signal,
    );
    await updateWorkTree(repo, index, current, target, { ...options, force: true });
    // Conflicted paths hold markers or theirs' copy while the index holds
    // ours: put ORIG_HEAD's version back whatever the plan thought unchanged.
    const workTree = repo.requireWorkTree('merge');
    for (const c of state.conflicts) {
      const full = absolutePath(workTree, c.path);
      const file = target.get(c.path);
      if (!file) await fs.rm(full, { force: true });
      else await materializeVersion(repo.objects, file, full);
    }
    await index.save(lock);
    await clearMergeState(repo);
  } finally {
    await lock.release();
  }
}

/**
 * `checkout --ours|--theirs <path>...`: writes one side's version of each
 * conflicted path into the working tree (the conflict stays until `add`).
 * A path that is not conflicted is left alone, as Git does.
 */
export async function checkoutConflictSide(
  repo: Repository,
  side: 'ours' | 'theirs',
  paths: readonly string[],
  cwd: string,
): Promise<string[]> {
  const workTree = repo.requireWorkTree('checkout');
  const state = await readMergeState(repo);
  const written: string[] = [];
  for (const userPath of paths) {
    const p = toRepoPath(workTree, cwd, userPath);
    const conflict = state?.conflicts.find((c) => c.path === p);
    if (!conflict) continue;
    const version = conflict[side];
    if (!version) {
      throw new MediaGitError(
        'NO_SIDE_VERSION',
        `path '${p}' does not have ${side === 'ours' ? 'our' : 'their'} version`,
        { kind: 'user', data: { path: p } },
      );
    }
    const full = absolutePath(workTree, p);
    await fs.mkdir(path.dirname(full), { recursive: true });
    await materializeVersion(repo.objects, { path: p, ...version }, full);
    written.push(p);
  }
  return written;
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

const TEXT_MERGE_LIMIT = 32 * 1024 * 1024;

interface Sides {
  readonly base: Files;
  readonly ours: Files;
  readonly theirs: Files;
}

/**
 * Resolves what content can: text files both sides changed are merged line by
 * line (a clean result becomes the merged file). Returns the conflicts that
 * remain, with what to write in the working tree for each (markers, or
 * theirs for a file we deleted); `merged.files` gets the index's version of
 * each conflicted path (ours, or nothing when ours is gone).
 */
export async function resolveContent(
  repo: Repository,
  merged: { files: Map<string, TreeFile>; conflicts: PathConflict[] },
  sides: Sides,
  theirsLabel: string,
  /** Whether media-aware strategies may merge (`-X media=off` turns them off). */
  media = true,
): Promise<{
  conflicts: ConflictRecord[];
  workFiles: Map<string, (full: string) => Promise<void>>;
}> {
  const conflicts: ConflictRecord[] = [];
  const workFiles = new Map<string, (full: string) => Promise<void>>();
  const store = repo.objects;
  const fileStore = new FileStore(store);
  try {
    for (const { path: p, type } of merged.conflicts) {
      const b = sides.base.get(p);
      const o = sides.ours.get(p);
      const t = sides.theirs.get(p);
      if (
        media &&
        type === 'ModifyModify' &&
        b &&
        o &&
        t &&
        o.mode === t.mode &&
        o.mode !== '120000'
      ) {
        const outcome = await mediaMerge(repo, fileStore, p, [b, o, t]);
        if (outcome && 'file' in outcome) {
          merged.files.set(p, outcome.file);
          continue;
        }
        if (outcome && 'reason' in outcome) {
          // A named part both sides changed: the working file stays ours.
          merged.files.set(p, o);
          conflicts.push({
            path: p,
            type,
            base: version(b),
            ours: version(o),
            theirs: version(t),
            reason: outcome.reason,
          });
          continue;
        }
      }
      if (
        (type === 'ModifyModify' || type === 'AddAdd') &&
        o &&
        t &&
        o.mode === t.mode &&
        o.mode !== '120000'
      ) {
        const texts = await textsOf(store, [b, o, t]);
        if (texts) {
          const result = mergeText(texts[0], texts[1], texts[2], {
            ours: 'HEAD',
            theirs: theirsLabel,
          });
          const bytes = Buffer.from(result.text);
          if (result.conflicts === 0) {
            const stored = await fileStore.storeBlob(bytes);
            merged.files.set(p, {
              path: p,
              mode: o.mode,
              kind: 'blob',
              id: stored.id,
              size: bytes.length,
            });
            continue;
          }
          workFiles.set(p, async (full) => {
            // Outside the sparse-checkout patterns its folder may be absent.
            await fs.mkdir(path.dirname(full), { recursive: true });
            await fs.writeFile(full, bytes);
          });
        }
      }
      if (type === 'DeleteModify' && t) {
        await ensureFileContent(repo, [t]);
        workFiles.set(p, async (full) => {
          await fs.mkdir(path.dirname(full), { recursive: true });
          await materializeVersion(store, t, full);
        });
      }
      if (o) merged.files.set(p, o);
      conflicts.push({
        path: p,
        type,
        base: version(b),
        ours: version(o),
        theirs: version(t),
      });
    }
  } finally {
    await fileStore.close();
  }
  return { conflicts, workFiles };
}

/**
 * A media-aware merge of a file both sides changed (media/merge-strategy.ts),
 * chosen by the file's format: the merged file, the part both sides changed
 * (the conflict's reason), or undefined when no strategy applies or the one
 * that does declined the file (it did not parse): the caller then merges it
 * as it would without one.
 */
async function mediaMerge(
  repo: Repository,
  fileStore: FileStore,
  p: string,
  [b, o, t]: [TreeFile, TreeFile, TreeFile],
): Promise<{ file: TreeFile } | { reason: string } | undefined> {
  const format = detectFormat(new Uint8Array(0), p);
  if (!hasMergeStrategy(format)) return undefined;
  const strategy = await mergeStrategyFor(format);
  if (!strategy) return undefined;
  if (Math.max(b.size, o.size, t.size) > strategy.maxBytes) {
    return { reason: `${strategy.name}: too large to merge in memory` };
  }
  await ensureFileContent(repo, [b, o, t]);
  const [base, ours, theirs] = await Promise.all(
    [b, o, t].map((file) => StoredFileReader.open(repo.objects, file.kind, file.id, file.size)),
  );
  const sides = { base: base!, ours: ours!, theirs: theirs! };
  const result = await strategy.merge({ path: p, format, ...sides });
  if ('declined' in result) return undefined;
  if ('conflict' in result) return { reason: `${strategy.name}: ${result.conflict}` };
  const size = mergedSize(result.merged);
  let stored: StoredFile;
  if (result.merged instanceof Uint8Array && size < Math.min(repo.chunkThreshold, MAX_BLOB_SIZE)) {
    stored = await fileStore.storeBlob(result.merged);
  } else {
    const tmp = tempName(path.join(repo.gitDir, 'tmp'), 'merge');
    try {
      const handle = await fs.open(tmp, 'wx');
      try {
        let at = 0;
        await writeMerged(result.merged, sides, async (data) => {
          await handle.write(data, 0, data.length, at);
          at += data.length;
        });
      } finally {
        await handle.close();
      }
      stored = await fileStore.storeFile(tmp, {
        chunkThreshold: repo.chunkThreshold,
        profile: (head, length) => profileFor(head, p, length, false),
      });
    } finally {
      await fs.rm(tmp, { force: true });
    }
  }
  return { file: { path: p, mode: o.mode, kind: stored.kind, id: stored.id, size } };
}

function version(file: TreeFile | undefined): Version | undefined {
  return file && { mode: file.mode, kind: file.kind, id: file.id, size: file.size };
}

/** The three versions as text, or undefined when any is binary or too large to merge in memory. */
async function textsOf(
  store: Repository['objects'],
  files: readonly (TreeFile | undefined)[],
): Promise<[string, string, string] | undefined> {
  const out: string[] = [];
  for (const file of files) {
    if (!file) {
      out.push('');
      continue;
    }
    if (file.size > TEXT_MERGE_LIMIT) return undefined;
    const bytes = await readFileBytes(store, file.kind, file.id);
    if (looksBinary(bytes)) return undefined;
    out.push(bytes.toString('utf8'));
  }
  return out as [string, string, string];
}

/**
 * A conflict as Git words it (`CONFLICT (content): Merge conflict in a.txt`);
 * `theirs` names the other side (the branch or commit merged). The type's own
 * name stays in `--json` and `status --json`.
 */
export function conflictLine(
  c: Pick<ConflictRecord, 'path' | 'type' | 'reason'>,
  theirs: string,
): string {
  switch (c.type) {
    case 'ModifyModify':
      return `CONFLICT (content): Merge conflict in ${c.path}${c.reason ? ` (${c.reason})` : ''}`;
    case 'AddAdd':
      return `CONFLICT (add/add): Merge conflict in ${c.path}${c.reason ? ` (${c.reason})` : ''}`;
    case 'DeleteModify':
      return `CONFLICT (modify/delete): ${c.path} deleted in HEAD and modified in ${theirs}.  Version ${theirs} of ${c.path} left in tree.`;
    case 'ModifyDelete':
      return `CONFLICT (modify/delete): ${c.path} deleted in ${theirs} and modified in HEAD.  Version HEAD of ${c.path} left in tree.`;
  }
}

export function mergeStopped(conflicts: readonly ConflictRecord[], theirs: string): MediaGitError {
  const lines = conflicts.map((c) => conflictLine(c, theirs));
  lines.push('Automatic merge failed; fix conflicts and then commit the result.');
  return new MediaGitError('MERGE_CONFLICT', lines.join('\n'), {
    kind: 'user',
    data: { conflicts: conflicts.map((c) => ({ path: c.path, type: c.type })), exitCode: 1 },
  });
}

export function withNewline(message: string): string {
  return message.endsWith('\n') ? message : `${message}\n`;
}

function conflictsNotSupported(conflicts: readonly PathConflict[], where?: string): MediaGitError {
  const list = conflicts.map((c) => conflictLine(c, 'theirs')).join('\n');
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
