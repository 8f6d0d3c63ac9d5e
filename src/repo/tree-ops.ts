/**
 * Trees as flat path maps: reading a commit's tree into `path -> file`, and
 * writing the index back as nested tree objects.
 */
import { decodeCommit, type Commit } from '../odb/commit.ts';
import { sha256Hex, type ObjectId } from '../odb/object-id.ts';
import type { ObjectStore } from '../odb/object-store.ts';
import { decodeTree, encodeTree, type TreeEntry, type FileMode } from '../odb/tree.ts';
import type { FileObjectKind } from '../odb/file-store.ts';
import type { IndexEntry } from './index-file.ts';

export interface TreeFile {
  readonly path: string;
  readonly mode: Exclude<FileMode, '40000'>;
  readonly kind: FileObjectKind;
  readonly id: ObjectId;
  readonly size: number;
}

/** A commit; one on a shallow clone's boundary reads as a root (its parents were not fetched). */
export async function readCommit(store: ObjectStore, id: ObjectId): Promise<Commit> {
  const commit = decodeCommit(id, await store.readTyped(id, 'commit'));
  return store.shallow.has(id) ? { ...commit, parents: [] } : commit;
}

export async function readTree(store: ObjectStore, id: ObjectId): Promise<TreeEntry[]> {
  return decodeTree(id, await store.readTyped(id, 'tree'));
}

/** Every file of a tree, keyed by repository path. */
export async function flattenTree(
  store: ObjectStore,
  treeId: ObjectId,
): Promise<Map<string, TreeFile>> {
  const out = new Map<string, TreeFile>();
  const visit = async (id: ObjectId, prefix: string): Promise<void> => {
    for (const entry of await readTree(store, id)) {
      const p = prefix + entry.name;
      if (entry.kind === 'tree') await visit(entry.id, `${p}/`);
      else
        out.set(p, {
          path: p,
          mode: entry.mode as TreeFile['mode'],
          kind: entry.kind,
          id: entry.id,
          size: entry.size,
        });
    }
  };
  await visit(treeId, '');
  return out;
}

/**
 * `flattenTree` that leaves whole the folders `outside` names (nothing in
 * them is wanted): their tree IDs by folder path, never read.
 */
export async function flattenTreeSparse(
  store: ObjectStore,
  treeId: ObjectId,
  outside: (folder: string) => boolean,
): Promise<{ files: Map<string, TreeFile>; folders: Map<string, ObjectId> }> {
  const files = new Map<string, TreeFile>();
  const folders = new Map<string, ObjectId>();
  const visit = async (id: ObjectId, prefix: string): Promise<void> => {
    for (const entry of await readTree(store, id)) {
      const p = prefix + entry.name;
      if (entry.kind !== 'tree') {
        const mode = entry.mode as TreeFile['mode'];
        files.set(p, { path: p, mode, kind: entry.kind, id: entry.id, size: entry.size });
      } else if (outside(p)) folders.set(p, entry.id);
      else await visit(entry.id, `${p}/`);
    }
  };
  await visit(treeId, '');
  return { files, folders };
}

export async function flattenCommit(
  store: ObjectStore,
  commitId: ObjectId | undefined,
): Promise<Map<string, TreeFile>> {
  if (!commitId) return new Map();
  return flattenTree(store, (await readCommit(store, commitId)).tree);
}

/** Writes nested trees for a set of files; returns the root tree ID. */
export async function writeTreeFromFiles(
  store: ObjectStore,
  files: Iterable<TreeFile | IndexEntry>,
): Promise<ObjectId> {
  const trees: [ObjectId, Buffer][] = [];
  const id = buildTrees(
    files,
    (treeId, data) => trees.push([treeId, data]),
    (data) => store.idOf('tree', data),
  );
  // A few at a time: each compression holds an encoder and its buffers.
  let next = 0;
  const writer = async (): Promise<void> => {
    for (let i = next++; i < trees.length; i = next++) {
      const [treeId, data] = trees[i]!;
      await store.write('tree', data, 'text', treeId);
    }
  };
  await Promise.all(Array.from({ length: Math.min(4, trees.length) }, writer));
  return id;
}

/**
 * The root tree ID the files would get, computed in memory without writing
 * anything; `subtrees` are whole folders known by their tree IDs (an
 * index's sparse directories), none of whose files is in `files`.
 */
export function computeTreeId(
  files: Iterable<TreeFile | IndexEntry>,
  treeIdOf: (data: Buffer) => ObjectId = sha256Hex,
  subtrees: ReadonlyMap<string, ObjectId> = new Map(),
): ObjectId {
  return buildTrees(files, () => undefined, treeIdOf, subtrees);
}

function buildTrees(
  files: Iterable<TreeFile | IndexEntry>,
  emit: (id: ObjectId, data: Buffer) => void,
  treeIdOf: (data: Buffer) => ObjectId,
  subtrees: ReadonlyMap<string, ObjectId> = new Map(),
): ObjectId {
  interface Dir {
    files: TreeEntry[];
    dirs: Map<string, Dir>;
    /** A folder taken whole by its tree ID. */
    known?: ObjectId;
  }
  const root: Dir = { files: [], dirs: new Map() };
  const folder = (parts: readonly string[]): Dir => {
    let dir = root;
    for (const part of parts) {
      let child = dir.dirs.get(part);
      if (!child) {
        child = { files: [], dirs: new Map() };
        dir.dirs.set(part, child);
      }
      dir = child;
    }
    return dir;
  };
  for (const file of files) {
    const parts = file.path.split('/');
    const name = parts.pop()!;
    folder(parts).files.push({
      name,
      mode: file.mode,
      kind: file.kind,
      id: file.id,
      size: file.size,
    });
  }
  for (const [p, id] of subtrees) folder(p.split('/')).known = id;
  const build = (dir: Dir): ObjectId => {
    const entries = [...dir.files];
    for (const [name, child] of dir.dirs) {
      const id = child.known ?? build(child);
      entries.push({ name, mode: '40000', kind: 'tree', id, size: 0 });
    }
    const data = encodeTree(entries);
    const id = treeIdOf(data);
    emit(id, data);
    return id;
  };
  return build(root);
}
