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
  /** Per directory: the rule sets that apply inside it, with their base directory. */
  readonly #chains = new Map<string, readonly RuleSet[]>();

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

  /** The rule sets that apply to entries of `dir`, root first. */
  chainFor(dir: string): readonly RuleSet[] {
    let chain = this.#chains.get(dir);
    if (chain) return chain;
    const parent =
      dir === '' ? [] : this.chainFor(dir.includes('/') ? dir.slice(0, dir.lastIndexOf('/')) : '');
    const own = this.#rulesFor(dir);
    chain = own ? [...parent, { base: dir, rules: own }] : parent;
    this.#chains.set(dir, chain);
    return chain;
  }

  /** Whether `repoPath` (a directory when `isDir`) is ignored, checking every level. */
  ignores(repoPath: string, isDir: boolean): boolean {
    const parts = repoPath.split('/');
    // A path inside an ignored directory is ignored.
    for (let depth = 1; depth < parts.length; depth++) {
      const parent = parts.slice(0, depth - 1).join('/');
      if (this.ignoresEntry(parent, parts[depth - 1]!, true)) return true;
    }
    const parent = parts.slice(0, -1).join('/');
    return this.ignoresEntry(parent, parts[parts.length - 1]!, isDir);
  }

  /** Checks one directory entry whose parent is already known not ignored. */
  ignoresEntry(parent: string, name: string, isDir: boolean): boolean {
    const chain = this.chainFor(parent);
    if (chain.length === 0) return false;
    const repoPath = parent ? `${parent}/${name}` : name;
    let ignored = false;
    for (const { base, rules } of chain) {
      const rel = (base === '' ? repoPath : repoPath.slice(base.length + 1)) + (isDir ? '/' : '');
      const result = rules.test(rel);
      if (result.ignored) ignored = true;
      else if (result.unignored) ignored = false;
    }
    return ignored;
  }
}

interface RuleSet {
  readonly base: string;
  readonly rules: Ignore;
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
  options: {
    includeIgnored?: boolean;
    onIgnored?: (p: string) => void;
    /** Called for every directory visited, `start` included. */
    onDirectory?: (dir: string) => void;
  } = {},
): WorkFile[] {
  const out: WorkFile[] = [];
  const visit = (dir: string): void => {
    options.onDirectory?.(dir);
    const dirAbs = dir === '' ? workTree : absolutePath(workTree, dir);
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dirAbs, { withFileTypes: true });
    } catch {
      return;
    }
    const checkIgnore = !options.includeIgnored && rules.chainFor(dir).length > 0;
    for (const entry of entries) {
      const name = entry.name;
      if (!isSafeName(name)) continue;
      const repoPath = dir ? `${dir}/${name}` : name;
      const isDir = entry.isDirectory();
      if (checkIgnore && rules.ignoresEntry(dir, name, isDir)) {
        options.onIgnored?.(repoPath);
        continue;
      }
      if (isDir) {
        visit(repoPath);
      } else if (entry.isFile() || entry.isSymbolicLink()) {
        const stats = lstatOrUndefined(`${dirAbs}${path.sep}${name}`);
        // Vanished between readdir and lstat: it is simply not there.
        if (stats) out.push({ path: repoPath, stats });
      }
    }
  };
  if (start === '') {
    visit('');
  } else {
    const stats = lstatOrUndefined(absolutePath(workTree, start));
    if (stats?.isDirectory()) visit(start);
    else if (stats && (stats.isFile() || stats.isSymbolicLink())) out.push({ path: start, stats });
  }
  return out;
}

/** lstat, or undefined when the path is gone or a parent is no longer a directory. */
export function lstatOrUndefined(full: string): fs.Stats | undefined {
  try {
    return fs.lstatSync(full, { throwIfNoEntry: false });
  } catch {
    return undefined;
  }
}
