/**
 * The HTTP client side of docs/protocol.md: one keep-alive agent per remote,
 * several chunk transfers in flight, JSON control messages, binary bodies.
 *
 * Credentials: a `Bearer` token, either a JWT or an API key (`mgk_...`); an
 * API key is exchanged once for a short-lived JWT (`POST /auth/token`), so
 * the server pays its Argon2id check once per command, not per request.
 * Transient failures (connection reset, 502/503/504, 429 with Retry-After,
 * no byte for the idle timeout) are retried a few times; every request is
 * idempotent.
 */
import { packOfFileHeader, type PackOfFile } from './upload-hashes.ts';
import type http from 'node:http';
import type https from 'node:https';
import { MediaGitError } from '../errors.ts';
import type { ObjectId } from '../odb/object-id.ts';
import { recordLimit } from '../odb/record.ts';
import { BufferPool, CHUNK_BODY_BYTES } from './buffer-pool.ts';
import { BAD_ANSWER, RangeClient } from './range-get.ts';
import type {
  InfoRefs,
  LocateAnswer,
  LocatedObject,
  LocatedPack,
  PackCommit,
  PackUploadPlan,
  RefUpdate,
  RefUpdateResult,
  WantRequest,
} from './service.ts';
import type { SignedRequest } from '../storage/backend.ts';
import type { RemoteAccess, RemoteLock, Transport } from './transport.ts';
import { tlsConnectOptions, type TlsClientOptions } from '../security/tls-client.ts';

/**
 * Node's HTTP stack, loaded when a transport is first made: loading it costs
 * ~40 ms, which commands that never talk to a remote (status, add, commit)
 * would otherwise pay at start-up, since this module is imported for them.
 */
function httpModule(): typeof http {
  return process.getBuiltinModule('node:http');
}

function httpsModule(): typeof https {
  return process.getBuiltinModule('node:https');
}

/** Trust (`ca`) and, for mutual TLS, the client certificate (`cert`, `key`). */
export interface HttpTransportOptions extends TlsClientOptions {
  /** An API key or a JWT, sent as `Authorization: Bearer`. */
  readonly token?: string | undefined;
  readonly parallelism?: number;
  readonly signal?: AbortSignal | undefined;
  /** Ask for direct transfers to and from the store where the server offers them (default true). */
  readonly direct?: boolean | undefined;
  /**
   * A direct request to the store that gets no byte for this long is given
   * up and retried (default: MEDIAGIT_HTTP_TIMEOUT_MS, else 120 s).
   */
  readonly storeTimeoutMs?: number | undefined;
  /**
   * A request to the server that gets no byte for this long is given up and
   * retried (default 5 min: the server may be retrying a slow store, or
   * reading a large pack back, before it answers).
   */
  readonly serverTimeoutMs?: number | undefined;
}

interface Response {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Buffer;
}

const RETRIES = 4;
const DEFAULT_STORE_TIMEOUT_MS = 120_000;
const DEFAULT_SERVER_TIMEOUT_MS = 300_000;
const CHECK_BATCH = 20_000;
/**
 * The most any answer may hold (a metadata pack of a very large history
 * stays far below it; the server takes packs of at most 1 GiB). Chunks get
 * a bound from the size their manifest gives them (recordLimit).
 */
const MAX_RESPONSE_BYTES = 1024 * 1024 * 1024;

export class HttpTransport implements Transport {
  readonly url: string;
  readonly parallelism: number;
  readonly #base: URL;
  readonly #agent: http.Agent;
  readonly #options: HttpTransportOptions;
  #bearer: string | undefined;
  #exchange: Promise<void> | undefined;
  /** Chunk bodies are read into reused buffers, lent out until `release`. */
  readonly #bodies = new BufferPool(CHUNK_BODY_BYTES, 16);
  readonly #lent = new Map<ArrayBufferLike, Buffer>();

