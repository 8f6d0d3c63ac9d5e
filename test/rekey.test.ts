/**
 * `rekey --full` (issue 18; docs/encryption.md, "Rekeying"): an encrypted
 * repository's whole history sealed again under a new master key. Every
 * object ID changes and nothing else does: each ref's history (messages,
 * authors, dates, parents, every file's bytes and mode) reads back the
 * same; the index follows, so status stays clean; what a rekey would lose
 * is refused with nothing changed; the old server repository is another
 * repository now, and a new one takes the push. Killed at random moments,
 * the repository either still opens with its history intact or says the
 * rekey must be finished, and running it again finishes it.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { decodeTag } from '../src/odb/commit.ts';
import { readFileBytes } from '../src/odb/file-read.ts';
import type { ObjectId } from '../src/odb/object-id.ts';
import { Refs } from '../src/repo/refs.ts';
import { Repository } from '../src/repo/repository.ts';
import { flattenTree, readCommit } from '../src/repo/tree-ops.ts';
import { collect, prng, pseudoRandomBytes, TempRepo } from './helpers.ts';

const KiB = 1024;
const MiB = 1024 * KiB;
/** Kills per run; MEDIAGIT_CRASH_ITERATIONS raises it (CI time is shared). */
const KILLS = Number(process.env['MEDIAGIT_CRASH_ITERATIONS'] ?? 2);

let outer: string;
let keyFile: string;

before(async () => {
  outer = await fs.mkdtemp(path.join((await import('node:os')).tmpdir(), 'mediagit-rekey-'));
  keyFile = path.join(outer, 'repo.key');
  await fs.writeFile(keyFile, randomBytes(64));
});

after(async () => {
  await fs.rm(outer, { recursive: true, force: true });
});

async function encryptedRepo(): Promise<TempRepo> {
  const repo = (await TempRepo.create({ init: false })).withEnv({
    MEDIAGIT_KEY_FILE: keyFile,
    MEDIAGIT_TEST_KDF: 'fast',
  });
  await repo.ok(['init', '-q', '--encrypt']);
  await repo.ok(['config', 'core.chunkThreshold', String(256 * KiB)]);
  return repo;
}

/** A history with a chunked file edited, a symlink, an executable, a branch merged and both kinds of tag. */
async function makeHistory(repo: TempRepo, bigSize: number): Promise<void> {
  const big = pseudoRandomBytes(bigSize, 7, 'rekey');
  await fs.mkdir(repo.path('shots'));
  await fs.writeFile(repo.path('shots/plate.bin'), big);
  await fs.writeFile(repo.path('notes.txt'), 'first draft\n');
  await fs.writeFile(repo.path('render.sh'), '#!/bin/sh\necho render\n', { mode: 0o755 });
  await fs.symlink('notes.txt', repo.path('latest'));
  await repo.ok(['add', '-A']);
  await repo.ok(['commit', '-q', '-m', 'first cut']);
  await repo.ok(['tag', '-a', 'v1', '-m', 'the first cut']);
  await repo.ok(['switch', '-q', '-c', 'grade']);
  await fs.writeFile(repo.path('grade.cube'), 'LUT 3D\n');
  await repo.ok(['add', 'grade.cube']);
  await repo.ok(['commit', '-q', '-m', 'a grade']);
  await repo.ok(['switch', '-q', 'main']);
  const edited = Buffer.from(big);
  edited.set(pseudoRandomBytes(4 * KiB, 8, 'rekey'), Math.floor(bigSize / 2));
  await fs.writeFile(repo.path('shots/plate.bin'), edited);
  await fs.writeFile(repo.path('notes.txt'), 'second draft\n');
  await repo.ok(['commit', '-q', '-a', '-m', 'second cut']);
  await repo.ok(['merge', '-q', 'grade', '-m', 'merge the grade']);
  await repo.ok(['tag', 'approved']);
}

/**
 * Everything a ref's history holds except object IDs: each commit's
 * message, people, dates and parents (described likewise), and each file's
 * mode and bytes (as SHA-256). Equal descriptions, equal histories.
 */
