/**
 * The S3 backend (`s3://bucket/prefix`), with AWS's official SDK, for AWS S3
 * and every S3-compatible store (MinIO, Backblaze B2, DigitalOcean Spaces,
 * Cloudflare R2, Wasabi, Ceph RGW) through endpoint, region and path-style
 * settings.
 *
 * - Credentials: those given in the settings, else the SDK's standard chain
 *   (environment, shared config and profiles, SSO, instance metadata).
 * - Compare-and-swap: `If-None-Match: *` / `If-Match: <etag>` conditional
 *   writes (S3 has had them since 2024; MinIO too). A 409
 *   ConditionalRequestConflict (another conditional write on the key in
 *   flight) is a failed condition: the caller re-reads, as for a 412.
 * - Objects of `multipartThreshold` bytes or more go up as a multipart
 *   upload (parts in parallel), the condition checked when it completes, so
 *   nothing is visible under the key until every part is there.
 * - The SDK's own retries are off (RetryingBackend retries, and knows when a
 *   retry is safe); its CRC checksums are only computed where S3 requires
 *   them (objects are verified by their content IDs; a pack's name covers
 *   its record table).
 * - `sign` makes presigned URLs (SigV4; s3-presign.ts: the SDK's URLs at
 *   one signature's cost); a create-only PUT signs `If-None-Match: *`, so
 *   the holder cannot replace an existing object.
 */
import http from 'node:http';
import https from 'node:https';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';
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
import { parseBucketUrl } from './cloud-url.ts';
import { S3UrlSigner } from './s3-presign.ts';
import { describeCause, isTransientNetworkError } from './http-errors.ts';
import { STORE_IDLE_TIMEOUT_MS } from './idle-deadline.ts';

export interface S3Settings {
  /** e.g. http://127.0.0.1:9000 for MinIO; the SDK's default (AWS) when absent. */
  readonly endpoint?: string | undefined;
  readonly region?: string | undefined;
  /** `https://endpoint/bucket/key` instead of `https://bucket.endpoint/key` (MinIO, emulators). */
  readonly forcePathStyle?: boolean | undefined;
  readonly credentials?:
    | {
        readonly accessKeyId: string;
        readonly secretAccessKey: string;
        readonly sessionToken?: string | undefined;
      }
    | undefined;
  /** A shared-config profile for the SDK's chain. */
  readonly profile?: string | undefined;
  /**
   * A request that sends or receives no byte for this long fails as
   * STORAGE_UNAVAILABLE (a timeout; RetryingBackend retries it where safe).
   */
  readonly requestTimeoutMs?: number | undefined;
  readonly multipartThreshold?: number | undefined;
  readonly partSize?: number | undefined;
  readonly maxSockets?: number | undefined;
}

const DEFAULT_MULTIPART_THRESHOLD = 128 * 1024 * 1024;
const DEFAULT_PART_SIZE = 32 * 1024 * 1024;
const PART_CONCURRENCY = 4;

interface SdkError {
  readonly name?: string;
  readonly code?: string;
  readonly message?: string;
  readonly $metadata?: { readonly httpStatusCode?: number };
}

export class S3Backend implements StorageBackend {
  readonly url: string;
  readonly bucket: string;
  readonly prefix: string;
  readonly capabilities = {
    conditionalPut: true,
    rangedGet: true,
    signedUrls: true,
    remote: true,
  } as const;
  readonly client: S3Client;
  readonly #settings: S3Settings;
  /** Shared by a backend and its children (one bucket, one client). */
  readonly #signer: S3UrlSigner;

  constructor(url: string, settings: S3Settings = {}, client?: S3Client, signer?: S3UrlSigner) {
    const { bucket, prefix } = parseBucketUrl(url, 's3');
    this.bucket = bucket;
    this.prefix = prefix;
    this.url = `s3://${bucket}${prefix === '' ? '' : `/${prefix}`}`;
    this.#settings = settings;
    this.client = client ?? S3Backend.#makeClient(settings);
    this.#signer = signer ?? new S3UrlSigner(this.client, bucket);
  }

