/**
 * `gc` and `reflog expire` on real repositories through the CLI: what is
 * reclaimed, what must survive (refs, reflogs, index, stash, a stopped
 * merge), the grace period, `gc --auto`, leftovers of dead processes, and
 * safety against a concurrent `add` and against gc being killed.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { objectIdOf, type ObjectId } from '../src/odb/object-id.ts';
import { readCommit } from '../src/repo/tree-ops.ts';
import { Refs } from '../src/repo/refs.ts';
import { Repository } from '../src/repo/repository.ts';
import { storedBytes } from '../src/repo/gc.ts';
import { gcLockTarget, writersDir } from '../src/odb/gc-guard.ts';
import {
  objectsLayout,
  pseudoRandomBytes,
  readCommitFiles,
  removeStaleLocks,
  runCli,
  TempRepo,
  writePseudoRandomFile,
} from './helpers.ts';

const MiB = 1024 * 1024;

/** Every commit reachable from any ref or HEAD, each file read back and checked. */
async function readEverything(dir: string): Promise<number> {
  const repo = await Repository.discover(dir);
  const refs = new Refs(repo);
  const tips = (await refs.list('refs/')).map((ref) => ref.id);
  const head = (await refs.head()).id;
  if (head) tips.push(head);
  const seen = new Set<ObjectId>();
  let files = 0;
  while (tips.length > 0) {
    const id = tips.pop()!;
    if (seen.has(id)) continue;
    seen.add(id);
    const object = await repo.objects.read(id);
    if (object.type !== 'commit') continue;
    files += (await readCommitFiles(dir, id)).size;
    tips.push(...(await readCommit(repo.objects, id)).parents);
  }
  return files;
}

async function gcJson(repo: TempRepo, args: string[] = []): Promise<Record<string, unknown>> {
  return JSON.parse((await repo.ok(['gc', '--json', ...args])).out) as Record<string, unknown>;
}

async function stored(dir: string): Promise<number> {
  return storedBytes(await Repository.discover(dir));
}