async function describeRefs(repo: TempRepo): Promise<Record<string, string>> {
  const opened = await Repository.discover(repo.dir, {
    secrets: async () => ({ kind: 'keyfile', key: await fs.readFile(keyFile) }),
  });
  const store = opened.objects;
  const memo = new Map<ObjectId, string>();
  const describeCommit = async (id: ObjectId): Promise<string> => {
    const known = memo.get(id);
    if (known !== undefined) return known;
    const commit = await readCommit(store, id);
    const files: string[] = [];
    for (const [file, entry] of [...(await flattenTree(store, commit.tree))].sort()) {
      const bytes = await readFileBytes(store, entry.kind, entry.id);
      files.push(`${file} ${entry.mode} ${createHash('sha256').update(bytes).digest('hex')}`);
    }
    const parents: string[] = [];
    for (const parent of commit.parents) parents.push(await describeCommit(parent));
    const text = JSON.stringify({
      message: commit.message,
      author: commit.author,
      committer: commit.committer,
      files,
      parents,
    });
    memo.set(id, text);
    return text;
  };
  const out: Record<string, string> = {};
  for (const ref of await new Refs(opened).list('refs/')) {
    const object = await store.read(ref.id);
    if (object.type === 'tag') {
      const tag = decodeTag(ref.id, object.data);
      out[ref.name] = JSON.stringify({
        tag: tag.tag,
        message: tag.message,
        tagger: tag.tagger,
        target: await describeCommit(tag.object),
      });
    } else {
      out[ref.name] = await describeCommit(ref.id);
    }
  }
  return out;
}

async function objectNames(repo: TempRepo): Promise<Set<string>> {
  const opened = await Repository.discover(repo.dir, { locked: true });
  const names = new Set<string>();
  for await (const id of opened.objects.list()) names.add(id);
  return names;
}

const repositoryId = async (repo: TempRepo) =>
  (
    JSON.parse(await fs.readFile(path.join(repo.gitDir, 'keys.json'), 'utf8')) as {
      repository: string;
    }
  ).repository;

test('rekey --full seals the whole history again under new IDs and nothing else changes; the old remote is another repository, a new one takes the push', async () => {
  const repo = await encryptedRepo();
  const remotes: TempRepo[] = [];
  try {
    await makeHistory(repo, 3 * MiB);
    const oldRemote = path.join(repo.root, 'old.mg');
    await repo.ok(['init', '-q', '--bare', oldRemote]);
    await repo.ok(['remote', 'add', 'origin', oldRemote]);
    await repo.ok(['push', '-q', 'origin', 'main', 'grade', '--tags']);
    await repo.ok(['key', 'add', '--new-passphrase-file', keyFile]);
    const before = await describeRefs(repo);
    assert.ok(Object.keys(before).includes('refs/remotes/origin/main'));
    const oldNames = await objectNames(repo);
    const oldId = await repositoryId(repo);

    const rekeyed = await repo.ok(['rekey', '--full']);
    assert.match(rekeyed.stderr, /re-encrypted 4 commit\(s\) and \d+ file version\(s\)/);
    assert.match(rekeyed.stderr, /removed \d+ remote-tracking ref/);
    assert.match(rekeyed.stderr, /key slot\(s\) not carried over .*: [0-9a-f]{16}/);

    const after = await describeRefs(repo);
    const kept = Object.fromEntries(
      Object.entries(before).filter(([name]) => !name.startsWith('refs/remotes/')),
    );
    assert.deepEqual(after, kept);
    const newNames = await objectNames(repo);
    assert.ok(newNames.size >= 10);
    assert.deepEqual(
      [...newNames].filter((name) => oldNames.has(name)),
      [],
      'every object has a new ID',
    );
    assert.notEqual(await repositoryId(repo), oldId);
    const slots = JSON.parse((await repo.ok(['key', 'list', '--json'])).out) as unknown[];
    assert.equal(slots.length, 1);
    assert.deepEqual((await repo.status()).staged, []);
    assert.match((await repo.ok(['status'])).out, /working tree clean/);
    await repo.ok(['fsck', '--full']);
    assert.deepEqual(
      await fs.readdir(repo.gitDir).then((names) => names.filter((n) => n.startsWith('rekey'))),
      [],
    );

    // The server's repository is the old one: a push is refused, nothing sent.
    const refused = await repo.fails(['push', 'origin', 'main'], 128);
    assert.match(refused.stderr, /encrypted under other keys/);
    // A new, empty one takes the rekeyed repository; a clone reads it back.
    const fresh = path.join(repo.root, 'new.mg');
    await repo.ok(['init', '-q', '--bare', fresh]);
    await repo.ok(['push', '-q', fresh, 'main', 'grade', '--tags']);
    const copy = (await TempRepo.create({ init: false })).withEnv({
      MEDIAGIT_KEY_FILE: keyFile,
    });
    remotes.push(copy);
    await copy.ok(['clone', '-q', fresh, '.']);
    assert.deepEqual(
      await fs.readFile(copy.path('shots/plate.bin')),
      await fs.readFile(repo.path('shots/plate.bin')),
    );
  } finally {
    await repo.cleanup();
    for (const remote of remotes) await remote.cleanup();
  }
});

