/**
 * `gc --aggressive` recomputes deltas (docs/gc.md, "--aggressive: deltas
 * recomputed"): versions stored whole become deltas, existing deltas follow
 * their bases' new depths or are stored whole when their chain would pass
 * their category's depth, a delta another command writes meanwhile is fixed
 * under gc.lock, and the bases of every stored copy of an object survive.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Codec, encodeDelta } from '../src/compression/codec.ts';
import { encodeCommit, signatureAt } from '../src/odb/commit.ts';
import { deltaPrefix, parseDeltaPayload } from '../src/odb/delta.ts';
import { objectIdOf, type ObjectId } from '../src/odb/object-id.ts';
import { decodeHeader, encodeHeader, HEADER_SIZE } from '../src/odb/object-store.ts';
import { packObjects } from '../src/odb/pack-write.ts';
import { writersDir } from '../src/odb/gc-guard.ts';
import { encodeTree } from '../src/odb/tree.ts';
import { gc, storedBytes } from '../src/repo/gc.ts';
import type { DeltaStats } from '../src/repo/gc-deltas.ts';
import { Refs } from '../src/repo/refs.ts';
import { Repository } from '../src/repo/repository.ts';
import { readCommit } from '../src/repo/tree-ops.ts';
import { prng, pseudoRandomBytes, readCommitFiles, TempRepo } from './helpers.ts';

const KiB = 1024;
const MiB = 1024 * KiB;

/** `base` with `edits` 64-byte spans overwritten (deterministic per seed). */
function edited(base: Buffer, edits: number, seed: number): Buffer {
  const out = Buffer.from(base);
  const random = prng(seed);
  for (let i = 0; i < edits; i++) {
    const at = Math.floor(random() * (out.length - 64));
    pseudoRandomBytes(64, seed * 100 + i, 'edit').copy(out, at);
  }
  return out;
}

