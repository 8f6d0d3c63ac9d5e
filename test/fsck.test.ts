/**
 * End-to-end tests of `fsck` with the real CLI (docs/fsck.md). One
 * repository is made once, with a history that has a chunked file, a delta
 * and a remote (`mediagit serve` on loopback, holding a branch this
 * repository lacks); each test damages a copy of it in one way, checks that
 * `fsck` names the damaged object and the paths and commits that need it,
 * then that `fsck --repair` mends it from the remote, a second `fsck --full`
 * is clean, and every file of every commit reads back byte for byte.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import { Codec } from '../src/compression/codec.ts';
import { parseCloudPack } from '../src/odb/cloud-pack.ts';
import { decodeCommit } from '../src/odb/commit.ts';
import { parseDeltaPayload } from '../src/odb/delta.ts';
import { decodeManifest } from '../src/odb/manifest.ts';
import type { ObjectId } from '../src/odb/object-id.ts';
import { decodeHeader, HEADER_SIZE } from '../src/odb/object-store.ts';
import { decodeTree } from '../src/odb/tree.ts';
import { Repository } from '../src/repo/repository.ts';
import { flattenCommit } from '../src/repo/tree-ops.ts';
import { readFileBytes } from '../src/odb/file-read.ts';
import { pseudoRandomBytes, runCli, TempRepo } from './helpers.ts';
import { createToken, useServerRoot, type ServerProcess } from './server.ts';

const MiB = 1024 * 1024;

interface ProblemJson {
  kind: string;
  id: string | null;
  type: string | null;
  reason: string;
  file: string | null;
  goodCopy: boolean;
  paths: string[];
  commits: string[];
  refs: string[];
  objects: {
    id: string;
    type: string | null;
    paths: string[];
    commits: string[];
    refs: string[];
  }[];
}

interface FsckJson {
  ok: boolean;
  full: boolean;
  problems: ProblemJson[];
  stats: Record<string, number>;
  repair?: { source: string | null; actions: { kind: string; id: string | null }[] };
}

/** What the base repository holds (IDs read through the library). */
interface Fixture {
  c1: ObjectId;
  c2: ObjectId;
  /** A commit only the remote has, on its branch `feature`. */
  feature: ObjectId;
  blob: ObjectId;
  rootTree: ObjectId;
  dirTree: ObjectId;
  manifest2: ObjectId;
  /** A chunk of c2's big.bin stored as a delta, and its base (a chunk of c1's). */
  delta: ObjectId;
  base: ObjectId;
  /** A chunk of c2's big.bin stored whole. */
  chunk: ObjectId;
  files: Map<string, Buffer>;
}

async function readObjectFile(store: Repository['objects'], id: ObjectId): Promise<Buffer> {
  return fs.readFile(store.pathOf(id));
}

/** Flips one byte of a file (`at` from the end when negative; default the middle). */
async function flipByte(file: string, at?: number): Promise<void> {
  await fs.chmod(file, 0o644);
  const bytes = await fs.readFile(file);
  const pos = at === undefined ? Math.floor(bytes.length / 2) : at < 0 ? bytes.length + at : at;
  bytes[pos]! ^= 0xff;
  await fs.writeFile(file, bytes);
}

