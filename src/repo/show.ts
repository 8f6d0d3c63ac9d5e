/**
 * `show`: one object, the way Git shows it.
 *
 *   <commit>        the commit and its changes against its first parent
 *   <tag>           an annotated tag's header, then what it points at
 *   <rev>:<path>    a file's exact bytes as committed (the CLI streams them)
 *                   or a directory's listing; ":<path>" reads the index
 *   <tree>          a directory listing
 *
 * A `<rev>:<path>` path is relative to the repository root unless it starts
 * with "./" or "../", which make it relative to the current directory.
 */
import fs from 'node:fs';
import { MediaGitError } from '../errors.ts';
import { decodeTag, type Commit, type Tag } from '../odb/commit.ts';
import type { FileObjectKind } from '../odb/file-store.ts';
import { decodeManifest } from '../odb/manifest.ts';
import type { ObjectId } from '../odb/object-id.ts';
import { compareNames, type FileMode } from '../odb/tree.ts';
import { diffTrees, type DiffDetail, type FileDiff } from './diff.ts';
import { StagingIndex } from './index-file.ts';
import { unbornBranch } from './log.ts';
import { readMergeState } from './merge-state.ts';
import { Refs } from './refs.ts';
import type { Repository } from './repository.ts';
import { resolveCommit, resolveObject } from './revision.ts';
import { readCommit, readTree } from './tree-ops.ts';
import { absolutePath, toRepoPath } from './worktree.ts';

export interface ShowOptions {
  /** Directory `./` paths are relative to. */
  readonly cwd: string;
  /** How much of a commit's changes to compute; 'none' for the header only. */
  readonly files?: DiffDetail | 'none';
  readonly context?: number;
  readonly signal?: AbortSignal | undefined;
}

export interface ShownTag {
  readonly id: ObjectId;
  readonly tag: Tag;
}

/** A stored file: the CLI streams its bytes with `streamFileContent`. */
export interface ShownFile {
  readonly kind: FileObjectKind;
  readonly id: ObjectId;
  readonly mode: Exclude<FileMode, '40000'>;
  readonly size: number;
}

export type ShowResult =
  | {
      readonly type: 'commit';
      /** Annotated tags passed on the way to the commit, outermost first. */
      readonly tags: ShownTag[];
      readonly id: ObjectId;
      readonly commit: Commit;
      readonly files: FileDiff[];
    }
  | {
      readonly type: 'file';
      readonly tags: ShownTag[];
      readonly path: string;
      readonly file: ShownFile;
    }
  | {
      readonly type: 'tree';
      readonly tags: ShownTag[];
      /** How the user named it, for the `tree <name>` line. */
      readonly label: string;
      readonly entries: { readonly name: string; readonly directory: boolean }[];
    };

function pathMissing(path: string, where: string, onDisk: boolean): MediaGitError {
  const message = onDisk
    ? `path '${path}' exists on disk, but not in '${where}'`
    : `path '${path}' does not exist in '${where}'`;
  return new MediaGitError('PATH_NOT_IN_REVISION', message, {
    kind: 'usage',
    data: { path, revision: where },
  });
}

function existsOnDisk(repo: Repository, repoPath: string): boolean {
  if (repo.workTree === undefined || repoPath === '') return false;
  try {
    fs.lstatSync(absolutePath(repo.workTree, repoPath));
    return true;
  } catch {
    return false;
  }
}

function toTreePath(repo: Repository, cwd: string, userPath: string): string {
  if (/^\.\.?(\/|$)/.test(userPath) && repo.workTree !== undefined)
    return toRepoPath(repo.workTree, cwd, userPath);
  return userPath
    .split('/')
    .filter((part) => part !== '' && part !== '.')
    .join('/');
}

async function listTree(repo: Repository, treeId: ObjectId, label: string): Promise<ShowResult> {
  const entries = (await readTree(repo.objects, treeId)).map((e) => ({
    name: e.name,
    directory: e.kind === 'tree',
  }));
  // Git lists a tree in its own order, where a directory sorts as "name/".
  const key = (e: { name: string; directory: boolean }): string =>
    e.directory ? `${e.name}/` : e.name;
  entries.sort((a, b) => compareNames(key(a), key(b)));
  return { type: 'tree', tags: [], label, entries };
}

