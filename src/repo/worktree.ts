/**
 * The working tree: turning user paths into repository paths, walking files
 * with `.mediagitignore` rules, and refusing hostile paths.
 *
 * Repository paths are "/"-separated and relative to the work tree root; every
 * component passes `isSafeName`, so no path from a tree or a user can escape
 * the work tree or reach into `.mediagit`.
 */
import fs from 'node:fs';
import path from 'node:path';
import ignore, { type Ignore } from 'ignore';
import { MediaGitError } from '../errors.ts';
import { isSafeName } from '../odb/tree.ts';
import { REPO_DIR } from './repository.ts';

export const IGNORE_FILE = '.mediagitignore';

export function hostilePath(p: string): MediaGitError {
  return new MediaGitError('HOSTILE_PATH', `refusing unsafe path '${p}'`, {
    kind: 'user',
    data: { path: p },
  });
}

export function assertSafeRepoPath(p: string): void {
  if (p.length === 0 || !p.split('/').every(isSafeName)) throw hostilePath(p);
}

/**
 * Converts a user-given path (relative to `cwd`) to a repository path ("" is
 * the root). Throws when it lies outside the work tree or inside `.mediagit`.
 */
export function toRepoPath(workTree: string, cwd: string, userPath: string): string {
  const absolute = path.resolve(cwd, userPath);
  const relative = path.relative(workTree, absolute);
  if (relative === '') return '';
  if (relative.startsWith('..') || path.isAbsolute(relative)) {
    throw new MediaGitError(
      'OUTSIDE_REPO',
      `'${userPath}' is outside repository at '${workTree}'`,
      {
        kind: 'usage',
        data: { path: userPath },
      },
    );
  }
  const repoPath = relative.split(path.sep).join('/');
  if (repoPath.split('/').some((part) => part.toLowerCase() === REPO_DIR))
    throw hostilePath(userPath);
  return repoPath;
}

export function absolutePath(workTree: string, repoPath: string): string {
  return path.join(workTree, ...repoPath.split('/'));
}

/** True when `p` equals `prefix` or lies under it ("" matches everything). */
export function isUnder(p: string, prefix: string): boolean {
  return prefix === '' || p === prefix || p.startsWith(prefix + '/');
}

export interface WorkFile {
  readonly path: string;
  readonly stats: fs.Stats;
}

/** Ignore rules: every `.mediagitignore` from the root down to a directory. */
export class IgnoreRules {
  readonly #workTree: string;
  readonly #byDir = new Map<string, Ignore | null>();

  constructor(workTree: string) {
    this.#workTree = workTree;
  }

  #rulesFor(dir: string): Ignore | null {
    let rules = this.#byDir.get(dir);
    if (rules !== undefined) return rules;
    try {
      const text = fs.readFileSync(
        path.join(absolutePath(this.#workTree, dir || '.'), IGNORE_FILE),
        'utf8',
      );
      rules = ignore().add(text);
    } catch {
      rules = null;
    }
    this.#byDir.set(dir, rules);
    return rules;
  }

  /** Whether `repoPath` (a directory when `isDir`) is ignored, checking every level. */
  ignores(repoPath: string, isDir: boolean): boolean {
    const parts = repoPath.split('/');
    // A path inside an ignored directory is ignored.
    for (let depth = 1; depth < parts.length; depth++) {
      if (this.#matches(parts.slice(0, depth).join('/'), true)) return true;
    }
    return this.#matches(repoPath, isDir);
  }

  #matches(repoPath: string, isDir: boolean): boolean {
    const parts = repoPath.split('/');
    let ignored = false;
    for (let depth = 0; depth < parts.length; depth++) {
      const rules = this.#rulesFor(parts.slice(0, depth).join('/'));
      if (!rules) continue;
      const rel = parts.slice(depth).join('/') + (isDir ? '/' : '');
      const result = rules.test(rel);
      if (result.ignored) ignored = true;
      else if (result.unignored) ignored = false;
    }
    return ignored;
  }

  /** Checks one directory entry whose parent is already known not ignored. */
  ignoresEntry(parent: string, name: string, isDir: boolean): boolean {
    const repoPath = parent ? `${parent}/${name}` : name;
    return this.#matches(repoPath, isDir);
  }
}

/**
 * Lists files and symlinks under `start` ("" for the whole tree), skipping
 * `.mediagit` folders and, unless `includeIgnored`, ignored paths. Symlinks are
 * never followed. Names that are unsafe in a repository are skipped.
 */
export function walkWorkTree(
  workTree: string,
  start: string,
  rules: IgnoreRules,
  options: { includeIgnored?: boolean; onIgnored?: (p: string) => void } = {},
): WorkFile[] {
  const out: WorkFile[] = [];
  const visit = (dir: string): void => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(absolutePath(workTree, dir || '.'), { withFileTypes: true });
    } catch {
      return;
    }
    for (const entry of entries) {
      const name = entry.name;
      if (!isSafeName(name)) continue;
      const repoPath = dir ? `${dir}/${name}` : name;
      const isDir = entry.isDirectory();
      if (!options.includeIgnored && rules.ignoresEntry(dir, name, isDir)) {
        options.onIgnored?.(repoPath);
        continue;
      }
      if (isDir) {
        visit(repoPath);
      } else if (entry.isFile() || entry.isSymbolicLink()) {
        try {
          out.push({ path: repoPath, stats: fs.lstatSync(absolutePath(workTree, repoPath)) });
        } catch {
          // Vanished between readdir and lstat: it is simply not there.
        }
      }
    }
  };
  if (start === '') {
    visit('');
  } else {
    let stats: fs.Stats | undefined;
    try {
      stats = fs.lstatSync(absolutePath(workTree, start));
    } catch {
      stats = undefined;
    }
    if (stats?.isDirectory()) visit(start);
    else if (stats && (stats.isFile() || stats.isSymbolicLink())) out.push({ path: start, stats });
  }
  return out;
}
