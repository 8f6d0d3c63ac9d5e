/**
 * `mv`: rename a tracked file or directory in the working tree and the index.
 *
 * `mv <src> <dst>` renames; `mv <src>... <dir>` moves into an existing
 * directory. As in Git, a source must be tracked (a directory must hold
 * tracked files), the destination must not exist unless `force` (and never
 * as a directory), the destination's folder must exist, and a directory
 * cannot move into itself. Every problem is found before anything moves;
 * `skipErrors` (`-k`) drops the sources with problems instead of failing.
 * Index entries keep their object IDs; an entry whose file was unmodified
 * gets the renamed file's fresh stat data so status stays cheap.
 */
import fs from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { MediaGitError, hasErrnoCode } from '../errors.ts';
import { statMatches, StagingIndex, type IndexEntry } from './index-file.ts';
import type { Repository } from './repository.ts';
import { absolutePath, assertSafeRepoPath, isUnder, toRepoPath } from './worktree.ts';
import { parentsAreDirectories } from './worktree-update.ts';

export interface MvOptions {
  readonly sources: readonly string[];
  readonly destination: string;
  readonly cwd: string;
  /** Overwrite an existing destination file. */
  readonly force?: boolean | undefined;
  /** Skip sources that cannot be moved instead of failing (`-k`). */
  readonly skipErrors?: boolean | undefined;
  readonly dryRun?: boolean | undefined;
}

export interface Move {
  readonly from: string;
  readonly to: string;
}

export interface MvResult {
  /** What was renamed in the working tree, in order. */
  readonly moves: Move[];
  /** Destinations that existed and were overwritten (`force`). */
  readonly overwritten: string[];
}

async function lstatOrUndefined(workTree: string, p: string): Promise<Stats | undefined> {
  if (p !== '' && !(await parentsAreDirectories(workTree, p))) return undefined;
  try {
    return await fs.lstat(absolutePath(workTree, p));
  } catch (error) {
    if (hasErrnoCode(error, 'ENOENT') || hasErrnoCode(error, 'ENOTDIR')) return undefined;
    throw error;
  }
}

function mvError(code: string, what: string, move?: Move): MediaGitError {
  const where = move ? `, source=${move.from}, destination=${move.to}` : '';
  return new MediaGitError(code, `${what}${where}`, { kind: 'usage', data: { ...move } });
}

function baseName(p: string): string {
  return p.slice(p.lastIndexOf('/') + 1);
}

export async function mv(repo: Repository, options: MvOptions): Promise<MvResult> {
  const workTree = repo.requireWorkTree('mv');
  if (options.sources.length === 0) {
    throw new MediaGitError(
      'MV_USAGE',
      'usage: mediagit mv [<options>] <source>... <destination>',
      {
        kind: 'usage',
      },
    );
  }
  const destination = toRepoPath(workTree, options.cwd, options.destination);
  const destStats = await lstatOrUndefined(workTree, destination);
  const intoDirectory = destStats?.isDirectory() === true;
  if (options.sources.length > 1 && !intoDirectory) {
    throw mvError('MV_NOT_A_DIRECTORY', `destination '${options.destination}' is not a directory`);
  }
  const lock = await StagingIndex.lock(repo.gitDir);
  try {
    const index = await StagingIndex.load(repo.gitDir);
    const tracked = index.sortedPaths();
    const moves: Move[] = [];
    const overwritten: string[] = [];
    const targets = new Set<string>();
    for (const userSource of options.sources) {
      const from = toRepoPath(workTree, options.cwd, userSource);
      const to = intoDirectory
        ? destination === ''
          ? baseName(from)
          : `${destination}/${baseName(from)}`
        : destination;
      const move = { from, to };
      try {
        const problem = await checkMove(workTree, move, tracked, targets, options.force === true);
        if (problem.overwrite) overwritten.push(to);
        targets.add(to);
        moves.push(move);
      } catch (error) {
        if (options.skipErrors && error instanceof MediaGitError) continue;
        throw error;
      }
    }
    if (options.dryRun) return { moves, overwritten };

    for (const move of moves) {
      const entries = tracked.filter((p) => isUnder(p, move.from));
      // Which entries matched their files before the move (so their stat data can follow).
      const clean = new Set<string>();
      for (const p of entries) {
        const stats = await lstatOrUndefined(workTree, p);
        const entry = index.entries.get(p)!;
        if (stats && statMatches(entry, stats, index.fileMtimeMs)) clean.add(p);
      }
      await fs.rename(absolutePath(workTree, move.from), absolutePath(workTree, move.to));
      if (overwritten.includes(move.to)) index.entries.delete(move.to);
      for (const p of entries) {
        const entry = index.entries.get(p)!;
        const newPath = move.to + p.slice(move.from.length);
        assertSafeRepoPath(newPath);
        index.entries.delete(p);
        let moved: IndexEntry = { ...entry, path: newPath };
        if (clean.has(p)) {
          const stats = await lstatOrUndefined(workTree, newPath);
          if (stats) {
            moved = {
              ...moved,
              mtimeMs: stats.mtimeMs,
              ctimeMs: stats.ctimeMs,
              ino: stats.ino,
              dev: stats.dev,
              size: stats.size,
            };
          }
        }
        index.entries.set(newPath, moved);
      }
    }
    await index.save(lock);
    return { moves, overwritten };
  } finally {
    await lock.release();
  }
}

/** Throws Git's error for a move that cannot be done; tells whether it overwrites a file. */
async function checkMove(
  workTree: string,
  move: Move,
  tracked: readonly string[],
  targets: ReadonlySet<string>,
  force: boolean,
): Promise<{ overwrite: boolean }> {
  const { from, to } = move;
  if (from === '') throw mvError('MV_BAD_SOURCE', 'bad source', move);
  assertSafeRepoPath(to);
  const sourceStats = await lstatOrUndefined(workTree, from);
  if (!sourceStats) throw mvError('MV_BAD_SOURCE', 'bad source', move);
  if (isUnder(to, from))
    throw mvError('MV_INTO_ITSELF', 'can not move directory into itself', move);
  if (sourceStats.isDirectory()) {
    if (!tracked.some((p) => isUnder(p, from) && p !== from)) {
      throw mvError('MV_EMPTY_SOURCE', 'source directory is empty', move);
    }
  } else if (!tracked.includes(from)) {
    throw mvError('MV_UNTRACKED', 'not under version control', move);
  }
  if (targets.has(to))
    throw mvError('MV_SAME_TARGET', 'multiple sources for the same target', move);
  const slash = to.lastIndexOf('/');
  const parent = slash < 0 ? '' : to.slice(0, slash);
  const parentStats = parent === '' ? undefined : await lstatOrUndefined(workTree, parent);
  if (parent !== '' && !parentStats?.isDirectory()) {
    throw new MediaGitError(
      'MV_NO_DESTINATION_DIR',
      `renaming '${from}' failed: No such file or directory`,
      { kind: 'usage', data: { ...move } },
    );
  }
  const destStats = await lstatOrUndefined(workTree, to);
  if (!destStats) return { overwrite: false };
  if (!force || destStats.isDirectory() || sourceStats.isDirectory()) {
    throw mvError('MV_DESTINATION_EXISTS', 'destination exists', move);
  }
  return { overwrite: true };
}
