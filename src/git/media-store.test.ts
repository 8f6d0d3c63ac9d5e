import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { parsePointer } from '../odb/lfs-pointer.ts';
import { GitMediaStore } from './media-store.ts';
import { pseudoRandomBytes } from '../../test/bytes.ts';

const bytes = (length: number, seed: number): Buffer => pseudoRandomBytes(length, seed);

/** `data` as Git delivers it: in pieces of `step` bytes. */
async function* piecesOf(data: Buffer, step: number): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < data.length; at += step) yield data.subarray(at, at + step);
}

describe('the clean filter stores what Git sends, whatever the working file holds', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'mediagit-clean-'));
  after(() => fs.rm(dir, { recursive: true, force: true }));
  const store = await GitMediaStore.open(path.join(dir, '.git'));
  after(() => store.close());
  const work = bytes(6 * 1024 * 1024 + 123, 1);
  const workFile = path.join(dir, 'big.bin');
  await fs.writeFile(workFile, work);

  const changedAt = (at: number) => {
    const copy = Buffer.from(work);
    copy[at] = copy[at]! ^ 0xff;
    return copy;
  };
  const cases: [string, Buffer][] = [
    ['equal to the working file', work],
    ['differing in its last byte', changedAt(work.length - 1)],
    ['differing in the middle', changedAt(3_000_001)],
    ['a prefix of the working file', work.subarray(0, 5_000_000)],
    ['longer than the working file', Buffer.concat([work, bytes(5000, 2)])],
    ['small content', bytes(900, 3)],
  ];
  for (const [label, content] of cases) {
    test(label, async () => {
      for (const step of [65516, 1_000_000]) {
        const pointer = parsePointer(
          await store.clean(piecesOf(content, step), 'big.bin', workFile),
        );
        assert.ok(pointer.ok);
        assert.equal(pointer.pointer.oid, createHash('sha256').update(content).digest('hex'));
        assert.equal(pointer.pointer.size, content.length);
        const found = await store.ensure(pointer.pointer);
        const parts: Buffer[] = [];
        await store.writeContent(found, async (data) => {
          parts.push(Buffer.from(data));
        });
        assert.deepEqual(Buffer.concat(parts), content);
      }
      assert.deepEqual(await fs.readFile(workFile), work, 'the working file is untouched');
      assert.deepEqual(await fs.readdir(store.objects.tmpDir), [], 'no temp file left');
    });
  }

  test('no working file, or a symlink in its place: the content still stored exactly', async () => {
    const link = path.join(dir, 'link.bin');
    await fs.symlink(workFile, link);
    // Distinct content each time, so that every case really stores it.
    for (const [seed, candidate] of [
      [4, path.join(dir, 'missing.bin')],
      [5, link],
      [6, undefined],
    ] as const) {
      const content = bytes(5 * 1024 * 1024, seed);
      const pointer = parsePointer(await store.clean(piecesOf(content, 65516), 'x.bin', candidate));
      assert.ok(pointer.ok);
      assert.equal(pointer.pointer.oid, createHash('sha256').update(content).digest('hex'));
      const parts: Buffer[] = [];
      await store.writeContent(await store.ensure(pointer.pointer), async (data) => {
        parts.push(Buffer.from(data));
      });
      assert.deepEqual(Buffer.concat(parts), content);
    }
  });
});
