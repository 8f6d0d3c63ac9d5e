/**
 * A retried request never turns success into failure: requests whose answer
 * is lost after the server applied them (a proxy that hangs up once the
 * server has answered) are retried by the client, and the server counts the
 * retry as the success it was — ref updates, pack commits, lock and unlock.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { FaultProxy } from './fault-proxy.ts';
import { pseudoRandomBytes, runCli, TempRepo } from './helpers.ts';
import { createToken, useServerRoot } from './server.ts';

const MiB = 1024 * 1024;

interface AuditLine {
  action: string;
  outcome: string;
  refs?: { ref: string; old: string | null; new: string | null; result: string }[];
  reason?: string;
}

async function auditLines(root: string): Promise<AuditLine[]> {
  const text = await fs.readFile(path.join(root, '.mediagit-server', 'audit.log'), 'utf8');
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as AuditLine);
}

describe('retried requests whose answers were lost', () => {
  const fixture = useServerRoot('retry', ['proj']);
  let proxy: FaultProxy;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    const server = await fixture.serve();
    proxy = await FaultProxy.start(server.base);
    env = { MEDIAGIT_TOKEN: await createToken(fixture.root, 'alice', 'proj', 'write') };
  });
  after(async () => {
    await proxy.stop();
  });

  test('a push whose refs/update and packs/commit answers are lost still succeeds', async () => {
    const repo = fixture.track((await TempRepo.create({ chunkThreshold: MiB })).withEnv(env));
    await fs.writeFile(repo.path('big.bin'), pseudoRandomBytes(6 * MiB, 3, 'retry'));
    await repo.ok(['add', 'big.bin']);
    await repo.ok(['commit', '-q', '-m', 'first']);
    await repo.ok(['remote', 'add', 'origin', `${proxy.url}/proj`]);
    proxy.rules = [
      { method: 'POST', path: /\/packs\/commit$/, fault: 'drop-after-answer', times: 1 },
      { method: 'POST', path: /\/refs\/update$/, fault: 'drop-after-answer', times: 1 },
    ];
    const pushed = await repo.run(['push', 'origin', 'main']);
    assert.equal(pushed.code, 0, pushed.stderr);
    assert.equal(proxy.fired('drop-after-answer'), 2, 'both answers were dropped once');
    const head = (await repo.head()).id;
    const refText = await fs.readFile(
      path.join(fixture.root, 'proj', 'refs', 'heads', 'main'),
      'utf8',
    );
    assert.equal(refText.trim(), head);
    const updates = (await auditLines(fixture.root)).filter((line) => line.action === 'ref-update');
    assert.equal(updates.length, 2, 'the update and its retry reached the server');
    assert.deepEqual(
      updates.map((u) => u.refs?.[0]?.result),
      ['ok', 'ok'],
      'the retry was answered as the success it was',
    );
    // A clone through the server gets the file byte for byte.
    const clone = fixture.track((await TempRepo.create({ init: false })).withEnv(env));
    await fs.rmdir(clone.dir);
    const cloned = await runCli(['clone', `${proxy.url}/proj`, clone.dir], {
      cwd: clone.root,
      env: clone.env,
    });
    assert.equal(cloned.code, 0, cloned.stderr);
    assert.ok(
      (await fs.readFile(clone.path('big.bin'))).equals(await fs.readFile(repo.path('big.bin'))),
    );
  });

  test('lock and unlock whose answers are lost still succeed', async () => {
    const repo = fixture.track((await TempRepo.create()).withEnv(env));
    await repo.ok(['remote', 'add', 'origin', `${proxy.url}/proj`]);
    proxy.rules = [
      { method: 'POST', path: /\/info\/lfs\/locks$/, fault: 'drop-after-answer', times: 1 },
      { method: 'POST', path: /\/unlock$/, fault: 'drop-after-answer', times: 1 },
    ];
    const before = proxy.fired('drop-after-answer');
    const locked = await repo.run(['lock', 'scene.blend']);
    assert.equal(locked.code, 0, locked.stderr);
    const listed = JSON.parse((await repo.ok(['locks', '--json'])).out) as {
      locks: { path: string; owner: { name: string } }[];
    };
    assert.deepEqual(
      listed.locks.map((l) => [l.path, l.owner.name]),
      [['scene.blend', 'alice']],
    );
    const unlocked = await repo.run(['unlock', 'scene.blend']);
    assert.equal(unlocked.code, 0, unlocked.stderr);
    assert.equal(proxy.fired('drop-after-answer') - before, 2);
    assert.deepEqual(JSON.parse((await repo.ok(['locks', '--json'])).out), { locks: [] });
  });
});
