/**
 * `mediagit stats` and `mediagit verify` end to end, on a real repository
 * made with the CLI (small files, a chunked video edited so its versions
 * share chunks, a checkpoint edited so it is stored as deltas), and on a
 * server root after a push through a real `mediagit serve`:
 *
 * - stats: logical, unique and stored bytes, categories, deltas and chunks
 *   against what the test knows or reads itself; stored bytes against the
 *   files of the object store and `du`; `--prometheus` (and the server's
 *   `/metrics`) through `promtool check metrics`, values included;
 * - verify: clean commits pass; a flipped byte in a chunk is reported with
 *   the file's path, the expected and the actual SHA-256 and the chunk,
 *   while `--quick` (presence only) passes; a deleted chunk or delta base
 *   fails `--quick`.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import { readManifest } from '../src/odb/file-read.ts';
import type { ObjectId } from '../src/odb/object-id.ts';
import { Repository } from '../src/repo/repository.ts';
import { flattenCommit } from '../src/repo/tree-ops.ts';
import { prng, pseudoRandomBytes, runCli, TempRepo, type CliResult } from './helpers.ts';
import { createToken, useServerRoot } from './server.ts';

const KiB = 1024;
const MiB = 1024 * KiB;

interface Category {
  category: string;
  files: number;
  logicalBytes: number;
  uniqueBytes: number;
  storedBytes: number;
}

interface StatsJson {
  refs: number;
  commits: number;
  files: number;
  logicalBytes: number;
  uniqueBytes: number;
  storedBytes: number;
  allocatedBytes: number | null;
  dedupRatio: number;
  compressionRatio: number;
  reductionRatio: number;
  categories: Category[];
  metadata: { objects: number; storedBytes: number };
  unreachable: { objects: number; storedBytes: number };
  duplicates: { copies: number; bytes: number };
  overheadBytes: number;
  missingObjects: number;
  unreadableObjects: number;
  objects: {
    count: number;
    rawBytes: number;
    storedBytes: number;
    byType: Record<string, { count: number; rawBytes: number; storedBytes: number }>;
  };
  compression: { objects: number; rawBytes: number; storedBytes: number };
  deltas: { objects: number; rawBytes: number; storedBytes: number; savingsBytes: number };
  chunks: {
    count: number;
    bytes: number;
    min: number;
    median: number;
    max: number;
    buckets: { upTo: number | null; count: number }[];
  };
  store: {
    loose: { objects: number; bytes: number };
    packs: { count: number; bytes: number; objects: number };
    indexes: { count: number; bytes: number };
    other: { count: number; bytes: number };
  };
}

interface Problem {
  commit: string;
  path: string;
  object: string;
  reason: string;
  expected: string | null;
  actual: string | null;
  chunks: { id: string; offset: number; reason: string }[];
}

interface VerifyJson {
  ok: boolean;
  quick: boolean;
  commits: string[];
  files: number;
  contents: number;
  bytes: number;
  chunks: number;
  problems: Problem[];
}

function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Float32 weights near N(0, 0.02), and the same with every 20th one nudged: a fine-tune. */
function checkpointPair(count: number, seed: number): [Buffer, Buffer] {
  const random = prng(seed);
  const values = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    values[i] = (random() + random() + random() + random() - 2) * 0.035;
  }
  const v1 = Buffer.from(new Uint8Array(values.buffer).slice());
  for (let i = 0; i < count; i += 20) values[i] = values[i]! + (random() - 0.5) * 1e-3;
  return [v1, Buffer.from(values.buffer)];
}

/** Sizes of every file under `dir`, summed (what a backend stores). */
async function fileBytes(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await fs.readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) total += (await fs.stat(path.join(entry.parentPath, entry.name))).size;
  }
  return total;
}

function du(args: readonly string[], dir: string): number {
  const result = spawnSync('du', [...args, dir], { encoding: 'utf8' });
  assert.equal(result.status, 0, result.stderr);
  return Number(result.stdout.split('\t')[0]);
}

