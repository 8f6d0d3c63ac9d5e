/**
 * Presigned S3 URLs at the cost of one SigV4 signature each.
 *
 * The SDK's `getSignedUrl` clones the client's middleware stack, resolves
 * the endpoint and builds a new signer (which derives its signing key
 * afresh) on every call: ~0.4 ms and ~90 KB of garbage per URL, and a push
 * of 1 GiB asks for 16 or more at once. Only the key changes between those
 * calls, so `S3UrlSigner` lets the SDK make the first URL of each kind
 * (method, create-only) for a bucket, learns from it where the key goes and
 * which region and service sign it, and signs the rest with one long-lived
 * `S3RequestPresigner` (it keeps its signing key for the day). The URLs are
 * the SDK's own, byte for byte: src/storage/s3-presign.test.ts compares them
 * at a fixed signing date. Anything the template cannot express (an S3
 * Express directory bucket, a key the SDK encoded unexpectedly) goes back to
 * `getSignedUrl`.
 */
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl, S3RequestPresigner } from '@aws-sdk/s3-request-presigner';

export interface PresignRequest {
  readonly method: 'GET' | 'PUT';
  /** The object's full key in the bucket. */
  readonly key: string;
  readonly expiresSeconds: number;
  /** For PUT: sign `If-None-Match: *`, so the URL can only create the object. */
  readonly createOnly?: boolean;
  /** Tests: sign as of this time. */
  readonly signingDate?: Date;
}

/** What the SDK's URL for one key says about every other key's. */
interface Template {
  readonly presigner: S3RequestPresigner;
  readonly protocol: string;
  readonly hostname: string;
  readonly port: number | undefined;
  readonly host: string;
  /** The URL path before the encoded key (`/bucket/` path-style, `/` virtual-host). */
  readonly pathPrefix: string;
  /** Query parameters that are not part of the signature (`x-id`). */
  readonly query: Readonly<Record<string, string>>;
  readonly region: string;
  readonly service: string;
}

/** The query parameters SigV4 presigning adds; everything else is the request's own. */
const SIGNATURE_PARAMS = new Set([
  'X-Amz-Algorithm',
  'X-Amz-Content-Sha256',
  'X-Amz-Credential',
  'X-Amz-Date',
  'X-Amz-Expires',
  'X-Amz-Security-Token',
  'X-Amz-SignedHeaders',
  'X-Amz-Signature',
]);

const CREATE_ONLY_HEADERS = new Set(['if-none-match']);

export class S3UrlSigner {
  readonly #client: S3Client;
  readonly #bucket: string;
  /** Per kind of request; null: this kind always goes through getSignedUrl. */
  readonly #templates = new Map<string, Promise<Template | null>>();

  constructor(client: S3Client, bucket: string) {
    this.#client = client;
    this.#bucket = bucket;
  }

  async sign(request: PresignRequest): Promise<string> {
    const createOnly = request.method === 'PUT' && request.createOnly === true;
    const kind = `${request.method}${createOnly ? ' create-only' : ''}`;
    let template = this.#templates.get(kind);
    if (template === undefined) {
      // The first URL of a kind is the SDK's; the template comes from it.
      const url = this.#sdkSign(request, createOnly);
      template = url.then((first) => this.#learn(first, request.key)).catch(() => null);
      this.#templates.set(kind, template);
      return url;
    }
    const learned = await template;
    if (learned === null) return this.#sdkSign(request, createOnly);
    const headers: Record<string, string> = { host: learned.host };
    if (createOnly) headers['if-none-match'] = '*';
    const signed = await learned.presigner.presign(
      {
        method: request.method,
        protocol: learned.protocol,
        hostname: learned.hostname,
        ...(learned.port === undefined ? {} : { port: learned.port }),
        path: learned.pathPrefix + encodeKey(request.key),
        query: { ...learned.query },
        headers,
      },
      {
        expiresIn: request.expiresSeconds,
        signingRegion: learned.region,
        signingService: learned.service,
        ...(request.signingDate ? { signingDate: request.signingDate } : {}),
        ...(createOnly ? { signableHeaders: CREATE_ONLY_HEADERS } : {}),
      },
    );
    const port = signed.port === undefined ? '' : `:${signed.port}`;
    return `${signed.protocol}//${signed.hostname}${port}${signed.path}?${queryString(signed.query ?? {})}`;
  }

  #sdkSign(request: PresignRequest, createOnly: boolean): Promise<string> {
    const command =
      request.method === 'GET'
        ? new GetObjectCommand({ Bucket: this.#bucket, Key: request.key })
        : new PutObjectCommand({
            Bucket: this.#bucket,
            Key: request.key,
            ...(createOnly ? { IfNoneMatch: '*' } : {}),
          });
    return getSignedUrl(this.#client, command, {
      expiresIn: request.expiresSeconds,
      ...(request.signingDate ? { signingDate: request.signingDate } : {}),
      ...(createOnly ? { signableHeaders: new Set(CREATE_ONLY_HEADERS) } : {}),
    });
  }

  /** The template in the SDK's URL for `key`, or null where it cannot be one. */
  #learn(first: string, key: string): Template | null {
    // Directory buckets sign with session credentials the SDK fetches per bucket.
    if (this.#bucket.endsWith('--x-s3')) return null;
    const url = new URL(first);
    const encoded = encodeKey(key);
    if (!url.pathname.endsWith(encoded)) return null;
    const scope = (url.searchParams.get('X-Amz-Credential') ?? '').split('/');
    // <access key>/<date>/<region>/<service>/aws4_request
    if (scope.length !== 5 || scope[4] !== 'aws4_request') return null;
    const region = scope[2]!;
    const service = scope[3]!;
    const query: Record<string, string> = {};
    for (const [name, value] of url.searchParams) {
      if (!SIGNATURE_PARAMS.has(name)) query[name] = value;
    }
    return {
      presigner: new S3RequestPresigner({
        ...this.#client.config,
        signingName: service,
        region: () => Promise.resolve(region),
      }),
      protocol: url.protocol,
      hostname: url.hostname,
      port: url.port === '' ? undefined : Number(url.port),
      host: url.host,
      pathPrefix: url.pathname.slice(0, url.pathname.length - encoded.length),
      query,
      region,
      service,
    };
  }
}

/** RFC 3986 escaping as SigV4 (and the SDK) does it. */
function escapeUri(value: string): string {
  return encodeURIComponent(value).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

/** A key as it appears in the URL path: each segment escaped, the slashes kept. */
function encodeKey(key: string): string {
  return key.split('/').map(escapeUri).join('/');
}

/** The query string as the SDK formats it: names sorted, both sides escaped. */
function queryString(query: Record<string, string | string[] | null>): string {
  const parts: string[] = [];
  for (const name of Object.keys(query).sort()) {
    const value = query[name];
    const escaped = escapeUri(name);
    if (Array.isArray(value)) for (const v of value) parts.push(`${escaped}=${escapeUri(v)}`);
    else parts.push(typeof value === 'string' ? `${escaped}=${escapeUri(value)}` : escaped);
  }
  return parts.join('&');
}
