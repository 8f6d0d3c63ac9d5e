/**
 * The remote verbs' flags and edges: `remote` add / -v / rename / set-url /
 * get-url / remove, `clone --bare` and `--branch`, `push --force-with-lease`,
 * `push --force`, `fetch --depth`, `login` (file store, used by later
 * commands), the admin API that creates repositories, and the errors a user
 * meets (unknown remote, not a repository, non-empty clone target).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import { Ajv } from 'ajv';
import { schemas } from '../src/protocol/schemas.ts';
import { snapshot } from './git-twin.ts';
import { spawn } from 'node:child_process';
import { CLI_PATH, isolatedEnv, pseudoRandomBytes, runCli, TempRepo } from './helpers.ts';
import { createToken, useServerRoot, type ServerProcess } from './server.ts';

async function commit(repo: TempRepo, file: string, text: string, message: string) {
  await fs.writeFile(repo.path(file), text);
  await repo.ok(['add', file]);
  await repo.ok(['commit', '-q', '-m', message]);
}

describe('remote verbs', () => {
  const fixture = useServerRoot('cliremote', ['proj', 'art']);
  let root: string;
  let server: ServerProcess;
  let key: string;

  before(async () => {
    root = fixture.root;
    key = await createToken(root, 'alice', '*', 'admin');
    server = await fixture.serve();
  });

  test('remote add, -v, rename, set-url, get-url, remove', async () => {
    const repo = await TempRepo.create();
    fixture.track(repo);
    await repo.ok(['remote', 'add', 'origin', 'http://example.invalid/a']);
    await repo.ok(['remote', 'add', 'backup', '/srv/backup']);
    assert.equal((await repo.ok(['remote'])).out, 'backup\norigin\n');
    assert.equal(
      (await repo.ok(['remote', '-v'])).out,
      'backup\t/srv/backup (fetch)\nbackup\t/srv/backup (push)\n' +
        'origin\thttp://example.invalid/a (fetch)\norigin\thttp://example.invalid/a (push)\n',
    );
    await repo.fails(['remote', 'add', 'origin', 'x'], 128);
    await repo.fails(['remote', 'add', 'bad name', 'x'], 128);
    await repo.ok(['remote', 'rename', 'origin', 'upstream']);
    await repo.ok(['remote', 'set-url', 'upstream', 'http://example.invalid/b']);
    assert.equal(
      (await repo.ok(['remote', 'get-url', 'upstream'])).out,
      'http://example.invalid/b\n',
    );
    await repo.ok(['remote', 'remove', 'backup']);
    assert.deepEqual(JSON.parse((await repo.ok(['remote', '--json'])).out), [
      { name: 'upstream', url: 'http://example.invalid/b' },
    ]);
    await repo.fails(['remote', 'remove', 'backup'], 128);
    const unknown = await repo.fails(['fetch', 'nowhere'], 128);
    assert.match(unknown.stderr, /nowhere/);
    const missing = await repo.fails(['fetch', path.join(root, 'no-such-repo')], 128);
    assert.match(missing.stderr, /does not appear to be a mediagit repository/);
  });

  test('clone --branch, --bare, into a non-empty folder; fetch --depth', async () => {
    const a = (await TempRepo.create()).withEnv({ MEDIAGIT_TOKEN: key });
    fixture.track(a);
    await fs.writeFile(a.path('big.bin'), pseudoRandomBytes(5 * 1024 * 1024, 9, 'cli-remote'));
    await a.ok(['add', 'big.bin']);
    await commit(a, 'main.txt', 'main 1\n', 'm1');
    await commit(a, 'main.txt', 'main 2\n', 'm2');
    await a.ok(['remote', 'add', 'origin', server.url('proj')]);
    await a.ok(['push', '-q', '-u', 'origin', 'main']);
    await a.ok(['switch', '-q', '-c', 'feature']);
    await commit(a, 'feature.txt', 'feature\n', 'f1');
    await a.ok(['push', '-q', 'origin', 'feature']);

    const env = { ...isolatedEnv(root), MEDIAGIT_TOKEN: key };
    const target = path.join(root, 'work-feature');
    const cloned = await runCli(['clone', '-b', 'feature', server.url('proj'), target], {
      cwd: root,
      env,
    });
    assert.equal(cloned.code, 0, cloned.stderr);
    assert.equal(await fs.readFile(path.join(target, 'feature.txt'), 'utf8'), 'feature\n');
    const current = await runCli(['branch', '--show-current'], { cwd: target, env });
    assert.equal(current.out, 'feature\n');

    // A clone of main: `switch feature` creates it from origin/feature, tracking it.
    const mainClone = path.join(root, 'work-main');
    assert.equal(
      (await runCli(['clone', '-q', server.url('proj'), mainClone], { cwd: root, env })).code,
      0,
    );
    const switched = await runCli(['switch', 'feature'], { cwd: mainClone, env });
    assert.equal(switched.code, 0, switched.stderr);
    assert.match(switched.out, /branch 'feature' set up to track 'origin\/feature'/);
    assert.equal(await fs.readFile(path.join(mainClone, 'feature.txt'), 'utf8'), 'feature\n');
    assert.equal((await runCli(['pull', '-q'], { cwd: mainClone, env })).code, 0);
    const unset = await runCli(['branch', '--unset-upstream'], { cwd: mainClone, env });
    assert.equal(unset.code, 0, unset.stderr);
    assert.equal((await runCli(['pull', '-q'], { cwd: mainClone, env })).code, 128);
    const setBack = await runCli(['branch', '-u', 'origin/feature'], { cwd: mainClone, env });
    assert.equal(setBack.code, 0, setBack.stderr);
    assert.equal((await runCli(['pull', '-q'], { cwd: mainClone, env })).code, 0);
    const bogus = await runCli(['branch', '-u', 'origin/nope'], { cwd: mainClone, env });
    assert.equal(bogus.code, 128);

    const again = await runCli(['clone', server.url('proj'), target], { cwd: root, env });
    assert.equal(again.code, 128);
    assert.match(again.stderr, /already exists and is not an empty directory/);
    assert.equal(await fs.readFile(path.join(target, 'feature.txt'), 'utf8'), 'feature\n');

    const noBranch = await runCli(
      ['clone', '-b', 'nope', server.url('proj'), path.join(root, 'x')],
      {
        cwd: root,
        env,
      },
    );
    assert.equal(noBranch.code, 1);
    await assert.rejects(fs.stat(path.join(root, 'x')), 'a failed clone left its folder');

    const bare = path.join(root, 'mirror.mediagit');
    const bareClone = await runCli(['clone', '--bare', server.url('proj'), bare], {
      cwd: root,
      env,
    });
    assert.equal(bareClone.code, 0, bareClone.stderr);
    // A bare clone is itself a remote: clone from it by path.
    const fromBare = path.join(root, 'from-bare');
    const local = await runCli(['clone', '-b', 'feature', bare, fromBare], { cwd: root, env });
    assert.equal(local.code, 0, local.stderr);
    assert.deepEqual(await snapshot(fromBare), await snapshot(target));
    assert.equal((await fs.stat(path.join(fromBare, 'big.bin'))).size, 5 * 1024 * 1024);
    const repack = await runCli(['repack'], { cwd: bare, env });
    assert.equal(repack.code, 128);

    // fetch --depth 1 into an empty repository, then log shows one commit per tip.
    const shallow = (await TempRepo.create()).withEnv({ MEDIAGIT_TOKEN: key });
    fixture.track(shallow);
    await shallow.ok(['remote', 'add', 'origin', server.url('proj')]);
    await shallow.ok(['fetch', '-q', '--depth', '1', 'origin']);
    const log = JSON.parse((await shallow.ok(['log', '--json', 'origin/main'])).out) as unknown[];
    assert.equal(log.length, 1);
  });

  test('push --force-with-lease refuses a stale lease; --force overwrites', async () => {
    const env = { MEDIAGIT_TOKEN: key };
    const a = (await TempRepo.create()).withEnv(env);
    fixture.track(a);
    await commit(a, 'f.txt', 'one\n', 'one');
    await a.ok(['remote', 'add', 'origin', server.url('proj')]);
    await a.ok(['push', '-q', 'origin', 'main:refs/heads/lease']);
    const b = (await TempRepo.create()).withEnv(env);
    fixture.track(b);
    await b.ok(['remote', 'add', 'origin', server.url('proj')]);
    await b.ok(['fetch', '-q']);
    await b.ok(['reset', '-q', '--hard', 'origin/lease']);
    // A moves the branch on; B's lease (its remote-tracking ref) is now stale.
    await commit(a, 'f.txt', 'two\n', 'two');
    await a.ok(['push', '-q', 'origin', 'main:lease']);
    await commit(b, 'g.txt', 'b\n', 'b rewrites');
    const stale = await b.run(['push', '--json', '--force-with-lease', 'origin', 'main:lease']);
    assert.equal(stale.code, 1, stale.stderr);
    const parsed = JSON.parse(stale.out) as { refs: { ok: boolean; reason: string }[] };
    assert.deepEqual(
      parsed.refs.map((r) => [r.ok, r.reason]),
      [[false, 'stale']],
    );
    const ajv = new Ajv({ strict: false });
    const wire = {
      results: parsed.refs.map(
        ({ ref, ok, old, new: n, reason, message }: Record<string, unknown>) => ({
          ref,
          ok,
          old,
          new: n,
          reason,
          message,
        }),
      ),
    };
    assert.ok(ajv.validate(schemas.refUpdateResponse, wire), ajv.errorsText());
    // Plain push: non-fast-forward; after fetching, the lease is fresh and wins.
    assert.equal((await b.run(['push', 'origin', 'main:lease'])).code, 1);
    await b.ok(['fetch', '-q']);
    await b.ok(['push', '-q', '--force-with-lease', 'origin', 'main:lease']);
    await commit(a, 'f.txt', 'three\n', 'three');
    await a.ok(['push', '-q', '--force', 'origin', 'main:lease']);
  });

  test('login stores the key in a 0600 file that later commands use', async () => {
    const repo = await TempRepo.create();
    fixture.track(repo);
    const env = { MEDIAGIT_NO_KEYRING: '1' };
    const withEnv = repo.withEnv(env);
    await withEnv.ok(['remote', 'add', 'origin', server.url('proj')]);
    const denied = await withEnv.run(['fetch']);
    assert.equal(denied.code, 128);
    await withEnv.ok(['login', server.base], `${key}\n`);
    // Next to the global config (MEDIAGIT_CONFIG_GLOBAL in these tests).
    const file = path.join(repo.root, 'credentials.toml');
    const stat = await fs.stat(file);
    assert.equal(stat.mode & 0o777, 0o600);
    await withEnv.ok(['fetch', '-q']);
    await withEnv.fails(['login', 'ftp://nope'], 128);
    // A key on the command line works, with a warning that it is exposed.
    await fs.rm(file);
    const inArgs = await withEnv.ok(['login', '--token', key, server.base]);
    assert.match(inArgs.stderr, /^warning: a key given with --token is visible to other users/m);
    assert.doesNotMatch(inArgs.stderr + inArgs.out, new RegExp(key));
    await withEnv.ok(['fetch', '-q']);
  });

  test('login checks the key with the server, stores it per repository, and logout forgets it', async () => {
    const env = { MEDIAGIT_NO_KEYRING: '1' };
    const proj = (await TempRepo.create()).withEnv(env);
    fixture.track(proj);
    // Both repositories share one config folder, hence one credential store.
    const art = (await TempRepo.create()).withEnv({ ...proj.env, ...env });
    fixture.track(art);
    await proj.ok(['remote', 'add', 'origin', server.url('proj')]);
    await art.ok(['remote', 'add', 'origin', server.url('art')]);
    const projKey = await createToken(root, 'pat', 'proj', 'write');
    const artKey = await createToken(root, 'ann', 'art', 'read');
    const file = path.join(proj.root, 'credentials.toml');

    // A key the server does not know, or one for another repository: refused, nothing stored.
    const bogus = await proj.fails(
      ['login', server.url('proj')],
      128,
      'mgk_0123456789abcdef_' + 'A'.repeat(43),
    );
    assert.match(
      bogus.stderr,
      /^fatal: Authentication failed for '.*\/proj': .*invalid or revoked API key; nothing was stored$/m,
    );
    const wrongRepo = await proj.fails(['login', server.url('proj')], 128, artKey);
    assert.match(wrongRepo.stderr, /not valid for repository proj; nothing was stored/);
    await assert.rejects(fs.stat(file), { code: 'ENOENT' });

    // One key per repository: the second login does not replace the first.
    const first = await proj.ok(['login', server.url('proj')], `${projKey}\n`);
    assert.match(first.stderr, /Logged in to .*\/proj as pat \(write access to repository proj\)/);
    await art.ok(['login', `${server.url('art')}.git/info/lfs`], `${artKey}\n`);
    await proj.ok(['fetch', '-q']);
    await art.ok(['fetch', '-q']);
    const stored = await fs.readFile(file, 'utf8');
    assert.match(stored, /\/proj"\]/);
    assert.match(stored, /\/art"\]/);

    // The terminal prompt hides the key as it is typed.
    await proj.ok(['logout', server.url('proj')]);
    assert.equal((await proj.run(['fetch', '-q'])).code, 128);
    await proj.fails(['logout', server.url('proj')], 1);
    const command = [process.execPath, CLI_PATH, 'login', server.url('proj')]
      .map((a) => `'${a}'`)
      .join(' ');
    const child = spawn('script', ['-qec', command, '/dev/null'], {
      cwd: proj.dir,
      env: { ...proj.env, TERM: 'xterm' },
    });
    let shown = '';
    child.stderr.on('data', (data: Buffer) => (shown += data.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    await new Promise<void>((resolve) =>
      child.stdout.on('data', (data: Buffer) => {
        shown += data.toString();
        if (shown.includes('API key for')) resolve();
      }),
    );
    child.stdin.write(`${projKey}\r`);
    assert.equal(await exited, 0, shown);
    assert.match(shown, /API key for .*\/proj: /);
    assert.match(shown, /Logged in to .*\/proj as pat/);
    assert.ok(!shown.includes(projKey), `the key was echoed: ${shown}`);
    await proj.ok(['fetch', '-q']);
  });

  test('a repository with a working tree is a remote by its path: clone, pull, push (not to its checked-out branch)', async () => {
    const source = await TempRepo.create();
    fixture.track(source);
    await fs.writeFile(source.path('big.bin'), pseudoRandomBytes(3_000_000, 41));
    await source.ok(['add', 'big.bin']);
    await commit(source, 'a.txt', 'one\n', 'one');
    const copy = await TempRepo.create({ init: false });
    fixture.track(copy);
    const cloned = await runCli(['clone', '-q', source.dir, copy.dir], {
      cwd: copy.root,
      env: copy.env,
    });
    assert.equal(cloned.code, 0, cloned.stderr);
    assert.deepEqual(
      await fs.readFile(copy.path('big.bin')),
      await fs.readFile(source.path('big.bin')),
    );
    await commit(source, 'b.txt', 'two\n', 'two');
    await copy.ok(['pull', '-q']);
    assert.equal((await copy.ok(['log', '-1', '--format=%s'])).out, 'two\n');
    await commit(copy, 'c.txt', 'three\n', 'three');
    // Git's receive.denyCurrentBranch: the source's checked-out branch stays.
    const refused = await copy.fails(['push', 'origin', 'main'], 1);
    assert.match(
      refused.stderr,
      /! \[remote rejected\] +main -> main \(branch is currently checked out\)/,
    );
    await copy.ok(['push', '-q', 'origin', 'main:feature']);
    assert.equal((await source.ok(['log', '-1', '--format=%s', 'feature'])).out, 'three\n');
    assert.equal((await source.ok(['status', '--short'])).out, '');
  });

  test('the admin API creates a repository that can be pushed to at once', async () => {
    const created = await fetch(`${server.base}/admin/repos`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'fresh' }),
    });
    assert.equal(created.status, 201);
    const repo = (await TempRepo.create()).withEnv({ MEDIAGIT_TOKEN: key });
    fixture.track(repo);
    await commit(repo, 'a.txt', 'a\n', 'a');
    await repo.ok(['remote', 'add', 'origin', server.url('fresh')]);
    await repo.ok(['push', '-q', 'origin', 'main']);
    const readOnly = await createToken(root, 'viewer', '*', 'write');
    const refused = await fetch(`${server.base}/admin/repos`, {
      method: 'POST',
      headers: { authorization: `Bearer ${readOnly}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'other' }),
    });
    assert.equal(refused.status, 403);
  });
});