describe('fsck', () => {
  const fixture = useServerRoot('fsck', ['media']);
  let server: ServerProcess;
  let base: TempRepo;
  let env: NodeJS.ProcessEnv;
  const f = {} as Fixture;

  before(async () => {
    server = await fixture.serve();
    env = { MEDIAGIT_TOKEN: await createToken(fixture.root, 'alice', 'media', 'write') };
    base = fixture.track(await TempRepo.create()).withEnv(env);
    const big1 = pseudoRandomBytes(6 * MiB, 1);
    await fs.writeFile(base.path('a.txt'), 'hello fsck\n');
    await fs.mkdir(base.path('d'));
    await fs.writeFile(base.path('d/big.bin'), big1);
    await base.ok(['add', '-A']);
    await base.ok(['commit', '-q', '-m', 'one']);
    f.c1 = (await base.head()).id!;
    // An edit in the middle: its chunk is stored as a delta against the old one.
    const big2 = Buffer.from(big1);
    big2.fill(7, 3 * MiB, 3 * MiB + 100);
    await fs.writeFile(base.path('d/big.bin'), big2);
    await base.ok(['add', '-A']);
    await base.ok(['commit', '-q', '-m', 'two']);
    f.c2 = (await base.head()).id!;
    await base.ok(['remote', 'add', 'origin', server.url('media')]);
    await base.ok(['push', '-q', '-u', 'origin', 'main']);

    // A commit only the remote has: made in a clone, pushed as `feature`.
    const peer = fixture.track(await TempRepo.create({ init: false })).withEnv(env);
    await fs.rm(peer.dir, { recursive: true });
    const cloned = await runCli(['clone', '-q', server.url('media'), peer.dir], {
      cwd: peer.root,
      env: peer.env,
    });
    assert.equal(cloned.code, 0, cloned.stderr);
    const featureFile = pseudoRandomBytes(5 * MiB, 2);
    await fs.writeFile(peer.path('feature.bin'), featureFile);
    await peer.ok(['add', '-A']);
    await peer.ok(['commit', '-q', '-m', 'feature']);
    f.feature = (await peer.head()).id!;
    await peer.ok(['push', '-q', 'origin', 'main:feature']);

    f.files = new Map([
      [`${f.c1}:a.txt`, Buffer.from('hello fsck\n')],
      [`${f.c1}:d/big.bin`, big1],
      [`${f.c2}:a.txt`, Buffer.from('hello fsck\n')],
      [`${f.c2}:d/big.bin`, big2],
    ]);
    const repo = await Repository.discover(base.dir);
    const store = repo.objects;
    const commit = decodeCommit(f.c2, (await store.read(f.c2)).data);
    f.rootTree = commit.tree;
    const root = decodeTree(f.rootTree, (await store.read(f.rootTree)).data);
    f.blob = root.find((e) => e.name === 'a.txt')!.id;
    f.dirTree = root.find((e) => e.name === 'd')!.id;
    const dir = decodeTree(f.dirTree, (await store.read(f.dirTree)).data);
    f.manifest2 = dir.find((e) => e.name === 'big.bin')!.id;
    const manifest = decodeManifest(f.manifest2, (await store.read(f.manifest2)).data);
    for (const { id } of manifest.chunks) {
      const record = await readObjectFile(store, id);
      const header = decodeHeader(id, record);
      if (header.codec === Codec.delta) {
        f.delta = id;
        f.base = parseDeltaPayload(id, record.subarray(HEADER_SIZE)).bases[0]!;
      } else {
        f.chunk ??= id;
      }
    }
    assert.ok(f.delta, 'the edited chunk is stored as a delta');
    assert.ok(f.chunk);
    // The base repository is sound before anything is damaged.
    const clean = await fsckJson(base, ['--full']);
    assert.equal(clean.code, 0);
    assert.deepEqual(clean.report.problems, []);
  });

  /** A copy of the base repository (work tree and all) to damage. */
  async function copy(): Promise<TempRepo> {
    const repo = fixture.track(await TempRepo.create({ init: false })).withEnv(env);
    await fs.cp(base.dir, repo.dir, { recursive: true });
    return repo;
  }

  function objectFile(repo: TempRepo, id: ObjectId): string {
    return path.join(repo.gitDir, 'objects', id.slice(0, 2), id.slice(2));
  }

  async function fsckJson(
    repo: TempRepo,
    args: readonly string[],
  ): Promise<{ code: number | null; report: FsckJson }> {
    const result = await repo.run(['fsck', ...args, '--json']);
    assert.ok(result.code! < 64, `fsck ${args.join(' ')} failed: ${result.stderr}`);
    return { code: result.code, report: JSON.parse(result.out) as FsckJson };
  }

  /**
   * fsck (with `args`) exits with `code` and reports a problem of `kind`
   * naming `id` (as the problem's object, or as an object a damaged pack
   * holds) with `paths` and `commits` among what depends on it; the human
   * output names the ID and the first path on one line.
   */
  async function expectProblem(
    repo: TempRepo,
    args: readonly string[],
    expected: {
      kind: string;
      id: ObjectId;
      code: number;
      paths?: string[];
      commits?: ObjectId[];
      refs?: string[];
      file?: RegExp;
    },
  ): Promise<ProblemJson> {
    const { code, report } = await fsckJson(repo, args);
    assert.equal(code, expected.code, JSON.stringify(report.problems, null, 2));
    assert.equal(report.ok, false);
    const problem = report.problems.find(
      (p) =>
        p.kind === expected.kind &&
        (p.id === expected.id || p.objects.some((o) => o.id === expected.id)),
    );
    assert.ok(
      problem,
      `no ${expected.kind} problem names ${expected.id}: ${JSON.stringify(report.problems, null, 2)}`,
    );
    const subject =
      problem.id === expected.id ? problem : problem.objects.find((o) => o.id === expected.id)!;
    for (const p of expected.paths ?? [])
      assert.ok(subject.paths.includes(p), `${p} in ${subject.paths}`);
    for (const c of expected.commits ?? [])
      assert.ok(subject.commits.includes(c), `${c} in ${subject.commits}`);
    for (const r of expected.refs ?? [])
      assert.ok(subject.refs.includes(r), `${r} in ${subject.refs}`);
    if (expected.file) assert.match(problem.file ?? '', expected.file);
    const human = await repo.run(['fsck', ...args]);
    assert.equal(human.code, expected.code);
    const line = human.out.split('\n').find((l) => l.includes(expected.id));
    assert.ok(line, human.out);
    if (expected.paths?.[0]) assert.ok(line.includes(expected.paths[0]), line);
    return problem;
  }

  /** `fsck --full --repair` mends it; a second `fsck --full` is clean; every file reads back. */
  async function expectRepaired(repo: TempRepo, args: readonly string[] = []): Promise<FsckJson> {
    const repaired = await fsckJson(repo, ['--full', '--repair', ...args]);
    assert.equal(repaired.code, 0, JSON.stringify(repaired.report, null, 2));
    assert.ok((repaired.report.repair?.actions.length ?? 0) > 0);
    const again = await fsckJson(repo, ['--full']);
    assert.equal(again.code, 0, JSON.stringify(again.report.problems, null, 2));
    assert.deepEqual(again.report.problems, []);
    const store = (await Repository.discover(repo.dir)).objects;
    for (const [spec, bytes] of f.files) {
      const [commit, file] = spec.split(':') as [ObjectId, string];
      const found = (await flattenCommit(store, commit)).get(file);
      assert.ok(found, spec);
      const read = await readFileBytes(store, found.kind, found.id);
      assert.ok(read.equals(bytes), `${spec} reads back byte for byte`);
    }
    return repaired.report;
  }

  test('a flipped byte in a blob', async () => {
    const repo = await copy();
    await flipByte(objectFile(repo, f.blob), -2);
    await expectProblem(repo, ['--full'], {
      kind: 'corrupt',
      id: f.blob,
      code: 1,
      paths: ['a.txt'],
      commits: [f.c2, f.c1],
      file: new RegExp(`^objects/${f.blob.slice(0, 2)}/`),
    });
    await expectRepaired(repo);
  });

  test('a flipped byte in a chunk', async () => {
    const repo = await copy();
    await flipByte(objectFile(repo, f.chunk));
    await expectProblem(repo, ['--full'], {
      kind: 'corrupt',
      id: f.chunk,
      code: 1,
      paths: ['d/big.bin'],
      commits: [f.c2],
    });
    // Without --full a chunk's header is checked, not its bytes (docs/fsck.md).
    assert.equal((await repo.run(['fsck'])).code, 0);
    await expectRepaired(repo);
  });

  test('a flipped byte in a manifest', async () => {
    const repo = await copy();
    await flipByte(objectFile(repo, f.manifest2));
    for (const args of [[], ['--full']]) {
      await expectProblem(repo, args, {
        kind: 'corrupt',
        id: f.manifest2,
        code: 1,
        paths: ['d/big.bin'],
        commits: [f.c2],
      });
    }
    await expectRepaired(repo);
  });

  test('a flipped byte in a tree', async () => {
    const repo = await copy();
    await flipByte(objectFile(repo, f.dirTree));
    await expectProblem(repo, [], {
      kind: 'corrupt',
      id: f.dirTree,
      code: 1,
      paths: ['d'],
      commits: [f.c2],
    });
    await expectRepaired(repo);
  });

  test('a flipped byte in a commit', async () => {
    const repo = await copy();
    await flipByte(objectFile(repo, f.c1));
    const problem = await expectProblem(repo, [], {
      kind: 'corrupt',
      id: f.c1,
      code: 1,
      commits: [f.c2],
      refs: ['HEAD@{1}'],
    });
    assert.equal(problem.type, 'commit');
    await expectRepaired(repo);
  });

  test('a flipped byte in a pack body, and in a pack index', async () => {
    const packed = await copy();
    await packed.ok(['repack', '-a', '-d', '-q']);
    const packDir = path.join(packed.gitDir, 'objects', 'pack');
    const name = (await fs.readdir(packDir)).find((n) => n.endsWith('.pack'))!.slice(0, -5);
    const damagedIndex = await copy();
    await fs.rm(path.join(damagedIndex.gitDir, 'objects'), { recursive: true });
    await fs.cp(path.join(packed.gitDir, 'objects'), path.join(damagedIndex.gitDir, 'objects'), {
      recursive: true,
    });

    // The body: a byte inside the record of the whole chunk.
    const repo = await Repository.discover(packed.dir);
    const found = await repo.objects.packs.find(f.chunk);
    assert.ok(found, 'the chunk is packed');
    await flipByte(
      path.join(packDir, `${name}.pack`),
      found.entry.offset + Math.floor(found.entry.length / 2),
    );
    const body = await expectProblem(packed, ['--full'], {
      kind: 'corrupt',
      id: f.chunk,
      code: 1,
      paths: ['d/big.bin'],
      commits: [f.c2],
      file: new RegExp(`objects/pack/${name}\\.pack$`),
    });
    assert.equal(body.goodCopy, false);
    const report = await expectRepaired(packed);
    // The damaged pack was moved aside, not deleted.
    assert.ok(report.repair!.actions.some((a) => a.kind === 'moved-aside'));
    assert.ok((await fs.readdir(packDir)).includes(`${name}.pack.bad`));

    // The index: a byte in its ID table, so one entry names no object.
    await flipByte(path.join(damagedIndex.gitDir, 'objects', 'pack', `${name}.idx`), 8 + 1024 + 40);
    const index = await expectProblem(damagedIndex, [], {
      kind: 'corrupt-pack-index',
      id: f.manifest2,
      code: 4,
      paths: ['d/big.bin'],
      commits: [f.c2],
      file: new RegExp(`objects/pack/${name}\\.idx$`),
    });
    assert.ok(index.objects.some((o) => o.id === f.blob && o.paths.includes('a.txt')));
    await expectRepaired(damagedIndex);
  });

  test('a damaged pack holding an object with no good copy anywhere is kept', async () => {
    const repo = await copy();
    await repo.ok(['repack', '-a', '-d', '-q']);
    await repo.ok(['remote', 'remove', 'origin']);
    const packDir = path.join(repo.gitDir, 'objects', 'pack');
    const pack = (await fs.readdir(packDir)).find((n) => n.endsWith('.pack'))!;
    const found = await (await Repository.discover(repo.dir)).objects.packs.find(f.chunk);
    await flipByte(path.join(packDir, pack), found!.entry.offset + 100);
    const result = await repo.run(['fsck', '--full', '--repair']);
    assert.equal(result.code, 1, result.out);
    assert.match(
      result.out,
      new RegExp(`^not repaired: kept objects/pack/${pack}: .*${f.chunk}`, 'm'),
    );
    // Nothing moved or deleted: the pack and every good record stay readable.
    assert.ok((await fs.readdir(packDir)).includes(pack));
    assert.ok(
      (await repo.run(['show', `${f.c1}:a.txt`])).stdout.equals(Buffer.from('hello fsck\n')),
    );
    await repo.ok(['remote', 'add', 'origin', server.url('media')]);
    await expectRepaired(repo);
  });

  test('a missing chunk', async () => {
    const repo = await copy();
    await fs.rm(objectFile(repo, f.chunk));
    for (const args of [[], ['--full']]) {
      await expectProblem(repo, args, {
        kind: 'missing',
        id: f.chunk,
        code: 2,
        paths: ['d/big.bin'],
        commits: [f.c2],
      });
    }
    await expectRepaired(repo);
  });

  test('a delta whose base is gone', async () => {
    const repo = await copy();
    await fs.rm(objectFile(repo, f.base));
    // The base is named through the delta, so c2's file depends on it too.
    const problem = await expectProblem(repo, [], {
      kind: 'missing',
      id: f.base,
      code: 2,
      paths: ['d/big.bin'],
      commits: [f.c2, f.c1],
    });
    assert.equal(problem.type, 'chunk');
    const full = await fsckJson(repo, ['--full']);
    const delta = full.report.problems.find((p) => p.id === f.delta);
    assert.equal(delta?.kind, 'corrupt');
    assert.match(delta.reason, /base/);
    await expectRepaired(repo);
  });

  test('a ref to a missing commit', async () => {
    const repo = await copy();
    await fs.writeFile(path.join(repo.gitDir, 'refs', 'heads', 'feature'), `${f.feature}\n`);
    const problem = await expectProblem(repo, [], {
      kind: 'missing',
      id: f.feature,
      code: 2,
      refs: ['refs/heads/feature'],
    });
    assert.equal(problem.type, 'commit');
    await expectRepaired(repo);
    // The commit came with everything it needs.
    const store = (await Repository.discover(repo.dir)).objects;
    const file = (await flattenCommit(store, f.feature)).get('feature.bin')!;
    const read = await readFileBytes(store, file.kind, file.id);
    assert.ok(read.equals(pseudoRandomBytes(5 * MiB, 2)));
  });

  test('a truncated index', async () => {
    const repo = await copy();
    const indexFile = path.join(repo.gitDir, 'index');
    const bytes = await fs.readFile(indexFile);
    await fs.writeFile(indexFile, bytes.subarray(0, Math.floor(bytes.length / 2)));
    const { code, report } = await fsckJson(repo, []);
    assert.equal(code, 8);
    const problem = report.problems.find((p) => p.kind === 'corrupt-index');
    assert.equal(problem?.file, 'index');
    const human = await repo.run(['fsck']);
    assert.match(human.out, /^corrupt index index: .*--repair/m);
    const repaired = await expectRepaired(repo);
    assert.ok(repaired.repair!.actions.some((a) => a.kind === 'rebuilt-index'));
    // The damaged file is kept; the rebuilt index matches HEAD and the work tree.
    assert.ok(
      (await fs.readFile(`${indexFile}.bad`)).equals(
        bytes.subarray(0, Math.floor(bytes.length / 2)),
      ),
    );
    const status = await repo.status();
    assert.deepEqual([status.staged, status.unstaged, status.untracked], [[], [], []]);
  });

  test('a bare repository: a flipped byte in a cloud pack, mended --from a clone', async () => {
    const bare = fixture.track(await TempRepo.create({ init: false })).withEnv(env);
    await fs.rm(bare.dir, { recursive: true });
    await fs.cp(path.join(fixture.root, 'media'), bare.dir, { recursive: true });
    const packDir = path.join(bare.dir, 'objects', 'pack');
    // The biggest pack's first record: a chunk (a push packs chunks first).
    const sizes = await Promise.all(
      (await fs.readdir(packDir)).map(async (n) => ({
        n,
        size: (await fs.stat(path.join(packDir, n))).size,
      })),
    );
    const biggest = sizes.sort((a, b) => b.size - a.size)[0]!.n;
    const { entries } = parseCloudPack(await fs.readFile(path.join(packDir, biggest)), biggest);
    const first = entries.sort((a, b) => a.offset - b.offset)[0]!;
    await flipByte(path.join(packDir, biggest), first.offset + Math.floor(first.length / 2));
    await expectProblem(bare, ['--full'], {
      kind: 'corrupt',
      id: first.id,
      code: 1,
      paths: ['d/big.bin'],
      file: new RegExp(`objects/pack/${biggest.replace('.', '\\.')}$`),
    });
    await expectRepaired(bare, ['--from', base.dir]);
    assert.ok((await fs.readdir(packDir)).includes(`${biggest}.bad`));
  });

  test('--from a local repository, --json structure, usage', async () => {
    const repo = await copy();
    await repo.ok(['remote', 'remove', 'origin']);
    await fs.rm(objectFile(repo, f.chunk));
    // No remote: nothing to fetch from, and it says so.
    const alone = await fsckJson(repo, ['--repair']);
    assert.equal(alone.code, 2);
    assert.equal(alone.report.repair?.source, null);
    // A source whose copy is damaged too: verified, refused, nothing written.
    const damaged = await copy();
    await flipByte(objectFile(damaged, f.chunk));
    const refused = await fsckJson(repo, ['--repair', '--from', damaged.dir]);
    assert.equal(refused.code, 2);
    assert.deepEqual(refused.report.repair?.actions, []);
    await assert.rejects(fs.access(objectFile(repo, f.chunk)));
    // A local path (the server's bare repository on disk).
    await expectRepaired(repo, ['--from', path.join(fixture.root, 'media')]);
    const usage = await repo.run(['fsck', '--from', 'x']);
    assert.equal(usage.code, 129);
    const { report } = await fsckJson(repo, []);
    assert.deepEqual(Object.keys(report).sort(), ['full', 'ok', 'problems', 'stats']);
  });
});
