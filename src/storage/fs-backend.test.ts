import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { storageConformance } from './conformance.ts';
import { FsBackend } from './fs-backend.ts';

const roots: string[] = [];
after(async () => {
  for (const root of roots) await fs.rm(root, { recursive: true, force: true });
});

async function fresh(): Promise<FsBackend> {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'mediagit-fs-backend-'));
  roots.push(root);
  return new FsBackend(root);
}

storageConformance('fs backend', fresh);

test('fs backend: compare-and-swap holds across processes sharing a root', async () => {
  const backend = await fresh();
  const { etag } = await backend.put('refs/heads/main', Buffer.from('start'));
  const script = `
    import { FsBackend } from ${JSON.stringify(new URL('./fs-backend.ts', import.meta.url).href)};
    const b = new FsBackend(process.argv[1]);
    try { await b.put('refs/heads/main', Buffer.from('writer ' + process.argv[3]), { ifMatch: process.argv[2] }); console.log('won'); }
    catch (e) { console.log(e.code); }
  `;
  const outputs = await Promise.all(
    Array.from(
      { length: 8 },
      (_, i) =>
        new Promise<string>((resolve, reject) => {
          const child = spawn(process.execPath, [
            '--input-type=module',
            '-e',
            script,
            backend.root,
            etag,
            String(i),
          ]);
          let out = '';
          child.stdout.on('data', (d: Buffer) => (out += d.toString()));
          child.on('error', reject);
          child.on('close', () => resolve(out.trim()));
        }),
    ),
  );
  assert.equal(outputs.filter((o) => o === 'won').length, 1, outputs.join(','));
  assert.equal(
    outputs.filter((o) => o === 'STORAGE_PRECONDITION_FAILED').length,
    7,
    outputs.join(','),
  );
  assert.match(Buffer.from(await backend.get('refs/heads/main')).toString(), /^writer \d$/);
  // Temp files and locks are never listed, and none is left behind.
  assert.deepEqual(await fs.readdir(path.join(backend.root, '.tmp')), []);
  const keys: string[] = [];
  for await (const key of backend.list('')) keys.push(key);
  assert.deepEqual(keys, ['refs/heads/main']);
});
