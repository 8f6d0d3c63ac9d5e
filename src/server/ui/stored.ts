/**
 * What the web pages read from a repository on the server's storage:
 * revisions, commits, trees, the history of a path, the files a commit
 * changed, and a stored file's bytes (positional reads that fetch only the
 * chunks they touch, or the whole file in order with a few chunks in
 * flight). Everything goes through `BackendRepo`, so pages work on every
 * backend a server root can live on.
 */
import { MediaGitError } from '../../errors.ts';
import { decodeCommit, decodeTag, type Commit } from '../../odb/commit.ts';
import { decodeManifest, type Manifest } from '../../odb/manifest.ts';
import { StoredFileReader, type TypedObjectReader } from '../../odb/file-read.ts';
import { isObjectId, type ObjectId } from '../../odb/object-id.ts';
import { decodeTree, type TreeEntry } from '../../odb/tree.ts';
import type { BackendRepo } from '../../protocol/backend-repo.ts';
import { streamLfsObject } from '../../protocol/lfs-objects.ts';
import type { RandomAccess } from '../../media/info/random-access.ts';
import { CommitQueue } from '../../repo/commit-queue.ts';

export function notFound(message: string): MediaGitError {
  return new MediaGitError('NOT_FOUND', message, { kind: 'user', data: { status: 404 } });
}

export interface Ref {
  /** Full name: refs/heads/main, refs/tags/v1. */
  readonly name: string;
  /** The short name a user types: main, v1. */
  readonly short: string;
  readonly kind: 'branch' | 'tag';
  /** The commit it names (a tag peeled). */
  readonly commit: ObjectId;
}

