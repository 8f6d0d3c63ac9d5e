/**
 * `diff`: what changed between two of {a commit, the index, the working
 * tree}, file by file, as typed data (the CLI renders patches and stats).
 *
 * Which sides are compared follows `git diff`:
 *   (no revision)            index       -> working tree
 *   --cached [<rev>]         <rev>/HEAD  -> index
 *   <rev>                    <rev>       -> working tree
 *   <rev> <rev> | <a>..<b>   <rev>       -> <rev>
 *
 * The working tree is read through the index's stat cache, so an unchanged
 * tree costs no file reads. Commit-to-commit diffs walk both trees together
 * and skip identical subtrees, so `log --stat` on a large tree reads only what
 * changed. Content is only read as far as the requested detail needs: names
 * need none, stats and patches read text up to TEXT_DIFF_LIMIT and only the
 * first bytes of anything binary, large or chunked. Exact renames (same
 * content, deleted here, added there) are paired as Git's default rename
 * detection pairs them; similarity-based renames are not detected.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import { MediaGitError } from '../errors.ts';
import { readFileBytes, readManifest, type FileObjectKind } from '../odb/file-store.ts';
import { sha256Hex, type ObjectId } from '../odb/object-id.ts';
import type { ObjectStore } from '../odb/object-store.ts';
import { compareNames, type FileMode } from '../odb/tree.ts';
import { modeFromStats, StagingIndex, UNKNOWN_SHA256 } from './index-file.ts';
import { globToRegExp, matchesAny, parsePathspecs, type Pathspec } from './pathspec.ts';
import { detectMediaType, MEDIA_PROBE_BYTES } from './media-type.ts';
import { detectFormat } from '../media/detect.ts';
import { bufferAccess } from '../media/info/random-access.ts';
import { hasMergeStrategy, mergeStrategyFor } from '../media/merge-strategy.ts';
import { Refs } from './refs.ts';
import type { Repository } from './repository.ts';
import { resolveCommit, unknownRevision } from './revision.ts';
import { hashWorkFile, worktreeChanges } from './status.ts';
import { combinedDiffLines } from './combined-diff.ts';
import { readMergeState, type Version } from './merge-state.ts';
import { diffText, looksBinary, BINARY_PROBE_BYTES, type Hunk } from './text-diff.ts';
import { flattenTree, readCommit, readTree } from './tree-ops.ts';
import { absolutePath, isUnder, toRepoPath } from './worktree.ts';

/** Added, deleted, modified, type changed (file <-> symlink), renamed. */
export type DiffStatus = 'A' | 'D' | 'M' | 'T' | 'R';

/** How much of each change to compute: paths only, line counts, or full hunks. */
export type DiffDetail = 'names' | 'stat' | 'patch';

/** Sides larger than this are summarised as binary instead of diffed line by line. */
export const TEXT_DIFF_LIMIT = 8 * 1024 * 1024;

type FileEntryMode = Exclude<FileMode, '40000'>;

export interface DiffSide {
  readonly path: string;
  readonly mode: FileEntryMode;
  readonly size: number;
  /** Whole-content SHA-256 (the LFS OID). Absent only when detail is 'names'. */
  readonly sha256?: ObjectId;
  /** Detected from the first bytes, for binary changes only. */
  readonly mediaType?: string;
}

export interface FileDiff {
  readonly status: DiffStatus;
  /** The path after the change (before it, for a deletion). */
  readonly path: string;
  readonly old?: DiffSide;
  readonly new?: DiffSide;
  /** Rename score in percent; exact renames only, so always 100 for 'R'. */
  readonly similarity?: number;
  /** Whether the content counts as binary; absent when detail is 'names'. */
  readonly binary?: boolean;
  /** Lines added and deleted (0 for binary content and for 'names'). */
  readonly added: number;
  readonly deleted: number;
  /**
   * Unified-diff hunks when detail is 'patch' and the content is text. For a
   * typechange ('T') Git shows a deletion then a creation: the hunks with
   * oldLines > 0 delete the old content, those with newLines > 0 add the new.
   */
  readonly hunks: readonly Hunk[];
  /**
   * What changed in the format's own terms ("pixels unchanged; EXIF
   * changed"), from the media-aware strategy for the format, when it has a
   * `describe` (media/merge-strategy.ts); patch detail only.
   */
  readonly semantic?: readonly string[];
}

