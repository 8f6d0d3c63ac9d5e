/**
 * `remote prune`: deletes the remote-tracking branches whose branch is gone
 * from the remote (the "stale" ones of `remote show`), as `fetch --prune`
 * would, without fetching anything.
 */
import { MediaGitError } from '../errors.ts';
import type { ObjectId } from '../odb/object-id.ts';
import { Refs } from '../repo/refs.ts';
import type { Repository } from '../repo/repository.ts';
import { resolveRemote } from './fetch.ts';
import { remoteFor } from './encrypted.ts';
import { openTransport, type TransportOptions } from './open-transport.ts';
import { remoteBranches, trackingRefs } from './remote-show.ts';

export interface PruneRemoteOptions extends TransportOptions {
  /** Report what would go, delete nothing. */
  readonly dryRun?: boolean;
}

export interface PruneResult {
  readonly name: string;
  readonly url: string;
  readonly dryRun: boolean;
  /** The remote-tracking refs deleted (or that would be), full names, sorted. */
  readonly pruned: { readonly ref: string; readonly id: ObjectId }[];
}

export async function pruneRemote(
  repo: Repository,
  name: string,
  options: PruneRemoteOptions = {},
): Promise<PruneResult> {
  // A plain word that is no remote: fetch's refusal (Git's, exit 128).
  const remote = await resolveRemote(repo, name);
  if (remote.name === undefined) {
    throw new MediaGitError('NO_SUCH_REMOTE', `no such remote '${name}'`, {
      kind: 'user',
      data: { remote: name, exitCode: 128 },
    });
  }
  const transport = await openTransport(remote.url, options);
  let info;
  try {
    info = await remoteFor(repo, transport, 'fetch').infoRefs();
  } finally {
    await transport.close();
  }
  const refs = new Refs(repo);
  const tracking = await trackingRefs(refs, name);
  const pruned: { ref: string; id: ObjectId }[] = [];
  for (const branch of remoteBranches(name, info, tracking)) {
    if (branch.state !== 'stale') continue;
    const id = tracking.get(branch.trackingRef)!;
    if (!options.dryRun) {
      await refs.update(branch.trackingRef, null, {
        expected: id,
        message: `remote: prune ${name}`,
      });
    }
    pruned.push({ ref: branch.trackingRef, id });
  }
  return { name, url: remote.url, dryRun: options.dryRun === true, pruned };
}
