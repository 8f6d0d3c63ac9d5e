/**
 * Branch protection (`branch --protect <name>`, stored as
 * `[branch."<name>"] protect = true` in the repository config): a protected
 * branch may only move forward. Deleting it, or moving it to a commit that
 * does not contain its current one (reset backwards, amend, a forced branch
 * move), is refused with one line saying why. Refs.update enforces it for
 * every writer; verbs that change files first check up front
 * (`assertMayMove`) so a refusal changes nothing. The server will apply the
 * same rule to pushes.
 */
import path from 'node:path';
import { updateConfigFile } from '../config/config.ts';
import { MediaGitError } from '../errors.ts';
import type { ObjectId } from '../odb/object-id.ts';
import { isAncestor } from './merge-base.ts';
import type { Repository } from './repository.ts';

const BRANCH_PREFIX = 'refs/heads/';

export function isProtected(repo: Repository, ref: string): boolean {
  if (!ref.startsWith(BRANCH_PREFIX)) return false;
  return repo.config(`branch.${ref.slice(BRANCH_PREFIX.length)}.protect`) === true;
}

/** Turns protection of branch `name` on or off in the repository config. */
export async function setProtected(repo: Repository, name: string, on: boolean): Promise<void> {
  await updateConfigFile(
    path.join(repo.gitDir, 'config'),
    `branch.${name}.protect`,
    on ? true : undefined,
  );
}

/** Refuses moving protected `ref` from `from` to `to` (null: deleting it) unless it moves forward. */
export async function assertMayMove(
  repo: Repository,
  ref: string,
  from: ObjectId | undefined,
  to: ObjectId | null,
): Promise<void> {
  if (from === undefined || from === to || !isProtected(repo, ref)) return;
  const name = ref.slice(BRANCH_PREFIX.length);
  if (to === null) throw refused(name, 'cannot be deleted');
  if (!(await isAncestor(repo, from, to))) {
    throw refused(
      name,
      'can only move forward: this would drop commits from it (reset, amend, rebase or a forced move)',
    );
  }
}

function refused(name: string, why: string): MediaGitError {
  return new MediaGitError(
    'BRANCH_PROTECTED',
    `branch '${name}' is protected and ${why}; unprotect it with 'mediagit branch --unprotect ${name}'`,
    { kind: 'conflict', data: { branch: name } },
  );
}