test('rekey --full refuses, with nothing changed: without --full, a plain repository, a stash, staged content in no commit', async () => {
  const repo = await encryptedRepo();
  const plain = await TempRepo.create();
  try {
    await makeHistory(repo, 512 * KiB);
    const usage = await repo.fails(['rekey'], 128);
    assert.match(usage.stderr, /rekey needs --full/);
    const names = await objectNames(repo);

    await fs.writeFile(repo.path('notes.txt'), 'stashed draft\n');
    await repo.ok(['stash', '-q']);
    const stashed = await repo.fails(['rekey', '--full'], 128);
    assert.match(stashed.stderr, /the stash holds entries/);
    await repo.ok(['stash', 'drop', '-q']);

    await fs.writeFile(repo.path('new.txt'), 'staged only\n');
    await repo.ok(['add', 'new.txt']);
    const staged = await repo.fails(['rekey', '--full'], 128);
    assert.match(staged.stderr, /new\.txt is staged but in no commit/);
    assert.equal(staged.stderr.trim().split('\n').length, 1, staged.stderr);
    const stillNames = await objectNames(repo);
    assert.deepEqual(
      [...names].filter((name) => !stillNames.has(name)),
      [],
      'no object of the old store went away',
    );
    await repo.ok(['fsck', '--full']);
    assert.deepEqual(
      await fs.readdir(repo.gitDir).then((list) => list.filter((n) => n.startsWith('rekey'))),
      [],
    );

    const notEncrypted = await plain.fails(['rekey', '--full'], 128);
    assert.match(notEncrypted.stderr, /this repository is not encrypted/);
  } finally {
    await repo.cleanup();
    await plain.cleanup();
  }
});

test('rekey --full killed at random moments: the repository opens with its history intact or asks to finish the rekey, and running it again finishes it', async () => {
  const seed = Number(process.env['MEDIAGIT_CRASH_SEED'] ?? Date.now() % 100000);
  const random = prng(seed);
  const repo = await encryptedRepo();
  try {
    await makeHistory(repo, 12 * MiB);
    const before = await describeRefs(repo);
    // How long an uninterrupted rekey takes here: the kills spread over it.
    const started = Date.now();
    await repo.ok(['rekey', '--full']);
    const span = Date.now() - started;
    let interrupted = 0;
    for (let kill = 0; kill < KILLS; kill++) {
      const delay = Math.floor(random() * span * 1.1);
      const child = repo.spawn(['rekey', '--full']);
      const timer = setTimeout(() => child.kill('SIGKILL'), delay);
      const result = await collect(child);
      clearTimeout(timer);
      const opened = await repo.run(['log', '--oneline']);
      if (opened.code !== 0) {
        assert.match(
          opened.stderr,
          /rekey --full` was interrupted/,
          `seed ${seed}, kill ${kill} after ${delay} ms (rekey: ${result.signal ?? result.code}): ${opened.stderr}`,
        );
        interrupted++;
        const finished = await repo.ok(['rekey', '--full']);
        assert.match(finished.stderr, /finished the interrupted rekey/);
      }
      assert.deepEqual(
        await describeRefs(repo),
        before,
        `seed ${seed}, kill ${kill} after ${delay} ms`,
      );
      await repo.ok(['fsck']);
      assert.match((await repo.ok(['status'])).out, /working tree clean/);
    }
    // Kills aimed at the apply phase: as soon as the plan is on disk.
    const plan = path.join(repo.gitDir, 'rekey', 'plan.json');
    let aimed = 0;
    for (let kill = 0; kill < 3; kill++) {
      const child = repo.spawn(['rekey', '--full']);
      const exited = collect(child);
      let done = false;
      void exited.then(() => (done = true));
      while (!done && !existsSync(plan)) await new Promise((resolve) => setImmediate(resolve));
      child.kill('SIGKILL');
      await exited;
      const opened = await repo.run(['log', '--oneline']);
      if (opened.code !== 0) {
        assert.match(opened.stderr, /rekey --full` was interrupted/);
        aimed++;
        await repo.ok(['rekey', '--full']);
      }
      assert.deepEqual(await describeRefs(repo), before, `aimed kill ${kill}`);
    }
    assert.ok(aimed > 0, 'a kill aimed at the apply phase interrupted it at least once');
    interrupted += aimed;
    await repo.ok(['rekey', '--full']);
    assert.deepEqual(await describeRefs(repo), before);
    await repo.ok(['fsck', '--full']);
    process.stderr.write(
      `rekey crash: seed ${seed}, ${interrupted} of ${KILLS + 3} kills left a rekey to finish\n`,
    );
  } finally {
    await repo.cleanup();
  }
});
