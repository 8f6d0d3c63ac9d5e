/** `init`: create an empty repository, or reinitialize one (which changes nothing stored). */
import { assertBranchName } from './refs.ts';
import { Repository, type RepoContext } from './repository.ts';
import type { KdfParams, SlotSecret } from '../security/encryption.ts';

export interface InitOptions {
  readonly bare: boolean;
  readonly initialBranch?: string | undefined;
  readonly context?: RepoContext;
  readonly encrypt?: { secret: SlotSecret; kdf?: KdfParams | undefined } | undefined;
}

export async function init(
  dir: string,
  options: InitOptions,
): Promise<{ gitDir: string; reinitialized: boolean }> {
  if (options.initialBranch !== undefined) assertBranchName(options.initialBranch);
  const { repo, reinitialized } = await Repository.init(
    dir,
    { bare: options.bare, initialBranch: options.initialBranch, encrypt: options.encrypt },
    options.context,
  );
  return { gitDir: repo.gitDir, reinitialized };
}
