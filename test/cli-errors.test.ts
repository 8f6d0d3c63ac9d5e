/**
 * User errors get one clear line and Git's exit codes, never a stack trace
 * (issue 15, point 4): every verb with a bad option and with bad arguments,
 * inside and outside a repository, plus the startup errors of `serve` and the
 * environment's files that used to end as "internal error".
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { commandLoaders } from '../src/cli/commands/index.ts';
import { CLI_PATH, collect, runCli, TempRepo, type CliResult } from './helpers.ts';

let repo: TempRepo;
let outside: string;

before(async () => {
  repo = await TempRepo.create();
  await fs.writeFile(repo.path('a.txt'), 'a\n');
  await repo.ok(['add', 'a.txt']);
  await repo.ok(['commit', '-q', '-m', 'a']);
  outside = await fs.mkdtemp(path.join(os.tmpdir(), 'mediagit-outside-'));
});

after(async () => {
  await repo.cleanup();
  await fs.rm(outside, { recursive: true, force: true });
});

function assertNoStack(label: string, result: CliResult): void {
  assert.doesNotMatch(result.stderr, /internal error|\n\s+at /, `${label}: ${result.stderr}`);
  assert.notEqual(result.code, 70, `${label}: ${result.stderr}`);
  assert.notEqual(result.code, null, `${label}: killed`);
}

/** Runs `work` over `items`, `limit` at a time. */
async function inParallel<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      for (let i = next++; i < items.length; i = next++) await work(items[i]!);
    }),
  );
}

test('every verb: an unknown option is one usage line (129); bad arguments, in and out of a repository, are no stack trace', async () => {
  const verbs = Object.keys(commandLoaders);
  assert.ok(verbs.length > 30, `only ${verbs.length} verbs`);
  await inParallel(verbs, 4, async (verb) => {
    const bad = await runCli([verb, '--no-such-option'], { cwd: repo.dir, env: repo.env });
    assertNoStack(`${verb} --no-such-option`, bad);
    assert.equal(bad.code, 129, `${verb} --no-such-option: ${bad.stderr}`);
    assert.equal(bad.stderr.trim().split('\n').length, 1, `${verb}: ${bad.stderr}`);
    for (const cwd of [repo.dir, outside]) {
      const args = [verb, 'no-such-thing', '../../etc/passwd', ':0:nothing'];
      const result = await runCli(args, { cwd, env: { ...repo.env, NO_COLOR: '1' } });
      assertNoStack(`${args.join(' ')} in ${cwd}`, result);
    }
  });
});

test('serve on a port in use: one line naming the address, exit 1', async () => {
  const blocker = net.createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  const port = (blocker.address() as net.AddressInfo).port;
  try {
    const root = path.join(outside, 'root');
    await fs.mkdir(root, { recursive: true });
    const result = await runCli(['serve', '--root', root, '--port', String(port)], {
      cwd: outside,
      env: repo.env,
    });
    assert.equal(result.code, 1, result.stderr);
    assert.equal(
      result.stderr,
      `error: cannot listen on 127.0.0.1:${port}: the address is in use (is another server running there? choose another --port)\n`,
    );
  } finally {
    blocker.close();
  }
});

test('missing files named by options or the environment: one line naming them', async () => {
  const root = path.join(outside, 'root');
  await fs.mkdir(root, { recursive: true });
  const tls = await runCli(
    ['serve', '--root', root, '--tls-cert', path.join(outside, 'none.pem'), '--tls-key', 'x'],
    { cwd: outside, env: repo.env },
  );
  assert.equal(tls.code, 128);
  assert.equal(
    tls.stderr,
    `fatal: cannot read --tls-cert file '${path.join(outside, 'none.pem')}': no such file\n`,
  );
  const ca = await runCli(['clone', 'https://127.0.0.1:9/r', path.join(outside, 'c')], {
    cwd: outside,
    env: { ...repo.env, MEDIAGIT_CA_FILE: path.join(outside, 'ca.pem') },
  });
  assert.equal(ca.code, 128, ca.stderr);
  assert.match(ca.stderr, /fatal: MEDIAGIT_CA_FILE names '.*ca\.pem', which cannot be read/);
  assertNoStack('clone with a missing CA file', ca);
});

test('init where no folder can be made fails at once (it spun forever under /proc)', async () => {
  const result = await runCli(['init', '/proc/mediagit-cannot-be-here'], {
    cwd: outside,
    env: repo.env,
  });
  assert.equal(result.code, 128);
  assert.equal(result.stderr, 'fatal: cannot mkdir /proc/mediagit-cannot-be-here: ENOENT\n');
});

