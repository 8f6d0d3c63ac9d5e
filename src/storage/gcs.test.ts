import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import { MediaGitError } from '../errors.ts';
import { startGcs, type Emulator } from '../../test/emulators/index.ts';
import { FaultProxy } from '../../test/fault-proxy.ts';
import { storageConformance } from './conformance.ts';
import { GcsBackend, type GcsSettings } from './gcs.ts';
import { openBackend } from './open.ts';

// No GCS-protocol server from npm or Debian runs offline here; this runs
// against test/emulators/gcs-server.ts, a JSON-API server of our own (see
// docs/deploy.md, "What each backend guarantees").
describe('GCS backend against a GCS JSON-API server on loopback', () => {
  let gs: Emulator;
  let settings: GcsSettings;
  let n = 0;
  before(async () => {
    gs = await startGcs(['mediagit']);
    const key = JSON.parse(
      await fs.readFile(String(gs.env['GOOGLE_APPLICATION_CREDENTIALS']), 'utf8'),
    ) as { client_email: string; private_key: string };
    settings = {
      apiEndpoint: gs.endpoint,
      projectId: 'mediagit-emulator',
      credentials: { client_email: key.client_email, private_key: key.private_key },
    };
  });
  after(async () => {
    await gs.stop();
  });
  const requests = async (): Promise<number> =>
    Object.entries(await gs.stats())
      .filter(([name]) => name !== 'bytesIn')
      .reduce((sum, [, value]) => sum + value, 0);

  storageConformance(
    'gcs backend',
    async () => new GcsBackend(`gs://mediagit/conformance-${++n}`, settings),
    { requestCount: requests, signed: true, signedCreateOnly: true },
  );
  storageConformance(
    'gcs backend behind the cache',
    async () =>
      openBackend(`gs://mediagit/cached-${++n}`, {
        gcs: settings,
        cache: {
          dir: `/tmp/mediagit-cache-gs-${process.pid}-${n}`,
          maxBytes: 64 * 1024 * 1024,
          cacheable: () => true,
        },
      }),
    { requestCount: requests, signed: true },
  );

  test('a missing bucket is one clear line naming the backend and key', async () => {
    const missing = new GcsBackend('gs://no-such-bucket/p', settings);
    await assert.rejects(missing.put('HEAD', Buffer.from('x')), (error: unknown) => {
      assert.ok(error instanceof MediaGitError);
      assert.equal(error.code, 'STORAGE_NO_BUCKET', error.message);
      assert.match(error.message, /gs:\/\/no-such-bucket\/p \(key HEAD\)/);
      assert.ok(!error.message.includes('\n'));
      return true;
    });
  });

  test('a signed URL altered after signing is refused', async () => {
    const backend = new GcsBackend(`gs://mediagit/signed-${++n}`, settings);
    await backend.put('obj', Buffer.from('hello'));
    const signed = await backend.sign('obj', { method: 'GET', expiresSeconds: 60 });
    assert.equal(await (await fetch(signed.url)).text(), 'hello');
    const forged = signed.url.replace('/obj?', '/other?');
    assert.equal((await fetch(forged)).status, 403);
  });

  test('a slow transfer that keeps moving is not cut; a stalled one is, as transient', async () => {
    const proxy = await FaultProxy.start(gs.endpoint, [
      // 2 MiB in 64 KiB pieces, 100 ms apart: ~3.2 s, each gap well inside the timeout.
      {
        method: 'GET',
        path: /slow\.bin\?.*alt=media/,
        fault: 'trickle',
        bytes: 64 * 1024,
        intervalMs: 100,
      },
      { method: 'GET', path: /stuck\.bin\?.*alt=media/, fault: 'hang' },
      { method: 'POST', path: /stuck-put/, fault: 'hang' },
    ]);
    try {
      const prefix = `gs://mediagit/idle-${++n}`;
      const direct = new GcsBackend(prefix, settings);
      const data = Buffer.alloc(2 * 1024 * 1024, 7);
      await direct.put('slow.bin', data);
      await direct.put('stuck.bin', data);
      const slow = new GcsBackend(prefix, {
        ...settings,
        apiEndpoint: proxy.url,
        requestTimeoutMs: 1000,
      });
      const started = performance.now();
      const read = await slow.get('slow.bin');
      assert.ok(performance.now() - started > 2000, 'the read was slow, longer than the timeout');
      assert.ok(Buffer.from(read).equals(data), 'the slow read is whole');
      await assert.rejects(slow.getRange('stuck.bin', 0, 1024), (error: MediaGitError) => {
        assert.equal(error.code, 'STORAGE_UNAVAILABLE', error.message);
        assert.match(error.message, /stuck\.bin.*no progress for 1000 ms \(idle timeout\)/);
        return true;
      });
      await assert.rejects(slow.put('stuck-put', data), (error: MediaGitError) => {
        assert.equal(error.code, 'STORAGE_UNAVAILABLE', error.message);
        assert.match(error.message, /stuck-put.*no progress for 1000 ms \(idle timeout\)/);
        return true;
      });
      assert.equal(proxy.fired('trickle'), 1);
      assert.equal(proxy.fired('hang'), 2);
    } finally {
      await proxy.stop();
    }
  });
});
