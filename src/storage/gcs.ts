/**
 * The Google Cloud Storage backend (`gs://bucket/prefix`), with Google's
 * official SDK (@google-cloud/storage, JSON API).
 *
 * - Credentials: a service-account key file or key given in the settings,
 *   else application default credentials (GOOGLE_APPLICATION_CREDENTIALS,
 *   gcloud's login, the metadata server). The SDK itself honours
 *   `STORAGE_EMULATOR_HOST`.
 * - Compare-and-swap: generation preconditions. An object's ETag here is
 *   its generation (a new one on every write); `ifNoneMatch: '*'` is
 *   `ifGenerationMatch: 0`, `ifMatch: g` is `ifGenerationMatch: g`.
 * - Uploads are single requests (`resumable: false`): atomic, and the
 *   objects MediaGit writes are at most a pack (64 MiB) or a blob.
 * - The SDK's retries and its whole-object CRC checks are off (RetryingBackend
 *   retries where safe; objects are verified by their content IDs).
 * - Timeouts: reads and writes of object bytes are streams under an idle
 *   deadline (IdleDeadline: no byte for `requestTimeoutMs` cuts them, a slow
 *   transfer that keeps moving never is), on a second client whose own
 *   whole-request timeout is only a backstop; small JSON requests (metadata,
 *   listings, deletes) keep the SDK's timeout, which for them is the same.
 * - `sign` makes V4 signed URLs (needs a service-account key); a create-only
 *   PUT signs `x-goog-if-generation-match: 0`.
 */
import { Storage, type Bucket, type File, type StorageOptions } from '@google-cloud/storage';
import { MediaGitError } from '../errors.ts';
import {
  checkKey,
  checkPrefix,
  joinKey,
  notFound,
  preconditionFailed,
  storageFailure,
  type ObjectHead,
  type PutOptions,
  type SignedRequest,
  type SignOptions,
  type StorageBackend,
} from './backend.ts';
import { describeCause, isTransientNetworkError } from './http-errors.ts';
import { type IdleDeadline, STORE_IDLE_TIMEOUT_MS, underIdleDeadline } from './idle-deadline.ts';
import { parseBucketUrl } from './cloud-url.ts';

export interface GcsSettings {
  /** e.g. http://127.0.0.1:9023 for an emulator; STORAGE_EMULATOR_HOST also works. */
  readonly apiEndpoint?: string | undefined;
  readonly projectId?: string | undefined;
  /** A service-account JSON key file. */
  readonly keyFilename?: string | undefined;
  readonly credentials?:
    { readonly client_email: string; readonly private_key: string } | undefined;
  readonly requestTimeoutMs?: number | undefined;
}

/**
 * The streaming client's own whole-request timeout: a backstop only (the
 * idle deadline cuts stalls); a 64 MiB pack at 100 KB/s still fits.
 */
const STREAM_BACKSTOP_MS = 60 * 60 * 1000;
/** Bytes an upload is written in; each one taken re-arms its idle deadline. */
const PUT_SLICE = 1024 * 1024;

interface ApiErrorLike {
  readonly code?: number | string;
  readonly name?: string;
  readonly message?: string;
  readonly errors?: readonly { readonly reason?: string }[];
}

export class GcsBackend implements StorageBackend {
  readonly url: string;
  readonly bucketName: string;
  readonly prefix: string;
  readonly capabilities = {
    conditionalPut: true,
    rangedGet: true,
    signedUrls: true,
    remote: true,
  } as const;
  readonly storage: Storage;
  readonly #bucket: Bucket;
  /** The same bucket for byte streams, which carry their own idle deadline. */
  readonly #streams: Bucket;
  readonly #settings: GcsSettings;

  constructor(url: string, settings: GcsSettings = {}, storage?: Storage, streaming?: Storage) {
    const { bucket, prefix } = parseBucketUrl(url, 'gs');
    this.bucketName = bucket;
    this.prefix = prefix;
    this.url = `gs://${bucket}${prefix === '' ? '' : `/${prefix}`}`;
    this.#settings = settings;
    this.storage = storage ?? GcsBackend.#connect(settings, this.#idleMs);
    this.#bucket = this.storage.bucket(bucket);
    this.#streamingStorage = streaming ?? GcsBackend.#connect(settings, STREAM_BACKSTOP_MS);
    this.#streams = this.#streamingStorage.bucket(bucket);
  }

