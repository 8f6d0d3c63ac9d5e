/**
 * A Google Cloud Storage server on loopback for MediaGit's tests, run as its
 * own process: `node gcs-server.ts <dir> <bucket>...` prints `{"port": n}`
 * once listening.
 *
 * Why this exists: no GCS-protocol server from the npm registry or Debian
 * runs on these machines without the network. The Cloud Storage emulator of
 * `firebase-tools` starts only after downloading its rules runtime (a JAR
 * fetched from storage.googleapis.com at first start), and Google's
 * `fake-gcs-server` is a Go program not packaged for Debian or npm. So this
 * is a faithful subset of the GCS JSON API as Google documents it, exactly
 * the part the official SDK (@google-cloud/storage) uses for MediaGit:
 *
 * - objects: GET metadata, GET `alt=media` with `Range` (206, 416 past the
 *   end), DELETE, list with `prefix` / `maxResults` / `pageToken` (at most
 *   1,000 per page, in name order);
 * - uploads: `POST /upload/storage/v1/b/<bucket>/o?uploadType=multipart|media`
 *   (resumable uploads are refused with 501: MediaGit does not use them);
 * - preconditions: `ifGenerationMatch` (0 = must not exist) and
 *   `ifMetagenerationMatch` on uploads and deletes, checked under a per-key
 *   lock, answering 412 `conditionNotMet` as GCS does;
 * - generations: a fresh, increasing number on every write;
 * - atomic writes: a body is written to a temp file, fsynced and renamed into
 *   place only when complete; a cut upload leaves nothing;
 * - V4 signed URLs (XML API paths `/<bucket>/<object>`): the signature is
 *   checked with the public key of the service account named in
 *   `X-Goog-Credential` (keys registered in `GCS_EMULATOR_KEYS`, a JSON map
 *   of client_email to public key PEM), with expiry, and the signed
 *   `x-goog-if-generation-match` header enforced;
 * - errors in GCS's JSON shape; a missing bucket is 404 "The specified
 *   bucket does not exist.".
 *
 * Not modelled: authentication of JSON API calls (the SDK sends none to a
 * custom endpoint, like every GCS emulator), ACLs, object metadata beyond
 * size / generation / md5, composition, rewrite, versioning. Requests are
 * counted by method at `GET /_emulator/stats` (`POST /_emulator/reset`).
 */
import { createHash, createPublicKey, createVerify, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';

interface StoredObject {
  readonly name: string;
  readonly size: number;
  readonly generation: string;
  readonly md5: string;
  readonly updated: string;
  readonly file: string;
}

const [dir, ...bucketNames] = process.argv.slice(2);
if (!dir) {
  process.stderr.write('usage: gcs-server.ts <dir> <bucket>...\n');
  process.exit(2);
}
const buckets = new Map<string, Map<string, StoredObject>>();
for (const name of bucketNames) buckets.set(name, new Map());
const publicKeys = new Map<string, string>(
  Object.entries(JSON.parse(process.env.GCS_EMULATOR_KEYS ?? '{}') as Record<string, string>),
);

let lastGeneration = Date.now() * 1000;
function nextGeneration(): string {
  lastGeneration = Math.max(lastGeneration + 1, Date.now() * 1000);
  return String(lastGeneration);
}

let stats: Record<string, number> = {};

class HttpError extends Error {
  readonly status: number;
  readonly reason: string;
  constructor(status: number, reason: string, message: string) {
    super(message);
    this.status = status;
    this.reason = reason;
  }
}

const noBucket = (): HttpError =>
  new HttpError(404, 'notFound', 'The specified bucket does not exist.');
const noObject = (bucket: string, name: string): HttpError =>
  new HttpError(404, 'notFound', `No such object: ${bucket}/${name}`);
const conditionNotMet = (): HttpError =>
  new HttpError(
    412,
    'conditionNotMet',
    'At least one of the pre-conditions you specified did not hold.',
  );

function bucketOf(name: string): Map<string, StoredObject> {
  const bucket = buckets.get(name);
  if (!bucket) throw noBucket();
  return bucket;
}

// Writes and deletes of one key run one at a time.
const keyLocks = new Map<string, Promise<void>>();
async function withKeyLock<T>(key: string, work: () => Promise<T>): Promise<T> {
  const previous = keyLocks.get(key) ?? Promise.resolve();
  let release!: () => void;
  const mine = new Promise<void>((resolve) => (release = resolve));
  const chain = previous.then(() => mine);
  keyLocks.set(key, chain);
  await previous;
  try {
    return await work();
  } finally {
    release();
    if (keyLocks.get(key) === chain) keyLocks.delete(key);
  }
}

function checkGeneration(existing: StoredObject | undefined, expected: string | null): void {
  if (expected === null) return;
  if (expected === '0' ? existing !== undefined : existing?.generation !== expected) {
    throw conditionNotMet();
  }
}

function resource(bucket: string, object: StoredObject): Record<string, unknown> {
  return {
    kind: 'storage#object',
    id: `${bucket}/${object.name}/${object.generation}`,
    name: object.name,
    bucket,
    generation: object.generation,
    metageneration: '1',
    contentType: 'application/octet-stream',
    size: String(object.size),
    md5Hash: object.md5,
    updated: object.updated,
    timeCreated: object.updated,
  };
}

async function readBody(request: http.IncomingMessage): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of request) parts.push(part as Buffer);
  const body = Buffer.concat(parts);
  stats.bytesIn = (stats.bytesIn ?? 0) + body.length;
  return body;
}

