/**
 * `mediagit serve`: every bare repository under a root folder over HTTP(S),
 * with the endpoints of docs/protocol.md. The server keeps no state of its
 * own beyond the storage (ARCHITECTURE.md §5): repositories are read and
 * written through the storage interface, refs move by conditional puts, and
 * tokens, the JWT key and the audit log live in `<root>/.mediagit-server/`,
 * so several server processes can share one root.
 *
 * Order of checks on every request: route and repository name (400/404
 * before anything is touched), rate limit per client IP (429), credentials
 * (401) and scope (403), rate limit per key (429), then the body (413 past
 * the route's limit, 400 when it fails its JSON schema).
 *
 * Observability (docs/observability.md): every request has an ID (the
 * caller's sane `x-request-id`, else a fresh UUID), sent back in the
 * `x-request-id` header of every answer, on every log line of the request
 * (`reqId`) and in its audit events (`requestId`); one JSON log line per
 * finished request (logging.ts keeps secrets out); request latency by
 * route and status, bytes in and out, deduplicated chunks and the
 * repositories' storage operations (metered-backend.ts) in metrics.ts.
 */
import fs from 'node:fs/promises';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { LRUCache } from 'lru-cache';
import { MediaGitError } from '../errors.ts';
import { isObjectId } from '../odb/object-id.ts';
import { lfsObjectKey } from '../odb/lfs-pointer.ts';
import { decodeManifest } from '../odb/manifest.ts';
import { decodeRecord } from '../odb/record.ts';
import { MAX_CLOUD_PACK_BYTES } from '../odb/cloud-pack.ts';
import { AGENT_PACKS_IN_FLIGHT } from '../protocol/pack-transfer.ts';
import { BackendRepo, type UploadVerification } from '../protocol/backend-repo.ts';
import { BufferPool, CHUNK_BODY_BYTES } from '../protocol/buffer-pool.ts';
import { schemas } from '../protocol/schemas.ts';
import {
  refusedWhenEncrypted,
  RepoService,
  type RefUpdate,
  type RefUpdateResult,
  type WantRequest,
} from '../protocol/service.ts';
import { isRepoName, TokenStore } from '../protocol/token-store.ts';
import { ServerRoot } from '../protocol/server-root.ts';
import { scopeAllows, type Scope } from '../security/api-keys.ts';
import { issueAccessToken, looksLikeJwt, verifyAccessToken } from '../security/jwt.ts';
import type { AuditEvent } from '../security/audit.ts';
import type { StorageBackend } from '../storage/backend.ts';
import { pageAlignedBuffer } from '../storage/direct-io.ts';
import { LFS_MEDIA_TYPE, registerLfsRoutes } from './lfs-api.ts';
import {
  fastifyLogger,
  loggableHeaders,
  RequestLogController,
  requestIdOf,
  scrubText,
  type LogOptions,
} from './logging.ts';
import { meteredBackend } from './metered-backend.ts';
import { ServerMetrics } from './metrics.ts';
import { RateLimiter } from './rate-limit.ts';
import { contentSha256, lfsBinding } from '../protocol/lfs-objects.ts';
import { packOfFile } from '../protocol/upload-hashes.ts';
import { rootRepositories } from '../protocol/root-stats.ts';
import { DEFAULT_SERVER_GRACE_MS, serverGc } from '../protocol/server-gc.ts';
import { httpsServerOptions, type ServerTls } from '../security/tls.ts';
import { registerUiRoutes, uiErrorPage, pageHeaders } from './ui/routes.ts';
import { parseCookies, SESSION_COOKIE } from './ui/session.ts';
import { recentAuditEvents } from './ui/activity.ts';
import { SERVER_STATE_DIR } from '../protocol/server-root.ts';
import path from 'node:path';

export interface ServerOptions {
  /**
   * The server root (protocol/server-root.ts): a folder or backend URL
   * holding the bare repositories and `.mediagit-server/`.
   */
  readonly root: string | ServerRoot;
  readonly allowAnonymousRead?: boolean | undefined;
  /** Requests per minute per API key / JWT subject key. */
  readonly keyRateLimit?: number | undefined;
  /** Requests per minute per client IP. */
  readonly ipRateLimit?: number | undefined;
  /** Failed authentications per minute per client IP before 429. */
  readonly authFailureLimit?: number | undefined;
  /** Largest chunk upload accepted (bytes). */
  readonly maxChunkBytes?: number | undefined;
  /** Largest transfer pack accepted (bytes). */
  readonly maxPackBytes?: number | undefined;
  /** Largest cloud pack accepted (bytes). */
  readonly maxCloudPackBytes?: number | undefined;
  /** Largest JSON control message accepted (bytes). */
  readonly maxJsonBytes?: number | undefined;
  /** HTTPS: certificate and key, TLS 1.3 or 1.2 at least, client CA for mutual TLS. */
  readonly tls?: ServerTls | undefined;
  /** JSON log lines at a level to a destination (logging.ts); none when absent. */
  readonly log?: LogOptions | undefined;
  /** The storage of one repository; by default the folder `<root>/<name>`. */
  readonly backendFor?: (name: string) => StorageBackend;
  readonly tokenTtlSeconds?: number | undefined;
  /** Largest Git LFS object accepted (bytes). */
  readonly maxLfsObjectBytes?: number | undefined;
  /**
   * How packs uploaded straight to the store are checked before their
   * objects become visible (BackendRepo's `UploadVerification`); default
   * `table`: the server does not read the records of a direct upload.
   */
  readonly verifyUploads?: UploadVerification | undefined;
  /**
   * Git LFS batch answers hand out signed requests to the store where it
   * can sign them (uploads kept whole, verified before they are bound);
   * default true. False: every LFS byte goes through the server.
   */
  readonly lfsDirect?: boolean | undefined;
  /** The web interface at `/` (server/ui/, docs/web-ui.md); default true. */
  readonly ui?: boolean | undefined;
  /**
   * Where the web interface keeps the previews it makes; default
   * `.mediagit-server/previews` under a local root, else in the root's
   * scratch folder.
   */
  readonly previewCacheDir?: string | undefined;
}

