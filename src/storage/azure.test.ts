import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { MediaGitError } from '../errors.ts';
import {
  AZURITE_ACCOUNT,
  AZURITE_KEY,
  startAzure,
  type Emulator,
} from '../../test/emulators/index.ts';
import { AzureBackend, type AzureSettings } from './azure.ts';
import { storageConformance } from './conformance.ts';
import { openBackend } from './open.ts';

describe('Azure Blob backend against Azurite on loopback', () => {
  let az: Emulator;
  let settings: AzureSettings;
  let n = 0;
  before(async () => {
    az = await startAzure(['mediagit']);
    settings = {
      endpoint: az.endpoint,
      accountKey: AZURITE_KEY,
      blockThreshold: 8 * 1024 * 1024,
      blockSize: 4 * 1024 * 1024,
    };
  });
  after(async () => {
    await az.stop();
  });
  const requests = async (): Promise<number> =>
    Object.values(await az.stats()).reduce((sum, value) => sum + value, 0);
  const url = (prefix: string): string => `az://${AZURITE_ACCOUNT}/mediagit/${prefix}`;

  storageConformance(
    'azure backend',
    async () => new AzureBackend(url(`conformance-${++n}`), settings),
    {
      requestCount: requests,
      signed: true,
      signedCreateOnly: true,
    },
  );
  storageConformance(
    'azure backend behind the cache',
    async () =>
      openBackend(url(`cached-${++n}`), {
        azure: settings,
        cache: {
          dir: `/tmp/mediagit-cache-az-${process.pid}-${n}`,
          maxBytes: 64 * 1024 * 1024,
          cacheable: () => true,
        },
      }),
    { requestCount: requests, signed: true },
  );
  storageConformance(
    'azure backend through a connection string',
    async () =>
      new AzureBackend(url(`cs-${++n}`), {
        connectionString: String(az.env['AZURE_STORAGE_CONNECTION_STRING']),
      }),
    { manyKeys: 10 },
  );

  test('wrong credentials and a missing container are one clear line naming the backend and key', async () => {
    const wrong = new AzureBackend(url('x'), {
      ...settings,
      accountKey: Buffer.alloc(64, 1).toString('base64'),
    });
    await assert.rejects(wrong.get('refs/heads/main'), (error: unknown) => {
      assert.ok(error instanceof MediaGitError);
      assert.equal(error.code, 'STORAGE_ACCESS_DENIED', error.message);
      assert.match(error.message, /az:\/\/devstoreaccount1\/mediagit\/x \(key refs\/heads\/main\)/);
      assert.ok(!error.message.includes('\n'));
      return true;
    });
    const missing = new AzureBackend(`az://${AZURITE_ACCOUNT}/no-such-container/p`, settings);
    await assert.rejects(missing.put('HEAD', Buffer.from('x')), (error: unknown) => {
      assert.ok(error instanceof MediaGitError);
      assert.equal(error.code, 'STORAGE_NO_BUCKET', error.message);
      assert.match(error.message, /no-such-container/);
      return true;
    });
  });
});
