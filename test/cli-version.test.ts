import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { execFile } from 'node:child_process';
import { isolatedEnv, PROJECT_ROOT, runCli } from './helpers.ts';

/** The command npm installs (package.json "bin"): a POSIX shell launcher. */
const LAUNCHER = path.join(PROJECT_ROOT, 'bin', 'mediagit');

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

/** Runs a program (not under this Node) and collects its output. */
function run(
  file: string,
  args: readonly string[],
  options: { cwd: string; env: NodeJS.ProcessEnv },
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { ...options, encoding: 'utf8' }, (error, stdout, stderr) => {
      if (error && typeof error.code !== 'number') reject(error);
      else resolve({ code: error ? (error.code as number) : 0, stdout, stderr });
    });
  });
}

test('the `mediagit` command runs the CLI with the package’s own Node, whatever Node is on PATH, also through a link', async () => {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'mediagit-launcher-'));
  try {
    const { version } = JSON.parse(
      await fs.readFile(path.join(PROJECT_ROOT, 'package.json'), 'utf8'),
    ) as {
      version: string;
    };
    // As `npm link` / `npm i -g` install it: a symbolic link in a bin folder.
    const binDir = path.join(root, 'bin');
    await fs.mkdir(binDir);
    const linked = path.join(binDir, 'mediagit');
    await fs.symlink(LAUNCHER, linked);
    // A PATH whose only Node, if any, is the machine's own (Node 20 on CI).
    const env = { ...isolatedEnv(root), PATH: `${binDir}:/usr/bin:/bin` };
    for (const command of [LAUNCHER, linked]) {
      const alone = await run(command, ['--version'], { cwd: root, env });
      assert.deepEqual(alone, { code: 0, stdout: `${version}\n`, stderr: '' }, command);
    }
    const init = await run('mediagit', ['init', 'repo'], { cwd: root, env });
    assert.equal(init.code, 0, init.stderr);
    await fs.writeFile(path.join(root, 'repo', 'a.txt'), 'hello\n');
    const add = await run('mediagit', ['add', 'a.txt'], { cwd: path.join(root, 'repo'), env });
    assert.equal(add.code, 0, add.stderr);
    const status = await run('mediagit', ['status', '--short'], {
      cwd: path.join(root, 'repo'),
      env,
    });
    assert.deepEqual(status, { code: 0, stdout: 'A  a.txt\n', stderr: '' });
    // MEDIAGIT_NODE picks the Node: one that is not there is one clear line
    // (exit 127, as a shell says for a missing command)...
    const missing = await run(linked, ['status'], {
      cwd: root,
      env: { ...env, MEDIAGIT_NODE: path.join(root, 'no-such-node') },
    });
    assert.equal(missing.code, 127);
    assert.match(missing.stderr, /^fatal: MEDIAGIT_NODE=\S+ is not a program that can be run\n$/);
    // ...and one too old is refused with one clear line.
    const old = await run('/usr/bin/node', ['--version'], { cwd: root, env }).catch(() => null);
    const [major, minor] = (old?.stdout.trim().slice(1) ?? '99.0').split('.').map(Number);
    if (major! < 22 || (major === 22 && minor! < 15)) {
      const refused = await run(linked, ['status'], {
        cwd: path.join(root, 'repo'),
        env: { ...env, MEDIAGIT_NODE: '/usr/bin/node' },
      });
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /^fatal: MediaGit needs Node\.js >= 22\.15/);
    }
  } finally {
    await fs.rm(root, { recursive: true, force: true });
  }
});

test('the README’s install (`npm i -g <checkout>` with the machine’s own npm) puts a working `mediagit` on PATH', async (t) => {
  const npm = '/usr/bin/npm';
  if (!(await fs.stat(npm).catch(() => null))) {
    t.skip('no system npm at /usr/bin/npm');
    return;
  }
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'mediagit-npm-global-'));
  try {
    const prefix = path.join(root, 'prefix');
    // Only the machine's own tools on PATH (system Node 20 on CI), as a user
    // who has just cloned the project and run `npm ci` in it.
    const env = { ...isolatedEnv(root), HOME: root, PATH: '/usr/bin:/bin' };
    // --ignore-scripts: npm runs the package's `prepare` (tsc) on a folder
    // install, which rewrites dist/ in place while the other test files run
    // the CLI from it; a CLI started mid-write saw a half-written module
    // (`does not provide an export named 'RepoService'`, two CI runs).
    // `npm ci` has already built dist/, as for a user following the README.
    const installed = await run(
      npm,
      [
        'i',
        '-g',
        PROJECT_ROOT,
        '--prefix',
        prefix,
        '--offline',
        '--no-audit',
        '--no-fund',
        '--ignore-scripts',
      ],
      { cwd: root, env },
    );
    assert.equal(installed.code, 0, installed.stderr);
    const onPath = { ...env, PATH: `${path.join(prefix, 'bin')}:/usr/bin:/bin` };
    const version = await run('mediagit', ['version', '--json'], { cwd: root, env: onPath });
    assert.equal(version.code, 0, version.stderr);
    const reported = JSON.parse(version.stdout) as { node: string };
    assert.equal(reported.node, process.versions.node, 'the package’s own Node runs the CLI');
    assert.equal((await run('mediagit', ['init', 'repo'], { cwd: root, env: onPath })).code, 0);
    await fs.writeFile(path.join(root, 'repo', 'b.bin'), 'media\n');
    const add = await run('mediagit', ['add', 'b.bin'], {
      cwd: path.join(root, 'repo'),
      env: onPath,
    });
    assert.equal(add.code, 0, add.stderr);
    const status = await run('mediagit', ['status', '--short'], {
      cwd: path.join(root, 'repo'),
      env: onPath,
    });
    assert.deepEqual(status, { code: 0, stdout: 'A  b.bin\n', stderr: '' });
  } finally {
    await fs.rm(root, { recursive: true, force: true });
  }
});
