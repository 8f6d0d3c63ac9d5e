import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { pseudoRandomBytes } from '../../test/bytes.ts';
import { createFile, DIRECT_MIN_BYTES, openDirect } from './direct-io.ts';

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
  ];
  for (const [name, parts] of cases) await roundTrip(name, parts);
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
