/**
 * `add`: record the current content of working files in the index.
 * Like Git 2.x, `add <path>` also stages removals under the path, and
 * `add -A` covers the whole working tree wherever it is run from.
 */
import { MediaGitError } from '../errors.ts';
import type { StoreStats } from '../odb/file-store.ts';
import { StagingIndex } from './index-file.ts';
import { resolveConflicts } from './merge-state.ts';
import { loadSparse, outsideSparse } from './sparse.ts';
import type { Repository } from './repository.ts';
import { stageFiles, type StageOptions } from './stage.ts';
import { matchesPathspec, parsePathspecs } from './pathspec.ts';
import { IgnoreRules, isUnder, walkWorkTree, type WorkFile } from './worktree.ts';

export interface AddOptions extends StageOptions {
  readonly paths: readonly string[];
  readonly all?: boolean;
  /** Only files already tracked (`add -u`). */
  readonly update?: boolean;
  readonly dryRun?: boolean;
  /** Directory the user paths are relative to. */
  readonly cwd: string;
  /** Also add untracked files outside the sparse-checkout patterns (`--sparse`). */
  readonly sparse?: boolean;
}

export interface AddResult {
  readonly added: string[];
  readonly removed: string[];
  readonly stats: StoreStats;
}

export async function add(repo: Repository, options: AddOptions): Promise<AddResult> {
  const workTree = repo.requireWorkTree('add');
  if (options.paths.length === 0 && !options.all && !options.update) {
    throw new MediaGitError('NOTHING_SPECIFIED', 'Nothing specified, nothing added.', {
      kind: 'usage',
    });
  }
  // A pathspec with wildcards (`'*.png'`, `'stills/*.png'`) is a glob over
  // the repository path, as in Git: the walk starts at its literal folder.
  const specs =
    options.paths.length === 0
      ? [{ original: '', path: '', glob: undefined }]
      : parsePathspecs(workTree, options.cwd, options.paths);
  const prefixes = specs.map((spec) => (spec.glob ? literalFolder(spec.path) : spec.path));
  const inScope = (p: string): boolean => specs.some((spec) => matchesPathspec(spec, p));
  const lock = options.dryRun ? undefined : await StagingIndex.lock(repo.gitDir);
  try {
    const index = await StagingIndex.load(repo.gitDir);
    const rules = new IgnoreRules(workTree);
    const files = new Map<string, WorkFile>();
    const trackedPaths = index.sortedPaths();
    for (const [i, prefix] of prefixes.entries()) {
      const glob = specs[i]!.glob;
      const walked = walkWorkTree(workTree, prefix, rules);
      const found = glob ? walked.filter((file) => glob.test(file.path)) : walked;
      const tracked = trackedPaths.some((p) => (glob ? glob.test(p) : isUnder(p, prefix)));
      if (found.length === 0 && !tracked) {
        if (prefix !== '' && rules.ignores(prefix, false)) {
          throw new MediaGitError(
            'PATH_IGNORED',
            `The following paths are ignored by one of your .mediagitignore files: ${options.paths[i]}`,
            { kind: 'user', data: { path: prefix } },
          );
        }
        if (prefix !== '' || options.paths.length > 0) {
          throw new MediaGitError(
            'PATHSPEC_NO_MATCH',
            `pathspec '${options.paths[i] ?? prefix}' did not match any files`,
            {
              kind: 'usage',
              data: { pathspec: options.paths[i] ?? prefix },
            },
          );
        }
      }
      for (const file of found) {
        if (options.update && !index.entries.has(file.path)) continue;
        files.set(file.path, file);
      }
    }
    // Tracked files count as present even when ignored.
    const present = new Set(files.keys());
    for (const p of trackedPaths) {
      if (!present.has(p) && inScope(p)) {
        for (const file of walkWorkTree(workTree, p, rules, { includeIgnored: true })) {
          files.set(file.path, file);
          present.add(file.path);
        }
      }
    }
    // Tracked paths under the pathspecs that are gone from the work tree.
    let removed = trackedPaths.filter((p) => !present.has(p) && inScope(p));
    // Outside the sparse-checkout patterns nothing is added or removed unless
    // --sparse, as in Git (2.34+); untracked files there and paths named
    // outright are listed, and the command ends with exit 1 after adding the
    // rest. A tracked path gone from there is simply not checked out.
    const sparse = await loadSparse(repo);
    const outside: string[] = [];
    if (sparse) {
      const named = new Set(specs.filter((spec) => !spec.glob).map((spec) => spec.path));
      for (const p of [...files.keys()]) {
        if (sparse.includes(p) || options.sparse) continue;
        if (!index.entries.has(p) || named.has(p)) outside.push(p);
        files.delete(p);
      }
      removed = removed.filter((p) => sparse.includes(p));
    }
    if (options.dryRun) {
      const added = [...files.values()]
        .filter((f) => {
          const entry = index.entries.get(f.path);
          return !entry || entry.size !== f.stats.size || entry.mtimeMs !== f.stats.mtimeMs;
        })
        .map((f) => f.path);
      if (outside.length > 0) throw outsideSparse(outside);
      return { added, removed, stats: { chunks: 0, newChunks: 0, newBytes: 0, deltas: 0 } };
    }
    const { staged, stats } = await stageFiles(repo, index, [...files.values()], options);
    for (const p of removed) index.entries.delete(p);
    await index.save(lock!);
    // Adding a conflicted path (or its removal) marks it resolved, as in Git.
    await resolveConflicts(repo, [...files.keys(), ...removed]);
    if (outside.length > 0) throw outsideSparse(outside);
    return { added: staged, removed, stats };
  } finally {
    await lock?.release();
  }
}

/** The folder a glob's walk starts from: its path up to the last `/` before a wildcard. */
function literalFolder(pattern: string): string {
  const wildcard = pattern.search(/[*?[]/);
  const slash = pattern.lastIndexOf('/', wildcard);
  return slash < 0 ? '' : pattern.slice(0, slash);
}
