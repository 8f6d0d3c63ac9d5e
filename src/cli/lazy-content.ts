/**
 * Installs the promisor remote's content source on a partial clone's object
 * store (docs/partial-clone.md), with this process's credentials for it,
 * looked up only when absent content is first needed.
 */
import { RemoteContentSource } from '../protocol/lazy-content.ts';
import { promisorRemote } from '../repo/partial-clone.ts';
import type { Repository } from '../repo/repository.ts';
import type { Cli } from './context.ts';
import { transportOptions } from './credentials.ts';

export function installContentSource(repo: Repository, cli: Cli): void {
  const promisor = promisorRemote(repo);
  if (promisor === undefined) return;
  repo.objects.contentSource = new RemoteContentSource(repo.objects, promisor, () =>
    transportOptions(cli, promisor.url),
  );
}
