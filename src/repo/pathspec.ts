/**
 * Pathspecs: which repository paths the path arguments of `rm`, `restore`,
 * `reset` and `checkout -- <paths>` name.
 *
 * A pathspec is a user path made relative to the work tree root. Without
 * wildcards it names that file, or every path under that directory ("" names
 * everything). With `*`, `?` or `[...]` it is a glob over the whole repository
 * path in which `*` also matches "/", as in Git's default pathspec matching.
 */
import { toRepoPath } from './worktree.ts';
import { isUnder } from './worktree.ts';

export interface Pathspec {
  /** The argument as the user typed it (for error messages). */
  readonly original: string;
  /** The repository path it names ("" for the work tree root). */
  readonly path: string;
  /** Set when the pathspec holds wildcards. */
  readonly glob: RegExp | undefined;
}

const WILDCARD = /[*?[]/;

export function parsePathspecs(
  workTree: string,
  cwd: string,
  paths: readonly string[],
): Pathspec[] {
  return paths.map((original) => {
    const repoPath = toRepoPath(workTree, cwd, original);
    return {
      original,
      path: repoPath,
      glob: WILDCARD.test(repoPath) ? globToRegExp(repoPath) : undefined,
    };
  });
}

/** True when `spec` names `repoPath` (the file itself, or a directory above it). */
export function matchesPathspec(spec: Pathspec, repoPath: string): boolean {
  if (isUnder(repoPath, spec.path)) return true;
  return spec.glob !== undefined && spec.glob.test(repoPath);
}

export function matchesAny(specs: readonly Pathspec[], repoPath: string): boolean {
  return specs.some((spec) => matchesPathspec(spec, repoPath));
}

/**
 * A glob as a whole-string regular expression: `*` matches any run of
 * characters (slashes included), `?` one character, `[...]` a class
 * (`[!...]` or `[^...]` negated), and `\` escapes the next character.
 */
export function globToRegExp(pattern: string): RegExp {
  let out = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') out += '.*';
    else if (c === '?') out += '.';
    else if (c === '\\' && i + 1 < pattern.length) out += escapeRegExp(pattern[++i]!);
    else if (c === '[') {
      const close = pattern.indexOf(']', i + 2);
      if (close < 0) {
        out += '\\[';
        continue;
      }
      let body = pattern.slice(i + 1, close);
      const negated = body.startsWith('!') || body.startsWith('^');
      if (negated) body = body.slice(1);
      out += `[${negated ? '^' : ''}${body.replace(/[\\\]^]/g, '\\$&')}]`;
      i = close;
    } else out += escapeRegExp(c);
  }
  return new RegExp(`^${out}$`, 's');
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}
