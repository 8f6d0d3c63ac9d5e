import { storageConformance } from './conformance.ts';
import { MemoryBackend } from './memory.ts';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MediaGitError } from '../errors.ts';
import { FsBackend } from './fs-backend.ts';
import { openBackend } from './open.ts';
import { AzureBackend } from './azure.ts';
import { GcsBackend } from './gcs.ts';
import { S3Backend } from './s3.ts';
import { RetryingBackend } from './wrappers.ts';
storageConformance('memory backend', async () => new MemoryBackend());

test('backends are chosen by URL scheme; unknown ones and bad URLs are clear errors', () => {
  assert.ok(openBackend('memory://x') instanceof MemoryBackend);
  assert.equal(openBackend('memory://x'), openBackend('memory://x'));
  assert.ok(openBackend('file:///tmp/store') instanceof FsBackend);
  assert.equal((openBackend('/tmp/store') as FsBackend).root, '/tmp/store');
  const s3 = openBackend('s3://bucket/some/prefix/', { retry: false });
  assert.ok(s3 instanceof S3Backend);
  assert.equal(s3.url, 's3://bucket/some/prefix');
  assert.ok(openBackend('s3://bucket') instanceof RetryingBackend);
  const az = openBackend('az://account/container/deep/prefix', { retry: false });
  assert.ok(az instanceof AzureBackend);
  assert.equal(az.containerName, 'container');
  assert.equal(az.prefix, 'deep/prefix');
  assert.ok(openBackend('gs://bucket/p', { retry: false }) instanceof GcsBackend);
  for (const [url, code] of [
    ['ftp://host/x', 'STORAGE_SCHEME'],
    ['s3:///no-bucket', 'STORAGE_URL'],
    ['az://account', 'STORAGE_URL'],
    ['s3://bucket/../escape', 'STORAGE_BAD_KEY'],
  ] as const) {
    assert.throws(
      () => openBackend(url),
      (error: unknown) => error instanceof MediaGitError && error.code === code,
    );
  }
});
