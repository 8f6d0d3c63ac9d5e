/**
 * s3rver (the npm S3 emulator) made faithful enough to stand in for S3 in
 * MediaGit's tests, run as its own process: `node s3-server.ts <dir>
 * <bucket>...` prints `{"port": n}` once listening.
 *
 * s3rver ignores conditional writes and writes objects in place (a reader
 * can see half an upload; a cut upload leaves a truncated object). Real S3
 * does neither, so inside this process:
 * - every write to a key (PUT, POST completing a multipart upload, DELETE)
 *   holds that key's lock until its answer is sent, and a PUT or completion
 *   with `If-None-Match: *` or `If-Match: <etag>` is checked against the
 *   object's ETag under that lock (412 PreconditionFailed, or 404 NoSuchKey
 *   for If-Match on a missing key, as S3 answers);
 * - objects are written to a temp file and renamed into place (then their
 *   ETag), so an object is never seen partly written;
 * - requests are counted by method, with the request body bytes received,
 *   at `GET /_emulator/stats` (`POST /_emulator/reset` zeroes them);
 *   with MEDIAGIT_EMULATOR_TRACE set, each request's method and URL are
 *   written to stderr, which startS3 passes on (to see what a command asks).
 */
import { randomBytes } from 'node:crypto';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
// @ts-expect-error s3rver has no types
import S3rver from 's3rver';
// @ts-expect-error s3rver has no types
import FilesystemStore from 's3rver/lib/stores/filesystem.js';

interface StoredObject {
  bucket: string;
  key: string;
  content: Buffer | NodeJS.ReadableStream;
  metadata: Record<string, string>;
}

interface Store {
  getResourcePath(bucket: string, key: string, resource: string): string;
  getMetadata(
    bucket: string,
    key: string,
  ): Promise<{ etag: string; 'content-length'?: string | number }>;
  putMetadata(
    bucket: string,
    key: string,
    metadata: Record<string, string>,
    md5?: string,
  ): Promise<void>;
}

// Atomic writes: temp file, then rename, then the ETag (md5) and metadata.
FilesystemStore.prototype.putObject = async function putObject(this: Store, object: StoredObject) {
  const objectPath = this.getResourcePath(object.bucket, object.key, 'object');
  await fsp.mkdir(path.dirname(objectPath), { recursive: true });
  const tmp = `${objectPath}.${randomBytes(6).toString('hex')}.tmp`;
  const md5 = createHash('md5');
  let size = 0;
  try {
    if (Buffer.isBuffer(object.content)) {
      md5.update(object.content);
      size = object.content.length;
      await fsp.writeFile(tmp, object.content);
    } else {
      await pipeline(
        object.content,
        new Transform({
          transform(chunk: Buffer, _encoding, callback) {
            md5.update(chunk);
            size += chunk.length;
            callback(null, chunk);
          },
        }),
        fs.createWriteStream(tmp),
      );
    }
    await fsp.rename(tmp, objectPath);
  } catch (error) {
    await fsp.rm(tmp, { force: true });
    throw error;
  }
  const digest = md5.digest('hex');
  await this.putMetadata(object.bucket, object.key, object.metadata, digest);
  return { size, md5: digest };
};

// Ranged reads of an empty object: s3rver would promise one byte and send
// none (the client waits forever); S3 answers 416 (range not satisfiable).
const getObject = FilesystemStore.prototype.getObject as (
  this: Store,
  bucket: string,
  key: string,
  options?: { start?: number; end?: number },
) => Promise<unknown>;
FilesystemStore.prototype.getObject = async function (
  this: Store,
  bucket: string,
  key: string,
  options?: { start?: number; end?: number },
) {
  if (options && (options.start !== undefined || options.end)) {
    const metadata = await this.getMetadata(bucket, key).catch(() => undefined);
    if (metadata && Number(metadata['content-length']) === 0) {
      return getObject.call(this, bucket, key, { start: 1, end: 0 });
    }
  }
  return getObject.call(this, bucket, key, options);
};

