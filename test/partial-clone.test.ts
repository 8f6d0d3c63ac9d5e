/**
 * Partial clones (docs/partial-clone.md) against one real `mediagit serve`
 * on loopback: `clone --filter=blob:none` moves metadata only; a checkout of
 * one file fetches exactly that file's chunks; a lazy working copy edits,
 * merges, stashes, rebases, switches and pushes, and a full clone sees the
 * same trees; with the remote unreachable every command that needs absent
 * content fails with one line naming the file and the remote and changes
 * nothing; `prefetch` and `blob:limit` fetch ahead.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import { snapshot } from './git-twin.ts';
import { pseudoRandomBytes, runCli, TempRepo } from './helpers.ts';
import { createToken, useServerRoot, type ServerProcess } from './server.ts';
import { readManifest } from '../src/odb/file-read.ts';
import { Repository } from '../src/repo/repository.ts';
import { resolveCommit } from '../src/repo/revision.ts';
import { flattenCommit, readCommit } from '../src/repo/tree-ops.ts';

const MiB = 1024 * 1024;
const BYTES_SENT = 'mediagit_http_bytes_sent_total';
const REQUESTS = 'mediagit_http_requests_total';

/** Every chunk object stored in the repository at `dir` (read without fetching). */
async function localChunks(dir: string): Promise<Set<string>> {
  const repo = await Repository.discover(dir);
  const out = new Set<string>();
  for await (const id of repo.objects.list()) {
    if ((await repo.objects.info(id)).type === 'chunk') out.add(id);
  }
  return out;
}

/** The chunk IDs of the chunked files at `paths` in `rev`, read in `dir`. */
/** What an interrupted fetch kept: some of `wanted` but not all, nothing else, all sound. */
async function checkKeptPart(
  lazy: TempRepo,
  wanted: ReadonlySet<string>,
  kept: ReadonlySet<string>,
): Promise<void> {
  assert.ok(kept.size > 0, 'nothing was kept');
  assert.ok(kept.size < wanted.size, 'the fetch ended before it could be stopped');
  for (const id of kept) assert.ok(wanted.has(id));
  // What arrived is whole and verified: fsck finds no problem.
  const fsck = await lazy.ok(['fsck']);
  assert.match(fsck.out + fsck.stderr, /no problems found/);
}

/** The bytes of big/e.bin (at origin/big) in chunks that are not in `kept`. */
async function bigFileBytesOutside(dir: string, kept: ReadonlySet<string>): Promise<number> {
  const repo = await Repository.discover(dir);
  const files = await flattenCommit(repo.objects, await resolveCommit(repo, 'origin/big'));
  const manifest = await readManifest(repo.objects, files.get('big/e.bin')!.id);
  return manifest.chunks
    .filter((chunk) => !kept.has(chunk.id))
    .reduce((sum, chunk) => sum + chunk.length, 0);
}

/**
 * The chunks of `paths` in `rev` of the clone in `dir`; their manifests are
 * read from `full`, the complete repository that made them (a partial clone
 * leaves them on the remote until it needs them).
 */
async function chunksOf(
  dir: string,
  rev: string,
  paths: readonly string[],
  full: string,
): Promise<Set<string>> {
  const repo = await Repository.discover(dir);
  const complete = await Repository.discover(full);
  const files = await flattenCommit(repo.objects, await resolveCommit(repo, rev));
  const out = new Set<string>();
  for (const p of paths) {
    const file = files.get(p);
    assert.ok(file?.kind === 'manifest', `${p} is a chunked file in ${rev}`);
    for (const chunk of (await readManifest(complete.objects, file.id)).chunks) out.add(chunk.id);
  }
  return out;
}

/** The chunks of every chunked file of at most `limit` bytes in any commit of the repository. */
async function smallFileChunks(dir: string, limit: number): Promise<Set<string>> {
  const repo = await Repository.discover(dir);
  const out = new Set<string>();
  const seen = new Set<string>();
  const queue = [
    await resolveCommit(repo, 'origin/main'),
    await resolveCommit(repo, 'origin/feat'),
  ];
  for (let id = queue.pop(); id !== undefined; id = queue.pop()) {
    if (seen.has(id)) continue;
    seen.add(id);
    queue.push(...(await readCommit(repo.objects, id)).parents);
    for (const file of (await flattenCommit(repo.objects, id)).values()) {
      if (file.kind !== 'manifest' || file.size > limit) continue;
      for (const chunk of (await readManifest(repo.objects, file.id)).chunks) out.add(chunk.id);
    }
  }
  return out;
}