  constructor(url: string, options: HttpTransportOptions = {}) {
    this.url = url;
    this.#base = new URL(url.endsWith('/') ? url : `${url}/`);
    this.#options = options;
    this.parallelism = options.parallelism ?? 16;
    const agentOptions = { keepAlive: true, maxSockets: this.parallelism + 2 };
    this.#agent =
      this.#base.protocol === 'https:'
        ? new (httpsModule().Agent)({ ...agentOptions, ...tlsConnectOptions(options) })
        : new (httpModule().Agent)(agentOptions);
    this.#bearer = options.token;
    this.#ranges = new RangeClient({
      ...tlsConnectOptions(options),
      maxSockets: this.parallelism + 2,
    });
    this.#directRanges = new RangeClient({ maxSockets: this.parallelism + 2 });
  }

  /** Pack range reads, from the server and straight from the store (bodies read in place). */
  readonly #ranges: RangeClient;
  readonly #directRanges: RangeClient;

  /**
   * Direct transfers go to the store's own host: agents of their own, made
   * when first needed (loading node:https costs ~10 ms a process).
   */
  #directHttp: http.Agent | undefined;
  #directHttps: https.Agent | undefined;

  #directAgent(protocol: string): http.Agent {
    const options = { keepAlive: true, maxSockets: this.parallelism + 2 };
    if (protocol === 'https:') return (this.#directHttps ??= new (httpsModule().Agent)(options));
    return (this.#directHttp ??= new (httpModule().Agent)(options));
  }

  async infoRefs(): Promise<InfoRefs> {
    return this.#json('GET', 'info/refs');
  }

  async want(request: WantRequest): Promise<Buffer> {
    const response = await this.#request('POST', 'objects/want', jsonBody(request));
    return response.body;
  }

  async missing(ids: readonly ObjectId[]): Promise<ObjectId[]> {
    const missing: ObjectId[] = [];
    for (let i = 0; i < ids.length; i += CHECK_BATCH) {
      const answer = await this.#json<{ missing: ObjectId[] }>(
        'POST',
        'chunks/check',
        jsonBody({ ids: ids.slice(i, i + CHECK_BATCH) }),
      );
      missing.push(...answer.missing);
    }
    return missing;
  }

  async putChunk(id: ObjectId, record: Buffer): Promise<void> {
    await this.#request('PUT', `chunks/${id}`, { type: 'application/octet-stream', data: record });
  }

  async getChunk(id: ObjectId, expectedSize?: number): Promise<Buffer> {
    const limit = expectedSize === undefined ? MAX_RESPONSE_BYTES : recordLimit(expectedSize);
    return (await this.#request('GET', `chunks/${id}`, undefined, true, undefined, limit)).body;
  }

  /**
   * Stores a chunked file's manifest (a standalone record, its chunks already
   * uploaded) under the file's SHA-256: how Git interop pushes a file chunk
   * by chunk (docs/git-interop.md).
   */
  async putManifest(oid: ObjectId, id: ObjectId, record: Buffer): Promise<void> {
    await this.#request('PUT', `manifests/${oid}`, {
      type: 'application/octet-stream',
      data: record,
      objectId: id,
    });
  }

  /** The manifest stored for a file's SHA-256, or undefined when the server has none. */
  async getManifest(oid: ObjectId): Promise<{ id: ObjectId; record: Buffer } | undefined> {
    try {
      const response = await this.#request('GET', `manifests/${oid}`);
      const id = response.headers['x-mediagit-object-id'];
      if (typeof id !== 'string') return undefined;
      return { id, record: response.body };
    } catch (error) {
      if (error instanceof MediaGitError && error.data['status'] === 404) return undefined;
      throw error;
    }
  }

  async keys(): Promise<Buffer | undefined> {
    const response = await this.#request('GET', 'keys');
    return response.status === 204 ? undefined : response.body;
  }

  async putKeys(keyFile: Buffer, replaces?: string): Promise<void> {
    const route = replaces === undefined ? 'keys' : `keys?replaces=${replaces}`;
    await this.#request('PUT', route, { type: 'application/json', data: keyFile });
  }

  release(record: Buffer): void {
    const backing = this.#lent.get(record.buffer);
    if (!backing) return;
    this.#lent.delete(record.buffer);
    this.#bodies.give(backing);
  }

  async sendPack(pack: Buffer): Promise<void> {
    await this.#request('POST', 'objects/pack', {
      type: 'application/x-mediagit-pack',
      data: pack,
    });
  }

  async beginPacks(packs: readonly { name: string; size: number }[]): Promise<PackUploadPlan[]> {
    const answer = await this.#json<{ packs: PackUploadPlan[] }>(
      'POST',
      'packs/begin',
      jsonBody({ packs, direct: this.#options.direct !== false }),
    );
    return answer.packs;
  }

  async putPack(
    name: string,
    bytes: Buffer,
    upload?: SignedRequest,
    file?: PackOfFile,
  ): Promise<void> {
    if (upload) {
      await this.#attemptSigned(upload, bytes);
      return;
    }
    const headers = file ? { 'x-mediagit-lfs-file': packOfFileHeader(file) } : undefined;
    await this.#request(
      'PUT',
      `packs/${name}`,
      { type: 'application/octet-stream', data: bytes },
      false,
      headers,
    );
  }

  async commitPacks(packs: readonly PackCommit[]): Promise<void> {
    const items = packs.map((pack) =>
      typeof pack === 'string'
        ? pack
        : { name: pack.name, size: pack.size, table: Buffer.from(pack.table).toString('base64') },
    );
    await this.#json('POST', 'packs/commit', jsonBody({ packs: items }));
  }

  async locate(ids: readonly ObjectId[], gone?: readonly string[]): Promise<LocateAnswer> {
    const packs: LocatedPack[] = [];
    const objects: LocatedObject[] = [];
    for (let i = 0; i < ids.length; i += CHECK_BATCH) {
      const answer = await this.#json<LocateAnswer>(
        'POST',
        'objects/locate',
        jsonBody({
          ids: ids.slice(i, i + CHECK_BATCH),
          direct: this.#options.direct !== false,
          ...(gone && gone.length > 0 ? { gone } : {}),
        }),
      );
      const base = packs.length;
      packs.push(...answer.packs);
      for (const object of answer.objects) {
        objects.push('pack' in object ? { ...object, pack: object.pack + base } : object);
      }
    }
    return { packs, objects };
  }

  async readPack(pack: LocatedPack, offset: number, length: number): Promise<Buffer> {
    const range = `bytes=${offset}-${offset + length - 1}`;
    // Never more than the range is read (or given a buffer).
    const response = pack.get
      ? await this.#attemptSigned(pack.get, undefined, range, true, length)
      : await this.#request('GET', `packs/${pack.name}`, undefined, true, { range }, length);
    if (response.body.length !== length) {
      this.release(response.body);
      throw new MediaGitError(
        'PROTOCOL_ERROR',
        `${this.url}: pack ${pack.name} answered ${response.body.length} bytes for a range of ${length}; refused (a broken or hostile server)`,
        { kind: 'user', data: { url: this.url, exitCode: 128 } },
      );
    }
    return response.body;
  }

  /**
   * A request straight to the store (signed by the server), retried like any
   * other. The store's own errors are not JSON; its status says enough.
   */
  async #attemptSigned(
    signed: SignedRequest,
    data?: Buffer,
    range?: string,
    pooled = false,
    maxBytes = MAX_RESPONSE_BYTES,
  ): Promise<Response> {
    const url = new URL(signed.url);
    const agent = this.#directAgent(url.protocol);
    const timeout =
      this.#options.storeTimeoutMs ??
      (Number(process.env['MEDIAGIT_HTTP_TIMEOUT_MS']) || DEFAULT_STORE_TIMEOUT_MS);
    for (let attempt = 0; ; attempt++) {
      let response: Response;
      try {
        response = await this.#send(
          signed.method,
          url,
          undefined,
          data ? { type: 'application/octet-stream', data } : undefined,
          pooled,
          {
            ...signed.headers,
            ...(range ? { range } : {}),
          },
          agent,
          timeout,
          maxBytes,
        );
      } catch (error) {
        this.#options.signal?.throwIfAborted();
        if (attempt < RETRIES && isTransient(error)) {
          await sleep(100 * 2 ** attempt);
          continue;
        }
        if ((error as { code?: string }).code === BAD_ANSWER) {
          throw new MediaGitError(
            'REMOTE_BAD_ANSWER',
            `the store at ${url.origin} (direct ${signed.method} of ${url.pathname}): ${(error as Error).message}; refused (a broken or hostile server)`,
            { kind: 'user', data: { url: url.origin, exitCode: 128 } },
          );
        }
        throw new MediaGitError(
          'STORE_UNREACHABLE',
          `cannot reach the store at ${url.origin} (direct ${signed.method} of ${url.pathname}): ${describe(error)}`,
          {
            kind: 'user',
            data: { url: url.origin, key: url.pathname, exitCode: 128 },
            cause: error,
          },
        );
      }
      if (response.status >= 200 && response.status < 300) return response;
      // A create-only upload finding its object there: packs are named by
      // their content, so it is this pack (an earlier try whose answer was
      // lost, or another client); the server verifies it before any ref moves.
      if (isCreateOnly(signed) && (response.status === 412 || response.status === 409)) {
        return response;
      }
      if ([429, 500, 502, 503, 504].includes(response.status) && attempt < RETRIES) {
        await sleep(200 * 2 ** attempt);
        continue;
      }
      const detail = response.body.toString('utf8').replace(/\s+/g, ' ').slice(0, 200);
      throw new MediaGitError(
        'STORE_REFUSED',
        `the store at ${url.origin} refused a direct ${signed.method} of ${url.pathname} (HTTP ${response.status}): ${detail}`,
        {
          kind: 'user',
          data: { url: url.origin, key: url.pathname, status: response.status, exitCode: 128 },
        },
      );
    }
  }

  async updateRefs(updates: readonly RefUpdate[]): Promise<RefUpdateResult[]> {
    const answer = await this.#json<{ results: RefUpdateResult[] }>(
      'POST',
      'refs/update',
      jsonBody({ updates }),
    );
    return answer.results;
  }

  async access(): Promise<RemoteAccess | undefined> {
    try {
      // A repository's URL asks about it; a server's root, about the key alone.
      const route = this.#base.pathname === '/' ? '/auth/whoami' : 'access';
      return await this.#json<RemoteAccess>('GET', route);
    } catch (error) {
      // A server from before the route: nothing to check ahead.
      if (error instanceof MediaGitError && error.data['status'] === 404) return undefined;
      throw error;
    }
  }

  async othersLocks(): Promise<RemoteLock[] | undefined> {
    const theirs: RemoteLock[] = [];
    let cursor: string | undefined;
    const verify = `${this.#base.pathname.replace(/\/+$/, '')}.git/info/lfs/locks/verify`;
    do {
      let answer: { theirs?: RemoteLock[]; next_cursor?: string };
      try {
        answer = await this.#json('POST', verify, jsonBody(cursor ? { cursor } : {}));
      } catch (error) {
        if (error instanceof MediaGitError && error.data['status'] === 404) return undefined;
        throw error;
      }
      theirs.push(...(answer.theirs ?? []));
      cursor = answer.next_cursor;
    } while (cursor);
    return theirs;
  }

  async close(): Promise<void> {
    this.#agent.destroy();
    this.#directHttp?.destroy();
    this.#directHttps?.destroy();
    this.#ranges.close();
    this.#directRanges.close();
  }

  async #json<T>(method: string, route: string, body?: Body): Promise<T> {
    const response = await this.#request(method, route, body);
    try {
      return JSON.parse(response.body.toString('utf8')) as T;
    } catch (error) {
      throw new MediaGitError(
        'PROTOCOL_ERROR',
        `${this.url}: ${route} answered with invalid JSON`,
        {
          kind: 'user',
          cause: error,
        },
      );
    }
  }

  /** Exchanges an API key for a JWT the first time one is needed (once for all requests). */
  async #authorization(): Promise<string | undefined> {
    const token = this.#bearer;
    if (token === undefined) return undefined;
    if (token.startsWith('mgk_')) {
      this.#exchange ??= (async () => {
        const repo = decodeURIComponent(
          this.#base.pathname.split('/').filter(Boolean).at(-1) ?? '',
        );
        const response = await this.#attempt(
          'POST',
          new URL('/auth/token', this.#base),
          'auth/token',
          jsonBody({ repo }),
          `Bearer ${token}`,
        );
        this.#bearer = (JSON.parse(response.body.toString('utf8')) as { token: string }).token;
      })();
      await this.#exchange;
    }
    return `Bearer ${this.#bearer}`;
  }

  async #request(
    method: string,
    route: string,
    body?: Body,
    pooled = false,
    extraHeaders?: Record<string, string>,
    maxBytes = MAX_RESPONSE_BYTES,
  ): Promise<Response> {
    const authorization = await this.#authorization();
    return this.#attempt(
      method,
      new URL(route, this.#base),
      route,
      body,
      authorization,
      pooled,
      extraHeaders,
      maxBytes,
    );
  }

  /** Sends one request, retrying transient failures; throws a MediaGitError on failure. */
  async #attempt(
    method: string,
    url: URL,
    route: string,
    body: Body | undefined,
    authorization: string | undefined,
    pooled = false,
    extraHeaders?: Record<string, string>,
    maxBytes = MAX_RESPONSE_BYTES,
  ): Promise<Response> {
    for (let attempt = 0; ; attempt++) {
      let response: Response;
      try {
        response = await this.#send(
          method,
          url,
          authorization,
          body,
          pooled,
          extraHeaders,
          this.#agent,
          this.#options.serverTimeoutMs ?? DEFAULT_SERVER_TIMEOUT_MS,
          maxBytes,
        );
      } catch (error) {
        this.#options.signal?.throwIfAborted();
        const code = (error as { code?: string }).code;
        if (code === BAD_ANSWER) {
          throw new MediaGitError(
            'REMOTE_BAD_ANSWER',
            `${this.url}: ${route}: ${(error as Error).message}; refused (a broken or hostile server)`,
            { kind: 'user', data: { url: this.url, exitCode: 128 } },
          );
        }
        if (attempt < RETRIES && isTransient(error)) {
          await sleep(100 * 2 ** attempt);
          continue;
        }
        // A server that refuses a client certificate under TLS 1.3 closes the
        // connection after the handshake: the client sees only a reset.
        const certHint =
          this.#options.cert !== undefined &&
          this.#base.protocol === 'https:' &&
          /ECONNRESET/.test(String((error as { code?: string }).code))
            ? '; the server may have refused the client certificate (MEDIAGIT_CLIENT_CERT)'
            : '';
        throw new MediaGitError(
          'REMOTE_UNREACHABLE',
          `cannot reach ${this.url}: ${describe(error)}${certHint}`,
          {
            kind: 'user',
            data: { url: this.url, exitCode: 128 },
            cause: error,
          },
        );
      }
      if (response.status >= 200 && response.status < 300) return response;
      const retryable = [429, 502, 503, 504].includes(response.status);
      if (retryable && attempt < RETRIES) {
        const after = Number(response.headers['retry-after']);
        await sleep(
          Number.isFinite(after) && after > 0 ? Math.min(after, 30) * 1000 : 200 * 2 ** attempt,
        );
        continue;
      }
      throw this.#failure(response, route);
    }
  }

  #failure(response: Response, route: string): MediaGitError {
    let code = 'REMOTE_ERROR';
    let message = `HTTP ${response.status}`;
    try {
      const parsed = JSON.parse(response.body.toString('utf8')) as {
        error?: { code?: string; message?: string };
      };
      if (parsed.error?.message) message = parsed.error.message;
      if (parsed.error?.code) code = parsed.error.code;
    } catch {
      // not JSON: keep the status line
    }
    if (response.status === 401) code = 'AUTH_REQUIRED';
    if (response.status === 403) code = 'AUTH_FORBIDDEN';
    const hint =
      response.status === 401 ? ' (set MEDIAGIT_TOKEN or run `mediagit login <url>`)' : '';
    // The server's ID of the request (docs/observability.md): its operator
    // finds the request's log lines with it. Named in the message when the
    // server failed (its answer then says only "internal error").
    const header = response.headers['x-request-id'];
    const requestId =
      typeof header === 'string' && /^[\x21-\x7e]{1,128}$/.test(header) ? header : undefined;
    const trace =
      requestId !== undefined && response.status >= 500 ? ` (request ID ${requestId})` : '';
    // Git exits 128 when the remote refuses (authentication, a missing repository).
    return new MediaGitError(code, `${this.url}: ${route}: ${message}${hint}${trace}`, {
      kind: 'user',
      data: {
        url: this.url,
        status: response.status,
        exitCode: 128,
        ...(requestId !== undefined ? { requestId } : {}),
      },
    });
  }

  /** A ranged GET whose body is read straight into a pooled buffer (range-get.ts). */
  async #rangeGet(
    client: RangeClient,
    url: URL,
    authorization: string | undefined,
    extraHeaders: Record<string, string>,
    idleTimeoutMs = DEFAULT_SERVER_TIMEOUT_MS,
    maxBytes = MAX_RESPONSE_BYTES,
  ): Promise<Response> {
    let backing: Buffer | undefined;
    try {
      const answer = await client.get(url, {
        headers: {
          accept: 'application/octet-stream',
          ...(authorization ? { authorization } : {}),
          ...extraHeaders,
        },
        idleTimeoutMs,
        signal: this.#options.signal,
        // Longer than asked for: no buffer, so the client refuses it unread.
        into: (length) => (length > maxBytes ? undefined : (backing = this.#bodies.take(length))),
      });
      if (answer.intoBuffer) {
        this.#lent.set(answer.body.buffer, backing!);
        backing = undefined;
      }
      return { status: answer.status, headers: answer.headers, body: answer.body };
    } finally {
      if (backing) this.#bodies.give(backing);
    }
  }

  #send(
    method: string,
    url: URL,
    authorization: string | undefined,
    body?: Body,
    pooled = false,
    extraHeaders?: Record<string, string>,
    agent: http.Agent = this.#agent,
    idleTimeoutMs?: number,
    maxBytes = MAX_RESPONSE_BYTES,
  ): Promise<Response> {
    if (pooled && method === 'GET' && !body && extraHeaders?.['range'] !== undefined) {
      const client = agent === this.#agent ? this.#ranges : this.#directRanges;
      return this.#rangeGet(client, url, authorization, extraHeaders, idleTimeoutMs, maxBytes);
    }
    return new Promise((resolve, reject) => {
      const headers: http.OutgoingHttpHeaders = {
        accept: 'application/json, application/octet-stream',
        ...extraHeaders,
      };
      if (authorization) headers['authorization'] = authorization;
      if (body) {
        headers['content-type'] = body.type;
        headers['content-length'] = body.data.length;
        if (body.objectId) headers['x-mediagit-object-id'] = body.objectId;
      }
      const request = (url.protocol === 'https:' ? httpsModule() : httpModule()).request(
        url,
        { method, headers, agent, signal: this.#options.signal },
        (res) => {
          const status = res.statusCode ?? 0;
          const length = Number(res.headers['content-length']);
          const ok = status >= 200 && status < 300;
          // What a hostile or broken server sends past what was asked for
          // is not read: an announced length over the limit is refused at
          // once, an unannounced one as soon as it passes it.
          const tooLong = () =>
            Object.assign(new Error(`the answer is longer than the ${maxBytes} bytes expected`), {
              code: BAD_ANSWER,
            });
          if (Number.isSafeInteger(length) && length > maxBytes) {
            request.destroy(tooLong());
            return;
          }
          if (pooled && ok && Number.isSafeInteger(length) && length <= this.#bodies.bufferSize) {
            // Straight into a reused buffer of the announced length.
            const backing = this.#bodies.take(length);
            let at = 0;
            res.on('data', (part: Buffer) => {
              if (at + part.length <= length) part.copy(backing, at);
              at += part.length;
            });
            res.on('end', () => {
              if (at !== length) {
                this.#bodies.give(backing);
                reject(Object.assign(new Error('response body cut short'), { code: 'ECONNRESET' }));
                return;
              }
              const view = backing.subarray(0, length);
              this.#lent.set(view.buffer, backing);
              resolve({ status, headers: res.headers, body: view });
            });
            res.on('error', (error) => {
              this.#bodies.give(backing);
              reject(error);
            });
            return;
          }
          const parts: Buffer[] = [];
          let received = 0;
          res.on('data', (part: Buffer) => {
            received += part.length;
            if (received > maxBytes) request.destroy(tooLong());
            else parts.push(part);
          });
          res.on('end', () =>
            resolve({ status, headers: res.headers, body: Buffer.concat(parts) }),
          );
          res.on('error', reject);
        },
      );
      request.on('error', reject);
      if (idleTimeoutMs !== undefined) {
        request.setTimeout(idleTimeoutMs, () =>
          request.destroy(
            Object.assign(new Error(`no answer for ${idleTimeoutMs / 1000} s`), {
              code: 'ETIMEDOUT',
            }),
          ),
        );
      }
      request.end(body?.data);
    });
  }
}

interface Body {
  readonly type: string;
  readonly data: Buffer;
  /** Sent as X-MediaGit-Object-Id (a manifest upload names its object). */
  readonly objectId?: string;
}

function jsonBody(value: unknown): Body {
  return { type: 'application/json', data: Buffer.from(JSON.stringify(value)) };
}

function isCreateOnly(signed: SignedRequest): boolean {
  if (signed.method !== 'PUT') return false;
  const headers = Object.fromEntries(
    Object.entries(signed.headers).map(([name, value]) => [name.toLowerCase(), value]),
  );
  return headers['if-none-match'] === '*' || headers['x-goog-if-generation-match'] === '0';
}

function isTransient(error: unknown): boolean {
  const code = (error as { code?: string }).code;
  return ['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'ECONNABORTED'].includes(code ?? '');
}

function describe(error: unknown): string {
  const code = (error as { code?: string }).code;
  const message = (error instanceof Error ? error.message : String(error))
    .replace(/\s*\n\s*/g, ' ')
    .trim();
  // OpenSSL's own text names its source files: the code says it all.
  const text = code?.startsWith('ERR_SSL_')
    ? `TLS handshake failed (${code})`
    : code && !message.includes(code)
      ? `${message} (${code})`
      : message;
  // The server's alerts: it wants a client certificate (mutual TLS), or refused ours.
  if (/ALERT_CERTIFICATE_REQUIRED|ALERT_HANDSHAKE_FAILURE/.test(code ?? '')) {
    return `${text}; the server requires a client certificate: set MEDIAGIT_CLIENT_CERT and MEDIAGIT_CLIENT_KEY`;
  }
  if (/_ALERT_(BAD_CERTIFICATE|UNKNOWN_CA|CERTIFICATE_UNKNOWN|DECRYPT_ERROR)/.test(code ?? '')) {
    return `${text}; the server refused the client certificate (MEDIAGIT_CLIENT_CERT)`;
  }
  if (/ALERT_PROTOCOL_VERSION|UNSUPPORTED_PROTOCOL/.test(code ?? '')) {
    return `${text}; this client and the server share no TLS version`;
  }
  const tls = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY/.test(code ?? '');
  return tls ? `${text}; to trust this server's certificate set MEDIAGIT_CA_FILE` : text;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