  readonly #streamingStorage: Storage;

  get #idleMs(): number {
    return this.#settings.requestTimeoutMs ?? STORE_IDLE_TIMEOUT_MS;
  }

  static #connect(settings: GcsSettings, timeout: number): Storage {
    const options: StorageOptions = {
      retryOptions: { autoRetry: false, maxRetries: 0 },
      timeout,
      ...(settings.apiEndpoint ? { apiEndpoint: settings.apiEndpoint } : {}),
      ...(settings.projectId ? { projectId: settings.projectId } : {}),
      ...(settings.keyFilename ? { keyFilename: settings.keyFilename } : {}),
      ...(settings.credentials ? { credentials: settings.credentials } : {}),
    };
    return new Storage(options);
  }

  #file(key: string): File {
    return this.#bucket.file(joinKey(this.prefix, checkKey(key)));
  }

  /**
   * Reads an object (or bytes [start, end] of it) as a stream under an idle
   * deadline: each piece that arrives re-arms it.
   */
  async #download(key: string, range: { start: number; end: number } | undefined): Promise<Buffer> {
    const file = this.#streams.file(joinKey(this.prefix, checkKey(key)));
    return this.#idle(key, (deadline) => {
      const stream = file.createReadStream({ validation: false, ...range });
      const parts: Buffer[] = [];
      return new Promise<Buffer>((resolve, reject) => {
        deadline.signal.addEventListener('abort', () => stream.destroy(new Error('idle')), {
          once: true,
        });
        stream.on('data', (part: Buffer) => {
          parts.push(part);
          deadline.touch();
        });
        stream.on('error', reject);
        stream.on('end', () => resolve(Buffer.concat(parts)));
      });
    });
  }

  /** Runs one streamed request; a deadline that fired is STORAGE_UNAVAILABLE (transient). */
  #idle<T>(key: string, request: (deadline: IdleDeadline) => Promise<T>): Promise<T> {
    return underIdleDeadline(this.#idleMs, this.url, key, request);
  }

  #failure(error: unknown, key: string): MediaGitError {
    if (error instanceof MediaGitError) return error;
    const e = (error ?? {}) as ApiErrorLike;
    const status = typeof e.code === 'number' ? e.code : undefined;
    const reasonCode = e.errors?.[0]?.reason ?? (typeof e.code === 'string' ? e.code : '');
    const reason = `${reasonCode || 'error'}${status ? ` (HTTP ${status})` : ''}: ${describeCause(error)}`;
    if (status === 404 && /bucket/i.test(e.message ?? '')) {
      return storageFailure(
        'STORAGE_NO_BUCKET',
        this.url,
        key,
        `bucket ${this.bucketName} does not exist`,
        error,
      );
    }
    if (
      status === 401 ||
      status === 403 ||
      /Could not load the default credentials|invalid_grant|unauthorized/i.test(e.message ?? '')
    ) {
      return storageFailure(
        'STORAGE_ACCESS_DENIED',
        this.url,
        key,
        `access denied: ${reason}`,
        error,
      );
    }
    const transient =
      (status !== undefined && (status >= 500 || status === 429 || status === 408)) ||
      isTransientNetworkError(error);
    return storageFailure(
      transient ? 'STORAGE_UNAVAILABLE' : 'STORAGE_FAILED',
      this.url,
      key,
      reason,
      error,
    );
  }

  async get(key: string): Promise<Uint8Array> {
    try {
      return await this.#download(key, undefined);
    } catch (error) {
      if (isObjectNotFound(error)) throw notFound(key);
      throw this.#failure(error, key);
    }
  }

  async getRange(key: string, start: number, end: number): Promise<Uint8Array> {
    const from = Math.max(0, start);
    if (end <= from) {
      if (!(await this.head(key))) throw notFound(key);
      return new Uint8Array(0);
    }
    try {
      return await this.#download(key, { start: from, end: end - 1 });
    } catch (error) {
      if (isObjectNotFound(error)) throw notFound(key);
      // A range starting at or past the end: the object exists, the range is empty.
      if ((error as ApiErrorLike).code === 416) return new Uint8Array(0);
      throw this.#failure(error, key);
    }
  }

  async put(key: string, data: Uint8Array, options: PutOptions = {}): Promise<{ etag: string }> {
    const file = this.#streams.file(joinKey(this.prefix, checkKey(key)));
    const ifGenerationMatch =
      options.ifNoneMatch === '*'
        ? 0
        : options.ifMatch !== undefined
          ? Number(options.ifMatch)
          : undefined;
    if (options.ifMatch !== undefined && !/^\d+$/.test(options.ifMatch)) {
      throw preconditionFailed(key, options.ifMatch);
    }
    const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    try {
      await this.#idle(key, (deadline) => {
        const stream = file.createWriteStream({
          resumable: false,
          validation: false,
          ...(ifGenerationMatch !== undefined ? { preconditionOpts: { ifGenerationMatch } } : {}),
        });
        return new Promise<void>((resolve, reject) => {
          deadline.signal.addEventListener('abort', () => stream.destroy(new Error('idle')), {
            once: true,
          });
          stream.on('error', reject);
          stream.on('finish', resolve);
          // In slices, each taken by the request stream re-arming the deadline.
          let at = 0;
          const pump = (): void => {
            while (at < bytes.length) {
              const slice = bytes.subarray(at, Math.min(bytes.length, at + PUT_SLICE));
              at += slice.length;
              if (!stream.write(slice, () => deadline.touch())) {
                stream.once('drain', pump);
                return;
              }
            }
            stream.end();
          };
          pump();
        });
      });
      const generation = (file.metadata as { generation?: string | number }).generation;
      return { etag: String(generation ?? '') };
    } catch (error) {
      const code = (error as ApiErrorLike).code;
      if (code === 412 || (code === 404 && options.ifMatch !== undefined)) {
        throw preconditionFailed(key, options.ifMatch ?? 'no object');
      }
      throw this.#failure(error, key);
    }
  }

  async head(key: string): Promise<ObjectHead | undefined> {
    try {
      const [metadata] = await this.#file(key).getMetadata();
      return { size: Number(metadata.size ?? 0), etag: String(metadata.generation ?? '') };
    } catch (error) {
      if (isObjectNotFound(error)) return undefined;
      throw this.#failure(error, key);
    }
  }

  async *list(prefix: string): AsyncIterable<string> {
    checkPrefix(prefix);
    const full = this.prefix === '' ? prefix : `${this.prefix}/${prefix}`;
    const cut = this.prefix === '' ? 0 : this.prefix.length + 1;
    let pageToken: string | undefined;
    do {
      let files: File[];
      let next: { pageToken?: string } | null | undefined;
      try {
        [files, next] = (await this.#bucket.getFiles({
          prefix: full,
          maxResults: 1000,
          autoPaginate: false,
          ...(pageToken ? { pageToken } : {}),
        })) as unknown as [File[], { pageToken?: string } | null];
      } catch (error) {
        throw this.#failure(error, prefix);
      }
      for (const file of files) yield file.name.slice(cut);
      pageToken = next?.pageToken;
    } while (pageToken);
  }

  async delete(key: string): Promise<void> {
    try {
      await this.#file(key).delete({ ignoreNotFound: true });
    } catch (error) {
      if (isObjectNotFound(error)) return;
      throw this.#failure(error, key);
    }
  }

  child(prefix: string): GcsBackend {
    return new GcsBackend(
      `${this.url}/${checkKey(prefix)}`,
      this.#settings,
      this.storage,
      this.#streamingStorage,
    );
  }

  async sign(key: string, options: SignOptions): Promise<SignedRequest> {
    const expires = new Date(Date.now() + options.expiresSeconds * 1000);
    const createOnly = options.method === 'PUT' && options.createOnly === true;
    const extensionHeaders: Record<string, string> = createOnly
      ? { 'x-goog-if-generation-match': '0' }
      : {};
    try {
      const [url] = await this.#file(key).getSignedUrl({
        version: 'v4',
        action: options.method === 'GET' ? 'read' : 'write',
        expires,
        ...(createOnly ? { extensionHeaders } : {}),
      });
      return {
        method: options.method,
        url,
        headers: extensionHeaders,
        expires: expires.toISOString(),
      };
    } catch (error) {
      throw this.#failure(error, key);
    }
  }
}

function isObjectNotFound(error: unknown): boolean {
  const e = error as ApiErrorLike;
  return e?.code === 404 && !/bucket/i.test(e.message ?? '');
}
