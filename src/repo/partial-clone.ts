/**
 * Partial clones (docs/partial-clone.md): the repository holds every commit
 * and tree, while the files the filter leaves out (manifests and chunks, or
 * small files' blobs) may be absent, promised by a remote. This module keeps
 * the configuration —
 *
 *   [remote.origin]
 *   promisor = true
 *   partialclonefilter = "blob:none"      (or "blob:limit=<bytes>")
 *
 * as Git names it — and the one call content readers make before they change
 * anything: `ensureFileContent`, which fetches the absent manifests and chunks of the files
 * they are about to read in one batch, through the content source the CLI
 * installed on the object store (odb/promised-content.ts). repo/ never talks
 * to a remote itself.
 */
import { setConfigValue, updateConfigValues, type ConfigValue } from '../config/config.ts';
import { MediaGitError } from '../errors.ts';
import type { FileObjectKind } from '../odb/file-read.ts';
import { decodeManifest, type Manifest } from '../odb/manifest.ts';
import type { ObjectId } from '../odb/object-id.ts';
import type { PromisedFile } from '../odb/promised-content.ts';
import { matchesAny, type Pathspec } from './pathspec.ts';
import type { Repository } from './repository.ts';
import { flattenCommit } from './tree-ops.ts';
import { resolveCommit } from './revision.ts';

/** What a partial clone leaves on the remote until needed. */
export type PartialCloneFilter =
  | { readonly kind: 'blob:none' }
  /** Files of at most `limit` bytes are fetched eagerly; larger ones on demand. */
  | { readonly kind: 'blob:limit'; readonly limit: number };

const UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/** Parses Git's filter spec: `blob:none` or `blob:limit=<n>[k|m|g]`. */
export function parseFilter(spec: string): PartialCloneFilter {
  if (spec === 'blob:none') return { kind: 'blob:none' };
  const match = /^blob:limit=(\d+)([kmg]?)$/i.exec(spec);
  if (match) {
    const limit = Number(match[1]) * UNITS[match[2]!.toLowerCase()]!;
    if (Number.isSafeInteger(limit)) return { kind: 'blob:limit', limit };
  }
  throw new MediaGitError(
    'BAD_FILTER',
    `invalid filter-spec '${spec}' (supported: blob:none, blob:limit=<size>[k|m|g])`,
    { kind: 'usage', data: { spec } },
  );
}

export function formatFilter(filter: PartialCloneFilter): string {
  return filter.kind === 'blob:none' ? 'blob:none' : `blob:limit=${filter.limit}`;
}

/** Whether a file of `size` bytes has its content fetched eagerly under `filter`. */
export function isEager(filter: PartialCloneFilter | undefined, size: number): boolean {
  if (filter === undefined) return true;
  return filter.kind === 'blob:limit' && size <= filter.limit;
}

export interface PromisorRemote {
  readonly name: string;
  readonly url: string;
  readonly filter: PartialCloneFilter;
}

/** The remote promising absent content, or undefined for a complete repository. */
export function promisorRemote(repo: Repository): PromisorRemote | undefined {
  const remotes = repo.localConfig['remote'];
  if (typeof remotes !== 'object') return undefined;
  for (const [name, value] of Object.entries(remotes)) {
    if (typeof value !== 'object' || value['promisor'] !== true) continue;
    const url = value['url'];
    if (typeof url !== 'string') continue;
    const spec = value['partialclonefilter'];
    return { name, url, filter: parseFilter(typeof spec === 'string' ? spec : 'blob:none') };
  }
  return undefined;
}

/** Records `remote` as the promisor of this repository's absent content (clone --filter). */
export async function setPromisor(
  repo: Repository,
  remote: string,
  filter: PartialCloneFilter,
): Promise<void> {
  await updateConfigValues(repo.configPath, promisorSettings(remote, filter));
  notePromisor(repo, remote, filter);
}

/** The config keys that make `remote` the promisor remote under `filter`. */
export function promisorSettings(
  remote: string,
  filter: PartialCloneFilter,
): [key: string, value: ConfigValue][] {
  return [
    [`remote.${remote}.promisor`, true],
    [`remote.${remote}.partialclonefilter`, formatFilter(filter)],
  ];
}

/** Records in `repo`'s loaded config what `promisorSettings` wrote to its file. */
export function notePromisor(repo: Repository, remote: string, filter: PartialCloneFilter): void {
  for (const [key, value] of promisorSettings(remote, filter)) {
    setConfigValue(repo.localConfig, key, value);
  }
}