describe('gc', () => {
  let repo: TempRepo;
  before(async () => {
    repo = await TempRepo.create({ chunkThreshold: 256 * 1024 });
  });
  after(async () => repo.cleanup());

  test('reclaims the versions of deleted branches down to what a fresh clone of the surviving refs stores', async () => {
    // Five versions of a large file: two on main, three on two branches that are then deleted.
    await writePseudoRandomFile(repo.path('video.bin'), 6 * MiB, 1);
    await fs.writeFile(repo.path('notes.txt'), 'v1\n');
    await repo.ok(['add', '.']);
    await repo.ok(['commit', '-q', '-m', 'v1']);
    for (const [branch, seeds] of [
      ['take-a', [2, 3]],
      ['take-b', [4]],
    ] as const) {
      await repo.ok(['switch', '-q', '-c', branch, 'main']);
      for (const seed of seeds) {
        await writePseudoRandomFile(repo.path('video.bin'), 6 * MiB, seed);
        await repo.ok(['add', 'video.bin']);
        await repo.ok(['commit', '-q', '-m', `take ${seed}`]);
      }
      await repo.ok(['switch', '-q', 'main']);
      await repo.ok(['branch', '-D', branch]);
    }
    await writePseudoRandomFile(repo.path('video.bin'), 6 * MiB, 5);
    await repo.ok(['commit', '-q', '-a', '-m', 'v2']);
    const before = await stored(repo.dir);

    // The reflogs still name the deleted work: gc keeps it until they expire.
    const kept = await gcJson(repo, ['--prune=now']);
    assert.equal(kept['prunedObjects'], 0, 'reflog entries keep deleted branches alive');
    assert.ok((await stored(repo.dir)) > before * 0.9);

    await repo.ok(['reflog', 'expire', '--expire-unreachable=now', '--all']);
    const result = await gcJson(repo, ['--prune=now']);
    assert.ok((result['prunedObjects'] as number) > 0);
    const after = await stored(repo.dir);

    const clone = path.join(repo.root, 'clone');
    const cloned = await runCli(['clone', '-q', repo.dir, clone], {
      cwd: repo.root,
      env: repo.env,
    });
    assert.equal(cloned.code, 0, cloned.stderr);
    const fresh = await stored(clone);
    assert.ok(
      Math.abs(after - fresh) <= fresh * 0.02,
      `after gc ${after} bytes, a fresh clone ${fresh}: more than 2% apart`,
    );
    assert.ok(after < before * 0.5, `${before} -> ${after}: three of five versions were garbage`);
    assert.equal(await readEverything(repo.dir), 4, 'two commits of two files each on main');
    // A second gc finds nothing to do and keeps the single pack.
    const again = await gcJson(repo, ['--prune=now']);
    assert.equal(again['prunedObjects'], 0);
    assert.equal(again['bytesAfter'], again['bytesBefore']);
    // Plain gc packs the small objects and leaves large chunks loose; --aggressive packs all.
    for (const file of await looseFiles(repo.gitDir)) {
      assert.ok(file.size >= 256 * 1024, `a ${file.size}-byte object was left loose`);
    }
    await repo.ok(['gc', '-q', '--aggressive']);
    const layout = await objectsLayout(repo.gitDir);
    assert.equal(layout.loose, 0);
    assert.equal(layout.pack.length, 2, 'one pack and its index');
    assert.equal(await readEverything(repo.dir), 4);
  });

  test('keeps what the index, a stash and a stopped merge name; prunes unreachable objects only after the grace period', async () => {
    // Stashed.
    await fs.writeFile(repo.path('notes.txt'), 'stashed edit\n');
    await repo.ok(['stash', 'push', '-q', '-m', 'keep me']);
    // Staged, never committed.
    await fs.writeFile(repo.path('staged.txt'), 'only in the index\n');
    await repo.ok(['add', 'staged.txt']);
    // Unreachable: added, then unstaged again.
    const orphanText = 'a blob nothing will reference\n';
    await fs.writeFile(repo.path('orphan.txt'), orphanText);
    await repo.ok(['add', 'orphan.txt']);
    await repo.ok(['rm', '-q', '--cached', 'orphan.txt']);
    await fs.rm(repo.path('orphan.txt'));
    const orphan = objectIdOf('blob', Buffer.from(orphanText));
    const orphanPath = path.join(repo.gitDir, 'objects', orphan.slice(0, 2), orphan.slice(2));
    await fs.access(orphanPath);

    const defaults = await gcJson(repo);
    assert.equal(defaults['prunedObjects'], 0, 'a fresh unreachable object is within two weeks');
    await fs.access(orphanPath);

    const threeWeeksAgo = new Date(Date.now() - 21 * 24 * 3600 * 1000);
    await fs.utimes(orphanPath, threeWeeksAgo, threeWeeksAgo);
    const dry = await gcJson(repo, ['--dry-run']);
    assert.equal(dry['prunedObjects'], 1);
    await fs.access(orphanPath);
    const pruned = await gcJson(repo);
    assert.equal(pruned['prunedObjects'], 1);
    await assert.rejects(fs.access(orphanPath));

    await repo.ok(['gc', '-q', '--prune=now']);
    const status = await repo.status();
    assert.ok(JSON.stringify(status).includes('staged.txt'), 'the staged file is still staged');
    await repo.ok(['commit', '-q', '-m', 'staged']);
    await repo.ok(['stash', 'pop', '-q']);
    assert.equal(await fs.readFile(repo.path('notes.txt'), 'utf8'), 'stashed edit\n');
    await repo.ok(['checkout', '-q', '--', 'notes.txt']);

    // A merge stopped on a conflict: theirs is only named by MERGE_HEAD.
    await repo.ok(['switch', '-q', '-c', 'theirs']);
    await fs.writeFile(repo.path('notes.txt'), 'theirs\n');
    await repo.ok(['commit', '-q', '-a', '-m', 'theirs']);
    const theirs = (await repo.head()).id!;
    await repo.ok(['switch', '-q', 'main']);
    await fs.writeFile(repo.path('notes.txt'), 'ours\n');
    await repo.ok(['commit', '-q', '-a', '-m', 'ours']);
    await repo.ok(['branch', '-D', 'theirs']);
    await repo.fails(['merge', theirs], 1);
    await repo.ok(['reflog', 'expire', '--expire-unreachable=now', '--all']);
    await repo.ok(['gc', '-q', '--prune=now']);
    assert.equal(
      (await readCommitFiles(repo.dir, theirs)).size,
      3,
      'the commit being merged stays whole',
    );
    await repo.ok(['merge', '--abort']);
    await repo.ok(['reflog', 'expire', '--expire-unreachable=now', '--all']);
    await repo.ok(['gc', '-q', '--prune=now']);
    // (Through the CLI: a library `has` here would register this test
    // process as a writer, and gc waits for writers to exit.)
    const shown = await repo.fails(['show', '--stat', theirs], 128);
    assert.match(
      shown.stderr,
      /bad revision|unknown revision|missing|not/i,
      'aborted: nothing names it now',
    );
  });

  test('gc --auto runs when loose objects pass gc.auto, and not before', async () => {
    const auto = (await TempRepo.create()).withEnv({ MEDIAGIT_AUTO_GC: '1' });
    try {
      await auto.ok(['config', 'gc.auto', '1']);
      await auto.ok(['config', 'gc.autoDetach', 'false']);
      await fs.writeFile(auto.path('a.txt'), 'a\n');
      await auto.ok(['add', 'a.txt']);
      // Not needed yet: no loose object in the sampled folder objects/17.
      assert.equal((await auto.run(['gc', '--auto'])).stderr, '');
      // A file whose blob lands in objects/17, as Git's tests craft one.
      let content = '';
      for (let i = 0; ; i++) {
        content = `sample ${i}\n`;
        if (objectIdOf('blob', Buffer.from(content)).startsWith('17')) break;
      }
      await fs.writeFile(auto.path('b.txt'), content);
      await auto.ok(['add', 'b.txt']);
      const committed = await auto.ok(['commit', '-m', 'two files']);
      assert.match(committed.stderr, /Auto packing the repository/);
      const layout = await objectsLayout(auto.gitDir);
      assert.equal(layout.loose, 0, 'the commit packed every loose object');
      assert.equal(layout.pack.length, 2, 'one pack and its index');
      await auto.ok(['config', 'gc.auto', '0']);
      await fs.writeFile(auto.path('c.txt'), content + 'more\n');
      await auto.ok(['add', 'c.txt']);
      assert.doesNotMatch((await auto.ok(['commit', '-m', 'three'])).stderr, /Auto packing/);
    } finally {
      await auto.cleanup();
    }
  });

  test('removes temp files and locks of dead processes, not of live ones', async () => {
    const dead = await deadPid();
    const tmp = path.join(repo.gitDir, 'tmp');
    await fs.mkdir(tmp, { recursive: true });
    const deadTemp = path.join(tmp, `checkout-${dead}-0123456789ab`);
    const liveTemp = path.join(tmp, `checkout-${process.pid}-0123456789ab`);
    await fs.mkdir(deadTemp);
    await fs.writeFile(path.join(deadTemp, 'part'), 'x');
    await fs.mkdir(liveTemp);
    const deadLock = path.join(repo.gitDir, 'refs', 'heads', 'ghost.lock');
    await fs.writeFile(deadLock, `${dead} ${os.hostname()}\n`);
    const liveLock = path.join(repo.gitDir, 'refs', 'heads', 'busy.lock');
    await fs.writeFile(liveLock, `${process.pid} ${os.hostname()}\n`);
    const result = await gcJson(repo);
    assert.equal(result['tempsRemoved'], 1);
    assert.equal(result['locksRemoved'], 1);
    await assert.rejects(fs.access(deadTemp));
    await assert.rejects(fs.access(deadLock));
    await fs.access(liveTemp);
    await fs.access(liveLock);
    await fs.rm(liveTemp, { recursive: true });
    await fs.rm(liveLock);
  });

  test('a writer waits while a live gc holds gc.lock, and a second gc is refused', async () => {
    const lock = `${gcLockTarget(path.join(repo.gitDir, 'objects'))}.lock`;
    await fs.writeFile(lock, `${process.pid} ${os.hostname()}\n`);
    try {
      const second = await repo.fails(['gc'], 128);
      assert.match(second.stderr, /another gc is running/);
      await fs.writeFile(repo.path('waits.txt'), 'written while gc holds its lock\n');
      const add = repo.spawn(['add', 'waits.txt']);
      const exited = new Promise<number | null>((resolve) => add.on('exit', resolve));
      await new Promise((resolve) => setTimeout(resolve, 1500));
      assert.equal(add.exitCode, null, 'add must wait for gc to finish deleting');
      await fs.rm(lock);
      assert.equal(await exited, 0);
    } finally {
      await fs.rm(lock, { force: true });
    }
    assert.ok(JSON.stringify(await repo.status()).includes('waits.txt'));
    // The writer's registration went with it.
    const left = await fs.readdir(writersDir(path.join(repo.gitDir, 'objects'))).catch(() => []);
    assert.deepEqual(left, []);
  });
});

