/**
 * A client of the Git LFS HTTP API (Batch, basic transfers, File Locking),
 * as `mediagit serve` and other LFS servers speak it
 * (https://github.com/git-lfs/git-lfs/blob/main/docs/api/): what MediaGit's
 * filter uses to fetch content it lacks and upload content before a push,
 * and what `mediagit lock` uses. Credentials are sent as `Bearer` (a
 * MediaGit API key or JWT).
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import { MediaGitError } from '../errors.ts';
import type { ObjectId } from '../odb/object-id.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import { isTransientNetworkError } from '../storage/http-errors.ts';
import { tlsConnectOptions, type TlsClientOptions } from '../security/tls-client.ts';

const JSON_RETRIES = 4;

export const LFS_MEDIA_TYPE = 'application/vnd.git-lfs+json';

export interface LfsAction {
  readonly href: string;
  readonly header?: Record<string, string> | undefined;
}

export interface BatchObject {
  readonly oid: ObjectId;
  readonly size: number;
  readonly actions?: { download?: LfsAction; upload?: LfsAction; verify?: LfsAction } | undefined;
  readonly error?: { code: number; message: string } | undefined;
}

export interface Lock {
  readonly id: string;
  readonly path: string;
  readonly locked_at: string;
  readonly owner?: { name: string } | undefined;
  /** The branch the lock holds (a MediaGit server with per-branch locks); absent: every branch. */
  readonly ref?: { name: string } | undefined;
}

export interface LfsClientOptions extends TlsClientOptions {
  readonly token?: string | undefined;
  /**
   * Retries of a JSON call after a network error or a busy answer (default
   * JSON_RETRIES); 0 for a caller that only wants a quick answer, such as
   * status asking who holds locks.
   */
  readonly retries?: number | undefined;
}

interface Answer {
  readonly status: number;
  readonly body: Buffer;
}

/** The LFS endpoint for a remote URL, as git-lfs derives it. */
export function lfsEndpoint(url: string): string {
  const trimmed = url.replace(/\/+$/, '');
  if (trimmed.endsWith('/info/lfs')) return trimmed;
  return trimmed.endsWith('.git') ? `${trimmed}/info/lfs` : `${trimmed}.git/info/lfs`;
}

export class LfsClient {
  readonly endpoint: string;
  readonly #options: LfsClientOptions;
  readonly #agent: http.Agent;

  constructor(endpoint: string, options: LfsClientOptions = {}) {
    this.endpoint = endpoint.replace(/\/+$/, '');
    this.#options = options;
    this.#agent = this.endpoint.startsWith('https:')
      ? new https.Agent({
          keepAlive: true,
          maxSockets: 8,
          ...tlsConnectOptions(options),
        })
      : new http.Agent({ keepAlive: true, maxSockets: 8 });
  }

  close(): void {
    this.#agent.destroy();
  }

