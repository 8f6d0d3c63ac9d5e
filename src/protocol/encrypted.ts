/**
 * What an encrypted repository cannot do yet: exchange objects with a
 * remote (docs/encryption.md, "What remains"). Refused before anything is
 * sent or written.
 */
import { MediaGitError } from '../errors.ts';
import type { Repository } from '../repo/repository.ts';

export function refuseIfEncrypted(repo: Repository, verb: string): void {
  if (!repo.encrypted) return;
  throw new MediaGitError(
    'NOT_IMPLEMENTED',
    `${verb}: exchanging objects of an encrypted repository with a remote is not implemented yet (docs/encryption.md); nothing was sent or changed`,
    { kind: 'user', data: { exitCode: 128 } },
  );
}