describe('gc under fire', () => {
  let repo: TempRepo;
  before(async () => {
    repo = await TempRepo.create({ chunkThreshold: 256 * 1024 });
    await writePseudoRandomFile(repo.path('base.bin'), 8 * MiB, 100);
    await repo.ok(['add', 'base.bin']);
    await repo.ok(['commit', '-q', '-m', 'base']);
  });
  after(async () => repo.cleanup());

  test('gc --prune=now racing add + commit never loses what the commit references', async () => {
    for (let round = 0; round < 4; round++) {
      // An unreachable version for gc to find, then a new one being added.
      await writePseudoRandomFile(repo.path('race.bin'), 24 * MiB, 200 + round);
      await repo.ok(['add', 'race.bin']);
      await repo.ok(['reset', '-q']);
      await writePseudoRandomFile(repo.path('race.bin'), 24 * MiB, 300 + round);
      const delay = (round * 137) % 400;
      const adding = (async () => {
        await repo.ok(['add', 'race.bin']);
        await repo.ok(['commit', '-q', '-m', `round ${round}`]);
      })();
      await new Promise((resolve) => setTimeout(resolve, delay));
      const collecting = repo.ok(['gc', '-q', '--prune=now']);
      await Promise.all([adding, collecting]);
      assert.equal(await readEverything(repo.dir), 1 + 2 * (round + 1), `round ${round}`);
    }
  });

  test('gc waits for a writer between its first object write and its ref update, then keeps what the ref names', async () => {
    // A writer that stores a blob (aged, so the prune date alone would not
    // save it), then takes its time before a ref names it: the window in
    // which a gc marking meanwhile would judge the blob garbage.
    const src = (file: string): string =>
      JSON.stringify(new URL(`../src/${file}`, import.meta.url).href);
    const script = `
      import { Repository } from ${src('repo/repository.ts')};
      import { Refs } from ${src('repo/refs.ts')};
      import { encodeTree } from ${src('odb/tree.ts')};
      import { encodeCommit, signatureAt } from ${src('odb/commit.ts')};
      import fs from 'node:fs/promises';
      const repo = await Repository.discover(process.cwd());
      const data = Buffer.from('held by a slow writer ' + process.pid);
      const blob = (await repo.objects.write('blob', data)).id;
      const old = new Date(Date.now() - 3600_000);
      await fs.utimes(repo.objects.pathOf(blob), old, old);
      process.stdout.write('ready\\n');
      await new Promise((resolve) => setTimeout(resolve, 2500));
      const tree = (await repo.objects.write('tree', encodeTree([{ name: 'held.txt', mode: '100644', kind: 'blob', id: blob, size: data.length }]))).id;
      const who = signatureAt('W', 'w@example.com', new Date());
      const commit = (await repo.objects.write('commit', encodeCommit({ tree, parents: [], author: who, committer: who, message: 'held' }))).id;
      await new Refs(repo).update('refs/heads/held', commit, { message: 'held' });
    `;
    const writer = spawn(process.execPath, ['--input-type=module', '-e', script], {
      cwd: repo.dir,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const exited = new Promise<number | null>((resolve) => writer.on('exit', resolve));
    await new Promise<void>((resolve) => writer.stdout!.once('data', () => resolve()));
    await repo.ok(['gc', '-q', '--prune=now']);
    assert.equal(await exited, 0);
    const held = (
      await readCommitFiles(repo.dir, (await refIds(repo.dir))['refs/heads/held']!)
    ).get('held.txt');
    assert.ok(held, 'the held commit reads back whole');
    await repo.ok(['branch', '-D', 'held']);
  });

  test('gc killed at random points leaves every reachable file readable', async () => {
    for (let round = 0; round < 5; round++) {
      await writePseudoRandomFile(repo.path('kill.bin'), 16 * MiB, 400 + round);
      await repo.ok(['add', 'kill.bin']);
      await repo.ok(['commit', '-q', '-m', `kill ${round}`]);
      await fs.writeFile(repo.path('loose.txt'), pseudoRandomBytes(4096, round));
      await repo.ok(['add', 'loose.txt']);
      await repo.ok(['commit', '-q', '--amend', '-m', `kill ${round} amended`]);
      await repo.ok(['reflog', 'expire', '--expire-unreachable=now', '--all']);
      const child = repo.spawn(['gc', '-q', '--prune=now', '--aggressive']);
      const exited = new Promise((resolve) => child.on('exit', resolve));
      await new Promise((resolve) => setTimeout(resolve, 150 + round * 90));
      child.kill('SIGKILL');
      await exited;
      await readEverything(repo.dir);
      // A gc killed while it expires reflogs leaves HEAD.lock (or a ref's),
      // as a killed git does; the next command names it and the user
      // removes it (a CI run's kill landed there).
      await removeStaleLocks(repo.gitDir);
    }
    // The next gc cleans up after the killed ones and the repository stays whole.
    await repo.ok(['gc', '-q', '--prune=now']);
    assert.ok((await readEverything(repo.dir)) > 0);
    assert.deepEqual(await fs.readdir(path.join(repo.gitDir, 'tmp')).catch(() => []), []);
  });
});

async function refIds(dir: string): Promise<Record<string, ObjectId>> {
  const refs = new Refs(await Repository.discover(dir));
  return Object.fromEntries((await refs.list('refs/')).map((ref) => [ref.name, ref.id]));
}

async function looseFiles(gitDir: string): Promise<{ name: string; size: number }[]> {
  const out: { name: string; size: number }[] = [];
  const objects = path.join(gitDir, 'objects');
  for (const fanout of await fs.readdir(objects)) {
    if (!/^[0-9a-f]{2}$/.test(fanout)) continue;
    for (const name of await fs.readdir(path.join(objects, fanout))) {
      out.push({ name, size: (await fs.stat(path.join(objects, fanout, name))).size });
    }
  }
  return out;
}

async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '0']);
  await new Promise((resolve) => child.on('exit', resolve));
  return child.pid!;
}
