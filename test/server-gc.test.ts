/**
 * Server-side gc (protocol/server-gc.ts, docs/gc.md "Server roots"): on a
 * server root on local disk and on an S3 bucket (s3rver), through
 * `mediagit gc --root` and `POST /admin/gc`:
 * - a deleted branch's packs are found unreachable, kept for the grace
 *   window, then deleted; stored bytes end within 5% of what the surviving
 *   refs reach (a fresh repository of them), clones are byte-identical and
 *   `fsck --root` is clean;
 * - objects pending deletion count as absent to `chunks/check`, so a push
 *   of the same content uploads fresh copies;
 * - a mostly-garbage pack is rewritten: its live records copied, the pack
 *   deleted;
 * - the fence: a ref update or pack commit reaching an object a sweep is
 *   deleting is refused, and goes through once the sweep is over;
 * - Git LFS objects are roots;
 * - clients pushing in a loop while gc runs every few seconds lose nothing.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import { BackendRepo } from '../src/protocol/backend-repo.ts';
import { DELETING_KEY, PENDING_KEY, parsePending } from '../src/protocol/gc-state.ts';
import { collectObjects } from '../src/protocol/reachability.ts';
import { RepoService } from '../src/protocol/service.ts';
import { serverGc, type ServerGcResult } from '../src/protocol/server-gc.ts';
import { cloudPackKey } from '../src/odb/cloud-pack.ts';
import { FsBackend } from '../src/storage/fs-backend.ts';
import type { StorageBackend } from '../src/storage/backend.ts';
import { isolatedEnv, pseudoRandomBytes, runCli, TempRepo, type CliResult } from './helpers.ts';
import { adminGc, clonedFiles, pushesWhileGc, storedObjectBytes } from './server-gc-scenario.ts';
import { createToken, useCloudRoot, useServerRoot, type ServerProcess } from './server.ts';

const KiB = 1024;
const MiB = 1024 * 1024;

function sha(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

async function headOf(repo: TempRepo): Promise<string> {
  return (JSON.parse((await repo.ok(['log', '--json', '-n', '1'])).out) as { id: string }[])[0]!.id;
}

function gcJson(result: CliResult): ServerGcResult[] {
  assert.equal(result.code, 0, result.stderr);
  return (JSON.parse(result.out) as { repositories: ServerGcResult[] }).repositories;
}

describe('server gc on a local root', () => {
  const fixture = useServerRoot('server-gc', ['proj', 'fresh']);
  let server: ServerProcess;
  let env: NodeJS.ProcessEnv;
  let adminKey: string;
  let work: TempRepo;
  const backend = (): StorageBackend => new FsBackend(path.join(fixture.root, 'proj'));
  const root = (...args: string[]): Promise<CliResult> =>
    runCli(args, { cwd: fixture.outer, env: work.env });
  const files = {
    main: pseudoRandomBytes(3 * MiB, 1, 'server-gc'),
    feature: pseudoRandomBytes(4 * MiB, 2, 'server-gc'),
  };

  before(async () => {
    server = await fixture.serve();
    env = { MEDIAGIT_TOKEN: await createToken(fixture.root, 'alice', '*', 'write') };
    adminKey = await createToken(fixture.root, 'root', '*', 'admin');
    work = fixture.track((await TempRepo.create({ chunkThreshold: 256 * KiB })).withEnv(env));
    await fs.writeFile(work.path('main.bin'), files.main);
    await work.ok(['add', '-A']);
    await work.ok(['commit', '-q', '-m', 'main']);
    await work.ok(['remote', 'add', 'origin', server.url('proj')]);
    await work.ok(['push', '-q', 'origin', 'main']);
  });

  test('a deleted branch: pending for the grace window, absent to chunks/check, then deleted; clones and fsck clean', async () => {
    await work.ok(['switch', '-q', '-c', 'feature']);
    await fs.writeFile(work.path('feature.bin'), files.feature);
    await work.ok(['add', '-A']);
    await work.ok(['commit', '-q', '-m', 'feature']);
    await work.ok(['push', '-q', 'origin', 'feature']);
    const feature = await headOf(work);
    const repo = new BackendRepo(backend());
    const mainId = (await repo.readRef('refs/heads/main'))!.id!;
    const featureChunks = (await collectObjects(repo, [feature], { haves: [mainId] })).chunks;
    assert.ok(featureChunks.length >= 2, `${featureChunks.length} chunks`);
    await work.ok(['push', '-q', 'origin', '--delete', 'feature']);
    const before = await storedObjectBytes(backend());

    // The default grace window (an hour): found, recorded, nothing deleted.
    const [first] = gcJson(await root('gc', '--root', fixture.root, '--repo', 'proj', '--json'));
    const recordedAt = Date.now();
    assert.equal(first!.deletedPacks, 0);
    assert.equal(first!.deletedObjects, 0);
    assert.ok(first!.pendingPacks >= 1, JSON.stringify(first));
    assert.equal(await storedObjectBytes(backend()), before);
    const pending = parsePending(await backend().get(PENDING_KEY));
    assert.ok(Object.keys(pending.packs).length >= 1);

    // Pending objects are absent to a client deciding what to upload, present to the rest.
    const service = new RepoService(new BackendRepo(backend()));
    assert.deepEqual(await service.missing(featureChunks), featureChunks);
    assert.deepEqual(await service.repo.missing(featureChunks), []);

    // An older date deletes nothing recorded after it; --dry-run changes nothing.
    const dry = gcJson(
      await root(
        'gc',
        '--root',
        fixture.root,
        '--repo',
        'proj',
        '--prune=now',
        '--dry-run',
        '--json',
      ),
    );
    assert.ok(dry[0]!.deletedPacks >= 1);
    assert.equal(await storedObjectBytes(backend()), before);

    // Pushed again once the server has re-read the pending list (within
    // 5 s while it had none): fresh copies travel, and gc keeps them.
    await new Promise((resolve) =>
      setTimeout(resolve, Math.max(0, recordedAt + 5500 - Date.now())),
    );
    // (A different commit holding the same file, so its push makes another pack.)
    await work.ok(['switch', '-q', '-c', 'again', 'main']);
    await fs.writeFile(work.path('feature.bin'), files.feature);
    await fs.writeFile(work.path('again.txt'), 'the same file, again\n');
    await work.ok(['add', '-A']);
    await work.ok(['commit', '-q', '-m', 'again']);
    const sent0 = await server.metric('mediagit_http_bytes_received_total');
    await work.ok(['push', '-q', 'origin', 'again']);
    const sent = (await server.metric('mediagit_http_bytes_received_total')) - sent0;
    assert.ok(sent > files.feature.length * 0.9, `the push sent ${sent} bytes`);
    // The very same commit pushed again names the pending pack itself: kept too.
    await work.ok(['push', '-q', 'origin', 'feature']);
    gcJson(await root('gc', '--root', fixture.root, '--repo', 'proj', '--prune=now', '--json'));
    for (const branch of ['feature', 'again']) {
      const expected: Record<string, string> = {
        'main.bin': sha(files.main),
        'feature.bin': sha(files.feature),
      };
      if (branch === 'again') expected['again.txt'] = sha(Buffer.from('the same file, again\n'));
      assert.deepEqual(await clonedFiles(server.url('proj'), branch, env, fixture.track), expected);
    }

    // Deleted for good: stored bytes within 5% of a fresh repository of main alone.
    await work.ok(['push', '-q', 'origin', '--delete', 'feature', 'again']);
    const [last] = gcJson(
      await root('gc', '--root', fixture.root, '--repo', 'proj', '--prune=now', '--json'),
    );
    assert.ok(last!.bytesReclaimed >= files.feature.length, JSON.stringify(last));
    await work.ok(['push', '-q', server.url('fresh'), 'main']);
    const kept = await storedObjectBytes(backend());
    const fresh = await storedObjectBytes(new FsBackend(path.join(fixture.root, 'fresh')));
    assert.ok(Math.abs(kept - fresh) <= fresh * 0.05, `stored ${kept} bytes, fresh ${fresh}`);
    assert.deepEqual(await clonedFiles(server.url('proj'), 'main', env, fixture.track), {
      'main.bin': sha(files.main),
    });
    const fsck = await root('fsck', '--root', fixture.root);
    assert.equal(fsck.code, 0, fsck.out + fsck.stderr);
    assert.match(fsck.out, /fsck: proj: no problems found/);
  });

  test('a mostly-garbage pack is rewritten: live records copied, the pack deleted', async () => {
    // One pack holding a small live file and a large file only a deleted branch reaches.
    await work.ok(['switch', '-q', 'main']);
    await work.ok(['switch', '-q', '-c', 'mixed']);
    const small = pseudoRandomBytes(300 * KiB, 3, 'server-gc');
    const large = pseudoRandomBytes(3 * MiB, 4, 'server-gc');
    await fs.writeFile(work.path('small.bin'), small);
    await fs.writeFile(work.path('large.bin'), large);
    await work.ok(['add', '-A']);
    await work.ok(['commit', '-q', '-m', 'mixed']);
    await work.ok(['push', '-q', 'origin', 'mixed']);
    await work.ok(['switch', '-q', 'main']);
    await fs.writeFile(work.path('small.bin'), small);
    await work.ok(['add', '-A']);
    await work.ok(['commit', '-q', '-m', 'small only']);
    await work.ok(['push', '-q', 'origin', 'main']);
    await work.ok(['push', '-q', 'origin', '--delete', 'mixed']);
    const [result] = gcJson(
      await root('gc', '--root', fixture.root, '--repo', 'proj', '--prune=now', '--json'),
    );
    assert.ok(result!.rewrittenPacks >= 1, JSON.stringify(result));
    assert.ok(result!.copiedObjects >= 1, JSON.stringify(result));
    assert.ok(result!.bytesReclaimed >= large.length, JSON.stringify(result));
    assert.deepEqual(await clonedFiles(server.url('proj'), 'main', env, fixture.track), {
      'main.bin': sha(files.main),
      'small.bin': sha(small),
    });
    const fsck = await root('fsck', '--root', fixture.root, '--repo', 'proj');
    assert.equal(fsck.code, 0, fsck.out + fsck.stderr);
  });

  test('the fence: a ref update or pack commit reaching what a sweep deletes is refused, then accepted', async () => {
    await work.ok(['switch', '-q', '-c', 'fenced']);
    await fs.writeFile(work.path('fenced.bin'), pseudoRandomBytes(600 * KiB, 5, 'server-gc'));
    await work.ok(['add', '-A']);
    await work.ok(['commit', '-q', '-m', 'fenced']);
    await work.ok(['push', '-q', 'origin', 'fenced']);
    const commit = await headOf(work);
    await work.ok(['push', '-q', 'origin', '--delete', 'fenced']);
    const store = backend();
    const repo = new BackendRepo(store);
    const pack = (await repo.catalog.locate([commit]))[0]!.pack;
    // A sweep in progress deleting that pack (what gc writes before deleting).
    const sweep = { version: 1, startedAt: Date.now(), objects: [], packs: [pack] };
    await store.put(DELETING_KEY, Buffer.from(JSON.stringify(sweep)));
    const service = new RepoService(new BackendRepo(store));
    const update = { ref: 'refs/heads/fenced', old: null, new: commit };
    const [refused] = await service.updateRefs([update]);
    assert.equal(refused!.ok, false);
    assert.equal(refused!.reason, 'missing-objects');
    assert.match(refused!.message!, /being removed by gc/);
    await assert.rejects(service.commitPacks([pack]), /being removed by gc/);
    assert.equal(await repo.readRef('refs/heads/fenced').then((r) => r?.id), undefined);
    // The sweep is over (and kept the pack): the same update goes through.
    await store.delete(DELETING_KEY);
    const [accepted] = await service.updateRefs([update]);
    assert.equal(accepted!.ok, true, accepted!.message);
    await work.ok(['push', '-q', 'origin', '--delete', 'fenced']);
  });

  test('a pack this server verified, then gc deleted, is not committed again from memory', async () => {
    // A push whose content equals a deleted branch's makes a pack of the same
    // name; if the server trusted its memory of having verified that pack,
    // an index naming a deleted pack would let the ref land on nothing.
    await work.ok(['switch', '-q', '-c', 'verified-twice', 'main']);
    await fs.writeFile(work.path('again.bin'), pseudoRandomBytes(600 * KiB, 11, 'server-gc'));
    await work.ok(['add', '-A']);
    await work.ok(['commit', '-q', '-m', 'again']);
    await work.ok(['push', '-q', 'origin', 'verified-twice']);
    const commit = await headOf(work);
    await work.ok(['push', '-q', 'origin', '--delete', 'verified-twice']);
    await work.ok(['switch', '-q', 'main']);
    const store = backend();
    const repo = new BackendRepo(store);
    const pack = (await repo.catalog.locate([commit]))[0]!.pack;
    // This server process receives (and verifies) the pack's bytes.
    const bytes = await store.get(cloudPackKey(pack));
    await store.delete(cloudPackKey(pack));
    await repo.storePack(pack, bytes);
    // gc deletes it (nothing reaches it), through another process's view.
    await serverGc(store, 'proj', { pruneBefore: Date.now(), immediate: true, fenceWaitMs: 0 });
    assert.equal(await store.head(cloudPackKey(pack)), undefined, 'gc deleted the pack');
    await assert.rejects(repo.commitPacks([pack]), /has not been uploaded/);
  });

  test('Git LFS objects are roots: gc keeps them (one stored as a blob, one cut into chunks)', async () => {
    // A run first, so the one-time scan for keyless LFS blobs of older servers is done.
    gcJson(await root('gc', '--root', fixture.root, '--repo', 'proj', '--json'));
    const auth = {
      authorization: `Basic ${Buffer.from(`x:${env['MEDIAGIT_TOKEN']}`).toString('base64')}`,
    };
    const lfsObject = (oid: string): string => `${server.url('proj')}.git/info/lfs/objects/${oid}`;
    const contents = [
      pseudoRandomBytes(2 * MiB + 123, 6, 'server-gc'),
      pseudoRandomBytes(5 * MiB + 7, 9, 'server-gc'),
    ];
    for (const content of contents) {
      const put = await fetch(lfsObject(sha(content)), {
        method: 'PUT',
        headers: { 'content-type': 'application/octet-stream', ...auth },
        body: content,
      });
      assert.ok([200, 201].includes(put.status), `${put.status}: ${await put.text()}`);
    }
    const kinds = await Promise.all(
      contents.map(async (c) => {
        const oid = sha(c);
        return Buffer.from(await backend().get(`lfs/${oid.slice(0, 2)}/${oid.slice(2)}`))
          .toString()
          .trim();
      }),
    );
    assert.equal(kinds[0], 'blob');
    assert.match(kinds[1]!, /^[0-9a-f]{64}$/);
    gcJson(await root('gc', '--root', fixture.root, '--repo', 'proj', '--prune=now', '--json'));
    for (const content of contents) {
      const got = await fetch(lfsObject(sha(content)), { headers: auth });
      assert.equal(got.status, 200);
      assert.equal(sha(Buffer.from(await got.arrayBuffer())), sha(content));
    }
    const fsck = await root('fsck', '--root', fixture.root, '--repo', 'proj', '--json');
    assert.equal(fsck.code, 0, fsck.out + fsck.stderr);
    const report = JSON.parse(fsck.out) as { repositories: { lfsObjects: number }[] };
    assert.equal(report.repositories[0]!.lfsObjects, 2);

    // As an older server left it: a blob-stored LFS object with no key. The
    // first run on such a repository keeps it and writes its key.
    const oid = sha(contents[0]!);
    const key = `lfs/${oid.slice(0, 2)}/${oid.slice(2)}`;
    await backend().delete(key);
    await backend().delete('gc/lfs-blob-keys');
    gcJson(await root('gc', '--root', fixture.root, '--repo', 'proj', '--prune=now', '--json'));
    assert.equal(Buffer.from(await backend().get(key)).toString(), 'blob\n');
    const got = await fetch(lfsObject(oid), { headers: auth });
    assert.equal(sha(Buffer.from(await got.arrayBuffer())), oid);
  });

  test('bad usage and a second gc on the same repository are refused clearly', async () => {
    const noRoot = await root('gc', '--repo', 'proj');
    assert.equal(noRoot.code, 129);
    assert.match(noRoot.stderr, /--repo needs --root/);
    const aggressive = await root('gc', '--root', fixture.root, '--aggressive');
    assert.equal(aggressive.code, 129);
    assert.match(aggressive.stderr, /--aggressive does not apply to --root/);
    const missing = await root('gc', '--root', fixture.root, '--repo', 'nope');
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /no repository 'nope'/);
    const store = backend();
    await store.put(
      'gc/lock',
      Buffer.from(JSON.stringify({ holder: 'elsewhere', expiresAt: Date.now() + 60_000 })),
    );
    try {
      const busy = await root('gc', '--root', fixture.root, '--repo', 'proj');
      assert.notEqual(busy.code, 0);
      assert.match(busy.stderr, /gc is already running on proj \(elsewhere\)/);
      const viaApi = await adminGc(server.base, adminKey, { repo: 'proj' });
      assert.equal(viaApi.status, 409);
    } finally {
      await store.delete('gc/lock');
    }
    const writer = await adminGc(server.base, env['MEDIAGIT_TOKEN']!, { repo: 'proj' });
    assert.equal(writer.status, 403);
    // Inside a bare repository, plain `gc` is server gc of that repository.
    const inside = await runCli(['gc', '--dry-run', '--json'], {
      cwd: path.join(fixture.root, 'proj'),
      env: work.env,
    });
    assert.deepEqual(
      gcJson(inside).map((r) => r.repo),
      ['proj'],
    );
  });
});

describe('server gc on an S3 bucket while clients push', () => {
  const fixture = useCloudRoot('s3', 'gcload', ['proj', 'fresh']);
  let server: ServerProcess;
  let env: NodeJS.ProcessEnv;
  let adminKey: string;

  before(async () => {
    server = await fixture.serve();
    env = { MEDIAGIT_TOKEN: await fixture.createToken('alice', '*', 'write') };
    adminKey = await fixture.createToken('root', '*', 'admin');
  });

  test('4 clients push in a loop while gc runs every few seconds: every ref clones byte-identical, fsck clean, then bytes within 5%', async (t) => {
    const load = await pushesWhileGc({
      url: server.url('proj'),
      repo: 'proj',
      base: server.base,
      adminKey,
      env,
      clients: 4,
      // 15 s of load, longer (up to 90 s) until gc has deleted a pack: with
      // 15 s alone, one CI run in several ended before any sweep deleted;
      // with 40 s, one run whose pushes were slowed by a parallel test file
      // (16 pushes in all, the usual 32) still ended before any did.
      seconds: 15,
      untilSweptSeconds: 90,
      graceSeconds: 2,
      gcPauseMs: 500,
      fileBytes: 768 * KiB,
      track: fixture.track,
      log: (line) => t.diagnostic(line),
    });
    t.diagnostic(
      `${load.pushes} pushes, ${load.gcRuns.length} gc runs, ${load.gcRefusals.length} pushes refused by the fence and rerun`,
    );
    assert.ok(load.gcRuns.length >= 3, `${load.gcRuns.length} gc runs`);
    assert.ok(
      load.gcRuns.some((r) => r.deletedPacks > 0),
      'no gc run deleted anything: the scenario did not exercise the sweep',
    );
    for (const { branch, files } of load.branches) {
      assert.deepEqual(await clonedFiles(server.url('proj'), branch, env, fixture.track), files);
    }
    const check = (): Promise<CliResult> =>
      runCli(['fsck', '--root', fixture.root, '--repo', 'proj'], {
        cwd: fixture.outer,
        env: { ...isolatedEnv(fixture.outer), ...fixture.env },
      });
    const fsck = await check();
    assert.equal(fsck.code, 0, fsck.out + fsck.stderr);

    // Every branch but one deleted: two runs (record, then delete after the grace window).
    const store = (await fixture.backend()).child('proj');
    const repo = new BackendRepo(store);
    for (const { name } of await repo.listRefs()) {
      if (name === 'refs/heads/client-0') continue;
      const ref = await repo.readRef(name);
      assert.ok(await repo.casRef(name, ref!.etag, null));
    }
    assert.equal(
      (await adminGc(server.base, adminKey, { repo: 'proj', graceSeconds: 0 })).status,
      200,
    );
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const after = await adminGc(server.base, adminKey, { repo: 'proj', graceSeconds: 1 });
    assert.equal(after.status, 200, after.message);
    assert.ok(
      (await server.metric('mediagit_gc_runs_total', 'result="ok"')) >= load.gcRuns.length + 2,
    );
    assert.ok((await server.metric('mediagit_gc_bytes_reclaimed_total')) > 0);
    const survivor = load.branches[0]!;
    const clone = fixture.track((await TempRepo.create({ init: false })).withEnv(env));
    await fs.rmdir(clone.dir);
    const cloned = await runCli(
      ['clone', '-q', '-b', survivor.branch, server.url('proj'), clone.dir],
      {
        cwd: clone.root,
        env: clone.env,
      },
    );
    assert.equal(cloned.code, 0, cloned.stderr);
    await clone.ok(['push', '-q', server.url('fresh'), survivor.branch]);
    const kept = await storedObjectBytes(store);
    const fresh = await storedObjectBytes((await fixture.backend()).child('fresh'));
    t.diagnostic(`stored ${kept} bytes; a fresh repository of the surviving ref ${fresh}`);
    assert.ok(Math.abs(kept - fresh) <= fresh * 0.05, `stored ${kept} bytes, fresh ${fresh}`);
    const again = await check();
    assert.equal(again.code, 0, again.out + again.stderr);
  });
});

for (const kind of ['az', 'gs'] as const) {
  describe(`server gc on ${kind === 'az' ? 'an Azure Blob (azurite)' : 'a GCS (emulator)'} root`, () => {
    const fixture = useCloudRoot(kind, `gc${kind}`, ['proj']);

    test('a deleted branch is recorded, then deleted; the survivor clones byte-identical and fsck is clean', async () => {
      const server = await fixture.serve();
      const env = { MEDIAGIT_TOKEN: await fixture.createToken('alice', 'proj', 'write') };
      const work = fixture.track(
        (await TempRepo.create({ chunkThreshold: 256 * KiB })).withEnv(env),
      );
      const kept = pseudoRandomBytes(1 * MiB, 7, 'server-gc');
      await fs.writeFile(work.path('kept.bin'), kept);
      await work.ok(['add', '-A']);
      await work.ok(['commit', '-q', '-m', 'kept']);
      await work.ok(['push', '-q', server.url('proj'), 'main']);
      await work.ok(['switch', '-q', '-c', 'gone']);
      await fs.writeFile(work.path('gone.bin'), pseudoRandomBytes(2 * MiB, 8, 'server-gc'));
      await work.ok(['add', '-A']);
      await work.ok(['commit', '-q', '-m', 'gone']);
      await work.ok(['push', '-q', server.url('proj'), 'gone']);
      await work.ok(['push', '-q', server.url('proj'), '--delete', 'gone']);
      const cli = (...args: string[]): Promise<CliResult> =>
        runCli(args, {
          cwd: fixture.outer,
          env: { ...isolatedEnv(fixture.outer), ...fixture.env },
        });
      const store = (await fixture.backend()).child('proj');
      const before = await storedObjectBytes(store);
      const [recorded] = gcJson(
        await cli('gc', '--root', fixture.root, '--prune=1.hour.ago', '--json'),
      );
      assert.equal(recorded!.deletedPacks, 0);
      assert.ok(recorded!.pendingPacks >= 1, JSON.stringify(recorded));
      const [swept] = gcJson(await cli('gc', '--root', fixture.root, '--prune=now', '--json'));
      assert.ok(swept!.bytesReclaimed >= 2 * MiB, JSON.stringify(swept));
      assert.ok((await storedObjectBytes(store)) <= before - 2 * MiB);
      assert.deepEqual(await clonedFiles(server.url('proj'), 'main', env, fixture.track), {
        'kept.bin': sha(kept),
      });
      const fsck = await cli('fsck', '--root', fixture.root);
      assert.equal(fsck.code, 0, fsck.out + fsck.stderr);
    });
  });
}
