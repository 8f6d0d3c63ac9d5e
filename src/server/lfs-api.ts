/**
 * The Git LFS HTTP API on `mediagit serve` (docs/git-interop.md), so a stock
 * `git lfs` client can push to and pull from a MediaGit server:
 *
 *   POST /:repo[.git]/info/lfs/objects/batch      Batch API, `basic` and `mediagit` transfers
 *   PUT  /:repo[.git]/info/lfs/objects/:oid       upload action (streamed)
 *   GET  /:repo[.git]/info/lfs/objects/:oid       download action (streamed)
 *   POST /:repo[.git]/info/lfs/verify             verify action
 *   POST /:repo[.git]/info/lfs/locks              File Locking API: create,
 *   GET  /:repo[.git]/info/lfs/locks              list,
 *   POST /:repo[.git]/info/lfs/locks/verify       verify before a push,
 *   POST /:repo[.git]/info/lfs/locks/:id/unlock   delete
 *
 * Objects uploaded through the server are stored as MediaGit content
 * (protocol/lfs-objects.ts), deduplicated chunk by chunk with everything
 * else in the repository. Where the store signs requests (S3, Azure, GCS)
 * and `direct` is on, a batch hands out signed requests instead: uploads go
 * straight to the store, create-only, and are kept whole there; the verify
 * action reads such an upload back and binds it only if it hashes to its
 * OID; downloads of whole objects are signed GETs. The
 * same credentials apply as everywhere: an API key or JWT as `Bearer`, or as
 * the password of HTTP Basic (what Git credential helpers hand to git-lfs).
 */
