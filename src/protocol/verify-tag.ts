/**
 * `tag -v`: checks an annotated tag's whole chain in this repository. MediaGit
 * has no signatures, so "verified" means the objects a release names are all
 * here and intact: the tag object hashes to its ID, every tag in the chain
 * names an object of the type it states, and the tagged snapshot (the commit,
 * its trees, blobs, manifests and every chunk of every large file) is present
 * and hashes to its IDs.
 *
 * Parents are not followed: a tag vouches for one snapshot, history can be
 * shallow, and walking it would read every chunk of every earlier version.
 * The walk is push's and the server fsck's (reachability.ts, one generation
 * deep); every object is then read through the store, which verifies it.
 */
import { MediaGitError } from '../errors.ts';
import { decodeTag } from '../odb/commit.ts';
import { decodeManifest } from '../odb/manifest.ts';
import type { ObjectId } from '../odb/object-id.ts';
import { isFileContent, type ObjectTypeName } from '../odb/object-store.ts';
import { isValidRefName, Refs } from '../repo/refs.ts';
import type { Repository } from '../repo/repository.ts';
import { collectObjects } from './reachability.ts';

/** Tags naming tags, at most this deep (as `describeTag` allows). */
const MAX_TAG_CHAIN = 10;

export interface TagVerification {
  readonly name: string;
  /** The tag object the ref holds. */
  readonly id: ObjectId;
  /** The tag object's bytes (what `git cat-file tag` prints); absent when unreadable. */
  readonly raw: Buffer | undefined;
  /** What the chain of tags ends at, and its stated type; absent when unreadable. */
  readonly target: ObjectId | undefined;
  readonly targetType: string | undefined;
  /** Objects read and verified: tags, commit, trees, blobs, manifests. */
  readonly objects: number;
  readonly chunks: number;
  /** Content bytes of the objects and chunks verified. */
  readonly bytes: number;
  /** One line per problem, each naming the object at fault; empty when verified. */
  readonly problems: string[];
}

export interface VerifyTagOptions {
  readonly signal?: AbortSignal | undefined;
}

/**
 * Verifies the annotated tag `name`. Throws TAG_NOT_FOUND for no such tag and
 * TAG_NOT_ANNOTATED for a lightweight one (nothing to verify, as in Git);
 * damage is reported in `problems`, not thrown.
 */
export async function verifyTag(
  repo: Repository,
  name: string,
  options: VerifyTagOptions = {},
): Promise<TagVerification> {
  const { signal } = options;
  const ref = `refs/tags/${name}`;
  const id = isValidRefName(ref) ? await new Refs(repo).read(ref) : undefined;
  if (id === undefined) {
    throw new MediaGitError('TAG_NOT_FOUND', `tag '${name}' not found.`, {
      kind: 'user',
      data: { tag: name },
    });
  }
  const store = repo.objects;
  const problems: string[] = [];
  const counts = { objects: 0, chunks: 0, bytes: 0 };
  const result = (
    raw: Buffer | undefined,
    target?: { id: ObjectId; type: string },
  ): TagVerification => ({
    name,
    id,
    raw,
    target: target?.id,
    targetType: target?.type,
    ...counts,
    problems,
  });
  /** Reads and verifies `object`; a damaged or missing one becomes a problem. */
  const read = async (
    object: ObjectId,
  ): Promise<{ type: ObjectTypeName; data: Buffer } | undefined> => {
    signal?.throwIfAborted();
    try {
      return await store.read(object);
    } catch (error) {
      if (!(error instanceof MediaGitError)) throw error;
      problems.push(error.message);
      return undefined;
    }
  };

  const first = await read(id);
  if (!first) return result(undefined);
  if (first.type !== 'tag') {
    throw new MediaGitError(
      'TAG_NOT_ANNOTATED',
      `${name}: cannot verify a non-tag object of type ${first.type}.`,
      { kind: 'user', data: { tag: name, id, type: first.type } },
    );
  }

  // The chain of tags: each names an object of the type it states.
  let current = { id, data: first.data };
  const chain = new Set<ObjectId>();
  let target: { id: ObjectId; type: string } | undefined;
  for (let depth = 0; ; depth++) {
    chain.add(current.id);
    counts.objects++;
    counts.bytes += current.data.length;
    let tag;
    try {
      tag = decodeTag(current.id, current.data);
    } catch (error) {
      if (!(error instanceof MediaGitError)) throw error;
      problems.push(error.message);
      return result(first.data);
    }
    target = { id: tag.object, type: tag.type };
    const named = await read(tag.object);
    if (!named) return result(first.data, target);
    if (!sameType(named.type, tag.type)) {
      problems.push(
        `tag ${current.id} names ${tag.object} as a ${tag.type}, but that object is a ${named.type}`,
      );
      return result(first.data, target);
    }
    if (named.type !== 'tag') break;
    if (depth + 1 >= MAX_TAG_CHAIN) {
      problems.push(`tag ${id}: tags name tags more than ${MAX_TAG_CHAIN} deep`);
      return result(first.data, target);
    }
    current = { id: tag.object, data: named.data };
  }

  // The snapshot: the walk push and the server fsck use, one generation deep.
  let collected;
  try {
    collected = await collectObjects(
      { read: (object) => store.read(object), has: (object) => store.has(object) },
      [id],
      { depth: 1, signal },
    );
  } catch (error) {
    if (!(error instanceof MediaGitError)) throw error;
    problems.push(error.message);
    return result(first.data, target);
  }
  /** Each chunk's length as its manifest records it. */
  const chunkLengths = new Map<ObjectId, number>();
  const chunks = new Set(collected.chunks);
  for (const object of collected.objects) {
    if (chain.has(object)) continue;
    const stored = await read(object);
    if (!stored) continue;
    counts.objects++;
    counts.bytes += stored.data.length;
    if (stored.type !== 'manifest') continue;
    try {
      for (const chunk of decodeManifest(object, stored.data).chunks) {
        // (A manifest tagged directly lists chunks the walk does not collect.)
        chunks.add(chunk.id);
        chunkLengths.set(chunk.id, chunk.length);
      }
    } catch (error) {
      if (!(error instanceof MediaGitError)) throw error;
      problems.push(error.message);
    }
  }
  for (const chunk of chunks) {
    const stored = await read(chunk);
    if (!stored) continue;
    if (!isFileContent(stored.type)) {
      problems.push(`chunk ${chunk} is stored as a ${stored.type}`);
      continue;
    }
    const expected = chunkLengths.get(chunk);
    if (expected !== undefined && expected !== stored.data.length) {
      problems.push(
        `chunk ${chunk} holds ${stored.data.length} bytes, its manifest says ${expected}`,
      );
      continue;
    }
    counts.chunks++;
    counts.bytes += stored.data.length;
  }
  return result(first.data, target);
}

/** Blobs and chunks are both file bytes and may share one object (object-store.ts). */
function sameType(stored: ObjectTypeName, stated: string): boolean {
  return stored === stated || (isFileContent(stored) && (stated === 'blob' || stated === 'chunk'));
}
