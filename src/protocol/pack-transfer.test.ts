/**
 * A push's packs planned before they are read (pack-transfer.ts): the plan
 * makes exactly the packs a writer makes, one `packs/begin` covers up to 32
 * of them, `packs/commit` carries their record tables so a server reads
 * none of them back, and a record whose length differs from the plan only
 * costs its pack a begin of its own.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Codec } from '../compression/codec.ts';
import {
  checkDeclaredTable,
  cloudPackKey,
  CloudPackWriter,
  planCloudPacks,
} from '../odb/cloud-pack.ts';
import { objectIdOf, type ObjectId } from '../odb/object-id.ts';
import { encodeHeader } from '../odb/object-store.ts';
import type { StorageCapabilities } from '../storage/backend.ts';
import { MemoryBackend } from '../storage/memory.ts';
import { BackendRepo, packCommitName, type PackCommit } from './backend-repo.ts';
import { PackStream, sendInPacks } from './pack-transfer.ts';
import { RepoService, type PackUploadPlan } from './service.ts';
import type { Transport } from './transport.ts';
import type { PackOfFile } from './upload-hashes.ts';

/** A cloud store in memory that counts reads of packs and listings. */
class CountingStore extends MemoryBackend {
  override readonly capabilities: StorageCapabilities = {
    ...new MemoryBackend().capabilities,
    remote: true,
  };
  packReads = 0;
  lists = 0;
  heads = 0;
  override get(key: string) {
    if (key.startsWith('objects/pack/')) this.packReads++;
    return super.get(key);
  }
  override getRange(key: string, start: number, end: number) {
    if (key.startsWith('objects/pack/')) this.packReads++;
    return super.getRange(key, start, end);
  }
  override head(key: string) {
    this.heads++;
    return super.head(key);
  }
  override list(prefix: string) {
    this.lists++;
    return super.list(prefix);
  }
}

/** Chunk records of pseudo-random lengths (1–30 KiB), as a push reads them. */
function records(n: number, seed: number): Map<ObjectId, Buffer> {
  const out = new Map<ObjectId, Buffer>();
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    const data = Buffer.alloc(1024 + (x % (29 * 1024)), `${seed}:${i}`);
    out.set(
      objectIdOf('chunk', data),
      Buffer.concat([encodeHeader('chunk', Codec.store, data.length), data]),
    );
  }
  return out;
}

/**
 * A client's view of a server on `store`: packs go "straight to the store"
 * (written under their key, as a signed PUT would), begins and commits go
 * to a service, and every call is recorded.
 */
function directTransport(store: MemoryBackend, service: RepoService, signedForMs = 3_600_000) {
  const calls = { begins: [] as number[], commits: [] as PackCommit[][], puts: 0 };
  let failCommit = false;
  const transport = {
    beginPacks: async (packs: readonly { name: string; size: number }[]) => {
      calls.begins.push(packs.length);
      const expires = new Date(Date.now() + signedForMs).toISOString();
      return (await service.beginPacks(packs, false)).map((plan): PackUploadPlan =>
        plan.present
          ? plan
          : { ...plan, upload: { method: 'PUT', url: 'http://store', headers: {}, expires } },
      );
    },
    putPack: async (name: string, bytes: Buffer) => {
      calls.puts++;
      await store.put(cloudPackKey(name), Buffer.from(bytes), { ifNoneMatch: '*' });
    },
    commitPacks: async (packs: readonly PackCommit[]) => {
      calls.commits.push([...packs]);
      if (failCommit) throw new Error('connection lost before the commit');
      await service.commitPacks(packs);
    },
  } as unknown as Transport;
  return { transport, calls, failNextCommit: (fail: boolean) => (failCommit = fail) };
}

const PACK = 96 * 1024;

