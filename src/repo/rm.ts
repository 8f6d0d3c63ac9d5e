/**
 * `rm`: remove files from the index and (unless `--cached`) the working tree.
 *
 * Like Git, it refuses, naming every such file, to drop content that exists
 * nowhere else: a file whose index entry differs from both HEAD and the
 * working file, and (without `--cached`) a file with staged changes or local
 * modifications; `-f` overrides. A directory needs `-r`. Folders emptied by
 * the removal are removed too.
 */
import fs from 'node:fs/promises';
import { loadSparse } from './sparse.ts';
import { MediaGitError, hasErrnoCode } from '../errors.ts';
import { StagingIndex } from './index-file.ts';
import { matchesPathspec, parsePathspecs, type Pathspec } from './pathspec.ts';
import { Refs } from './refs.ts';
import { resolveConflicts } from './merge-state.ts';
import type { Repository } from './repository.ts';
import { flattenCommit } from './tree-ops.ts';
import { absolutePath } from './worktree.ts';
import {
  parentsAreDirectories,
  pruneEmptyParents,
  removeWorkFile,
  sameVersion,
  workFileMatches,
} from './worktree-update.ts';

export interface RmOptions {
  readonly paths: readonly string[];
  readonly cwd: string;
  /** Only remove from the index, keep the working files. */
  readonly cached?: boolean | undefined;
  /** Also paths outside the sparse-checkout patterns. */
  readonly sparse?: boolean | undefined;
  /** Allow removing every file under a named directory. */
  readonly recursive?: boolean | undefined;
  /** Skip the up-to-date checks. */
  readonly force?: boolean | undefined;
  readonly dryRun?: boolean | undefined;
  /** Exit successfully even when a pathspec matches nothing. */
  readonly ignoreUnmatch?: boolean | undefined;
}

export interface RmResult {
  /** Index paths removed (or that would be, with `dryRun`). */
  readonly removed: string[];
  /** Paths left alone because they are outside the sparse-checkout patterns (no --sparse). */
  readonly outside: string[];
}

function plural(count: number, one: string, many: string): string {
  return count === 1 ? one : many;
}

function listing(paths: readonly string[]): string {
  return paths.map((p) => `    ${p}\n`).join('');
}

/** Git's refusal, one block per reason. */
function wouldLoseContent(staged: string[], cached: string[], local: string[]): MediaGitError {
  const blocks: string[] = [];
  if (staged.length > 0) {
    blocks.push(
      `the following ${plural(staged.length, 'file has', 'files have')} staged content different from both the\nfile and the HEAD:\n` +
        `${listing(staged)}(use -f to force removal)`,
    );
  }
  if (cached.length > 0) {
    blocks.push(
      `the following ${plural(cached.length, 'file has', 'files have')} changes staged in the index:\n` +
        `${listing(cached)}(use --cached to keep the file, or -f to force removal)`,
    );
  }
  if (local.length > 0) {
    blocks.push(
      `the following ${plural(local.length, 'file has', 'files have')} local modifications:\n` +
        `${listing(local)}(use --cached to keep the file, or -f to force removal)`,
    );
  }
  return new MediaGitError('RM_WOULD_LOSE', blocks.join('\nerror: '), {
    kind: 'user',
    data: { staged, cached, local },
  });
}

export async function rm(repo: Repository, options: RmOptions): Promise<RmResult> {
  const workTree = repo.requireWorkTree('rm');
  if (options.paths.length === 0) {
    throw new MediaGitError('NO_PATHS', 'No pathspec was given. Which files should I remove?', {
      kind: 'usage',
    });
  }
  const specs = parsePathspecs(workTree, options.cwd, options.paths);
  const lock = await StagingIndex.lock(repo.gitDir);
  try {
    const index = await StagingIndex.load(repo.gitDir);
    const paths = index.sortedPaths();
    const chosen: string[] = [];
    for (const spec of specs) {
      const matches = paths.filter((p) => matchesPathspec(spec, p));
      if (matches.length === 0) {
        if (options.ignoreUnmatch) continue;
        throw new MediaGitError(
          'PATHSPEC_NO_MATCH',
          `pathspec '${spec.original}' did not match any files`,
          { kind: 'usage', data: { pathspec: spec.original } },
        );
      }
      if (!options.recursive && isDirectorySpec(spec, matches)) {
        throw new MediaGitError(
          'RM_NEEDS_RECURSIVE',
          `not removing '${spec.original}' recursively without -r`,
          { kind: 'usage', data: { pathspec: spec.original } },
        );
      }
      chosen.push(...matches);
    }
    // Outside the sparse-checkout patterns only with --sparse, as in Git:
    // the rest is removed, and those are named (exit 1).
    const sparse = options.sparse ? undefined : await loadSparse(repo);
    const outside = sparse ? chosen.filter((p) => !sparse.includes(p)) : [];
    const removed = [...new Set(chosen)].filter((p) => !outside.includes(p)).sort();

    if (!options.force) {
      const head = await new Refs(repo).head();
      const headFiles = await flattenCommit(repo.objects, head.id);
      const staged: string[] = [];
      const cached: string[] = [];
      const local: string[] = [];
      for (const p of removed) {
        const entry = index.entries.get(p)!;
        if (!(await parentsAreDirectories(workTree, p))) continue;
        let isDirectory: boolean;
        try {
          isDirectory = (await fs.lstat(absolutePath(workTree, p))).isDirectory();
        } catch (error) {
          if (hasErrnoCode(error, 'ENOENT')) continue;
          throw error;
        }
        // A file replaced by a folder counts as gone, as in Git.
        if (isDirectory) continue;
        const localChange = !(await workFileMatches(repo, entry, entry, index.fileMtimeMs)).matches;
        const stagedChange = head.id === undefined || !sameVersion(headFiles.get(p), entry);
        if (localChange && stagedChange) staged.push(p);
        else if (!options.cached) {
          if (stagedChange) cached.push(p);
          if (localChange) local.push(p);
        }
      }
      if (staged.length + cached.length + local.length > 0) {
        throw wouldLoseContent(staged, cached, local);
      }
    }
    if (options.dryRun) return { removed, outside: [...new Set(outside)].sort() };

    for (const p of removed) index.entries.delete(p);
    await index.save(lock);
    // Removing a conflicted path is one way to resolve it.
    await resolveConflicts(repo, removed);
    if (!options.cached) {
      const parents = new Set<string>();
      for (const p of removed) {
        if (await removeWorkFile(workTree, p)) {
          const slash = p.lastIndexOf('/');
          if (slash > 0) parents.add(p.slice(0, slash));
        }
      }
      await pruneEmptyParents(workTree, parents);
    }
    return { removed, outside: [...new Set(outside)].sort() };
  } finally {
    await lock.release();
  }
}

/** True when a pathspec names a directory (its matches lie below it, not at it). */
function isDirectorySpec(spec: Pathspec, matches: readonly string[]): boolean {
  return spec.glob === undefined && !matches.includes(spec.path);
}
