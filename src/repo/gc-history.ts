/**
 * The history walk of the `--aggressive` delta pass (gc-deltas.ts): every
 * reachable file version, oldest commit first, in the order `add` met them.
 */
import { decodeCommit, decodeTag } from '../odb/commit.ts';
import type { DeltaOptions } from '../odb/delta.ts';
import { decodeManifest } from '../odb/manifest.ts';
import type { ObjectId } from '../odb/object-id.ts';
import type { CompressionPolicy } from '../compression/codec.ts';
import { decodeTree } from '../odb/tree.ts';
import { StagingIndex } from './index-file.ts';
import { collectRoots } from './reachable.ts';
import type { Repository } from './repository.ts';

export interface FilePolicy {
  readonly delta: DeltaOptions;
  readonly compression: CompressionPolicy;
  /** Bases only among chunks of the same path (SAME_PATH). */
  readonly samePath: boolean;
}

export interface FileVersion {
  readonly path: string;
  readonly kind: 'blob' | 'manifest';
  readonly size: number;
  /** The object holding the file's first bytes (the blob, or the first chunk). */
  readonly head: ObjectId;
  policy: FilePolicy | undefined;
}

export interface History {
  /** Blobs and chunks by first appearance, oldest commit first. */
  readonly order: Map<ObjectId, number>;
  /** By order: the file (index into `files`) the object first appeared in. */
  readonly owner: number[];
  readonly files: FileVersion[];
  /** Commits, tags, trees and manifests met. */
  readonly metadata: Set<ObjectId>;
}

/**
 * Every file version reachable, oldest commit first (then the index): the
 * order in which `add` would have met them, with each file's path.
 */
export async function walkHistory(
  repo: Repository,
  marked: ReadonlySet<ObjectId>,
  signal: AbortSignal | undefined,
): Promise<History> {
  const store = repo.objects;
  const history: History = { order: new Map(), owner: [], files: [], metadata: new Set() };
  const roots = await collectRoots(repo);
  const commits = new Map<ObjectId, { id: ObjectId; time: number; parents: ObjectId[] }>();
  const trees: ObjectId[] = [];
  const fileRoots: ObjectId[] = [];
  const queue = [...roots.required, ...roots.optional].filter((id) => marked.has(id));
  for (let id = queue.pop(); id !== undefined; id = queue.pop()) {
    signal?.throwIfAborted();
    if (history.metadata.has(id)) continue;
    const { type } = await store.info(id);
    if (type === 'blob' || type === 'chunk' || type === 'manifest') {
      fileRoots.push(id);
      continue;
    }
    history.metadata.add(id);
    const data = (await store.read(id)).data;
    if (type === 'tag') queue.push(decodeTag(id, data).object);
    else if (type === 'tree') trees.push(id);
    else if (type === 'commit') {
      const commit = decodeCommit(id, data);
      const parents = commit.parents.filter((parent) => marked.has(parent));
      commits.set(id, { id, time: commit.committer.time, parents });
      queue.push(...parents);
    }
  }
  // Oldest first, and a parent always before its children (commits made
  // within one second share a time).
  const children = new Map<ObjectId, ObjectId[]>();
  const waiting = new Map<ObjectId, number>();
  const ready = new MinHeap<{ id: ObjectId; time: number }>(
    (a, b) => a.time < b.time || (a.time === b.time && a.id < b.id),
  );
  for (const commit of commits.values()) {
    const parents = new Set(commit.parents.filter((parent) => commits.has(parent)));
    waiting.set(commit.id, parents.size);
    for (const parent of parents)
      children.set(parent, [...(children.get(parent) ?? []), commit.id]);
    if (parents.size === 0) ready.push(commit);
  }
  const inOrder: ObjectId[] = [];
  for (let commit = ready.pop(); commit; commit = ready.pop()) {
    inOrder.push(commit.id);
    for (const child of children.get(commit.id) ?? []) {
      const left = waiting.get(child)! - 1;
      waiting.set(child, left);
      if (left === 0) ready.push(commits.get(child)!);
    }
  }
  const seenTrees = new Set<ObjectId>();
  const addFile = async (
    id: ObjectId,
    filePath: string,
    kind: 'blob' | 'manifest',
    size: number,
  ): Promise<void> => {
    if (history.order.has(id) || history.metadata.has(id)) return;
    const file = history.files.length;
    if (kind === 'blob') {
      history.files.push({ path: filePath, kind, size, head: id, policy: undefined });
      history.owner.push(file);
      history.order.set(id, history.order.size);
      return;
    }
    // A partial clone's absent manifests (promised, so never marked) are not read.
    if (!marked.has(id)) return;
    history.metadata.add(id);
    const manifest = decodeManifest(id, (await store.read(id)).data);
    const first = manifest.chunks[0];
    if (!first) return;
    history.files.push({
      path: filePath,
      kind,
      size: manifest.size,
      head: first.id,
      policy: undefined,
    });
    for (const chunk of manifest.chunks) {
      if (history.order.has(chunk.id)) continue;
      history.owner.push(file);
      history.order.set(chunk.id, history.order.size);
    }
  };
  const walkTree = async (id: ObjectId, prefix: string): Promise<void> => {
    if (seenTrees.has(id)) return;
    seenTrees.add(id);
    history.metadata.add(id);
    signal?.throwIfAborted();
    for (const entry of decodeTree(id, (await store.read(id)).data)) {
      const entryPath = prefix + entry.name;
      if (entry.kind === 'tree') await walkTree(entry.id, `${entryPath}/`);
      else await addFile(entry.id, entryPath, entry.kind, entry.size);
    }
  };
  for (const id of inOrder) {
    await walkTree(decodeCommit(id, (await store.read(id)).data).tree, '');
  }
  for (const tree of trees) await walkTree(tree, '');
  const index = await StagingIndex.load(repo.gitDir);
  for (const entry of index.entries.values()) {
    await addFile(entry.id, entry.path, entry.kind, entry.size);
  }
  for (const id of fileRoots) {
    const { type, rawSize } = await store.info(id);
    await addFile(id, '', type === 'manifest' ? 'manifest' : 'blob', rawSize);
  }
  return history;
}

export class MinHeap<T> {
  readonly #items: T[] = [];
  readonly #before: (a: T, b: T) => boolean;

  constructor(before: (a: T, b: T) => boolean) {
    this.#before = before;
  }

  push(item: T): void {
    const items = this.#items;
    items.push(item);
    for (let i = items.length - 1; i > 0;) {
      const parent = (i - 1) >> 1;
      if (!this.#before(items[i]!, items[parent]!)) break;
      [items[i], items[parent]] = [items[parent]!, items[i]!];
      i = parent;
    }
  }

  pop(): T | undefined {
    const items = this.#items;
    const top = items[0];
    const last = items.pop();
    if (items.length > 0 && last !== undefined) {
      items[0] = last;
      for (let i = 0; ;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < items.length && this.#before(items[l]!, items[m]!)) m = l;
        if (r < items.length && this.#before(items[r]!, items[m]!)) m = r;
        if (m === i) break;
        [items[i], items[m]] = [items[m]!, items[i]!];
        i = m;
      }
    }
    return top;
  }
}