describe('planned cloud packs', () => {
  test('the plan names and sizes exactly the packs a writer fills', () => {
    const recs = [...records(60, 7)];
    const plan = planCloudPacks(
      recs.map(([id, r]) => ({ id, length: r.length })),
      PACK,
    );
    const made: { name: string; size: number; ids: ObjectId[] }[] = [];
    let writer = new CloudPackWriter(Buffer.alloc(PACK));
    const cut = () => {
      const pack = writer.finish();
      made.push({ name: pack.name, size: pack.bytes.length, ids: pack.entries.map((e) => e.id) });
      // The table a client declares checks out against name and size.
      assert.equal(
        checkDeclaredTable(pack.name, pack.bytes.length, pack.table, 'p').length,
        pack.entries.length,
      );
      writer = new CloudPackWriter(Buffer.alloc(PACK));
    };
    for (const [id, r] of recs) {
      if (!writer.fits(r.length, PACK)) cut();
      writer.add(id, r);
    }
    cut();
    assert.ok(made.length > 10, `${made.length} packs`);
    assert.deepEqual(
      plan.map((p) => ({ name: p.name, size: p.size, ids: p.entries.map((e) => e.id) })),
      made,
    );
    // A declared table that does not hash to the name, or does not tile the size, is refused.
    const first = plan[0]!;
    const bad = Buffer.from(first.table);
    bad[40]! ^= 1;
    assert.throws(() => checkDeclaredTable(first.name, first.size, bad, 'p'), /checksum/);
    assert.throws(
      () => checkDeclaredTable(first.name, first.size + 1, first.table, 'p'),
      /corrupt/,
    );
  });

  test('one begin for many packs; the commit reads no pack back; objects read verified', async () => {
    const store = new CountingStore('planned');
    await store.put('HEAD', Buffer.from('ref: refs/heads/main\n'));
    const service = new RepoService(new BackendRepo(store, { verifyUploads: 'table' }));
    const { transport, calls } = directTransport(store, service);
    const recs = records(60, 11);
    store.packReads = store.lists = 0;
    const stats = await sendInPacks(transport, [...recs.keys()], async (id) => recs.get(id)!, {
      packBytes: PACK,
      recordSize: async (id) => recs.get(id)!.length,
    });
    assert.ok(stats.packs > 10 && stats.packs <= 32, `${stats.packs} packs`);
    assert.deepEqual(calls.begins, [stats.packs], 'one begin for every pack');
    assert.equal(stats.begins, 1);
    assert.equal(calls.commits.length, 1);
    assert.ok(
      calls.commits[0]!.every((p) => typeof p !== 'string'),
      'every table declared',
    );
    assert.equal(store.packReads, 0, 'no pack read back');
    assert.ok(store.lists <= 2, `${store.lists} listings (begin and commit)`);
    // Another server on the same store sees and verifies every object.
    const reader = new BackendRepo(store);
    for (const [id, r] of recs) assert.ok((await reader.read(id)).data.equals(r.subarray(16)));
  });

  test('a record longer than planned: its pack is begun alone, all else as planned', async () => {
    const store = new CountingStore('replanned');
    await store.put('HEAD', Buffer.from('ref: refs/heads/main\n'));
    const service = new RepoService(new BackendRepo(store, { verifyUploads: 'table' }));
    const { transport, calls } = directTransport(store, service);
    const recs = records(40, 13);
    const liar = [...recs.keys()][5]!;
    const stats = await sendInPacks(transport, [...recs.keys()], async (id) => recs.get(id)!, {
      packBytes: PACK,
      recordSize: async (id) => recs.get(id)!.length - (id === liar ? 100 : 0),
    });
    assert.ok(stats.packs > 5);
    assert.ok(calls.begins.length >= 2, `begins: ${JSON.stringify(calls.begins)}`);
    assert.ok(
      calls.begins.slice(1).every((n) => n === 1),
      'the unplanned pack alone',
    );
    const reader = new BackendRepo(store);
    for (const [id, r] of recs) assert.ok((await reader.read(id)).data.equals(r.subarray(16)));
  });

  test('signed uploads about to expire (a slow link) are asked for again, pack by pack', async () => {
    const store = new CountingStore('expiring');
    await store.put('HEAD', Buffer.from('ref: refs/heads/main\n'));
    const service = new RepoService(new BackendRepo(store, { verifyUploads: 'table' }));
    const { transport, calls } = directTransport(store, service, 5 * 60 * 1000);
    const recs = records(30, 19);
    const stats = await sendInPacks(transport, [...recs.keys()], async (id) => recs.get(id)!, {
      packBytes: PACK,
      recordSize: async (id) => recs.get(id)!.length,
    });
    assert.deepEqual(calls.begins, [stats.packs, ...Array<number>(stats.packs).fill(1)]);
    const reader = new BackendRepo(store);
    for (const [id, r] of recs) assert.ok((await reader.read(id)).data.equals(r.subarray(16)));
  });

  test('a push cut before its commit, rerun: every pack present, nothing sent again', async () => {
    const store = new CountingStore('resumed');
    await store.put('HEAD', Buffer.from('ref: refs/heads/main\n'));
    const service = new RepoService(new BackendRepo(store, { verifyUploads: 'table' }));
    const { transport, calls, failNextCommit } = directTransport(store, service);
    const recs = records(30, 17);
    const options = { packBytes: PACK, recordSize: async (id: ObjectId) => recs.get(id)!.length };
    failNextCommit(true);
    await assert.rejects(
      sendInPacks(transport, [...recs.keys()], async (id) => recs.get(id)!, options),
      /connection lost/,
    );
    assert.equal(await new BackendRepo(store).has([...recs.keys()][0]!), false, 'not visible');
    failNextCommit(false);
    const puts = calls.puts;
    const again = await sendInPacks(
      transport,
      [...recs.keys()],
      async (id) => recs.get(id)!,
      options,
    );
    assert.equal(calls.puts, puts, 'no pack uploaded twice');
    assert.equal(again.packsPresent, again.packs);
    assert.equal(again.bytes, 0);
    assert.deepEqual(calls.commits[1]!.map(packCommitName), calls.commits[0]!.map(packCommitName));
    for (const id of recs.keys()) assert.equal(await new BackendRepo(store).has(id), true);
  });
});

