import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, describe, test } from 'node:test';
import type { StorageBackend } from '../storage/backend.ts';
import { FsBackend } from '../storage/fs-backend.ts';
import { MemoryBackend } from '../storage/memory.ts';
import { BackendRepo } from './backend-repo.ts';
import { findLfsObject, receiveLfsObject, streamLfsObject } from './lfs-objects.ts';
import { pseudoRandomBytes } from '../../test/bytes.ts';

/** Deterministic incompressible bytes. */
const bytes = (length: number, seed: number): Buffer => pseudoRandomBytes(length, seed);

async function keys(backend: StorageBackend): Promise<string[]> {
  const all: string[] = [];
  for await (const key of backend.list('')) all.push(key);
  return all;
}

const body = (data: Buffer): Readable =>
  Readable.from([data.subarray(0, 1000), data.subarray(1000)]);

describe('Git LFS objects in a server repository', async () => {
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'mediagit-lfs-objects-'));
  after(() => fs.rm(tmp, { recursive: true, force: true }));

  for (const [label, make] of [
    ['memory backend (staging store)', () => new MemoryBackend()],
    [
      'file backend (chunks written in place)',
      () => new FsBackend(path.join(tmp, `repo-${Math.random()}`)),
    ],
  ] as const) {
    test(`${label}: stored as chunks, streamed back exactly, second version shares chunks`, async () => {
      const backend = make();
      const repo = new BackendRepo(backend);
      const v1 = bytes(9 * 1024 * 1024, 1);
      const oid1 = createHash('sha256').update(v1).digest('hex');
      const uploads = path.join(tmp, 'uploads');
      assert.deepEqual(await receiveLfsObject(repo, oid1, v1.length, body(v1), uploads), {
        stored: true,
      });
      const found = await findLfsObject(repo, oid1);
      assert.equal(found?.kind, 'manifest');
      assert.equal(found?.size, v1.length);
      const parts: Buffer[] = [];
      await streamLfsObject(repo, found!, async (data) => {
        parts.push(Buffer.from(data));
      });
      assert.deepEqual(Buffer.concat(parts), v1);
      assert.deepEqual(await receiveLfsObject(repo, oid1, v1.length, body(v1), uploads), {
        stored: false,
      });
      const v1Keys = await keys(backend);
      // v2: 4 KiB inserted; only a few new chunks.
      const v2 = Buffer.concat([v1.subarray(0, 5_000_000), bytes(4096, 2), v1.subarray(5_000_000)]);
      const oid2 = createHash('sha256').update(v2).digest('hex');
      await receiveLfsObject(repo, oid2, v2.length, body(v2), uploads);
      const added = (await keys(backend)).filter((k) => !v1Keys.includes(k));
      assert.ok(added.length <= 5, `v2 added ${added.length} keys: ${added.join(', ')}`);
      // Small files are one blob named by their OID.
      const small = bytes(1000, 3);
      const smallOid = createHash('sha256').update(small).digest('hex');
      await receiveLfsObject(repo, smallOid, small.length, body(small), uploads);
      assert.deepEqual(await findLfsObject(repo, smallOid), {
        kind: 'blob',
        id: smallOid,
        size: 1000,
      });
      assert.deepEqual(await fs.readdir(uploads), [], 'no temp file left');
    });
  }

  test('short, long and wrong uploads are refused and leave nothing behind', async () => {
    const backend = new MemoryBackend();
    const repo = new BackendRepo(backend);
    const data = bytes(6 * 1024 * 1024, 4);
    const oid = createHash('sha256').update(data).digest('hex');
    const uploads = path.join(tmp, 'refused');
    const cases: [Readable, number, RegExp][] = [
      [
        body(data.subarray(0, data.length - 1)),
        data.length,
        /ended after 6291455 of 6291456 bytes/,
      ],
      [body(Buffer.concat([data, Buffer.from('x')])), data.length, /longer than its 6291456 bytes/],
      [body(Buffer.from(data).fill(1, 100, 101)), data.length, /does not hash to/],
    ];
    for (const [stream, size, message] of cases) {
      await assert.rejects(receiveLfsObject(repo, oid, size, stream, uploads), message);
    }
    assert.deepEqual(await keys(backend), []);
    assert.equal(await findLfsObject(repo, oid), undefined);
    assert.deepEqual(await fs.readdir(uploads), []);
  });
});
