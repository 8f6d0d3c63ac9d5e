/**
 * The protocol's operations on an in-memory repository: transfer packs
 * (framing, checksum, verification before anything is stored), negotiation
 * (haves, depth, shallow receivers) and every ref-update rule, including
 * compare-and-swap between two services sharing one store.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import { Codec } from '../compression/codec.ts';
import { encodeCommit, signatureAt } from '../odb/commit.ts';
import { encodeManifest } from '../odb/manifest.ts';
import { objectIdOf, type ObjectId } from '../odb/object-id.ts';
import { CloudPackWriter, cloudPackKey, MAX_CLOUD_PACK_BYTES } from '../odb/cloud-pack.ts';
import { encodeHeader, type ObjectTypeName } from '../odb/object-store.ts';
import { encodeTree, type TreeEntry } from '../odb/tree.ts';
import type { StorageCapabilities } from '../storage/backend.ts';
import { MemoryBackend } from '../storage/memory.ts';
import { BackendRepo } from './backend-repo.ts';
import { RepoService } from './service.ts';
import { decodeTransferPack, encodeTransferPack } from './transfer-pack.ts';

function record(type: ObjectTypeName, data: Buffer): { id: ObjectId; record: Buffer } {
  return {
    id: objectIdOf(type, data),
    record: Buffer.concat([encodeHeader(type, Codec.store, data.length), data]),
  };
}

/** An in-memory bare repository and a builder of commits on it. */
async function fixture(name: string) {
  const backend = new MemoryBackend(name);
  await backend.put('HEAD', Buffer.from('ref: refs/heads/main\n'));
  const repo = new BackendRepo(backend);
  const service = new RepoService(repo);
  let clock = 1_700_000_000;
  /** Builds a commit (its blob, manifest + chunk, tree) as transfer entries, unstored. */
  const commit = (text: string, parents: ObjectId[]) => {
    const blob = record('blob', Buffer.from(text));
    const chunkData = Buffer.from(`chunk of ${text}`.repeat(10));
    const chunk = record('chunk', chunkData);
    const manifest = record(
      'manifest',
      encodeManifest({
        size: chunkData.length,
        sha256: createHash('sha256').update(chunkData).digest('hex'),
        chunker: 'fastcdc 1 2 4',
        chunks: [{ id: chunk.id, length: chunkData.length }],
      }),
    );
    const entries: TreeEntry[] = [
      { name: 'a.txt', mode: '100644', kind: 'blob', id: blob.id, size: text.length },
      {
        name: 'big.bin',
        mode: '100644',
        kind: 'manifest',
        id: manifest.id,
        size: chunkData.length,
      },
    ];
    const tree = record('tree', encodeTree(entries));
    const sig = signatureAt('T', 't@example.com', new Date(clock++ * 1000));
    const commitRecord = record(
      'commit',
      encodeCommit({ tree: tree.id, parents, author: sig, committer: sig, message: text }),
    );
    return { id: commitRecord.id, metadata: [blob, manifest, tree, commitRecord], chunk };
  };
  /** Stores a commit the way a push does: chunk, then the pack. */
  const store = async (built: ReturnType<typeof commit>) => {
    await service.putChunk(built.chunk.id, built.chunk.record);
    await service.receivePack(encodeTransferPack(built.metadata));
  };
  return { backend, repo, service, commit, store };
}

describe('transfer packs', () => {
  test('round trip, and any damage is refused', () => {
    const entries = [record('blob', Buffer.from('one')), record('blob', Buffer.from('two'))];
    const pack = encodeTransferPack(entries);
    assert.deepEqual(
      decodeTransferPack(pack).map((e) => [e.id, e.record.toString('hex')]),
      entries.map((e) => [e.id, e.record.toString('hex')]),
    );
    for (let at = 0; at < pack.length; at += 7) {
      const bad = Buffer.from(pack);
      bad[at]! ^= 1;
      assert.throws(() => decodeTransferPack(bad), /transfer pack rejected/);
    }
    assert.throws(() => decodeTransferPack(pack.subarray(0, pack.length - 1)), /rejected/);
    assert.throws(() => decodeTransferPack(Buffer.alloc(10)), /too short/);
  });

  test('a pack with one bad record stores nothing', async () => {
    const { service, repo, commit } = await fixture('bad-pack');
    const built = commit('x', []);
    const metadata = built.metadata.map((e) => ({ ...e, record: Buffer.from(e.record) }));
    metadata[2]!.record[metadata[2]!.record.length - 1]! ^= 0xff;
    await assert.rejects(service.receivePack(encodeTransferPack(metadata)), /rejected/);
    for (const entry of metadata) assert.equal(await repo.has(entry.id), false);
    // A chunk does not travel in a pack.
    await assert.rejects(
      service.receivePack(encodeTransferPack([built.chunk])),
      /does not travel in a pack/,
    );
  });
});

