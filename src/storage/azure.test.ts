import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { MediaGitError } from '../errors.ts';
import {
  AZURITE_ACCOUNT,
  AZURITE_KEY,
  startAzure,
  type Emulator,
} from '../../test/emulators/index.ts';
import { FaultProxy } from '../../test/fault-proxy.ts';
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
  test('a slow read that keeps moving is not cut; a stalled request is, as transient', async () => {
    const endpoint = new URL(az.endpoint);
    const proxy = await FaultProxy.start(endpoint.origin, [
      // 2 MiB in 64 KiB pieces, 100 ms apart: ~3.2 s, each gap well inside the timeout.
      { method: 'GET', path: /slow\.bin/, fault: 'trickle', bytes: 64 * 1024, intervalMs: 100 },
      { method: 'HEAD', path: /stuck/, fault: 'hang' },
    ]);
    try {
      const direct = new AzureBackend(url('idle'), settings);
      const data = Buffer.alloc(2 * 1024 * 1024, 7);
      await direct.put('slow.bin', data);
      const slow = new AzureBackend(url('idle'), {
        ...settings,
        endpoint: `${proxy.url}${endpoint.pathname}`,
        requestTimeoutMs: 1000,
      });
      const started = performance.now();
      const read = await slow.get('slow.bin');
      assert.ok(performance.now() - started > 2000, 'the read was slow, longer than the timeout');
      assert.ok(Buffer.from(read).equals(data), 'the slow read is whole');
      await assert.rejects(slow.head('stuck'), (error: MediaGitError) => {
        assert.equal(error.code, 'STORAGE_UNAVAILABLE');
        assert.match(error.message, /stuck.*no progress for 1000 ms \(idle timeout\)/);
        return true;
      });
      assert.equal(proxy.fired('trickle'), 1);
      assert.equal(proxy.fired('hang'), 1);
    } finally {
      await proxy.stop();
    }
  });
});
