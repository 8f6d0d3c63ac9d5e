/**
 * Sparse checkout: the working tree holds only the paths the sparse
 * patterns include; the index still holds every path (docs/sparse-checkout.md).
 *
 * State: `core.sparseCheckout` (and `core.sparseCheckoutCone`) in the
 * repository config, as in Git, and the patterns in
 * `.mediagit/info/sparse-checkout`, one per line. In cone mode (the default,
 * as in Git since 2.37) each line is a folder; otherwise each is a
 * gitignore-style pattern, `!` negating.
 *
 * There is no skip-worktree bit: a tracked path outside the patterns whose
 * file is absent is "not checked out", and every command treats it as
 * unchanged; a tracked path whose file is present is an ordinary file,
 * wherever it is (Git clears the bit of present files the same way since
 * 2.37). So a conflict outside the patterns is written, shown and resolved
 * like any other, and nothing outside the patterns is ever shown as deleted.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import ignore, { type Ignore } from 'ignore';
import { updateConfigValues, type ConfigValue } from '../config/config.ts';
import { MediaGitError, hasErrnoCode } from '../errors.ts';
import { writeFileAtomic } from '../storage/durable-file.ts';
import { StagingIndex, type IndexEntry } from './index-file.ts';
import { readMergeState } from './merge-state.ts';
import type { Repository } from './repository.ts';
import { assertSafeRepoPath } from './worktree.ts';
import {
  applyWorkTreePlan,
  parentOf,
  parentsAreDirectories,
  planForcedWrites,
  workFileMatches,
} from './worktree-update.ts';

export interface SparseSpec {
  /** Folders (cone mode) or gitignore-style patterns. */
  readonly cone: boolean;
  readonly patterns: readonly string[];
}

/** Which repository paths a sparse specification includes. */
export class SparseMatcher {
  readonly spec: SparseSpec;
  /** Cone mode: the listed folders, and every folder above one of them. */
  readonly #dirs = new Set<string>();
  readonly #parents = new Set<string>();
  readonly #rules: Ignore | undefined;

  constructor(spec: SparseSpec) {
    this.spec = spec;
    if (spec.cone) {
      for (const dir of spec.patterns) {
        this.#dirs.add(dir);
        for (let slash = dir.indexOf('/'); slash >= 0; slash = dir.indexOf('/', slash + 1)) {
          this.#parents.add(dir.slice(0, slash));
        }
      }
    } else {
      this.#rules = ignore().add([...spec.patterns]);
    }
  }

