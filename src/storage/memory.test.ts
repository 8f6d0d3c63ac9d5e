import { storageConformance } from './conformance.ts';
import { MemoryBackend } from './memory.ts';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MediaGitError } from '../errors.ts';
import { FsBackend } from './fs-backend.ts';
import { openBackend } from './open.ts';
storageConformance('memory backend', async () => new MemoryBackend());

test('backends are chosen by URL scheme; unknown and unbuilt ones are clear errors', () => {
  assert.ok(openBackend('memory://x') instanceof MemoryBackend);
  assert.equal(openBackend('memory://x'), openBackend('memory://x'));
  assert.ok(openBackend('file:///tmp/store') instanceof FsBackend);
  assert.equal((openBackend('/tmp/store') as FsBackend).root, '/tmp/store');
  for (const [url, code] of [
    ['s3://bucket/prefix', 'STORAGE_NOT_IMPLEMENTED'],
    ['ftp://host/x', 'STORAGE_SCHEME'],
  ] as const) {
    assert.throws(
      () => openBackend(url),
      (error: unknown) => error instanceof MediaGitError && error.code === code,
    );
  }
});