function sha(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

interface GcJson {
  bytesBefore: number;
  bytesAfter: number;
  deltas: DeltaStats | null;
}

async function gcJson(repo: TempRepo, args: string[]): Promise<GcJson> {
  return JSON.parse((await repo.ok(['gc', '--json', ...args])).out) as GcJson;
}

async function assertFsckClean(repo: TempRepo): Promise<void> {
  const result = await repo.run(['fsck', '--full']);
  assert.equal(result.code, 0, `fsck --full: ${result.out}${result.stderr}`);
  assert.match(result.out, /no problems found/);
}

/**
 * The last `versions.length` commits (first parents from HEAD) each hold
 * `file` as committed, read back through the library (every object
 * verified on the way), and the CLI shows the newest.
 */
async function assertVersions(repo: TempRepo, file: string, versions: Buffer[]): Promise<void> {
  const store = (await Repository.discover(repo.dir)).objects;
  let commit = (await repo.head()).id!;
  for (let i = versions.length - 1; i >= 0; i--) {
    const files = await readCommitFiles(repo.dir, commit);
    assert.equal(files.get(file)?.sha256, sha(versions[i]!), `${file} version ${i + 1} reads back`);
    commit = (await readCommit(store, commit)).parents[0]!;
  }
  const shown = await repo.ok(['show', `HEAD:${file}`]);
  assert.equal(sha(shown.stdout), sha(versions.at(-1)!));
}

/** Delta depth and bases of an object's stored record (the copy readers find first). */
async function encodingOf(
  dir: string,
  id: ObjectId,
): Promise<{ depth: number; bases: readonly ObjectId[] }> {
  const store = (await Repository.discover(dir)).objects;
  const record = await store.readRecord(id);
  if (decodeHeader(id, record).codec !== Codec.delta) return { depth: 0, bases: [] };
  const delta = parseDeltaPayload(id, record.subarray(HEADER_SIZE));
  return { depth: delta.depth, bases: delta.bases };
}

/** Replaces an object's loose file with `data` stored as a delta against `base`. */
async function storeAsDelta(
  dir: string,
  data: Buffer,
  base: Buffer,
  depth: number,
): Promise<ObjectId> {
  const store = (await Repository.discover(dir)).objects;
  const id = objectIdOf('blob', data);
  const record = Buffer.concat([
    encodeHeader('blob', Codec.delta, data.length),
    deltaPrefix([objectIdOf('blob', base)], depth),
    await encodeDelta(data, base),
  ]);
  await store.decodeVerified(id, record);
  fs.rmSync(store.pathOf(id), { force: true });
  fs.writeFileSync(store.pathOf(id), record);
  return id;
}

/**
 * Ends this test process's registration as a writer of the repository (made
 * by the library writes that set a scenario up), as its exit would: a CLI gc
 * would otherwise wait for it.
 */
function withdrawAsWriter(objectsDir: string): void {
  const dir = writersDir(objectsDir);
  for (const name of fs.readdirSync(dir)) {
    if (name.startsWith(`${process.pid}-`)) fs.rmSync(path.join(dir, name));
  }
}

describe('gc --aggressive recomputes deltas', () => {
  let repo: TempRepo;
  before(async () => {
    repo = await TempRepo.create({ chunkThreshold: MiB });
  });
  after(async () => repo.cleanup());

  test('similar versions added with --no-delta become deltas: far smaller, fsck clean, every version exact, a second run changes nothing', async () => {
    // A creative project stored whole (a blob) and one cut into chunks.
    const scenes: Buffer[] = [];
    const takes: Buffer[] = [];
    let scene = pseudoRandomBytes(600 * KiB, 1);
    let take = pseudoRandomBytes(3 * MiB, 2);
    for (let v = 0; v < 6; v++) {
      scene = edited(scene, 4, 10 + v);
      take = edited(take, 3, 20 + v);
      scenes.push(scene);
      takes.push(take);
      fs.writeFileSync(repo.path('scene.c4d'), scene);
      fs.writeFileSync(repo.path('take.c4d'), take);
      await repo.ok(['add', '--no-delta', 'scene.c4d', 'take.c4d']);
      await repo.ok(['commit', '-q', '-m', `v${v + 1}`]);
    }
    const before = await storedBytes(await Repository.discover(repo.dir));

    // Plain gc packs, and leaves encodings alone.
    const plain = await gcJson(repo, ['--prune=now']);
    assert.equal(plain.deltas, null);
    assert.ok(plain.bytesAfter > 0.9 * before, `plain gc: ${before} -> ${plain.bytesAfter}`);

    const first = await gcJson(repo, ['--aggressive', '--prune=now']);
    const deltas = first.deltas!;
    assert.equal(deltas.skipped, null);
    // Five later scenes, and the changed chunks of five later takes.
    assert.ok(deltas.deltasMade >= 10, `deltas made: ${JSON.stringify(deltas)}`);
    assert.ok(deltas.bytesSaved > 5 * MiB, `bytes saved: ${deltas.bytesSaved}`);
    assert.ok(
      first.bytesAfter < 0.4 * first.bytesBefore,
      `stored ${first.bytesBefore} -> ${first.bytesAfter}`,
    );
    assert.equal(first.bytesAfter, await storedBytes(await Repository.discover(repo.dir)));
    await assertFsckClean(repo);
    await assertVersions(repo, 'scene.c4d', scenes);
    await assertVersions(repo, 'take.c4d', takes);
    // Only reachable objects serve as bases, each chain within creative's depth.
    const tip = await repo.head();
    const latest = await encodingOf(repo.dir, objectIdOf('blob', scenes[5]!));
    assert.ok(latest.depth >= 1 && latest.depth <= 10, `depth ${latest.depth}`);

    // A second run finds nothing better: nothing rewritten, nothing grows.
    const second = await repo.ok(['gc', '--aggressive', '--prune=now']);
    assert.match(second.out, /Recomputed deltas of \d+ objects: 0 new deltas, 0 bytes saved/);
    const again = await gcJson(repo, ['--aggressive', '--prune=now']);
    assert.deepEqual(
      {
        made: again.deltas!.deltasMade,
        whole: again.deltas!.madeWhole,
        depths: again.deltas!.depthsRewritten,
      },
      { made: 0, whole: 0, depths: 0 },
    );
    assert.ok(again.bytesAfter <= first.bytesAfter, `${first.bytesAfter} -> ${again.bytesAfter}`);
    assert.deepEqual(await repo.head(), tip);
    await assertFsckClean(repo);
    await assertVersions(repo, 'scene.c4d', scenes);
  });
});

describe('gc --aggressive and existing deltas', () => {
  let repo: TempRepo;
  before(async () => {
    repo = await TempRepo.create();
  });
  after(async () => repo.cleanup());

  test('a delta whose base becomes a delta gets its depth byte rewritten, or is stored whole past its category depth', async () => {
    // Layered images allow chains of 3. A and B are alike, so B becomes a
    // delta against A; C, D and E already are deltas in a chain on B
    // (depths 1, 2, 3), D and E alike but unlike anything else.
    const a = pseudoRandomBytes(200 * KiB, 30);
    const b = edited(a, 4, 31);
    const c = edited(b, 4, 32);
    const d = pseudoRandomBytes(200 * KiB, 33);
    const e = edited(d, 4, 34);
    const versions = [a, b, c, d, e];
    for (const [i, version] of versions.entries()) {
      fs.writeFileSync(repo.path('art.psd'), version);
      await repo.ok(['add', '--no-delta', 'art.psd']);
      await repo.ok(['commit', '-q', '-m', `v${i + 1}`]);
    }
    await storeAsDelta(repo.dir, c, b, 1);
    await storeAsDelta(repo.dir, d, c, 2);
    await storeAsDelta(repo.dir, e, d, 3);
    await assertFsckClean(repo);

    const result = await gcJson(repo, ['--aggressive', '--prune=now']);
    const deltas = result.deltas!;
    assert.ok(deltas.deltasMade >= 1, JSON.stringify(deltas)); // B
    assert.ok(deltas.depthsRewritten >= 1, JSON.stringify(deltas)); // D (C too, unless re-based)
    assert.equal(deltas.madeWhole, 1, JSON.stringify(deltas)); // E: D is at depth 3 now
    assert.deepEqual((await encodingOf(repo.dir, objectIdOf('blob', b))).bases, [
      objectIdOf('blob', a),
    ]);
    assert.equal((await encodingOf(repo.dir, objectIdOf('blob', e))).depth, 0);
    for (const version of versions) {
      const { depth } = await encodingOf(repo.dir, objectIdOf('blob', version));
      assert.ok(depth <= 3, `a chain of ${depth} in a layered image`);
    }
    // fsck checks every depth byte against its bases'.
    await assertFsckClean(repo);
    await assertVersions(repo, 'art.psd', versions);

    const again = await gcJson(repo, ['--aggressive', '--prune=now']);
    assert.equal(again.deltas!.deltasMade + again.deltas!.madeWhole, 0);
    assert.equal(again.deltas!.depthsRewritten, 0);
    assert.ok(again.bytesAfter <= result.bytesAfter);
    await assertFsckClean(repo);
  });

  test('a delta another command writes during gc, against an object gc re-encodes, is fixed under gc.lock', async () => {
    const a = pseudoRandomBytes(200 * KiB, 40);
    const b = edited(a, 4, 41);
    const y = edited(b, 4, 42);
    for (const [i, version] of [a, b].entries()) {
      fs.writeFileSync(repo.path('fresh.psd'), version);
      await repo.ok(['add', '--no-delta', 'fresh.psd']);
      await repo.ok(['commit', '-q', '-m', `fresh ${i + 1}`]);
    }
    const handle = await Repository.discover(repo.dir);
    const store = handle.objects;
    const parent = (await new Refs(handle).head()).id!;
    const frame = await encodeDelta(y, b);
    let wrote = false;
    // A writer that read B while it was still whole (depth 0) stores Y as a
    // delta at depth 1 and commits it, while gc packs.
    const writeConcurrently = (): void => {
      if (wrote) return;
      wrote = true;
      const put = (id: ObjectId, record: Buffer): void => {
        fs.mkdirSync(path.dirname(store.pathOf(id)), { recursive: true });
        fs.writeFileSync(store.pathOf(id), record);
      };
      const yId = objectIdOf('blob', y);
      put(
        yId,
        Buffer.concat([
          encodeHeader('blob', Codec.delta, y.length),
          deltaPrefix([objectIdOf('blob', b)], 1),
          frame,
        ]),
      );
      const tree = encodeTree([
        { name: 'fresh.psd', mode: '100644', kind: 'blob', id: yId, size: y.length },
      ]);
      const treeId = objectIdOf('tree', tree);
      put(treeId, Buffer.concat([encodeHeader('tree', Codec.store, tree.length), tree]));
      const who = signatureAt('W', 'w@example.com', new Date());
      const commit = encodeCommit({
        tree: treeId,
        parents: [parent],
        author: who,
        committer: who,
        message: 'written during gc',
      });
      const commitId = objectIdOf('commit', commit);
      put(commitId, Buffer.concat([encodeHeader('commit', Codec.store, commit.length), commit]));
      fs.writeFileSync(path.join(handle.gitDir, 'refs', 'heads', 'during-gc'), `${commitId}\n`);
    };
    const result = await gc(handle, {
      pruneBefore: Date.now(),
      aggressive: true,
      onProgress: (event) => {
        if (event.phase === 'Packing') writeConcurrently();
      },
    });
    assert.ok(wrote, 'the concurrent write happened');
    assert.equal(result.deltas?.concurrentFixed, 1, JSON.stringify(result.deltas));
    assert.equal((await encodingOf(repo.dir, objectIdOf('blob', y))).depth, 2);
    await assertFsckClean(repo);
    const shown = await repo.ok(['show', 'during-gc:fresh.psd']);
    assert.equal(sha(shown.stdout), sha(y));
    await repo.ok(['branch', '-D', 'during-gc']);
  });

  test('the bases of every stored copy of an object are kept, not only those of the copy readers find first', async () => {
    // X is packed as a delta against C, which nothing else names, and also
    // loose and whole (what an interrupted gc --aggressive can leave).
    const handle = await Repository.discover(repo.dir);
    const store = handle.objects;
    const c = pseudoRandomBytes(100 * KiB, 50);
    const x = edited(c, 4, 51);
    const filler = pseudoRandomBytes(2 * MiB, 52);
    fs.writeFileSync(repo.path('x.psd'), x);
    fs.writeFileSync(repo.path('filler.bin'), filler);
    await repo.ok(['add', '--no-delta', 'x.psd', 'filler.bin']);
    await repo.ok(['commit', '-q', '-m', 'x']);
    const cId = (await store.write('blob', c)).id;
    const xId = await storeAsDelta(repo.dir, x, c, 1);
    const commitId = (await new Refs(handle).head()).id!;
    const treeId = (await readCommit(store, commitId)).tree;
    const packed = [xId, objectIdOf('blob', filler), treeId, commitId];
    await packObjects(store, packed);
    for (const id of packed) fs.rmSync(store.pathOf(id));
    fs.writeFileSync(
      store.pathOf(xId),
      Buffer.concat([encodeHeader('blob', Codec.store, x.length), x]),
    );
    const old = new Date(Date.now() - 3600_000);
    fs.utimesSync(store.pathOf(cId), old, old);
    withdrawAsWriter(store.objectsDir);

    await repo.ok(['gc', '-q', '--prune=now']);
    const after = (await Repository.discover(repo.dir)).objects;
    assert.ok((await after.recordSize(cId)) !== undefined, 'the packed copy of X keeps its base');
    await assertFsckClean(repo);
    // A reader that meets the packed copy (once the loose one is gone) reads X.
    fs.rmSync(store.pathOf(xId));
    const shown = await repo.ok(['show', 'HEAD:x.psd']);
    assert.equal(sha(shown.stdout), sha(x));
  });
});

describe('plain gc and small loose deltas', () => {
  let repo: TempRepo;
  before(async () => {
    repo = await TempRepo.create();
  });
  after(async () => repo.cleanup());

  test('their records are packed as stored, not rebuilt from their bases: a damaged one loses nothing and fsck names it', async () => {
    // Three versions of a layered image, the last two stored as deltas in
    // loose files no pack holds (their only copies); plain gc packs loose
    // objects this small.
    const a = pseudoRandomBytes(200 * KiB, 40);
    const b = edited(a, 4, 41);
    const c = edited(b, 4, 42);
    for (const [i, version] of [a, b, c].entries()) {
      fs.writeFileSync(repo.path('art.psd'), version);
      await repo.ok(['add', '--no-delta', 'art.psd']);
      await repo.ok(['commit', '-q', '-m', `v${i + 1}`]);
    }
    const bId = await storeAsDelta(repo.dir, b, a, 1);
    const cId = await storeAsDelta(repo.dir, c, b, 2);
    await assertFsckClean(repo);
    // A byte of c's zstd frame changes on disk: only rebuilding c shows it.
    const store = (await Repository.discover(repo.dir)).objects;
    const cFile = store.pathOf(cId);
    const damaged = fs.readFileSync(cFile);
    damaged[damaged.length - 20]! ^= 0x55;
    fs.rmSync(cFile);
    fs.writeFileSync(cFile, damaged);
    const bRecord = fs.readFileSync(store.pathOf(bId));

    await repo.ok(['gc', '-q', '--prune=now']);
    assert.ok(!fs.existsSync(store.pathOf(bId)) && !fs.existsSync(cFile), 'both were packed');
    const packed = (await Repository.discover(repo.dir)).objects;
    assert.ok(bRecord.equals(await packed.readRecord(bId)), 'b packed byte for byte');
    assert.ok(damaged.equals(await packed.readRecord(cId)), 'c packed as it was stored');
    assert.equal((await encodingOf(repo.dir, bId)).depth, 1);

    const fsck = await repo.run(['fsck', '--full']);
    assert.notEqual(fsck.code, 0, 'fsck --full finds the damaged delta');
    assert.ok(fsck.out.includes(cId), `fsck names ${cId}: ${fsck.out}`);
    assert.ok(!fsck.out.includes(bId), `b is sound: ${fsck.out}`);
    const v2 = (await readCommit(packed, (await repo.head()).id!)).parents[0]!;
    const files = await readCommitFiles(repo.dir, v2);
    assert.equal(files.get('art.psd')?.sha256, sha(b), 'b reads back exactly from the pack');
  });
});