export function shortRef(name: string): string {
  return name.replace(/^refs\/(heads|tags)\//, '');
}

/** Branches and tags, each with its commit (annotated tags peeled). */
export async function listRefs(repo: BackendRepo): Promise<Ref[]> {
  const refs: Ref[] = [];
  for (const { name, id } of await repo.listRefs()) {
    const kind = name.startsWith('refs/heads/')
      ? 'branch'
      : name.startsWith('refs/tags/')
        ? 'tag'
        : undefined;
    if (kind === undefined) continue;
    const commit = await peel(repo, id).catch(() => undefined);
    if (commit !== undefined) refs.push({ name, short: shortRef(name), kind, commit });
  }
  return refs;
}

async function peel(repo: BackendRepo, id: ObjectId): Promise<ObjectId> {
  for (let depth = 0; depth < 8; depth++) {
    const object = await repo.read(id);
    if (object.type === 'commit') return id;
    if (object.type !== 'tag') break;
    id = decodeTag(id, object.data).object;
  }
  throw notFound(`${id} does not name a commit`);
}

/** The default branch's short name (HEAD's target), or undefined for an empty repository. */
export async function defaultBranch(repo: BackendRepo): Promise<string | undefined> {
  const head = await repo.head();
  return head === undefined ? undefined : shortRef(head);
}

/**
 * The commit a revision names: a branch, a tag, HEAD, or a full commit ID.
 * Unknown names are 404, never a guess.
 */
export async function resolveRevision(repo: BackendRepo, rev: string): Promise<ObjectId> {
  // (A boolean, not a type guard: ObjectId is a string, and `rev` stays one.)
  if (isObjectId(rev) as boolean) {
    if ((await repo.typeOf(rev)) === undefined) throw notFound(`no commit ${rev}`);
    return peel(repo, rev);
  }
  let name = rev;
  if (rev === 'HEAD') {
    const head = await repo.head();
    if (head === undefined) throw notFound('HEAD names no branch');
    name = head;
  }
  const candidates = name.startsWith('refs/')
    ? [name]
    : [`refs/heads/${name}`, `refs/tags/${name}`];
  for (const candidate of candidates) {
    if (!/^refs\/[A-Za-z0-9._/-]+$/.test(candidate) || candidate.includes('..')) continue;
    const ref = await repo.readRef(candidate).catch(() => undefined);
    if (ref?.id !== undefined) return peel(repo, ref.id);
  }
  throw notFound(`no branch, tag or commit named ${rev}`);
}

export async function readCommit(repo: BackendRepo, id: ObjectId): Promise<Commit> {
  const object = await repo.read(id);
  if (object.type !== 'commit') throw notFound(`${id} is a ${object.type}, not a commit`);
  return decodeCommit(id, object.data);
}

export async function readTree(repo: BackendRepo, id: ObjectId): Promise<TreeEntry[]> {
  const object = await repo.read(id);
  if (object.type !== 'tree') throw notFound(`${id} is a ${object.type}, not a tree`);
  return decodeTree(id, object.data);
}

/** Splits a request path into components; refuses `..`, `.` and empty parts. */
export function pathParts(filePath: string): string[] {
  const parts = filePath.split('/').filter((part) => part !== '');
  for (const part of parts) {
    if (part === '.' || part === '..' || part.includes('\0')) throw notFound(`no path ${filePath}`);
  }
  return parts;
}

/** The entry at `filePath` under `tree` (a synthetic tree entry for the root), or undefined. */
export async function entryAt(
  repo: BackendRepo,
  tree: ObjectId,
  filePath: string,
): Promise<TreeEntry | undefined> {
  let entry: TreeEntry = { name: '', mode: '40000', kind: 'tree', id: tree, size: 0 };
  for (const part of pathParts(filePath)) {
    if (entry.kind !== 'tree') return undefined;
    const found = (await readTree(repo, entry.id)).find((e) => e.name === part);
    if (!found) return undefined;
    entry = found;
  }
  return entry;
}

export interface HistoryEntry {
  readonly id: ObjectId;
  readonly commit: Commit;
}

export interface HistoryPage {
  readonly entries: readonly HistoryEntry[];
  /** Whether more commits follow this page. */
  readonly more: boolean;
}

/**
 * Commits reachable from `start`, newest committer time first (Git's
 * order); with `path`, only commits whose entry there differs from every
 * parent's (a merge that kept one side's version is left out, as
 * `git log -- <path>` does). `skip` commits are passed over first.
 */
export async function history(
  repo: BackendRepo,
  start: ObjectId,
  options: { readonly path?: string | undefined; readonly skip: number; readonly limit: number },
): Promise<HistoryPage> {
  const queue = new CommitQueue();
  const seen = new Set<ObjectId>([start]);
  queue.push(start, await readCommit(repo, start));
  const entries: HistoryEntry[] = [];
  let skipped = 0;
  const wanted = options.path?.replace(/^\/+|\/+$/g, '') || undefined;
  for (let next = queue.pop(); next; next = queue.pop()) {
    const parents: Commit[] = [];
    for (const parent of next.commit.parents) {
      const commit = await readCommit(repo, parent).catch((error: unknown) => {
        // A shallow boundary: the parent was never pushed here.
        if (error instanceof MediaGitError && error.code === 'OBJECT_MISSING') return undefined;
        throw error;
      });
      if (commit === undefined) continue;
      parents.push(commit);
      if (!seen.has(parent)) {
        seen.add(parent);
        queue.push(parent, commit);
      }
    }
    if (wanted !== undefined && !(await touches(repo, next.commit, parents, wanted))) continue;
    if (skipped < options.skip) {
      skipped++;
      continue;
    }
    if (entries.length === options.limit) return { entries, more: true };
    entries.push({ id: next.id, commit: next.commit });
  }
  return { entries, more: false };
}

async function touches(
  repo: BackendRepo,
  commit: Commit,
  parents: readonly Commit[],
  filePath: string,
): Promise<boolean> {
  const mine = (await entryAt(repo, commit.tree, filePath))?.id;
  if (parents.length === 0) return mine !== undefined;
  for (const parent of parents) {
    if ((await entryAt(repo, parent.tree, filePath))?.id === mine) return false;
  }
  return true;
}

export interface ChangedFile {
  readonly path: string;
  readonly status: 'A' | 'D' | 'M' | 'T';
  readonly old?: TreeEntry | undefined;
  readonly new?: TreeEntry | undefined;
}

/** Files that differ between two trees (undefined: the empty tree), by path order; equal subtrees skipped by ID. */
export async function changedFiles(
  repo: BackendRepo,
  oldTree: ObjectId | undefined,
  newTree: ObjectId | undefined,
  limit = 5_000,
): Promise<{ files: ChangedFile[]; truncated: boolean }> {
  const files: ChangedFile[] = [];
  const walk = async (a: ObjectId | undefined, b: ObjectId | undefined, prefix: string) => {
    if (a === b || files.length >= limit) return;
    const before = a === undefined ? [] : await readTree(repo, a);
    const after = b === undefined ? [] : await readTree(repo, b);
    const names = [...new Set([...before, ...after].map((e) => e.name))].sort();
    for (const name of names) {
      if (files.length >= limit) return;
      const x = before.find((e) => e.name === name);
      const y = after.find((e) => e.name === name);
      const filePath = prefix + name;
      if (x?.id === y?.id && x?.mode === y?.mode) continue;
      const xTree = x?.kind === 'tree' ? x : undefined;
      const yTree = y?.kind === 'tree' ? y : undefined;
      if (xTree || yTree) await walk(xTree?.id, yTree?.id, `${filePath}/`);
      const xFile = x && x.kind !== 'tree' ? x : undefined;
      const yFile = y && y.kind !== 'tree' ? y : undefined;
      if (!xFile && !yFile) continue;
      const status = !xFile
        ? 'A'
        : !yFile
          ? 'D'
          : xFile.mode !== yFile.mode && xFile.id === yFile.id
            ? 'T'
            : 'M';
      files.push({ path: filePath, status, old: xFile, new: yFile });
    }
  };
  await walk(oldTree, newTree, '');
  return { files, truncated: files.length >= limit };
}

/**
 * A stored file (blob or manifest) on the server: positional reads that
 * fetch only the chunks they touch (StoredFileReader, over the repository's
 * store), and the whole content in order.
 */
export class StoredContent implements RandomAccess {
  readonly id: ObjectId;
  readonly size: number;
  readonly #repo: BackendRepo;
  readonly #reader: StoredFileReader;
  readonly #manifest: Manifest | undefined;

  private constructor(
    repo: BackendRepo,
    id: ObjectId,
    reader: StoredFileReader,
    manifest: Manifest | undefined,
  ) {
    this.#repo = repo;
    this.id = id;
    this.size = reader.size;
    this.#reader = reader;
    this.#manifest = manifest;
  }

  /** The file stored as `id`: a blob (read whole on first use) or a manifest. */
  static async open(repo: BackendRepo, id: ObjectId): Promise<StoredContent> {
    const header = await repo.header(id);
    if (header === undefined) throw notFound(`no object ${id}`);
    if (header.type !== 'blob' && header.type !== 'manifest')
      throw notFound(`${id} is a ${header.type}, not a file`);
    const objects: TypedObjectReader = {
      readTyped: async (objectId, expected) => {
        const object = await repo.read(objectId);
        if (object.type !== expected)
          throw notFound(`${objectId} is a ${object.type}, not a ${expected}`);
        return object.data;
      },
    };
    const reader = await StoredFileReader.open(objects, header.type, id, header.rawSize);
    const manifest =
      header.type === 'manifest'
        ? decodeManifest(id, await objects.readTyped(id, 'manifest'))
        : undefined;
    return new StoredContent(repo, id, reader, manifest);
  }

  read(offset: number, length: number): Promise<Buffer> {
    return this.#reader.read(offset, length);
  }

  fetchSpan(offset: number): number {
    return this.#reader.fetchSpan(offset);
  }

  chunkId(offset: number): string | undefined {
    return this.#reader.chunkId(offset);
  }

  /** The bytes in order, a few chunks read ahead of `write` (bounded memory). */
  stream(write: (data: Uint8Array) => Promise<void>): Promise<void> {
    const content = this.#manifest
      ? ({ kind: 'manifest', id: this.id, size: this.size, manifest: this.#manifest } as const)
      : ({ kind: 'blob', id: this.id, size: this.size } as const);
    return streamLfsObject(this.#repo, content, write);
  }
}
