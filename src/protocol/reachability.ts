/**
 * What one side must send the other: every object reachable from `wants`
 * that is not reachable from `haves` (commits the other side has), the same
 * walk for push (on the local store) and fetch (on the server's).
 *
 * Commits are walked from the wants down to the first commit the other side
 * has (or `depth` commits deep); the trees of the commits the walk stops at
 * are the baseline: a tree, blob or manifest already in one of them is not
 * sent again. Manifests are read for their chunk IDs, which travel apart.
 */
import { decodeCommit, decodeTag } from '../odb/commit.ts';
import { decodeManifest } from '../odb/manifest.ts';
import type { ObjectId } from '../odb/object-id.ts';
import type { ObjectTypeName } from '../odb/object-store.ts';
import { decodeTree } from '../odb/tree.ts';

export interface ObjectReader {
  read(id: ObjectId): Promise<{ type: ObjectTypeName; data: Buffer }>;
  has(id: ObjectId): Promise<boolean>;
}

export interface Collected {
  /** Metadata objects: commits, tags, trees, manifests and small-file blobs. */
  readonly objects: ObjectId[];
  /** Chunk IDs of the new manifests, each once. */
  readonly chunks: ObjectId[];
  /** Commits sent whose parents were cut off by `depth`. */
  readonly shallow: ObjectId[];
}

export interface CollectOptions {
  /** Commits the receiver has; IDs this side does not know are ignored. */
  readonly haves?: readonly ObjectId[] | undefined;
  /** At most this many commits deep from each want (shallow clone / fetch). */
  readonly depth?: number | undefined;
  /** Commits the receiver has without their parents (its shallow boundary). */
  readonly receiverShallow?: readonly ObjectId[] | undefined;
  /**
   * False: leave `chunks` empty, sparing a read of every manifest (`want`
   * sends metadata only; the receiver reads the manifests it gets).
   */
  readonly chunks?: boolean | undefined;
  /**
   * A partial clone's filter (docs/partial-clone.md): files larger than this
   * many bytes are left out, their manifest or whole-file blob (-1: every
   * file, for `blob:none`); the receiver asks for them when it needs them.
   */
  readonly omitFilesOver?: number | undefined;
  readonly signal?: AbortSignal | undefined;
}

