/**
 * Large files with the real CLI: `add` writes their chunks into one pack
 * (format version 2), a SIGKILL mid-add leaves nothing half-visible, and
 * `repack -a -d` folds ingest packs into one and clears the killed add's
 * temp files.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { collect, pseudoRandomBytes, TempRepo } from './helpers.ts';

const MiB = 1024 * 1024;

async function packFiles(repo: TempRepo): Promise<string[]> {
  return (await fs.readdir(path.join(repo.gitDir, 'objects', 'pack')).catch(() => [])).sort();
}

test('a large add writes one pack; a killed add leaves none; repack folds them', async () => {
  const repo = await TempRepo.create();
  try {
    const big = pseudoRandomBytes(70 * MiB, 21);
    await fs.writeFile(repo.path('take1.mov.bin'), big);

    // Killed partway: no pack becomes visible, and the next add works.
    const child = repo.spawn(['add', 'take1.mov.bin']);
    const killed = collect(child);
    await new Promise((resolve) => setTimeout(resolve, 250));
    child.kill('SIGKILL');
    await killed;
    const afterKill = await packFiles(repo);
    for (const name of afterKill.filter((n) => n.endsWith('.pack'))) {
      // A pack may only be visible together with its index.
      assert.ok(afterKill.includes(name.replace(/\.pack$/, '.idx')), `unindexed ${name}`);
    }
    await fs.rm(path.join(repo.gitDir, 'index.lock'), { force: true });

    await repo.ok(['add', 'take1.mov.bin']);
    await repo.ok(['commit', '-q', '-m', 'take 1']);
    const packs = (await packFiles(repo)).filter((n) => n.endsWith('.pack'));
    assert.ok(packs.length >= 1);
    const second = Buffer.concat([big.subarray(0, 30 * MiB), pseudoRandomBytes(40 * MiB, 22)]);
    await fs.writeFile(repo.path('take1.mov.bin'), second);
    await repo.ok(['commit', '-q', '-a', '-m', 'take 2']);
    assert.equal(
      (await packFiles(repo)).filter((n) => n.endsWith('.pack')).length,
      packs.length + 1,
    );

    await repo.ok(['repack', '-a', '-d', '-q']);
    assert.equal((await packFiles(repo)).length, 2);
    // The killed add's temp pack is gone with it.
    assert.deepEqual(await fs.readdir(path.join(repo.gitDir, 'tmp')), []);
    await repo.ok(['checkout', 'HEAD~1', '--', 'take1.mov.bin']);
    assert.ok((await fs.readFile(repo.path('take1.mov.bin'))).equals(big));
    await repo.ok(['checkout', 'HEAD', '--', 'take1.mov.bin']);
    assert.ok((await fs.readFile(repo.path('take1.mov.bin'))).equals(second));
  } finally {
    await repo.cleanup();
  }
});
