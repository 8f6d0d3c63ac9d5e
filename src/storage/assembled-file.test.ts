import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { pseudoRandomBytes } from '../../test/bytes.ts';
import { slowDirectWrites } from '../../test/slow-direct-writes.ts';
import { addRange, AssembledFile, BLOCK, BlockBudget } from './assembled-file.ts';
import { directWritePace } from './direct-io.ts';

const MiB = 1024 * 1024;
let root: string;
before(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'mediagit-assembled-'));
});
after(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

/** A deterministic shuffle (xorshift). */
function shuffle<T>(items: T[], seed: number): T[] {
  let x = seed;
  for (let i = items.length - 1; i > 0; i--) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    const j = (x >>> 0) % (i + 1);
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

/** Cuts [0, length) into pieces of 1 byte to ~3 MiB, as chunks would be. */
function pieces(length: number, seed: number): { offset: number; length: number }[] {
  const out: { offset: number; length: number }[] = [];
  let x = seed;
  for (let at = 0; at < length;) {
    x = (x * 1_103_515_245 + 12_345) >>> 0;
    const size = Math.min(length - at, x % 7 === 0 ? 1 + (x % 4096) : 1 + (x % (3 * MiB)));
    out.push({ offset: at, length: size });
    at += size;
  }
  return out;
}

async function assemble(
  name: string,
  data: Buffer,
  budget: BlockBudget,
  options: { seed: number; parallel: number; duplicates?: boolean },
): Promise<AssembledFile> {
  const file = await AssembledFile.create(path.join(root, name), data.length, 0o644, budget);
  const order = shuffle(pieces(data.length, options.seed), options.seed);
  // Some pieces arrive twice (a chunk that appears twice in a file is written at each offset once, but be safe).
  if (options.duplicates) order.push(...order.slice(0, 5));
  let next = 0;
  await Promise.all(
    Array.from({ length: options.parallel }, async () => {
      for (let i = next++; i < order.length; i = next++) {
        const { offset, length } = order[i]!;
        // A copy the writer may not keep: the caller reuses its buffers.
        const copy = Buffer.from(data.subarray(offset, offset + length));
        await file.write(copy, offset);
        copy.fill(0xee);
      }
    }),
  );
  return file;
}

test('addRange merges, counts only new bytes, and keeps the ranges sorted and disjoint', () => {
  const ranges: [number, number][] = [];
  assert.equal(addRange(ranges, 10, 20), 10);
  assert.equal(addRange(ranges, 30, 40), 10);
  assert.equal(addRange(ranges, 15, 35), 10);
  assert.deepEqual(ranges, [[10, 40]]);
  assert.equal(addRange(ranges, 10, 40), 0);
  assert.equal(addRange(ranges, 0, 5), 5);
  assert.equal(addRange(ranges, 5, 10), 5);
  assert.deepEqual(ranges, [[0, 40]]);
  assert.equal(addRange(ranges, 50, 60), 10);
  assert.equal(addRange(ranges, 45, 48), 3);
  assert.deepEqual(ranges, [
    [0, 40],
    [45, 48],
    [50, 60],
  ]);
  assert.equal(addRange(ranges, 39, 51), 5 + 2);
  assert.deepEqual(ranges, [[0, 60]]);
});

test('pieces in any order, several at once, make the exact file; a tight budget spills blocks', async (t) => {
  const data = pseudoRandomBytes(3 * BLOCK + 12_345, 3, 'assembled');
  for (const [label, blocks, parallel] of [
    ['roomy', 16, 4],
    ['one block of staging', 1, 4],
    ['two blocks, one writer', 2, 1],
  ] as const) {
    const file = await assemble(label, data, new BlockBudget(blocks * BLOCK), {
      seed: 7 + blocks,
      parallel,
      duplicates: true,
    });
    if (!file.direct) t.diagnostic(`${label}: this filesystem refuses O_DIRECT; written buffered`);
    await file.close();
    const written = await fs.readFile(file.path);
    assert.equal(written.length, data.length, label);
    assert.ok(written.equals(data), `${label}: bytes differ`);
  }
});

test('files sharing a budget, a small file, a device found slow: the same bytes', async () => {
  const budget = new BlockBudget(BLOCK);
  const a = pseudoRandomBytes(2 * BLOCK + 1, 4, 'assembled');
  const b = pseudoRandomBytes(BLOCK + 4096, 5, 'assembled');
  const small = pseudoRandomBytes(1000, 6, 'assembled');
  const files = await Promise.all([
    assemble('shared-a', a, budget, { seed: 11, parallel: 2 }),
    assemble('shared-b', b, budget, { seed: 12, parallel: 2 }),
    assemble('small', small, budget, { seed: 13, parallel: 2 }),
  ]);
  assert.equal(files[2]!.direct, false);
  for (const file of files) await file.close();
  assert.ok((await fs.readFile(files[0]!.path)).equals(a));
  assert.ok((await fs.readFile(files[1]!.path)).equals(b));
  assert.ok((await fs.readFile(files[2]!.path)).equals(small));
  // Direct writes found slow mid-file: later blocks go through the page cache.
  const slow = pseudoRandomBytes(3 * BLOCK, 8, 'assembled');
  const file = await AssembledFile.create(path.join(root, 'slow'), slow.length, 0o644, budget);
  try {
    await file.write(slow.subarray(0, BLOCK), 0);
    await slowDirectWrites();
    await file.write(slow.subarray(BLOCK), BLOCK);
  } finally {
    directWritePace.reset();
  }
  await file.close();
  assert.ok((await fs.readFile(file.path)).equals(slow));
});

test('a write outside the file is refused; abort removes the file', async () => {
  const file = await AssembledFile.create(
    path.join(root, 'aborted'),
    BLOCK + 10,
    0o644,
    new BlockBudget(),
  );
  await assert.rejects(file.write(Buffer.alloc(11), BLOCK), RangeError);
  await assert.rejects(file.write(Buffer.alloc(1), -1), RangeError);
  await file.write(Buffer.alloc(MiB, 1), 0);
  await file.abort();
  await assert.rejects(fs.stat(file.path), { code: 'ENOENT' });
  await assert.rejects(
    AssembledFile.create(path.join(root, 'exists'), 10, 0o644, new BlockBudget()).then(() =>
      AssembledFile.create(path.join(root, 'exists'), 10, 0o644, new BlockBudget()),
    ),
    { code: 'EEXIST' },
  );
});