import { PassThrough, type Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { MediaGitError } from '../errors.ts';
import { isObjectId, type ObjectId } from '../odb/object-id.ts';
import {
  adoptWholeLfsObject,
  findLfsObject,
  lfsWholeKey,
  receiveLfsObject,
  streamLfsObject,
} from '../protocol/lfs-objects.ts';
import {
  checkLockPath,
  lockAppliesTo,
  lockScope,
  LockStore,
  staleLockTip,
  type FileLock,
} from '../protocol/lock-store.ts';
import { isValidRefName } from '../repo/refs.ts';
import type { RepoService } from '../protocol/service.ts';
import { scopeAllows, type Scope } from '../security/api-keys.ts';
import type { AuditEvent } from '../security/audit.ts';

export const LFS_MEDIA_TYPE = 'application/vnd.git-lfs+json';
/** git-lfs's custom transfer MediaGit's agent implements (git/lfs-transfer.ts). */
const AGENT_TRANSFER = 'mediagit';
const ACTION_TTL_SECONDS = 3600;
const LOCK_PAGE_DEFAULT = 100;
const LOCK_PAGE_MAX = 1000;
/**
 * Largest object uploaded straight to the store: one signed PUT (S3 takes
 * at most 5 GiB in one, Azure 5000 MiB); larger ones go through the server.
 */
export const DIRECT_LFS_MAX_BYTES = 5000 * 1024 * 1024;

export interface LfsIdentity {
  readonly user: string;
  readonly keyId: string;
  readonly repo: string;
  readonly scope: Scope;
}

export interface LfsContext {
  readonly serviceFor: (name: string) => Promise<RepoService>;
  readonly deny: (request: FastifyRequest, status: 401 | 403, reason: string) => Promise<never>;
  /** A short-lived JWT for the transfer actions of a batch answer. */
  readonly transferToken: (identity: LfsIdentity, ttlSeconds: number) => Promise<string>;
  readonly tmpDir: string;
  /** Appends an audit event of the request (tagged with its request ID). */
  readonly audit: (request: FastifyRequest, event: AuditEvent) => Promise<void>;
  readonly maxObjectBytes: number;
  /** Counts response bytes the routes stream themselves (the server's bytes-out metric). */
  readonly countSent: (bytes: number) => void;
  /** Hand out signed requests to the store where it can sign them. */
  readonly direct: boolean;
}

function lfsError(status: number, message: string): MediaGitError {
  return new MediaGitError('LFS_ERROR', message, { kind: 'user', data: { status } });
}

interface BatchRequest {
  operation?: unknown;
  transfers?: unknown;
  objects?: unknown;
  hash_algo?: unknown;
}

/**
 * The branch a lock request names (`{"name": "refs/heads/main"}`; a bare
 * branch name is taken as one too); undefined for none or for a ref that
 * is not a branch.
 */
function branchRef(value: unknown): string | undefined {
  const name =
    typeof value === 'object' && value !== null ? (value as { name?: unknown }).name : undefined;
  if (typeof name !== 'string' || name === '') return undefined;
  const ref = name.startsWith('refs/') ? name : `refs/heads/${name}`;
  if (!ref.startsWith('refs/heads/') || !isValidRefName(ref)) return undefined;
  return ref;
}

function lockOwner(request: FastifyRequest): string {
  return request.identity?.user ?? 'anonymous';
}

export function registerLfsRoutes(app: FastifyInstance, ctx: LfsContext): void {
  const lfs = (scope: Scope | 'none') => ({ config: { scope, lfs: true } }) as const;
  const repoOf = (request: FastifyRequest): Promise<RepoService> =>
    ctx.serviceFor(request.repoName!);
  const base = (request: FastifyRequest): string =>
    `${request.protocol}://${request.headers.host ?? 'localhost'}/${request.repoName!}.git/info/lfs`;
  const json = (reply: FastifyReply, status: number, value: unknown) =>
    reply.status(status).header('content-type', LFS_MEDIA_TYPE).send(JSON.stringify(value));
  const needWrite = async (request: FastifyRequest): Promise<void> => {
    const identity = request.identity;
    if (!identity) await ctx.deny(request, 401, 'authentication required');
    else if (!scopeAllows(identity.scope, 'write')) {
      await ctx.deny(request, 403, `this key has ${identity.scope} access; write is needed`);
    }
  };

  app.post('/:repo/info/lfs/objects/batch', lfs('read'), async (request, reply) => {
    const body = (request.body ?? {}) as BatchRequest;
    const operation = body.operation;
    if (operation !== 'download' && operation !== 'upload') {
      throw lfsError(422, 'operation must be "download" or "upload"');
    }
    const transfers = body.transfers === undefined ? ['basic'] : body.transfers;
    if (!Array.isArray(transfers)) throw lfsError(422, 'transfers must be a list');
    if (body.hash_algo !== undefined && body.hash_algo !== 'sha256') {
      throw lfsError(409, 'only the sha256 hash algorithm is supported');
    }
    if (!Array.isArray(body.objects)) throw lfsError(422, 'objects must be a list');
    if (body.objects.length > 10_000) throw lfsError(413, 'at most 10000 objects per batch');
    if (operation === 'upload') await needWrite(request);
    const service = await repoOf(request);
    // git-lfs's `mediagit` agent (git/lfs-transfer.ts) moves chunks through
    // the chunk endpoints, which need the plaintext (not an encrypted root).
    const encrypted = await service.repo.encrypted();
    const chunked = transfers.includes(AGENT_TRANSFER) && !encrypted;
    if (!chunked && !transfers.includes('basic')) {
      throw lfsError(
        422,
        `none of the transfers ${JSON.stringify(transfers)} is supported here (basic${encrypted ? '' : `, ${AGENT_TRANSFER}`})`,
      );
    }
    const backend = service.repo.backend;
    // The agent is given the server's own URLs: it finds the chunk endpoints from them.
    const signs =
      !chunked && ctx.direct && backend.capabilities.signedUrls && backend.sign !== undefined;
    const identity = request.identity;
    const header = identity
      ? { Authorization: `Bearer ${await ctx.transferToken(identity, ACTION_TTL_SECONDS)}` }
      : undefined;
    const href = base(request);
    const action = (url: string) => ({
      href: url,
      ...(header ? { header } : {}),
      expires_in: ACTION_TTL_SECONDS,
    });
    // A request to the store carries only the headers it was signed with
    // (the server's token would be a second, refused credential there).
    const signed = async (oid: ObjectId, method: 'GET' | 'PUT') => {
      const request = await backend.sign!(lfsWholeKey(oid), {
        method,
        expiresSeconds: ACTION_TTL_SECONDS,
        createOnly: method === 'PUT',
      });
      return {
        href: request.url,
        ...(Object.keys(request.headers).length > 0 ? { header: request.headers } : {}),
        expires_in: ACTION_TTL_SECONDS,
      };
    };
    const objects = await Promise.all(
      (body.objects as { oid?: unknown; size?: unknown }[]).map(async (object) => {
        const oid = typeof object?.oid === 'string' ? object.oid : '';
        const size = object?.size;
        if (
          !isObjectId(oid) ||
          typeof size !== 'number' ||
          !Number.isSafeInteger(size) ||
          size < 0
        ) {
          return { oid, size, error: { code: 422, message: 'invalid oid or size' } };
        }
        const found = await findLfsObject(service.repo, oid);
        if (found && found.size !== size) {
          return {
            oid,
            size,
            error: { code: 422, message: `the object is ${found.size} bytes, not ${size}` },
          };
        }
        if (operation === 'download') {
          if (!found) return { oid, size, error: { code: 404, message: 'Object does not exist' } };
          const download =
            found.kind === 'whole' && signs
              ? await signed(oid, 'GET')
              : action(`${href}/objects/${oid}`);
          return { oid, size, authenticated: true, actions: { download } };
        }
        if (size > ctx.maxObjectBytes) {
          return {
            oid,
            size,
            error: { code: 413, message: `objects over ${ctx.maxObjectBytes} bytes are refused` },
          };
        }
        const direct = signs && size <= DIRECT_LFS_MAX_BYTES;
        // An earlier direct upload whose verify never came (its answer lost):
        // the create-only URL would now be refused, so settle it here.
        if (!found && direct && (await adoptWholeLfsObject(service.repo, oid, size)) === 'stored') {
          return { oid, size, authenticated: true };
        }
        if (found) return { oid, size, authenticated: true };
        const upload = direct ? await signed(oid, 'PUT') : action(`${href}/objects/${oid}`);
        return {
          oid,
          size,
          authenticated: true,
          actions: { upload, verify: action(`${href}/verify`) },
        };
      }),
    );
    return json(reply, 200, {
      transfer: chunked ? AGENT_TRANSFER : 'basic',
      objects,
      hash_algo: 'sha256',
    });
  });

  app.put(
    '/:repo/info/lfs/objects/:oid',
    { config: { scope: 'write', lfs: true, streamBody: true } },
    async (request, reply) => {
      const oid = (request.params as { oid: string }).oid;
      if (!isObjectId(oid)) throw lfsError(422, 'not a SHA-256 object ID');
      const size = Number(request.headers['content-length']);
      if (!Number.isSafeInteger(size) || size < 0)
        throw lfsError(411, 'a Content-Length is required');
      if (size > ctx.maxObjectBytes)
        throw lfsError(413, `objects over ${ctx.maxObjectBytes} bytes are refused`);
      const body = request.body as Readable | undefined;
      if (!body || typeof (body as { pipe?: unknown }).pipe !== 'function') {
        throw lfsError(415, 'send the object as application/octet-stream');
      }
      const service = await repoOf(request);
      const { stored } = await receiveLfsObject(service.repo, oid, size, body, ctx.tmpDir);
      return reply.status(200).send({ oid, size, stored });
    },
  );

  app.get('/:repo/info/lfs/objects/:oid', lfs('read'), async (request, reply) => {
    const oid = (request.params as { oid: string }).oid;
    const service = await repoOf(request);
    const found = isObjectId(oid) ? await findLfsObject(service.repo, oid) : undefined;
    if (!found) throw lfsError(404, 'Object does not exist');
    const out = new PassThrough({ highWaterMark: 8 * 1024 * 1024 });
    void streamLfsObject(service.repo, found, async (data) => {
      ctx.countSent(data.length);
      if (!out.write(data)) await new Promise((resolve) => out.once('drain', resolve));
    }).then(
      () => out.end(),
      (error: unknown) => {
        request.log.error(error);
        out.destroy(error instanceof Error ? error : new Error(String(error)));
      },
    );
    return reply
      .header('content-type', 'application/octet-stream')
      .header('content-length', found.size)
      .send(out);
  });

  app.post('/:repo/info/lfs/verify', lfs('write'), async (request, reply) => {
    const { oid, size } = (request.body ?? {}) as { oid?: unknown; size?: unknown };
    if (typeof oid !== 'string' || !isObjectId(oid) || typeof size !== 'number') {
      throw lfsError(422, 'invalid oid or size');
    }
    const service = await repoOf(request);
    const found = await findLfsObject(service.repo, oid);
    if (found) {
      if (found.size !== size) throw lfsError(404, 'Object does not exist');
      return json(reply, 200, {});
    }
    // Uploaded straight to the store (or nowhere): bound only if it hashes to its OID.
    const adopted = ctx.direct ? await adoptWholeLfsObject(service.repo, oid, size) : 'absent';
    if (adopted === 'bad') {
      throw lfsError(
        422,
        `the upload of ${oid} is not ${size} bytes hashing to it; upload it again`,
      );
    }
    if (adopted === 'absent') throw lfsError(404, 'Object does not exist');
    return json(reply, 200, {});
  });

  const locksOf = async (request: FastifyRequest): Promise<LockStore> =>
    new LockStore((await repoOf(request)).repo);
  const page = (locks: FileLock[], cursor: unknown, limit: unknown) => {
    // Only a number or its text: Number() of some objects throws (a body
    // such as {"cursor": {"valueOf": false}} was a 500 found by fuzzing).
    const numeric = (value: unknown): number =>
      typeof value === 'number' || typeof value === 'string' ? Number(value) : NaN;
    const start = cursor === undefined || cursor === '' ? 0 : numeric(cursor);
    const size = limit === undefined || limit === '' ? LOCK_PAGE_DEFAULT : numeric(limit);
    if (!Number.isSafeInteger(start) || start < 0) throw lfsError(422, 'bad cursor');
    if (!Number.isSafeInteger(size) || size < 1) throw lfsError(422, 'bad limit');
    const count = Math.min(size, LOCK_PAGE_MAX);
    const slice = locks.slice(start, start + count);
    const next = start + count < locks.length ? String(start + count) : undefined;
    return { slice, next };
  };

  app.post('/:repo/info/lfs/locks', lfs('write'), async (request, reply) => {
    const body = (request.body ?? {}) as { path?: unknown; ref?: unknown; base?: unknown };
    const filePath = checkLockPath(body.path);
    const service = await repoOf(request);
    const store = new LockStore(service.repo);
    // Under the branch scope a lock holds the branch the client names (git-lfs
    // sends its current branch); without one, or under the global scope, every branch.
    const scope = await lockScope(service.repo);
    const named = branchRef(body.ref);
    const ref = scope === 'branch' ? named : undefined;
    // MediaGit's extension: `base`, the client's HEAD commit, for the smart-lock
    // rule, judged against the branch the client is on (whatever the scope).
    if (named !== undefined && typeof body.base === 'string' && isObjectId(body.base)) {
      const tip = await staleLockTip(
        service.repo,
        (await service.repo.readRef(named))?.id,
        body.base,
        filePath,
      );
      if (tip !== undefined) {
        const branch = named.slice('refs/heads/'.length);
        return json(reply, 409, {
          message: `${filePath} changed on ${branch} since your version; pull ${tip} first`,
          stale: { ref: named, tip },
        });
      }
    }
    const { created, lock } = await store.create(filePath, lockOwner(request), ref);
    await ctx.audit(request, {
      action: 'lock',
      outcome: created ? 'ok' : 'denied',
      user: lockOwner(request),
      ...(request.identity ? { keyId: request.identity.keyId } : {}),
      repo: request.repoName!,
      ip: request.ip,
      reason: `${lock.path} (lock ${lock.id})`,
    });
    if (!created) return json(reply, 409, { lock, message: 'already created lock' });
    return json(reply, 201, { lock });
  });

  app.get('/:repo/info/lfs/locks', lfs('read'), async (request, reply) => {
    const query = request.query as Record<string, string | undefined>;
    let locks = await (await locksOf(request)).list();
    const refspec = branchRef(query['refspec'] ? { name: query['refspec'] } : undefined);
    if (refspec !== undefined) locks = locks.filter((lock) => lockAppliesTo(lock, refspec));
    if (query['path']) locks = locks.filter((lock) => lock.path === query['path']);
    if (query['id']) locks = locks.filter((lock) => lock.id === query['id']);
    const { slice, next } = page(locks, query['cursor'], query['limit']);
    return json(reply, 200, { locks: slice, ...(next ? { next_cursor: next } : {}) });
  });

  app.post('/:repo/info/lfs/locks/verify', lfs('write'), async (request, reply) => {
    const body = (request.body ?? {}) as { cursor?: unknown; limit?: unknown; ref?: unknown };
    // With a ref (git-lfs's pre-push sends the branch pushed to): the locks that apply there.
    const ref = branchRef(body.ref);
    let locks = await (await locksOf(request)).list();
    if (ref !== undefined) locks = locks.filter((lock) => lockAppliesTo(lock, ref));
    const { slice, next } = page(locks, body.cursor, body.limit);
    const me = lockOwner(request);
    return json(reply, 200, {
      ours: slice.filter((lock) => lock.owner.name === me),
      theirs: slice.filter((lock) => lock.owner.name !== me),
      ...(next ? { next_cursor: next } : {}),
    });
  });

  app.post('/:repo/info/lfs/locks/:id/unlock', lfs('write'), async (request, reply) => {
    const id = (request.params as { id: string }).id;
    const { force } = (request.body ?? {}) as { force?: unknown };
    const store = await locksOf(request);
    const lock = await store.find(id);
    const me = lockOwner(request);
    if (!lock) {
      // Released already: by this user, a retried unlock whose answer was lost.
      const released = await store.findReleased(id);
      if (released && released.owner.name === me) return json(reply, 200, { lock: released });
      throw lfsError(404, `no lock with ID ${id}`);
    }
    if (lock.owner.name !== me) {
      if (force !== true) {
        throw lfsError(
          403,
          `${lock.path} is locked by ${lock.owner.name}; only they can unlock it (or an admin, with --force)`,
        );
      }
      if (!request.identity || !scopeAllows(request.identity.scope, 'admin')) {
        throw lfsError(403, `unlocking ${lock.owner.name}'s lock needs an admin key`);
      }
    }
    if (!(await store.remove(lock))) throw lfsError(404, `lock ${id} was released meanwhile`);
    await ctx.audit(request, {
      action: 'unlock',
      outcome: 'ok',
      user: me,
      ...(request.identity ? { keyId: request.identity.keyId } : {}),
      repo: request.repoName!,
      ip: request.ip,
      reason: `${lock.path} (lock ${lock.id}${lock.owner.name !== me ? `, forced, owner ${lock.owner.name}` : ''})`,
    });
    return json(reply, 200, { lock });
  });
}
