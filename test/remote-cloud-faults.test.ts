/**
 * A server whose store misbehaves: s3rver behind a fault-injecting proxy
 * that answers 500 / 503 or never answers on about one request in five.
 * The server and the client (whose direct transfers go through the same
 * proxy) retry where retrying is safe; pushes, clones and pulls succeed; no
 * ref moves to a commit whose objects are not all stored, and no partial
 * object is visible. Every request has an idle timeout: a request the
 * store or the server never answers is given up and retried. A store that
 * keeps failing, wrong credentials and a missing bucket end in one clear
 * line naming the backend.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { BackendRepo } from '../src/protocol/backend-repo.ts';
import { HttpTransport } from '../src/protocol/http-transport.ts';
import { verifyRepo } from '../src/protocol/verify.ts';
import { storageSettings } from '../src/cli/storage-settings.ts';
import { openBackend } from '../src/storage/open.ts';
import { startS3, type Emulator } from './emulators/index.ts';
import { FaultProxy } from './fault-proxy.ts';
import { isolatedEnv, pseudoRandomBytes, runCli, TempRepo } from './helpers.ts';
import { ServerProcess } from './server.ts';

const MiB = 1024 * 1024;
const ROOT = 's3://mediagit/faults';

async function headOf(repo: TempRepo): Promise<string> {
  return (JSON.parse((await repo.ok(['log', '--json', '-n', '1'])).out) as { id: string }[])[0]!.id;
}

describe('a server whose store fails one request in five (s3rver behind a fault proxy)', () => {
  let outer: string;
  let s3: Emulator;
  let proxy: FaultProxy;
  let server: ServerProcess;
  let clientEnv: NodeJS.ProcessEnv;
  const repos: TempRepo[] = [];
  const direct = async () => openBackend(ROOT, await storageSettings({ ...s3.env }));
  const storeEnv = (): NodeJS.ProcessEnv => ({
    ...isolatedEnv(outer),
    ...s3.env,
    AWS_ENDPOINT_URL: proxy.url,
    MEDIAGIT_STORAGE_TIMEOUT_MS: '1500',
  });

  before(async () => {
    outer = await fs.mkdtemp(path.join(os.tmpdir(), 'mediagit-faults-'));
    s3 = await startS3(['mediagit']);
    // The proxy passes the Host header on: S3 requests are signed with it.
    proxy = await FaultProxy.start(s3.endpoint, [], { keepHost: true });
    const init = await runCli(['init', '--bare', '-q', `${ROOT}/proj`], {
      cwd: outer,
      env: storeEnv(),
    });
    assert.equal(init.code, 0, init.stderr);
    const token = await runCli(
      ['token', 'create', '--root', ROOT, '--user', 'alice', '--repo', '*', '--scope', 'write'],
      { cwd: outer, env: storeEnv() },
    );
    assert.equal(token.code, 0, token.stderr);
    server = await ServerProcess.start(ROOT, [], storeEnv());
    clientEnv = { MEDIAGIT_TOKEN: token.out.trim(), MEDIAGIT_HTTP_TIMEOUT_MS: '1500' };
  });
  after(async () => {
    await server?.stop();
    for (const repo of repos) await repo.cleanup();
    await proxy?.stop();
    await s3?.stop();
    await fs.rm(outer, { recursive: true, force: true });
  });

  const clone = async (): Promise<TempRepo> => {
    const peer = (await TempRepo.create({ init: false })).withEnv(clientEnv);
    repos.push(peer);
    await fs.rmdir(peer.dir);
    const result = await runCli(['clone', '-q', server.url('proj'), peer.dir], {
      cwd: peer.root,
      env: peer.env,
    });
    assert.equal(result.code, 0, result.stderr);
    return peer;
  };

  test('push, clone and pull succeed through 500s, 503s and hangs', async () => {
    proxy.rules = [
      { fault: 'status', status: 503, every: 10 },
      { fault: 'status', status: 500, every: 18 },
      { fault: 'hang', every: 17 },
    ];
    const a = (await TempRepo.create({ chunkThreshold: MiB })).withEnv(clientEnv);
    repos.push(a);
    const big = pseudoRandomBytes(24 * MiB, 3, 'faults');
    await fs.writeFile(a.path('big.bin'), big);
    await fs.writeFile(a.path('notes.txt'), 'take one\n');
    await a.ok(['add', '-A']);
    await a.ok(['commit', '-q', '-m', 'first']);
    await a.ok(['push', server.url('proj'), 'main']);

    const b = await clone();
    assert.ok((await fs.readFile(b.path('big.bin'))).equals(big));
    const edited = Buffer.concat([
      big.subarray(0, 9 * MiB),
      Buffer.from('cut'),
      big.subarray(9 * MiB),
    ]);
    await fs.writeFile(b.path('big.bin'), edited);
    await b.ok(['commit', '-q', '-a', '-m', 'edit']);
    await b.ok(['push', 'origin', 'main']);
    await a.ok(['pull', '-q', server.url('proj'), 'main']);
    assert.ok((await fs.readFile(a.path('big.bin'))).equals(edited));

    const faults = proxy.log.filter((entry) => entry.fault !== undefined).length;
    assert.ok(proxy.fired('status') > 0 && proxy.fired('hang') > 0, `faults: ${faults}`);
    assert.ok(faults >= proxy.log.length / 8, `${faults} faults in ${proxy.log.length} requests`);

    proxy.rules = [];
    const backend = await direct();
    const report = await verifyRepo(new BackendRepo(backend.child('proj')));
    assert.deepEqual(report.problems, []);
    assert.equal(await headOf(a), await headOf(b));
    // No partial object under a final key: every stored pack is whole (the
    // verification above read every object a ref reaches); and no temp keys.
    for await (const key of backend.list('')) assert.doesNotMatch(key, /\.tmp|\.part/);
  });

  test('a store that keeps failing: the push fails in one line and no ref moves', async () => {
    proxy.rules = [];
    const a = await clone();
    const before = await headOf(a);
    await fs.writeFile(a.path('more.bin'), pseudoRandomBytes(3 * MiB, 4, 'down'));
    await a.ok(['add', '-A']);
    await a.ok(['commit', '-q', '-m', 'while the store is down']);
    proxy.rules = [{ fault: 'status', status: 503 }];
    const result = await runCli(['push', 'origin', 'main'], { cwd: a.dir, env: a.env });
    // A command on the store itself, as an operator runs it: fatal, exit 128, as Git's.
    const init = await runCli(['init', '--bare', '-q', `${ROOT}/while-down`], {
      cwd: outer,
      env: storeEnv(),
    });
    proxy.rules = [];
    assert.equal(result.code, 128, result.stderr);
    const lines = result.stderr.trim().split('\n');
    assert.equal(lines.length, 1, result.stderr);
    assert.match(lines[0]!, /(s3:\/\/mediagit\/faults|127\.0\.0\.1)/);
    assert.equal(init.code, 128, init.stderr);
    assert.match(init.stderr.trim(), /^fatal: storage s3:\/\/mediagit\/faults\/while-down.*503/);
    assert.equal(init.stderr.trim().split('\n').length, 1, init.stderr);
    const backend = (await direct()).child('proj');
    assert.equal(
      Buffer.from(await backend.get('refs/heads/main'))
        .toString('utf8')
        .trim(),
      before,
    );
    // Once the store answers again, the same push goes through.
    await a.ok(['push', 'origin', 'main']);
  });

  test('a server that stops answering: the client gives up after its idle timeout and retries', async () => {
    proxy.rules = [];
    // Every request in front of the server, the token exchange first, hangs once.
    const front = await FaultProxy.start(server.base, [{ fault: 'hang', times: 1 }]);
    const transport = new HttpTransport(`${front.url}/proj`, {
      token: clientEnv['MEDIAGIT_TOKEN'],
      serverTimeoutMs: 500,
    });
    try {
      const refs = await transport.infoRefs();
      assert.equal(front.fired('hang'), 1);
      assert.match(refs.refs['refs/heads/main'] ?? '', /^[0-9a-f]{64}$/);
    } finally {
      await transport.close();
      await front.stop();
    }
  });

  test('wrong credentials and a missing bucket: one line naming the backend', async () => {
    const wrong = await runCli(['init', '--bare', '-q', `${ROOT}/other`], {
      cwd: outer,
      env: { ...storeEnv(), AWS_ENDPOINT_URL: s3.endpoint, AWS_ACCESS_KEY_ID: 'nobody' },
    });
    assert.equal(wrong.code, 128, wrong.stderr);
    assert.equal(wrong.stderr.trim().split('\n').length, 1, wrong.stderr);
    assert.match(wrong.stderr, /s3:\/\/mediagit\/faults\/other.*access denied/i);

    const missing = await runCli(['serve', '--root', 's3://no-such-bucket/x', '--port', '0'], {
      cwd: outer,
      env: { ...storeEnv(), AWS_ENDPOINT_URL: s3.endpoint },
    });
    assert.equal(missing.code, 128, missing.stderr);
    assert.equal(missing.stderr.trim().split('\n').length, 1, missing.stderr);
    assert.match(missing.stderr, /s3:\/\/no-such-bucket.*bucket no-such-bucket does not exist/);
  });
});