describe('cloud packs uploaded straight to the store', () => {
  /** A pack of three chunks, the middle one's content altered after its ID was taken. */
  const upload = async (backend: MemoryBackend, alter: (pack: Buffer) => void = () => {}) => {
    const chunks = ['one', 'two', 'three'].map((t) => record('chunk', Buffer.from(t.repeat(50))));
    const writer = new CloudPackWriter(Buffer.alloc(MAX_CLOUD_PACK_BYTES / 64));
    for (const chunk of chunks) writer.add(chunk.id, chunk.record);
    const pack = writer.finish();
    const bytes = Buffer.from(pack.bytes);
    alter(bytes);
    await backend.put(cloudPackKey(pack.name), bytes);
    return { name: pack.name, chunks, bytes };
  };
  /** Flips a byte of the second record's payload (its table and the pack's name stay valid). */
  const badRecord = (chunks: { record: Buffer }[]) => (bytes: Buffer) => {
    bytes[16 + chunks[0]!.record.length + 20]! ^= 0xff;
  };

  test('table: a whole pack commits, its objects read back verified', async () => {
    const backend = new MemoryBackend('direct-table');
    const repo = new BackendRepo(backend, { verifyUploads: 'table' });
    const good = await upload(backend);
    await repo.commitPacks([good.name]);
    for (const chunk of good.chunks) {
      assert.ok((await repo.read(chunk.id)).data.equals(chunk.record.subarray(16)));
    }
  });

  test('table and full: a damaged table, a truncated pack, a missing pack are refused', async () => {
    for (const verifyUploads of ['table', 'full'] as const) {
      const backend = new MemoryBackend(`direct-${verifyUploads}`);
      const repo = new BackendRepo(backend, { verifyUploads });
      const damaged = await upload(backend, (bytes) => {
        bytes[bytes.length - 40]! ^= 1;
      });
      await assert.rejects(repo.commitPacks([damaged.name]), /record table does not match/);
      assert.equal(await backend.head(cloudPackKey(damaged.name)), undefined, 'deleted');
      const truncated = await upload(backend);
      await backend.put(
        cloudPackKey(truncated.name),
        truncated.bytes.subarray(0, truncated.bytes.length - 1),
      );
      await assert.rejects(repo.commitPacks([truncated.name]), /PACK|corrupt|truncated/i);
      assert.equal(await backend.head(cloudPackKey(truncated.name)), undefined, 'deleted');
      await assert.rejects(repo.commitPacks(['0'.repeat(64)]), /has not been uploaded/);
      for (const chunk of truncated.chunks) assert.equal(await repo.has(chunk.id), false);
    }
  });

  test('a record altered under a valid table: full refuses it at commit, table at read', async () => {
    for (const verifyUploads of ['table', 'full'] as const) {
      const backend = new MemoryBackend(`altered-${verifyUploads}`);
      const repo = new BackendRepo(backend, { verifyUploads });
      const sizes = ['one', 'two', 'three'].map((t) => record('chunk', Buffer.from(t.repeat(50))));
      const pack = await upload(backend, badRecord(sizes));
      if (verifyUploads === 'full') {
        await assert.rejects(repo.commitPacks([pack.name]), /content does not match its ID/);
        assert.equal(await backend.head(cloudPackKey(pack.name)), undefined, 'deleted');
        for (const chunk of pack.chunks) assert.equal(await repo.has(chunk.id), false);
      } else {
        await repo.commitPacks([pack.name]);
        assert.ok((await repo.read(pack.chunks[0]!.id)).data.length > 0);
        await assert.rejects(repo.read(pack.chunks[1]!.id), /content does not match its ID/);
      }
    }
  });
});

