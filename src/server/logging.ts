/**
 * The server's logs (docs/observability.md): one JSON object per line
 * (pino, through Fastify's own logger), each line of a request carrying its
 * request ID (`reqId`, also sent back in the `x-request-id` header), and no
 * secret on any line.
 *
 * Secrets are kept out in three layers, each enough for what it covers:
 * 1. what the server chooses to log is built from scrubbed parts (the
 *    request line with its query values redacted, headers with their
 *    credentials replaced, errors rebuilt from a few known fields);
 * 2. pino's `redact` removes credential headers wherever a logged object
 *    holds them under the usual paths;
 * 3. every finished line passes `scrubText` before it is written, which
 *    replaces anything shaped like a credential: API keys (`mgk_…`), JWTs,
 *    `Bearer`/`Basic` credentials, signatures and tokens in URL query
 *    strings (S3 `X-Amz-Signature`, Azure SAS `sig`, GCS `X-Goog-Signature`,
 *    `token`, `access_token`, …), passwords in URLs, connection-string keys
 *    and PEM private keys.
 */
import { randomUUID } from 'node:crypto';
import { closeSync, constants, openSync, writeSync } from 'node:fs';
import {
  LogController,
  type FastifyReply,
  type FastifyRequest,
  type FastifyServerOptions,
} from 'fastify';
import { MediaGitError } from '../errors.ts';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export function isLogLevel(value: string): value is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(value);
}

/** Where log lines go: anything with a `write` of whole lines (stderr, a LogFile). */
export interface LogDestination {
  write(line: string): unknown;
}

export interface LogOptions {
  readonly level: LogLevel;
  readonly destination: LogDestination;
}

export const REDACTED = '[redacted]';

/**
 * Names whose values are credentials wherever they appear as `name=value`
 * (URL query strings, connection strings, `Authorization: AWS4-HMAC-SHA256
 * …, Signature=…`). Matched case-insensitively, as whole names.
 */
const SECRET_PARAMS = [
  'x-amz-signature',
  'x-amz-credential',
  'x-amz-security-token',
  'x-goog-signature',
  'x-goog-credential',
  'signature',
  'sig',
  'token',
  'access_token',
  'refresh_token',
  'id_token',
  'api_key',
  'apikey',
  'api-key',
  'key',
  'code',
  'password',
  'passwd',
  'pwd',
  'secret',
  'client_secret',
  'accountkey',
  'sharedaccesssignature',
  'sharedaccesskey',
  'googleaccessid',
];

const PARAM_PATTERN = new RegExp(
  `(^|[?&;,\\s"'(])(${SECRET_PARAMS.map((name) => name.replace(/[-_]/g, '[-_]')).join('|')})=([^&;,\\s"'\\\\<>#]*)`,
  'gi',
);
const USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/)[^/?#\s"'@:]*:[^/?#\s"'@]*@/gi;
const AUTH_SCHEME = /\b(bearer|basic|token|digest|negotiate)(\s+)[A-Za-z0-9._~+/=-]{8,}/gi;
const API_KEY = /mgk_[A-Za-z0-9_-]{16,}/g;
const JWT = /eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*/g;
const PRIVATE_KEY =
  /-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(-----END [A-Z ]*PRIVATE KEY-----|$)/g;

/**
 * `text` with every credential-shaped part replaced by '[redacted]' (see
 * the module comment). Idempotent; what it leaves is safe to log.
 */
export function scrubText(text: string): string {
  return text
    .replace(PRIVATE_KEY, REDACTED)
    .replace(JWT, REDACTED)
    .replace(API_KEY, REDACTED)
    .replace(USERINFO, `$1${REDACTED}@`)
    .replace(AUTH_SCHEME, `$1$2${REDACTED}`)
    .replace(PARAM_PATTERN, (_match, lead: string, name: string) => `${lead}${name}=${REDACTED}`);
}

/** Headers whose values are credentials, whatever they hold. */
const SECRET_HEADERS = new Set([
  'authorization',
  'proxy-authorization',
  'cookie',
  'set-cookie',
  'x-api-key',
  'x-auth-token',
  'x-amz-security-token',
  'x-ms-encryption-key',
  'x-amz-server-side-encryption-customer-key',
  'x-goog-encryption-key',
]);

/** Object keys whose values are dropped from logged data, whatever they hold. */
const SECRET_KEY =
  /authorization|cookie|password|passwd|secret|token|signature|credential|api.?key/i;

/** A request's headers for a log line: credential headers replaced, the rest scrubbed. */
export function loggableHeaders(
  headers: Readonly<Record<string, string | string[] | undefined>>,
): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    if (SECRET_HEADERS.has(name.toLowerCase())) out[name] = REDACTED;
    else out[name] = Array.isArray(value) ? value.map(scrubText) : scrubText(value);
  }
  return out;
}

/** A copy of any value with credential-named keys dropped and strings scrubbed (bounded depth). */
export function scrubValue(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return scrubText(value);
  if (typeof value !== 'object' || value === null) return value;
  if (depth >= 6) return '[…]';
  if (Array.isArray(value)) return value.slice(0, 100).map((v) => scrubValue(v, depth + 1));
  if (Buffer.isBuffer(value) || ArrayBuffer.isView(value)) return `[${value.byteLength} bytes]`;
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    out[key] = SECRET_KEY.test(key) && key !== 'keyId' ? REDACTED : scrubValue(v, depth + 1);
  }
  return out;
}

interface LoggedError {
  type: string;
  message: string;
  code?: string;
  statusCode?: number;
  data?: unknown;
  /** An AWS SDK error's request facts (the store's request ID, for its support). */
  $metadata?: unknown;
  stack?: string;
  cause?: LoggedError | string;
}