/** The media part of a multipart/related upload body. */
function mediaOf(
  body: Buffer,
  contentType: string,
): { metadata: Record<string, unknown>; media: Buffer } {
  const boundary = /boundary="?([^";]+)"?/.exec(contentType)?.[1];
  if (!boundary) throw new HttpError(400, 'invalid', 'multipart upload without a boundary');
  const delimiter = Buffer.from(`--${boundary}`);
  const parts: Buffer[] = [];
  let at = body.indexOf(delimiter);
  while (at !== -1) {
    const start = at + delimiter.length;
    if (body.subarray(start, start + 2).toString() === '--') break;
    const next = body.indexOf(delimiter, start);
    if (next === -1) throw new HttpError(400, 'invalid', 'multipart upload body is cut short');
    parts.push(body.subarray(start, next));
    at = next;
  }
  if (at === -1 || parts.length !== 2) {
    throw new HttpError(400, 'invalid', 'multipart upload must have a metadata and a media part');
  }
  const content = (part: Buffer): Buffer => {
    const headerEnd = part.indexOf('\r\n\r\n');
    if (headerEnd === -1) throw new HttpError(400, 'invalid', 'multipart part without headers');
    // The part ends with the CRLF before the next delimiter.
    return part.subarray(headerEnd + 4, part.length - 2);
  };
  return {
    metadata: JSON.parse(content(parts[0]!).toString('utf8') || '{}') as Record<string, unknown>,
    media: content(parts[1]!),
  };
}

async function store(
  bucketName: string,
  name: string,
  media: Buffer,
  ifGenerationMatch: string | null,
): Promise<StoredObject> {
  const bucket = bucketOf(bucketName);
  if (name === '' || name.length > 1024) throw new HttpError(400, 'invalid', 'Invalid object name');
  const file = path.join(dir!, bucketName, createHash('sha256').update(name).digest('hex'));
  const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  await fsp.mkdir(path.dirname(file), { recursive: true });
  const handle = await fsp.open(tmp, 'w');
  try {
    await handle.writeFile(media);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    return await withKeyLock(`${bucketName}/${name}`, async () => {
      checkGeneration(bucket.get(name), ifGenerationMatch);
      const generation = nextGeneration();
      const final = `${file}.${generation}`;
      await fsp.rename(tmp, final);
      const previous = bucket.get(name);
      const object: StoredObject = {
        name,
        size: media.length,
        generation,
        md5: createHash('md5').update(media).digest('base64'),
        updated: new Date().toISOString(),
        file: final,
      };
      bucket.set(name, object);
      if (previous) await fsp.rm(previous.file, { force: true });
      return object;
    });
  } finally {
    await fsp.rm(tmp, { force: true });
  }
}