  /**
   * Cone mode: files at the root, files directly in a folder above a listed
   * one, and everything under a listed folder (Git's cone rules).
   */
  includes(p: string): boolean {
    if (this.#rules) return this.#rules.ignores(p);
    const slash = p.lastIndexOf('/');
    if (slash < 0) return true;
    let dir = p.slice(0, slash);
    if (this.#parents.has(dir)) return true;
    for (;;) {
      if (this.#dirs.has(dir)) return true;
      const up = dir.lastIndexOf('/');
      if (up < 0) return false;
      dir = dir.slice(0, up);
    }
  }

  /**
   * Whether no path under folder `dir` can be included: cone mode, a folder
   * neither listed, inside a listed one, nor above one. Patterns: never
   * known, false.
   */
  excludesFolder(dir: string): boolean {
    if (this.#rules || this.#parents.has(dir)) return false;
    for (let folder = dir; ;) {
      if (this.#dirs.has(folder)) return false;
      const up = folder.lastIndexOf('/');
      if (up < 0) return true;
      folder = folder.slice(0, up);
    }
  }
}

/** Git's refusal of paths outside the sparse-checkout patterns (exit 1, the rest added). */
export function outsideSparse(paths: string[]): MediaGitError {
  return new MediaGitError(
    'OUTSIDE_SPARSE',
    'The following paths and/or pathspecs matched paths that exist\n' +
      'outside of your sparse-checkout definition, so will not be\n' +
      `updated in the index:\n${paths.sort().join('\n')}\n` +
      'hint: If you intend to update such entries, try one of the following:\n' +
      'hint: * Use the --sparse option.\n' +
      'hint: * Disable or modify the sparsity rules.',
    { kind: 'user', data: { exitCode: 1, paths } },
  );
}

export function sparseFile(repo: Repository): string {
  return path.join(repo.gitDir, 'info', 'sparse-checkout');
}

/** The repository's sparse specification, or undefined when sparse checkout is off. */
export async function readSparseSpec(repo: Repository): Promise<SparseSpec | undefined> {
  if (repo.config('core.sparseCheckout') !== true) return undefined;
  const cone = repo.config('core.sparseCheckoutCone') !== false;
  let text = '';
  try {
    text = await fs.readFile(sparseFile(repo), 'utf8');
  } catch (error) {
    if (!hasErrnoCode(error, 'ENOENT')) throw error;
  }
  const patterns = text
    .split('\n')
    .map((line) => line.replace(/\r$/, ''))
    .filter((line) => line !== '' && !line.startsWith('#'));
  return { cone, patterns };
}

/** The matcher commands consult; undefined when the whole tree is checked out. */
export async function loadSparse(repo: Repository): Promise<SparseMatcher | undefined> {
  const spec = await readSparseSpec(repo);
  return spec ? new SparseMatcher(spec) : undefined;
}

/**
 * Normalizes the folders of a cone-mode `set`/`add` (repository paths):
 * refuses patterns, as Git does, and drops folders already covered by
 * another one.
 */
export function coneFolders(folders: readonly string[]): string[] {
  const out = new Set<string>();
  for (const raw of folders) {
    const dir = raw.replace(/^\/+/, '').replace(/\/+$/, '');
    if (/[*?[\]\\!]/.test(dir)) {
      throw new MediaGitError(
        'SPARSE_NOT_A_FOLDER',
        `specify directories rather than patterns in cone mode: '${raw}' (use --no-cone for patterns)`,
        { kind: 'usage', data: { exitCode: 128 } },
      );
    }
    if (dir === '' || dir === '.') continue;
    assertSafeRepoPath(dir);
    out.add(dir);
  }
  const sorted = [...out].sort();
  return sorted.filter(
    (dir) => !sorted.some((other) => other !== dir && dir.startsWith(`${other}/`)),
  );
}

export interface SparseUpdateOptions {
  readonly signal?: AbortSignal | undefined;
}

export interface SparseUpdateResult {
  /** Files newly written into the working tree. */
  readonly written: string[];
  /** Clean files removed because they are now outside the patterns. */
  readonly removed: string[];
  /** Files outside the patterns that were kept because they hold local changes. */
  readonly kept: string[];
}

/**
 * Moves the working tree from the current sparse specification to `next`
 * (undefined: the whole tree, `disable`): writes the tracked files that come
 * into the patterns and are absent, removes the clean files outside them
 * (modified and conflicted ones are kept and reported), then records `next`.
 * With `next` the current specification, that is Git's `reapply`.
 * The index keeps every path. Files are written from verified objects before
 * anything is removed; the specification is recorded last, so an interrupted
 * update is finished by running the command again.
 */
export async function updateSparse(
  repo: Repository,
  next: SparseSpec | undefined,
  options: SparseUpdateOptions = {},
): Promise<SparseUpdateResult> {
  const workTree = repo.requireWorkTree('sparse-checkout');
  const current = await loadSparse(repo);
  const wanted = next ? new SparseMatcher(next) : undefined;
  const lock = await StagingIndex.lock(repo.gitDir);
  try {
    // Sparse directories (folders of files never checked out, index-file.ts)
    // stay whole unless the new patterns reach into them: their files were
    // outside before and are absent, so only files coming in matter.
    const index = await StagingIndex.load(repo.gitDir, { sparse: true });
    for (const dir of [...index.sparseDirs().keys()]) {
      if (wanted?.excludesFolder(dir)) continue;
      await index.expandSparseDir(dir, (folder) => wanted?.excludesFolder(folder) ?? false);
    }
    const unmerged = new Set(((await readMergeState(repo))?.conflicts ?? []).map((c) => c.path));
    const writes: IndexEntry[] = [];
    const removes: string[] = [];
    const kept: string[] = [];
    // Whether each folder is there, asked once: most files of a sparse
    // checkout sit in folders that are not (thousands of lstat calls). The
    // answer is kept as a value too: awaiting even a settled promise for each
    // of thousands of files outside the patterns cost ~10 ms.
    const folders = new Map<string, boolean>([['', true]]);
    const folderThere = async (p: string): Promise<boolean> => {
      const dir = parentOf(p);
      let known = folders.get(dir);
      if (known === undefined) {
        known = await parentsAreDirectories(workTree, p);
        folders.set(dir, known);
      }
      return known;
    };
    for (const p of index.sortedPaths()) {
      const entry = index.entries.get(p)!;
      const wasIn = current ? current.includes(p) : true;
      const nowIn = wanted ? wanted.includes(p) : true;
      // Inside, only files coming in are written (an absent file that was
      // inside already is a deletion of the user's); outside, every file
      // there goes, if clean (Git's reapply).
      if ((nowIn && wasIn) || unmerged.has(p)) continue;
      if (folders.get(parentOf(p)) === false && !nowIn) continue;
      const state = (await folderThere(p))
        ? await workFileMatches(repo, entry, entry, index.fileMtimeMs)
        : { matches: false, stats: undefined };
      if (nowIn) {
        // Absent because it was outside the patterns: checked out now. A file
        // already there (created by hand, or left with changes) is kept.
        if (state.stats === undefined) writes.push(entry);
      } else if (state.stats !== undefined) {
        if (state.matches) removes.push(p);
        else kept.push(p);
      }
    }
    const plan = await planForcedWrites(repo, index, writes, removes, { sparse: null });
    // Never replace untracked files in the way of a file coming back.
    const written = await applyWorkTreePlan(repo, { ...plan, clobber: [], clearDirs: [] }, options);
    for (const [p, entry] of written) index.entries.set(p, entry);
    await index.save(lock);
    await writeSparseSpec(repo, next);
    return { written: [...written.keys()], removed: removes, kept };
  } finally {
    await lock.release();
  }
}

/**
 * Records `spec` (undefined: sparse checkout off); the working tree is the
 * caller's. `alsoSet`: other config keys written in the same rewrite (a
 * clone's upstream).
 */
export async function writeSparseSpec(
  repo: Repository,
  spec: SparseSpec | undefined,
  alsoSet: readonly (readonly [string, ConfigValue])[] = [],
): Promise<void> {
  if (spec) await writeSparsePatterns(repo, spec);
  // One rewrite of the config for every key.
  await updateConfigValues(repo.configPath, [...alsoSet, ...sparseSettings(spec)]);
}

/** The config keys that turn sparse checkout on with `spec` (off: undefined). */
export function sparseSettings(spec: SparseSpec | undefined): [string, ConfigValue][] {
  return [
    ...(spec ? [['core.sparseCheckoutCone', spec.cone] as [string, ConfigValue]] : []),
    ['core.sparseCheckout', spec !== undefined],
  ];
}

/** Writes `spec`'s patterns file (the config keys are `sparseSettings`). */
export async function writeSparsePatterns(repo: Repository, spec: SparseSpec): Promise<void> {
  await fs.mkdir(path.dirname(sparseFile(repo)), { recursive: true });
  const text = spec.patterns.map((pattern) => `${pattern}\n`).join('');
  await writeFileAtomic(sparseFile(repo), [Buffer.from(text)], {
    tmpDir: path.dirname(sparseFile(repo)),
  });
}
