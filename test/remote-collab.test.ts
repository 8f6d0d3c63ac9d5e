/**
 * Two people sharing a repository through a real `mediagit serve` process
 * on loopback: push, clone, a rejected non-fast-forward, pull with merge and
 * with rebase, a shallow clone that pushes and unshallows, tags, deletion —
 * with every working tree compared byte for byte. The same flow runs once
 * against a local-path remote (no server).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import { snapshot } from './git-twin.ts';
import { pseudoRandomBytes, runCli, TempRepo } from './helpers.ts';
import { createToken, useServerRoot } from './server.ts';

const MiB = 1024 * 1024;

interface Stats {
  objects: number;
  chunks: number;
  chunksSkipped: number;
  bytes: number;
}

async function clonePeer(
  source: string,
  env: NodeJS.ProcessEnv,
  extra: readonly string[] = [],
): Promise<TempRepo> {
  const peer = await TempRepo.create({ init: false });
  await fs.rmdir(peer.dir);
  const withEnv = peer.withEnv(env);
  const result = await runCli(['clone', ...extra, source, peer.dir], {
    cwd: peer.root,
    env: withEnv.env,
  });
  assert.equal(result.code, 0, result.stderr);
  return withEnv;
}

async function commitFile(repo: TempRepo, file: string, data: string | Buffer, message: string) {
  await fs.mkdir(path.dirname(repo.path(file)), { recursive: true });
  await fs.writeFile(repo.path(file), data);
  await repo.ok(['add', file]);
  await repo.ok(['commit', '-q', '-m', message]);
}

function insertAt(data: Buffer, at: number, insert: Buffer): Buffer {
  return Buffer.concat([data.subarray(0, at), insert, data.subarray(at)]);
}

async function logSubjects(repo: TempRepo): Promise<string[]> {
  const commits = JSON.parse((await repo.ok(['log', '--json'])).out) as { message: string }[];
  return commits.map((c) => c.message.split('\n')[0]!);
}

for (const mode of ['http', 'local'] as const) {
  describe(`collaborating through a ${mode === 'http' ? 'server' : 'local-path'} remote`, () => {
    const fixture = useServerRoot('remote', ['proj']);
    let url: string;
    let env: NodeJS.ProcessEnv = {};

    before(async () => {
      if (mode === 'http') {
        const server = await fixture.serve();
        env = { MEDIAGIT_TOKEN: await createToken(fixture.root, 'alice', 'proj', 'write') };
        url = server.url('proj');
      } else {
        url = `file://${path.join(fixture.root, 'proj')}`;
      }
    });

    test('push, clone, pull (merge and rebase), shallow clone, tags', async () => {
      const a = (await TempRepo.create({ chunkThreshold: MiB })).withEnv(env);
      fixture.track(a);
      const big = pseudoRandomBytes(12 * MiB, 1, 'collab');
      await fs.writeFile(a.path('readme.txt'), 'line 1\nline 2\nline 3\n');
      await fs.mkdir(a.path('assets'), { recursive: true });
      await fs.writeFile(a.path('assets/big.bin'), big);
      await a.ok(['add', '-A']);
      await a.ok(['commit', '-q', '-m', 'first']);
      await a.ok(['remote', 'add', 'origin', url]);
      const first = JSON.parse((await a.ok(['push', '--json', '-u', 'origin', 'main'])).out) as {
        refs: { ref: string; ok: boolean }[];
        stats: Stats;
      };
      assert.deepEqual(
        first.refs.map((r) => [r.ref, r.ok]),
        [['refs/heads/main', true]],
      );
      assert.ok(first.stats.chunks >= 6, `chunks sent: ${first.stats.chunks}`);

      const b = await clonePeer(url, env);
      fixture.track(b);
      assert.deepEqual(await snapshot(b.dir), await snapshot(a.dir));
      assert.equal((await b.ok(['status', '--porcelain'])).out, '');

      // B inserts 4 KiB into the big file: only the chunks around it travel.
      await commitFile(
        b,
        'assets/big.bin',
        insertAt(big, 5 * MiB, pseudoRandomBytes(4096, 2, 'collab')),
        'b edits big',
      );
      const edit = JSON.parse((await b.ok(['push', '--json'])).out) as { stats: Stats };
      assert.ok(edit.stats.chunksSkipped >= 4, `skipped ${edit.stats.chunksSkipped}`);
      assert.ok(edit.stats.bytes < 4 * MiB, `sent ${edit.stats.bytes} bytes for a 4 KiB insert`);

      // A has diverged: its push is refused until it pulls (merge).
      await commitFile(a, 'notes/a.txt', 'from a\n', 'a adds notes');
      const refused = await a.run(['push']);
      assert.equal(refused.code, 1, refused.stderr);
      assert.match(refused.stderr, /rejected/);
      await a.ok(['pull']);
      assert.deepEqual(await logSubjects(a), [
        `Merge branch 'main' of ${url}`,
        'a adds notes',
        'b edits big',
        'first',
      ]);
      await a.ok(['push']);

      // Both change again; B pushes first, A rebases onto it.
      await b.ok(['pull', '--ff-only']);
      await commitFile(b, 'readme.txt', 'line 1\nline 2 from b\nline 3\n', 'b edits readme');
      await b.ok(['push']);
      await commitFile(a, 'notes/a2.txt', 'second note\n', 'a adds a2');
      assert.equal((await a.run(['push'])).code, 1);
      await a.ok(['pull', '--rebase']);
      const subjects = await logSubjects(a);
      assert.equal(subjects[0], 'a adds a2');
      assert.equal(subjects[1], 'b edits readme');
      await a.ok(['push']);
      await b.ok(['pull']);
      assert.deepEqual(await snapshot(b.dir), await snapshot(a.dir));
      assert.deepEqual(await logSubjects(b), subjects);

      // Tags travel with --tags; deleting a branch on the remote.
      await a.ok(['tag', 'v1']);
      await a.ok(['push', '--tags']);
      await a.ok(['push', 'origin', 'main:refs/heads/scratch']);
      await b.ok(['fetch']);
      assert.equal(
        (await b.ok(['log', '-n', '1', '--oneline', 'v1'])).out.includes('a adds a2'),
        true,
      );
      await a.ok(['push', '--delete', 'origin', 'scratch']);
      const pruned = JSON.parse((await b.ok(['fetch', '--prune', '--json'])).out) as {
        changes: { ref: string; new: string | null }[];
      };
      assert.deepEqual(
        pruned.changes.map((c) => [c.ref, c.new]),
        [['refs/remotes/origin/scratch', null]],
      );

      // A shallow clone has the files and one commit; it can push and unshallow.
      const c = await clonePeer(url, env, ['--depth', '1']);
      fixture.track(c);
      assert.deepEqual(await snapshot(c.dir), await snapshot(a.dir));
      assert.deepEqual(await logSubjects(c), ['a adds a2']);
      await commitFile(c, 'from-c.txt', 'shallow but useful\n', 'c from a shallow clone');
      await c.ok(['push']);
      await a.ok(['pull']);
      assert.deepEqual(await snapshot(a.dir), await snapshot(c.dir));
      await c.ok(['fetch', '--unshallow']);
      assert.deepEqual(await logSubjects(c), await logSubjects(a));
    });
  });
}