/** `promtool check metrics` on `text`: its exit code and what it said. */
function promtool(text: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('promtool', ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (data: Buffer) => (output += data.toString()));
    child.stderr.on('data', (data: Buffer) => (output += data.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
    child.stdin.end(text);
  });
}

/** The value of the sample `name{labels}` (labels exactly as written) in an exposition. */
function sample(text: string, name: string, labels = ''): number {
  const prefix = labels === '' ? `${name} ` : `${name}{${labels}} `;
  const line = text.split('\n').find((l) => l.startsWith(prefix));
  assert.ok(line, `no sample ${prefix.trim()} in:\n${text.slice(0, 3000)}`);
  return Number(line.slice(prefix.length));
}

function parse<T>(result: CliResult): T {
  return JSON.parse(result.out) as T;
}

/** A copy of a repository's folder (work tree and .mediagit) to damage. */
async function copyRepo(repo: TempRepo): Promise<TempRepo> {
  const copy = await TempRepo.create({ init: false });
  await fs.cp(repo.dir, copy.dir, { recursive: true });
  return copy;
}

/** Flips one byte of a file in place (object files are read-only). */
async function flipByte(file: string, at: number): Promise<void> {
  await fs.chmod(file, 0o644);
  const handle = await fs.open(file, 'r+');
  try {
    const byte = Buffer.alloc(1);
    await handle.read(byte, 0, 1, at);
    byte[0] = byte[0]! ^ 0xff;
    await handle.write(byte, 0, 1, at);
  } finally {
    await handle.close();
  }
}

function flipped(data: Buffer, at: number): Buffer {
  const copy = Buffer.from(data);
  copy[at] = copy[at]! ^ 0xff;
  return copy;
}