export async function collectObjects(
  reader: ObjectReader,
  wants: readonly ObjectId[],
  options: CollectOptions = {},
): Promise<Collected> {
  const { depth, signal } = options;
  // Commits the receiver has: the haves this side knows and their ancestry.
  const had = new Set<ObjectId>();
  const receiverShallow = new Set(options.receiverShallow ?? []);
  const stack: ObjectId[] = [];
  for (const have of options.haves ?? []) if (await reader.has(have)) stack.push(have);
  while (stack.length > 0) {
    const id = stack.pop()!;
    if (had.has(id)) continue;
    signal?.throwIfAborted();
    const commit = await readCommitish(reader, id);
    if (!commit) continue;
    had.add(id);
    // The receiver has a shallow commit but not its parents.
    if (receiverShallow.has(id)) continue;
    for (const parent of commit.parents) if (await reader.has(parent)) stack.push(parent);
  }

  const objects: ObjectId[] = [];
  const sent = new Set<ObjectId>();
  const commits: ObjectId[] = [];
  const boundary = new Set<ObjectId>();
  const shallow: ObjectId[] = [];
  // Breadth-first from the wants, so `depth` counts generations.
  let level: ObjectId[] = [];
  for (const want of wants) {
    let id = want;
    // Annotated tags: send the tag objects and walk what they name.
    for (;;) {
      const object = await reader.read(id);
      if (object.type !== 'tag') break;
      if (!sent.has(id)) {
        sent.add(id);
        objects.push(id);
      }
      id = decodeTag(id, object.data).object;
    }
    level.push(id);
  }
  const seen = new Set<ObjectId>();
  for (let generation = 1; level.length > 0; generation++) {
    const next: ObjectId[] = [];
    for (const id of level) {
      if (seen.has(id)) continue;
      seen.add(id);
      if (had.has(id) && !receiverShallow.has(id)) {
        boundary.add(id);
        continue;
      }
      signal?.throwIfAborted();
      const object = await reader.read(id);
      if (object.type !== 'commit') {
        // A ref naming a tree or blob directly: send it as a root.
        commits.push(id);
        continue;
      }
      commits.push(id);
      const commit = decodeCommit(id, object.data);
      if (depth !== undefined && generation >= depth) {
        if (commit.parents.length > 0) shallow.push(id);
        continue;
      }
      // A shallow repository lacks the parents of its boundary commits.
      for (const parent of commit.parents) if (await reader.has(parent)) next.push(parent);
    }
    level = next;
  }

  // The receiver already has everything in the trees of the boundary commits.
  const baseline = new Set<ObjectId>();
  for (const id of boundary) {
    const commit = decodeCommit(id, (await reader.read(id)).data);
    await walkTree(reader, commit.tree, (entryId) => {
      if (baseline.has(entryId)) return false;
      baseline.add(entryId);
      return true;
    });
  }

  const chunks: ObjectId[] = [];
  const chunkSet = new Set<ObjectId>();
  const manifests: ObjectId[] = [];
  const limit = options.omitFilesOver;
  const omitted = (kind: string, size: number): boolean =>
    limit !== undefined && kind !== 'tree' && size > limit;
  // Oldest first, so a receiver storing in order never holds a child without its parents.
  for (const id of commits.reverse()) {
    const object = await reader.read(id);
    if (object.type === 'commit') {
      const commit = decodeCommit(id, object.data);
      await walkTree(reader, commit.tree, (entryId, kind, size) => {
        if (sent.has(entryId) || baseline.has(entryId) || omitted(kind, size)) return false;
        sent.add(entryId);
        objects.push(entryId);
        if (kind === 'manifest') manifests.push(entryId);
        return true;
      });
    } else if (object.type === 'tree') {
      await walkTree(reader, id, (entryId, kind, size) => {
        if (sent.has(entryId) || baseline.has(entryId) || omitted(kind, size)) return false;
        sent.add(entryId);
        objects.push(entryId);
        if (kind === 'manifest') manifests.push(entryId);
        return true;
      });
      continue;
    }
    if (!sent.has(id)) {
      sent.add(id);
      objects.push(id);
    }
  }
  for (const id of options.chunks === false ? [] : manifests) {
    signal?.throwIfAborted();
    const manifest = decodeManifest(id, (await reader.read(id)).data);
    for (const chunk of manifest.chunks) {
      if (chunkSet.has(chunk.id)) continue;
      chunkSet.add(chunk.id);
      chunks.push(chunk.id);
    }
  }
  return { objects, chunks, shallow };
}

async function readCommitish(
  reader: ObjectReader,
  id: ObjectId,
): Promise<{ parents: readonly ObjectId[] } | undefined> {
  const object = await reader.read(id);
  if (object.type === 'commit') return decodeCommit(id, object.data);
  if (object.type === 'tag') return { parents: [decodeTag(id, object.data).object] };
  return undefined;
}

/**
 * Visits `root` and, depth-first, the entries below it; `visit` returns false
 * to skip an object (and, for a tree, everything below it).
 */
async function walkTree(
  reader: ObjectReader,
  root: ObjectId,
  visit: (id: ObjectId, kind: 'tree' | 'blob' | 'manifest', size: number) => boolean,
): Promise<void> {
  if (!visit(root, 'tree', 0)) return;
  const pending: ObjectId[] = [root];
  while (pending.length > 0) {
    const treeId = pending.pop()!;
    const entries = decodeTree(treeId, (await reader.read(treeId)).data);
    for (const entry of entries) {
      if (!visit(entry.id, entry.kind, entry.size)) continue;
      if (entry.kind === 'tree') pending.push(entry.id);
    }
  }
}