interface Identity {
  readonly user: string;
  readonly keyId: string;
  readonly repo: string;
  readonly scope: Scope;
}

type Needed = Scope | 'none';

declare module 'fastify' {
  interface FastifyContextConfig {
    readonly scope?: Needed;
    /** A Git LFS API route (server/lfs-api.ts): `.git` suffix, Basic challenge, LFS error bodies. */
    readonly lfs?: boolean;
    /** The handler reads the body as a stream (no buffering, no size cap here). */
    readonly streamBody?: boolean;
    /** The body is a cloud pack: read into the pool of pack-sized buffers. */
    readonly packBody?: boolean;
    /** Why the route needs plaintext: refused (409) in an encrypted repository (docs/encryption.md). */
    readonly plaintext?: string;
  }
  interface FastifyRequest {
    identity?: Identity | undefined;
    repoName?: string | undefined;
    /** The pooled buffer holding this request's body (protocol/buffer-pool.ts). */
    pooledBody?: Buffer | undefined;
    bodyPool?: BufferPool | undefined;
    /** When the request arrived (process.hrtime.bigint()). */
    startedAt?: bigint | undefined;
    /** What the error handler answered, for the request's log line. */
    failure?: { readonly code: string; readonly message: string } | undefined;
    /** The request's completion is logged and counted (once). */
    finished?: boolean | undefined;
  }
}

const DEFAULTS = {
  keyRateLimit: 12_000,
  ipRateLimit: 24_000,
  authFailureLimit: 30,
  maxChunkBytes: 64 * 1024 * 1024,
  maxPackBytes: 1024 * 1024 * 1024,
  maxJsonBytes: 16 * 1024 * 1024,
  tokenTtlSeconds: 900,
  maxLfsObjectBytes: 1024 ** 4,
};

/** An error Fastify answers with `statusCode` (body parsing happens before our handlers). */
function statusError(statusCode: number, code: string, message: string): Error {
  return Object.assign(new Error(message), { statusCode, code });
}

function httpError(status: number, code: string, message: string): MediaGitError {
  return new MediaGitError(code, message, { kind: 'user', data: { status } });
}

/** The HTTP status a MediaGitError maps to. */
/** Why `manifests/<oid>` needs the plaintext (Git interop's chunked uploads and downloads). */
const MANIFESTS_BY_OID =
  "manifests are found by their file's SHA-256, which an encrypted repository seals";

function statusOf(error: MediaGitError): number {
  const status = error.data['status'];
  if (typeof status === 'number') return status;
  switch (error.code) {
    case 'OBJECT_MISSING':
    case 'STORAGE_NOT_FOUND':
      return 404;
    case 'STORAGE_PRECONDITION_FAILED':
    case 'STORAGE_LOCKED':
      return 409;
    // The store failed after the server's own retries: the client may try
    // again later (503 is retried by clients; 400 would say it never works).
    case 'STORAGE_UNAVAILABLE':
      return 503;
    default:
      return error.kind === 'internal' || error.kind === 'corrupt' ? 500 : 400;
  }
}

