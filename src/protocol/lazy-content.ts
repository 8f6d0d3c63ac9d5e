/**
 * The content source of a partial clone (docs/partial-clone.md): absent
 * chunks fetched from the promisor remote when a command needs them, with
 * the same machinery as `fetch` (objects/locate, coalesced ranged reads in
 * parallel, each record verified and stored durably as it arrives, so an
 * interrupted fetch keeps what arrived and a rerun asks only for the rest).
 * A remote that cannot give them fails the command with one line naming the
 * file and the remote; the only change such a failure leaves is the chunks
 * that did arrive.
 */
import { MediaGitError } from '../errors.ts';
import type { ObjectId } from '../odb/object-id.ts';
import type { ObjectStore } from '../odb/object-store.ts';
import type { ContentFetchOptions, ContentSource, PromisedFile } from '../odb/promised-content.ts';
import { CheckoutWriter } from './checkout-writer.ts';
import { decodeRecord, type DecodedRecord } from '../odb/record.ts';
import { downloadChunks, storeMetadata, type TransferStats } from './fetch.ts';
import { openTransport, type TransportOptions } from './open-transport.ts';
import type { Transport } from './transport.ts';
import { decodeTransferPack } from './transfer-pack.ts';

/** Objects asked for in one `want` (the server takes at most 10,000). */
const WANTS_PER_REQUEST = 5000;

export interface PromisorEndpoint {
  readonly name: string;
  readonly url: string;
}

export class RemoteContentSource implements ContentSource {
  readonly #store: ObjectStore;
  readonly #remote: PromisorEndpoint;
  readonly #options: TransportOptions | (() => Promise<TransportOptions>);
  /** What every fetch of this source transferred, for reports and tests. */
  readonly stats: TransferStats = { objects: 0, chunks: 0, chunksSkipped: 0, bytes: 0 };

  constructor(
    store: ObjectStore,
    remote: PromisorEndpoint,
    /** Credentials and TLS settings, or how to get them once they are needed. */
    options: TransportOptions | (() => Promise<TransportOptions>),
  ) {
    this.#store = store;
    this.#remote = remote;
    this.#options = options;
  }

  async fetch(ids: readonly ObjectId[], options: ContentFetchOptions): Promise<void> {
    await this.#download(ids, undefined, options);
  }

  /**
   * Objects by ID through `want` (the manifests a filtered clone left on the
   * remote, a few thousand per request): each verified, and only those asked
   * for kept. `depth: 1` and the filter keep the server from walking further
   * when one of them is a commit or a tree.
   */
  async fetchObjects(ids: readonly ObjectId[], options: ContentFetchOptions): Promise<void> {
    await this.#withRemote(
      ids,
      options,
      async (transport) => {
        for (let at = 0; at < ids.length; at += WANTS_PER_REQUEST) {
          const batch = ids.slice(at, at + WANTS_PER_REQUEST);
          const pack = await transport.want({
            wants: batch,
            haves: [],
            depth: 1,
            filter: 'blob:none',
          });
          this.stats.bytes += pack.length;
          const asked = new Set(batch);
          const kept = new Map<ObjectId, Buffer>();
          const decoded = new Map<ObjectId, DecodedRecord>();
          for (const { id, record } of decodeTransferPack(pack)) {
            if (!asked.has(id) || kept.has(id)) continue;
            decoded.set(id, await decodeRecord(id, record));
            kept.set(id, record);
          }
          const lacking = batch.find((id) => !kept.has(id));
          if (lacking !== undefined) {
            throw new MediaGitError('OBJECT_MISSING', `the remote did not send object ${lacking}`, {
              data: { id: lacking },
            });
          }
          const stored = storeMetadata(
            this.#store,
            [...kept].map(([id, record]) => ({ id, record })),
            false,
          ).then((count) => {
            this.stats.objects += count;
          });
          if (options.durableAtFlush === true) {
            // Written while the caller goes on (a checkout: to fetch their chunks).
            this.#store.rememberStoring(decoded, stored);
          } else {
            await stored;
            await this.#store.flush();
            this.#store.remember(decoded);
          }
        }
      },
      options.durableAtFlush !== true,
    );
  }

  /**
   * The chunks of files a checkout is about to write: received into one
   * ingest pack (made durable at the end, and with what arrived when the
   * download fails or is interrupted, so a rerun asks only for the rest)
   * while each file is written out as its chunks arrive (CheckoutWriter),
   * as a clone does.
   */
  async fetchFiles(
    ids: readonly ObjectId[],
    files: readonly PromisedFile[],
    options: ContentFetchOptions,
  ): Promise<Map<ObjectId, string>> {
    const writer = await CheckoutWriter.forManifests(this.#store.tmpDir, files);
    // Each chunk's size from its manifest: a record that claims another is refused unread.
    const sizes = new Map<ObjectId, number>();
    for (const { manifest } of files) {
      for (const chunk of manifest.chunks) sizes.set(chunk.id, chunk.length);
    }
    try {
      await this.#download(ids, writer, options, sizes);
      return await writer.finish();
    } catch (error) {
      await writer.abort();
      throw error;
    }
  }

  async #download(
    ids: readonly ObjectId[],
    writer: CheckoutWriter | undefined,
    options: ContentFetchOptions,
    sizes?: ReadonlyMap<ObjectId, number>,
  ): Promise<void> {
    await this.#withRemote(ids, options, (transport) =>
      downloadChunks(
        this.#store,
        transport,
        ids,
        0,
        this.stats,
        { signal: options.signal },
        writer,
        writer !== undefined,
        writer !== undefined ? 'always' : 'never',
        sizes,
      ),
    );
  }

  /**
   * Runs `work` with a transport to the remote, then (unless `flush` is
   * false: the caller flushes) flushes the store, before any index or ref
   * names what arrived; any failure but an interruption becomes one
   * CONTENT_UNAVAILABLE naming the files.
   */
  async #withRemote(
    ids: readonly ObjectId[],
    options: ContentFetchOptions,
    work: (transport: Transport) => Promise<void>,
    flush = true,
  ): Promise<void> {
    if (ids.length === 0) return;
    const signal = options.signal;
    try {
      const base = typeof this.#options === 'function' ? await this.#options() : this.#options;
      const transport = await openTransport(this.#remote.url, { ...base, signal });
      try {
        await work(transport);
      } finally {
        await transport.close();
      }
      if (flush) await this.#store.flush();
    } catch (error) {
      if (signal?.aborted) throw error;
      throw contentUnavailable(this.#remote, ids, options.files, error);
    }
  }
}

function contentUnavailable(
  remote: PromisorEndpoint,
  ids: readonly ObjectId[],
  files: readonly string[] | undefined,
  cause: unknown,
): MediaGitError {
  const first = files?.[0];
  const what =
    first === undefined
      ? `object ${ids[0]}`
      : files!.length > 1
        ? `${first} (and ${files!.length - 1} more file${files!.length > 2 ? 's' : ''})`
        : first;
  const reason = (cause instanceof Error ? cause.message : String(cause)).split('\n')[0];
  return new MediaGitError(
    'CONTENT_UNAVAILABLE',
    `could not fetch content of ${what} from ${remote.name} (${remote.url}): ${reason}`,
    {
      kind: 'user',
      cause,
      data: { remote: remote.name, url: remote.url, files: files ?? [], exitCode: 128 },
    },
  );
}