describe('stats and verify', () => {
  const fixture = useServerRoot('stats', ['proj', 'spare']);
  let repo: TempRepo;
  const readme = Buffer.from('A MediaGit test repository.\n'.repeat(64));
  const photo = pseudoRandomBytes(40 * KiB, 1, 'stats-photo');
  const bigV1 = pseudoRandomBytes(3 * MiB, 2, 'stats-video');
  // The same video with a tail added: its first chunks are the old ones.
  const bigV2 = Buffer.concat([bigV1, pseudoRandomBytes(300 * KiB, 3, 'stats-tail')]);
  const [modelV1, modelV2] = checkpointPair((2 * MiB) / 4, 7);
  let first: ObjectId;
  let second: ObjectId;

  before(async () => {
    repo = fixture.track(await TempRepo.create({ chunkThreshold: 256 * KiB }));
    await fs.writeFile(repo.path('readme.txt'), readme);
    await fs.writeFile(repo.path('photo.png'), photo);
    await fs.writeFile(repo.path('big.mov'), bigV1);
    await fs.writeFile(repo.path('model.ckpt'), modelV1);
    await repo.ok(['add', '-A']);
    await repo.ok(['commit', '-q', '-m', 'first']);
    first = (await repo.head()).id!;
    await repo.ok(['tag', '-a', 'v1', '-m', 'release 1']);
    await fs.writeFile(repo.path('big.mov'), bigV2);
    await fs.writeFile(repo.path('model.ckpt'), modelV2);
    await repo.ok(['add', '-A']);
    await repo.ok(['commit', '-q', '-m', 'second']);
    second = (await repo.head()).id!;
  });

  /** Every chunk of every chunked file version, by ID (from the manifests). */
  async function chunkLengths(dir: string): Promise<Map<ObjectId, number>> {
    const store = (await Repository.discover(dir)).objects;
    const chunks = new Map<ObjectId, number>();
    for (const commit of [first, second]) {
      for (const file of (await flattenCommit(store, commit)).values()) {
        if (file.kind !== 'manifest') continue;
        for (const chunk of (await readManifest(store, file.id)).chunks) {
          chunks.set(chunk.id, chunk.length);
        }
      }
    }
    return chunks;
  }

  /** The chunk list of `file` in `commit`. */
  async function chunksOf(dir: string, commit: ObjectId, file: string) {
    const store = (await Repository.discover(dir)).objects;
    const entry = (await flattenCommit(store, commit)).get(file);
    assert.ok(entry && entry.kind === 'manifest', `${file} is chunked`);
    return (await readManifest(store, entry.id)).chunks;
  }

  let local: StatsJson;

  test('stats --json: logical, unique and stored bytes, categories, deltas and chunks', async () => {
    local = parse<StatsJson>(await repo.ok(['stats', '--json']));
    const logical =
      readme.length + photo.length + bigV1.length + bigV2.length + modelV1.length + modelV2.length;
    assert.equal(local.commits, 2);
    assert.equal(local.refs, 2); // main and the tag
    assert.equal(local.files, 6);
    assert.equal(local.logicalBytes, logical);
    const byName = new Map(local.categories.map((c) => [c.category, c]));
    assert.deepEqual(
      [...byName.keys()].sort(),
      ['image', 'ml', 'text', 'video'],
      'one category per kind of file',
    );
    assert.equal(byName.get('video')!.files, 2);
    assert.equal(byName.get('video')!.logicalBytes, bigV1.length + bigV2.length);
    assert.equal(byName.get('ml')!.logicalBytes, modelV1.length + modelV2.length);
    assert.equal(byName.get('image')!.logicalBytes, photo.length);
    assert.equal(byName.get('text')!.logicalBytes, readme.length);

    // Unique: each distinct chunk once, plus the two small files.
    const chunks = await chunkLengths(repo.dir);
    let chunkBytes = 0;
    for (const length of chunks.values()) chunkBytes += length;
    assert.equal(local.uniqueBytes, chunkBytes + readme.length + photo.length);
    assert.ok(local.uniqueBytes < logical, 'the two videos share chunks');
    assert.equal(local.dedupRatio, logical / local.uniqueBytes);
    // The video's versions share all but the last chunks: unique < both versions.
    assert.ok(byName.get('video')!.uniqueBytes < bigV1.length + bigV2.length);

    // The edited checkpoint is stored as deltas, which save most of its bytes.
    assert.ok(local.deltas.objects >= 1, JSON.stringify(local.deltas));
    assert.equal(local.deltas.savingsBytes, local.deltas.rawBytes - local.deltas.storedBytes);
    assert.ok(local.deltas.savingsBytes > local.deltas.rawBytes / 2, JSON.stringify(local.deltas));
    assert.ok(byName.get('ml')!.storedBytes < 0.75 * (modelV1.length + modelV2.length));

    // Chunks: every stored chunk is one of the manifests', counted once.
    assert.equal(local.chunks.count, chunks.size);
    assert.equal(local.objects.byType['chunk']!.count, chunks.size);
    assert.equal(local.chunks.bytes, chunkBytes);
    assert.equal(local.chunks.min, Math.min(...chunks.values()));
    assert.equal(local.chunks.max, Math.max(...chunks.values()));
    assert.equal(
      local.chunks.buckets.reduce((sum, b) => sum + b.count, 0),
      chunks.size,
    );

    // Stored: exactly the files of the object store; allocated: what du counts.
    const objects = path.join(repo.gitDir, 'objects');
    assert.equal(local.storedBytes, await fileBytes(objects));
    assert.equal(local.allocatedBytes, du(['-s', '-B1'], objects));
    assert.equal(local.store.loose.objects, local.objects.count);
    // Every stored byte is in exactly one bucket.
    const buckets =
      local.categories.reduce((sum, c) => sum + c.storedBytes, 0) +
      local.metadata.storedBytes +
      local.unreachable.storedBytes +
      local.duplicates.bytes +
      local.overheadBytes;
    assert.equal(buckets, local.storedBytes);
    assert.equal(local.unreachable.objects, 0);
    assert.equal(local.missingObjects, 0);
    // Two commits, the tag and the trees (one per commit: a flat tree).
    assert.equal(local.metadata.objects, 5);
  });

  test('stats --prometheus passes promtool check metrics and carries the same figures', async () => {
    const text = (await repo.ok(['stats', '--prometheus'])).out;
    const check = await promtool(text);
    assert.equal(check.code, 0, check.output);
    assert.equal(sample(text, 'mediagit_repo_stored_bytes'), local.storedBytes);
    assert.equal(sample(text, 'mediagit_repo_logical_bytes'), local.logicalBytes);
    assert.equal(sample(text, 'mediagit_repo_unique_bytes'), local.uniqueBytes);
    assert.equal(sample(text, 'mediagit_repo_dedup_ratio'), local.dedupRatio);
    assert.equal(
      sample(text, 'mediagit_repo_category_logical_bytes', 'category="video"'),
      bigV1.length + bigV2.length,
    );
    assert.equal(sample(text, 'mediagit_repo_category_files', 'category="audio"'), 0);
    assert.equal(sample(text, 'mediagit_repo_delta_objects'), local.deltas.objects);
    assert.equal(sample(text, 'mediagit_repo_objects', 'type="chunk"'), local.chunks.count);
    assert.equal(sample(text, 'mediagit_repo_chunk_size_bytes_count'), local.chunks.count);
    assert.equal(
      sample(text, 'mediagit_repo_chunk_size_bytes_bucket', 'le="+Inf"'),
      local.chunks.count,
    );
    assert.equal(sample(text, 'mediagit_repo_chunk_size_bytes_sum'), local.chunks.bytes);
    // A broken exposition is caught: promtool is really checking.
    const broken = await promtool(
      text.replace(
        '# TYPE mediagit_repo_files gauge',
        '# TYPE mediagit_repo_files gauge\n# TYPE mediagit_repo_files counter',
      ),
    );
    assert.notEqual(broken.code, 0);
  });

  test('stats after repack: stored bytes within 1% of du -sb of the object store', async () => {
    const copy = fixture.track(await copyRepo(repo));
    await copy.ok(['repack', '-a', '-d', '-q']);
    const packed = parse<StatsJson>(await copy.ok(['stats', '--json']));
    const objects = path.join(copy.gitDir, 'objects');
    const apparent = du(['-s', '-b'], objects);
    assert.ok(
      Math.abs(packed.storedBytes - apparent) / apparent < 0.01,
      `stats ${packed.storedBytes}, du -sb ${apparent}`,
    );
    assert.equal(packed.storedBytes, await fileBytes(objects));
    assert.equal(packed.store.packs.count, 1);
    assert.equal(packed.store.loose.objects, 0);
    assert.equal(packed.store.packs.objects, local.objects.count);
    // The content is what it was; only where it is stored changed.
    assert.equal(packed.logicalBytes, local.logicalBytes);
    assert.equal(packed.uniqueBytes, local.uniqueBytes);
    assert.deepEqual(
      packed.categories.map((c) => [c.category, c.logicalBytes]),
      local.categories.map((c) => [c.category, c.logicalBytes]),
    );
    assert.equal(packed.deltas.objects, local.deltas.objects);
    assert.ok(packed.overheadBytes > 0, 'the pack header, trailer and index');
  });

  test('verify: HEAD by default, --all, a named commit', async () => {
    const head = parse<VerifyJson>(await repo.ok(['verify', '--json']));
    assert.equal(head.ok, true);
    assert.deepEqual(head.commits, [second]);
    assert.equal(head.files, 4);
    assert.equal(head.bytes, readme.length + photo.length + bigV2.length + modelV2.length);
    assert.ok(head.chunks > 0);
    assert.deepEqual(head.problems, []);

    const all = parse<VerifyJson>(await repo.ok(['verify', '--all', '--json']));
    assert.deepEqual([...all.commits].sort(), [first, second].sort());
    assert.equal(all.files, 8);
    assert.equal(all.contents, 6, 'readme and photo are read once');

    const named = parse<VerifyJson>(await repo.ok(['verify', 'v1', '--json']));
    assert.deepEqual(named.commits, [first]);
    const text = await repo.ok(['verify']);
    assert.match(text.out, /verified 4 files .* in 1 commit: every SHA-256 matches/);
  });

  test('verify names a file whose chunk is corrupt; --quick passes it; a deleted chunk fails --quick', async () => {
    const copy = fixture.track(await copyRepo(repo));
    const store = (await Repository.discover(copy.dir)).objects;
    const v2 = await chunksOf(copy.dir, second, 'big.mov');
    const v1 = await chunksOf(copy.dir, first, 'big.mov');
    const target = v2[1]!;
    assert.equal(v1[1]!.id, target.id, 'the second chunk is shared by both versions');
    const file = store.pathOf(target.id);
    assert.equal((await fs.readFile(file))[5], 0, 'the chunk is stored raw');
    const inChunk = 100;
    await flipByte(file, 16 + inChunk);
    const at = v2[0]!.length + inChunk;

    const result = await copy.fails(['verify'], 1);
    assert.match(
      result.out,
      /error: big\.mov in commit [0-9a-f]{64}: 1 of its \d+ chunks is damaged/,
    );
    assert.ok(result.out.includes(`expected sha256 ${sha256(bigV2)}`), result.out);
    assert.ok(result.out.includes(`actual   sha256 ${sha256(flipped(bigV2, at))}`), result.out);
    assert.ok(
      result.out.includes(
        `chunk ${target.id} at offset ${v2[0]!.length}: content does not match its ID`,
      ),
      result.out,
    );
    assert.doesNotMatch(result.out, /readme|photo|model/);

    // Both commits hold the chunk: one problem each, with each version's hashes.
    const all = parse<VerifyJson>(await copy.fails(['verify', '--all', '--json'], 1));
    assert.equal(all.ok, false);
    const byCommit = (a: unknown[], b: unknown[]): number => (String(a[0]) < String(b[0]) ? -1 : 1);
    assert.deepEqual(
      all.problems
        .map((p) => [p.commit, p.path, p.expected, p.actual, p.chunks.map((c) => c.id)])
        .sort(byCommit),
      [
        [first, 'big.mov', sha256(bigV1), sha256(flipped(bigV1, at)), [target.id]],
        [second, 'big.mov', sha256(bigV2), sha256(flipped(bigV2, at)), [target.id]],
      ].sort(byCommit),
    );

    // Present, so --quick does not look: it passes.
    const quick = parse<VerifyJson>(await copy.ok(['verify', '--quick', '--json']));
    assert.equal(quick.ok, true);

    // A chunk deleted: --quick names the file and the chunk.
    const tail = v2[v2.length - 1]!;
    assert.ok(!v1.some((c) => c.id === tail.id), 'the last chunk is the new version’s own');
    await fs.rm(store.pathOf(tail.id));
    const gone = await copy.fails(['verify', '--quick'], 1);
    assert.match(
      gone.out,
      /error: big\.mov in commit [0-9a-f]{64}: 1 of its \d+ chunks is missing/,
    );
    assert.ok(
      gone.out.includes(`chunk ${tail.id} at offset ${bigV2.length - tail.length}: missing`),
      gone.out,
    );
    assert.ok(gone.out.includes('actual   sha256 (not read: --quick)'), gone.out);
    // The older version does not use it.
    await copy.ok(['verify', '--quick', 'v1']);
    const full = parse<VerifyJson>(await copy.fails(['verify', '--json'], 1));
    assert.deepEqual(
      full.problems.map((p) => p.path),
      ['big.mov'],
    );
    assert.equal(full.problems[0]!.actual, null, 'a missing chunk leaves nothing to hash');
    assert.deepEqual(
      full.problems[0]!.chunks.map((c) => [c.id, c.reason]),
      [
        [target.id, 'content does not match its ID'],
        [tail.id, 'missing'],
      ],
    );
  });

  test('verify --quick catches a missing delta base', async () => {
    const copy = fixture.track(await copyRepo(repo));
    const store = (await Repository.discover(copy.dir)).objects;
    let delta: { id: ObjectId; base: ObjectId } | undefined;
    for (const chunk of await chunksOf(copy.dir, second, 'model.ckpt')) {
      const record = await store.readRecord(chunk.id);
      if (record[5] === 3) delta = { id: chunk.id, base: record.toString('hex', 17, 49) };
    }
    assert.ok(delta, 'the edited checkpoint has a chunk stored as a delta');
    await fs.rm(store.pathOf(delta.base));
    const quick = parse<VerifyJson>(await copy.fails(['verify', '--quick', '--json'], 1));
    assert.deepEqual(
      quick.problems.map((p) => p.path),
      ['model.ckpt'],
    );
    const chunk = quick.problems[0]!.chunks.find((c) => c.id === delta.id);
    assert.ok(chunk, JSON.stringify(quick.problems));
    assert.equal(chunk.reason, `its delta base ${delta.base} is missing`);
    const full = await copy.fails(['verify'], 1);
    assert.match(full.out, /error: model\.ckpt in commit/);
    assert.ok(full.out.includes(delta.base), full.out);
  });

  describe('on a server root', () => {
    let server: Awaited<ReturnType<typeof fixture.serve>>;
    let projStats: StatsJson & { name: string };

    before(async () => {
      server = await fixture.serve();
      const env = { MEDIAGIT_TOKEN: await createToken(fixture.root, 'alice', 'proj', 'write') };
      const pusher = repo.withEnv(env);
      await pusher.ok(['push', '-q', server.url('proj'), 'main', 'v1']);
    });

    const root = (...args: string[]): Promise<CliResult> =>
      runCli(args, { cwd: fixture.outer, env: repo.env });

    test('stats --root: per repository, stored bytes match du, --prometheus and /metrics pass promtool', async () => {
      const result = await root('stats', '--root', fixture.root, '--json');
      assert.equal(result.code, 0, result.stderr);
      const all = parse<{ root: string; repositories: (StatsJson & { name: string })[] }>(result);
      assert.deepEqual(
        all.repositories.map((r) => r.name),
        ['proj', 'spare'],
      );
      projStats = all.repositories[0]!;
      const spare = all.repositories[1]!;
      assert.equal(spare.files, 0);
      assert.equal(spare.storedBytes, 0);
      // The same content as the local repository...
      assert.equal(projStats.commits, 2);
      assert.equal(projStats.files, 6);
      assert.equal(projStats.logicalBytes, local.logicalBytes);
      assert.equal(projStats.uniqueBytes, local.uniqueBytes);
      assert.deepEqual(
        projStats.categories.map((c) => [c.category, c.files, c.logicalBytes, c.uniqueBytes]),
        local.categories.map((c) => [c.category, c.files, c.logicalBytes, c.uniqueBytes]),
      );
      // ...stored as the server stores it: standalone records in cloud packs.
      assert.equal(projStats.deltas.objects, 0);
      assert.ok(projStats.store.packs.count >= 1);
      assert.equal(projStats.store.packs.objects, projStats.objects.count);
      assert.equal(projStats.chunks.count, local.chunks.count);
      assert.equal(projStats.missingObjects, 0);
      const objects = path.join(fixture.root, 'proj', 'objects');
      assert.equal(projStats.storedBytes, await fileBytes(objects));
      const apparent = du(['-s', '-b'], objects);
      assert.ok(
        Math.abs(projStats.storedBytes - apparent) / apparent < 0.01,
        `stats ${projStats.storedBytes}, du -sb ${apparent}`,
      );
      assert.equal(projStats.allocatedBytes, du(['-s', '-B1'], objects));

      const prom = await root('stats', '--root', fixture.root, '--repo', 'proj', '--prometheus');
      assert.equal(prom.code, 0, prom.stderr);
      const check = await promtool(prom.out);
      assert.equal(check.code, 0, check.output);
      assert.equal(
        sample(prom.out, 'mediagit_repo_stored_bytes', 'repo="proj"'),
        projStats.storedBytes,
      );
      assert.equal(
        sample(prom.out, 'mediagit_repo_category_logical_bytes', 'repo="proj",category="ml"'),
        modelV1.length + modelV2.length,
      );
      assert.ok(!prom.out.includes('repo="spare"'), '--repo keeps one repository');

      const metrics = await (await fetch(`${server.base}/metrics`)).text();
      const served = await promtool(metrics);
      assert.equal(served.code, 0, served.output);
    });

    test('verify --root: every branch and tag of every repository; a named ref', async () => {
      const result = await root('verify', '--root', fixture.root, '--json');
      assert.equal(result.code, 0, result.out);
      const all = parse<{ ok: boolean; repositories: (VerifyJson & { name: string })[] }>(result);
      assert.equal(all.ok, true);
      const proj = all.repositories.find((r) => r.name === 'proj')!;
      assert.deepEqual([...proj.commits].sort(), [first, second].sort());
      assert.equal(proj.contents, 6);
      assert.equal(all.repositories.find((r) => r.name === 'spare')!.commits.length, 0);

      const named = await root('verify', '--root', fixture.root, '--repo', 'proj', 'v1', '--json');
      assert.equal(named.code, 0, named.out);
      assert.deepEqual(parse<{ repositories: VerifyJson[] }>(named).repositories[0]!.commits, [
        first,
      ]);
      // A commit named without --repo is ambiguous among two repositories.
      const ambiguous = await root('verify', '--root', fixture.root, 'main');
      assert.equal(ambiguous.code, 129, ambiguous.stderr);
      const unknown = await root('stats', '--root', fixture.root, '--repo', 'nope');
      assert.equal(unknown.code, 1);
      assert.match(unknown.stderr, /no repository 'nope'/);
    });

    test('verify --root names a file whose chunk is damaged in a cloud pack', async () => {
      // A copy of the repository in a root of its own, damaged there.
      const other = path.join(fixture.outer, 'damaged-root');
      await fs.cp(path.join(fixture.root, 'proj'), path.join(other, 'proj'), { recursive: true });
      const bare = await Repository.discover(path.join(other, 'proj'));
      const v2 = await chunksOf(path.join(other, 'proj'), second, 'big.mov');
      const target = v2[2]!;
      const found = await bare.objects.packs.find(target.id);
      assert.ok(found, 'the chunk is in a pack');
      await flipByte(found.pack.packPath, found.entry.offset + 16 + 10);

      const result = await root('verify', '--root', other);
      assert.equal(result.code, 1, result.out + result.stderr);
      assert.match(
        result.out,
        /proj: error: big\.mov in commit [0-9a-f]{64}: 1 of its \d+ chunks is damaged/,
      );
      assert.ok(result.out.includes(`expected sha256 ${sha256(bigV2)}`), result.out);
      const at = v2[0]!.length + v2[1]!.length + 10;
      assert.ok(result.out.includes(`actual   sha256 ${sha256(flipped(bigV2, at))}`), result.out);
      assert.ok(result.out.includes(`chunk ${target.id} at offset`), result.out);
      const quick = await root('verify', '--root', other, '--quick');
      assert.equal(quick.code, 0, quick.out);
      // stats reads headers only: the damage is not its to find.
      const stats = await root('stats', '--root', other, '--json');
      assert.equal(stats.code, 0, stats.stderr);
      assert.equal(
        parse<{ repositories: StatsJson[] }>(stats).repositories[0]!.storedBytes,
        projStats.storedBytes,
      );
    });
  });

  test('usage errors', async () => {
    const both = await repo.fails(['stats', '--json', '--prometheus'], 129);
    assert.match(both.stderr, /exclude each other/);
    await repo.fails(['verify', '--repo', 'proj'], 129);
    await repo.fails(['verify', 'no-such-commit'], 128);
  });
});