export interface DiffOptions {
  /** Directory that user paths are relative to. */
  readonly cwd: string;
  /** Compare against the index instead of the working tree (`--cached`). */
  readonly cached?: boolean;
  /** Zero, one or two revisions; "a..b" counts as two. */
  readonly revisions?: readonly string[];
  /** Limit to these user paths (files or directories). */
  readonly paths?: readonly string[];
  readonly detail?: DiffDetail;
  /** Pair deleted and added files with identical content as renames (default true). */
  readonly renames?: boolean;
  /** Context lines around each change (default 3). */
  readonly context?: number;
  readonly signal?: AbortSignal;
}

export interface DiffResult {
  readonly files: FileDiff[];
  /** Working files whose content had to be read because their stat data changed. */
  readonly contentReads: number;
  /**
   * Paths a stopped merge left in conflict (a working-tree diff only), in
   * path order: what `diff` shows for them instead of a two-way patch.
   */
  readonly unmerged: UnmergedPath[];
}

/** A conflicted path: its combined diff when both sides have the file (`diff --cc`), else none. */
export interface UnmergedPath {
  readonly path: string;
  readonly combined?:
    | {
        /** The sides' object IDs, ours then theirs. */
        readonly sides: readonly [ObjectId, ObjectId];
        readonly binary: boolean;
        /** `@@@` hunks (patch detail and text only). */
        readonly lines: readonly string[];
      }
    | undefined;
}

// ---- sides ----

type Source =
  | { readonly type: 'stored'; readonly kind: FileObjectKind; readonly id: ObjectId }
  | {
      readonly type: 'work';
      readonly full: string;
      readonly stats: fs.Stats;
      /** Content proved to differ from this SHA-256 (the index's) while scanning. */
      readonly differsFrom?: ObjectId;
    };

interface Entry {
  readonly path: string;
  readonly mode: FileEntryMode;
  readonly size: number;
  readonly source: Source;
  /** Known or memoised content SHA-256. */
  sha256?: ObjectId;
}

interface Pair {
  readonly path: string;
  readonly old: Entry | undefined;
  readonly new: Entry | undefined;
}

/** Path limits (pathspec.ts: directories, files and globs); none means everything. */
class PathFilter {
  readonly #specs: readonly Pathspec[];

  constructor(specs: readonly Pathspec[]) {
    this.#specs = specs.some((spec) => spec.path === '' && !spec.glob) ? [] : specs;
  }

  matches(p: string): boolean {
    return this.#specs.length === 0 || matchesAny(this.#specs, p);
  }

  /** Whether anything under directory `dir` can match (globs may match anywhere). */
  reaches(dir: string): boolean {
    return (
      this.#specs.length === 0 ||
      this.#specs.some(
        (spec) => spec.glob !== undefined || isUnder(spec.path, dir) || isUnder(dir, spec.path),
      )
    );
  }
}

const ALL_PATHS = new PathFilter([]);

function storedEntry(
  file: {
    path: string;
    mode: FileEntryMode;
    kind: FileObjectKind;
    id: ObjectId;
    size: number;
    sha256?: ObjectId;
  },
  keyed: boolean,
): Entry {
  const entry: Entry = {
    path: file.path,
    mode: file.mode,
    size: file.size,
    source: { type: 'stored', kind: file.kind, id: file.id },
  };
  // An index entry that does not know it (UNKNOWN_SHA256) leaves it to be read from the manifest.
  if (file.sha256 !== undefined && file.sha256 !== UNKNOWN_SHA256) entry.sha256 = file.sha256;
  // A blob's ID is its SHA-256, except in an encrypted repository (keyed IDs).
  else if (file.kind === 'blob' && !keyed) entry.sha256 = file.id;
  return entry;
}

