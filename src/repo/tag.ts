/**
 * `tag`: list, create and delete tags (refs/tags/*).
 *
 * A lightweight tag is a ref naming a commit directly; an annotated tag is a
 * ref naming a tag object (commit.ts `encodeTag`) that records the target,
 * its type, the tag name, the tagger and a message. Existing names are
 * refused unless forced, and every change goes through Refs.
 */
import { MediaGitError } from '../errors.ts';
import { decodeTag, encodeTag } from '../odb/commit.ts';
import type { ObjectId } from '../odb/object-id.ts';
import { signatureFor } from './commit.ts';
import { globToRegExp } from './pathspec.ts';
import { assertTagName, isValidRefName, Refs } from './refs.ts';
import type { Repository } from './repository.ts';
import { resolveObject } from './revision.ts';
import { readCommit } from './tree-ops.ts';

export const TAG_PREFIX = 'refs/tags/';

export interface TagInfo {
  readonly name: string;
  /** What the ref holds: the tag object for an annotated tag, else the target. */
  readonly id: ObjectId;
  readonly annotated: boolean;
  /** The object the tag names after peeling annotated tags. */
  readonly target: ObjectId;
  readonly targetType: string;
  /** The annotation for an annotated tag, else the target commit's message. */
  readonly message: string;
}

async function describeTag(repo: Repository, name: string, id: ObjectId): Promise<TagInfo> {
  let current = id;
  let annotation: string | undefined;
  for (let depth = 0; depth < 10; depth++) {
    const object = await repo.objects.read(current);
    if (object.type !== 'tag') {
      const message =
        annotation ??
        (object.type === 'commit' ? (await readCommit(repo.objects, current)).message : '');
      return {
        name,
        id,
        annotated: current !== id,
        target: current,
        targetType: object.type,
        message,
      };
    }
    const tag = decodeTag(current, object.data);
    annotation ??= tag.message;
    current = tag.object;
  }
  throw new MediaGitError('TAG_CHAIN', `tag ${name} nests too deeply`, { kind: 'corrupt' });
}

export async function listTags(
  repo: Repository,
  options: { patterns?: readonly string[] } = {},
): Promise<TagInfo[]> {
  const globs = (options.patterns ?? []).map(globToRegExp);
  const out: TagInfo[] = [];
  for (const { name: ref, id } of await new Refs(repo).list(TAG_PREFIX)) {
    const name = ref.slice(TAG_PREFIX.length);
    if (globs.length > 0 && !globs.some((glob) => glob.test(name))) continue;
    out.push(await describeTag(repo, name, id));
  }
  return out;
}

export interface CreateTagOptions {
  readonly name: string;
  /** What to tag; HEAD when absent. */
  readonly rev?: string | undefined;
  /** Make an annotated tag (implied by `message`). */
  readonly annotate?: boolean | undefined;
  readonly message?: string | undefined;
  /** Replace an existing tag of that name. */
  readonly force?: boolean | undefined;
}

export interface CreateTagResult {
  readonly name: string;
  readonly id: ObjectId;
  readonly annotated: boolean;
  /** What the tag named before, when `force` replaced it. */
  readonly previous: ObjectId | undefined;
}

export async function createTag(
  repo: Repository,
  options: CreateTagOptions,
): Promise<CreateTagResult> {
  assertTagName(options.name);
  const refs = new Refs(repo);
  const ref = `${TAG_PREFIX}${options.name}`;
  const previous = await refs.read(ref);
  if (previous && !options.force) {
    throw new MediaGitError('TAG_EXISTS', `tag '${options.name}' already exists`, {
      kind: 'usage',
      data: { tag: options.name },
    });
  }
  const rev = options.rev ?? 'HEAD';
  if (rev === 'HEAD' && (await refs.head()).id === undefined) {
    throw new MediaGitError('UNBORN_HEAD', "Failed to resolve 'HEAD' as a valid ref.", {
      kind: 'usage',
    });
  }
  const target = await resolveObject(repo, rev);
  const annotated = options.annotate === true || options.message !== undefined;
  let id = target;
  if (annotated) {
    if (options.message === undefined) {
      throw new MediaGitError(
        'NO_TAG_MESSAGE',
        'no tag message given: use -m <msg> for an annotated tag',
        { kind: 'usage' },
      );
    }
    const message = options.message.endsWith('\n') ? options.message : `${options.message}\n`;
    const { type } = await repo.objects.info(target);
    const data = encodeTag({
      object: target,
      type,
      tag: options.name,
      tagger: signatureFor(repo),
      message,
    });
    id = (await repo.objects.write('tag', data, 'text')).id;
    await repo.objects.flush();
  }
  await refs.update(ref, id, {
    expected: previous ?? null,
    message: annotated ? `tag: tagging ${target} (annotated)` : `tag: tagging ${target}`,
  });
  return { name: options.name, id, annotated, previous };
}

export interface DeleteTagResult {
  readonly name: string;
  /** What the tag held, absent when there was no such tag. */
  readonly id: ObjectId | undefined;
}

/** Deletes each named tag that exists; reports missing ones without stopping, as Git does. */
export async function deleteTags(
  repo: Repository,
  names: readonly string[],
): Promise<DeleteTagResult[]> {
  const refs = new Refs(repo);
  const results: DeleteTagResult[] = [];
  for (const name of names) {
    const ref = `${TAG_PREFIX}${name}`;
    const id = isValidRefName(ref) ? await refs.read(ref) : undefined;
    if (id) await refs.update(ref, null, { expected: id, message: 'tag: deleted' });
    results.push({ name, id });
  }
  return results;
}