  static #makeClient(settings: S3Settings): S3Client {
    const agentOptions = { keepAlive: true, maxSockets: settings.maxSockets ?? 64 };
    const config: S3ClientConfig = {
      maxAttempts: 1,
      // Each command class's middleware chain is built once, not per request
      // (a server makes ~17 store requests per push; measured ~0.3 ms each).
      cacheMiddleware: true,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      requestHandler: new NodeHttpHandler({
        httpAgent: new http.Agent(agentOptions),
        httpsAgent: new https.Agent(agentOptions),
        connectionTimeout: Math.min(settings.requestTimeoutMs ?? 10_000, 10_000),
        // An idle timeout (no byte either way for this long), so a large
        // transfer that keeps moving is never cut. Not `requestTimeout`: since
        // @smithy/node-http-handler 4.x that is a whole-request timer that
        // only logs a warning unless `throwOnRequestTimeout`, and a store that
        // never answers hung the request forever.
        socketTimeout: settings.requestTimeoutMs ?? STORE_IDLE_TIMEOUT_MS,
      }),
      ...(settings.endpoint ? { endpoint: settings.endpoint } : {}),
      ...(settings.region ? { region: settings.region } : {}),
      ...(settings.forcePathStyle !== undefined ? { forcePathStyle: settings.forcePathStyle } : {}),
      ...(settings.credentials
        ? {
            credentials: {
              accessKeyId: settings.credentials.accessKeyId,
              secretAccessKey: settings.credentials.secretAccessKey,
              ...(settings.credentials.sessionToken
                ? { sessionToken: settings.credentials.sessionToken }
                : {}),
            },
          }
        : {}),
      ...(settings.profile ? { profile: settings.profile } : {}),
    };
    return new S3Client(config);
  }

  #key(key: string): string {
    return joinKey(this.prefix, checkKey(key));
  }

  /** Maps an SDK error to the storage contract's errors, naming the key. */
  #failure(error: unknown, key: string): MediaGitError {
    if (error instanceof MediaGitError) return error;
    const e = (error ?? {}) as SdkError;
    const status = e.$metadata?.httpStatusCode;
    const name = e.name ?? e.code ?? '';
    // An answer without an S3 error document (a HEAD, a proxy's 503 page)
    // leaves the SDK with 'Unknown' or an XML parse 'Error': say the status.
    const bodiless =
      status !== undefined &&
      status >= 300 &&
      ['', 'Unknown', 'UnknownError', 'Error'].includes(name);
    const reason = bodiless
      ? `HTTP ${status} ${http.STATUS_CODES[status] ?? ''}`.trim()
      : `${name || 'error'}${status ? ` (HTTP ${status})` : ''}: ${describeCause(error)}`;
    if (name === 'NoSuchBucket') {
      return storageFailure(
        'STORAGE_NO_BUCKET',
        this.url,
        key,
        `bucket ${this.bucket} does not exist`,
        error,
      );
    }
    if (
      status === 401 ||
      status === 403 ||
      [
        'InvalidAccessKeyId',
        'SignatureDoesNotMatch',
        'AccessDenied',
        'ExpiredToken',
        'CredentialsProviderError',
      ].includes(name)
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
      [
        'SlowDown',
        'RequestTimeout',
        'TimeoutError',
        'InternalError',
        'ServiceUnavailable',
        'RequestTimeTooSkewed',
      ].includes(name) ||
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
    const full = this.#key(key);
    try {
      const answer = await this.client.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: full }),
      );
      return await readBody(answer.Body);
    } catch (error) {
      if (isNotFound(error)) throw notFound(key);
      throw this.#failure(error, key);
    }
  }

  async getRange(key: string, start: number, end: number): Promise<Uint8Array> {
    const full = this.#key(key);
    const from = Math.max(0, start);
    if (end <= from) {
      if (!(await this.head(key))) throw notFound(key);
      return new Uint8Array(0);
    }
    try {
      const answer = await this.client.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: full, Range: `bytes=${from}-${end - 1}` }),
      );
      return await readBody(answer.Body);
    } catch (error) {
      if (isNotFound(error)) throw notFound(key);
      // A range starting at or past the end: the object exists, the range is empty.
      if ((error as SdkError).$metadata?.httpStatusCode === 416) return new Uint8Array(0);
      throw this.#failure(error, key);
    }
  }

  async put(key: string, data: Uint8Array, options: PutOptions = {}): Promise<{ etag: string }> {
    const full = this.#key(key);
    const conditions = {
      ...(options.ifNoneMatch === '*' ? { IfNoneMatch: '*' } : {}),
      ...(options.ifMatch !== undefined ? { IfMatch: options.ifMatch } : {}),
    };
    try {
      if (data.length >= (this.#settings.multipartThreshold ?? DEFAULT_MULTIPART_THRESHOLD)) {
        return await this.#putMultipart(full, data, conditions);
      }
      const answer = await this.client.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: full,
          Body: data,
          ContentLength: data.length,
          ...conditions,
        }),
      );
      return { etag: answer.ETag ?? '' };
    } catch (error) {
      // If-Match on a missing key is 404 NoSuchKey on S3: the condition failed.
      if (isConditionFailure(error) || (options.ifMatch !== undefined && isNotFound(error))) {
        throw preconditionFailed(key, options.ifMatch ?? 'no object');
      }
      throw this.#failure(error, key);
    }
  }

  async #putMultipart(
    full: string,
    data: Uint8Array,
    conditions: { IfNoneMatch?: string; IfMatch?: string },
  ): Promise<{ etag: string }> {
    const partSize = this.#settings.partSize ?? DEFAULT_PART_SIZE;
    const created = await this.client.send(
      new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: full }),
    );
    const uploadId = created.UploadId!;
    try {
      const count = Math.ceil(data.length / partSize);
      const parts: { ETag: string; PartNumber: number }[] = new Array(count);
      let next = 0;
      const worker = async (): Promise<void> => {
        for (let i = next++; i < count; i = next++) {
          const body = data.subarray(i * partSize, Math.min(data.length, (i + 1) * partSize));
          const answer = await this.client.send(
            new UploadPartCommand({
              Bucket: this.bucket,
              Key: full,
              UploadId: uploadId,
              PartNumber: i + 1,
              Body: body,
              ContentLength: body.length,
            }),
          );
          parts[i] = { ETag: answer.ETag!, PartNumber: i + 1 };
        }
      };
      await Promise.all(Array.from({ length: Math.min(PART_CONCURRENCY, count) }, worker));
      const done = await this.client.send(
        new CompleteMultipartUploadCommand({
          Bucket: this.bucket,
          Key: full,
          UploadId: uploadId,
          MultipartUpload: { Parts: parts },
          ...conditions,
        }),
      );
      return { etag: done.ETag ?? '' };
    } catch (error) {
      await this.client
        .send(
          new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: full, UploadId: uploadId }),
        )
        .catch(() => undefined);
      throw error;
    }
  }

  async head(key: string): Promise<ObjectHead | undefined> {
    const full = this.#key(key);
    try {
      const answer = await this.client.send(
        new HeadObjectCommand({ Bucket: this.bucket, Key: full }),
      );
      return { size: answer.ContentLength ?? 0, etag: answer.ETag ?? '' };
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw this.#failure(error, key);
    }
  }

  async *list(prefix: string): AsyncIterable<string> {
    checkPrefix(prefix);
    const full = this.prefix === '' ? prefix : `${this.prefix}/${prefix}`;
    const cut = this.prefix === '' ? 0 : this.prefix.length + 1;
    let token: string | undefined;
    do {
      let page;
      try {
        page = await this.client.send(
          new ListObjectsV2Command({
            Bucket: this.bucket,
            Prefix: full,
            MaxKeys: 1000,
            ...(token ? { ContinuationToken: token } : {}),
          }),
        );
      } catch (error) {
        throw this.#failure(error, prefix);
      }
      for (const object of page.Contents ?? []) {
        if (object.Key !== undefined) yield object.Key.slice(cut);
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  async delete(key: string): Promise<void> {
    const full = this.#key(key);
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: full }));
    } catch (error) {
      if (isNotFound(error)) return;
      throw this.#failure(error, key);
    }
  }

  child(prefix: string): S3Backend {
    return new S3Backend(
      `${this.url}/${checkKey(prefix)}`,
      this.#settings,
      this.client,
      this.#signer,
    );
  }

  async sign(key: string, options: SignOptions): Promise<SignedRequest> {
    const full = this.#key(key);
    const createOnly = options.method === 'PUT' && options.createOnly === true;
    try {
      const url = await this.#signer.sign({
        method: options.method,
        key: full,
        expiresSeconds: options.expiresSeconds,
        createOnly,
      });
      return {
        method: options.method,
        url,
        headers: createOnly ? { 'if-none-match': '*' } : {},
        expires: new Date(Date.now() + options.expiresSeconds * 1000).toISOString(),
      };
    } catch (error) {
      throw this.#failure(error, key);
    }
  }
}

function isNotFound(error: unknown): boolean {
  const e = error as SdkError;
  return (
    e?.name === 'NoSuchKey' ||
    e?.name === 'NotFound' ||
    (e?.$metadata?.httpStatusCode === 404 && e?.name !== 'NoSuchBucket')
  );
}

function isConditionFailure(error: unknown): boolean {
  const e = error as SdkError;
  const status = e?.$metadata?.httpStatusCode;
  return (
    status === 412 ||
    e?.name === 'PreconditionFailed' ||
    e?.name === 'ConditionalRequestConflict' ||
    (status === 409 && e?.name !== 'BucketAlreadyExists')
  );
}

/** The whole body of a GetObject answer. */
async function readBody(body: unknown): Promise<Uint8Array> {
  if (body === undefined || body === null) return new Uint8Array(0);
  const stream = body as AsyncIterable<Uint8Array>;
  const parts: Uint8Array[] = [];
  let length = 0;
  for await (const part of stream) {
    parts.push(part);
    length += part.length;
  }
  if (parts.length === 1) return parts[0]!;
  return Buffer.concat(parts, length);
}