  /**
   * Headers for an action's href: the action's own, plus our credential only
   * when the href is on the endpoint's origin and the action brings none (a
   * presigned URL on another host must never receive the user's key).
   */
  #actionHeaders(action: LfsAction, extra: Record<string, string> = {}): Record<string, string> {
    const own = Object.keys(action.header ?? {}).some((k) => k.toLowerCase() === 'authorization');
    const sameOrigin = new URL(action.href).origin === new URL(this.endpoint).origin;
    return { ...(own || !sameOrigin ? {} : this.#headers()), ...extra, ...action.header };
  }

  #headers(extra: Record<string, string> = {}): Record<string, string> {
    return {
      ...(this.#options.token ? { authorization: `Bearer ${this.#options.token}` } : {}),
      ...extra,
    };
  }

  /** One request; `body` may be bytes or a function streaming the body into the request. */
  #send(
    method: string,
    url: string,
    headers: Record<string, string>,
    body?: Uint8Array | ((write: (data: Uint8Array) => Promise<void>) => Promise<void>),
    sink?: (data: Buffer) => Promise<void>,
  ): Promise<Answer> {
    const target = new URL(url);
    const transport = target.protocol === 'https:' ? https : http;
    return new Promise<Answer>((resolve, reject) => {
      const request = transport.request(
        target,
        { method, headers, agent: this.#agent },
        (response) => {
          const status = response.statusCode ?? 0;
          const parts: Buffer[] = [];
          const ok = status >= 200 && status < 300;
          void (async () => {
            for await (const part of response as AsyncIterable<Buffer>) {
              if (ok && sink) await sink(part);
              else parts.push(part);
            }
          })().then(() => resolve({ status, body: Buffer.concat(parts) }), reject);
        },
      );
      request.on('error', (error) =>
        reject(
          new MediaGitError('LFS_UNREACHABLE', `${this.endpoint}: ${error.message}`, {
            kind: 'user',
            cause: error,
          }),
        ),
      );
      if (typeof body === 'function') {
        body(
          (data) =>
            new Promise<void>((done, fail) => {
              request.write(data, (error) => (error ? fail(error) : done()));
            }),
        ).then(
          () => request.end(),
          (error: unknown) => {
            request.destroy(error instanceof Error ? error : new Error(String(error)));
            reject(error);
          },
        );
      } else {
        request.end(body);
      }
    });
  }

  async #json<T>(
    method: string,
    route: string,
    body?: unknown,
    expect: number[] = [200],
  ): Promise<{ status: number; value: T }> {
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    // Every JSON call of the API is idempotent (the server makes locking and
    // unlocking so): a dropped connection or a busy server is retried.
    let answer: Answer;
    const retries = this.#options.retries ?? JSON_RETRIES;
    for (let attempt = 0; ; attempt++) {
      try {
        answer = await this.#send(
          method,
          `${this.endpoint}/${route}`,
          this.#headers({
            accept: LFS_MEDIA_TYPE,
            ...(data
              ? { 'content-type': LFS_MEDIA_TYPE, 'content-length': String(data.length) }
              : {}),
          }),
          data,
        );
      } catch (error) {
        if (attempt < retries && isTransientNetworkError(error)) {
          await sleep(100 * 2 ** attempt);
          continue;
        }
        throw error;
      }
      if (attempt < retries && [429, 502, 503, 504].includes(answer.status)) {
        await sleep(200 * 2 ** attempt);
        continue;
      }
      break;
    }
    let value: unknown;
    try {
      value = JSON.parse(answer.body.toString('utf8'));
    } catch {
      value = undefined;
    }
    if (!expect.includes(answer.status)) throw apiError(this.endpoint, route, answer.status, value);
    return { status: answer.status, value: value as T };
  }

  async batch(
    operation: 'download' | 'upload',
    objects: readonly { oid: ObjectId; size: number }[],
    ref?: string,
  ): Promise<BatchObject[]> {
    const { value } = await this.#json<{ objects?: BatchObject[] }>('POST', 'objects/batch', {
      operation,
      transfers: ['basic'],
      objects: objects.map(({ oid, size }) => ({ oid, size })),
      hash_algo: 'sha256',
      ...(ref ? { ref: { name: ref } } : {}),
    });
    return value.objects ?? [];
  }

  /** Downloads an object into `file` (created), checking its size and SHA-256. */
  async download(object: BatchObject, file: string): Promise<void> {
    const action = object.actions?.download;
    if (!action) throw objectError(object, 'the server offered no download');
    const handle = await fs.open(file, 'wx', 0o600);
    const sha = createHash('sha256');
    let size = 0;
    try {
      const answer = await this.#send(
        'GET',
        action.href,
        this.#actionHeaders(action),
        undefined,
        async (part) => {
          sha.update(part);
          size += part.length;
          await handle.write(part);
        },
      );
      if (answer.status !== 200)
        throw apiError(this.endpoint, action.href, answer.status, safeJson(answer.body));
    } finally {
      await handle.close();
    }
    if (size !== object.size || sha.digest('hex') !== object.oid) {
      throw new MediaGitError(
        'LFS_BAD_DOWNLOAD',
        `downloaded ${object.oid} does not match its OID and size (${size} bytes)`,
        {
          kind: 'user',
        },
      );
    }
  }

  /** Uploads an object whose bytes `produce` writes, then verifies it when asked to. */
  async upload(
    object: BatchObject,
    produce: (write: (data: Uint8Array) => Promise<void>) => Promise<void>,
  ): Promise<void> {
    const upload = object.actions?.upload;
    if (upload) {
      const answer = await this.#send(
        'PUT',
        upload.href,
        this.#actionHeaders(upload, {
          'content-type': 'application/octet-stream',
          'content-length': String(object.size),
        }),
        produce,
      );
      if (answer.status < 200 || answer.status >= 300) {
        throw apiError(this.endpoint, upload.href, answer.status, safeJson(answer.body));
      }
    }
    const verify = object.actions?.verify;
    if (verify) {
      const data = Buffer.from(JSON.stringify({ oid: object.oid, size: object.size }));
      const answer = await this.#send(
        'POST',
        verify.href,
        this.#actionHeaders(verify, {
          'content-type': LFS_MEDIA_TYPE,
          accept: LFS_MEDIA_TYPE,
          'content-length': String(data.length),
        }),
        data,
      );
      if (answer.status !== 200)
        throw apiError(this.endpoint, verify.href, answer.status, safeJson(answer.body));
    }
  }

  /**
   * Locks `path` on `ref`. `base`, the client's HEAD commit, is MediaGit's
   * extension: a MediaGit server refuses the lock (LOCK_STALE) when the file
   * changed on the branch since that commit.
   */
  async createLock(path: string, ref?: string, base?: string): Promise<Lock> {
    const { status, value } = await this.#json<{
      lock: Lock;
      message?: string;
      stale?: { ref: string; tip: string };
    }>(
      'POST',
      'locks',
      { path, ...(ref ? { ref: { name: ref } } : {}), ...(base ? { base } : {}) },
      [201, 409],
    );
    if (status === 409 && value.stale) {
      throw new MediaGitError('LOCK_STALE', value.message ?? `${path} is out of date`, {
        kind: 'user',
        data: { ref: value.stale.ref, tip: value.stale.tip },
      });
    }
    if (status === 409) {
      throw new MediaGitError(
        'LOCK_EXISTS',
        `${path} is already locked by ${value.lock?.owner?.name ?? 'someone'} (lock ${value.lock?.id ?? '?'})`,
        { kind: 'user', data: { lock: value.lock } },
      );
    }
    return value.lock;
  }

  /** Locks, all or those on `path`, with `id`, or applying to branch `refspec`. */
  async listLocks(filter: { path?: string; id?: string; refspec?: string } = {}): Promise<Lock[]> {
    const locks: Lock[] = [];
    let cursor: string | undefined;
    do {
      const query = new URLSearchParams();
      if (filter.path) query.set('path', filter.path);
      if (filter.id) query.set('id', filter.id);
      if (filter.refspec) query.set('refspec', filter.refspec);
      if (cursor) query.set('cursor', cursor);
      const q = query.toString();
      const { value } = await this.#json<{ locks: Lock[]; next_cursor?: string }>(
        'GET',
        `locks${q ? `?${q}` : ''}`,
      );
      locks.push(...value.locks);
      cursor = value.next_cursor || undefined;
    } while (cursor);
    return locks;
  }

  async verifyLocks(ref?: string): Promise<{ ours: Lock[]; theirs: Lock[] }> {
    const ours: Lock[] = [];
    const theirs: Lock[] = [];
    let cursor: string | undefined;
    do {
      const { value } = await this.#json<{ ours: Lock[]; theirs: Lock[]; next_cursor?: string }>(
        'POST',
        'locks/verify',
        {
          ...(ref ? { ref: { name: ref } } : {}),
          ...(cursor ? { cursor } : {}),
        },
      );
      ours.push(...value.ours);
      theirs.push(...value.theirs);
      cursor = value.next_cursor || undefined;
    } while (cursor);
    return { ours, theirs };
  }

  async unlock(id: string, force = false): Promise<Lock> {
    const { value } = await this.#json<{ lock: Lock }>(
      'POST',
      `locks/${encodeURIComponent(id)}/unlock`,
      { force },
    );
    return value.lock;
  }
}

function safeJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
}

function apiError(endpoint: string, route: string, status: number, body: unknown): MediaGitError {
  const message =
    (body as { message?: string } | undefined)?.message ??
    (body as { error?: { message?: string } } | undefined)?.error?.message ??
    `HTTP ${status}`;
  const hint = status === 401 ? ' (set MEDIAGIT_TOKEN or run `mediagit login <url>`)' : '';
  return new MediaGitError('LFS_API', `${endpoint}: ${route}: ${message}${hint}`, {
    kind: 'user',
    data: { status },
  });
}

export function objectError(object: BatchObject, message: string): MediaGitError {
  return new MediaGitError('LFS_OBJECT', `${object.oid}: ${object.error?.message ?? message}`, {
    kind: 'user',
    data: { oid: object.oid, code: object.error?.code },
  });
}
