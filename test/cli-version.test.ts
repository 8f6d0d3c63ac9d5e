import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { isolatedEnv, runCli } from './helpers.ts';

test('--version prints package.json’s version, alone (answered by the launcher) and through the CLI', async () => {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'mediagit-version-'));
  try {
    const { version } = JSON.parse(
      await fs.readFile(new URL('../package.json', import.meta.url), 'utf8'),
    ) as { version: string };
    assert.match(version, /^\d+\.\d+\.\d+/);
    const alone = await runCli(['--version'], { cwd: root, env: isolatedEnv(root) });
    assert.equal(alone.code, 0);
    assert.equal(alone.out, `${version}\n`);
    assert.equal(alone.stderr, '');
    // With anything after it, the full CLI answers (commander's --version).
    const parsed = await runCli(['--version', 'status'], { cwd: root, env: isolatedEnv(root) });
    assert.equal(parsed.code, 0);
    assert.equal(parsed.out, `${version}\n`);
  } finally {
    await fs.rm(root, { recursive: true, force: true });
  }
});
