/**
 * The SHA-256 of an LFS object hashed as its numbered packs arrive: used
 * only when the chunks hashed are exactly the manifest's, in order; a pack
 * arriving early waits its turn; anything unproven gives no hash.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { packOfFile, UploadHashes } from './upload-hashes.ts';

const OID = 'c'.repeat(64);
const chunk = (n: number) => ({
  id: n.toString(16).padStart(64, '0'),
  data: Buffer.from(`chunk ${n}`),
});
const chunks = [0, 1, 2, 3].map(chunk);
/** Every chunk's ID, in order: the manifest of the whole file. */
const ALL_IDS = chunks.map((c) => c.id);
const wholeHash = (parts: readonly { data: Buffer }[]) =>
  createHash('sha256')
    .update(Buffer.concat(parts.map((p) => p.data)))
    .digest('hex');

async function feedPack(
  hashes: UploadHashes,
  seq: number,
  parts: readonly { id: string; data: Buffer }[],
): Promise<boolean> {
  const feed = await hashes.feed({ oid: OID, seq });
  if (!feed) return false;
  for (const part of parts) feed.update(part.id, part.data);
  await feed.done();
  return true;
}

describe('upload hashes', () => {
  it('hashes packs in order and gives the hash only for exactly the manifest chunks', async () => {
    const hashes = new UploadHashes();
    assert.ok(await feedPack(hashes, 0, chunks.slice(0, 2)));
    assert.ok(await feedPack(hashes, 1, chunks.slice(2)));
    assert.equal(await hashes.take(OID, ALL_IDS), wholeHash(chunks));
    // Taken: the session is gone.
    assert.equal(await hashes.take(OID, ALL_IDS), undefined);

    assert.ok(await feedPack(hashes, 0, chunks));
    // A manifest with another chunk list (a chunk the upload skipped) gets none.
    assert.equal(
      await hashes.take(
        OID,
        chunks.slice(1).map((c) => c.id),
      ),
      undefined,
    );
  });

  it('lets a pack that arrives early wait for the one ahead of it', async () => {
    const hashes = new UploadHashes();
    const second = feedPack(hashes, 1, chunks.slice(2));
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.ok(await feedPack(hashes, 0, chunks.slice(0, 2)));
    assert.ok(await second);
    assert.equal(await hashes.take(OID, ALL_IDS), wholeHash(chunks));
  });

  it('gives no hash after a failed pack, and skips a retried pack already hashed', async () => {
    const hashes = new UploadHashes();
    const feed = await hashes.feed({ oid: OID, seq: 0 });
    feed!.update(chunks[0]!.id, chunks[0]!.data);
    feed!.fail();
    assert.equal(await hashes.feed({ oid: OID, seq: 1 }), undefined);
    assert.equal(await hashes.take(OID, [chunks[0]!.id]), undefined);

    // The file uploaded again: pack 0 starts afresh; a retried pack 1 is not hashed twice.
    assert.ok(await feedPack(hashes, 0, chunks.slice(0, 2)));
    assert.ok(await feedPack(hashes, 1, chunks.slice(2)));
    assert.equal(await hashes.feed({ oid: OID, seq: 1 }), undefined);
    assert.equal(await hashes.take(OID, ALL_IDS), wholeHash(chunks));
  });

  it('hashes a pack body reused as soon as its feed is done', async () => {
    const hashes = new UploadHashes();
    const body = Buffer.from(new SharedArrayBuffer(64));
    const parts = chunks.map((c, i) => {
      c.data.copy(body, i * 16);
      return { id: c.id, data: body.subarray(i * 16, i * 16 + c.data.length) };
    });
    assert.ok(await feedPack(hashes, 0, parts.slice(0, 3)));
    // Done: the body may be reused before the next pack.
    body.fill(0, 0, 48);
    assert.ok(await feedPack(hashes, 1, chunks.slice(3)));
    assert.equal(await hashes.take(OID, ALL_IDS), wholeHash(chunks));
  });

  it('a hashing thread that dies gives no hash for the uploads under way; the next upload hashes on a new thread', async () => {
    const hashes = new UploadHashes();
    // The thread ends as the first buffer of records is handed to it.
    const { Worker } = await import('node:worker_threads');
    const post = Worker.prototype.postMessage;
    let killed = 0;
    Worker.prototype.postMessage = function (
      this: InstanceType<typeof Worker>,
      value: unknown,
      transfer?: Parameters<typeof post>[1],
    ): void {
      if (killed === 0 && typeof value === 'object' && value !== null && 'bytes' in value) {
        killed++;
        void this.terminate();
      }
      post.call(this, value, transfer);
    };
    try {
      assert.ok(await feedPack(hashes, 0, chunks));
      assert.equal(await hashes.take(OID, ALL_IDS), undefined, 'no hash from a dead thread');
    } finally {
      Worker.prototype.postMessage = post;
    }
    assert.equal(killed, 1);
    assert.ok(await feedPack(hashes, 0, chunks));
    assert.equal(await hashes.take(OID, ALL_IDS), wholeHash(chunks));
  });

  it('parses only well-formed pack tags', () => {
    assert.deepEqual(packOfFile(`${OID}/3`), { oid: OID, seq: 3 });
    for (const bad of [
      undefined,
      '',
      OID,
      `${OID}/-1`,
      `${OID}/x`,
      `${'g'.repeat(64)}/1`,
      `${OID}/1/2`,
    ]) {
      assert.equal(packOfFile(bad), undefined, String(bad));
    }
  });
});
