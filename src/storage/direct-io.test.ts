import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { pseudoRandomBytes } from '../../test/bytes.ts';
import { slowDirectWrites } from '../../test/slow-direct-writes.ts';
import {
  COOLDOWN_MS,
  createFile,
  DIRECT_MIN_BYTES,
  directIoEnabled,
  directWritePace,
  directWritesWanted,
  openDirect,
  PACE_WINDOW,
  pageAlignedBuffer,
  SLOW_DIRECT_MBPS,
  SLOW_WINDOWS,
  WARMUP_WINDOWS,
  WritePace,
} from './direct-io.ts';

let root: string;
before(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'mediagit-direct-'));
});
after(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

async function roundTrip(name: string, parts: Uint8Array[]): Promise<void> {
  const file = path.join(root, name);
  const handle = await createFile(file, parts, 0o444);
  await handle.sync();
  await handle.close();
  const expected = Buffer.concat(parts);
  const written = await fs.readFile(file);
  assert.equal(written.length, expected.length, name);
  assert.ok(written.equals(expected), `${name}: bytes differ`);
  assert.equal((await fs.stat(file)).mode & 0o777, 0o444);
}

test('createFile writes exact bytes below and above the direct-I/O size, any length and parts', async (t) => {
  const probe = await openDirect(path.join(root, 'probe'), 0o644);
  if (probe) await probe.close();
  else t.diagnostic('this filesystem refuses O_DIRECT: every case below is buffered');
  // Parts from shared memory too, as the chunker's ring hands them over.
  const shared = Buffer.from(new SharedArrayBuffer(3 * 1024 * 1024));
  pseudoRandomBytes(shared.length, 5, 'direct').copy(shared);
  const paged = pageAlignedBuffer(3 * 1024 * 1024);
  pseudoRandomBytes(paged.length, 7, 'direct').copy(paged);
  const before = Buffer.from(paged);
  const cases: [string, Uint8Array[]][] = [
    ['empty', []],
    ['small', [pseudoRandomBytes(1000, 1, 'direct')]],
    ['just below', [pseudoRandomBytes(DIRECT_MIN_BYTES - 1, 2, 'direct')]],
    ['block multiple', [pseudoRandomBytes(DIRECT_MIN_BYTES, 3, 'direct')]],
    [
      'header and odd payload',
      [pseudoRandomBytes(16, 4, 'direct'), pseudoRandomBytes(2 * 1024 * 1024 + 4093, 6, 'direct')],
    ],
    ['shared memory', [shared.subarray(7, 7 + 2 * 1024 * 1024 + 1)]],
    // Page-aligned memory is written from where it is (no copy), its last
    // partial block through a block of its own.
    ['page-aligned, odd length', [paged.subarray(0, 2 * 1024 * 1024 + 4093)]],
    ['page-aligned, whole blocks', [paged.subarray(0, 2 * 1024 * 1024)]],
    ['page-aligned, a page in', [paged.subarray(4096, 4096 + DIRECT_MIN_BYTES + 1)]],
    ['resizable, not at a page', [paged.subarray(512, 512 + DIRECT_MIN_BYTES + 7)]],
  ];
  for (const [name, parts] of cases) await roundTrip(name, parts);
  assert.ok(paged.equals(before), 'the caller’s memory is left as it was');
  // Again with direct I/O switched off: the same bytes.
  process.env['MEDIAGIT_DIRECT_IO'] = '0';
  try {
    for (const [name, parts] of cases) await roundTrip(`${name} buffered`, parts);
  } finally {
    delete process.env['MEDIAGIT_DIRECT_IO'];
  }
});

test('createFile refuses an existing file and leaves it alone', async () => {
  const file = path.join(root, 'existing');
  await fs.writeFile(file, 'keep me');
  await assert.rejects(
    createFile(file, [pseudoRandomBytes(DIRECT_MIN_BYTES * 2, 9, 'direct')], 0o644),
    { code: 'EEXIST' },
  );
  assert.equal(await fs.readFile(file, 'utf8'), 'keep me');
});

test('the pace of direct writes counts busy time, not each write’s wait, and recovers after the cooldown', () => {
  let now = 0;
  const pace = new WritePace(() => now);
  const write = PACE_WINDOW / 8;
  // A process's first WARMUP_WINDOWS windows are measured, not judged: slow
  // ones (a new file's extents, a delete's discards) change nothing.
  assert.equal(WARMUP_WINDOWS, 2);
  for (let w = 0; w < WARMUP_WINDOWS; w++) {
    for (let i = 0; i < 8; i++) {
      pace.started();
      now += 40;
      pace.finished(write);
    }
    assert.ok(pace.lastMBps! < SLOW_DIRECT_MBPS);
    assert.equal(pace.slow, false, 'a warm-up window is not judged');
  }
  // Eight writes at once, the device finishing one every 5 ms: each waited up
  // to 40 ms (a per-write pace of ~100 MB/s), but the device ran at ~840 MB/s.
  for (let i = 0; i < 8; i++) pace.started();
  for (let i = 0; i < 8; i++) {
    now += 5;
    pace.finished(write);
  }
  assert.equal(pace.slow, false);
  assert.ok(Math.abs(pace.lastMBps! - PACE_WINDOW / 40 / 1000) < 1, `${pace.lastMBps}`);
  // Idle time between writes does not count against the device.
  for (let i = 0; i < 8; i++) {
    now += 1000;
    pace.started();
    now += 5;
    pace.finished(write);
  }
  assert.equal(pace.slow, false);
  /** One window of eight writes one after another, `ms` each. */
  const window = (ms: number): void => {
    for (let i = 0; i < 8; i++) {
      pace.started();
      now += ms;
      pace.finished(write);
      if (i < 7) assert.equal(pace.slow, false, 'judged only once a window is complete');
    }
  };
  // One slow window (~105 MB/s, as a new file's first extents may be), then a fast one: not slow.
  window(40);
  assert.ok(pace.lastMBps! < SLOW_DIRECT_MBPS);
  assert.equal(pace.slow, false, 'one slow window is not enough');
  window(5);
  assert.equal(pace.slow, false);
  // SLOW_WINDOWS slow windows in a row: slow, for COOLDOWN_MS.
  assert.equal(SLOW_WINDOWS, 2);
  window(40);
  assert.equal(pace.slow, false);
  window(40);
  assert.equal(pace.slow, true);
  now += COOLDOWN_MS - 1;
  assert.equal(pace.slow, true);
  now += 2;
  assert.equal(pace.slow, false);
  // A write that failed after a long wait adds its time but no bytes.
  pace.started();
  now += 1000;
  pace.finished(0);
  window(5);
  assert.equal(pace.slow, false);
  pace.started();
  now += 1000;
  pace.finished(0);
  window(5);
  assert.equal(pace.slow, true);
});

test('direct writes are wanted unless switched off or found slow, and MEDIAGIT_DIRECT_IO=1 keeps them', async () => {
  const saved = process.env['MEDIAGIT_DIRECT_IO'];
  try {
    delete process.env['MEDIAGIT_DIRECT_IO'];
    directWritePace.reset();
    assert.equal(directWritesWanted(), directIoEnabled());
    await slowDirectWrites();
    assert.equal(directWritesWanted(), false);
    // A large file is still written exactly, through the page cache.
    await roundTrip('after slow direct writes', [
      pseudoRandomBytes(DIRECT_MIN_BYTES * 3 + 1, 11, 'direct'),
    ]);
    process.env['MEDIAGIT_DIRECT_IO'] = '1';
    assert.equal(directWritesWanted(), directIoEnabled());
    process.env['MEDIAGIT_DIRECT_IO'] = '0';
    directWritePace.reset();
    assert.equal(directWritesWanted(), false);
  } finally {
    if (saved === undefined) delete process.env['MEDIAGIT_DIRECT_IO'];
    else process.env['MEDIAGIT_DIRECT_IO'] = saved;
    directWritePace.reset();
  }
});
