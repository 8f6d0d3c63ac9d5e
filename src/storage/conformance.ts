/**
 * The conformance suite every storage backend must pass (ARCHITECTURE.md §3):
 * each backend's test file calls `storageConformance` with a factory for
 * fresh, empty instances. Loaded only by tests.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MediaGitError } from '../errors.ts';
import type { SignedRequest, StorageBackend } from './backend.ts';
import { eachLimited } from './concurrency.ts';

async function rejectsWith(promise: Promise<unknown>, code: string, what: string): Promise<void> {
  await assert.rejects(
    promise,
    (error: unknown) => {
      assert.ok(error instanceof MediaGitError, `${what}: ${String(error)}`);
      assert.equal(error.code, code, `${what}: ${error.message}`);
      return true;
    },
    what,
  );
}

async function listAll(backend: StorageBackend, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const key of backend.list(prefix)) out.push(key);
  return out;
}

export interface ConformanceOptions {
  /** Requests the server behind the backend has answered so far (hostile keys must make none). */
  readonly requestCount?: () => Promise<number>;
  /** Keys in the listing test: past the 1,000 per page of S3, Azure and GCS. */
  readonly manyKeys?: number;
  /** The backend signs requests (run the signed-request test). */
  readonly signed?: boolean;
  /** Signed create-only PUTs are refused over an existing object (the store enforces the condition). */
  readonly signedCreateOnly?: boolean;
}

/** Sends a signed request with plain HTTP (as a client without credentials would). */
async function sendSigned(
  request: SignedRequest,
  body?: Uint8Array,
  range?: string,
): Promise<{ status: number; body: Buffer }> {
  const headers: Record<string, string> = { ...request.headers };
  if (range) headers['range'] = range;
  const response = await fetch(request.url, {
    method: request.method,
    headers,
    ...(body ? { body } : {}),
  });
  return { status: response.status, body: Buffer.from(await response.arrayBuffer()) };
}