function sorted(set: Iterable<string>): string[] {
  return [...set].sort();
}

function added(before: Set<string>, after: Set<string>): Set<string> {
  return new Set([...after].filter((id) => !before.has(id)));
}

/** HEAD, the index, every ref and the working tree: what a failed command must not change. */
async function repoState(repo: TempRepo): Promise<Record<string, string>> {
  const state: Record<string, string> = {};
  const read = async (rel: string): Promise<void> => {
    const full = path.join(repo.gitDir, rel);
    const stats = await fs.stat(full).catch(() => undefined);
    if (!stats) return;
    if (stats.isDirectory()) {
      for (const name of await fs.readdir(full)) await read(path.join(rel, name));
    } else state[rel] = (await fs.readFile(full)).toString('base64');
  };
  for (const rel of ['HEAD', 'index', 'refs', 'config', 'MERGE_HEAD', 'ORIG_HEAD']) await read(rel);
  for (const [p, item] of Object.entries(await snapshot(repo.dir))) state[`work:${p}`] = item;
  return state;
}

describe('partial clone through a server', () => {
  const fixture = useServerRoot('partial', ['proj']);
  let server: ServerProcess;
  let url: string;
  let env: NodeJS.ProcessEnv = {};
  let origin: TempRepo;
  const data = {
    a: pseudoRandomBytes(3 * MiB, 1, 'partial-a'),
    b: pseudoRandomBytes(3 * MiB, 2, 'partial-b'),
    c: pseudoRandomBytes(2 * MiB, 3, 'partial-c'),
    d: pseudoRandomBytes(2 * MiB, 4, 'partial-d'),
  };

  async function lazyClone(
    extra: readonly string[],
  ): Promise<{ repo: TempRepo; stats: { chunks: number } }> {
    const peer = fixture.track(await TempRepo.create({ init: false })).withEnv(env);
    await fs.rmdir(peer.dir);
    const result = await runCli(['clone', '--json', ...extra, url, peer.dir], {
      cwd: peer.root,
      env: peer.env,
    });
    assert.equal(result.code, 0, result.stderr);
    return { repo: peer, stats: (JSON.parse(result.out) as { stats: { chunks: number } }).stats };
  }

  before(async () => {
    server = await fixture.serve();
    env = { MEDIAGIT_TOKEN: await createToken(fixture.root, 'alice', 'proj', 'write') };
    url = server.url('proj');
    origin = fixture.track(await TempRepo.create({ chunkThreshold: MiB })).withEnv(env);
    await fs.mkdir(origin.path('art'));
    await fs.writeFile(origin.path('art/a.bin'), data.a);
    await fs.writeFile(origin.path('art/b.bin'), data.b);
    await fs.writeFile(origin.path('c.bin'), data.c);
    await fs.writeFile(origin.path('notes.txt'), 'one\ntwo\nthree\n');
    await origin.ok(['add', '-A']);
    await origin.ok(['commit', '-q', '-m', 'first']);
    await origin.ok(['switch', '-q', '-c', 'feat']);
    await fs.mkdir(origin.path('feat'));
    await fs.writeFile(origin.path('feat/d.bin'), data.d);
    await origin.ok(['add', '-A']);
    await origin.ok(['commit', '-q', '-m', 'feature']);
    await origin.ok(['switch', '-q', 'main']);
    await origin.ok(['remote', 'add', 'origin', url]);
    await origin.ok(['push', '-q', 'origin', 'main', 'feat']);
  });

  test('blob:none moves metadata only; checking out one file fetches exactly its chunks', async () => {
    const sent0 = await server.metric(BYTES_SENT);
    const wants = (): Promise<number> => server.metric(REQUESTS, '/objects/want"');
    const wants0 = await wants();
    const { repo: lazy, stats } = await lazyClone(['--filter=blob:none', '--no-checkout']);
    const sent1 = await server.metric(BYTES_SENT);
    // The one want, asked while the repository was being created, is the one used.
    assert.equal((await wants()) - wants0, 1, 'objects/want requests');
    assert.equal(stats.chunks, 0);
    assert.equal((await localChunks(lazy.dir)).size, 0);
    assert.ok(sent1 - sent0 < 256 * 1024, `clone sent ${sent1 - sent0} bytes`);

    await lazy.ok(['checkout', 'HEAD', '--', 'art/a.bin']);
    const sent2 = await server.metric(BYTES_SENT);
    assert.deepEqual(await fs.readFile(lazy.path('art/a.bin')), data.a);
    const wanted = await chunksOf(lazy.dir, 'HEAD', ['art/a.bin'], origin.dir);
    assert.deepEqual(sorted(await localChunks(lazy.dir)), sorted(wanted));
    // Pseudo-random chunks are stored as they are: the file's bytes, plus framing.
    const moved = sent2 - sent1;
    assert.ok(moved >= data.a.length && moved < data.a.length + 256 * 1024, `sent ${moved}`);

    // gc keeps working on what is here; fsck counts absent chunks as promised.
    await lazy.ok(['gc', '-q']);
    const fsck = await lazy.ok(['fsck']);
    assert.match(fsck.stderr + fsck.out, /no problems found/);
    assert.match(fsck.stderr + fsck.out, /objects absent, promised by the remote/);
    assert.deepEqual(sorted(await localChunks(lazy.dir)), sorted(wanted));

    // restore and show fetch what they read, and nothing else.
    await lazy.ok(['restore', '--source', 'HEAD', '--worktree', 'c.bin']);
    assert.deepEqual(await fs.readFile(lazy.path('c.bin')), data.c);
    const shown = await lazy.ok(['show', 'origin/feat:feat/d.bin']);
    assert.deepEqual(shown.stdout, data.d);
    assert.deepEqual(
      sorted(await localChunks(lazy.dir)),
      sorted(
        new Set([
          ...wanted,
          ...(await chunksOf(lazy.dir, 'HEAD', ['c.bin'], origin.dir)),
          ...(await chunksOf(lazy.dir, 'origin/feat', ['feat/d.bin'], origin.dir)),
        ]),
      ),
    );
  });

  test('a lazy working copy edits, merges, stashes, rebases, switches and pushes', async () => {
    const { repo: lazy, stats } = await lazyClone(['--filter=blob:none']);
    // The checkout of HEAD fetched HEAD's files (as Git's partial clone does), not feat's.
    assert.deepEqual(await snapshot(lazy.dir), await snapshot(origin.dir));
    const onMain = await localChunks(lazy.dir);
    const mainChunks = await chunksOf(
      lazy.dir,
      'HEAD',
      ['art/a.bin', 'art/b.bin', 'c.bin'],
      origin.dir,
    );
    assert.deepEqual(sorted(onMain), sorted(mainChunks));
    // Small files stored whole (blobs) stay on the remote too, and came with the chunks.
    const opened = await Repository.discover(lazy.dir);
    const headFiles = await flattenCommit(opened.objects, await resolveCommit(opened, 'HEAD'));
    const blobs = [...headFiles.values()].filter((file) => file.kind === 'blob').length;
    assert.ok(blobs > 0);
    assert.equal(stats.chunks, mainChunks.size + blobs);

    // switch fetches only the file the other branch adds.
    await lazy.ok(['switch', '-q', 'feat']);
    assert.deepEqual(await fs.readFile(lazy.path('feat/d.bin')), data.d);
    assert.deepEqual(
      sorted(added(onMain, await localChunks(lazy.dir))),
      sorted(await chunksOf(lazy.dir, 'HEAD', ['feat/d.bin'], origin.dir)),
    );
    await lazy.ok(['switch', '-q', 'main']);

    // Someone else changes art/b.bin; the lazy clone fetches metadata only.
    const b2 = Buffer.concat([data.b, pseudoRandomBytes(MiB, 5, 'partial-b2')]);
    await fs.writeFile(origin.path('art/b.bin'), b2);
    await origin.ok(['commit', '-q', '-a', '-m', 'longer b']);
    await origin.ok(['push', '-q', 'origin', 'main']);
    const fetched = JSON.parse((await lazy.ok(['fetch', '--json', 'origin'])).out) as {
      stats: { chunks: number };
    };
    assert.equal(fetched.stats.chunks, 0);
    const diff = await lazy.ok(['diff', '--stat', 'main', 'origin/main']);
    assert.match(diff.out, /art\/b\.bin/);

    // Edit, commit, merge (non-fast-forward: it checks out their b.bin).
    const c2 = pseudoRandomBytes(2 * MiB, 6, 'partial-c2');
    await fs.writeFile(lazy.path('c.bin'), c2);
    await lazy.ok(['add', 'c.bin']);
    await lazy.ok(['commit', '-q', '-m', 'new c']);
    await lazy.ok(['merge', '-q', '-m', 'merge origin', 'origin/main']);
    assert.deepEqual(await fs.readFile(lazy.path('art/b.bin')), b2);
    assert.deepEqual(await fs.readFile(lazy.path('c.bin')), c2);

    // Stash a change and bring it back.
    await fs.appendFile(lazy.path('notes.txt'), 'four\n');
    await lazy.ok(['stash', '-q']);
    assert.equal(await fs.readFile(lazy.path('notes.txt'), 'utf8'), 'one\ntwo\nthree\n');
    await lazy.ok(['stash', 'pop', '-q']);
    assert.equal(await fs.readFile(lazy.path('notes.txt'), 'utf8'), 'one\ntwo\nthree\nfour\n');
    await lazy.ok(['commit', '-q', '-a', '-m', 'four']);

    // Rebase feat onto the new main, with one more commit on feat.
    await lazy.ok(['switch', '-q', 'feat']);
    await fs.writeFile(lazy.path('feat/e.txt'), 'e\n');
    await lazy.ok(['add', 'feat/e.txt']);
    await lazy.ok(['commit', '-q', '-m', 'e']);
    await lazy.ok(['rebase', '-q', 'main']);
    assert.deepEqual(await fs.readFile(lazy.path('art/b.bin')), b2);
    await lazy.ok(['push', '-q', '-f', 'origin', 'main', 'feat']);
    const lazyFeat = await snapshot(lazy.dir);
    await lazy.ok(['switch', '-q', 'main']);
    const lazyMain = await snapshot(lazy.dir);

    // A full clone elsewhere sees exactly those trees.
    const full = fixture.track(await TempRepo.create({ init: false })).withEnv(env);
    await fs.rmdir(full.dir);
    const cloned = await runCli(['clone', '-q', url, full.dir], { cwd: full.root, env: full.env });
    assert.equal(cloned.code, 0, cloned.stderr);
    assert.deepEqual(await snapshot(full.dir), lazyMain);
    await full.ok(['switch', '-q', 'feat']);
    assert.deepEqual(await snapshot(full.dir), lazyFeat);
    assert.equal((await full.ok(['fsck'])).code, 0);
  });

  test('with the remote unreachable, commands needing absent content fail in one line and change nothing', async () => {
    const { repo: lazy } = await lazyClone(['--filter=blob:none']);
    const closed = 'http://127.0.0.1:9/proj';
    await lazy.ok(['remote', 'set-url', 'origin', closed]);
    await fs.appendFile(lazy.path('notes.txt'), 'local change\n');
    const before = await repoState(lazy);
    const attempts: [string[], string][] = [
      [['switch', 'feat'], 'feat/d.bin'],
      [['checkout', 'origin/feat', '--', 'feat/d.bin'], 'feat/d.bin'],
      [['restore', '--source', 'origin/feat', 'feat/d.bin'], 'feat/d.bin'],
      [['merge', 'origin/feat'], 'feat/d.bin'],
      [['show', 'origin/feat:feat/d.bin'], 'feat/d.bin'],
      [['prefetch', '--rev', 'origin/feat'], 'feat/d.bin'],
    ];
    for (const [args, file] of attempts) {
      const result = await lazy.fails(args, 128);
      const lines = result.stderr.trim().split('\n');
      assert.equal(lines.length, 1, `${args.join(' ')}: ${result.stderr}`);
      assert.match(
        lines[0]!,
        new RegExp(
          `^fatal: could not fetch content of ${file.replace('.', '\\.')} from origin \\(${closed}\\): `,
        ),
        args.join(' '),
      );
      assert.deepEqual(await repoState(lazy), before, `${args.join(' ')} changed the repository`);
    }
    // Staging another version needs only its ID (as in Git): no content, no remote.
    await lazy.ok(['restore', '--staged', '--source', 'origin/feat', 'feat/d.bin']);
    const staged = await lazy.ok(['status', '--porcelain']);
    assert.match(staged.out, /^AD feat\/d\.bin$/m);
  });

  test('blob:limit keeps small files eager; prefetch fills ahead', async () => {
    const { repo: lazy, stats } = await lazyClone(['--filter=blob:limit=2560k', '--no-checkout']);
    const small = await smallFileChunks(lazy.dir, 2560 * 1024);
    assert.ok(small.size > 0);
    assert.equal(stats.chunks, small.size);
    assert.deepEqual(sorted(await localChunks(lazy.dir)), sorted(small));

    const result = JSON.parse((await lazy.ok(['prefetch', '--json', 'art/a.bin'])).out) as {
      files: number;
      objects: number;
    };
    const a = await chunksOf(lazy.dir, 'HEAD', ['art/a.bin'], origin.dir);
    assert.deepEqual(result, { partial: true, files: 1, objects: a.size });
    assert.deepEqual(sorted(await localChunks(lazy.dir)), sorted(new Set([...small, ...a])));
    // A second prefetch has nothing to do.
    const again = JSON.parse((await lazy.ok(['prefetch', '--json', 'art/a.bin'])).out) as {
      objects: number;
    };
    assert.equal(again.objects, 0);
  });

  test('an interrupted content fetch keeps what arrived; the rerun fetches only the rest', async () => {
    await origin.ok(['switch', '-q', '-c', 'big']);
    await fs.mkdir(origin.path('big'));
    await fs.writeFile(origin.path('big/e.bin'), pseudoRandomBytes(40 * MiB, 7, 'partial-e'));
    await origin.ok(['add', '-A']);
    await origin.ok(['commit', '-q', '-m', 'big']);
    await origin.ok(['push', '-q', 'origin', 'big']);
    await origin.ok(['switch', '-q', 'main']);

    const { repo: lazy } = await lazyClone(['--filter=blob:none', '--no-checkout']);
    const wanted = await chunksOf(lazy.dir, 'origin/big', ['big/e.bin'], origin.dir);
    const child = lazy.spawn(['prefetch', '--rev', 'origin/big', 'big/e.bin']);
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    let done = false;
    void exited.then(() => (done = true));
    // Killed (no chance to clean up) as soon as the first chunk is stored.
    while (!done && (await localChunks(lazy.dir)).size === 0) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    child.kill('SIGKILL');
    await exited;
    // Each chunk is durable on its own as it arrives (not one pack at the end).
    const kept = await localChunks(lazy.dir);
    await checkKeptPart(lazy, wanted, kept);

    const absent = [...wanted].filter((id) => !kept.has(id));
    const absentBytes = await bigFileBytesOutside(lazy.dir, kept);
    const sent0 = await server.metric(BYTES_SENT);
    const rerun = JSON.parse(
      (await lazy.ok(['prefetch', '--json', '--rev', 'origin/big', 'big/e.bin'])).out,
    ) as { objects: number };
    const sent = (await server.metric(BYTES_SENT)) - sent0;
    assert.equal(rerun.objects, absent.length);
    assert.ok(
      sent >= absentBytes && sent < absentBytes + 256 * 1024,
      `sent ${sent} for ${absentBytes}`,
    );
    assert.deepEqual(sorted(await localChunks(lazy.dir)), sorted(wanted));
    await lazy.ok(['checkout', 'origin/big', '--', 'big/e.bin']);
    assert.deepEqual(
      await fs.readFile(lazy.path('big/e.bin')),
      pseudoRandomBytes(40 * MiB, 7, 'partial-e'),
    );
  });

  test('Ctrl-C during a checkout that fetches content keeps what arrived; the rerun fetches only the rest', async () => {
    const { repo: lazy } = await lazyClone(['--filter=blob:none', '--no-checkout']);
    const wanted = await chunksOf(lazy.dir, 'origin/big', ['big/e.bin'], origin.dir);
    const tmp = path.join(lazy.dir, '.mediagit', 'tmp');
    const child = lazy.spawn(['checkout', 'origin/big', '--', 'big/e.bin']);
    const stderr: Buffer[] = [];
    child.stderr!.on('data', (d: Buffer) => stderr.push(d));
    const exited = new Promise<number | null>((resolve) =>
      child.once('exit', (code, signal) => resolve(code ?? (signal === 'SIGINT' ? 130 : null))),
    );
    let done = false;
    void exited.then(() => (done = true));
    // Interrupted once the download's pack holds a MiB (the chunks go
    // into one pack, written as they arrive and made durable at the end).
    const receiving = async (): Promise<boolean> => {
      for (const name of await fs.readdir(tmp).catch(() => [] as string[])) {
        if (!name.startsWith('ingest-pack-')) continue;
        const size = (await fs.stat(path.join(tmp, name)).catch(() => undefined))?.size ?? 0;
        if (size >= MiB) return true;
      }
      return false;
    };
    while (!done && !(await receiving())) await new Promise((r) => setTimeout(r, 2));
    child.kill('SIGINT');
    assert.equal(await exited, 130, Buffer.concat(stderr).toString());
    assert.match(Buffer.concat(stderr).toString(), /what arrived is kept/);
    // Nothing changed in the work tree or the index; no lock or temp file remains.
    await assert.rejects(fs.access(lazy.path('big/e.bin')));
    assert.deepEqual(await fs.readdir(tmp), []);
    await assert.rejects(fs.access(path.join(lazy.dir, '.mediagit', 'index.lock')));
    const kept = await localChunks(lazy.dir);
    await checkKeptPart(lazy, wanted, kept);

    const sent0 = await server.metric(BYTES_SENT);
    await lazy.ok(['checkout', 'origin/big', '--', 'big/e.bin']);
    const sent = (await server.metric(BYTES_SENT)) - sent0;
    const absentBytes = await bigFileBytesOutside(lazy.dir, kept);
    assert.ok(
      sent >= absentBytes && sent < absentBytes + 256 * 1024,
      `sent ${sent} for ${absentBytes}`,
    );
    assert.deepEqual(
      await fs.readFile(lazy.path('big/e.bin')),
      pseudoRandomBytes(40 * MiB, 7, 'partial-e'),
    );
  });

  test('media info of a lazy file fetches only the chunks it parses', async () => {
    const samples = pseudoRandomBytes(6 * MiB, 8, 'partial-wav');
    const header = Buffer.alloc(44);
    header.write('RIFF', 0);
    header.writeUInt32LE(36 + samples.length, 4);
    header.write('WAVEfmt ', 8);
    header.writeUInt32LE(16, 16);
    header.writeUInt16LE(1, 20); // PCM
    header.writeUInt16LE(2, 22); // channels
    header.writeUInt32LE(48000, 24);
    header.writeUInt32LE(48000 * 4, 28);
    header.writeUInt16LE(4, 32);
    header.writeUInt16LE(16, 34);
    header.write('data', 36);
    header.writeUInt32LE(samples.length, 40);
    await origin.ok(['switch', '-q', '-c', 'wav', 'main']);
    await fs.writeFile(origin.path('take.wav'), Buffer.concat([header, samples]));
    await origin.ok(['add', 'take.wav']);
    await origin.ok(['commit', '-q', '-m', 'wav']);
    await origin.ok(['push', '-q', 'origin', 'wav']);
    await origin.ok(['switch', '-q', 'main']);

    const { repo: lazy } = await lazyClone(['--filter=blob:none', '--no-checkout']);
    const info = JSON.parse(
      (await lazy.ok(['media', 'info', '--json', 'origin/wav:take.wav'])).out,
    ) as {
      format: string;
      streams: { channels: number; sampleRate: number }[];
    };
    assert.equal(info.format, 'wav');
    assert.equal(info.streams[0]?.sampleRate, 48000);
    assert.equal(info.streams[0]?.channels, 2);
    const all = await chunksOf(lazy.dir, 'origin/wav', ['take.wav'], origin.dir);
    const fetched = await localChunks(lazy.dir);
    assert.ok(
      fetched.size > 0 && fetched.size < all.size / 2,
      `fetched ${fetched.size} of ${all.size}`,
    );
    for (const id of fetched) assert.ok(all.has(id));
  });
});
