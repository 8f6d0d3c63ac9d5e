/**
 * Promised content: in a partial clone (docs/partial-clone.md) the commits
 * and trees are all here, but the files the filter leaves out (manifests
 * and chunks, or small files' blobs) may be absent, promised by a remote that
 * has them. The object store asks a `ContentSource` for them before they are
 * read; the CLI installs one (protocol/lazy-content.ts) for a repository
 * with a promisor remote, so this layer never knows about transports.
 */
import type { Manifest } from './manifest.ts';
import type { ObjectId } from './object-id.ts';

export interface ContentFetchOptions {
  /** The files whose content is wanted, for the message when it cannot be fetched. */
  readonly files?: readonly string[] | undefined;
  readonly signal?: AbortSignal | undefined;
  /**
   * `fetchObjects` may return before its objects are durable (they are
   * readable from memory meanwhile): the caller awaits the store's `flush()`
   * before anything names them, and that reports a failed write.
   */
  readonly durableAtFlush?: boolean | undefined;
}

export interface ContentSource {
  /**
   * Stores every object of `ids` (chunks or blobs) in the object store,
   * verified and durable one by one (an interrupted fetch keeps what
   * arrived), or throws one error naming the first file and the remote,
   * having changed nothing but adding objects.
   */
  fetch(ids: readonly ObjectId[], options: ContentFetchOptions): Promise<void>;

  /**
   * Stores the objects `ids` of any type (the manifests a filtered clone
   * left on the remote, or one object a reader asked for), verified, in one
   * request; throws as `fetch` does.
   */
  fetchObjects?(ids: readonly ObjectId[], options: ContentFetchOptions): Promise<void>;

  /**
   * `fetch` for files about to be checked out: the absent chunks `ids` are
   * stored as `fetch` stores them, and each file of `files` is also written
   * to a temp file in the object store's tmp folder as its chunks arrive (no
   * second pass reading the content back). Returns the files written whole,
   * by manifest ID; the caller moves them into place or deletes them.
   */
  fetchFiles?(
    ids: readonly ObjectId[],
    files: readonly PromisedFile[],
    options: ContentFetchOptions,
  ): Promise<Map<ObjectId, string>>;
}

/** A file whose content is to be fetched: its manifest. */
export interface PromisedFile {
  readonly id: ObjectId;
  readonly manifest: Manifest;
}
