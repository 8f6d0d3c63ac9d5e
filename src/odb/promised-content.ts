/**
 * Promised content: in a partial clone (docs/partial-clone.md) the metadata
 * (commits, trees, manifests, small-file blobs) is all here, but chunks may
 * be absent, promised by a remote that has them. The object store asks a
 * `ContentSource` for them before file content is read; the CLI installs one
 * (protocol/lazy-content.ts) for a repository with a promisor remote, so this
 * layer never knows about transports.
 */
import type { ObjectId } from './object-id.ts';

export interface ContentFetchOptions {
  /** The files whose content is wanted, for the message when it cannot be fetched. */
  readonly files?: readonly string[] | undefined;
  readonly signal?: AbortSignal | undefined;
}

export interface ContentSource {
  /**
   * Stores every object of `ids` (chunks or blobs) in the object store,
   * verified and durable one by one (an interrupted fetch keeps what
   * arrived), or throws one error naming the first file and the remote,
   * having changed nothing but adding objects.
   */
  fetch(ids: readonly ObjectId[], options: ContentFetchOptions): Promise<void>;
}
