/**
 * `checkout`: Git's two-in-one verb. Given a branch it switches to it
 * (switch.ts); given any other commit it detaches HEAD there; given paths it
 * restores them from the index, or from a commit into both the index and the
 * working tree (restore.ts in overlay mode: paths the commit lacks stay).
 */
import { MediaGitError } from '../errors.ts';
import { branchRef } from './branch.ts';
import { Refs } from './refs.ts';
import type { Repository } from './repository.ts';
import { namesCommit, restore, type RestoreResult } from './restore.ts';
import { previousCheckout, type SwitchTarget } from './switch.ts';
import type { WorkTreeUpdateOptions } from './worktree-update.ts';

export type CheckoutRequest =
  | { readonly kind: 'switch'; readonly target: SwitchTarget }
  | { readonly kind: 'paths'; readonly rev: string | undefined; readonly paths: string[] }
  | { readonly kind: 'none' };

async function isBranch(repo: Repository, name: string): Promise<boolean> {
  const ref = branchRef(name);
  return ref !== undefined && (await new Refs(repo).read(ref)) !== undefined;
}

/** What switching to `name` means: a branch when one has that name, else a detached commit. */
export async function switchTargetFor(repo: Repository, name: string): Promise<SwitchTarget> {
  const resolved = name === '-' ? await previousCheckout(repo) : name;
  if (await isBranch(repo, resolved)) return { kind: 'branch', name: resolved };
  return { kind: 'detach', rev: resolved };
}

/**
 * Git's reading of `checkout <args>`. `afterDash` holds the arguments after
 * `--` when the user typed one: then the one argument before it, if any, is a
 * revision. Without `--`, the first argument is a revision when it names one,
 * and every other argument is a path.
 */
export async function interpretCheckoutArgs(
  repo: Repository,
  before: readonly string[],
  afterDash: readonly string[] | undefined,
): Promise<CheckoutRequest> {
  if (afterDash !== undefined) {
    if (before.length > 1) {
      throw new MediaGitError(
        'TOO_MANY_REFS',
        `only one reference expected, ${before.length} given.`,
        { kind: 'usage' },
      );
    }
    if (afterDash.length > 0) return { kind: 'paths', rev: before[0], paths: [...afterDash] };
  }
  const [first, ...rest] = before;
  if (first === undefined) return { kind: 'none' };
  if (rest.length === 0 && first === '-')
    return { kind: 'switch', target: await switchTargetFor(repo, first) };
  if ((await isBranch(repo, first)) || (await namesCommit(repo, first))) {
    if (rest.length === 0) return { kind: 'switch', target: await switchTargetFor(repo, first) };
    return { kind: 'paths', rev: first, paths: rest };
  }
  if (afterDash !== undefined) {
    // `checkout <name> --` insists that <name> is a revision.
    throw new MediaGitError('INVALID_REFERENCE', `invalid reference: ${first}`, {
      kind: 'usage',
      data: { name: first },
    });
  }
  return { kind: 'paths', rev: undefined, paths: [...before] };
}

export interface CheckoutPathsOptions extends Pick<WorkTreeUpdateOptions, 'signal' | 'onProgress'> {
  readonly rev: string | undefined;
  readonly paths: readonly string[];
  readonly cwd: string;
}

/**
 * `checkout [<rev>] -- <paths>`: from the index into the working tree, or
 * from `rev` into both; local changes to those paths are overwritten.
 */
export async function checkoutPaths(
  repo: Repository,
  options: CheckoutPathsOptions,
): Promise<RestoreResult> {
  return restore(repo, {
    paths: options.paths,
    cwd: options.cwd,
    source: options.rev,
    staged: options.rev !== undefined,
    worktree: true,
    overlay: true,
    signal: options.signal,
    onProgress: options.onProgress,
  });
}
