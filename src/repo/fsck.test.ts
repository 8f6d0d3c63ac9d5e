/**
 * `fsck`'s reading of stored objects (fsck-verify.ts, fsck-worker.ts), on a
 * repository built through the library, so that each kind of record is
 * there on purpose: a chunk stored whole across several read pieces, a
 * zstd chunk, a delta, a delta of four bases one of which is a delta, a
 * Brotli blob; loose and packed. The CLI-level cases (each kind of damage,
 * paths and commits, repair) are in test/fsck.test.ts.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { after, before, describe, test } from 'node:test';
import { Codec, encodeDelta } from '../compression/codec.ts';
import { encodeCommit, signatureAt } from '../odb/commit.ts';
import { deltaPrefix } from '../odb/delta.ts';
import { encodeManifest } from '../odb/manifest.ts';
import { chunkIdOf, type ObjectId } from '../odb/object-id.ts';
import { encodeTree } from '../odb/tree.ts';
import { fsck, type FsckReport } from './fsck.ts';
import { inflate, READ_PIECE } from './fsck-worker.ts';
import { repack } from './repack.ts';
import { Repository } from './repository.ts';

const KiB = 1024;
const MiB = 1024 * KiB;

/** Deterministic bytes that do not compress. */
function noise(length: number, seed: number): Buffer {
  const out = Buffer.alloc(length);
  let x = seed * 2654435761 + 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** Bytes that compress well but not to nothing. */
function compressible(length: number, seed: number): Buffer {
  const out = Buffer.alloc(length);
  const sprinkle = noise(length >> 6, seed);
  for (let i = 0; i < length; i++) out[i] = (i * 7) & 0x3f;
  for (let i = 0; i < sprinkle.length; i++) out[i * 64] = sprinkle[i]!;
  return out;
}

interface Fixture {
  dir: string;
  /** Stored whole, 1.5 MiB: its record spans more than one read piece. */
  big: ObjectId;
  /** zstd. */
  packedZstd: ObjectId;
  /** Stored whole, the base of `delta1`. */
  small: ObjectId;
  /** A delta against `small` (depth 1). */
  delta1: ObjectId;
  /** A delta against big, packedZstd, delta1 and small (depth 2). */
  delta4: ObjectId;
  blob: ObjectId;
  objects: number;
}

async function problemsOf(report: FsckReport): Promise<string[]> {
  return report.problems.map((p) => `${p.kind} ${p.id ?? p.file}: ${p.reason}`);
}

describe('fsck reading stored objects', () => {
  const f = {} as Fixture;
  let scratch: string;

  before(async () => {
    scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'mediagit-fsck-'));
    f.dir = path.join(scratch, 'base');
    const { repo } = await Repository.init(f.dir, {});
    const store = repo.objects;
    const big = noise(1536 * KiB, 1);
    const zstd = compressible(600 * KiB, 2);
    const small = noise(300 * KiB, 3);
    const edited = Buffer.from(small);
    edited.write('an edit in the middle', 150 * KiB);
    const four = Buffer.concat([
      big.subarray(0, 200 * KiB),
      zstd.subarray(100 * KiB, 300 * KiB),
      edited.subarray(0, 100 * KiB),
      Buffer.from('glue'),
      small.subarray(200 * KiB),
    ]);
    f.big = (await store.write('chunk', big, 'compressed')).id;
    const written = await store.write('chunk', zstd, 'binary');
    f.packedZstd = written.id;
    f.small = (await store.write('chunk', small, 'compressed')).id;
    f.delta1 = chunkIdOf(edited);
    await store.writeEncoded('chunk', f.delta1, edited.length, {
      codec: Codec.delta,
      payload: Buffer.concat([deltaPrefix([f.small], 1), await encodeDelta(edited, small)]),
    });
    f.delta4 = chunkIdOf(four);
    const bases = [f.big, f.packedZstd, f.delta1, f.small];
    await store.writeEncoded('chunk', f.delta4, four.length, {
      codec: Codec.delta,
      payload: Buffer.concat([
        deltaPrefix(bases, 2),
        await encodeDelta(four, Buffer.concat([big, zstd, edited, small])),
      ]),
    });
    const chunks = [big, zstd, small, edited, four];
    const whole = Buffer.concat(chunks);
    const manifest = await store.write(
      'manifest',
      encodeManifest({
        size: whole.length,
        sha256: createHash('sha256').update(whole).digest('hex'),
        chunker: 'fastcdc-v1 524288 1048576 4194304',
        chunks: chunks.map((data) => ({ id: chunkIdOf(data), length: data.length })),
      }),
    );
    const notes = Buffer.from('notes about the shot\n'.repeat(200));
    f.blob = (await store.write('blob', notes, 'text')).id;
    const tree = await store.write(
      'tree',
      encodeTree([
        { name: 'big.bin', mode: '100644', kind: 'manifest', id: manifest.id, size: whole.length },
        { name: 'notes.txt', mode: '100644', kind: 'blob', id: f.blob, size: notes.length },
      ]),
    );
    const who = signatureAt('A', 'a@example.com', new Date(0));
    const commit = await store.write(
      'commit',
      encodeCommit({ tree: tree.id, parents: [], author: who, committer: who, message: 'one\n' }),
    );
    await fs.writeFile(path.join(repo.gitDir, 'refs/heads/main'), `${commit.id}\n`);
    f.objects = 9;
    // What the fixture means to hold.
    const header = async (id: ObjectId): Promise<Buffer> =>
      (await store.readRecord(id)).subarray(0, 16);
    assert.equal((await header(f.big))[5], Codec.store);
    assert.equal((await header(f.packedZstd))[5], Codec.zstd);
    assert.equal((await header(f.delta4))[5], Codec.delta);
    assert.equal((await header(f.blob))[5], Codec.brotli);
  });

  after(async () => {
    await fs.rm(scratch, { recursive: true, force: true });
  });

  /** A copy of the fixture repository, packed (every object in one pack) or loose. */
  async function copy(name: string, packed: boolean): Promise<Repository> {
    const dir = path.join(scratch, name);
    await fs.cp(f.dir, dir, { recursive: true });
    const repo = await Repository.discover(dir);
    if (packed) await repack(repo, { all: true, deleteRedundant: true });
    return await Repository.discover(dir);
  }

  /** Where `id`'s record is in the repository's only pack. */
  async function packedRecord(
    repo: Repository,
    id: ObjectId,
  ): Promise<{ file: string; offset: number }> {
    const found = await repo.objects.packs.find(id);
    assert.ok(found, `${id} is packed`);
    return { file: found.pack.packPath, offset: found.entry.offset };
  }

  async function flip(file: string, offset: number): Promise<void> {
    const handle = await fs.open(file, 'r+');
    try {
      const byte = Buffer.alloc(1);
      await handle.read(byte, 0, 1, offset);
      byte[0] = byte[0]! ^ 0x40;
      await handle.write(byte, 0, 1, offset);
    } finally {
      await handle.close();
    }
  }

  for (const packed of [false, true]) {
    test(`every record of every kind verifies (${packed ? 'packed' : 'loose'})`, async () => {
      const repo = await copy(`clean-${packed}`, packed);
      // The header check of a delta of four bases reads enough of its prefix.
      const quick = await fsck(repo);
      assert.deepEqual(await problemsOf(quick), []);
      const full = await fsck(repo, { full: true });
      assert.deepEqual(await problemsOf(full), []);
      assert.equal(full.stats.verified, f.objects);
      assert.equal(full.stats.loose, packed ? 0 : f.objects);
    });
  }

  test('a flipped byte in the second read piece of a chunk stored whole', async () => {
    const repo = await copy('big-piece', true);
    const { file, offset } = await packedRecord(repo, f.big);
    await flip(file, offset + 16 + READ_PIECE + 1234);
    assert.deepEqual(await problemsOf(await fsck(repo)), [], 'the header check does not read it');
    const report = await fsck(repo, { full: true });
    const problems = await problemsOf(report);
    assert.ok(
      problems.includes(`corrupt ${f.big}: content does not match its hash`),
      problems.join('\n'),
    );
    // The delta built on it fails too, naming it.
    assert.ok(
      problems.some((p) => p.startsWith(`corrupt ${f.delta4}:`) && p.includes(f.big)),
      problems.join('\n'),
    );
    // Everything else still verifies.
    assert.equal(report.stats.verified, f.objects - 2);
  });

  test('a flipped byte in a zstd chunk and in a Brotli blob, loose', async () => {
    const repo = await copy('compressed', false);
    const store = repo.objects;
    await flip(store.pathOf(f.packedZstd), 16 + 40);
    await flip(store.pathOf(f.blob), 16 + 5);
    const problems = await problemsOf(await fsck(repo, { full: true }));
    assert.ok(
      problems.some((p) => p.startsWith(`corrupt ${f.packedZstd}:`)),
      problems.join('\n'),
    );
    assert.ok(
      problems.some((p) => p.startsWith(`corrupt ${f.blob}:`)),
      problems.join('\n'),
    );
    assert.ok(
      problems.some((p) => p.startsWith(`corrupt ${f.delta4}:`) && p.includes(f.packedZstd)),
      problems.join('\n'),
    );
  });

  test('a delta whose base, itself a delta, is damaged', async () => {
    const repo = await copy('delta-base', false);
    await flip(repo.objects.pathOf(f.small), 16 + 1000);
    const problems = await problemsOf(await fsck(repo, { full: true }));
    assert.ok(problems.includes(`corrupt ${f.small}: content does not match its hash`));
    // delta1 is decoded against it (its own failure), delta4 through delta1.
    assert.ok(problems.some((p) => p.startsWith(`corrupt ${f.delta1}:`) && p.includes(f.small)));
    assert.ok(
      problems.some((p) => p.startsWith(`corrupt ${f.delta4}:`)),
      problems.join('\n'),
    );
  });

  test('a pack cut short in its last record', async () => {
    const repo = await copy('cut', true);
    const { file } = await packedRecord(repo, f.big);
    const { size } = await fs.stat(file);
    await fs.truncate(file, size - 32 - 100);
    const report = await fsck(repo, { full: true });
    assert.equal(report.ok, false);
    assert.ok(report.problems.some((p) => p.kind === 'corrupt-pack'));
  });

  test("two deltas that are each other's base end in the depth limit, not a hang", async () => {
    const repo = await copy('loop', false);
    const store = repo.objects;
    const x = noise(64 * KiB, 7);
    const y = Buffer.concat([x.subarray(0, 60 * KiB), Buffer.from('y'.repeat(4 * KiB))]);
    const xId = chunkIdOf(x);
    const yId = chunkIdOf(y);
    for (const [id, data, base, other] of [
      [xId, x, yId, y],
      [yId, y, xId, x],
    ] as const) {
      await store.writeEncoded('chunk', id, data.length, {
        codec: Codec.delta,
        payload: Buffer.concat([deltaPrefix([base], 1), await encodeDelta(data, other)]),
      });
    }
    const report = await fsck(repo, { full: true });
    for (const id of [xId, yId]) {
      const problem = report.problems.find((p) => p.id === id && p.kind === 'corrupt');
      assert.match(problem?.reason ?? '', /its delta base [0-9a-f]{64} /);
    }
    assert.equal(report.stats.verified, f.objects);
  });
});