function parseRange(
  header: string | undefined,
  size: number,
): { start: number; end: number } | undefined {
  if (!header) return undefined;
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match) return undefined;
  let start: number;
  let end: number;
  if (match[1] === '') {
    const suffix = Number(match[2]);
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(match[1]);
    end = match[2] === '' ? size - 1 : Math.min(Number(match[2]), size - 1);
  }
  if (start >= size || end < start) {
    throw new HttpError(
      416,
      'requestedRangeNotSatisfiable',
      'The requested range cannot be satisfied.',
    );
  }
  return { start, end };
}

async function sendMedia(
  request: http.IncomingMessage,
  response: http.ServerResponse,
  bucketName: string,
  object: StoredObject,
): Promise<void> {
  const range = parseRange(request.headers.range, object.size);
  const headers: http.OutgoingHttpHeaders = {
    'content-type': 'application/octet-stream',
    'x-goog-generation': object.generation,
    'x-goog-hash': `md5=${object.md5}`,
    'x-goog-stored-content-length': String(object.size),
    etag: `"${object.md5}"`,
    'accept-ranges': 'bytes',
  };
  void bucketName;
  if (request.method === 'HEAD') {
    response.writeHead(200, { ...headers, 'content-length': object.size });
    response.end();
    return;
  }
  if (range) {
    response.writeHead(206, {
      ...headers,
      'content-length': range.end - range.start + 1,
      'content-range': `bytes ${range.start}-${range.end}/${object.size}`,
    });
  } else {
    response.writeHead(200, { ...headers, 'content-length': object.size });
  }
  if (object.size === 0) {
    response.end();
    return;
  }
  const stream = fs.createReadStream(object.file, range ?? {});
  stream.pipe(response);
  await new Promise<void>((resolve) => {
    stream.once('error', () => {
      response.destroy();
      resolve();
    });
    response.once('close', resolve);
  });
}

function json(response: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  response.writeHead(status, {
    'content-type': 'application/json; charset=UTF-8',
    'content-length': Buffer.byteLength(text),
  });
  response.end(text);
}

function list(bucketName: string, query: URLSearchParams): Record<string, unknown> {
  const bucket = bucketOf(bucketName);
  const prefix = query.get('prefix') ?? '';
  const max = Math.min(Number(query.get('maxResults') ?? 1000) || 1000, 1000);
  const after = query.get('pageToken')
    ? Buffer.from(query.get('pageToken')!, 'base64url').toString('utf8')
    : undefined;
  const names = [...bucket.keys()]
    .filter((name) => name.startsWith(prefix) && (after === undefined || name > after))
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const page = names.slice(0, max);
  return {
    kind: 'storage#objects',
    items: page.map((name) => resource(bucketName, bucket.get(name)!)),
    ...(names.length > max
      ? { nextPageToken: Buffer.from(page[page.length - 1]!, 'utf8').toString('base64url') }
      : {}),
  };
}

// --- V4 signed URLs (XML API) ------------------------------------------------

/** RFC 3986 encoding as Google's signer applies it (slashes kept in paths). */
function encode(value: string, keepSlash: boolean): string {
  return encodeURIComponent(value)
    .replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
    .replace(keepSlash ? /%2F/g : /$^/, '/');
}

