import assert from 'node:assert/strict';
import { test } from 'node:test';
import { knownEqualSpan, sameBytes, type RandomAccess } from './random-access.ts';

/** A file stored as named chunks (as StoredFileReader reads one), counting the bytes it reads. */
function chunked(chunks: readonly [string, Buffer][]): RandomAccess & { bytesRead: number } {
  const data = Buffer.concat(chunks.map(([, bytes]) => bytes));
  const starts: number[] = [];
  let at = 0;
  for (const [, bytes] of chunks) {
    starts.push(at);
    at += bytes.length;
  }
  const index = (offset: number) => starts.findLastIndex((start) => start <= offset);
  const access = {
    size: data.length,
    bytesRead: 0,
    read: (offset: number, length: number) => {
      const out = data.subarray(offset, Math.min(data.length, offset + length));
      access.bytesRead += out.length;
      return Promise.resolve(out);
    },
    fetchSpan: (offset: number) => {
      const i = index(offset);
      return starts[i]! + chunks[i]![1].length - offset;
    },
    chunkId: (offset: number) => (offset < data.length ? chunks[index(offset)]![0] : undefined),
  };
  return access;
}

test('bytes in the same stored chunk at the same place are equal unread; the rest is read', async () => {
  const shared = Buffer.from(Array.from({ length: 1000 }, (_, i) => i % 251));
  const a = chunked([
    ['x', Buffer.alloc(10, 1)],
    ['s', shared],
    ['y', Buffer.alloc(10, 2)],
  ]);
  const b = chunked([
    ['z', Buffer.alloc(10, 1)],
    ['s', shared],
    ['w', Buffer.alloc(10, 3)],
  ]);
  assert.equal(knownEqualSpan(a, 10, b, 10), 1000);
  assert.equal(knownEqualSpan(a, 500, b, 500), 510);
  assert.equal(knownEqualSpan(a, 0, b, 0), 0); // different IDs: not known
  assert.equal(await sameBytes(a, 0, b, 0, 1010), true);
  assert.equal(a.bytesRead, 10); // only the first chunks were read
  assert.equal(await sameBytes(a, 0, b, 0, 1020), false); // the last chunks differ
  // The same chunk at different places in two files is read, not assumed.
  const c = chunked([
    ['p', Buffer.alloc(11, 1)],
    ['s', shared],
  ]);
  assert.equal(knownEqualSpan(a, 10, c, 10), 0);
  assert.equal(await sameBytes(a, 10, c, 10, 1000), false);
  assert.equal(await sameBytes(a, 10, c, 11, 1000), true);
  // The same chunk at another distance from its end: not known equal, and
  // (the bytes being shifted) not equal.
  assert.equal(knownEqualSpan(a, 10, c, 12), 0);
  assert.equal(await sameBytes(a, 10, c, 12, 999), false);
});
