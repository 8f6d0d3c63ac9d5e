/**
 * Installs the promisor remote's content source on a partial clone's object
 * store (docs/partial-clone.md), with this process's credentials for it,
 * looked up only when absent content is first needed.
 */
import type { ObjectId } from '../odb/object-id.ts';
import type { ContentFetchOptions, ContentSource, PromisedFile } from '../odb/promised-content.ts';
import type { RemoteContentSource } from '../protocol/lazy-content.ts';
import { promisorRemote } from '../repo/partial-clone.ts';
import type { Repository } from '../repo/repository.ts';
import type { Cli } from './context.ts';
import { transportOptions } from './credentials.ts';
import { interruptible } from './interrupt.ts';

export function installContentSource(repo: Repository, cli: Cli): void {
  const promisor = promisorRemote(repo);
  if (promisor === undefined) return;
  // The transfer code loads when absent content is first needed, not for
  // every command run in a partial clone.
  let remote: Promise<RemoteContentSource> | undefined;
  const load = (): Promise<RemoteContentSource> =>
    (remote ??= import('../protocol/lazy-content.ts').then(
      ({ RemoteContentSource }) =>
        new RemoteContentSource(repo.objects, promisor, () => transportOptions(cli, promisor.url)),
    ));
  repo.objects.contentSource = new KeepOnInterrupt(load, cli);
}

/**
 * A work-tree update's batch download (`fetchFiles`) receives into one pack
 * made durable when it ends: Ctrl-C during it first winds the download down,
 * so the pack keeps what arrived, then the command dies of the signal as
 * any other does (its locks and temp files removed). A rerun fetches only
 * the rest. Other fetches store each chunk durably as it arrives.
 */
class KeepOnInterrupt implements ContentSource {
  /** The remote source, loaded on first use. */
  readonly #inner: () => Promise<RemoteContentSource>;
  readonly #cli: Cli;

  constructor(inner: () => Promise<RemoteContentSource>, cli: Cli) {
    this.#inner = inner;
    this.#cli = cli;
  }

  fetch(ids: readonly ObjectId[], options: ContentFetchOptions): Promise<void> {
    return this.#inner().then((inner) => inner.fetch(ids, options));
  }

  fetchObjects(ids: readonly ObjectId[], options: ContentFetchOptions): Promise<void> {
    return this.#inner().then((inner) => inner.fetchObjects(ids, options));
  }

  fetchFiles(
    ids: readonly ObjectId[],
    files: readonly PromisedFile[],
    options: ContentFetchOptions,
  ): Promise<Map<ObjectId, string>> {
    return interruptible(
      (signal) =>
        this.#inner().then((inner) =>
          inner.fetchFiles(ids, files, {
            ...options,
            signal: options.signal ? AbortSignal.any([options.signal, signal]) : signal,
          }),
        ),
      () =>
        this.#cli.err(
          'Interrupted while fetching file content; what arrived is kept: run the command again for the rest.',
        ),
    );
  }
}
