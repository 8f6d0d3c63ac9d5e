/**
 * Ten clients push diverging commits to one branch at once, through two
 * server processes sharing one root: exactly one push is a fast-forward
 * when it lands, so exactly one succeeds, the other nine get a
 * non-fast-forward refusal, the branch ends at the winner's commit, and the
 * repository on the server verifies completely. Then the losers pull and
 * push one after another, and every push lands.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import { BackendRepo } from '../src/protocol/backend-repo.ts';
import { verifyRepo } from '../src/protocol/verify.ts';
import { FsBackend } from '../src/storage/fs-backend.ts';
import { snapshot } from './git-twin.ts';
import { collect, pseudoRandomBytes, runCli, TempRepo } from './helpers.ts';
import { createToken, useServerRoot, type ServerProcess } from './server.ts';

const CLIENTS = 10;

describe('many pushers, one branch', () => {
  const fixture = useServerRoot('race', ['proj']);
  let servers: ServerProcess[] = [];
  let token: string;

  before(async () => {
    token = await createToken(fixture.root, 'team', 'proj', 'write');
    servers = await Promise.all([fixture.serve(), fixture.serve()]);
  });

  async function headOf(repo: TempRepo): Promise<string> {
    const head = await repo.head();
    return head.id!;
  }

  test('ten concurrent pushes to one branch through two server processes', async () => {
    const env = { MEDIAGIT_TOKEN: token };
    const seed = fixture.track(await TempRepo.create({ chunkThreshold: 1024 * 1024 })).withEnv(env);
    await fs.writeFile(seed.path('base.bin'), pseudoRandomBytes(3 * 1024 * 1024, 1, 'race'));
    await seed.ok(['add', 'base.bin']);
    await seed.ok(['commit', '-q', '-m', 'base']);
    await seed.ok(['remote', 'add', 'origin', servers[0]!.url('proj')]);
    await seed.ok(['push', '-u', 'origin', 'main']);

    const peers: TempRepo[] = [];
    for (let i = 0; i < CLIENTS; i++) {
      const peer = fixture.track(await TempRepo.create({ init: false })).withEnv(env);
      await fs.rmdir(peer.dir);
      const url = servers[i % 2]!.url('proj');
      const cloned = await runCli(['clone', '-q', url, peer.dir], {
        cwd: peer.root,
        env: peer.env,
      });
      assert.equal(cloned.code, 0, cloned.stderr);
      await fs.writeFile(
        peer.path(`peer-${i}.bin`),
        pseudoRandomBytes(200_000 + i, 10 + i, 'race'),
      );
      await peer.ok(['add', '-A']);
      await peer.ok(['commit', '-q', '-m', `peer ${i}`]);
      peers.push(peer);
    }

    const results = await Promise.all(peers.map((peer) => collect(peer.spawn(['push', '--json']))));
    const winners = results.flatMap((r, i) => (r.code === 0 ? [i] : []));
    assert.equal(winners.length, 1, results.map((r) => `${r.code} ${r.stderr}`).join('\n'));
    for (const [i, result] of results.entries()) {
      if (i === winners[0]) continue;
      assert.equal(result.code, 1, result.stderr);
      const reason = (JSON.parse(result.out) as { refs: { reason: string }[] }).refs[0]!.reason;
      assert.ok(['stale', 'non-fast-forward'].includes(reason), reason);
    }
    const repo = new BackendRepo(new FsBackend(path.join(fixture.root, 'proj')));
    const winner = peers[winners[0]!]!;
    assert.equal((await repo.readRef('refs/heads/main'))?.id, await headOf(winner));
    const report = await verifyRepo(repo);
    assert.deepEqual(report.problems, []);
    assert.equal(report.refs, 1);

    // The others integrate and push one at a time: every push lands.
    for (const [i, peer] of peers.entries()) {
      if (i === winners[0]) continue;
      await peer.ok(['pull', '-q']);
      await peer.ok(['push', '-q']);
    }
    const last = peers.findLast((_, i) => i !== winners[0])!;
    assert.equal((await repo.readRef('refs/heads/main'))?.id, await headOf(last));
    const final = await verifyRepo(repo);
    assert.deepEqual(final.problems, []);
    await seed.ok(['pull', '-q']);
    const files = Object.keys(await snapshot(seed.dir)).sort();
    assert.deepEqual(
      files,
      ['base.bin', ...Array.from({ length: CLIENTS }, (_, i) => `peer-${i}.bin`)].sort(),
    );
    assert.deepEqual(await snapshot(seed.dir), await snapshot(last.dir));
  });
});
