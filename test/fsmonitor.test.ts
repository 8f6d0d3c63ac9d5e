/**
 * The fsmonitor daemon answers `status` exactly as a fresh walk would, across
 * every kind of change the kernel reports: edits, new files, deletions, new
 * nested directories, renamed directories, ignore-rule changes, symlinks and
 * mode changes.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { spawn } from 'node:child_process';
import { collect, PROJECT_ROOT, TempRepo, type CliResult } from './helpers.ts';

/** The command npm installs (package.json "bin"): a POSIX shell launcher. */
const LAUNCHER = path.join(PROJECT_ROOT, 'bin', 'mediagit');

/**
 * Runs the installed command. With `noNode`, MEDIAGIT_NODE names `false`: a
 * command that needed Node fails, so a success was answered by the daemon
 * through the launcher alone.
 */
function viaLauncher(
  args: readonly string[],
  options: { noNode?: boolean } = {},
): Promise<CliResult> {
  const env = { ...repo.env, ...(options.noNode ? { MEDIAGIT_NODE: 'false' } : {}) };
  return collect(spawn(LAUNCHER, args, { cwd: repo.dir, env, stdio: 'pipe' }));
}

/** Files of shell requests (fsmonitor--sh-*, fsmonitor--pipe-*) left in the repository folder. */
async function shellLeftovers(): Promise<string[]> {
  return (await fs.readdir(repo.gitDir)).filter(
    (name) => name.startsWith('fsmonitor--sh-') || name.startsWith('fsmonitor--pipe-'),
  );
}

let repo: TempRepo;

before(async () => {
  repo = await TempRepo.create();
  for (let d = 0; d < 5; d++) {
    await fs.mkdir(repo.path(`dir${d}`));
    for (let f = 0; f < 20; f++)
      await fs.writeFile(repo.path(`dir${d}/file${f}.txt`), `content ${d} ${f}\n`);
  }
  await fs.writeFile(repo.path('.mediagitignore'), '*.tmp\n');
  await repo.ok(['add', '-A']);
  await repo.ok(['commit', '-q', '-m', 'base']);
  await repo.ok(['fsmonitor', 'start']);
  await repo.ok(['fsmonitor', 'status']);
});

after(async () => {
  await repo.run(['fsmonitor', 'stop']);
  await repo.cleanup();
});

/** Status through the daemon, and status computed directly, must agree. */
async function assertSameStatus(label: string): Promise<string> {
  for (const args of [['status', '--porcelain'], ['status', '--json'], ['status']]) {
    const viaDaemon = await repo.ok(args);
    const direct = await repo.withEnv({ MEDIAGIT_NO_FSMONITOR: '1' }).ok(args);
    const normalize = (text: string): string => text.replace(/"contentReads": \d+/, '');
    assert.equal(normalize(viaDaemon.out), normalize(direct.out), `${label}: ${args.join(' ')}`);
    const viaShell = await viaLauncher(args, { noNode: true });
    assert.equal(viaShell.code, 0, `${label}: launcher ${args.join(' ')}: ${viaShell.stderr}`);
    assert.equal(
      normalize(viaShell.out),
      normalize(direct.out),
      `${label}: launcher ${args.join(' ')}`,
    );
  }
  assert.deepEqual(await shellLeftovers(), [], label);
  // The comparison means something only while the daemon is the one answering.
  assert.match((await repo.ok(['fsmonitor', 'status'])).out, /is watching/, label);
  return (await repo.ok(['status', '--porcelain'])).out;
}

test('the daemon is the one answering', async () => {
  const answered = await repo.ok(['fsmonitor', 'status']);
  assert.match(answered.out, /is watching/);
  assert.equal(await assertSameStatus('clean'), '');
});

test('edits, new files and deletions', async () => {
  await fs.appendFile(repo.path('dir0/file1.txt'), 'more\n');
  await fs.writeFile(repo.path('dir1/new.txt'), 'new\n');
  await fs.rm(repo.path('dir2/file3.txt'));
  const out = await assertSameStatus('edits');
  assert.equal(out, ' M dir0/file1.txt\n D dir2/file3.txt\n?? dir1/new.txt\n');
});

test('same-size rewrite within the same second is still seen', async () => {
  await fs.writeFile(repo.path('dir3/file0.txt'), 'CONTENT 3 0\n');
  const out = await assertSameStatus('rewrite');
  assert.match(out, / M dir3\/file0.txt/);
});