/**
 * An error as a log field: type, code, message and stack, a MediaGitError's
 * data and an AWS SDK error's `$metadata`, then its causes, all scrubbed.
 * Nothing else an error object carries is logged (SDK errors hold the raw
 * response, whose request line may be a signed URL).
 */
export function serializeError(error: unknown, depth = 0): LoggedError | string {
  if (!(error instanceof Error)) return scrubText(String(error));
  const fields = error as Error & {
    code?: unknown;
    statusCode?: unknown;
    $metadata?: Record<string, unknown>;
  };
  const logged: LoggedError = {
    type: error.constructor?.name ?? error.name,
    message: scrubText(error.message),
  };
  if (typeof fields.code === 'string') logged.code = fields.code;
  if (typeof fields.statusCode === 'number') logged.statusCode = fields.statusCode;
  if (error instanceof MediaGitError && Object.keys(error.data).length > 0) {
    logged.data = scrubValue(error.data);
  }
  if (typeof fields.$metadata === 'object' && fields.$metadata !== null) {
    const { httpStatusCode, requestId, extendedRequestId, attempts } = fields.$metadata;
    logged.$metadata = scrubValue({ httpStatusCode, requestId, extendedRequestId, attempts });
  }
  if (error.stack) logged.stack = scrubText(error.stack);
  if (error.cause !== undefined && depth < 4) logged.cause = serializeError(error.cause, depth + 1);
  return logged;
}

/** The `req` field of a log line (what Fastify's serializer gives, scrubbed). */
function serializeRequest(request: FastifyRequest): Record<string, unknown> {
  return {
    method: request.method,
    url: scrubText(request.url),
    host: request.host,
    remoteAddress: request.ip,
    remotePort: request.socket?.remotePort,
  };
}

function serializeReply(reply: FastifyReply): Record<string, unknown> {
  return { statusCode: reply.statusCode };
}

/**
 * The largest request ID taken from a client; longer ones (and ones with
 * other characters, or shaped like a credential) are replaced by a fresh ID.
 */
const MAX_REQUEST_ID = 128;
const REQUEST_ID = /^[A-Za-z0-9][A-Za-z0-9._:@+/=-]*$/;

/**
 * A request's ID: the client's or proxy's `x-request-id` when it is short,
 * of safe characters and not credential-shaped, else a fresh UUID. Given
 * IDs are not checked for uniqueness (a proxy's are unique; a client that
 * reuses one only confuses its own traces).
 */
export function requestIdOf(header: string | string[] | undefined): string {
  const given = Array.isArray(header) ? header[0] : header;
  if (
    given !== undefined &&
    given.length <= MAX_REQUEST_ID &&
    REQUEST_ID.test(given) &&
    scrubText(given) === given
  ) {
    return given;
  }
  return randomUUID();
}

type FastifyLoggerConfig = Exclude<FastifyServerOptions['logger'], boolean | undefined>;

/** Fastify's logger options: JSON lines, ISO times, level names, the redaction above. */
export function fastifyLogger(options: LogOptions): FastifyLoggerConfig {
  const config = {
    level: options.level,
    stream: options.destination,
    timestamp: () => `,"time":"${new Date().toISOString()}"`,
    formatters: { level: (label: string) => ({ level: label }) },
    serializers: {
      req: serializeRequest,
      res: serializeReply,
      err: serializeError,
    },
    redact: {
      paths: [
        'req.headers.authorization',
        'req.headers["proxy-authorization"]',
        'req.headers.cookie',
        'req.headers["x-api-key"]',
        'headers.authorization',
        'headers["proxy-authorization"]',
        'headers.cookie',
        'headers["x-api-key"]',
        'res.headers["set-cookie"]',
      ],
      censor: REDACTED,
    },
    hooks: { streamWrite: scrubText },
  };
  // Fastify types its serializers' results more narrowly than pino takes them
  // (an error serializer must return a stack even for a non-Error).
  return config as unknown as FastifyLoggerConfig;
}

/**
 * Fastify's own log lines, less its pair of lines per request: the server
 * writes one line per finished request itself (server/app.ts), with the
 * route, user, repository and error code Fastify's lines lack. Fastify's
 * other lines (a failed response stream, a failed serialisation) stay.
 */
export class RequestLogController extends LogController {
  override incomingRequest(): void {}
  override requestCompleted(): void {}
}

/**
 * A log file opened for appending (0640: it names users and addresses),
 * written one whole line per write(2) so lines from a crash are complete up
 * to the last one. `reopen` (on SIGHUP) starts a new file after the old one
 * was renamed by a log rotator, as nginx and most daemons do.
 */
export class LogFile implements LogDestination {
  readonly path: string;
  #fd: number;

  constructor(file: string) {
    this.path = file;
    this.#fd = LogFile.#open(file);
  }

  static #open(file: string): number {
    // Any file the server may write: a regular file, or /dev/stdout or a
    // pipe for a collector (a folder fails to open with EISDIR).
    return openSync(file, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT, 0o640);
  }

  write(line: string): boolean {
    // A line logged after close (a late event during shutdown) is dropped.
    if (this.#fd < 0) return false;
    const bytes = Buffer.from(line, 'utf8');
    let offset = 0;
    while (offset < bytes.length) offset += writeSync(this.#fd, bytes, offset);
    return true;
  }

  /** Opens the path again (after rotation); the old descriptor is closed. */
  reopen(): void {
    const fd = LogFile.#open(this.path);
    const old = this.#fd;
    this.#fd = fd;
    closeSync(old);
  }

  close(): void {
    const fd = this.#fd;
    this.#fd = -1;
    if (fd >= 0) closeSync(fd);
  }
}