describe('a file streamed in packs (the git-lfs agent)', () => {
  /** A transport onto `service` whose pack uploads fail from the `failFrom`-th on. */
  function serviceTransport(service: RepoService) {
    const puts: (PackOfFile | undefined)[] = [];
    let failFrom = Infinity;
    const transport = {
      beginPacks: (packs: readonly { name: string; size: number }[]) =>
        service.beginPacks(packs, false),
      putPack: async (name: string, bytes: Buffer, _upload: unknown, file?: PackOfFile) => {
        if (puts.length >= failFrom) throw new Error('connection lost');
        puts.push(file);
        await service.putPack(name, bytes, file);
      },
      commitPacks: (packs: readonly PackCommit[]) => service.commitPacks(packs),
    } as unknown as Transport;
    return { transport, puts, failAfter: (n: number) => (failFrom = n) };
  }

  const send = async (transport: Transport, recs: Map<ObjectId, Buffer>, oid: ObjectId) => {
    const packs = new PackStream(transport, { packBytes: PACK, inFlight: 1, file: oid });
    for (const [id, record] of recs) await packs.add(id, [record]);
    return packs.finish();
  };

  test('packs are numbered in file order; a rerun whose first pack is stored numbers none', async () => {
    const store = new MemoryBackend('agent');
    await store.put('HEAD', Buffer.from('ref: refs/heads/main\n'));
    const service = new RepoService(new BackendRepo(store, { verifyUploads: 'table' }));
    const recs = records(30, 23);
    const oid = objectIdOf('blob', Buffer.from('the LFS object'));

    const first = serviceTransport(service);
    first.failAfter(1);
    await assert.rejects(send(first.transport, recs, oid), /connection lost/);
    assert.deepEqual(first.puts, [{ oid, seq: 0 }], 'the first pack stored, then the link broke');

    // The rerun, to a server restarted since (a new service on the same
    // store): its first pack is stored already, so it is not sent. Numbered
    // 1, 2, ..., the rest would each wait 5 s there for a pack 0 that this
    // server never hashed (upload-hashes.ts); unnumbered, the file is read
    // back to hash it, as for any upload the server could not hash.
    const restarted = new RepoService(new BackendRepo(store, { verifyUploads: 'table' }));
    const again = serviceTransport(restarted);
    const stats = await send(again.transport, recs, oid);
    assert.equal(stats.packsPresent, 1);
    assert.ok(again.puts.length >= 2, `${again.puts.length} packs sent`);
    assert.deepEqual(
      again.puts,
      again.puts.map(() => undefined),
      'no pack numbered',
    );
    for (const id of recs.keys()) assert.equal(await new BackendRepo(store).has(id), true);

    // A fresh file: every pack numbered, in order.
    const fresh = serviceTransport(service);
    const other = records(30, 29);
    await send(fresh.transport, other, objectIdOf('blob', Buffer.from('another object')));
    assert.deepEqual(
      fresh.puts.map((file) => file?.seq),
      fresh.puts.map((_, i) => i),
    );
  });

  test("the next file's packs are filled in the buffers the last file's gave back", async () => {
    const store = new MemoryBackend('agent-buffers');
    await store.put('HEAD', Buffer.from('ref: refs/heads/main\n'));
    const service = new RepoService(new BackendRepo(store));
    const sent: Buffer[] = [];
    const { transport } = serviceTransport(service);
    const watched = {
      ...transport,
      putPack: (name: string, bytes: Buffer, upload: unknown, file?: PackOfFile) => {
        sent.push(bytes);
        return (transport.putPack as (...args: unknown[]) => Promise<void>)(
          name,
          bytes,
          upload,
          file,
        );
      },
    } as unknown as Transport;
    const buffers: Buffer[] = [];
    for (const [n, seed] of [
      [0, 31],
      [1, 37],
    ] as const) {
      const packs = new PackStream(watched, { packBytes: PACK, inFlight: 1, buffers });
      for (const [id, record] of records(30, seed)) await packs.add(id, [record]);
      const stats = await packs.finish();
      assert.ok(stats.packs >= 3, `file ${n}: ${stats.packs} packs`);
      // Every buffer is free again once the file is committed.
      assert.ok(buffers.length >= 1 && buffers.length <= 2, `${buffers.length} buffers kept`);
    }
    const backings = new Set(sent.map((bytes) => bytes.buffer));
    assert.ok(backings.size <= 2, `${sent.length} packs made in ${backings.size} buffers`);
  });
});
