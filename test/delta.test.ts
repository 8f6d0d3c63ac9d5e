/**
 * Delta compression end to end with the real CLI: a fine-tuned "checkpoint"
 * (float32 values, 5% perturbed) is stored as deltas by default and whole
 * with `add --no-delta`, and every version reads back byte for byte, also
 * after `repack` moves the deltas and their bases into a pack.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { prng, TempRepo } from './helpers.ts';

const MiB = 1024 * 1024;

/** Float32 values near N(0, 0.02); the edit moves every 20th value a little. */
function checkpointPair(count: number, seed: number): [Buffer, Buffer] {
  const random = prng(seed);
  const values = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    values[i] = (random() + random() + random() + random() - 2) * 0.035;
  }
  const v1 = Buffer.from(new Uint8Array(values.buffer).slice());
  for (let i = 0; i < count; i += 20) values[i] = values[i]! + (random() - 0.5) * 1e-3;
  return [v1, Buffer.from(values.buffer)];
}

async function objectBytes(repo: TempRepo): Promise<number> {
  let total = 0;
  const dir = path.join(repo.gitDir, 'objects');
  for (const entry of await fs.readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile() && !entry.parentPath.endsWith('info')) {
      total += (await fs.stat(path.join(entry.parentPath, entry.name))).size;
    }
  }
  return total;
}

test('an edited checkpoint is stored as deltas, and --no-delta stores it whole', async () => {
  const [v1, v2] = checkpointPair((12 * MiB) / 4, 11);
  const grown: Record<string, number> = {};
  for (const mode of ['delta', 'no-delta'] as const) {
    const repo = await TempRepo.create();
    try {
      const args = mode === 'delta' ? ['add'] : ['add', '--no-delta'];
      await fs.writeFile(repo.path('model.ckpt'), v1);
      await repo.ok([...args, 'model.ckpt']);
      await repo.ok(['commit', '-q', '-m', 'base model']);
      const before = await objectBytes(repo);
      await fs.writeFile(repo.path('model.ckpt'), v2);
      await repo.ok([...args, 'model.ckpt']);
      await repo.ok(['commit', '-q', '-m', 'fine-tuned']);
      grown[mode] = (await objectBytes(repo)) - before;

      await repo.ok(['repack', '-a', '-d', '-q']);
      await repo.ok(['checkout', 'HEAD~1', '--', 'model.ckpt']);
      assert.ok((await fs.readFile(repo.path('model.ckpt'))).equals(v1), `${mode}: v1`);
      await repo.ok(['checkout', 'HEAD', '--', 'model.ckpt']);
      assert.ok((await fs.readFile(repo.path('model.ckpt'))).equals(v2), `${mode}: v2`);
    } finally {
      await repo.cleanup();
    }
  }
  // A value in 20 changed: whole, the version costs about its compressed
  // size; as deltas, a small part of it.
  assert.ok(grown['no-delta']! > 0.8 * v2.length, `whole: ${grown['no-delta']}`);
  assert.ok(grown.delta! < 0.2 * v2.length, `deltas: ${grown.delta}`);
});