async function treeEntries(store: ObjectStore, treeId: ObjectId | undefined) {
  const out = new Map<string, Entry>();
  if (treeId === undefined) return out;
  for (const [p, file] of await flattenTree(store, treeId))
    out.set(p, storedEntry(file, store.cipher !== undefined));
  return out;
}

function indexEntries(index: StagingIndex, keyed: boolean): Map<string, Entry> {
  const out = new Map<string, Entry>();
  for (const [p, entry] of index.entries) out.set(p, storedEntry(entry, keyed));
  return out;
}

/**
 * The working tree as seen through the index: tracked files only (as Git's
 * diff does), each either proved unchanged by the stat cache (and then
 * represented by its index entry) or changed (and then read from disk).
 */
async function worktreeEntries(
  repo: Repository,
  index: StagingIndex,
): Promise<{ entries: Map<string, Entry>; contentReads: number }> {
  const workTree = repo.requireWorkTree('diff');
  const scan = await worktreeChanges(repo, index, { untracked: false });
  const entries = indexEntries(index, repo.objects.cipher !== undefined);
  for (const change of scan.changes) {
    if (change.change === 'deleted') {
      entries.delete(change.path);
      continue;
    }
    const full = absolutePath(workTree, change.path);
    let stats: fs.Stats;
    try {
      stats = fs.lstatSync(full);
    } catch {
      entries.delete(change.path);
      continue;
    }
    if (!stats.isFile() && !stats.isSymbolicLink()) {
      entries.delete(change.path);
      continue;
    }
    const indexed = index.entries.get(change.path)!;
    const mode = modeFromStats(stats);
    // worktreeChanges hashed same-size, same-mode files and found them different.
    const proved = change.change === 'modified' && mode === indexed.mode;
    const source: Source = proved
      ? { type: 'work', full, stats, differsFrom: indexed.sha256 }
      : { type: 'work', full, stats };
    entries.set(change.path, { path: change.path, mode, size: stats.size, source });
  }
  return { entries, contentReads: scan.contentReads };
}

function pairMaps(
  oldMap: ReadonlyMap<string, Entry>,
  newMap: ReadonlyMap<string, Entry>,
  filter: PathFilter,
): Pair[] {
  const pairs: Pair[] = [];
  for (const [p, old] of oldMap) {
    if (!filter.matches(p)) continue;
    const next = newMap.get(p);
    if (next && sameStored(old, next) && old.mode === next.mode) continue;
    pairs.push({ path: p, old, new: next });
  }
  for (const [p, next] of newMap) {
    if (!oldMap.has(p) && filter.matches(p)) pairs.push({ path: p, old: undefined, new: next });
  }
  return pairs;
}

function sameStored(a: Entry, b: Entry): boolean {
  return (
    a.source.type === 'stored' &&
    b.source.type === 'stored' &&
    a.source.kind === b.source.kind &&
    a.source.id === b.source.id
  );
}

/** Walks two trees together, skipping identical subtrees. */
async function treePairs(
  store: ObjectStore,
  oldTree: ObjectId | undefined,
  newTree: ObjectId | undefined,
  filter: PathFilter,
): Promise<Pair[]> {
  const pairs: Pair[] = [];
  const walk = async (
    a: ObjectId | undefined,
    b: ObjectId | undefined,
    prefix: string,
  ): Promise<void> => {
    if (a === b) return;
    const left = a ? await readTree(store, a) : [];
    const right = b ? await readTree(store, b) : [];
    let i = 0;
    let j = 0;
    while (i < left.length || j < right.length) {
      const x = left[i];
      const y = right[j];
      const order = !x ? 1 : !y ? -1 : compareNames(x.name, y.name);
      const oldEntry = order <= 0 ? x : undefined;
      const newEntry = order >= 0 ? y : undefined;
      if (order <= 0) i++;
      if (order >= 0) j++;
      const name = (oldEntry ?? newEntry)!.name;
      const p = prefix + name;
      if (
        oldEntry &&
        newEntry &&
        oldEntry.id === newEntry.id &&
        oldEntry.mode === newEntry.mode &&
        oldEntry.kind === newEntry.kind
      )
        continue;
      const oldDir = oldEntry?.kind === 'tree' ? oldEntry.id : undefined;
      const newDir = newEntry?.kind === 'tree' ? newEntry.id : undefined;
      if ((oldDir || newDir) && filter.reaches(p)) await walk(oldDir, newDir, `${p}/`);
      const oldFile = oldEntry && oldEntry.kind !== 'tree' ? oldEntry : undefined;
      const newFile = newEntry && newEntry.kind !== 'tree' ? newEntry : undefined;
      if ((oldFile || newFile) && filter.matches(p)) {
        const toEntry = (e: typeof oldFile): Entry | undefined =>
          e &&
          storedEntry(
            {
              path: p,
              mode: e.mode as FileEntryMode,
              kind: e.kind as FileObjectKind,
              id: e.id,
              size: e.size,
            },
            store.cipher !== undefined,
          );
        pairs.push({ path: p, old: toEntry(oldFile), new: toEntry(newFile) });
      }
    }
  };
  await walk(oldTree, newTree, '');
  return pairs;
}

