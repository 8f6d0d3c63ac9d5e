/**
 * The Azure Blob backend (`az://account/container/prefix`), with Microsoft's
 * official SDK (@azure/storage-blob, @azure/identity).
 *
 * - Credentials, first that applies: a connection string, a shared account
 *   key, a SAS token, else DefaultAzureCredential (environment, workload and
 *   managed identity, Azure CLI login).
 * - Compare-and-swap: `If-None-Match: *` / `If-Match: <etag>` on Put Blob
 *   (and on Put Block List for objects staged as blocks); Azure makes a new
 *   ETag on every write.
 * - The SDK's own retries are off (RetryingBackend retries where safe).
 * - `sign` makes a service SAS with the account key, or a user-delegation
 *   SAS with an Azure AD credential; a create-only PUT gets the `c` (create)
 *   permission alone and carries `If-None-Match: *`.
 */
import {
  BlobSASPermissions,
  BlobServiceClient,
  generateBlobSASQueryParameters,
  StorageSharedKeyCredential,
  type BlobClient,
  type ContainerClient,
  type StoragePipelineOptions,
  type UserDelegationKey,
} from '@azure/storage-blob';
import { DefaultAzureCredential } from '@azure/identity';
import { randomBytes } from 'node:crypto';
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
import { azureCapabilities, parseAzureUrl } from './cloud-url.ts';

export interface AzureSettings {
  /** The Blob service URL; default `https://<account>.blob.core.windows.net` (Azurite: `http://127.0.0.1:10000/<account>`). */
  readonly endpoint?: string | undefined;
  readonly connectionString?: string | undefined;
  readonly accountKey?: string | undefined;
  /** A SAS token (without the leading '?') granting access to the container. */
  readonly sasToken?: string | undefined;
  readonly requestTimeoutMs?: number | undefined;
  /** Objects this big or bigger are staged as blocks in parallel, then committed. */
  readonly blockThreshold?: number | undefined;
  readonly blockSize?: number | undefined;
}

const DEFAULT_BLOCK_THRESHOLD = 128 * 1024 * 1024;
const DEFAULT_BLOCK_SIZE = 32 * 1024 * 1024;
const BLOCK_CONCURRENCY = 4;

interface RestErrorLike {
  readonly name?: string;
  readonly code?: string;
  readonly statusCode?: number;
  readonly message?: string;
}

interface Shared {
  readonly service: BlobServiceClient;
  readonly container: ContainerClient;
  readonly accountName: string;
  readonly sharedKey: StorageSharedKeyCredential | undefined;
  delegation?: { key: UserDelegationKey; until: number } | undefined;
}

export class AzureBackend implements StorageBackend {
  readonly url: string;
  readonly account: string;
  readonly containerName: string;
  readonly prefix: string;
  readonly capabilities: StorageBackend['capabilities'];
  readonly #settings: AzureSettings;
  readonly #shared: Shared;

  constructor(url: string, settings: AzureSettings = {}, shared?: Shared) {
    const { account, container, prefix } = parseAzureUrl(url);
    this.account = account;
    this.containerName = container;
    this.prefix = prefix;
    this.url = `az://${account}/${container}${prefix === '' ? '' : `/${prefix}`}`;
    this.#settings = settings;
    this.#shared = shared ?? AzureBackend.#connect(account, container, settings);
    this.capabilities = azureCapabilities(settings);
  }