test('init --encrypt without a secret, on a storage URL, or with a bad initial branch is one line, exit 128, and creates nothing', async () => {
  for (const args of [
    ['init', '--encrypt', 'enc'],
    ['init', '--bare', '--encrypt', 'enc'],
    ['init', '--bare', '--encrypt', 's3://bucket/enc'],
    ['init', '-b', 'a..b', 'enc'],
  ]) {
    const result = await runCli(args, { cwd: outside, env: repo.env });
    assert.equal(result.code, 128, result.stderr);
    assert.equal(result.stderr.trim().split('\n').length, 1, result.stderr);
    assert.match(
      result.stderr,
      /^fatal: (a new key slot needs a secret: .*nothing was created|init --bare --encrypt on a storage URL: encrypted server repositories are not implemented yet|'a\.\.b' is not a valid branch name)/,
    );
    await assert.rejects(fs.access(path.join(outside, 'enc')), args.join(' '));
  }
});

test('a bare mediagit shows the help and exits 1, help for an unknown verb fails, -v and version name the format', async () => {
  const bare = await runCli([], { cwd: outside, env: repo.env });
  assert.equal(bare.code, 1);
  assert.match(bare.out, /^Usage: mediagit /);
  const unknown = await runCli(['help', 'no-such-verb'], { cwd: outside, env: repo.env });
  assert.equal(unknown.code, 1);
  assert.equal(
    unknown.stderr,
    "mediagit: 'no-such-verb' is not a mediagit command. See 'mediagit --help'.\n",
  );
  const manifest = JSON.parse(
    await fs.readFile(new URL('../package.json', import.meta.url), 'utf8'),
  ) as { version: string };
  for (const args of [['-v'], ['version']]) {
    const shown = await runCli(args, { cwd: outside, env: repo.env });
    assert.equal(shown.code, 0, shown.stderr);
    assert.equal(
      shown.out,
      `mediagit version ${manifest.version}\nrepository format version 1\nnode ${process.versions.node}\n`,
    );
  }
  const json = await runCli(['version', '--json'], { cwd: outside, env: repo.env });
  assert.deepEqual(JSON.parse(json.out), {
    version: manifest.version,
    formatVersion: 1,
    node: process.versions.node,
  });
});

test('a refused push reads as Git’s: (fetch first) or (non-fast-forward), the hint, and no transfer figures', async () => {
  const bare = path.join(outside, 'shared.mediagit');
  await repo.ok(['init', '--bare', '-q', bare]);
  await repo.ok(['push', '-q', bare, 'main']);
  const other = path.join(outside, 'other');
  await runCli(['clone', '-q', bare, other], { cwd: outside, env: repo.env });
  const inOther = (args: string[]): Promise<CliResult> =>
    runCli(args, { cwd: other, env: repo.env });
  await fs.writeFile(path.join(other, 'b.txt'), 'from the other clone\n');
  assert.equal((await inOther(['add', 'b.txt'])).code, 0);
  assert.equal((await inOther(['commit', '-q', '-m', 'other'])).code, 0);
  assert.equal((await inOther(['push', '-q', 'origin', 'main'])).code, 0);

  await fs.writeFile(repo.path('c.txt'), 'here\n');
  await repo.ok(['add', 'c.txt']);
  await repo.ok(['commit', '-q', '-m', 'here']);
  const fetchFirst = await repo.fails(['push', bare, 'main'], 1);
  assert.equal(
    fetchFirst.stderr,
    [
      `To ${bare}`,
      ' ! [rejected]        main -> main (fetch first)',
      `error: failed to push some refs to '${bare}'`,
      'hint: Updates were rejected because the remote contains work that you do not',
      'hint: have locally. This is usually caused by another repository pushing to',
      'hint: the same ref. If you want to integrate the remote changes, use',
      "hint: 'mediagit pull' before pushing again.",
      '',
    ].join('\n'),
  );
  // Once the remote's commit is here, the same push loses it: non-fast-forward.
  await repo.ok(['fetch', '-q', bare]);
  const nonFastForward = await repo.fails(['push', bare, 'main'], 1);
  assert.match(nonFastForward.stderr, / ! \[rejected\] {8}main -> main \(non-fast-forward\)\n/);
  assert.match(
    nonFastForward.stderr,
    /hint: Updates were rejected because the tip of your current branch is behind/,
  );
  assert.doesNotMatch(nonFastForward.stderr, /objects|chunks/);
});