describe('decompressing into reused memory', () => {
  const data = compressible(3 * MiB + 77, 9);
  const id = createHash('sha256').update(data).digest('hex');
  const zstd = zlib.zstdCompressSync(data);
  const brotli = zlib.brotliCompressSync(data);

  function hashed(codec: Codec, payload: Uint8Array, rawSize: number) {
    const hasher = createHash('sha256');
    const outcome = inflate(codec, payload, rawSize, { hasher });
    assert.ok(outcome, 'this Node has the native handle');
    return { ...outcome, digest: hasher.digest('hex') };
  }

  test('each codec, to a hash and into a buffer, one record after another', () => {
    for (const [codec, payload] of [
      [Codec.zstd, zstd],
      [Codec.brotli, brotli],
    ] as const) {
      for (let round = 0; round < 2; round++) {
        assert.deepEqual(hashed(codec, payload, data.length), { ok: true, digest: id });
      }
      const into = Buffer.alloc(data.length + 1);
      assert.deepEqual(inflate(codec, payload, data.length, { into }), { ok: true });
      assert.ok(into.subarray(0, data.length).equals(data));
    }
  });

  test('what is wrong is said, and the next record decodes', () => {
    for (const [codec, payload] of [
      [Codec.zstd, zstd],
      [Codec.brotli, brotli],
    ] as const) {
      const short = hashed(codec, payload, data.length - 1);
      assert.deepEqual([short.ok, short.reason], [false, 'size does not match its header']);
      const long = hashed(codec, payload, data.length + 1);
      assert.deepEqual([long.ok, long.reason], [false, 'size does not match its header']);
      const into = Buffer.alloc(data.length);
      assert.equal(inflate(codec, payload, data.length - 1, { into })?.ok, false);
      const trailing = hashed(codec, Buffer.concat([payload, Buffer.from('extra')]), data.length);
      assert.equal(trailing.ok, false);
      const garbage = hashed(codec, noise(4096, 5), data.length);
      assert.equal(garbage.ok, false);
      assert.deepEqual(hashed(codec, payload, data.length), { ok: true, digest: id });
    }
  });
});