export async function buildServer(options: ServerOptions): Promise<FastifyInstance> {
  const settings = {
    keyRateLimit: options.keyRateLimit ?? DEFAULTS.keyRateLimit,
    ipRateLimit: options.ipRateLimit ?? DEFAULTS.ipRateLimit,
    authFailureLimit: options.authFailureLimit ?? DEFAULTS.authFailureLimit,
    maxChunkBytes: options.maxChunkBytes ?? DEFAULTS.maxChunkBytes,
    maxPackBytes: options.maxPackBytes ?? DEFAULTS.maxPackBytes,
    maxCloudPackBytes: options.maxCloudPackBytes ?? MAX_CLOUD_PACK_BYTES,
    verifyUploads: options.verifyUploads ?? 'table',
    maxJsonBytes: options.maxJsonBytes ?? DEFAULTS.maxJsonBytes,
    tokenTtlSeconds: options.tokenTtlSeconds ?? DEFAULTS.tokenTtlSeconds,
  };
  const root = typeof options.root === 'string' ? ServerRoot.open(options.root) : options.root;
  if (root.localDir !== undefined) {
    const stat = await fs.stat(root.localDir).catch(() => undefined);
    if (!stat?.isDirectory()) {
      throw new MediaGitError('SERVER_ROOT', `server root ${root.localDir} is not a directory`, {
        kind: 'usage',
        data: { root: root.localDir },
      });
    }
  }
  await root.check();
  const tokens = new TokenStore(root);
  // Access tokens: signed by the root's current key, verified by any active
  // one (a rotation made by `token rotate-signing-key` reaches every server
  // of the root within seconds, without a restart).
  const signingKeys = tokens.keyRing();
  await signingKeys.current();
  const audit = root.audit();
  const metrics = new ServerMetrics();
  const ipLimiter = new RateLimiter(settings.ipRateLimit);
  const keyLimiter = new RateLimiter(settings.keyRateLimit);
  const authFailures = new RateLimiter(settings.authFailureLimit);
  const backendFor = options.backendFor ?? ((name: string) => root.repo(name));
  const services = new LRUCache<string, RepoService>({ max: 256 });
  // A push sends hundreds of requests with one JWT: verify it once, then
  // trust it for a few seconds (far less than its lifetime).
  const verifiedJwts = new LRUCache<string, Identity>({ max: 10_000, ttl: 10_000 });

  const base = {
    logger: options.log ? fastifyLogger(options.log) : false,
    // One line per finished request, written by `finish` below.
    logController: new RequestLogController(),
    genReqId: (raw: { headers: Record<string, string | string[] | undefined> }) =>
      requestIdOf(raw.headers['x-request-id']),
    bodyLimit: settings.maxJsonBytes,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false } },
  } as const;
  const app = (options.tls
    ? Fastify({ ...base, https: httpsServerOptions(options.tls) })
    : Fastify(base)) as unknown as FastifyInstance;

  app.addContentTypeParser(
    'application/x-mediagit-pack',
    { parseAs: 'buffer', bodyLimit: settings.maxPackBytes },
    (_request, body, done) => done(null, body),
  );
  // Chunk and manifest uploads: read into a reused buffer of the declared
  // length (protocol/buffer-pool.ts), given back once the request is answered.
  const bodies = new BufferPool(CHUNK_BODY_BYTES, 16);
  // Page-aligned: a pack stored on a local disk is written directly from its
  // body, without a copy into aligned memory (storage/direct-io.ts).
  // One more kept than the Git LFS transfer agent has packs in flight: the
  // server has one still being stored (measured: with two kept for two in
  // flight, one in three packs took fresh memory, ~190 ms of page faults per
  // 48 MiB here). A push has one in flight and never touches the third.
  const packBodies = new BufferPool(
    MAX_CLOUD_PACK_BYTES,
    AGENT_PACKS_IN_FLIGHT + 1,
    undefined,
    pageAlignedBuffer,
  );
  app.addContentTypeParser(
    LFS_MEDIA_TYPE,
    { parseAs: 'string', bodyLimit: settings.maxJsonBytes },
    (_request, body, done) => {
      try {
        done(null, JSON.parse(body as string));
      } catch {
        done(statusError(400, 'BAD_JSON', 'the body is not valid JSON'));
      }
    },
  );
  // Git LFS uploads carry whatever type git-lfs detected in the file
  // (image/png, application/zip, ...): the streamed route takes any; other
  // routes refuse a type they have no parser for, as Fastify does.
  // Git LFS uploads of text or JSON files carry those types too: the
  // streamed route must get them as a stream, not parsed (Fastify's own
  // parsers for these types are replaced by ones that know the route).
  const defaultJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser(['application/json', 'text/plain']);
  const readText = async (payload: NodeJS.ReadableStream, limit: number): Promise<string> => {
    const parts: Buffer[] = [];
    let length = 0;
    for await (const part of payload as AsyncIterable<Buffer>) {
      length += part.length;
      if (length > limit) throw statusError(413, 'TOO_LARGE', 'request body too large');
      parts.push(part);
    }
    return Buffer.concat(parts).toString('utf8');
  };
  for (const type of ['application/json', 'text/plain']) {
    app.addContentTypeParser(type, (request, payload, done) => {
      if (request.routeOptions.config.streamBody) return done(null, payload);
      const limit = request.routeOptions.bodyLimit ?? settings.maxJsonBytes;
      readText(payload, limit).then(
        (text) => {
          if (type === 'text/plain') return done(null, text);
          defaultJson(request, text, done);
        },
        (error: Error) => done(error),
      );
    });
  }
  app.addContentTypeParser('*', (request, payload, done) => {
    if (request.routeOptions.config.streamBody) return done(null, payload);
    done(
      statusError(
        415,
        'FST_ERR_CTP_INVALID_MEDIA_TYPE',
        `Unsupported Media Type: ${request.headers['content-type'] ?? '(none)'}`,
      ),
    );
  });
  app.addContentTypeParser('application/octet-stream', (request, payload, done) => {
    // Git LFS uploads go to their handler as a stream, whatever their size.
    if (request.routeOptions.config.streamBody) return done(null, payload);
    const limit = request.routeOptions.bodyLimit ?? settings.maxChunkBytes;
    const declared = Number(request.headers['content-length']);
    if (!Number.isSafeInteger(declared) || declared < 0) {
      return done(statusError(411, 'LENGTH_REQUIRED', 'a Content-Length is required'));
    }
    if (declared > limit) return done(statusError(413, 'TOO_LARGE', 'request body too large'));
    const pool = request.routeOptions.config.packBody ? packBodies : bodies;
    const backing = pool.take(declared);
    let at = 0;
    let failed = false;
    payload.on('data', (part: Buffer) => {
      if (failed) return;
      if (at + part.length > declared) {
        failed = true;
        return done(statusError(400, 'BAD_LENGTH', 'body longer than its Content-Length'));
      }
      part.copy(backing, at);
      at += part.length;
    });
    payload.on('end', () => {
      if (failed) return;
      if (at !== declared) {
        return done(statusError(400, 'BAD_LENGTH', 'body shorter than its Content-Length'));
      }
      request.pooledBody = backing;
      request.bodyPool = pool;
      done(null, backing.subarray(0, declared));
    });
    payload.on('error', (error) => {
      failed = true;
      done(error);
    });
  });

  const serviceFor = async (name: string): Promise<RepoService> => {
    let service = services.get(name);
    if (!service) {
      const repo = new BackendRepo(meteredBackend(backendFor(name), metrics), {
        verifyUploads: settings.verifyUploads,
      });
      if (!(await repo.exists())) {
        throw httpError(404, 'REPO_NOT_FOUND', `no repository named ${name}`);
      }
      service = new RepoService(repo);
      services.set(name, service);
    }
    return service;
  };

  /** Appends an audit event of `request`, tagged with its request ID. */
  const auditOf = (request: FastifyRequest, event: AuditEvent): Promise<void> => {
    const tagged: AuditEvent = { ...event, requestId: request.id };
    return audit.append(tagged);
  };

  const deny = async (
    request: FastifyRequest,
    status: 401 | 403,
    reason: string,
  ): Promise<never> => {
    metrics.authFailures.inc({ status: String(status) });
    await auditOf(request, {
      action: 'auth',
      outcome: 'denied',
      ip: request.ip,
      ...(request.repoName ? { repo: request.repoName } : {}),
      ...(request.identity ? { user: request.identity.user, keyId: request.identity.keyId } : {}),
      reason: `${request.method} ${request.routeOptions.url ?? request.url}: ${reason}`,
    });
    if (status === 401) {
      const wait = authFailures.take(request.ip);
      if (wait > 0) throw rateLimited(wait, 'auth-failures');
    }
    throw httpError(status, status === 401 ? 'AUTH_REQUIRED' : 'AUTH_FORBIDDEN', reason);
  };

  const rateLimited = (wait: number, limit: string): MediaGitError => {
    metrics.rateLimited.inc({ limit });
    return new MediaGitError('RATE_LIMITED', `too many requests; retry in ${wait} s`, {
      kind: 'user',
      data: { status: 429, retryAfter: wait },
    });
  };

  /** Key IDs still active (not revoked), checked again every few seconds for web sessions. */
  const activeKeys = new LRUCache<string, boolean>({ max: 10_000, ttl: 10_000 });
  const keyActive = async (keyId: string): Promise<boolean> => {
    const known = activeKeys.get(keyId);
    if (known !== undefined) return known;
    const record = (await tokens.list()).find((t) => t.id === keyId);
    const active = record !== undefined && record.revoked === undefined;
    activeKeys.set(keyId, active);
    return active;
  };

  /**
   * A web page's session (server/ui/session.ts): the cookie's signed token,
   * while its key is not revoked; undefined when absent, expired or revoked
   * (the page then asks to sign in again).
   */
  const sessionIdentity = async (request: FastifyRequest): Promise<Identity | undefined> => {
    const session = parseCookies(request.headers.cookie).get(SESSION_COOKIE);
    if (session === undefined || session === '' || !looksLikeJwt(session)) return undefined;
    try {
      const claims = await verifyAccessToken(signingKeys, session);
      if (!(await keyActive(claims.keyId))) return undefined;
      return { user: claims.user, keyId: claims.keyId, repo: claims.repo, scope: claims.scope };
    } catch {
      return undefined;
    }
  };

  const identify = async (request: FastifyRequest): Promise<Identity | undefined> => {
    const header = request.headers.authorization;
    if (header === undefined) {
      return request.routeOptions.config.ui ? sessionIdentity(request) : undefined;
    }
    const match = /^(Bearer|Basic)\s+(\S+)\s*$/i.exec(header);
    if (!match)
      return deny(request, 401, 'malformed Authorization header (expected Bearer or Basic)');
    // HTTP Basic (what Git's credential helpers give git-lfs): the password is the key.
    const basic = match[1]!.toLowerCase() === 'basic';
    const decoded = basic ? Buffer.from(match[2]!, 'base64').toString('utf8') : match[2]!;
    const token = basic ? decoded.slice(decoded.indexOf(':') + 1) : decoded;
    if (token === '') return deny(request, 401, 'empty credential');
    if (looksLikeJwt(token)) {
      const cached = verifiedJwts.get(token);
      if (cached) return cached;
      try {
        const claims = await verifyAccessToken(signingKeys, token);
        const identity = {
          user: claims.user,
          keyId: claims.keyId,
          repo: claims.repo,
          scope: claims.scope,
        };
        verifiedJwts.set(token, identity);
        return identity;
      } catch {
        return deny(request, 401, 'invalid or expired token');
      }
    }
    const record = await tokens.authenticate(token);
    if (!record) return deny(request, 401, 'invalid or revoked API key');
    return { user: record.user, keyId: record.id, repo: record.repo, scope: record.scope };
  };

  // Which request lines the level lets through (built only then).
  const level = options.log?.level;
  const logs = {
    requests: level === 'info' || level === 'debug' || level === 'trace',
    arrivals: level === 'debug' || level === 'trace',
  };

  /**
   * The request's one log line and its metrics, once: when its answer is
   * handed to the socket (`onResponse`), or when the connection closes
   * first (status `aborted` in the metrics).
   */
  const finish = (request: FastifyRequest, status: number | 'aborted'): void => {
    if (request.finished) return;
    request.finished = true;
    const route = request.routeOptions.url ?? 'unknown';
    const labels = { method: request.method, route, status: String(status) };
    metrics.requests.inc(labels);
    const started = request.startedAt;
    const seconds = started === undefined ? 0 : Number(process.hrtime.bigint() - started) / 1e9;
    if (started !== undefined) metrics.latency.observe(labels, seconds);
    if (!logs.requests) return;
    const identity = request.identity;
    request.log.info(
      {
        req: request,
        res: { statusCode: status },
        route,
        ...(request.repoName !== undefined ? { repo: request.repoName } : {}),
        ...(identity ? { user: identity.user, keyId: identity.keyId } : {}),
        ...(request.failure ? { error: request.failure } : {}),
        responseTime: Math.round(seconds * 1e6) / 1e3,
      },
      status === 'aborted'
        ? 'connection closed before the answer was complete'
        : 'request completed',
    );
  };

  app.addHook('onRequest', async (request, reply) => {
    request.startedAt = process.hrtime.bigint();
    if (logs.arrivals) {
      request.log.debug(
        { req: request, headers: loggableHeaders(request.headers) },
        'incoming request',
      );
    }
    reply.raw.once('close', () => {
      if (!reply.raw.writableFinished) finish(request, 'aborted');
    });
    const ipWait = ipLimiter.take(request.ip);
    if (ipWait > 0) throw rateLimited(ipWait, 'ip');
    const needed = request.routeOptions.config.scope ?? 'none';
    const lfs = request.routeOptions.config.lfs === true;
    const params = request.params as { repo?: string } | undefined;
    if (params?.repo !== undefined) {
      // Git LFS clients address `<repo>.git/info/lfs`.
      const name = lfs && params.repo.endsWith('.git') ? params.repo.slice(0, -4) : params.repo;
      if (!isRepoName(name)) {
        throw httpError(400, 'BAD_REPO_NAME', 'invalid repository name');
      }
      request.repoName = name;
    }
    if (needed === 'none') return;
    const identity = await identify(request);
    request.identity = identity;
    if (identity === undefined) {
      if (needed === 'read' && options.allowAnonymousRead) return;
      if (request.routeOptions.config.ui && request.method === 'GET') {
        // A page: off to sign in, and back here after.
        const next = encodeURIComponent(request.url);
        return reply.redirect(`/-/signin?next=${next}`, 303);
      }
      if (lfs) {
        reply.header('lfs-authenticate', 'Basic realm="mediagit"');
        reply.header('www-authenticate', 'Basic realm="mediagit"');
      } else {
        reply.header('www-authenticate', 'Bearer realm="mediagit"');
      }
      return deny(request, 401, 'authentication required');
    }
    const keyWait = keyLimiter.take(identity.keyId);
    if (keyWait > 0) throw rateLimited(keyWait, 'key');
    const repoOk =
      identity.repo === '*' || request.repoName === undefined || identity.repo === request.repoName;
    if (!repoOk)
      return deny(request, 403, `this key is not valid for repository ${request.repoName}`);
    if (!scopeAllows(identity.scope, needed)) {
      return deny(request, 403, `this key has ${identity.scope} access; ${needed} is needed`);
    }
  });

  /** Gives a request's pooled body back (once its bytes are stored, or at the latest its answer). */
  const releaseBody = (request: FastifyRequest): void => {
    if (request.pooledBody) {
      (request.bodyPool ?? bodies).give(request.pooledBody);
      request.pooledBody = undefined;
    }
  };

  app.addHook('onResponse', async (request, reply) => {
    releaseBody(request);
    finish(request, reply.statusCode);
  });

  // Bytes in: every request body that arrived whole (counted once parsed, so a
  // body the server stored counts even if its client died before the answer).
  // Bytes out: every answer body handed to the socket.
  app.addHook('preHandler', async (request) => {
    const length = Number(request.headers['content-length']);
    if (Number.isFinite(length)) metrics.bytesIn.inc(length);
  });
  // What needs the plaintext, refused in an encrypted repository before its handler runs.
  app.addHook('preHandler', async (request) => {
    const config = request.routeOptions.config;
    const why =
      config.plaintext ??
      (config.lfs !== true
        ? undefined
        : request.url.includes('/info/lfs/locks')
          ? 'locks name paths, which an encrypted repository keeps sealed'
          : 'the Git LFS API names files by the SHA-256 of their content');
    if (why === undefined || request.repoName === undefined) return;
    const service = await serviceFor(request.repoName).catch(() => undefined);
    if (service !== undefined && (await service.repo.encrypted())) throw refusedWhenEncrypted(why);
  });
  app.addHook('onSend', async (request, reply, payload) => {
    // Every answer, errors and refusals included, names its request.
    reply.header('x-request-id', request.id);
    if (typeof payload === 'string') metrics.bytesOut.inc(Buffer.byteLength(payload));
    else if (Buffer.isBuffer(payload)) metrics.bytesOut.inc(payload.length);
    return payload;
  });

  app.setErrorHandler(async (error, request, reply) => {
    if (error instanceof MediaGitError) {
      const status = statusOf(error);
      const retryAfter = error.data['retryAfter'];
      if (typeof retryAfter === 'number') reply.header('retry-after', String(retryAfter));
      if (status >= 500) request.log.error({ err: error }, 'request failed');
      const message = status >= 500 ? 'internal error' : error.message;
      request.failure = { code: error.code, message: scrubText(error.message) };
      if (request.routeOptions.config?.ui) {
        return reply
          .status(status)
          .headers(pageHeaders())
          .send(uiErrorPage(request, status, message));
      }
      if (request.routeOptions.config?.lfs) {
        // The Git LFS API's error body: git-lfs prints `message`.
        return reply
          .status(status)
          .header('content-type', LFS_MEDIA_TYPE)
          .send(JSON.stringify({ message, code: error.code }));
      }
      return reply.status(status).send({ error: { code: error.code, message } });
    }
    const status = (error as { statusCode?: number }).statusCode ?? 500;
    const code = (error as { code?: string }).code ?? 'INTERNAL';
    if (status >= 500) request.log.error({ err: error }, 'request failed');
    const message =
      status === 413
        ? 'request body too large'
        : status >= 500
          ? 'internal error'
          : (error as Error).message;
    request.failure = {
      code: status === 413 ? 'TOO_LARGE' : code,
      message: scrubText(status >= 500 ? (error as Error).message : message),
    };
    if (request.routeOptions.config?.ui) {
      return reply
        .status(status)
        .headers(pageHeaders())
        .send(uiErrorPage(request, status, message));
    }
    return reply
      .status(status)
      .send({ error: { code: status === 413 ? 'TOO_LARGE' : code, message } });
  });

  app.setNotFoundHandler(async (request, reply) => {
    request.failure = { code: 'NOT_FOUND', message: 'no such endpoint' };
    if (request.url.startsWith('/-/') && request.method === 'GET') {
      return reply
        .status(404)
        .headers(pageHeaders())
        .send(uiErrorPage(request, 404, 'No such page.'));
    }
    return reply.status(404).send({ error: { code: 'NOT_FOUND', message: 'no such endpoint' } });
  });

  const body = (schema: object): object => {
    return Object.fromEntries(Object.entries(schema).filter(([key]) => key !== '$id'));
  };
  const repoOf = (request: FastifyRequest): Promise<RepoService> => serviceFor(request.repoName!);
  const sendBinary = (reply: FastifyReply, data: Buffer, type = 'application/octet-stream') =>
    reply.header('content-type', type).header('content-length', data.length).send(data);
  const checkId = (id: string): string => {
    if (!isObjectId(id)) throw httpError(400, 'BAD_OBJECT_ID', 'not an object ID');
    return id;
  };

  app.get('/healthz', { config: { scope: 'none' } }, async () => ({ status: 'ok' }));

  app.get('/metrics', { config: { scope: 'none' } }, async (_request, reply) => {
    reply.header('content-type', metrics.registry.contentType);
    return metrics.registry.metrics();
  });

  app.post(
    '/auth/token',
    { config: { scope: 'read' }, schema: { body: body(schemas.tokenRequest) } },
    async (request) => {
      const identity = request.identity;
      if (!identity) return deny(request, 401, 'an API key is needed');
      const wanted = (request.body as { repo?: string } | undefined)?.repo;
      const repo =
        identity.repo === '*' && wanted && isRepoName(wanted) ? identity.repo : identity.repo;
      const issued = await issueAccessToken(
        await signingKeys.current(),
        { user: identity.user, keyId: identity.keyId, repo, scope: identity.scope },
        settings.tokenTtlSeconds,
      );
      return { token: issued.token, expiresAt: issued.expiresAt.toISOString() };
    },
  );

  /**
   * Who the credential is and what it may do: `mediagit login` checks a key
   * with it, and `push` checks its scope before uploading anything.
   */
  const access = async (request: FastifyRequest) => {
    const identity = request.identity;
    return {
      user: identity?.user ?? null,
      scope: identity?.scope ?? (options.allowAnonymousRead ? 'read' : 'none'),
      repo: identity?.repo ?? null,
    };
  };
  app.get('/auth/whoami', { config: { scope: 'read' } }, access);
  app.get('/:repo/access', { config: { scope: 'read' } }, access);

  app.post(
    '/admin/repos',
    { config: { scope: 'admin' }, schema: { body: body(schemas.createRepoRequest) } },
    async (request, reply) => {
      const { name, defaultBranch } = request.body as { name: string; defaultBranch?: string };
      if (!isRepoName(name)) throw httpError(400, 'BAD_REPO_NAME', 'invalid repository name');
      const identity = request.identity!;
      if (identity.repo !== '*' && identity.repo !== name) {
        return deny(request, 403, `this key is not valid for repository ${name}`);
      }
      const { created } = await root.initRepo(name, defaultBranch);
      await auditOf(request, {
        action: 'create-repo',
        outcome: 'ok',
        user: identity.user,
        keyId: identity.keyId,
        repo: name,
        ip: request.ip,
      });
      return reply.status(created ? 201 : 200).send({ name, created });
    },
  );

  /**
   * Server gc (protocol/server-gc.ts) of one repository, or of every one
   * the key may administer: `graceSeconds` (default an hour) is how long
   * what a run finds unreachable waits before a later run deletes it; 0
   * deletes it at once.
   */
  app.post(
    '/admin/gc',
    { config: { scope: 'admin' }, schema: { body: body(schemas.gcRequest) } },
    async (request) => {
      const { repo, graceSeconds, dryRun } = request.body as {
        repo?: string;
        graceSeconds?: number;
        dryRun?: boolean;
      };
      const identity = request.identity!;
      if (repo !== undefined && !isRepoName(repo)) {
        throw httpError(400, 'BAD_REPO_NAME', 'invalid repository name');
      }
      if (repo !== undefined && identity.repo !== '*' && identity.repo !== repo) {
        return deny(request, 403, `this key is not valid for repository ${repo}`);
      }
      const names =
        repo !== undefined
          ? [repo]
          : identity.repo === '*'
            ? await rootRepositories(root)
            : [identity.repo];
      const graceMs = graceSeconds === undefined ? DEFAULT_SERVER_GRACE_MS : graceSeconds * 1000;
      const results = [];
      for (const name of names) {
        const backend = meteredBackend(backendFor(name), metrics);
        try {
          const result = await serverGc(backend, name, {
            pruneBefore: Date.now() - graceMs,
            immediate: graceMs === 0,
            dryRun: dryRun === true,
            graceMs,
          });
          metrics.gcRuns.inc({ result: 'ok' });
          metrics.gcBytesReclaimed.inc(result.bytesReclaimed);
          results.push(result);
        } catch (error) {
          metrics.gcRuns.inc({ result: 'failed' });
          if (error instanceof MediaGitError && error.code === 'REPO_NOT_FOUND') {
            throw httpError(404, 'REPO_NOT_FOUND', `no repository named ${name}`);
          }
          if (error instanceof MediaGitError && error.code === 'GC_RUNNING') {
            throw httpError(409, 'GC_RUNNING', error.message);
          }
          throw error;
        }
        await auditOf(request, {
          action: 'gc',
          outcome: 'ok',
          user: identity.user,
          keyId: identity.keyId,
          repo: name,
          ip: request.ip,
        });
      }
      return { repositories: results };
    },
  );

  app.get('/:repo/info/refs', { config: { scope: 'read' } }, async (request) =>
    (await repoOf(request)).infoRefs(),
  );

  app.post(
    '/:repo/objects/want',
    { config: { scope: 'read' }, schema: { body: body(schemas.wantRequest) } },
    async (request, reply) => {
      const pack = await (await repoOf(request)).want(request.body as WantRequest);
      return sendBinary(reply, pack, 'application/x-mediagit-pack');
    },
  );

  app.get('/:repo/objects/pack', { config: { scope: 'read' } }, async (request, reply) => {
    const query = request.query as Record<string, string | string[] | undefined>;
    const list = (value: string | string[] | undefined): string[] =>
      value === undefined ? [] : Array.isArray(value) ? value : value.split(',');
    const wants = list(query['want']).map(checkId);
    if (wants.length === 0) throw httpError(400, 'BAD_REQUEST', 'want= is required');
    const depth = query['depth'] === undefined ? undefined : Number(query['depth']);
    if (depth !== undefined && !(Number.isInteger(depth) && depth > 0)) {
      throw httpError(400, 'BAD_REQUEST', 'depth must be a positive integer');
    }
    const pack = await (
      await repoOf(request)
    ).want({
      wants,
      haves: list(query['have']).map(checkId),
      ...(depth !== undefined ? { depth } : {}),
    });
    return sendBinary(reply, pack, 'application/x-mediagit-pack');
  });

  app.post(
    '/:repo/objects/pack',
    { config: { scope: 'write' }, bodyLimit: settings.maxPackBytes },
    async (request) => {
      if (!Buffer.isBuffer(request.body)) {
        throw httpError(415, 'BAD_CONTENT_TYPE', 'send the pack as application/x-mediagit-pack');
      }
      return (await repoOf(request)).receivePack(request.body);
    },
  );

  app.post(
    '/:repo/chunks/check',
    { config: { scope: 'read' }, schema: { body: body(schemas.chunkCheckRequest) } },
    async (request) => {
      const { ids } = request.body as { ids: string[] };
      const missing = await (await repoOf(request)).missing(ids);
      metrics.chunksDeduplicated.inc(ids.length - missing.length);
      return { missing };
    },
  );

  app.put(
    '/:repo/chunks/:id',
    { config: { scope: 'write' }, bodyLimit: settings.maxChunkBytes },
    async (request, reply) => {
      const id = checkId((request.params as { id: string }).id);
      if (!Buffer.isBuffer(request.body)) {
        throw httpError(415, 'BAD_CONTENT_TYPE', 'send the chunk as application/octet-stream');
      }
      const stored = await (await repoOf(request)).putChunk(id, request.body);
      if (stored) metrics.chunksStored.inc();
      else metrics.chunksDeduplicated.inc();
      return reply.status(stored ? 201 : 200).send({ id, stored });
    },
  );

  app.get('/:repo/chunks/:id', { config: { scope: 'read' } }, async (request, reply) => {
    const id = checkId((request.params as { id: string }).id);
    return sendBinary(reply, await (await repoOf(request)).getChunk(id));
  });

  app.post(
    '/:repo/packs/begin',
    { config: { scope: 'write' }, schema: { body: body(schemas.packBeginRequest) } },
    async (request) => {
      const { packs, direct } = request.body as {
        packs: { name: string; size: number }[];
        direct?: boolean;
      };
      for (const pack of packs) {
        if (pack.size > settings.maxCloudPackBytes) {
          throw httpError(
            413,
            'TOO_LARGE',
            `pack ${pack.name} is over ${settings.maxCloudPackBytes} bytes`,
          );
        }
      }
      return { packs: await (await repoOf(request)).beginPacks(packs, direct === true) };
    },
  );

  app.put(
    '/:repo/packs/:name',
    { config: { scope: 'write', packBody: true }, bodyLimit: settings.maxCloudPackBytes },
    async (request, reply) => {
      const name = checkId((request.params as { name: string }).name);
      if (!Buffer.isBuffer(request.body)) {
        throw httpError(415, 'BAD_CONTENT_TYPE', 'send the pack as application/octet-stream');
      }
      const file = packOfFile(request.headers['x-mediagit-lfs-file']);
      const { objects } = await (await repoOf(request)).putPack(name, request.body, file);
      // Stored: the body's buffer goes back before the answer, so the pack
      // the client sends next can take it instead of new memory (whose
      // first touch costs ~4 ms per MiB on these machines).
      releaseBody(request);
      metrics.chunksStored.inc(objects);
      return reply.status(201).send({ name, objects });
    },
  );

  app.get('/:repo/packs/:name', { config: { scope: 'read' } }, async (request, reply) => {
    const name = checkId((request.params as { name: string }).name);
    const range = /^bytes=(\d+)-(\d+)$/.exec(String(request.headers['range'] ?? ''));
    if (!range)
      throw httpError(416, 'RANGE_REQUIRED', 'a Range: bytes=<first>-<last> header is required');
    const first = Number(range[1]);
    const last = Number(range[2]);
    if (!(last >= first) || last - first >= settings.maxCloudPackBytes) {
      throw httpError(416, 'BAD_RANGE', 'the range must be 1 to max-pack-size bytes');
    }
    const bytes = await (await repoOf(request)).readPack(name, first, last - first + 1);
    return reply
      .status(206)
      .header('content-type', 'application/octet-stream')
      .header('content-range', `bytes ${first}-${first + bytes.length - 1}/*`)
      .header('content-length', bytes.length)
      .send(bytes);
  });

  app.post(
    '/:repo/packs/commit',
    { config: { scope: 'write' }, schema: { body: body(schemas.packCommitRequest) } },
    async (request) => {
      const { packs } = request.body as {
        packs: (string | { name: string; size: number; table: string })[];
      };
      return (await repoOf(request)).commitPacks(
        packs.map((pack) =>
          typeof pack === 'string' ? pack : { ...pack, table: Buffer.from(pack.table, 'base64') },
        ),
      );
    },
  );

  app.post(
    '/:repo/objects/locate',
    { config: { scope: 'read' }, schema: { body: body(schemas.locateRequest) } },
    async (request) => {
      const { ids, direct, gone } = request.body as {
        ids: string[];
        direct?: boolean;
        gone?: string[];
      };
      return (await repoOf(request)).locate(ids, direct === true, gone);
    },
  );

  app.put(
    '/:repo/manifests/:oid',
    { config: { scope: 'write', plaintext: MANIFESTS_BY_OID }, bodyLimit: settings.maxChunkBytes },
    async (request, reply) => {
      const oid = checkId((request.params as { oid: string }).oid);
      if (!Buffer.isBuffer(request.body)) {
        throw httpError(415, 'BAD_CONTENT_TYPE', 'send the manifest as application/octet-stream');
      }
      const service = await repoOf(request);
      const id = (request.headers['x-mediagit-object-id'] as string | undefined) ?? '';
      checkId(id);
      const object = await decodeRecord(id, request.body);
      if (object.type !== 'manifest') throw httpError(400, 'NOT_A_MANIFEST', 'not a manifest');
      const manifest = decodeManifest(id, object.data);
      if (manifest.sha256 !== oid) {
        throw httpError(
          400,
          'OID_MISMATCH',
          `the manifest describes ${manifest.sha256}, not ${oid}`,
        );
      }
      const missing = await service.repo.missing(manifest.chunks.map((c) => c.id));
      if (missing.length > 0) {
        throw httpError(
          409,
          'CHUNKS_MISSING',
          `${missing.length} chunks of ${oid} are not uploaded`,
        );
      }
      // The OID is what Git LFS clients trust: bind it only to content that
      // hashes to it (the manifest's own sha256 line is the uploader's claim).
      // Only the OID's key: looking for a blob too lists the indexes again when none is there.
      const bound = await lfsBinding(service.repo, oid).catch(() => undefined);
      const chunkIds = manifest.chunks.map((c) => c.id);
      if (bound !== id) {
        // Hashed as its packs arrived (upload-hashes.ts), else read back.
        const actual =
          (await service.repo.uploadHashes.take(oid, chunkIds)) ??
          (await contentSha256(service.repo, {
            kind: 'manifest',
            id,
            size: manifest.size,
            manifest,
          }));
        if (actual !== oid) {
          throw httpError(
            400,
            'OID_MISMATCH',
            `the chunks of this manifest hash to ${actual}, not ${oid}`,
          );
        }
      }
      await service.repo.putVerified(id, request.body);
      const key = lfsObjectKey(oid);
      await service.repo.fencedWrite(
        [id, ...manifest.chunks.map((c) => c.id)],
        () => service.repo.backend.put(key, Buffer.from(`${id}\n`)),
        () => service.repo.backend.delete(key),
      );
      return reply.status(201).send({ oid, id });
    },
  );

  app.get(
    '/:repo/manifests/:oid',
    { config: { scope: 'read', plaintext: MANIFESTS_BY_OID } },
    async (request, reply) => {
      const oid = checkId((request.params as { oid: string }).oid);
      const service = await repoOf(request);
      let id: string;
      try {
        const bytes = await service.repo.backend.get(lfsObjectKey(oid));
        id = Buffer.from(bytes).toString('utf8').trim();
      } catch (error) {
        if (error instanceof MediaGitError && error.code === 'STORAGE_NOT_FOUND') {
          throw httpError(404, 'OBJECT_MISSING', `no manifest for ${oid}`);
        }
        throw error;
      }
      if (!isObjectId(id)) {
        // Kept whole (uploaded straight to the store by git-lfs): no manifest;
        // the client falls back to the Git LFS API for it.
        throw httpError(404, 'OBJECT_MISSING', `${oid} is stored whole, not as a manifest`);
      }
      return sendBinary(reply.header('x-mediagit-object-id', id), await service.repo.getRecord(id));
    },
  );

  app.get('/:repo/keys', { config: { scope: 'read' } }, async (request, reply) => {
    const keys = await (await repoOf(request)).keys();
    if (keys === undefined) return reply.status(204).send();
    return sendBinary(reply, keys, 'application/json');
  });

  app.put(
    '/:repo/keys',
    { config: { scope: 'write' }, schema: { body: body(schemas.keyFile) } },
    async (request, reply) => {
      const identity = request.identity;
      const replaces = (request.query as { replaces?: unknown }).replaces;
      if (
        replaces !== undefined &&
        (typeof replaces !== 'string' || !/^[0-9a-f]{64}$/.test(replaces))
      ) {
        throw httpError(
          400,
          'BAD_REQUEST',
          'replaces must be the SHA-256 (hex) of the key file read',
        );
      }
      const event = {
        // The first key file makes the repository encrypted; later ones change its slots (`key push`).
        action: replaces === undefined ? 'encrypt' : 'key-slots',
        ...(identity ? { user: identity.user, keyId: identity.keyId } : {}),
        repo: request.repoName!,
        ip: request.ip,
      };
      try {
        await (
          await repoOf(request)
        ).adoptKeys(Buffer.from(`${JSON.stringify(request.body, null, 2)}\n`), replaces);
      } catch (error) {
        const reason = error instanceof Error ? error.message : 'failed';
        await auditOf(request, { ...event, outcome: 'denied', reason });
        throw error;
      }
      // After the first key file, the repository takes only sealed records.
      await auditOf(request, { ...event, outcome: 'ok' });
      return reply.status(204).send();
    },
  );

  app.post(
    '/:repo/refs/update',
    { config: { scope: 'write' }, schema: { body: body(schemas.refUpdateRequest) } },
    async (request) => {
      const { updates } = request.body as { updates: RefUpdate[] };
      const results: RefUpdateResult[] = await (
        await repoOf(request)
      ).updateRefs(updates, request.identity?.user ?? 'anonymous');
      const identity = request.identity;
      for (const result of results)
        metrics.refUpdates.inc({ result: result.ok ? 'ok' : (result.reason ?? 'rejected') });
      await auditOf(request, {
        action: 'ref-update',
        outcome: results.every((r) => r.ok) ? 'ok' : 'denied',
        ...(identity ? { user: identity.user, keyId: identity.keyId } : {}),
        repo: request.repoName!,
        ip: request.ip,
        refs: results.map((r) => ({
          ref: r.ref,
          old: r.old,
          new: r.new,
          result: r.ok ? 'ok' : (r.reason ?? 'rejected'),
        })),
      });
      return { results };
    },
  );

  registerLfsRoutes(app, {
    serviceFor,
    deny,
    transferToken: async (identity, ttl) =>
      (await issueAccessToken(await signingKeys.current(), identity, ttl)).token,
    tmpDir: root.scratchDir,
    audit: auditOf,
    maxObjectBytes: options.maxLfsObjectBytes ?? DEFAULTS.maxLfsObjectBytes,
    countSent: (bytes) => metrics.bytesOut.inc(bytes),
    direct: options.lfsDirect ?? true,
  });

  if (options.ui ?? true) {
    registerUiRoutes(app, {
      root,
      serviceFor,
      allowAnonymousRead: options.allowAnonymousRead === true,
      secure: options.tls !== undefined,
      authenticate: async (key) => {
        const record = await tokens.authenticate(key);
        return (
          record && { user: record.user, keyId: record.id, repo: record.repo, scope: record.scope }
        );
      },
      issueSession: async (identity, ttl) =>
        (await issueAccessToken(await signingKeys.current(), identity, ttl)).token,
      signInFailed: async (request, reason) => {
        metrics.authFailures.inc({ status: '401' });
        await auditOf(request, { action: 'auth', outcome: 'denied', ip: request.ip, reason });
        const wait = authFailures.take(request.ip);
        if (wait > 0) throw rateLimited(wait, 'auth-failures');
      },
      audit: auditOf,
      recentEvents: (repo, limit) => recentAuditEvents(root, repo, limit),
      previewCacheDir:
        options.previewCacheDir ??
        (root.localDir !== undefined
          ? path.join(root.localDir, SERVER_STATE_DIR, 'previews')
          : path.join(root.scratchDir, 'previews')),
    });
  }

  app.addHook('onClose', async () => {
    await audit.close();
  });
  return app;
}