export function storageConformance(
  name: string,
  make: () => Promise<StorageBackend>,
  options: ConformanceOptions = {},
): void {
  test(`${name}: put, get, head, ranged get, delete`, async () => {
    const backend = await make();
    const data = Buffer.from('chunk bytes, exactly as written');
    const { etag } = await backend.put('repo/chunks/ab/cdef', data);
    assert.equal(typeof etag, 'string');
    assert.ok(etag.length > 0);
    assert.deepEqual(Buffer.from(await backend.get('repo/chunks/ab/cdef')), data);
    assert.deepEqual(await backend.head('repo/chunks/ab/cdef'), { size: data.length, etag });
    // A put of other bytes is a new version with a new ETag (identical bytes
    // may keep it: S3's ETag is their MD5).
    const again = await backend.put(
      'repo/chunks/ab/cdef',
      Buffer.from('chunk bytes, exactly as wrote'),
    );
    assert.notEqual(again.etag, etag);
    await backend.put('repo/chunks/ab/cdef', data);
    const current = await backend.head('repo/chunks/ab/cdef');
    assert.equal(current?.size, data.length);
    assert.equal(
      Buffer.from(await backend.getRange('repo/chunks/ab/cdef', 6, 11)).toString(),
      'bytes',
    );
    assert.equal(
      (await backend.getRange('repo/chunks/ab/cdef', 20, 1000)).length,
      data.length - 20,
    );
    await backend.put('repo/chunks/ab/cdef', Buffer.from('replaced'));
    assert.equal(Buffer.from(await backend.get('repo/chunks/ab/cdef')).toString(), 'replaced');
    await backend.delete('repo/chunks/ab/cdef');
    await backend.delete('repo/chunks/ab/cdef');
    assert.equal(await backend.head('repo/chunks/ab/cdef'), undefined);
    await rejectsWith(backend.get('repo/chunks/ab/cdef'), 'STORAGE_NOT_FOUND', 'get after delete');
    await rejectsWith(backend.getRange('missing', 0, 1), 'STORAGE_NOT_FOUND', 'range of missing');
  });

  test(`${name}: conditional puts are compare-and-swap`, async () => {
    const backend = await make();
    const first = await backend.put('refs/heads/main', Buffer.from('a'), { ifNoneMatch: '*' });
    await rejectsWith(
      backend.put('refs/heads/main', Buffer.from('b'), { ifNoneMatch: '*' }),
      'STORAGE_PRECONDITION_FAILED',
      'create over an existing key',
    );
    await rejectsWith(
      backend.put('refs/heads/main', Buffer.from('b'), { ifMatch: 'f'.repeat(64) }),
      'STORAGE_PRECONDITION_FAILED',
      'stale etag',
    );
    await rejectsWith(
      backend.put('refs/heads/other', Buffer.from('b'), { ifMatch: first.etag }),
      'STORAGE_PRECONDITION_FAILED',
      'ifMatch on a missing key',
    );
    assert.equal(Buffer.from(await backend.get('refs/heads/main')).toString(), 'a');
    // Many writers with the same expectation: exactly one wins.
    const attempts = await Promise.allSettled(
      Array.from({ length: 16 }, (_, i) =>
        backend.put('refs/heads/main', Buffer.from(`writer ${i}`), { ifMatch: first.etag }),
      ),
    );
    assert.equal(attempts.filter((a) => a.status === 'fulfilled').length, 1);
    const creates = await Promise.allSettled(
      Array.from({ length: 16 }, (_, i) =>
        backend.put('refs/heads/new', Buffer.from(`creator ${i}`), { ifNoneMatch: '*' }),
      ),
    );
    assert.equal(creates.filter((a) => a.status === 'fulfilled').length, 1);
  });

  test(`${name}: list by prefix, sorted, and nothing else`, async () => {
    const backend = await make();
    for (const key of ['b/2', 'a/1', 'a/10', 'a/2', 'ab/1', 'c'])
      await backend.put(key, Buffer.from(key));
    assert.deepEqual(await listAll(backend, 'a/'), ['a/1', 'a/10', 'a/2']);
    assert.deepEqual(await listAll(backend, 'a'), ['a/1', 'a/10', 'a/2', 'ab/1']);
    assert.deepEqual(await listAll(backend, ''), ['a/1', 'a/10', 'a/2', 'ab/1', 'b/2', 'c']);
    assert.deepEqual(await listAll(backend, 'zzz/'), []);
  });

  test(`${name}: hostile keys are refused before any I/O`, async () => {
    const backend = await make();
    const before = await options.requestCount?.();
    for (const key of [
      '',
      '/abs',
      '../escape',
      'a/../../b',
      'a//b',
      'a/./b',
      'a/',
      'a\\b',
      'nul\0',
      'line\nbreak',
      'a/\u007f',
    ]) {
      await rejectsWith(
        backend.put(key, Buffer.from('x')),
        'STORAGE_BAD_KEY',
        `put ${JSON.stringify(key)}`,
      );
      await rejectsWith(backend.get(key), 'STORAGE_BAD_KEY', `get ${JSON.stringify(key)}`);
      await rejectsWith(
        backend.getRange(key, 0, 1),
        'STORAGE_BAD_KEY',
        `getRange ${JSON.stringify(key)}`,
      );
      await rejectsWith(backend.head(key), 'STORAGE_BAD_KEY', `head ${JSON.stringify(key)}`);
      await rejectsWith(backend.delete(key), 'STORAGE_BAD_KEY', `delete ${JSON.stringify(key)}`);
      await rejectsWith(
        (async () => {
          await backend.list(`${key}/`)[Symbol.asyncIterator]().next();
        })(),
        'STORAGE_BAD_KEY',
        `list ${JSON.stringify(key)}`,
      );
    }
    assert.throws(
      () => backend.child('../up'),
      (e: unknown) => e instanceof MediaGitError && e.code === 'STORAGE_BAD_KEY',
    );
    if (options.requestCount)
      assert.equal(await options.requestCount(), before, 'no request reached the server');
  });

  test(`${name}: empty objects, ranges at and past the end, missing keys`, async () => {
    const backend = await make();
    await backend.put('empty', new Uint8Array(0));
    assert.equal((await backend.get('empty')).length, 0);
    assert.equal((await backend.head('empty'))?.size, 0);
    assert.equal((await backend.getRange('empty', 0, 10)).length, 0);
    await backend.put('ten', Buffer.from('0123456789'));
    assert.equal(Buffer.from(await backend.getRange('ten', 0, 10)).toString(), '0123456789');
    assert.equal(Buffer.from(await backend.getRange('ten', 9, 10)).toString(), '9');
    assert.equal((await backend.getRange('ten', 10, 20)).length, 0);
    assert.equal((await backend.getRange('ten', 25, 30)).length, 0);
    assert.equal((await backend.getRange('ten', 5, 5)).length, 0);
    assert.equal(await backend.head('never/written'), undefined);
    await rejectsWith(backend.get('never/written'), 'STORAGE_NOT_FOUND', 'get missing');
    await rejectsWith(
      backend.getRange('never/written', 5, 5),
      'STORAGE_NOT_FOUND',
      'empty range of missing',
    );
    await backend.delete('never/written');
  });

  test(`${name}: a large object round-trips whole and by range`, async () => {
    const backend = await make();
    const big = Buffer.alloc(9 * 1024 * 1024 + 123);
    for (let i = 0; i + 4 <= big.length; i += 4) big.writeUInt32LE(i, i);
    await backend.put('packs/big.pack', big, { ifNoneMatch: '*' });
    assert.ok(Buffer.from(await backend.get('packs/big.pack')).equals(big));
    assert.equal((await backend.head('packs/big.pack'))?.size, big.length);
    const slice = await backend.getRange('packs/big.pack', 5_000_001, 7_340_033);
    assert.ok(Buffer.from(slice).equals(big.subarray(5_000_001, 7_340_033)));
    await rejectsWith(
      backend.put('packs/big.pack', big, { ifNoneMatch: '*' }),
      'STORAGE_PRECONDITION_FAILED',
      'create over a large object',
    );
  });

  test(`${name}: listing pages past a thousand keys`, async () => {
    const backend = await make();
    const count = options.manyKeys ?? 1050;
    const keys = Array.from({ length: count }, (_, i) => `many/${String(i).padStart(5, '0')}`);
    await eachLimited(keys, 32, async (key) => {
      await backend.put(key, Buffer.from(key));
    });
    await backend.put('manyx', Buffer.from('beside'));
    assert.deepEqual(await listAll(backend, 'many/'), keys);
    assert.equal((await listAll(backend, 'many/0000')).length, 10);
    assert.deepEqual((await listAll(backend, 'many')).at(-1), 'manyx');
  });

  test(`${name}: a child store sees its prefix as its root`, async () => {
    const backend = await make();
    const child = backend.child('repos/alpha');
    await child.put('refs/heads/main', Buffer.from('x'), { ifNoneMatch: '*' });
    await backend.put('repos/beta/refs/heads/main', Buffer.from('y'));
    assert.equal(Buffer.from(await backend.get('repos/alpha/refs/heads/main')).toString(), 'x');
    assert.deepEqual(await listAll(child, ''), ['refs/heads/main']);
    assert.deepEqual(await listAll(backend.child('repos'), 'beta/'), ['beta/refs/heads/main']);
    await child.delete('refs/heads/main');
    assert.equal(await backend.head('repos/alpha/refs/heads/main'), undefined);
  });

  if (!options.signed) return;
  test(`${name}: signed requests work without credentials`, async () => {
    const backend = await make();
    assert.ok(backend.capabilities.signedUrls && backend.sign, `${name} cannot sign requests`);
    const body = Buffer.from('bytes sent straight to the store');
    const put = await backend.sign('direct/object', {
      method: 'PUT',
      expiresSeconds: 300,
      createOnly: true,
    });
    const stored = await sendSigned(put, body);
    assert.ok(
      stored.status >= 200 && stored.status < 300,
      `signed PUT: ${stored.status} ${stored.body.toString()}`,
    );
    assert.ok(Buffer.from(await backend.get('direct/object')).equals(body));
    const get = await backend.sign('direct/object', { method: 'GET', expiresSeconds: 300 });
    const ranged = await sendSigned(get, undefined, 'bytes=6-10');
    assert.equal(ranged.body.toString(), 'sent ');
    if (options.signedCreateOnly) {
      const again = await backend.sign('direct/object', {
        method: 'PUT',
        expiresSeconds: 300,
        createOnly: true,
      });
      const refused = await sendSigned(again, Buffer.from('replacement'));
      assert.ok(
        refused.status >= 400,
        `a create-only PUT over an object must fail: ${refused.status}`,
      );
      assert.ok(Buffer.from(await backend.get('direct/object')).equals(body));
    }
  });

  test(`${name}: a signed request replayed after it expires, or altered, is refused`, async () => {
    const backend = await make();
    await backend.put('direct/expiring', Buffer.from('short-lived'));
    // 2 s, not 1: a GCS v4 signature can round 1 s down to 0, which is refused.
    const [get, put] = await Promise.all([
      backend.sign!('direct/expiring', { method: 'GET', expiresSeconds: 2 }),
      backend.sign!('direct/late', { method: 'PUT', expiresSeconds: 2, createOnly: true }),
    ]);
    const fresh = await sendSigned(get, undefined);
    assert.equal(fresh.body.toString(), 'short-lived', `fresh: ${fresh.status}`);
    // Another key under the same signature: refused at once.
    const altered = { ...get, url: get.url.replace('direct/expiring', 'direct/expirinG') };
    assert.ok((await sendSigned(altered, undefined)).status >= 400, 'an altered URL must fail');
    await new Promise((resolve) => setTimeout(resolve, 3100));
    const replayed = await sendSigned(get, undefined);
    assert.ok(
      replayed.status >= 400,
      `a signed GET replayed after its expiry must fail: ${replayed.status} ${replayed.body.toString()}`,
    );
    const late = await sendSigned(put, Buffer.from('too late'));
    assert.ok(late.status >= 400, `an expired signed PUT must fail: ${late.status}`);
    assert.equal(await backend.head('direct/late'), undefined);
  });
}
