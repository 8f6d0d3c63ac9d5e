/**
 * Progress on a terminal (issue 15, point 5): push and clone count bytes
 * (they showed "65% (0/0 MiB)": chunk counts divided by a MiB), show rate and
 * time left, and `-q` silences them. Run under a real pseudo-terminal
 * (util-linux `script`), since progress appears only there.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { progressLine } from '../src/cli/progress.ts';
import { CLI_PATH, collect, TempRepo, writePseudoRandomFile } from './helpers.ts';

const MiB = 1024 * 1024;
const SIZE = 256 * MiB;
let repo: TempRepo;

before(async () => {
  repo = await TempRepo.create();
  await writePseudoRandomFile(repo.path('big.bin'), SIZE, 21);
  await repo.ok(['add', 'big.bin']);
  await repo.ok(['commit', '-q', '-m', 'big']);
});

after(async () => {
  await repo.cleanup();
});

/** Runs the CLI under a pseudo-terminal; returns everything it showed there. */
async function onTerminal(args: readonly string[], cwd: string): Promise<string> {
  const command = [process.execPath, CLI_PATH, ...args].map((a) => `'${a}'`).join(' ');
  // CI unset: progress is off under CI.
  const env = { ...repo.env, CI: '', TERM: 'xterm' };
  const result = await collect(spawn('script', ['-qec', command, '/dev/null'], { cwd, env }));
  assert.equal(result.code, 0, `${args.join(' ')}: ${result.out}${result.stderr}`);
  return result.out;
}

test('the progress line: bytes, then rate and time left once a second has passed', () => {
  assert.equal(
    progressLine('Receiving chunks', 5 * MiB, 20 * MiB, 0.5),
    'Receiving chunks: 25% (5.0/20 MiB)',
  );
  assert.equal(
    progressLine('Receiving chunks', 300 * MiB, 1024 * MiB, 2),
    'Receiving chunks: 29% (300/1024 MiB), 150 MiB/s, 5 s left',
  );
  assert.equal(
    progressLine('Uploading chunks', 1 * MiB, 4096 * MiB, 10),
    'Uploading chunks: 0% (1.0/4096 MiB), 0.1 MiB/s, 11 h 22 min left',
  );
});

test('push and clone show progress in MiB of the data moved on a terminal, and nothing with -q', async () => {
  const bare = path.join(repo.root, 'origin.mediagit');
  await repo.ok(['init', '--bare', '-q', bare]);
  const pushed = await onTerminal(['push', bare, 'main'], repo.dir);
  assert.match(pushed, /Uploading chunks: \d+% \(\d+\/256 MiB\)/);
  assert.doesNotMatch(pushed, /\(0\/0 MiB\)/);

  const cloned = await onTerminal(['clone', bare, 'copy'], repo.root);
  assert.match(cloned, /Receiving chunks: \d+% \(\d+\/256 MiB\)/);

  const quiet = await onTerminal(['clone', '-q', bare, 'quiet-copy'], repo.root);
  assert.doesNotMatch(quiet, /Receiving chunks/);
  const second = path.join(repo.root, 'second.mediagit');
  await repo.ok(['init', '--bare', '-q', second]);
  const quietPush = await onTerminal(['push', '-q', second, 'main'], repo.dir);
  assert.doesNotMatch(quietPush, /Uploading chunks/);
  // It did send the data: a clone of it has the file.
  assert.match(await onTerminal(['clone', second, 'from-second'], repo.root), /Receiving chunks/);
});