test('Git’s options before the verb: -C <path>, --color=always|never|auto, --no-pager', async () => {
  await fs.writeFile(repo.path('a.txt'), 'changed\n');
  const elsewhere = await runCli(['-C', repo.dir, 'status', '--porcelain'], {
    cwd: outside,
    env: repo.env,
  });
  assert.equal(elsewhere.code, 0, elsewhere.stderr);
  assert.match(elsewhere.out, /^ M a\.txt$/m);
  // Each -C relative to the previous one, as in Git.
  const chained = await runCli(
    ['-C', path.dirname(repo.dir), '-C', path.basename(repo.dir), 'status', '--porcelain'],
    {
      cwd: outside,
      env: repo.env,
    },
  );
  assert.equal(chained.out, elsewhere.out);
  const missing = await runCli(['-C', 'no-such-dir', 'status'], { cwd: outside, env: repo.env });
  assert.equal(missing.code, 128);
  assert.equal(missing.stderr, "fatal: cannot change to 'no-such-dir': No such directory\n");

  const env = { ...repo.env, NO_COLOR: '' };
  const always = await runCli(['--color=always', 'status'], { cwd: repo.dir, env });
  assert.ok(always.out.includes('\u001b['), always.out);
  for (const flag of ['--color=never', '--no-color', '--color=auto']) {
    const plain = await runCli([flag, '--no-pager', 'status'], { cwd: repo.dir, env });
    assert.equal(plain.code, 0, plain.stderr);
    assert.ok(!plain.out.includes('\u001b['), flag);
    assert.match(plain.out, /modified: +a\.txt/, flag);
  }
  const bad = await runCli(['--color=sometimes', 'status'], { cwd: repo.dir, env });
  assert.equal(bad.code, 129);
  await fs.writeFile(repo.path('a.txt'), 'a\n');
});

/** What each verb prints when run plainly in a repository (read-only, or harmless here). */
const PRINTING: readonly (readonly string[])[] = [
  ['status'],
  ['status', '--short'],
  ['log'],
  ['log', '--oneline'],
  ['log', '--stat'],
  ['show'],
  ['show', '--stat'],
  ['diff', 'HEAD~0'],
  ['diff', '--name-status', 'HEAD'],
  ['branch', '-a'],
  ['tag'],
  ['ls-files'],
  ['config', '--list'],
  ['remote', '-v'],
  ['reflog'],
  ['stash', 'list'],
  ['merge-base', 'main', 'main'],
  ['--help'],
  ['help', 'log'],
  ['version'],
  ['completion', 'bash'],
  ['clean', '-n'],
];

test('every printing verb with its output closed after one byte, in a repository with stale locks and NO_COLOR: no stack trace, Git’s exit codes', async () => {
  // A stale index lock and ref lock of a dead process of this machine (the
  // next command that wants them removes them), and one of another machine,
  // which must block with one line, not a trace.
  const dead = await new Promise<number>((resolve) => {
    const child = spawn('true');
    child.on('exit', () => resolve(child.pid!));
  });
  await fs.writeFile(path.join(repo.gitDir, 'index.lock'), `${dead} ${os.hostname()}\n`);
  await fs.writeFile(
    path.join(repo.gitDir, 'refs', 'heads', 'main.lock'),
    `${dead} another-machine\n`,
  );
  // A change larger than a pipe's buffer, so `diff` and `show` meet the closed pipe.
  await fs.writeFile(repo.path('a.txt'), `${'b\n'.repeat(50_000)}`);
  await fs.writeFile(repo.path('b.txt'), `${'b\n'.repeat(50_000)}`);
  try {
    await inParallel(PRINTING, 4, async (args) => {
      const line = ['node', CLI_PATH, ...args].map((a) => `'${a}'`).join(' ');
      // bash for PIPESTATUS: the CLI's own status, not head's.
      const script = `${line} 2>"$ERR" | head -c1 >/dev/null; echo \${PIPESTATUS[0]}`;
      const errFile = path.join(repo.root, `err-${args.join('-').replace(/\W/g, '_')}`);
      const piped = await collect(
        spawn('bash', ['-c', script], {
          cwd: repo.dir,
          env: { ...repo.env, NO_COLOR: '1', ERR: errFile, PATH: process.env['PATH'] },
        }),
      );
      const code = Number(piped.out.trim());
      const stderr = await fs.readFile(errFile, 'utf8');
      const label = `${args.join(' ')} | head -c1`;
      assert.doesNotMatch(stderr, /internal error|\n\s+at |EPIPE/, `${label}: ${stderr}`);
      assert.ok([0, 1, 128, 141].includes(code), `${label}: exit ${code}: ${stderr}`);
      assert.equal(stderr.includes('\x1b['), false, `${label}: colour with NO_COLOR`);
    });
    // The dead process's index lock goes when add wants it; the other
    // machine's ref lock stays and blocks the commit with one line.
    await fs.writeFile(repo.path('c.txt'), 'c\n');
    await repo.ok(['add', 'c.txt']);
    assert.equal(
      await fs.stat(path.join(repo.gitDir, 'index.lock')).catch(() => undefined),
      undefined,
    );
    const blocked = await repo.fails(['commit', '-q', '-m', 'c'], 128);
    assert.match(blocked.stderr, /cannot lock ref 'refs\/heads\/main': .*main\.lock exists/);
    assert.equal(blocked.stderr.trim().split('\n').length, 1, blocked.stderr);
  } finally {
    await fs.rm(path.join(repo.gitDir, 'refs', 'heads', 'main.lock'), { force: true });
    await fs.rm(repo.path('b.txt'), { force: true });
    await fs.writeFile(repo.path('a.txt'), 'a\n');
  }
});
