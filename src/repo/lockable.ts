/**
 * Lockable paths of a MediaGit repository (docs/locks.md): files that must
 * be locked before they are edited, as git-lfs's `lockable` attribute and
 * Perforce's `+l` file type mark them. They are checked out read-only; the
 * lock command makes one writable and unlock read-only again.
 *
 * The patterns live in the repository's config, `locks.lockable`, as one
 * string of space-separated `.gitattributes`-style patterns (a space inside
 * a pattern is written `[[:space:]]`, as `mediagit track` writes it). A
 * pattern without a slash matches a file's name in any folder; one with a
 * slash matches the whole path from the root.
 */
import fs from 'node:fs/promises';
import { updateConfigFile } from '../config/config.ts';
import { MediaGitError, hasErrnoCode } from '../errors.ts';
import { StagingIndex } from './index-file.ts';
import { globToRegExp } from './pathspec.ts';
import type { Repository } from './repository.ts';
import { absolutePath } from './worktree.ts';

export const LOCKABLE_KEY = 'locks.lockable';

/** The lockable patterns configured for `repo` (none: an empty list). */
export function lockablePatterns(repo: Pick<Repository, 'config'>): string[] {
  const value = repo.config(LOCKABLE_KEY);
  if (typeof value !== 'string') return [];
  return value
    .split(/\s+/)
    .filter((p) => p !== '')
    .map((p) => p.replaceAll('[[:space:]]', ' '));
}

/** A test for repository paths matching any of `patterns` (undefined when there are none). */
export function lockableMatcher(
  patterns: readonly string[],
): ((repoPath: string) => boolean) | undefined {
  if (patterns.length === 0) return undefined;
  const tests = patterns.map((pattern) => {
    const anchored = pattern.includes('/');
    const regexp = globToRegExp(pattern.replace(/^\//, ''));
    return anchored
      ? (p: string) => regexp.test(p)
      : (p: string) => regexp.test(p.slice(p.lastIndexOf('/') + 1));
  });
  return (repoPath) => tests.some((test) => test(repoPath));
}

function checkLockablePattern(pattern: string): string {
  if (
    pattern === '' ||
    /[\0\n]/.test(pattern) ||
    pattern.startsWith('#') ||
    pattern.startsWith('!')
  ) {
    throw new MediaGitError('BAD_PATTERN', `not a usable pattern: ${JSON.stringify(pattern)}`, {
      kind: 'usage',
    });
  }
  return pattern;
}

async function saveLockable(repo: Repository, patterns: readonly string[]): Promise<void> {
  const value = patterns.map((p) => p.replaceAll(' ', '[[:space:]]')).join(' ');
  await updateConfigFile(repo.configPath, LOCKABLE_KEY, value === '' ? undefined : value);
}

/** Adds lockable patterns to the repository's config; returns those newly added. */
export async function addLockable(
  repo: Repository,
  patterns: readonly string[],
): Promise<string[]> {
  const present = lockablePatterns(repo);
  const added = patterns.map(checkLockablePattern).filter((p, i, all) => {
    return !present.includes(p) && all.indexOf(p) === i;
  });
  if (added.length > 0) await saveLockable(repo, [...present, ...added]);
  return added;
}

/** Removes lockable patterns from the repository's config; returns those removed. */
export async function removeLockable(
  repo: Repository,
  patterns: readonly string[],
): Promise<string[]> {
  const present = lockablePatterns(repo);
  const removed = present.filter((p) => patterns.includes(p));
  if (removed.length > 0)
    await saveLockable(
      repo,
      present.filter((p) => !removed.includes(p)),
    );
  return removed;
}

/**
 * Makes the files at `files` (absolute paths, each a lockable file just
 * written) read-only: every write bit cleared, the rest of the mode kept.
 * Called on files before they are renamed into the work tree, so the
 * index records the stat data of the final file.
 */
export async function makeReadOnly(files: readonly string[]): Promise<void> {
  for (const file of files) {
    const stats = await fs.lstat(file).catch((error: unknown) => {
      if (hasErrnoCode(error, 'ENOENT')) return undefined;
      throw error;
    });
    if (stats?.isFile()) await fs.chmod(file, stats.mode & 0o7555);
  }
}

/**
 * Makes the work tree's files that match the lockable patterns read-only
 * (those in the index; what `track --lockable` does for files already
 * checked out, as git-lfs does). Returns their repository paths.
 */
export async function makeLockableFilesReadOnly(
  repo: Repository,
  patterns: readonly string[],
): Promise<string[]> {
  const workTree = repo.requireWorkTree('track');
  const matcher = lockableMatcher(patterns);
  if (!matcher) return [];
  const index = await StagingIndex.load(repo.gitDir);
  const paths = [...index.entries.values()]
    .filter((e) => e.mode !== '120000' && matcher(e.path))
    .map((e) => e.path);
  await makeReadOnly(paths.map((p) => absolutePath(workTree, p)));
  return paths;
}

/** Gives the owner write permission on `file` again (a no-op if it is absent or a symlink). */
export async function makeWritable(file: string): Promise<void> {
  const stats = await fs.lstat(file).catch((error: unknown) => {
    if (hasErrnoCode(error, 'ENOENT')) return undefined;
    throw error;
  });
  if (stats?.isFile()) await fs.chmod(file, (stats.mode & 0o7777) | 0o200);
}