function checkSignature(
  request: http.IncomingMessage,
  url: URL,
  bucketName: string,
  objectName: string,
): void {
  const q = url.searchParams;
  const denied = (why: string): HttpError => new HttpError(403, 'SignatureDoesNotMatch', why);
  if (q.get('X-Goog-Algorithm') !== 'GOOG4-RSA-SHA256')
    throw denied('unsupported signing algorithm');
  const credential = q.get('X-Goog-Credential') ?? '';
  const email = credential.split('/')[0] ?? '';
  const key = publicKeys.get(email);
  if (!key) throw new HttpError(403, 'AccessDenied', `unknown service account ${email}`);
  const date = q.get('X-Goog-Date') ?? '';
  const stamp = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(date);
  if (!stamp) throw denied('bad X-Goog-Date');
  const signedAt = Date.UTC(
    +stamp[1]!,
    +stamp[2]! - 1,
    +stamp[3]!,
    +stamp[4]!,
    +stamp[5]!,
    +stamp[6]!,
  );
  const expires = Number(q.get('X-Goog-Expires'));
  if (!(Date.now() <= signedAt + expires * 1000)) {
    throw new HttpError(400, 'ExpiredToken', 'Invalid argument: the signed URL has expired.');
  }
  const signedHeaders = (q.get('X-Goog-SignedHeaders') ?? '').split(';').filter(Boolean);
  const headerLines = signedHeaders
    .map((name) => {
      const value = name === 'host' ? url.hostname : request.headers[name];
      if (value === undefined) throw denied(`signed header ${name} missing from the request`);
      return `${name}:${String(value)
        .trim()
        .replace(/\s{2,}/g, ' ')}\n`;
    })
    .join('');
  const canonicalQuery = [...q.entries()]
    .filter(([name]) => name !== 'X-Goog-Signature')
    .map(([name, value]) => [encode(name, false), encode(value, false)] as const)
    .sort((a, b) => (a[0] < b[0] ? -1 : 1))
    .map(([name, value]) => `${name}=${value}`)
    .join('&');
  const canonicalRequest = [
    request.method,
    `/${bucketName}/${encode(objectName, true)}`,
    canonicalQuery,
    headerLines,
    signedHeaders.join(';'),
    'UNSIGNED-PAYLOAD',
  ].join('\n');
  const toSign = [
    'GOOG4-RSA-SHA256',
    date,
    credential.split('/').slice(1).join('/'),
    createHash('sha256').update(canonicalRequest).digest('hex'),
  ].join('\n');
  const verifier = createVerify('RSA-SHA256');
  verifier.update(toSign);
  const signature = Buffer.from(q.get('X-Goog-Signature') ?? '', 'hex');
  if (!verifier.verify(createPublicKey(key), signature)) {
    throw denied('The request signature we calculated does not match the signature you provided.');
  }
}

async function signedRequest(
  request: http.IncomingMessage,
  response: http.ServerResponse,
  url: URL,
  bucketName: string,
  objectName: string,
): Promise<void> {
  checkSignature(request, url, bucketName, objectName);
  const bucket = bucketOf(bucketName);
  if (request.method === 'PUT') {
    const body = await readBody(request);
    const condition = request.headers['x-goog-if-generation-match'];
    const object = await store(
      bucketName,
      objectName,
      body,
      typeof condition === 'string' ? condition : null,
    );
    response.writeHead(200, { etag: `"${object.md5}"`, 'x-goog-generation': object.generation });
    response.end();
    return;
  }
  if (request.method === 'GET' || request.method === 'HEAD') {
    const object = bucket.get(objectName);
    if (!object) throw new HttpError(404, 'NoSuchKey', 'The specified key does not exist.');
    await sendMedia(request, response, bucketName, object);
    return;
  }
  throw new HttpError(405, 'MethodNotAllowed', `${request.method} is not allowed on a signed URL`);
}

// --- routing -------------------------------------------------------------------