export interface FileContentRef {
  readonly path: string;
  readonly kind: FileObjectKind;
  readonly id: ObjectId;
  /** A symlink (120000) is never written out ahead. */
  readonly mode?: string;
}

export interface EnsureResult {
  /** Files that had absent content. */
  readonly files: number;
  /** Objects fetched. */
  readonly objects: number;
  /** Files written out while their content arrived (with `prestage`), by manifest ID. */
  readonly prestaged?: Map<ObjectId, string>;
}

/**
 * Makes the content of `files` present, fetching every absent chunk in one
 * batch (in parallel, each verified and stored durably as it arrives, so a
 * rerun after an interruption fetches only the rest). Throws before anything
 * is read when the remote cannot give it; a no-op in a complete repository.
 * Commands call it before they change the index or the working tree.
 */
export async function ensureFileContent(
  repo: Repository,
  files: Iterable<FileContentRef>,
  signal?: AbortSignal,
  /** Have the source write the fetched files out as they arrive (a checkout: `prestaged`). */
  prestage = false,
): Promise<EnsureResult> {
  const store = repo.objects;
  const source = store.contentSource;
  if (source === undefined) return { files: 0, objects: 0 };
  const list = [...files];
  // The manifests a filtered clone left on the remote, in one request; they
  // are written while their chunks are fetched (each path below flushes).
  const manifestFiles = list.filter((file) => file.kind === 'manifest');
  await store.ensureMetadata(manifestFiles, { signal, durableAtFlush: true });
  // Each file's content objects, then one lookup per distinct object,
  // several at a time (each may be a file-system call).
  const wantedBy: { file: FileContentRef; ids: ObjectId[]; manifest?: Manifest }[] = [];
  const seenManifests = new Set<ObjectId>();
  const distinct = new Set<ObjectId>();
  for (const file of list) {
    if (file.kind === 'blob') {
      wantedBy.push({ file, ids: [file.id] });
      distinct.add(file.id);
      continue;
    }
    if (seenManifests.has(file.id)) continue;
    seenManifests.add(file.id);
    const manifest = decodeManifest(file.id, await store.readTyped(file.id, 'manifest'));
    const ids = manifest.chunks.map((chunk) => chunk.id);
    for (const id of ids) distinct.add(id);
    wantedBy.push({ file, ids, manifest });
  }
  const absent = new Set(await store.absentAmong(distinct));
  const needing: string[] = [];
  const fetched: PromisedFile[] = [];
  for (const { file, ids, manifest } of wantedBy) {
    if (!ids.some((id) => absent.has(id))) continue;
    needing.push(file.path);
    if (manifest && file.mode !== '120000') fetched.push({ id: file.id, manifest });
  }
  if (absent.size === 0) {
    await store.flush();
    return { files: 0, objects: 0 };
  }
  const options = { files: needing, signal };
  if (prestage && fetched.length > 0 && source.fetchFiles) {
    const prestaged = await source.fetchFiles([...absent], fetched, options);
    await store.flush();
    return { files: needing.length, objects: absent.size, prestaged };
  }
  await source.fetch([...absent], options);
  await store.flush();
  return { files: needing.length, objects: absent.size };
}

export interface PrefetchOptions {
  /** The commit whose files to fill (default HEAD). */
  readonly rev?: string | undefined;
  /** Limit to these paths (all files when empty). */
  readonly pathspecs?: readonly Pathspec[] | undefined;
  readonly signal?: AbortSignal | undefined;
}

export interface PrefetchResult extends EnsureResult {
  readonly partial: boolean;
}

/** `prefetch [<paths>]`: fetches ahead the absent content of a commit's files. */
export async function prefetch(
  repo: Repository,
  options: PrefetchOptions = {},
): Promise<PrefetchResult> {
  if (repo.objects.contentSource === undefined) return { partial: false, files: 0, objects: 0 };
  const commit = await resolveCommit(repo, options.rev ?? 'HEAD');
  const files = [...(await flattenCommit(repo.objects, commit)).values()].filter(
    (file) =>
      file.mode !== '120000' &&
      (options.pathspecs === undefined ||
        options.pathspecs.length === 0 ||
        matchesAny(options.pathspecs, file.path)),
  );
  return { partial: true, ...(await ensureFileContent(repo, files, options.signal)) };
}