test('new nested directories, renamed directories and removed directories', async () => {
  await fs.mkdir(repo.path('fresh/deep/er'), { recursive: true });
  await fs.writeFile(repo.path('fresh/deep/er/x.bin'), Buffer.from([0, 1, 2]));
  await fs.rename(repo.path('dir4'), repo.path('dir4-renamed'));
  const out = await assertSameStatus('dirs');
  assert.match(out, /\?\? fresh\//);
  assert.match(out, / D dir4\/file0.txt/);
  assert.match(out, /\?\? dir4-renamed\//);
  await fs.rm(repo.path('fresh'), { recursive: true });
  await fs.rename(repo.path('dir4-renamed'), repo.path('dir4'));
  const restored = await assertSameStatus('dirs restored');
  assert.doesNotMatch(restored, /dir4|fresh/);
});

test('ignore rules, symlinks and modes', async () => {
  await fs.writeFile(repo.path('dir0/scratch.tmp'), 'ignored\n');
  assert.doesNotMatch(await assertSameStatus('ignored file'), /scratch/);
  await fs.writeFile(repo.path('.mediagitignore'), '');
  assert.match(await assertSameStatus('ignore file changed'), /\?\? dir0\/scratch.tmp/);
  await fs.symlink('file0.txt', repo.path('dir0/link'));
  await fs.chmod(repo.path('dir0/file2.txt'), 0o755);
  const out = await assertSameStatus('link and mode');
  assert.match(out, /\?\? dir0\/link/);
  assert.match(out, / M dir0\/file2.txt/);
});

test('index and HEAD changes made by other commands are seen', async () => {
  await repo.ok(['add', '-A']);
  const staged = await assertSameStatus('after add');
  assert.match(staged, /^M {2}dir0\/file1.txt/m);
  await repo.ok(['commit', '-q', '-m', 'second']);
  assert.equal(await assertSameStatus('after commit'), '');
});

test('the launcher passes on the answer’s stderr and exit code, and sends what it cannot pass to the CLI', async () => {
  const bad = await viaLauncher(['status', '--no-such-option'], { noNode: true });
  assert.equal(bad.code, 129, bad.stderr);
  assert.match(bad.stderr, /unknown option '--no-such-option'/);
  assert.equal(bad.out, '');
  // A line break cannot travel in the launcher's request: the CLI answers
  // (here `false`, so the exit code shows who did).
  const odd = await viaLauncher(['status', '--', 'a\nb'], { noNode: true });
  assert.equal(odd.code, 1);
  assert.equal(odd.out, '');
  assert.deepEqual(await shellLeftovers(), []);
  const piped = await new Promise<string>((resolve, reject) => {
    const child = spawn('sh', ['-c', `"${LAUNCHER}" status | head -n 1`], {
      cwd: repo.dir,
      env: { ...repo.env, MEDIAGIT_NODE: 'false' },
    });
    let out = '';
    child.stdout.on('data', (data: Buffer) => (out += data.toString()));
    child.on('error', reject);
    child.on('close', () => resolve(out));
  });
  assert.equal(piped, 'On branch main\n');
});

test('a live PID that is not the daemon costs the launcher a 3 s wait, then the CLI answers', async () => {
  await repo.ok(['fsmonitor', 'stop']);
  // This test's own process: alive, and never answers.
  await fs.writeFile(path.join(repo.gitDir, 'fsmonitor.pid'), `${process.pid}\n`);
  await fs.writeFile(repo.path('dir4/file0.txt'), 'changed while no daemon runs\n');
  const started = Date.now();
  const result = await viaLauncher(['status', '--porcelain']);
  const waited = Date.now() - started;
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.out, ' M dir4/file0.txt\n');
  assert.ok(waited >= 2900 && waited < 6000, `waited ${waited} ms`);
  assert.deepEqual(await shellLeftovers(), []);
  await fs.writeFile(repo.path('dir4/file0.txt'), 'content 4 0\n');
  await fs.rm(path.join(repo.gitDir, 'fsmonitor.pid'));
  await repo.ok(['fsmonitor', 'start']);
  assert.equal(await assertSameStatus('restarted'), '');
});

test('a daemon that died leaves nothing that blocks status or a new daemon', async () => {
  await repo.ok(['fsmonitor', 'stop']);
  await fs.writeFile(path.join(repo.gitDir, 'fsmonitor.pid'), '2147483646\n');
  await fs.writeFile(path.join(repo.gitDir, 'fsmonitor.lock'), '2147483646\n');
  await repo.fails(['fsmonitor', 'status'], 1);
  assert.equal((await repo.ok(['status', '--porcelain'])).out, '');
  const viaShell = await viaLauncher(['status', '--porcelain']);
  assert.equal(viaShell.code, 0, viaShell.stderr);
  assert.equal(viaShell.out, '');
  assert.deepEqual(await shellLeftovers(), []);
  await repo.ok(['fsmonitor', 'start']);
  const pid = Number((await fs.readFile(path.join(repo.gitDir, 'fsmonitor.pid'), 'utf8')).trim());
  assert.notEqual(pid, 2147483646);
  assert.equal(await assertSameStatus('after restart'), '');
});