async function handle(request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
  const url = new URL(request.url ?? '/', `http://${request.headers.host ?? '127.0.0.1'}`);
  const method = request.method ?? 'GET';
  if (url.pathname === '/_emulator/stats') return json(response, 200, stats);
  if (url.pathname === '/_emulator/reset') {
    stats = {};
    return json(response, 200, {});
  }
  stats[method] = (stats[method] ?? 0) + 1;
  const q = url.searchParams;
  // XML API paths, as signed URLs use them: /<bucket>/<object>.
  const xmlPath = /^\/([^/]+)\/(.+)$/.exec(url.pathname);
  if (xmlPath && q.has('X-Goog-Signature')) {
    return signedRequest(
      request,
      response,
      url,
      decodeURIComponent(xmlPath[1]!),
      decodeURIComponent(xmlPath[2]!),
    );
  }
  // Object paths carry the name URL-encoded as one segment.
  const objectPath = /^\/(?:download\/)?(?:storage\/v1\/)?b\/([^/]+)\/o\/(.+)$/.exec(url.pathname);
  if (objectPath) {
    const bucketName = decodeURIComponent(objectPath[1]!);
    const name = decodeURIComponent(objectPath[2]!);
    const bucket = bucketOf(bucketName);
    if (method === 'GET') {
      const object = bucket.get(name);
      if (!object) throw noObject(bucketName, name);
      if (q.get('alt') === 'media') return sendMedia(request, response, bucketName, object);
      return json(response, 200, resource(bucketName, object));
    }
    if (method === 'DELETE') {
      await withKeyLock(`${bucketName}/${name}`, async () => {
        const object = bucket.get(name);
        checkGeneration(object, q.get('ifGenerationMatch'));
        if (!object) throw noObject(bucketName, name);
        bucket.delete(name);
        await fsp.rm(object.file, { force: true });
      });
      response.writeHead(204);
      response.end();
      return;
    }
    throw new HttpError(405, 'invalid', `${method} is not supported on objects here`);
  }
  const listPath = /^\/(?:storage\/v1\/)?b\/([^/]+)\/o\/?$/.exec(url.pathname);
  if (listPath && method === 'GET') {
    return json(response, 200, list(decodeURIComponent(listPath[1]!), q));
  }
  const uploadPath = /^\/upload\/storage\/v1\/b\/([^/]+)\/o\/?$/.exec(url.pathname);
  if (uploadPath && method === 'POST') {
    const bucketName = decodeURIComponent(uploadPath[1]!);
    bucketOf(bucketName);
    const type = q.get('uploadType');
    const body = await readBody(request);
    let name = q.get('name') ?? '';
    let media: Buffer;
    if (type === 'multipart') {
      const parsed = mediaOf(body, String(request.headers['content-type'] ?? ''));
      media = parsed.media;
      if (!name && typeof parsed.metadata.name === 'string') name = parsed.metadata.name;
    } else if (type === 'media') {
      media = body;
    } else {
      throw new HttpError(
        501,
        'notImplemented',
        `uploadType=${type} is not supported by this emulator`,
      );
    }
    const object = await store(bucketName, name, media, q.get('ifGenerationMatch'));
    return json(response, 200, resource(bucketName, object));
  }
  const bucketPath = /^\/(?:storage\/v1\/)?b\/([^/]+)\/?$/.exec(url.pathname);
  if (bucketPath && method === 'GET') {
    const name = decodeURIComponent(bucketPath[1]!);
    bucketOf(name);
    return json(response, 200, { kind: 'storage#bucket', id: name, name });
  }
  if (/^\/(?:storage\/v1\/)?b\/?$/.test(url.pathname) && method === 'POST') {
    const { name } = JSON.parse((await readBody(request)).toString('utf8')) as { name: string };
    if (buckets.has(name)) throw new HttpError(409, 'conflict', 'The bucket already exists.');
    buckets.set(name, new Map());
    return json(response, 200, { kind: 'storage#bucket', id: name, name });
  }
  throw new HttpError(404, 'notFound', `Not Found: ${method} ${url.pathname}`);
}

const server = http.createServer((request, response) => {
  handle(request, response).catch((error: unknown) => {
    if (response.headersSent) {
      response.destroy();
      return;
    }
    // Drain what the client is still sending so it reads the answer.
    request.resume();
    const status = error instanceof HttpError ? error.status : 500;
    const reason = error instanceof HttpError ? error.reason : 'backendError';
    const message = error instanceof Error ? error.message : String(error);
    json(response, status, {
      error: { code: status, message, errors: [{ message, domain: 'global', reason }] },
    });
  });
});
server.keepAliveTimeout = 30_000;
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(
    `${JSON.stringify({ port: typeof address === 'object' && address ? address.port : 0 })}\n`,
  );
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
