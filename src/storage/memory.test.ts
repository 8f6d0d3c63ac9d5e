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
import { LazyBackend } from './lazy.ts';
import { RetryingBackend } from './wrappers.ts';
storageConformance('memory backend', async () => new MemoryBackend());

test('backends are chosen by URL scheme; unknown ones and bad URLs are clear errors', async () => {
  assert.ok(openBackend('memory://x') instanceof MemoryBackend);
  assert.equal(openBackend('memory://x'), openBackend('memory://x'));
  assert.ok(openBackend('file:///tmp/store') instanceof FsBackend);
  assert.equal((openBackend('/tmp/store') as FsBackend).root, '/tmp/store');
  // Cloud backends load their SDK on first use; the URL is known before.
  const loaded = async (url: string) => {
    const lazy = openBackend(url, { retry: false });
    assert.ok(lazy instanceof LazyBackend);
    const backend = await lazy.backend();
    assert.equal(lazy.url, backend.url, 'the same canonical URL before and after loading');
    assert.deepEqual(lazy.capabilities, backend.capabilities);
    assert.equal(lazy.child('repo').url, backend.child('repo').url);
    return backend;
  };
  const s3 = await loaded('s3://bucket/some/prefix/');
  assert.ok(s3 instanceof S3Backend);
  assert.equal(s3.url, 's3://bucket/some/prefix');
  assert.ok(openBackend('s3://bucket') instanceof RetryingBackend);
  const az = await loaded('az://account/container/deep/prefix');
  assert.ok(az instanceof AzureBackend);
  assert.equal(az.containerName, 'container');
  assert.equal(az.prefix, 'deep/prefix');
  const sasOnly = openBackend('az://account/container', {
    retry: false,
    azure: { sasToken: 'sv=x' },
  });
  assert.equal(sasOnly.capabilities.signedUrls, false, 'a SAS token alone cannot sign');
  assert.equal((await (sasOnly as LazyBackend).backend()).capabilities.signedUrls, false);
  assert.ok((await loaded('gs://bucket/p')) instanceof GcsBackend);
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