/** Sides larger than this are not read for a semantic description. */
const DESCRIBE_LIMIT = 64 * 1024 * 1024;

/**
 * The format's own account of a change, when the media-aware strategy for
 * the path's format can give one; undefined otherwise, and on any failure to
 * parse (a diff never fails because a file is not what its name says).
 */
async function describeChange(
  reader: ContentReader,
  filePath: string,
  old: Entry | undefined,
  next: Entry | undefined,
): Promise<string[] | undefined> {
  if (!old || !next || Math.max(old.size, next.size) > DESCRIBE_LIMIT) return undefined;
  const format = detectFormat(new Uint8Array(0), filePath);
  if (!hasMergeStrategy(format)) return undefined;
  const strategy = await mergeStrategyFor(format);
  if (!strategy?.describe) return undefined;
  try {
    const [before, after] = [await reader.readAll(old), await reader.readAll(next)];
    const lines = await strategy.describe(bufferAccess(before), bufferAccess(after), format);
    return lines.length > 0 ? lines : undefined;
  } catch {
    return undefined;
  }
}

// ---- content access ----

class ContentReader {
  readonly #store: ObjectStore;
  contentReads = 0;

  constructor(store: ObjectStore) {
    this.#store = store;
  }

  async sha256(entry: Entry): Promise<ObjectId> {
    if (entry.sha256 !== undefined) return entry.sha256;
    const source = entry.source;
    if (source.type === 'stored') {
      entry.sha256 =
        source.kind === 'blob'
          ? await this.#store.blobSha256(source.id)
          : (await readManifest(this.#store, source.id)).sha256;
    } else {
      this.contentReads++;
      entry.sha256 = await hashWorkFile(source.full, source.stats);
    }
    return entry.sha256;
  }

  /** Whether the whole content may be read for a line diff. */
  textEligible(entry: Entry): boolean {
    const chunked = entry.source.type === 'stored' && entry.source.kind === 'manifest';
    return !chunked && entry.size <= TEXT_DIFF_LIMIT;
  }

  async readAll(entry: Entry): Promise<Buffer> {
    const source = entry.source;
    if (source.type === 'stored') return readFileBytes(this.#store, source.kind, source.id);
    this.contentReads++;
    const data = source.stats.isSymbolicLink()
      ? await fsp.readlink(source.full, { encoding: 'buffer' })
      : await fsp.readFile(source.full);
    entry.sha256 ??= sha256Hex(data);
    return data;
  }

  /** Up to `length` leading bytes, reading no more than one chunk of a chunked file. */
  async readHead(entry: Entry, length: number): Promise<Buffer> {
    const source = entry.source;
    if (source.type === 'stored') {
      if (source.kind === 'blob')
        return (await this.#store.readTyped(source.id, 'blob')).subarray(0, length);
      const parts: Buffer[] = [];
      let have = 0;
      const chunks = (await readManifest(this.#store, source.id)).chunks;
      // A partial clone fetches the (first) chunk it lacks, naming the file if it cannot.
      await this.#store.ensureContent(
        chunks.slice(0, 1).map((chunk) => chunk.id),
        { files: [entry.path] },
      );
      for (const chunk of chunks) {
        if (have >= length) break;
        const data = await this.#store.readTyped(chunk.id, 'chunk');
        parts.push(data.subarray(0, length - have));
        have += Math.min(data.length, length - have);
      }
      return Buffer.concat(parts);
    }
    if (source.stats.isSymbolicLink())
      return (await fsp.readlink(source.full, { encoding: 'buffer' })).subarray(0, length);
    const handle = await fsp.open(source.full, 'r');
    try {
      const buffer = Buffer.alloc(length);
      const { bytesRead } = await handle.read(buffer, 0, length, 0);
      return buffer.subarray(0, bytesRead);
    } finally {
      await handle.close();
    }
  }
}

// ---- classification and details ----

const isLink = (entry: Entry): boolean => entry.mode === '120000';

interface Classified {
  readonly status: DiffStatus;
  readonly path: string;
  readonly old: Entry | undefined;
  readonly new: Entry | undefined;
  /** Content known identical (mode-only changes and exact renames). */
  readonly sameContent: boolean;
}

async function classify(pair: Pair, reader: ContentReader): Promise<Classified | undefined> {
  const { old, new: next } = pair;
  if (!old) return { status: 'A', path: pair.path, old, new: next, sameContent: false };
  if (!next) return { status: 'D', path: pair.path, old, new: next, sameContent: false };
  if (isLink(old) !== isLink(next))
    return { status: 'T', path: pair.path, old, new: next, sameContent: false };
  let same: boolean;
  if (sameStored(old, next)) same = true;
  else if (old.size !== next.size) same = false;
  else if (next.source.type === 'work' && next.source.differsFrom === old.sha256) same = false;
  else same = (await reader.sha256(old)) === (await reader.sha256(next));
  if (same && old.mode === next.mode) return undefined;
  return { status: 'M', path: pair.path, old, new: next, sameContent: same };
}

/** Pairs deletions with additions of identical content, preferring the same file name. */
async function pairRenames(changes: Classified[], reader: ContentReader): Promise<Classified[]> {
  const deleted = changes.filter((c) => c.status === 'D');
  const added = changes.filter((c) => c.status === 'A');
  if (deleted.length === 0 || added.length === 0) return changes;
  const bySha = new Map<string, Classified[]>();
  for (const d of deleted) {
    const key = `${isLink(d.old!) ? 'l' : 'f'}${d.old!.size}:${await reader.sha256(d.old!)}`;
    bySha.set(key, [...(bySha.get(key) ?? []), d]);
  }
  const used = new Set<Classified>();
  const renames = new Map<Classified, Classified>();
  const sizes = new Set(deleted.map((d) => d.old!.size));
  for (const a of added) {
    if (!sizes.has(a.new!.size)) continue;
    const key = `${isLink(a.new!) ? 'l' : 'f'}${a.new!.size}:${await reader.sha256(a.new!)}`;
    const candidates = (bySha.get(key) ?? []).filter((d) => !used.has(d));
    if (candidates.length === 0) continue;
    const base = (p: string): string => p.slice(p.lastIndexOf('/') + 1);
    const source = candidates.find((d) => base(d.path) === base(a.path)) ?? candidates[0]!;
    used.add(source);
    renames.set(a, {
      status: 'R',
      path: a.path,
      old: source.old,
      new: a.new,
      sameContent: true,
    });
  }
  if (renames.size === 0) return changes;
  return changes.filter((c) => !used.has(c)).map((c) => renames.get(c) ?? c);
}

async function details(
  change: Classified,
  detail: DiffDetail,
  context: number,
  reader: ContentReader,
): Promise<FileDiff> {
  const { old, new: next } = change;
  const side = (entry: Entry | undefined, mediaType?: string): DiffSide | undefined => {
    if (!entry) return undefined;
    const out: { -readonly [K in keyof DiffSide]: DiffSide[K] } = {
      path: entry.path,
      mode: entry.mode,
      size: entry.size,
    };
    if (entry.sha256 !== undefined) out.sha256 = entry.sha256;
    if (mediaType !== undefined) out.mediaType = mediaType;
    return out;
  };
  const base = {
    status: change.status,
    path: change.path,
    ...(change.status === 'R' ? { similarity: 100 } : {}),
  };
  if (detail === 'names') {
    return { ...base, ...sides(side(old), side(next)), added: 0, deleted: 0, hunks: [] };
  }
  const present = [old, next].filter((e): e is Entry => e !== undefined);
  let binary = present.some((e) => !reader.textEligible(e));
  const texts = new Map<Entry, Buffer>();
  if (!binary && !change.sameContent) {
    for (const e of present) texts.set(e, await reader.readAll(e));
    binary = [...texts.values()].some(looksBinary);
  } else if (!binary) {
    // Same content on both sides: the newer side's first bytes decide.
    binary = looksBinary(await reader.readHead(present.at(-1)!, BINARY_PROBE_BYTES));
  }
  if (detail === 'patch') for (const e of present) await reader.sha256(e);
  if (binary) {
    const types = new Map<Entry, string>();
    if (!change.sameContent) {
      for (const e of present) {
        const head = texts.get(e) ?? (await reader.readHead(e, MEDIA_PROBE_BYTES));
        types.set(e, detectMediaType(head.subarray(0, MEDIA_PROBE_BYTES)));
      }
    }
    const semantic =
      detail === 'patch' && !change.sameContent
        ? await describeChange(reader, change.path, old, next)
        : undefined;
    return {
      ...base,
      ...sides(side(old, old && types.get(old)), side(next, next && types.get(next))),
      binary: true,
      added: 0,
      deleted: 0,
      hunks: [],
      ...(semantic ? { semantic } : {}),
    };
  }
  if (change.sameContent) {
    return {
      ...base,
      ...sides(side(old), side(next)),
      binary: false,
      added: 0,
      deleted: 0,
      hunks: [],
    };
  }
  const oldText = old ? texts.get(old)!.toString('utf8') : '';
  const newText = next ? texts.get(next)!.toString('utf8') : '';
  let hunks: Hunk[];
  let added: number;
  let deleted: number;
  if (change.status === 'T') {
    const removal = diffText(oldText, '', context);
    const creation = diffText('', newText, context);
    hunks = [...removal.hunks, ...creation.hunks];
    added = creation.added;
    deleted = removal.deleted;
  } else {
    ({ hunks, added, deleted } = diffText(oldText, newText, context));
  }
  const semantic =
    detail === 'patch' ? await describeChange(reader, change.path, old, next) : undefined;
  return {
    ...base,
    ...sides(side(old), side(next)),
    binary: false,
    added,
    deleted,
    hunks: detail === 'patch' ? hunks : [],
    ...(semantic ? { semantic } : {}),
  };
}

function sides(
  old: DiffSide | undefined,
  next: DiffSide | undefined,
): { old?: DiffSide; new?: DiffSide } {
  return { ...(old ? { old } : {}), ...(next ? { new: next } : {}) };
}

async function resolvePairs(
  pairs: Pair[],
  reader: ContentReader,
  options: {
    detail: DiffDetail;
    renames: boolean;
    context: number;
    signal?: AbortSignal | undefined;
  },
): Promise<FileDiff[]> {
  let changes: Classified[] = [];
  for (const pair of pairs) {
    options.signal?.throwIfAborted();
    const change = await classify(pair, reader);
    if (change) changes.push(change);
  }
  if (options.renames) changes = await pairRenames(changes, reader);
  changes.sort((a, b) => compareNames(a.path, b.path));
  const out: FileDiff[] = [];
  for (const change of changes) {
    options.signal?.throwIfAborted();
    out.push(await details(change, options.detail, options.context, reader));
  }
  return out;
}

// ---- entry points ----

export interface TreeDiffOptions {
  readonly detail?: DiffDetail;
  readonly renames?: boolean;
  readonly context?: number;
  /** Limit the diff to these paths (see `parseDiffPaths`); none: everything. */
  readonly pathspecs?: readonly Pathspec[];
  readonly signal?: AbortSignal | undefined;
}

/** Diffs two trees (either may be absent: the empty tree). Used by log and show. */
export async function diffTrees(
  repo: Repository,
  oldTree: ObjectId | undefined,
  newTree: ObjectId | undefined,
  options: TreeDiffOptions = {},
): Promise<FileDiff[]> {
  const filter = options.pathspecs ? new PathFilter(options.pathspecs) : ALL_PATHS;
  const pairs = await treePairs(repo.objects, oldTree, newTree, filter);
  return resolvePairs(pairs, new ContentReader(repo.objects), {
    detail: options.detail ?? 'patch',
    renames: options.renames !== false,
    context: options.context ?? 3,
    signal: options.signal,
  });
}

/** Whether two trees have the same files under the given pathspecs. */
export async function treesEqualUnder(
  repo: Repository,
  oldTree: ObjectId | undefined,
  newTree: ObjectId | undefined,
  pathspecs: readonly Pathspec[],
): Promise<boolean> {
  const pairs = await treePairs(repo.objects, oldTree, newTree, new PathFilter(pathspecs));
  return pairs.length === 0;
}

/**
 * Turns user paths (relative to `cwd`; directories, files or globs) into
 * pathspecs. In a bare repository they are repository paths already.
 */
export function parseDiffPaths(
  repo: Repository,
  cwd: string,
  paths: readonly string[],
): Pathspec[] {
  if (repo.workTree !== undefined) return parsePathspecs(repo.workTree, cwd, paths);
  return paths.map((original) => {
    const p = original
      .replace(/^(\.\/)+/, '')
      .replace(/\/+$/, '')
      .replace(/^\.$/, '');
    return { original, path: p, glob: /[*?[]/.test(p) ? globToRegExp(p) : undefined };
  });
}

function splitRange(revisions: readonly string[]): string[] {
  if (revisions.length !== 1) return [...revisions];
  const rev = revisions[0]!;
  const range = /^(.*?)\.\.(?!\.)(.*)$/.exec(rev);
  if (!range || rev.includes('...')) return [rev];
  return [range[1] || 'HEAD', range[2] || 'HEAD'];
}

/**
 * Splits the arguments before `--` into revisions and paths as Git does:
 * leading arguments that name revisions are revisions, the rest must be
 * existing paths. An argument that is both is ambiguous.
 */
export async function splitRevisionsAndPaths(
  repo: Repository,
  cwd: string,
  args: readonly string[],
): Promise<{ revisions: string[]; paths: string[] }> {
  const revisions: string[] = [];
  const paths: string[] = [];
  for (const arg of args) {
    const onDisk =
      repo.workTree !== undefined &&
      (() => {
        try {
          fs.lstatSync(absolutePath(repo.workTree!, toRepoPath(repo.workTree!, cwd, arg)));
          return true;
        } catch {
          return false;
        }
      })();
    const isRevision =
      paths.length === 0 &&
      (await Promise.all(
        (arg.startsWith('^') ? [arg.slice(1)] : splitRange([arg])).map((r) =>
          resolveCommit(repo, r),
        ),
      )
        .then(() => true)
        .catch(() => false));
    if (isRevision && onDisk) {
      throw new MediaGitError(
        'AMBIGUOUS_ARGUMENT',
        `ambiguous argument '${arg}': both revision and filename\nUse '--' to separate paths from revisions, like this:\n'mediagit <command> [<revision>...] -- [<file>...]'`,
        { kind: 'usage', data: { argument: arg } },
      );
    }
    if (isRevision) revisions.push(arg);
    else if (onDisk) paths.push(arg);
    else throw unknownRevision(arg);
  }
  return { revisions, paths };
}

export async function diff(repo: Repository, options: DiffOptions): Promise<DiffResult> {
  const revisions = splitRange(options.revisions ?? []);
  if (revisions.length > 2 || (options.cached && revisions.length > 1)) {
    throw new MediaGitError(
      'DIFF_USAGE',
      'usage: mediagit diff [--cached] [<commit> [<commit>]] [--] [<path>...]',
      { kind: 'usage', data: { exitCode: 129 } },
    );
  }
  const store = repo.objects;
  const filter = new PathFilter(parseDiffPaths(repo, options.cwd, options.paths ?? []));
  const reader = new ContentReader(store);
  const treeOf = async (rev: string): Promise<ObjectId> =>
    (await readCommit(store, await resolveCommit(repo, rev))).tree;
  let pairs: Pair[];
  let scanReads = 0;
  if (revisions.length === 2) {
    pairs = await treePairs(
      store,
      await treeOf(revisions[0]!),
      await treeOf(revisions[1]!),
      filter,
    );
  } else if (options.cached) {
    let base: ObjectId | undefined;
    if (revisions[0] !== undefined) base = await treeOf(revisions[0]);
    else {
      const head = await new Refs(repo).head();
      base = head.id ? (await readCommit(store, head.id)).tree : undefined;
    }
    const index = await StagingIndex.load(repo.gitDir);
    pairs = pairMaps(
      await treeEntries(store, base),
      indexEntries(index, store.cipher !== undefined),
      filter,
    );
  } else {
    const index = await StagingIndex.load(repo.gitDir);
    const oldMap =
      revisions[0] !== undefined
        ? await treeEntries(store, await treeOf(revisions[0]))
        : indexEntries(index, store.cipher !== undefined);
    const work = await worktreeEntries(repo, index);
    scanReads = work.contentReads;
    pairs = pairMaps(oldMap, work.entries, filter);
  }
  const files = await resolvePairs(pairs, reader, {
    detail: options.detail ?? 'patch',
    renames: options.renames !== false,
    context: options.context ?? 3,
    signal: options.signal,
  });
  const unmerged =
    revisions.length === 0 && !options.cached
      ? await unmergedPaths(repo, filter, options.detail ?? 'patch', options.context ?? 3)
      : [];
  return { files, contentReads: scanReads + reader.contentReads, unmerged };
}

/** The conflicts of a stopped merge under `filter`, with their combined diffs when asked for patches. */
async function unmergedPaths(
  repo: Repository,
  filter: PathFilter,
  detail: DiffDetail,
  context: number,
): Promise<UnmergedPath[]> {
  const state = repo.workTree === undefined ? undefined : await readMergeState(repo);
  const workTree = repo.workTree ?? '';
  const conflicts = (state?.conflicts ?? [])
    .filter((c) => filter.matches(c.path))
    .sort((a, b) => compareNames(a.path, b.path));
  const out: UnmergedPath[] = [];
  for (const { path: p, ours, theirs } of conflicts) {
    let work: Buffer | undefined;
    if (ours && theirs && detail === 'patch') {
      work = await fsp.readFile(absolutePath(workTree, p)).catch(() => undefined);
    }
    if (!ours || !theirs || (detail === 'patch' && work === undefined)) {
      out.push({ path: p });
      continue;
    }
    const sides = [ours.id, theirs.id] as const;
    if (detail !== 'patch') {
      out.push({ path: p, combined: { sides, binary: false, lines: [] } });
      continue;
    }
    // Chunked files are media: never read whole for a line diff.
    const readable = (v: Version): boolean => v.kind === 'blob' && v.size <= TEXT_DIFF_LIMIT;
    let binary = !readable(ours) || !readable(theirs) || work!.length > TEXT_DIFF_LIMIT;
    let lines: string[] = [];
    if (!binary) {
      const texts = [
        await readFileBytes(repo.objects, ours.kind, ours.id),
        await readFileBytes(repo.objects, theirs.kind, theirs.id),
        work!,
      ];
      binary = texts.some((t) => looksBinary(t.subarray(0, BINARY_PROBE_BYTES)));
      if (!binary) {
        const [a, b, result] = texts.map((t) => t.toString('utf8'));
        lines = combinedDiffLines([a!, b!], result!, context);
      }
    }
    out.push({ path: p, combined: { sides, binary, lines } });
  }
  return out;
}
