/**
 * Revision parsing: HEAD (or @), branch and tag names, full and unambiguous
 * short object IDs (at least 4 hex digits), <ref>@{n} reflog entries, and any
 * number of ~N and ^N suffixes, as in gitrevisions(7); MERGE_HEAD and ORIG_HEAD.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { MediaGitError } from '../errors.ts';
import { decodeTag } from '../odb/commit.ts';
import { isObjectId, type ObjectId } from '../odb/object-id.ts';
import { Refs } from './refs.ts';
import type { Repository } from './repository.ts';
import { readCommit } from './tree-ops.ts';

export function unknownRevision(rev: string): MediaGitError {
  return new MediaGitError(
    'UNKNOWN_REVISION',
    `ambiguous argument '${rev}': unknown revision or path not in the working tree`,
    { kind: 'usage', data: { revision: rev } },
  );
}

/** Resolves a revision to a commit ID (annotated tags are peeled). */
export async function resolveCommit(repo: Repository, rev: string): Promise<ObjectId> {
  const id = await resolveObject(repo, rev);
  return peelToCommit(repo, id, rev);
}

export async function peelToCommit(repo: Repository, id: ObjectId, rev: string): Promise<ObjectId> {
  let current = id;
  for (let depth = 0; depth < 10; depth++) {
    const object = await repo.objects.read(current);
    if (object.type === 'commit') return current;
    if (object.type !== 'tag') {
      throw new MediaGitError('NOT_A_COMMIT', `'${rev}' names a ${object.type}, not a commit`, {
        kind: 'usage',
        data: { revision: rev },
      });
    }
    current = decodeTag(current, object.data).object;
  }
  throw unknownRevision(rev);
}

/** Resolves a revision to an object ID without peeling a final annotated tag. */
export async function resolveObject(repo: Repository, rev: string): Promise<ObjectId> {
  const match = /^(.*?)((?:[~^]\d*)*)$/.exec(rev);
  const base = match?.[1] ?? rev;
  const suffix = match?.[2] ?? '';
  if (base === '') throw unknownRevision(rev);
  let id = await resolveBase(repo, base, rev);
  for (const op of suffix.matchAll(/([~^])(\d*)/g)) {
    const count = op[2] === '' ? 1 : Number(op[2]);
    id = await peelToCommit(repo, id, rev);
    if (op[1] === '~') {
      for (let i = 0; i < count; i++) {
        const parent = (await readCommit(repo.objects, id)).parents[0];
        if (!parent) throw unknownRevision(rev);
        id = parent;
      }
    } else if (count > 0) {
      const parent = (await readCommit(repo.objects, id)).parents[count - 1];
      if (!parent) throw unknownRevision(rev);
      id = parent;
    }
  }
  return id;
}

/** Git's pseudo-refs that MediaGit writes (merge-state.ts). */
const PSEUDO_REFS = new Set(['MERGE_HEAD', 'ORIG_HEAD', 'CHERRY_PICK_HEAD', 'REVERT_HEAD']);

async function resolveBase(repo: Repository, base: string, rev: string): Promise<ObjectId> {
  const refs = new Refs(repo);
  const reflog = /^(.*)@\{(\d+)\}$/.exec(base);
  if (reflog) {
    const name = await resolveRefName(repo, reflog[1] === '' ? 'HEAD' : reflog[1]!);
    if (!name) throw unknownRevision(rev);
    const entries = await refs.log(name);
    const entry = entries[Number(reflog[2])];
    if (!entry) {
      throw new MediaGitError(
        'REFLOG_SHORT',
        `log for '${reflog[1] || 'HEAD'}' only has ${entries.length} entries`,
        {
          kind: 'usage',
        },
      );
    }
    return entry.newId;
  }
  if (base === 'HEAD' || base === '@') {
    const head = await refs.head();
    if (!head.id) throw unknownRevision(rev);
    return head.id;
  }
  if (PSEUDO_REFS.has(base)) {
    // MERGE_HEAD, ORIG_HEAD...: a commit ID in a file of the repository folder.
    const text = await fs.readFile(path.join(repo.gitDir, base), 'utf8').catch(() => '');
    const id = text.trim();
    if (!isObjectId(id)) throw unknownRevision(rev);
    return id;
  }
  for (const name of [
    base,
    `refs/${base}`,
    `refs/tags/${base}`,
    `refs/heads/${base}`,
    `refs/remotes/${base}`,
  ]) {
    if (!name.startsWith('refs/')) continue;
    const id = await refs.read(name).catch(() => undefined);
    if (id) return id;
  }
  if (isObjectId(base)) {
    if (await repo.objects.has(base)) return base;
    throw unknownRevision(rev);
  }
  if (/^[0-9a-f]{4,63}$/.test(base)) return resolveShortId(repo, base, rev);
  throw unknownRevision(rev);
}

/** The full ref name a reflog-able name refers to: HEAD, a branch or a tag. */
export async function resolveRefName(repo: Repository, name: string): Promise<string | undefined> {
  if (name === 'HEAD') return 'HEAD';
  const refs = new Refs(repo);
  for (const full of [
    name,
    `refs/${name}`,
    `refs/heads/${name}`,
    `refs/tags/${name}`,
    `refs/remotes/${name}`,
  ]) {
    if (full.startsWith('refs/') && (await refs.read(full).catch(() => undefined))) return full;
  }
  return undefined;
}

async function resolveShortId(repo: Repository, prefix: string, rev: string): Promise<ObjectId> {
  const candidates = await repo.objects.idsWithPrefix(prefix);
  if (candidates.length > 1) {
    // Prefer commits and tags: chunks and blobs are never what a short ID means in a revision.
    const named: ObjectId[] = [];
    for (const id of candidates) {
      const info = await repo.objects.info(id).catch(() => undefined);
      if (info && (info.type === 'commit' || info.type === 'tag')) named.push(id);
    }
    if (named.length === 1) return named[0]!;
    throw new MediaGitError('AMBIGUOUS_REVISION', `short object ID ${prefix} is ambiguous`, {
      kind: 'usage',
      data: { revision: rev, candidates },
    });
  }
  if (candidates.length === 0) throw unknownRevision(rev);
  return candidates[0]!;
}

export function shortId(id: ObjectId): string {
  return id.slice(0, 7);
}