  static #connect(account: string, container: string, settings: AzureSettings): Shared {
    const options: StoragePipelineOptions = {
      // No whole-request timeout: each call carries an idle deadline (#call).
      retryOptions: { maxTries: 1 },
      keepAliveOptions: { enable: true },
    };
    const endpoint = (settings.endpoint ?? `https://${account}.blob.core.windows.net`).replace(
      /\/+$/,
      '',
    );
    let service: BlobServiceClient;
    let sharedKey: StorageSharedKeyCredential | undefined;
    if (settings.connectionString) {
      service = BlobServiceClient.fromConnectionString(settings.connectionString, options);
      const key = /AccountKey=([^;]+)/i.exec(settings.connectionString)?.[1];
      const name = /AccountName=([^;]+)/i.exec(settings.connectionString)?.[1] ?? account;
      if (key) sharedKey = new StorageSharedKeyCredential(name, key);
    } else if (settings.accountKey) {
      sharedKey = new StorageSharedKeyCredential(account, settings.accountKey);
      service = new BlobServiceClient(endpoint, sharedKey, options);
    } else if (settings.sasToken) {
      service = new BlobServiceClient(
        `${endpoint}?${settings.sasToken.replace(/^\?/, '')}`,
        undefined,
        options,
      );
    } else {
      service = new BlobServiceClient(endpoint, new DefaultAzureCredential(), options);
    }
    return {
      service,
      container: service.getContainerClient(container),
      accountName: sharedKey?.accountName ?? account,
      sharedKey,
    };
  }

  #blob(key: string): BlobClient {
    return this.#shared.container.getBlobClient(joinKey(this.prefix, checkKey(key)));
  }

  #failure(error: unknown, key: string): MediaGitError {
    if (error instanceof MediaGitError) return error;
    const e = (error ?? {}) as RestErrorLike;
    const status = e.statusCode;
    const code = e.code ?? e.name ?? '';
    const reason = `${code || 'error'}${status ? ` (HTTP ${status})` : ''}: ${describeCause(error)}`;
    if (code === 'ContainerNotFound') {
      return storageFailure(
        'STORAGE_NO_BUCKET',
        this.url,
        key,
        `container ${this.containerName} does not exist in account ${this.account}`,
        error,
      );
    }
    if (
      status === 401 ||
      status === 403 ||
      /^Authentication|^Authorization|CredentialUnavailable/.test(code) ||
      e.name === 'CredentialUnavailableError'
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
      ['ServerBusy', 'OperationTimedOut', 'InternalError', 'REQUEST_SEND_ERROR'].includes(code) ||
      isTransientNetworkError(error) ||
      (e.name === 'AbortError' && /timeout|timed out/i.test(e.message ?? ''));
    return storageFailure(
      transient ? 'STORAGE_UNAVAILABLE' : 'STORAGE_FAILED',
      this.url,
      key,
      reason,
      error,
    );
  }

  /**
   * Runs one request under an idle deadline (MEDIAGIT_STORAGE_TIMEOUT_MS or
   * `requestTimeoutMs`, default 120 s without progress); a request cut by it
   * fails as transient, so the retrying layer tries it again.
   */
  #call<T>(key: string, request: (deadline: IdleDeadline) => Promise<T>): Promise<T> {
    return underIdleDeadline(
      this.#settings.requestTimeoutMs ?? STORE_IDLE_TIMEOUT_MS,
      this.url,
      key,
      request,
    );
  }

  /** The blob's bytes from `offset` (`count` of them, or to the end), read under one deadline. */
  #download(key: string, offset: number, count: number | undefined): Promise<Uint8Array> {
    return this.#call(key, async (deadline) => {
      const answer = await this.#blob(key).download(offset, count, {
        abortSignal: deadline.signal,
        onProgress: () => deadline.touch(),
      });
      return readStream(answer.readableStreamBody, deadline);
    });
  }

  async get(key: string): Promise<Uint8Array> {
    try {
      return await this.#download(key, 0, undefined);
    } catch (error) {
      if (isNotFound(error)) throw notFound(key);
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
      return await this.#download(key, from, end - from);
    } catch (error) {
      if (isNotFound(error)) throw notFound(key);
      if ((error as RestErrorLike).statusCode === 416) return new Uint8Array(0);
      throw this.#failure(error, key);
    }
  }

  async put(key: string, data: Uint8Array, options: PutOptions = {}): Promise<{ etag: string }> {
    const blob = this.#blob(key).getBlockBlobClient();
    const conditions = {
      ...(options.ifNoneMatch === '*' ? { ifNoneMatch: '*' } : {}),
      ...(options.ifMatch !== undefined ? { ifMatch: options.ifMatch } : {}),
    };
    try {
      if (data.length >= (this.#settings.blockThreshold ?? DEFAULT_BLOCK_THRESHOLD)) {
        const size = this.#settings.blockSize ?? DEFAULT_BLOCK_SIZE;
        const count = Math.ceil(data.length / size);
        const stamp = randomBytes(8).toString('hex');
        const ids = Array.from({ length: count }, (_, i) =>
          Buffer.from(`${stamp}-${String(i).padStart(6, '0')}`).toString('base64'),
        );
        let next = 0;
        const worker = async (): Promise<void> => {
          for (let i = next++; i < count; i = next++) {
            const part = data.subarray(i * size, Math.min(data.length, (i + 1) * size));
            await this.#call(key, (deadline) =>
              blob.stageBlock(ids[i]!, part, part.length, {
                abortSignal: deadline.signal,
                onProgress: () => deadline.touch(),
              }),
            );
          }
        };
        await Promise.all(Array.from({ length: Math.min(BLOCK_CONCURRENCY, count) }, worker));
        const done = await this.#call(key, (deadline) =>
          blob.commitBlockList(ids, { conditions, abortSignal: deadline.signal }),
        );
        return { etag: done.etag ?? '' };
      }
      const answer = await this.#call(key, (deadline) =>
        blob.upload(data, data.length, {
          conditions,
          abortSignal: deadline.signal,
          onProgress: () => deadline.touch(),
        }),
      );
      return { etag: answer.etag ?? '' };
    } catch (error) {
      const e = error as RestErrorLike;
      if (
        e.statusCode === 412 ||
        e.code === 'ConditionNotMet' ||
        e.code === 'BlobAlreadyExists' ||
        (e.statusCode === 409 && options.ifNoneMatch === '*')
      ) {
        throw preconditionFailed(key, options.ifMatch ?? 'no object');
      }
      if (options.ifMatch !== undefined && isNotFound(error))
        throw preconditionFailed(key, options.ifMatch);
      throw this.#failure(error, key);
    }
  }

  async head(key: string): Promise<ObjectHead | undefined> {
    try {
      const props = await this.#call(key, (deadline) =>
        this.#blob(key).getProperties({ abortSignal: deadline.signal }),
      );
      return { size: props.contentLength ?? 0, etag: props.etag ?? '' };
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw this.#failure(error, key);
    }
  }

  async *list(prefix: string): AsyncIterable<string> {
    checkPrefix(prefix);
    const full = this.prefix === '' ? prefix : `${this.prefix}/${prefix}`;
    const cut = this.prefix === '' ? 0 : this.prefix.length + 1;
    let marker: string | undefined;
    do {
      let page;
      try {
        page = await this.#call(prefix, (deadline) =>
          this.#shared.container
            .listBlobsFlat({ prefix: full, abortSignal: deadline.signal })
            .byPage({ maxPageSize: 1000, ...(marker ? { continuationToken: marker } : {}) })
            .next(),
        );
      } catch (error) {
        throw this.#failure(error, prefix);
      }
      if (page.done) return;
      for (const item of page.value.segment.blobItems) yield item.name.slice(cut);
      marker = page.value.continuationToken || undefined;
    } while (marker);
  }

  async delete(key: string): Promise<void> {
    try {
      await this.#call(key, (deadline) =>
        this.#blob(key).deleteIfExists({ abortSignal: deadline.signal }),
      );
    } catch (error) {
      if (isNotFound(error)) return;
      throw this.#failure(error, key);
    }
  }

  child(prefix: string): AzureBackend {
    return new AzureBackend(`${this.url}/${checkKey(prefix)}`, this.#settings, this.#shared);
  }

  async sign(key: string, options: SignOptions): Promise<SignedRequest> {
    const blob = this.#blob(key);
    const expiresOn = new Date(Date.now() + options.expiresSeconds * 1000);
    const createOnly = options.method === 'PUT' && options.createOnly === true;
    const permissions = BlobSASPermissions.parse(
      options.method === 'GET' ? 'r' : createOnly ? 'c' : 'cw',
    );
    const values = {
      containerName: this.containerName,
      blobName: joinKey(this.prefix, checkKey(key)),
      permissions,
      startsOn: new Date(Date.now() - 5 * 60 * 1000),
      expiresOn,
    };
    try {
      const shared = this.#shared;
      let query: string;
      if (shared.sharedKey) {
        query = generateBlobSASQueryParameters(values, shared.sharedKey).toString();
      } else {
        const now = Date.now();
        if (!shared.delegation || shared.delegation.until < now + options.expiresSeconds * 1000) {
          const until = now + Math.max(options.expiresSeconds * 1000, 6 * 3600 * 1000);
          const key = await shared.service.getUserDelegationKey(
            new Date(now - 5 * 60 * 1000),
            new Date(until),
          );
          shared.delegation = { key, until };
        }
        query = generateBlobSASQueryParameters(
          values,
          shared.delegation.key,
          shared.accountName,
        ).toString();
      }
      const headers: Record<string, string> =
        options.method === 'PUT'
          ? { 'x-ms-blob-type': 'BlockBlob', ...(createOnly ? { 'if-none-match': '*' } : {}) }
          : {};
      return {
        method: options.method,
        url: `${blob.url.split('?')[0]}?${query}`,
        headers,
        expires: expiresOn.toISOString(),
      };
    } catch (error) {
      throw this.#failure(error, key);
    }
  }
}

function isNotFound(error: unknown): boolean {
  const e = error as RestErrorLike;
  return e?.statusCode === 404 && e?.code !== 'ContainerNotFound';
}

async function readStream(
  stream: NodeJS.ReadableStream | undefined,
  deadline: IdleDeadline,
): Promise<Uint8Array> {
  if (!stream) return new Uint8Array(0);
  const parts: Buffer[] = [];
  let length = 0;
  for await (const part of stream as AsyncIterable<Buffer>) {
    deadline.touch();
    parts.push(part);
    length += part.length;
  }
  if (parts.length === 1) return parts[0]!;
  return Buffer.concat(parts, length);
}
