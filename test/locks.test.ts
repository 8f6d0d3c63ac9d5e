/**
 * Locks that fit how studios work (docs/locks.md), end to end against one
 * real `mediagit serve`: per-branch locks (a lock on main does not block a
 * feature branch), the stock `git lfs locks` listing the same locks,
 * lockable files read-only until locked, the smart-lock rule refusing a
 * stale file with the commit to pull, `status` naming lock holders, and a
 * server repository configured for global locks.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { GitWorld } from './git-world.ts';
import { createToken, makeServerRoot, ServerProcess } from './server.ts';

interface ListedLock {
  id: string;
  path: string;
  owner: { name: string };
  ref?: { name: string };
}

const helper = (user: string, key: string): string =>
  `!f() { echo username=${user}; echo password=${key}; }; f`;

async function writable(file: string): Promise<boolean> {
  return ((await fs.stat(file)).mode & 0o222) !== 0;
}

describe('branch-aware locks and lockable files', () => {
  let world: GitWorld;
  let server: ServerProcess;
  let root: string;
  const keys: Record<string, string> = {};
  const as = (user: string) => ({ env: { MEDIAGIT_TOKEN: keys[user]! } });
  // The tests build on each other: run alone (a name filter), a later one
  // would find its repository unset and run in this project's folder.
  const inRepo = (dir: string | undefined): string => {
    assert.ok(dir, 'this test needs the repositories the earlier tests of this file make');
    return dir;
  };
  const mg = (args: string[], dir: string, user: string) =>
    world.mediagit(args, inRepo(dir), as(user));
  const mgRun = (args: string[], dir: string, user: string) =>
    world.run('mediagit', args, inRepo(dir), as(user));
  const head = async (dir: string) =>
    (
      JSON.parse((await world.mediagit(['log', '--json', '-n', '1'], dir)).out) as { id: string }[]
    )[0]!.id;
  /** The commit a branch of a server repository holds, read from the server's store. */
  const serverRef = async (repo: string, branch: string) =>
    (await fs.readFile(path.join(root, repo, 'refs', 'heads', branch), 'utf8')).trim();
  const clone = async (repo: string, dir: string, user: string): Promise<string> => {
    const target = world.path(dir);
    await mg(['clone', '-q', server.url(repo), target], world.root, user);
    return target;
  };
  const locksOf = async (dir: string, user: string, extra: string[] = []) =>
    (
      JSON.parse((await mg(['locks', '--json', ...extra], dir, user)).out) as {
        locks: ListedLock[];
      }
    ).locks;

  before(async () => {
    world = await GitWorld.create();
    root = world.path('server');
    await makeServerRoot(root, ['studio', 'shared', 'gitmedia']);
    for (const user of ['alice', 'bob', 'carol'])
      keys[user] = await createToken(root, user, '*', 'write');
    // The `shared` repository keeps one lock per path for every branch.
    await world.mediagit(['config', 'locks.scope', 'global'], path.join(root, 'shared'));
    server = await ServerProcess.start(root);
  });
  after(async () => {
    await server.stop();
    await world.cleanup();
  });

  let alice: string;
  let bob: string;
  let carol: string;

  it('a lock on main refuses Bob’s push to main and accepts his feature branch; git lfs locks lists the same locks', async () => {
    alice = world.path('alice');
    await fs.mkdir(path.join(alice, 'art'), { recursive: true });
    await world.mediagit(['init', '-q'], alice);
    await fs.writeFile(path.join(alice, 'art', 'hero.psd'), 'hero v1\n');
    await fs.writeFile(path.join(alice, 'readme.txt'), 'studio\n');
    await mg(['add', '.'], alice, 'alice');
    await mg(['commit', '-q', '-m', 'first'], alice, 'alice');
    await mg(['remote', 'add', 'origin', server.url('studio')], alice, 'alice');
    await mg(['push', '-q', '-u', 'origin', 'main'], alice, 'alice');
    bob = await clone('studio', 'bob', 'bob');
    carol = await clone('studio', 'carol', 'carol');

    assert.equal((await mg(['lock', 'art/hero.psd'], alice, 'alice')).out, 'Locked art/hero.psd\n');
    const [mainLock, ...none] = await locksOf(bob, 'bob');
    assert.deepEqual(none, []);
    assert.equal(mainLock!.path, 'art/hero.psd');
    assert.equal(mainLock!.owner.name, 'alice');
    assert.deepEqual(mainLock!.ref, { name: 'refs/heads/main' });
    // Taken on main: Bob cannot lock it there.
    const taken = await mgRun(['lock', 'art/hero.psd'], bob, 'bob');
    assert.equal(taken.code, 1);
    assert.match(taken.stderr, /already locked by alice/);

    // Bob changes it on a feature branch and may lock it there: same path, other branch.
    await mg(['switch', '-q', '-c', 'feature'], bob, 'bob');
    await mg(['lock', 'art/hero.psd'], bob, 'bob');
    await fs.writeFile(path.join(bob, 'art', 'hero.psd'), 'hero by bob\n');
    await mg(['commit', '-q', '-a', '-m', 'bob paints'], bob, 'bob');
    await mg(['push', '-q', 'origin', 'feature'], bob, 'bob');
    const both = await locksOf(carol, 'carol');
    assert.deepEqual(
      both.map((l) => [l.path, l.ref?.name, l.owner.name]),
      [
        ['art/hero.psd', 'refs/heads/feature', 'bob'],
        ['art/hero.psd', 'refs/heads/main', 'alice'],
      ],
    );
    const table = (await mg(['locks'], carol, 'carol')).out;
    assert.match(table, /^art\/hero\.psd\tfeature\tbob\tID:[0-9a-f]+$/m);
    assert.match(table, /^art\/hero\.psd\tmain {3}\talice\tID:[0-9a-f]+$/m);
    assert.deepEqual(
      (await locksOf(carol, 'carol', ['--ref', 'main'])).map((l) => l.owner.name),
      ['alice'],
    );

    // The same change on main is refused: Alice holds main's lock.
    await mg(['switch', '-q', 'main'], bob, 'bob');
    await mg(['merge', '-q', 'feature'], bob, 'bob');
    const serverMain = await serverRef('studio', 'main');
    assert.equal(serverMain, await head(alice));
    const refused = await mgRun(['push', 'origin', 'main'], bob, 'bob');
    assert.equal(refused.code, 1, refused.stderr);
    assert.match(refused.stderr, /locked by others: art\/hero\.psd \(alice\)/);
    assert.equal(await serverRef('studio', 'main'), serverMain);

    // The stock git-lfs client sees the same locks (it has no notion of their refs).
    const git = world.path('git-client');
    await world.git(['init', '-q', git], world.root);
    await world.git(['config', 'lfs.url', `${server.url('studio')}.git/info/lfs`], git);
    await world.git(['config', 'credential.helper', helper('carol', keys['carol']!)], git);
    const stock = JSON.parse(
      (await world.git(['lfs', 'locks', '--json'], git)).out,
    ) as ListedLock[];
    assert.deepEqual(
      stock.map((l) => [l.id, l.path, l.owner.name]).sort(),
      both.map((l) => [l.id, l.path, l.owner.name]).sort(),
    );
    // git lfs lock sends its current branch: the lock it takes holds that branch.
    await world.git(['commit', '-q', '--allow-empty', '-m', 'start'], git);
    await world.git(['lfs', 'lock', 'readme.txt'], git);
    const [stockLock] = (await locksOf(bob, 'bob')).filter((l) => l.path === 'readme.txt');
    assert.deepEqual(
      [stockLock?.owner.name, stockLock?.ref],
      ['carol', { name: 'refs/heads/main' }],
    );
    await world.git(['lfs', 'unlock', 'readme.txt'], git);
    await mg(['unlock', '--ref', 'feature', 'art/hero.psd'], bob, 'bob');
  });

  it('lockable files are read-only after checkout, writable after lock, read-only after unlock', async () => {
    const out = (await mg(['track', '--lockable', '*.psd'], carol, 'carol')).out;
    assert.equal(out, 'Tracking "*.psd" (lockable)\n');
    assert.deepEqual(JSON.parse((await mg(['track', '--list', '--json'], carol, 'carol')).out), {
      lockable: ['*.psd'],
    });
    const hero = path.join(carol, 'art', 'hero.psd');
    const readme = path.join(carol, 'readme.txt');
    assert.equal(await writable(hero), false, 'track --lockable makes checked-out files read-only');
    assert.equal(await writable(readme), true);
    // A checkout writing the file writes it read-only.
    await mg(['fetch', '-q'], carol, 'carol');
    await mg(['switch', '-q', '-c', 'feature', 'origin/feature'], carol, 'carol');
    assert.equal(await fs.readFile(hero, 'utf8'), 'hero by bob\n');
    assert.equal(await writable(hero), false);
    await mg(['lock', 'art/hero.psd'], carol, 'carol');
    assert.equal(await writable(hero), true, 'writable after lock');
    await mg(['unlock', 'art/hero.psd'], carol, 'carol');
    assert.equal(await writable(hero), false, 'read-only after unlock');
    // Locked, edited, committed and pushed: the edit is published, the file
    // goes read-only again (the lock stays until unlock; lock again to edit).
    await mg(['lock', 'art/hero.psd'], carol, 'carol');
    await fs.writeFile(hero, 'hero by carol\n');
    await fs.writeFile(readme, 'notes by carol\n');
    await mg(['commit', '-q', '-a', '-m', 'carol paints'], carol, 'carol');
    const pushed = await mg(['push', 'origin', 'feature'], carol, 'carol');
    assert.match(
      pushed.stderr,
      /now read-only \(`mediagit lock` to edit again\): art\/hero\.psd\n/,
    );
    assert.equal(await writable(hero), false, 'read-only after push');
    assert.equal(await writable(readme), true, 'not lockable: untouched');
    await mg(['lock', 'art/hero.psd'], carol, 'carol');
    assert.equal(await writable(hero), true, 'lock (held already) makes it writable again');
    // A file still being edited when the push ran stays writable.
    await fs.writeFile(hero, 'hero by carol, take 2\n');
    await mg(['commit', '-q', '-a', '-m', 'take 2'], carol, 'carol');
    await fs.writeFile(hero, 'hero by carol, take 3 (unsaved work)\n');
    const again = await mg(['push', 'origin', 'feature'], carol, 'carol');
    assert.doesNotMatch(again.stderr, /read-only/);
    assert.equal(await writable(hero), true, 'modified since the commit: left writable');
    await mg(['restore', 'art/hero.psd'], carol, 'carol');
    await mg(['unlock', 'art/hero.psd'], carol, 'carol');
    await mg(['switch', '-q', 'main'], carol, 'carol');
    assert.equal(await writable(hero), false);
    assert.equal(await writable(readme), true);
    // status is clean: the permission change is no content change.
    assert.equal((await mg(['status', '--porcelain'], carol, 'carol')).out, '');
  });

  it('locking a file changed on the branch since the local version is refused, naming the commit to pull', async () => {
    // Alice (who holds main's lock) pushes a new version, then releases the lock.
    await fs.writeFile(path.join(alice, 'art', 'hero.psd'), 'hero v2\n');
    await mg(['commit', '-q', '-a', '-m', 'hero v2'], alice, 'alice');
    await mg(['push', '-q', 'origin', 'main'], alice, 'alice');
    await mg(['unlock', 'art/hero.psd'], alice, 'alice');
    const tip = await head(alice);

    const stale = await mgRun(['lock', 'art/hero.psd'], carol, 'carol');
    assert.equal(stale.code, 1);
    assert.equal(
      stale.stderr,
      `error: art/hero.psd changed on main since your version; pull ${tip} first\n`,
    );
    assert.deepEqual(await locksOf(carol, 'carol'), []);
    // A file that did not change may be locked from the old commit.
    await mg(['lock', 'readme.txt'], carol, 'carol');
    await mg(['unlock', 'readme.txt'], carol, 'carol');
    // After pulling, the lock is granted.
    await mg(['pull', '-q'], carol, 'carol');
    await mg(['lock', 'art/hero.psd'], carol, 'carol');
    assert.deepEqual(
      (await locksOf(alice, 'alice')).map((l) => [l.path, l.owner.name]),
      [['art/hero.psd', 'carol']],
    );
    // Ahead of the tip (a commit on top of it, which the server has): not stale,
    // so the answer is Carol's lock, not a request to pull.
    await fs.writeFile(path.join(alice, 'art', 'hero.psd'), 'hero v2.1\n');
    await mg(['commit', '-q', '-a', '-m', 'hero v2.1'], alice, 'alice');
    await mg(['push', '-q', 'origin', 'main:refs/heads/alice-wip'], alice, 'alice');
    const ahead = await mgRun(['lock', 'art/hero.psd'], alice, 'alice');
    assert.equal(ahead.code, 1);
    assert.match(ahead.stderr, /^error: art\/hero\.psd is already locked by carol/);
  });

  it('status names who holds the lock of each modified lockable file', async () => {
    await mg(['track', '--lockable', '*.psd'], alice, 'alice');
    const hero = path.join(alice, 'art', 'hero.psd');
    await fs.chmod(hero, 0o644);
    await fs.writeFile(hero, 'hero v3 by alice\n');
    await fs.writeFile(path.join(alice, 'readme.txt'), 'changed\n');
    const status = (await mg(['status'], alice, 'alice')).out;
    assert.match(status, /\tmodified: {3}art\/hero\.psd \(locked by carol\)\n/);
    assert.match(status, /\tmodified: {3}readme\.txt\n/);
    // The machine-readable formats stay Git's.
    assert.equal(
      (await mg(['status', '--porcelain'], alice, 'alice')).out,
      ' M art/hero.psd\n M readme.txt\n',
    );
    // No server answering: no holder, no error.
    await mg(['remote', 'set-url', 'origin', 'http://127.0.0.1:9/studio'], alice, 'alice');
    const offline = await mgRun(['status'], alice, 'alice');
    assert.equal(offline.code, 0, offline.stderr);
    assert.match(offline.out, /\tmodified: {3}art\/hero\.psd\n/);
    assert.equal(offline.stderr, '');
    // A server that drops every connection: status asks once, not again
    // and again (a dropped connection is retried by lock and unlock).
    let connections = 0;
    const dropping = net.createServer((socket) => {
      connections++;
      socket.destroy();
    });
    await new Promise<void>((resolve) => dropping.listen(0, '127.0.0.1', resolve));
    try {
      const port = (dropping.address() as net.AddressInfo).port;
      await mg(['remote', 'set-url', 'origin', `http://127.0.0.1:${port}/studio`], alice, 'alice');
      const dropped = await mgRun(['status'], alice, 'alice');
      assert.equal(dropped.code, 0, dropped.stderr);
      assert.match(dropped.out, /\tmodified: {3}art\/hero\.psd\n/);
      assert.equal(connections, 1, `status connected ${connections} times`);
    } finally {
      dropping.close();
    }
    await mg(['remote', 'set-url', 'origin', server.url('studio')], alice, 'alice');
    await mg(['unlock', 'art/hero.psd'], carol, 'carol');
  });

  it('a Git repository using the filter: lockable files read-only after git clone, checkout and pull, writable after lock; pre-push checks the branch pushed to', async () => {
    const gitOrigin = world.path('git-origin.git');
    const erin = world.path('erin');
    const lfsUrl = `${server.url('gitmedia')}.git/info/lfs`;
    const tokenOf = (user: string) => ({ env: { MEDIAGIT_TOKEN: keys[user]! } });
    await world.git(['init', '-q', '--bare', gitOrigin], world.root);
    await world.git(['init', '-q', erin], world.root);
    await world.mediagit(['install', '--local'], erin);
    for (const hook of ['pre-push', 'post-checkout', 'post-merge']) {
      assert.match(
        await fs.readFile(path.join(erin, '.git', 'hooks', hook), 'utf8'),
        new RegExp(`exec mediagit ${hook} "\\$@"`),
      );
    }
    await world.git(['remote', 'add', 'origin', gitOrigin], erin);
    await world.mediagit(['track', '--lockable', '*.psd'], erin);
    await world.git(['config', '--file', '.lfsconfig', 'lfs.url', lfsUrl], erin);
    await fs.writeFile(path.join(erin, 'scene.psd'), 'scene v1\n');
    await fs.writeFile(path.join(erin, 'notes.txt'), 'notes\n');
    await world.git(['add', '.'], erin);
    await world.git(['commit', '-q', '-m', 'scene'], erin);
    await world.git(['push', '-q', 'origin', 'main'], erin, tokenOf('alice'));

    // A plain git clone: the filter installs the hooks while it checks out,
    // and Git's post-checkout makes the lockable file read-only.
    const frank = world.path('frank');
    await world.cloneWithFilter(gitOrigin, frank, tokenOf('bob'));
    await world.mediagit(['install', '--local'], frank);
    const scene = path.join(frank, 'scene.psd');
    assert.equal(await fs.readFile(scene, 'utf8'), 'scene v1\n');
    assert.equal(await writable(scene), false, 'read-only after git clone');
    assert.equal(await writable(path.join(frank, 'notes.txt')), true);
    await world.mediagit(['lock', 'scene.psd'], frank, tokenOf('bob'));
    assert.equal(await writable(scene), true, 'writable after lock');
    await fs.writeFile(scene, 'scene v2 by frank\n');
    await world.git(['commit', '-q', '-a', '-m', 'v2'], frank);
    // His own lock: the push goes through.
    await world.git(['push', '-q', 'origin', 'main'], frank, tokenOf('bob'));
    await world.mediagit(['unlock', 'scene.psd'], frank, tokenOf('bob'));
    assert.equal(await writable(scene), false, 'read-only after unlock');

    // git pull writes the new version: post-merge makes it read-only.
    const erinScene = path.join(erin, 'scene.psd');
    assert.equal(await writable(erinScene), true, 'Erin made it: still writable');
    await world.git(['pull', '-q', 'origin', 'main'], erin, tokenOf('alice'));
    assert.equal(await fs.readFile(erinScene, 'utf8'), 'scene v2 by frank\n');
    assert.equal(await writable(erinScene), false, 'read-only after git pull');
    await world.mediagit(['lock', 'scene.psd'], erin, tokenOf('alice'));
    assert.equal(await writable(erinScene), true);

    // Erin holds main's lock. Frank's change on a feature branch is pushed
    // (the lock is main's); the same change pushed to main is refused.
    await world.git(['switch', '-q', '-c', 'feature'], frank);
    await fs.chmod(scene, 0o644);
    await fs.writeFile(scene, 'scene v3 by frank\n');
    await world.git(['commit', '-q', '-a', '-m', 'v3'], frank);
    await world.git(['push', '-q', 'origin', 'feature'], frank, tokenOf('bob'));
    const refused = await world.run(
      'git',
      ['push', 'origin', 'feature:main'],
      frank,
      tokenOf('bob'),
    );
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /locked by others:\n {2}scene\.psd \(locked by alice\)/);
    assert.equal(
      (await world.git(['rev-parse', 'main'], gitOrigin)).out,
      (await world.git(['rev-parse', 'main'], erin)).out,
    );
    // A branch checkout rewriting the file: read-only again (post-checkout).
    assert.equal(await writable(scene), true);
    await world.git(['switch', '-q', 'main'], frank);
    assert.equal(await fs.readFile(scene, 'utf8'), 'scene v2 by frank\n');
    assert.equal(await writable(scene), false, 'read-only after git switch');
    // A file checkout (paths unknown to the hook): the restored file too.
    await fs.chmod(scene, 0o644);
    await fs.writeFile(scene, 'scratch\n');
    await world.git(['checkout', '--', 'scene.psd'], frank);
    assert.equal(await writable(scene), false, 'read-only after git checkout -- <file>');
    await world.mediagit(['unlock', 'scene.psd'], erin, tokenOf('alice'));
  });

  it('a repository with locks.scope = "global" locks a path on every branch', async () => {
    const a = world.path('shared-alice');
    await fs.mkdir(a);
    await world.mediagit(['init', '-q'], a);
    await fs.writeFile(path.join(a, 'level.blend'), 'level v1\n');
    await mg(['add', '.'], a, 'alice');
    await mg(['commit', '-q', '-m', 'level'], a, 'alice');
    await mg(['remote', 'add', 'origin', server.url('shared')], a, 'alice');
    await mg(['push', '-q', '-u', 'origin', 'main'], a, 'alice');
    const b = await clone('shared', 'shared-bob', 'bob');
    await mg(['lock', 'level.blend'], a, 'alice');
    const [lock] = await locksOf(b, 'bob');
    assert.equal(lock!.ref, undefined);
    assert.match((await mg(['locks'], b, 'bob')).out, /^level\.blend\t\*\talice\tID:/m);
    // A feature branch changing it is refused too.
    await mg(['switch', '-q', '-c', 'feature'], b, 'bob');
    await fs.writeFile(path.join(b, 'level.blend'), 'level by bob\n');
    await mg(['commit', '-q', '-a', '-m', 'bob'], b, 'bob');
    const refused = await mgRun(['push', 'origin', 'feature'], b, 'bob');
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /locked by others: level\.blend \(alice\)/);
    // And it cannot be locked on another branch.
    const taken = await mgRun(['lock', 'level.blend'], b, 'bob');
    assert.equal(taken.code, 1);
    assert.match(taken.stderr, /already locked by alice/);
  });
});
