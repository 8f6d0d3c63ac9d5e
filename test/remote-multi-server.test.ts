/**
 * Several `mediagit serve` processes on one bucket (s3rver on loopback):
 * nothing a server keeps locally matters, refs move only by conditional
 * writes in the bucket, so
 * - ten clients pushing diverging commits to one branch, half through each
 *   server, end with exactly one winner and nine non-fast-forward rejections;
 * - a push through one server clones byte-identical through the other at once;
 * - a server killed mid-push loses nothing committed and leaves no ref
 *   pointing at a missing object.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import { before, describe, test } from 'node:test';
import { BackendRepo } from '../src/protocol/backend-repo.ts';
import { verifyRepo } from '../src/protocol/verify.ts';
import { collect, pseudoRandomBytes, runCli, TempRepo } from './helpers.ts';
import { useCloudRoot, type ServerProcess } from './server.ts';

const MiB = 1024 * 1024;

async function headOf(repo: TempRepo): Promise<string> {
  return (JSON.parse((await repo.ok(['log', '--json', '-n', '1'])).out) as { id: string }[])[0]!.id;
}

describe('two servers on one s3rver bucket', () => {
  const fixture = useCloudRoot('s3', 'shared', ['proj']);
  let one: ServerProcess;
  let two: ServerProcess;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    [one, two] = await Promise.all([fixture.serve(), fixture.serve()]);
    env = { MEDIAGIT_TOKEN: await fixture.createToken('alice', '*', 'write') };
  });

  const clone = async (url: string): Promise<TempRepo> => {
    const peer = fixture.track((await TempRepo.create({ init: false })).withEnv(env));
    await fs.rmdir(peer.dir);
    const result = await runCli(['clone', '-q', url, peer.dir], { cwd: peer.root, env: peer.env });
    assert.equal(result.code, 0, result.stderr);
    return peer;
  };

  const refOnBucket = async (name: string): Promise<string | undefined> => {
    const backend = (await fixture.backend()).child('proj');
    const head = await backend.head(name);
    return head
      ? Buffer.from(await backend.get(name))
          .toString('utf8')
          .trim()
      : undefined;
  };

  test('ten clients race one branch through two servers: exactly one wins', async () => {
    const base = fixture.track((await TempRepo.create()).withEnv(env));
    await fs.writeFile(base.path('readme.txt'), 'base\n');
    await base.ok(['add', '-A']);
    await base.ok(['commit', '-q', '-m', 'base']);
    await base.ok(['push', one.url('proj'), 'main']);

    const clients: TempRepo[] = [];
    for (let i = 0; i < 10; i++) {
      const peer = await clone((i % 2 === 0 ? one : two).url('proj'));
      await fs.writeFile(peer.path(`client-${i}.bin`), pseudoRandomBytes(256 * 1024, i, 'race'));
      await peer.ok(['add', '-A']);
      await peer.ok(['commit', '-q', '-m', `client ${i}`]);
      clients.push(peer);
    }
    const results = await Promise.all(
      clients.map((peer) => runCli(['push', 'origin', 'main'], { cwd: peer.dir, env: peer.env })),
    );
    const winners = results.flatMap((result, i) => (result.code === 0 ? [i] : []));
    assert.equal(winners.length, 1, results.map((r) => `${r.code}: ${r.stderr}`).join('\n'));
    for (const [i, result] of results.entries()) {
      if (i === winners[0]) continue;
      assert.equal(result.code, 1, result.stderr);
      assert.match(result.stderr, /! \[rejected\] +main -> main \((non-fast-forward|fetch first)/);
    }
    const winner = winners[0]!;
    const head = await headOf(clients[winner]!);
    assert.equal(await refOnBucket('refs/heads/main'), head);

    // At once, through the other server: the winner's commit, byte-identical.
    const other = winner % 2 === 0 ? two : one;
    const check = await clone(other.url('proj'));
    assert.equal(await headOf(check), head);
    assert.ok(
      (await fs.readFile(check.path(`client-${winner}.bin`))).equals(
        pseudoRandomBytes(256 * 1024, winner, 'race'),
      ),
    );
  });

  test('a server killed mid-push loses nothing committed and leaves no dangling ref', async () => {
    const victim = await fixture.serve();
    const a = await clone(one.url('proj'));
    const before = await headOf(a);
    const data = pseudoRandomBytes(160 * MiB, 9, 'killed-server');
    await fs.writeFile(a.path('take.bin'), data);
    await a.ok(['add', 'take.bin']);
    await a.ok(['commit', '-q', '-m', 'take']);
    await fixture.emulator.resetStats();
    const push = a.spawn(['push', victim.url('proj'), 'main']);
    const done = collect(push);
    while (push.exitCode === null) {
      if (((await fixture.emulator.stats())['bytesIn'] ?? 0) >= 70 * MiB) {
        victim.child.kill('SIGKILL');
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const result = await done;
    assert.notEqual(result.code, 0, 'the push through the killed server failed');
    assert.equal(await refOnBucket('refs/heads/main'), before, 'the branch did not move');
    const report = await verifyRepo(new BackendRepo((await fixture.backend()).child('proj')));
    assert.deepEqual(report.problems, [], 'every ref points at stored objects');
    // What was committed before still clones through the survivors.
    const survivor = await clone(two.url('proj'));
    assert.equal(await headOf(survivor), before);

    // The push, rerun through the other server, lands and clones byte-identical.
    await a.ok(['push', two.url('proj'), 'main']);
    const after = await clone(one.url('proj'));
    assert.ok((await fs.readFile(after.path('take.bin'))).equals(data));
  });
});