describe('cloud packs committed with the table their uploader declares', () => {
  /** A pack of three chunks stored straight in `backend`; its name, size and table. */
  const upload = async (backend: MemoryBackend, tag: string) => {
    const chunks = ['one', 'two', 'three'].map((t) =>
      record('chunk', Buffer.from(`${tag} ${t}`.repeat(50))),
    );
    const writer = new CloudPackWriter(Buffer.alloc(MAX_CLOUD_PACK_BYTES / 64));
    for (const chunk of chunks) writer.add(chunk.id, chunk.record);
    const pack = writer.finish();
    await backend.put(cloudPackKey(pack.name), Buffer.from(pack.bytes));
    const declared = { name: pack.name, size: pack.bytes.length, table: Buffer.from(pack.table) };
    return { declared, chunks };
  };
  /** Counts reads of pack keys. */
  class CountingStore extends MemoryBackend {
    packReads = 0;
    override get(key: string) {
      if (key.startsWith('objects/pack/')) this.packReads++;
      return super.get(key);
    }
    override getRange(key: string, start: number, end: number) {
      if (key.startsWith('objects/pack/')) this.packReads++;
      return super.getRange(key, start, end);
    }
  }

  test('a declared table commits without reading the pack; its objects read verified', async () => {
    const store = new CountingStore('declared');
    const repo = new BackendRepo(store, { verifyUploads: 'table' });
    const { declared, chunks } = await upload(store, 'a');
    await repo.commitPacks([declared]);
    assert.equal(store.packReads, 0);
    const reader = new BackendRepo(store);
    for (const chunk of chunks) {
      assert.ok((await reader.read(chunk.id)).data.equals(chunk.record.subarray(16)));
    }
  });

  test('a table that is not the name, a pack not uploaded, a pack of another size: refused', async () => {
    const store = new MemoryBackend('declared-bad');
    const repo = new BackendRepo(store, { verifyUploads: 'table' });
    const { declared, chunks } = await upload(store, 'b');
    const altered = Buffer.from(declared.table);
    altered[40]! ^= 1; // a record's offset
    await assert.rejects(repo.commitPacks([{ ...declared, table: altered }]), /BAD_PACK|rejected/);
    assert.ok(
      await store.head(cloudPackKey(declared.name)),
      'the stored pack is not at fault: kept',
    );
    await assert.rejects(
      repo.commitPacks([{ ...declared, size: declared.size + 48 }]),
      /rejected/,
      'a size its records do not tile',
    );
    const other = await upload(new MemoryBackend('elsewhere'), 'c');
    await assert.rejects(repo.commitPacks([other.declared]), /has not been uploaded/);
    // Stored under the name, but not the bytes the table describes (a different size).
    await store.put(cloudPackKey(other.declared.name), Buffer.alloc(100));
    await assert.rejects(repo.commitPacks([other.declared]), /its record table says/);
    assert.equal(await store.head(cloudPackKey(other.declared.name)), undefined, 'deleted');
    for (const chunk of [...chunks, ...other.chunks]) assert.equal(await repo.has(chunk.id), false);
  });

  test('full verification reads the pack back whatever is declared', async () => {
    const store = new CountingStore('declared-full');
    const repo = new BackendRepo(store, { verifyUploads: 'full' });
    const { declared } = await upload(store, 'd');
    await repo.commitPacks([declared]);
    assert.ok(store.packReads > 0);
  });
});

describe('loose objects on a remote store', () => {
  /**
   * A memory store that says it is remote and counts HEADs of objects and
   * listings (not the server's look at gc's pending list, every few seconds).
   */
  class RemoteStore extends MemoryBackend {
    override readonly capabilities: StorageCapabilities;
    heads = 0;
    lists = 0;
    constructor(name: string, remote = true) {
      super(name);
      this.capabilities = { ...new MemoryBackend().capabilities, remote };
    }
    override head(key: string) {
      if (!key.startsWith('gc/')) this.heads++;
      return super.head(key);
    }
    override list(prefix: string) {
      this.lists++;
      return super.list(prefix);
    }
  }
  const chunks = (tag: string, n: number) =>
    Array.from({ length: n }, (_, i) => record('chunk', Buffer.from(`${tag} ${i}`.repeat(20))));

  test('many IDs are looked for with one listing; a huge listing falls back to HEADs', async () => {
    const store = new RemoteStore('loose');
    const repo = new BackendRepo(store);
    const stored = chunks('stored', 40);
    for (const c of stored) await repo.putRecord(c.id, c.record);
    const absent = chunks('absent', 40).map((c) => c.id);
    const ids = [...stored.map((c) => c.id), ...absent].sort();
    store.heads = 0;
    assert.deepEqual(
      await repo.missing(ids),
      ids.filter((id) => absent.includes(id)),
    );
    assert.equal(store.heads, 0, 'no HEAD per ID');
    const located = await repo.locate(ids);
    assert.deepEqual(
      located.map((where) => where === 'loose'),
      ids.map((id) => !absent.includes(id)),
    );
    assert.equal(store.heads, 0);
    // Few IDs: HEADs.
    assert.deepEqual(await repo.missing([absent[0]!, stored[0]!.id]), [absent[0]]);
    assert.equal(store.heads, 2);
    // More keys under objects/ than the HEADs would cost in rounds (80 IDs,
    // 5 rounds of 16: 5,000 keys): the listing stops and HEADs answer.
    for (let i = 0; i < 5_100; i++)
      await store.put(`objects/pack/filler-${i}.pack`, Buffer.alloc(1));
    store.heads = 0;
    assert.deepEqual(
      await repo.missing(ids),
      ids.filter((id) => absent.includes(id)),
    );
    assert.equal(store.heads, ids.length);
  });

  test('on local storage every unpacked ID is a HEAD (listing a disk tree costs more)', async () => {
    const store = new RemoteStore('local', false);
    const repo = new BackendRepo(store);
    const ids = chunks('x', 40).map((c) => c.id);
    store.lists = 0;
    assert.deepEqual(await repo.missing(ids), ids);
    // The multi-pack indexes, and objects/pack/ once for packs with their own index.
    assert.equal(store.lists, 2, 'the pack indexes only');
    assert.equal(store.heads, ids.length);
  });
});