async function showPath(
  repo: Repository,
  rev: string,
  userPath: string,
  options: ShowOptions,
): Promise<ShowResult> {
  const repoPath = toTreePath(repo, options.cwd, userPath);
  if (/^[1-3]$/.test(rev)) {
    // ":1:path", ":2:path", ":3:path": the base, ours and theirs of a conflicted
    // path, which a stopped merge records (merge-state.ts).
    const conflict = (await readMergeState(repo))?.conflicts.find((c) => c.path === repoPath);
    const version = conflict
      ? [conflict.base, conflict.ours, conflict.theirs][Number(rev) - 1]
      : undefined;
    if (!version) {
      const message = conflict
        ? `path '${userPath}' is in the index, but not at stage ${rev}`
        : `path '${userPath}' is not in conflict: it has no stage ${rev} (use :${userPath})`;
      throw new MediaGitError('PATH_NOT_AT_STAGE', message, {
        kind: 'usage',
        data: { path: userPath, stage: Number(rev) },
      });
    }
    return { type: 'file', tags: [], path: repoPath, file: shownFile(version) };
  }
  if (rev === '' || rev === '0') {
    // ":path" and ":0:path": the index (stage 0).
    const index = await StagingIndex.load(repo.gitDir);
    const entry = index.entries.get(repoPath);
    if (!entry) {
      const onDisk = existsOnDisk(repo, repoPath);
      const message = onDisk
        ? `path '${userPath}' exists on disk, but not in the index`
        : `path '${userPath}' does not exist (neither on disk nor in the index)`;
      throw new MediaGitError('PATH_NOT_IN_INDEX', message, {
        kind: 'usage',
        data: { path: userPath },
      });
    }
    return { type: 'file', tags: [], path: repoPath, file: shownFile(entry) };
  }
  const commitId = await resolveCommit(repo, rev);
  let treeId = (await readCommit(repo.objects, commitId)).tree;
  if (repoPath === '') return listTree(repo, treeId, `${rev}:${userPath}`);
  const parts = repoPath.split('/');
  for (const [i, part] of parts.entries()) {
    const entry = (await readTree(repo.objects, treeId)).find((e) => e.name === part);
    const last = i === parts.length - 1;
    if (!entry || (!last && entry.kind !== 'tree'))
      throw pathMissing(userPath, rev, existsOnDisk(repo, repoPath));
    if (entry.kind === 'tree') {
      treeId = entry.id;
      if (last) return listTree(repo, treeId, `${rev}:${userPath}`);
      continue;
    }
    return {
      type: 'file',
      tags: [],
      path: repoPath,
      file: shownFile({ ...entry, kind: entry.kind }),
    };
  }
  throw pathMissing(userPath, rev, false);
}

/** A stored file as `show` reports it, from an index entry, a tree entry or a conflict side. */
function shownFile(version: {
  readonly kind: FileObjectKind;
  readonly id: ObjectId;
  readonly mode: string;
  readonly size: number;
}): ShownFile {
  return {
    kind: version.kind,
    id: version.id,
    mode: version.mode as ShownFile['mode'],
    size: version.size,
  };
}

export async function show(
  repo: Repository,
  spec: string | undefined,
  options: ShowOptions,
): Promise<ShowResult> {
  if (spec === undefined) {
    const head = await new Refs(repo).head();
    if (!head.id) throw unbornBranch(head.branch);
    spec = 'HEAD';
  }
  const colon = spec.indexOf(':');
  if (colon >= 0) {
    let rev = spec.slice(0, colon);
    let rest = spec.slice(colon + 1);
    const stage = /^([0-3]):(.*)$/s.exec(rest);
    if (rev === '' && stage) {
      rev = stage[1]!;
      rest = stage[2]!;
    }
    return showPath(repo, rev, rest, options);
  }
  const tags: ShownTag[] = [];
  let id = await resolveObject(repo, spec);
  for (let depth = 0; depth < 10; depth++) {
    const object = await repo.objects.read(id);
    if (object.type === 'tag') {
      const tag = decodeTag(id, object.data);
      tags.push({ id, tag });
      id = tag.object;
      continue;
    }
    if (object.type === 'commit') {
      const commit = await readCommit(repo.objects, id);
      const parent = commit.parents[0];
      const parentTree = parent ? (await readCommit(repo.objects, parent)).tree : undefined;
      const files =
        options.files === 'none'
          ? []
          : await diffTrees(repo, parentTree, commit.tree, {
              detail: options.files ?? 'patch',
              context: options.context ?? 3,
              signal: options.signal,
            });
      return { type: 'commit', tags, id, commit, files };
    }
    if (object.type === 'tree') return { ...(await listTree(repo, id, spec)), tags };
    if (object.type === 'blob' || object.type === 'manifest') {
      const file: ShownFile = {
        kind: object.type,
        id,
        mode: '100644',
        size: object.type === 'blob' ? object.data.length : decodeManifest(id, object.data).size,
      };
      return { type: 'file', tags, path: spec, file };
    }
    throw new MediaGitError(
      'NOT_SHOWABLE',
      `object ${id} is a ${object.type}; it cannot be shown`,
      {
        kind: 'usage',
        data: { id, type: object.type },
      },
    );
  }
  throw new MediaGitError('TAG_CHAIN', `tag chain from '${spec}' is too deep`, { kind: 'corrupt' });
}
