import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { MediaGitError } from '../errors.ts';
import {
  startS3,
  S3_ACCESS_KEY,
  S3_SECRET_KEY,
  type Emulator,
} from '../../test/emulators/index.ts';
import { storageConformance } from './conformance.ts';
import { S3Backend, type S3Settings } from './s3.ts';
import { openBackend } from './open.ts';

describe('S3 backend against s3rver on loopback', () => {
  let s3: Emulator;
  let settings: S3Settings;
  let n = 0;
  before(async () => {
    s3 = await startS3(['mediagit']);
    settings = {
      endpoint: s3.endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: S3_ACCESS_KEY, secretAccessKey: S3_SECRET_KEY },
      multipartThreshold: 8 * 1024 * 1024,
      partSize: 5 * 1024 * 1024,
    };
  });
  after(async () => {
    await s3.stop();
  });

  const requests = async (): Promise<number> => {
    const stats = await s3.stats();
    return Object.entries(stats)
      .filter(([name]) => name !== 'bytesIn')
      .reduce((sum, [, value]) => sum + value, 0);
  };
  storageConformance(
    's3 backend',
    async () => new S3Backend(`s3://mediagit/conformance-${++n}`, settings),
    {
      requestCount: requests,
      signed: true,
      signedCreateOnly: true,
    },
  );
  storageConformance(
    's3 backend behind the cache',
    async () =>
      openBackend(`s3://mediagit/cached-${++n}`, {
        s3: settings,
        cache: {
          dir: `/tmp/mediagit-cache-test-${process.pid}-${n}`,
          maxBytes: 64 * 1024 * 1024,
          cacheable: () => true,
        },
      }),
    { requestCount: requests, signed: true, signedCreateOnly: true },
  );

  test('wrong credentials and a missing bucket are one clear line naming the backend and key', async () => {
    const wrong = new S3Backend('s3://mediagit/x', {
      ...settings,
      credentials: { accessKeyId: 'nobody', secretAccessKey: 'wrong' },
    });
    await assert.rejects(wrong.get('refs/heads/main'), (error: unknown) => {
      assert.ok(error instanceof MediaGitError);
      assert.equal(error.code, 'STORAGE_ACCESS_DENIED', error.message);
      assert.match(error.message, /s3:\/\/mediagit\/x \(key refs\/heads\/main\)/);
      assert.ok(!error.message.includes('\n'));
      return true;
    });
    const missing = new S3Backend('s3://no-such-bucket/p', settings);
    await assert.rejects(missing.put('HEAD', Buffer.from('x')), (error: unknown) => {
      assert.ok(error instanceof MediaGitError);
      assert.equal(error.code, 'STORAGE_NO_BUCKET', error.message);
      assert.match(error.message, /no-such-bucket/);
      return true;
    });
  });
});