describe('ref updates', () => {
  test('create, fast-forward, stale, non-fast-forward, force, delete', async () => {
    const { service, commit, store } = await fixture('rules');
    const c1 = commit('one', []);
    const missing = await service.updateRefs([{ ref: 'refs/heads/main', old: null, new: c1.id }]);
    assert.equal(missing[0]!.reason, 'missing-objects');
    await store(c1);
    const created = await service.updateRefs([{ ref: 'refs/heads/main', old: null, new: c1.id }]);
    assert.equal(created[0]!.ok, true);
    const c2 = commit('two', [c1.id]);
    await store(c2);
    const stale = await service.updateRefs([{ ref: 'refs/heads/main', old: null, new: c2.id }]);
    assert.equal(stale[0]!.reason, 'stale');
    const ff = await service.updateRefs([{ ref: 'refs/heads/main', old: c1.id, new: c2.id }]);
    assert.equal(ff[0]!.ok, true);
    const other = commit('other', [c1.id]);
    await store(other);
    const nonFf = await service.updateRefs([{ ref: 'refs/heads/main', old: c2.id, new: other.id }]);
    assert.equal(nonFf[0]!.reason, 'non-fast-forward');
    const forced = await service.updateRefs([
      { ref: 'refs/heads/main', old: c2.id, new: other.id, force: true },
    ]);
    assert.equal(forced[0]!.ok, true);
    assert.deepEqual((await service.infoRefs()).refs, { 'refs/heads/main': other.id });
    // Force skips the fast-forward rule, never the compare-and-swap: a forced
    // update (or deletion) that expects a value the ref no longer has is refused.
    for (const old of [c2.id, c1.id, null]) {
      for (const next of [c1.id, null]) {
        const staleForce = await service.updateRefs([
          { ref: 'refs/heads/main', old, new: next, force: true },
        ]);
        assert.equal(staleForce[0]!.ok, false, `forced ${old} -> ${next}`);
        assert.equal(staleForce[0]!.reason, 'stale');
        assert.match(staleForce[0]!.message ?? '', new RegExp(`is at ${other.id}`));
      }
    }
    assert.deepEqual((await service.infoRefs()).refs, { 'refs/heads/main': other.id });
    const deleted = await service.updateRefs([
      { ref: 'refs/heads/main', old: other.id, new: null },
    ]);
    assert.equal(deleted[0]!.ok, true);
    assert.deepEqual((await service.infoRefs()).refs, {});
    // A deleted ref (a tombstone) can be created again, by compare-and-swap too.
    const again = await service.updateRefs([{ ref: 'refs/heads/main', old: null, new: c1.id }]);
    assert.equal(again[0]!.ok, true);
  });

  test('names, tags and protected branches', async () => {
    const { service, backend, commit, store } = await fixture('names');
    const c1 = commit('one', []);
    await store(c1);
    for (const ref of [
      'refs/remotes/origin/main',
      'refs/heads/../x',
      'refs/heads/a.lock',
      'HEAD',
    ]) {
      const result = await service.updateRefs([{ ref, old: null, new: c1.id }]);
      assert.equal(result[0]!.reason, 'invalid', ref);
    }
    const tree = (await service.want({ wants: [c1.id] })).length;
    assert.ok(tree > 0);
    assert.equal(
      (await service.updateRefs([{ ref: 'refs/tags/v1', old: null, new: c1.id }]))[0]!.ok,
      true,
    );
    const c2 = commit('two', [c1.id]);
    await store(c2);
    const moved = await service.updateRefs([{ ref: 'refs/tags/v1', old: c1.id, new: c2.id }]);
    assert.equal(moved[0]!.reason, 'already-exists');

    await backend.put('config', Buffer.from('[branch.main]\nprotect = true\n'));
    assert.equal(
      (await service.updateRefs([{ ref: 'refs/heads/main', old: null, new: c1.id }]))[0]!.ok,
      true,
    );
    const side = commit('side', []);
    await store(side);
    const forced = await service.updateRefs([
      { ref: 'refs/heads/main', old: c1.id, new: side.id, force: true },
    ]);
    assert.equal(forced[0]!.reason, 'protected');
    const gone = await service.updateRefs([{ ref: 'refs/heads/main', old: c1.id, new: null }]);
    assert.equal(gone[0]!.reason, 'protected');
    assert.equal(
      (await service.updateRefs([{ ref: 'refs/heads/main', old: c1.id, new: c2.id }]))[0]!.ok,
      true,
    );
  });

  test('two services on one store: of 20 racing updates from one base, exactly one lands', async () => {
    const { backend, service, commit, store } = await fixture('race');
    const base = commit('base', []);
    await store(base);
    await service.updateRefs([{ ref: 'refs/heads/main', old: null, new: base.id }]);
    const second = new RepoService(new BackendRepo(backend));
    const children = Array.from({ length: 20 }, (_, i) => commit(`child ${i}`, [base.id]));
    for (const child of children) await store(child);
    const results = await Promise.all(
      children.map((child, i) =>
        (i % 2 ? service : second).updateRefs([
          { ref: 'refs/heads/main', old: base.id, new: child.id },
        ]),
      ),
    );
    const winners = results.filter((r) => r[0]!.ok);
    assert.equal(winners.length, 1);
    assert.equal((await service.infoRefs()).refs['refs/heads/main'], winners[0]![0]!.new);
  });
  test('refs are listed by value: a deleted ref is skipped, a garbled one refused', async () => {
    const { backend, service, commit, store } = await fixture('listing');
    const c1 = commit('one', []);
    await store(c1);
    await service.updateRefs([{ ref: 'refs/heads/main', old: null, new: c1.id }]);
    await service.updateRefs([{ ref: 'refs/tags/v1', old: null, new: c1.id }]);
    await service.updateRefs([{ ref: 'refs/tags/v1', old: c1.id, new: null }]);
    assert.deepEqual((await service.infoRefs()).refs, { 'refs/heads/main': c1.id });
    await backend.put('refs/heads/bad', Buffer.from('not an object id\n'));
    await assert.rejects(service.infoRefs(), { code: 'BAD_REF', message: /refs\/heads\/bad/ });
  });
});

