/**
 * Interrupting commands (issue 15, point 1): SIGINT, SIGTERM and SIGHUP leave
 * no lock and no temp file; locks and temp files of processes that died
 * without cleaning up (SIGKILL) are removed by the next command that meets
 * them, by PID and age; an interrupted clone resumes when rerun, fetching
 * only what it lacked.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { CLI_PATH, collect, spawnCli, TempRepo, writePseudoRandomFile } from './helpers.ts';

const MiB = 1024 * 1024;
const BIG = 'big.bin';

let repo: TempRepo;

before(async () => {
  repo = await TempRepo.create();
  await writePseudoRandomFile(repo.path(BIG), 192 * MiB, 15);
});

after(async () => {
  await repo.cleanup();
});

/** Waits until `ready()` holds (polling), then sends `signal`; resolves with how the process ended. */
async function interruptWhen(
  child: ChildProcess,
  ready: () => Promise<boolean>,
  signal: NodeJS.Signals,
): Promise<{ code: number | null; signal: NodeJS.Signals | null; sent: boolean }> {
  const ended = collect(child);
  let sent = false;
  for (let i = 0; i < 1000 && child.exitCode === null && child.signalCode === null; i++) {
    if (await ready()) {
      sent = child.kill(signal);
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  const result = await ended;
  return { code: result.code, signal: result.signal, sent };
}

async function namesIn(dir: string): Promise<string[]> {
  return fs.readdir(dir).catch(() => []);
}

/** Temp entries of this repository (and whether index.lock exists). */
async function leftovers(gitDir: string): Promise<string[]> {
  const names = (await namesIn(path.join(gitDir, 'tmp'))).map((name) => `tmp/${name}`);
  if ((await namesIn(gitDir)).includes('index.lock')) names.push('index.lock');
  return names;
}

/** A PID no process has: one that just exited. */
async function deadPid(): Promise<number> {
  const child = spawn('true');
  await new Promise((resolve) => child.on('exit', resolve));
  return child.pid!;
}

test('SIGINT, SIGTERM and SIGHUP during add: the process dies of the signal, leaving no lock and no temp file', async () => {
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const child = spawnCli(['add', BIG], { cwd: repo.dir, env: repo.env });
    // Interrupted while the big file's chunks are being written.
    const ended = await interruptWhen(
      child,
      async () => (await namesIn(path.join(repo.gitDir, 'tmp'))).length > 0,
      signal,
    );
    assert.ok(ended.sent, `${signal}: add ended before it wrote anything`);
    assert.equal(ended.signal, signal, `${signal}: exit ${ended.code}`);
    assert.deepEqual(await leftovers(repo.gitDir), [], signal);
  }
  await repo.ok(['add', BIG]);
  await repo.ok(['commit', '-q', '-m', 'big']);
  assert.equal((await repo.ok(['status', '--porcelain'])).out, '');
});

test('SIGINT during checkout leaves no staging folder, and the checkout can be run again', async () => {
  await repo.ok(['switch', '-q', '-c', 'empty']);
  await repo.ok(['rm', '-q', BIG]);
  await repo.ok(['commit', '-q', '-m', 'without the big file']);
  const child = spawnCli(['checkout', 'main'], { cwd: repo.dir, env: repo.env });
  const ended = await interruptWhen(
    child,
    async () =>
      (await namesIn(path.join(repo.gitDir, 'tmp'))).some((name) => name.startsWith('checkout-')),
    'SIGINT',
  );
  assert.ok(ended.sent, 'checkout ended before it staged anything');
  assert.equal(ended.signal, 'SIGINT');
  assert.deepEqual(await leftovers(repo.gitDir), []);
  await repo.ok(['checkout', '-q', 'main']);
  assert.equal((await repo.ok(['status', '--porcelain'])).out, '');
  assert.equal((await fs.stat(repo.path(BIG))).size, 192 * MiB);
});

test('a lock left by a dead process of this machine is removed by the next command; other locks still block', async () => {
  const lock = path.join(repo.gitDir, 'index.lock');
  await fs.writeFile(lock, `${await deadPid()} ${os.hostname()}\n`);
  await repo.ok(['add', BIG]);
  assert.deepEqual(await leftovers(repo.gitDir), []);

  const ref = path.join(repo.gitDir, 'refs', 'heads', 'main.lock');
  await fs.writeFile(ref, `${await deadPid()} ${os.hostname()}\n`);
  await fs.writeFile(repo.path('note.txt'), 'a note\n');
  await repo.ok(['add', 'note.txt']);
  await repo.ok(['commit', '-q', '-m', 'note']);
  assert.equal(await fs.stat(ref).catch(() => undefined), undefined);

  // Another machine's lock, a live process's, and one without a holder line.
  for (const content of [
    `${await deadPid()} another-machine\n`,
    `${process.pid} ${os.hostname()}\n`,
    '',
  ]) {
    await fs.writeFile(lock, content);
    const blocked = await repo.fails(['add', BIG], 128);
    assert.match(blocked.stderr, /index\.lock': File exists/, JSON.stringify(content));
    assert.equal(blocked.stderr.split('\n').filter(Boolean).length, 1, blocked.stderr);
    assert.equal(await fs.readFile(lock, 'utf8'), content);
  }
  await fs.rm(lock);
});

test('temp files of dead processes go once 10 minutes old (at once with repack -d); a live process’s stay', async () => {
  const tmp = path.join(repo.gitDir, 'tmp');
  await fs.mkdir(tmp, { recursive: true });
  const dead = await deadPid();
  const old = new Date(Date.now() - 20 * 60 * 1000);
  const oldPack = path.join(tmp, `ingest-pack-${dead}-0123456789ab.tmp`);
  const oldCheckout = path.join(tmp, `checkout-${dead}-0123456789ac`);
  const recent = path.join(tmp, `ingest-pack-${dead}-0123456789ad.tmp`);
  const live = path.join(tmp, `ingest-pack-${process.pid}-0123456789ae.tmp`);
  await fs.writeFile(oldPack, 'x');
  await fs.mkdir(oldCheckout);
  await fs.writeFile(path.join(oldCheckout, 'file'), 'x');
  await fs.writeFile(recent, 'x');
  await fs.writeFile(live, 'x');
  for (const file of [path.join(oldCheckout, 'file'), oldCheckout, oldPack, live]) {
    await fs.utimes(file, old, old);
  }
  await fs.writeFile(repo.path('note.txt'), 'another note\n');
  await repo.ok(['add', 'note.txt']);
  assert.deepEqual(
    (await namesIn(tmp)).sort(),
    [path.basename(recent), path.basename(live)].sort(),
  );
  await repo.ok(['repack', '-a', '-d', '-q']);
  assert.deepEqual(await namesIn(tmp), [path.basename(live)]);
  await fs.rm(live);
});

test('an interrupted clone keeps what arrived, and the same command resumes it, fetching only the rest', async () => {
  const bare = path.join(repo.root, 'origin.mediagit');
  await repo.ok(['init', '--bare', '-q', bare]);
  await repo.ok(['push', '-q', bare, 'main']);
  const target = path.join(repo.root, 'copy');
  const args = ['clone', bare, target];
  const child = spawnCli(args, { cwd: repo.root, env: repo.env });
  // Interrupted once a few MiB of chunks have arrived.
  const ended = await interruptWhen(
    child,
    async () => {
      // The pack being received (the files being checked out are made full size at once).
      for (const name of await namesIn(path.join(target, '.mediagit', 'tmp'))) {
        if (!name.startsWith('ingest-pack-')) continue;
        const stats = await fs.stat(path.join(target, '.mediagit', 'tmp', name)).catch(() => null);
        if (stats && stats.size > 24 * MiB) return true;
      }
      return false;
    },
    'SIGINT',
  );
  assert.ok(ended.sent, 'the clone ended before 24 MiB had arrived');
  assert.equal(ended.signal, 'SIGINT');
  assert.deepEqual(await leftovers(path.join(target, '.mediagit')), []);
  const kept = (await fs.readdir(path.join(target, '.mediagit', 'objects', 'pack'))).length;
  assert.ok(kept > 0, 'nothing of the interrupted clone was kept');

  const resumed = await collect(spawnCli([...args, '--json'], { cwd: repo.root, env: repo.env }));
  assert.equal(resumed.code, 0, resumed.stderr);
  const stats = (JSON.parse(resumed.out) as { stats: { chunksSkipped: number; bytes: number } })
    .stats;
  assert.ok(stats.chunksSkipped > 0, 'the resumed clone asked for every chunk again');
  assert.ok(stats.bytes < 192 * MiB - 16 * MiB, `the resumed clone received ${stats.bytes} bytes`);
  const copy = await fs.readFile(path.join(target, BIG));
  assert.ok(copy.equals(await fs.readFile(repo.path(BIG))), 'the resumed clone’s file differs');
  assert.equal(
    (await collect(spawnCli(['status', '--porcelain'], { cwd: target, env: repo.env }))).out,
    '',
  );
  assert.ok(!(await namesIn(path.join(target, '.mediagit'))).includes('CLONE_IN_PROGRESS'));
});

test('output closed early (| head -c1): no stack trace, the command dies quietly of SIGPIPE as Git does', async () => {
  // ~400 KB of `diff`: more than a pipe holds, so writes meet the closed pipe.
  const lines = (tag: string): string =>
    Array.from({ length: 10_000 }, (_, i) => `${tag} line ${i} of a text file\n`).join('');
  await fs.writeFile(repo.path('text.txt'), lines('old'));
  await repo.ok(['add', 'text.txt']);
  await repo.ok(['commit', '-q', '-m', 'text']);
  await fs.writeFile(repo.path('text.txt'), lines('new'));
  const script = `"${process.execPath}" "${CLI_PATH}" diff | head -c1; echo "exit \${PIPESTATUS[0]}" >&2`;
  const result = await collect(spawn('bash', ['-c', script], { cwd: repo.dir, env: repo.env }));
  assert.equal(result.out.length, 1);
  assert.equal(result.stderr, 'exit 141\n');
  await repo.ok(['restore', 'text.txt']);
});

test('a checkout stopped after placing files and before writing the index is finished by running it again', async () => {
  // The state Ctrl-C leaves between the two steps (found by the interrupt
  // drill): the working files already hold the target, the index and HEAD
  // still name the current commit. Git's two-way merge keeps such files.
  const small = await TempRepo.create();
  try {
    await fs.writeFile(small.path('a.txt'), 'first a\n');
    await small.ok(['add', 'a.txt']);
    await small.ok(['commit', '-q', '-m', 'first']);
    await small.ok(['branch', 'first']);
    await fs.writeFile(small.path('a.txt'), 'second a\n');
    await fs.writeFile(small.path('b.txt'), 'second b\n');
    await small.ok(['add', 'a.txt', 'b.txt']);
    await small.ok(['commit', '-q', '-m', 'second']);
    await small.ok(['switch', '-q', 'first']);
    // Placed, not yet recorded: a.txt changed and b.txt appeared as `switch main` would have them.
    await fs.writeFile(small.path('a.txt'), 'second a\n');
    await fs.writeFile(small.path('b.txt'), 'second b\n');
    await small.ok(['switch', '-q', 'main']);
    assert.equal((await small.ok(['status', '--porcelain'])).out, '');
    // A real local change is still protected.
    await fs.writeFile(small.path('a.txt'), 'edited\n');
    const refused = await small.fails(['switch', '-q', 'first'], 1);
    assert.match(refused.stderr, /local changes to the following files would be overwritten/);
  } finally {
    await small.cleanup();
  }
});
