/**
 * A full check of a repository seen through the storage interface (the
 * server-side `fsck`): every ref names a stored commit or tag, and every
 * object reachable from the refs is present and hashes to its ID (chunks
 * included, each read and verified).
 */
import { MediaGitError } from '../errors.ts';
import type { BackendRepo } from './backend-repo.ts';
import { collectObjects } from './reachability.ts';

export interface VerifyReport {
  readonly refs: number;
  readonly objects: number;
  readonly chunks: number;
  readonly problems: string[];
  /** The same problems with their kind: an object stored nowhere, or damaged. */
  readonly issues: { kind: 'missing' | 'corrupt'; message: string }[];
}

function kindOf(error: MediaGitError): 'missing' | 'corrupt' {
  return error.code === 'OBJECT_MISSING' ? 'missing' : 'corrupt';
}

export async function verifyRepo(repo: BackendRepo, signal?: AbortSignal): Promise<VerifyReport> {
  const problems: string[] = [];
  const issues: VerifyReport['issues'] = [];
  const note = (kind: 'missing' | 'corrupt', message: string): void => {
    problems.push(message);
    issues.push({ kind, message });
  };
  const refs = await repo.listRefs();
  let objects = 0;
  let chunks = 0;
  const tips = [...new Set(refs.map((ref) => ref.id))];
  for (const ref of refs) {
    const type = await repo.typeOf(ref.id);
    if (type !== 'commit' && type !== 'tag') {
      note(
        type ? 'corrupt' : 'missing',
        `${ref.name}: ${ref.id} is ${type ? `a ${type}` : 'missing'}`,
      );
    }
  }
  let collected;
  try {
    collected = await collectObjects(repo, tips, { signal });
  } catch (error) {
    if (error instanceof MediaGitError) {
      note(kindOf(error), error.message);
      return { refs: refs.length, objects, chunks, problems, issues };
    }
    throw error;
  }
  for (const id of collected.objects) {
    signal?.throwIfAborted();
    try {
      await repo.read(id);
      objects++;
    } catch (error) {
      if (!(error instanceof MediaGitError)) throw error;
      note(kindOf(error), error.message);
    }
  }
  for (const id of collected.chunks) {
    signal?.throwIfAborted();
    try {
      const chunk = await repo.read(id);
      if (chunk.type !== 'chunk' && chunk.type !== 'blob') {
        note('corrupt', `chunk ${id} is a ${chunk.type}`);
      }
      chunks++;
    } catch (error) {
      if (!(error instanceof MediaGitError)) throw error;
      note(kindOf(error), error.message);
    }
  }
  return { refs: refs.length, objects, chunks, problems, issues };
}