describe('negotiation', () => {
  test('haves and depth limit what a want sends', async () => {
    const { service, commit, store } = await fixture('want');
    const c1 = commit('one', []);
    const c2 = commit('two', [c1.id]);
    const c3 = commit('three', [c2.id]);
    for (const c of [c1, c2, c3]) await store(c);
    const ids = async (request: Parameters<RepoService['want']>[0]) =>
      new Set(decodeTransferPack(await service.want(request)).map((e) => e.id));
    const all = await ids({ wants: [c3.id] });
    for (const c of [c1, c2, c3]) for (const e of c.metadata) assert.ok(all.has(e.id));
    const incremental = await ids({ wants: [c3.id], haves: [c2.id] });
    assert.deepEqual(
      [...incremental].sort(),
      c3.metadata.map((e) => e.id).sort(),
      'only the new commit and what it changed',
    );
    const shallow = await ids({ wants: [c3.id], depth: 1 });
    assert.ok(shallow.has(c3.id) && !shallow.has(c2.id) && !shallow.has(c1.id));
    // A shallow receiver holding c3 without parents gets the history behind it.
    const deepen = await ids({ wants: [c3.id], haves: [c3.id], shallow: [c3.id] });
    assert.ok(deepen.has(c2.id) && deepen.has(c1.id));
    await assert.rejects(service.want({ wants: ['0'.repeat(64)] }), /has no object/);
  });
});
