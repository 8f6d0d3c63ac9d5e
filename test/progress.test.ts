/**
 * Progress on a terminal (issue 15, point 5): push and clone count bytes
 * (they showed "65% (0/0 MiB)": chunk counts divided by a MiB), show rate and
 * time left, and `-q` silences them. Run under a real pseudo-terminal
 * (util-linux `script`), since progress appears only there.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
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
    progressLine('Receiving chunks', { bytes: 5 * MiB, total: 20 * MiB }, 0.5),
    'Receiving chunks: 25% (5.0/20 MiB)',
  );
  assert.equal(
    progressLine('Receiving chunks', { bytes: 300 * MiB, total: 1024 * MiB }, 2),
    'Receiving chunks: 29% (300/1024 MiB), 150 MiB/s, 5 s left',
  );
  assert.equal(
    progressLine('Uploading chunks', { bytes: 1 * MiB, total: 4096 * MiB }, 10),
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

test('checkout of many small files: the percentage counts writing and placing each file, not only bytes', async () => {
  // 6,000 files of 4 KiB: bytes are a small part of the work. Measured by
  // bytes alone the line reached 99% when the files were staged and then sat
  // there while each was renamed into place (issue 15, point 5).
  await repo.ok(['switch', '-q', '-c', 'many']);
  const names: string[] = [];
  for (let d = 0; d < 30; d++) {
    await fs.mkdir(repo.path(`many/d${d}`), { recursive: true });
    for (let f = 0; f < 200; f++) {
      const name = `many/d${d}/f${f}.txt`;
      await fs.writeFile(repo.path(name), `${name}\n`.repeat(160).slice(0, 4096));
      names.push(name);
    }
  }
  await repo.ok(['add', 'many']);
  await repo.ok(['commit', '-q', '-m', 'many small files']);
  await repo.ok(['switch', '-q', 'main']);
  const shown = await onTerminal(['switch', 'many'], repo.dir);
  const lines = [...shown.matchAll(/Updating files: (\d+)% \(([\d.]+)\/([\d.]+) MiB\)/g)].map(
    (m) => ({ percent: Number(m[1]), bytes: m[2], total: m[3] }),
  );
  assert.ok(lines.length >= 3, `progress lines: ${JSON.stringify(lines)}`);
  // Once every byte is written, about half the work (placing the files) remains:
  // the work says 51% then. The line is drawn at most every 100 ms, so the first
  // line drawn after that point may be later (61% and 72% were seen in CI under
  // load); counting bytes alone, every such line said 100%.
  const bytesDone = lines.filter((l) => l.bytes === l.total);
  assert.ok(bytesDone.length > 0, `no line with all bytes written: ${JSON.stringify(lines)}`);
  assert.ok(bytesDone[0]!.percent <= 90, `all bytes written at ${bytesDone[0]!.percent}%`);
  for (let i = 1; i < lines.length; i++) assert.ok(lines[i]!.percent >= lines[i - 1]!.percent);
  assert.equal((await repo.ok(['status', '--short'])).out, '');
  assert.equal(
    await fs.readFile(repo.path(names.at(-1)!), 'utf8'),
    `${names.at(-1)}\n`.repeat(160).slice(0, 4096),
  );
});
