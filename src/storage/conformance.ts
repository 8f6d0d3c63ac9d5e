/**
 * The conformance suite every storage backend must pass (ARCHITECTURE.md §3):
 * each backend's test file calls `storageConformance` with a factory for
 * fresh, empty instances. Loaded only by tests.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MediaGitError } from '../errors.ts';
import type { StorageBackend } from './backend.ts';

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

export function storageConformance(name: string, make: () => Promise<StorageBackend>): void {
  test(`${name}: put, get, head, ranged get, delete`, async () => {
    const backend = await make();
    const data = Buffer.from('chunk bytes, exactly as written');
    const { etag } = await backend.put('repo/chunks/ab/cdef', data);
    assert.equal(typeof etag, 'string');
    assert.ok(etag.length > 0);
    assert.deepEqual(Buffer.from(await backend.get('repo/chunks/ab/cdef')), data);
    assert.deepEqual(await backend.head('repo/chunks/ab/cdef'), { size: data.length, etag });
    // Every put is a new version with a new ETag, even of the same bytes.
    const again = await backend.put('repo/chunks/ab/cdef', data);
    assert.notEqual(again.etag, etag);
    assert.deepEqual(await backend.head('repo/chunks/ab/cdef'), {
      size: data.length,
      etag: again.etag,
    });
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
    ]) {
      await rejectsWith(
        backend.put(key, Buffer.from('x')),
        'STORAGE_BAD_KEY',
        `put ${JSON.stringify(key)}`,
      );
      await rejectsWith(backend.get(key), 'STORAGE_BAD_KEY', `get ${JSON.stringify(key)}`);
    }
  });
}