const [directory, ...buckets] = process.argv.slice(2);
if (!directory || buckets.length === 0) {
  process.stderr.write('usage: s3-server.ts <dir> <bucket>...\n');
  process.exit(2);
}
const s3 = new S3rver({
  directory,
  silent: process.env['S3RVER_VERBOSE'] !== '1',
  configureBuckets: buckets.map((name) => ({ name })),
});
await s3.configureBuckets();
const store = s3.store as Store;
const handle = s3.callback() as (req: http.IncomingMessage, res: http.ServerResponse) => void;

const stats: Record<string, number> = {};
const count = (name: string, n = 1): void => {
  stats[name] = (stats[name] ?? 0) + n;
};

/** One chain of writers per bucket/key: each waits for the one before it. */
const tails = new Map<string, Promise<void>>();
async function lockKey(id: string): Promise<() => void> {
  const previous = tails.get(id) ?? Promise.resolve();
  let release!: () => void;
  const mine = new Promise<void>((resolve) => (release = resolve));
  const tail = previous.then(() => mine);
  tails.set(id, tail);
  await previous;
  return () => {
    release();
    if (tails.get(id) === tail) tails.delete(id);
  };
}

function s3Error(res: http.ServerResponse, status: number, code: string, message: string): void {
  const body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message></Error>`;
  res.writeHead(status, {
    'content-type': 'application/xml',
    'content-length': Buffer.byteLength(body),
  });
  res.end(body);
}

const unquote = (etag: string): string => etag.replace(/^W\//, '').replace(/^"|"$/g, '');

const server = http.createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://emulator');
  if (url.pathname === '/_emulator/stats') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(stats));
    return;
  }
  if (url.pathname === '/_emulator/reset') {
    for (const key of Object.keys(stats)) delete stats[key];
    res.writeHead(204).end();
    return;
  }
  const method = req.method ?? 'GET';
  count(method);
  if (process.env['MEDIAGIT_EMULATOR_TRACE']) process.stderr.write(`EMU ${method} ${req.url}\n`);
  // Declared lengths (a listener here would start the body flowing too early).
  count('bytesIn', Number(req.headers['content-length'] ?? 0) || 0);
  const [, bucket = '', ...rest] = url.pathname.split('/');
  const key = decodeURIComponent(rest.join('/'));
  // Server gc's periodic look at its pending list, counted apart: how many
  // there are depends on how long a test runs, not on what it does.
  if (key.endsWith('gc/pending.json')) count(`${method} gc/pending.json`);
  const writes =
    key !== '' &&
    (method === 'PUT' ||
      method === 'DELETE' ||
      (method === 'POST' && url.searchParams.has('uploadId')));
  if (!writes || url.searchParams.has('partNumber')) {
    handle(req, res);
    return;
  }
  void (async () => {
    const release = await lockKey(`${bucket}/${key}`);
    res.once('close', release);
    const ifNoneMatch = req.headers['if-none-match'];
    const ifMatch = req.headers['if-match'];
    if (ifNoneMatch !== undefined || ifMatch !== undefined) {
      let current: string | undefined;
      try {
        current = unquote((await store.getMetadata(bucket, key)).etag);
      } catch {
        current = undefined;
      }
      if (ifNoneMatch === '*' && current !== undefined) {
        req.resume();
        return s3Error(
          res,
          412,
          'PreconditionFailed',
          'At least one of the pre-conditions you specified did not hold',
        );
      }
      if (ifMatch !== undefined && current === undefined) {
        req.resume();
        return s3Error(res, 404, 'NoSuchKey', 'The specified key does not exist.');
      }
      if (ifMatch !== undefined && unquote(ifMatch) !== current) {
        req.resume();
        return s3Error(
          res,
          412,
          'PreconditionFailed',
          'At least one of the pre-conditions you specified did not hold',
        );
      }
    }
    handle(req, res);
  })().catch((error: unknown) => {
    res.destroy(error instanceof Error ? error : new Error(String(error)));
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  const address = server.address() as { port: number };
  process.stdout.write(`${JSON.stringify({ port: address.port })}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
