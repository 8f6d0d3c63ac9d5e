/**
 * Encrypted repositories, end to end through the CLI (issue 18;
 * docs/encryption.md): nothing planted in contents, names, messages,
 * branches or authors can be found in the store, dedup still works within
 * a repository and nowhere else, a wrong or absent secret is one line and
 * writes nothing, a flipped byte is an authentication failure naming the
 * object, the key verbs manage the slots, and a local-path remote takes
 * the first push and then clone, push and pull.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { readManifest } from '../src/odb/file-read.ts';
import { PackSet } from '../src/odb/pack.ts';
import { Repository } from '../src/repo/repository.ts';
import { flattenTree, readCommit } from '../src/repo/tree-ops.ts';
import { Refs } from '../src/repo/refs.ts';
import { TempRepo, writePseudoRandomFile } from './helpers.ts';
import { createToken, makeServerRoot, ServerProcess } from './server.ts';

let keyDir: string;
let keyFile: string;

before(async () => {
  keyDir = await fs.mkdtemp(path.join(os.tmpdir(), 'mediagit-keys-'));
  keyFile = path.join(keyDir, 'repo.key');
  await fs.writeFile(keyFile, randomBytes(64));
});

after(async () => {
  await fs.rm(keyDir, { recursive: true, force: true });
});

/** A new encrypted repository opened with a key file. */
async function encryptedRepo(key = keyFile): Promise<TempRepo> {
  const repo = (await TempRepo.create({ init: false })).withEnv({ MEDIAGIT_KEY_FILE: key });
  await repo.ok(['init', '-q', '--encrypt']);
  return repo;
}

/** Every file under `dir`: its path relative to `dir` and its bytes. */
async function filesUnder(dir: string): Promise<{ name: string; bytes: Buffer }[]> {
  const out: { name: string; bytes: Buffer }[] = [];
  for (const entry of await fs.readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const full = path.join(entry.parentPath, entry.name);
    out.push({ name: path.relative(dir, full), bytes: await fs.readFile(full) });
  }
  return out;
}

/** The markers found in the names or bytes of the files under `dir`. */
async function markersIn(dir: string, markers: readonly string[]): Promise<string[]> {
  const files = await filesUnder(dir);
  return markers.filter((marker) =>
    files.some((file) => file.name.includes(marker) || file.bytes.includes(marker)),
  );
}

/** The codec byte of every stored record, loose and packed. */
async function storedCodecs(gitDir: string): Promise<Map<number, number>> {
  const counts = new Map<number, number>();
  const count = (codec: number) => counts.set(codec, (counts.get(codec) ?? 0) + 1);
  const objects = path.join(gitDir, 'objects');
  for (const fanout of await fs.readdir(objects)) {
    if (!/^[0-9a-f]{2}$/.test(fanout)) continue;
    for (const name of await fs.readdir(path.join(objects, fanout))) {
      const handle = await fs.open(path.join(objects, fanout, name), 'r');
      const header = Buffer.alloc(16);
      await handle.read(header, 0, 16, 0);
      await handle.close();
      count(header[5]!);
    }
  }
  for (const pack of await new PackSet(path.join(objects, 'pack')).all()) {
    const handle = await fs.open(pack.packPath, 'r');
    for (let i = 0; i < pack.count; i++) {
      const header = Buffer.alloc(16);
      await handle.read(header, 0, 16, pack.entryAt(i).offset);
      count(header[5]!);
    }
    await handle.close();
  }
  return counts;
}

/** Every object name stored (loose and packed). */
async function objectNames(gitDir: string): Promise<Set<string>> {
  const names = new Set<string>();
  const objects = path.join(gitDir, 'objects');
  for (const fanout of await fs.readdir(objects)) {
    if (!/^[0-9a-f]{2}$/.test(fanout)) continue;
    for (const name of await fs.readdir(path.join(objects, fanout))) names.add(fanout + name);
  }
  for (const pack of await new PackSet(path.join(objects, 'pack')).all()) {
    for (const id of pack.ids()) names.add(id);
  }
  return names;
}

async function storeBytes(gitDir: string): Promise<number> {
  let total = 0;
  for (const file of await filesUnder(path.join(gitDir, 'objects'))) total += file.bytes.length;
  return total;
}

const SEALED = 4;

test('an encrypted store, and the server it is pushed to, hold none of 20 plaintext markers from contents, file names, messages, branches and authors', async () => {
  const names = [
    'c0',
    'c1',
    'c2',
    'c3',
    'c4',
    'c5',
    'n0',
    'n1',
    'n2',
    'n3',
    'n4',
    'm0',
    'm1',
    'm2',
    'm3',
    'b0',
    'b1',
    'b2',
    'a0',
    'a1',
  ] as const;
  // Six in contents, five in file and folder names, four in messages, three in branch and tag names, two in author names.
  const mark = Object.fromEntries(
    names.map((name) => [name, `MARK${name}${randomBytes(6).toString('hex')}`]),
  ) as Record<(typeof names)[number], string>;
  const markers = Object.values(mark);
  const run = async (repo: TempRepo) => {
    const as = (author: string) => repo.withEnv({ MEDIAGIT_AUTHOR_NAME: author });
    await fs.writeFile(repo.path(`${mark.n0}.txt`), `${mark.c0}\n`);
    await fs.mkdir(repo.path(mark.n1));
    await fs.writeFile(
      repo.path(`${mark.n1}/${mark.n2}.md`),
      `notes ${mark.c1} and ${mark.c2}\n`.repeat(50),
    );
    // A chunked file (8 MiB) with a marker inside; a 70 MiB one goes to an ingest pack.
    const big = repo.path(`${mark.n3}.bin`);
    await writePseudoRandomFile(big, 8 * 1024 * 1024, 1);
    await fs.appendFile(big, mark.c3);
    const huge = repo.path('huge.bin');
    await writePseudoRandomFile(huge, 70 * 1024 * 1024, 2);
    await fs.appendFile(huge, mark.c4);
    await repo.ok(['add', '.']);
    await as(mark.a0).ok(['commit', '-q', '-m', `first ${mark.m0}`]);
    await repo.ok(['switch', '-q', '-c', mark.b0]);
    await fs.writeFile(repo.path(`${mark.n4}.txt`), `${mark.c5}\n`);
    await repo.ok(['add', '.']);
    await as(mark.a1).ok(['commit', '-q', '-m', `second ${mark.m1}`]);
    await repo.ok(['branch', mark.b1]);
    await repo.ok(['tag', '-a', mark.b2, '-m', `tagged ${mark.m2}`]);
    await repo.ok(['switch', '-q', 'main']);
    await as(mark.a0).ok(['merge', '-q', '--no-ff', '-m', `merged ${mark.m3}`, mark.b0]);
    await fs.appendFile(repo.path(`${mark.n0}.txt`), `stashed ${mark.c0}\n`);
    await repo.ok(['stash', '-q']);
    await repo.ok(['gc', '-q', '--aggressive', '--prune=now']);
    await repo.ok(['fsck']);
  };
  // The same work in a plain repository: the scan finds what it looks for.
  const plain = await TempRepo.create();
  const encrypted = await encryptedRepo();
  try {
    await run(plain);
    await run(encrypted);
    const inPlain = await markersIn(path.join(plain.gitDir, 'objects'), markers);
    assert.ok(inPlain.length >= 3, `the scan finds markers in a plain store: ${inPlain.join(' ')}`);
    assert.deepEqual(await markersIn(path.join(encrypted.gitDir, 'objects'), markers), []);
    // Every record is sealed, loose and packed.
    const codecs = await storedCodecs(encrypted.gitDir);
    assert.deepEqual([...codecs.keys()], [SEALED], `codecs ${JSON.stringify([...codecs])}`);
    assert.ok(codecs.get(SEALED)! > 20);
    // Both pushed, every branch and tag, to `mediagit serve`: its root (the
    // server's backend) holds none of the markers for the encrypted one.
    const root = path.join(keyDir, 'server-root');
    await makeServerRoot(root, ['plain', 'vault']);
    const server = await ServerProcess.start(root, []);
    try {
      const token = await createToken(root, 'alice', '*', 'write');
      for (const [repo, name] of [
        [plain, 'plain'],
        [encrypted, 'vault'],
      ] as const) {
        await repo
          .withEnv({ MEDIAGIT_TOKEN: token })
          .ok(['push', '-q', server.url(name), 'main', mark.b0, mark.b1, '--tags']);
      }
    } finally {
      await server.stop();
    }
    const onServer = await markersIn(path.join(root, 'plain'), markers);
    assert.ok(onServer.length >= 3, `the scan finds markers on the server: ${onServer.join(' ')}`);
    assert.deepEqual(await markersIn(path.join(root, 'vault'), markers), []);
    // And the history reads back whole.
    const log = (await encrypted.ok(['log', '--format=%an %s'])).out;
    assert.match(log, new RegExp(`${mark.a0} merged ${mark.m3}`));
    await encrypted.ok(['stash', 'pop', '-q']);
    assert.equal(
      await fs.readFile(encrypted.path(`${mark.n0}.txt`), 'utf8'),
      `${mark.c0}\nstashed ${mark.c0}\n`,
    );
    await fs.rm(encrypted.path('huge.bin'));
    await encrypted.ok(['checkout', '--', 'huge.bin']);
    const huge = await fs.readFile(encrypted.path('huge.bin'));
    assert.equal(huge.subarray(huge.length - mark.c4.length).toString(), mark.c4);
    await encrypted.ok(['verify', '--all']);
  } finally {
    await plain.cleanup();
    await encrypted.cleanup();
  }
});

test('dedup works within an encrypted repository and nowhere else; the chunker cuts with a secret table', async () => {
  const one = await encryptedRepo();
  const otherKey = path.join(keyDir, 'other.key');
  await fs.writeFile(otherKey, randomBytes(32));
  const two = await encryptedRepo(otherKey);
  const plain = await TempRepo.create();
  try {
    for (const repo of [one, two, plain]) {
      await writePseudoRandomFile(repo.path('a.bin'), 24 * 1024 * 1024, 7);
      await repo.ok(['add', 'a.bin']);
      await repo.ok(['commit', '-q', '-m', 'a']);
    }
    // The same file again under another name: only a tree and a commit more.
    const before = await storeBytes(one.gitDir);
    await fs.copyFile(one.path('a.bin'), one.path('copy.bin'));
    await one.ok(['add', 'copy.bin']);
    await one.ok(['commit', '-q', '-m', 'copy']);
    const grown = (await storeBytes(one.gitDir)) - before;
    assert.ok(grown < 64 * 1024, `a second copy stored ${grown} bytes`);
    // Identical content, no shared object name between the repositories.
    const names = await Promise.all([one, two, plain].map((r) => objectNames(r.gitDir)));
    for (const [a, b] of [
      [0, 1],
      [0, 2],
      [1, 2],
    ] as const) {
      const shared = [...names[a]!].filter((id) => names[b]!.has(id));
      assert.deepEqual(shared, [], `repositories ${a} and ${b} share object names`);
    }
    // Cut points differ from the plain repository's (the public gear table).
    const lengths = async (repo: TempRepo, key?: string) => {
      const opened = await Repository.discover(repo.dir, {
        secrets: key ? async () => ({ kind: 'keyfile', key: await fs.readFile(key) }) : undefined,
      });
      const head = (await new Refs(opened).head()).id!;
      const files = await flattenTree(
        opened.objects,
        (await readCommit(opened.objects, head)).tree,
      );
      const file = files.get('a.bin')!;
      return (await readManifest(opened.objects, file.id)).chunks.map((c) => c.length);
    };
    const [oneCuts, twoCuts, plainCuts] = await Promise.all([
      lengths(one, keyFile),
      lengths(two, otherKey),
      lengths(plain),
    ]);
    assert.ok(oneCuts.length > 8 && plainCuts.length > 8);
    assert.notDeepEqual(oneCuts, plainCuts);
    assert.notDeepEqual(oneCuts, twoCuts);
  } finally {
    await Promise.all([one, two, plain].map((r) => r.cleanup()));
  }
});

test('a wrong or absent secret is one line, exit 128, and nothing is written', async () => {
  const repo = await encryptedRepo();
  try {
    await fs.writeFile(repo.path('a.txt'), 'a\n');
    await repo.ok(['add', 'a.txt']);
    await repo.ok(['commit', '-q', '-m', 'a']);
    await fs.writeFile(repo.path('b.txt'), 'b\n');
    const wrongKey = path.join(keyDir, 'wrong.key');
    await fs.writeFile(wrongKey, randomBytes(48));
    const snapshot = async () =>
      (await filesUnder(repo.gitDir)).map((f) => `${f.name}:${f.bytes.toString('base64')}`).sort();
    const before = await snapshot();
    for (const [env, message] of [
      [
        { MEDIAGIT_KEY_FILE: wrongKey },
        /^fatal: wrong key file: it opens no key slot of this repository\n$/,
      ],
      [{ MEDIAGIT_KEY_FILE: '', MEDIAGIT_PASSPHRASE: 'guess' }, /^fatal: wrong passphrase: /],
      [{ MEDIAGIT_KEY_FILE: '' }, /^fatal: this repository is encrypted: give its passphrase/],
    ] as const) {
      for (const args of [['add', 'b.txt'], ['commit', '-q', '-am', 'x'], ['log'], ['status']]) {
        const result = await repo.withEnv(env).fails(args, 128);
        assert.match(result.stderr, message, args.join(' '));
        assert.equal(result.stderr.split('\n').length, 2, result.stderr);
      }
    }
    assert.deepEqual(await snapshot(), before);
  } finally {
    await repo.cleanup();
  }
});

test('a flipped byte in any encrypted object is an authentication failure naming it; the working file is untouched', async () => {
  const repo = await encryptedRepo();
  try {
    await writePseudoRandomFile(repo.path('big.bin'), 12 * 1024 * 1024, 3);
    await fs.writeFile(repo.path('small.txt'), 'small\n');
    await repo.ok(['add', '.']);
    await repo.ok(['commit', '-q', '-m', 'a']);
    const opened = await Repository.discover(repo.dir, {
      secrets: async () => ({ kind: 'keyfile', key: await fs.readFile(keyFile) }),
    });
    const head = (await new Refs(opened).head()).id!;
    const files = await flattenTree(opened.objects, (await readCommit(opened.objects, head)).tree);
    const chunk = (await readManifest(opened.objects, files.get('big.bin')!.id)).chunks[3]!.id;
    const flip = async (id: string, at: number, mask = 0x20) => {
      const file = opened.objects.pathOf(id);
      const bytes = await fs.readFile(file);
      bytes[Math.min(at, bytes.length - 1)]! ^= mask;
      await fs.chmod(file, 0o644);
      await fs.writeFile(file, bytes);
    };
    // A chunk's ciphertext: checkout fails naming it and leaves the file as it was.
    await flip(chunk, 5000);
    await fs.writeFile(repo.path('big.bin'), 'edited\n');
    const checkout = await repo.fails(['checkout', '--', 'big.bin'], 128);
    assert.match(checkout.stderr, new RegExp(`object ${chunk} is corrupt: authentication failed`));
    assert.equal(await fs.readFile(repo.path('big.bin'), 'utf8'), 'edited\n');
    const fsck = await repo.fails(['fsck', '--full'], 1);
    assert.match(
      fsck.stdout.toString() + fsck.stderr,
      new RegExp(`${chunk}.*authentication failed`),
    );
    await flip(chunk, 5000);
    await repo.ok(['checkout', '--', 'big.bin']);
    // The header is authenticated too (a chunk relabelled a blob), and the commit.
    await flip(chunk, 4, 0x03);
    await fs.writeFile(repo.path('big.bin'), 'edited\n');
    assert.match(
      (await repo.fails(['checkout', '--', 'big.bin'], 128)).stderr,
      new RegExp(`object ${chunk} is corrupt: authentication failed`),
    );
    assert.equal(await fs.readFile(repo.path('big.bin'), 'utf8'), 'edited\n');
    await flip(chunk, 4, 0x03);
    await flip(head, 40);
    assert.match(
      (await repo.fails(['log'], 128)).stderr,
      new RegExp(`object ${head} is corrupt: authentication failed`),
    );
  } finally {
    await repo.cleanup();
  }
});

test('key add, list, rotate and remove manage the slots; the last or the current slot cannot go', async () => {
  const repo = (await TempRepo.create({ init: false })).withEnv({ MEDIAGIT_TEST_KDF: 'fast' });
  try {
    const first = path.join(repo.root, 'first.pass');
    const second = path.join(repo.root, 'second.pass');
    const third = path.join(repo.root, 'third.pass');
    await fs.writeFile(first, 'correct horse\n');
    await fs.writeFile(second, 'battery staple\n');
    await fs.writeFile(third, 'third passphrase\n');
    await repo.ok(['init', '-q', '--encrypt', '--passphrase-file', first]);
    const byFirst = repo.withEnv({ MEDIAGIT_PASSPHRASE_FILE: first });
    const bySecond = repo.withEnv({ MEDIAGIT_PASSPHRASE: 'battery staple' });
    await fs.writeFile(repo.path('a.txt'), 'a\n');
    await byFirst.ok(['add', 'a.txt']);
    await byFirst.ok(['commit', '-q', '-m', 'a']);
    await bySecond.fails(['log'], 128);
    const added = await byFirst.ok(['key', 'add', '--new-passphrase-file', second]);
    assert.match(added.out, /^added key slot [0-9a-f]{16} \(passphrase\)\n$/);
    await bySecond.ok(['log']);
    const slots = JSON.parse((await bySecond.ok(['key', 'list', '--json'])).out) as {
      id: string;
      current: boolean;
      kind: string;
      kdf: { memory: number };
    }[];
    assert.equal(slots.length, 2);
    assert.deepEqual(
      slots.map((s) => s.current),
      [false, true],
    );
    assert.equal(slots[0]!.kdf.memory, 8192);
    // The current slot cannot go; another can.
    const current = await bySecond.fails(['key', 'remove', slots[1]!.id], 128);
    assert.match(current.stderr, /opened the repository now/);
    await bySecond.ok(['key', 'remove', slots[0]!.id]);
    await byFirst.fails(['log'], 128);
    // Rotate: a new slot for a new passphrase replaces the current one.
    const rotated = await bySecond.ok(['key', 'rotate', '--new-passphrase-file', third]);
    assert.match(rotated.out, new RegExp(`^key slot ${slots[1]!.id} replaced by [0-9a-f]{16}`));
    await bySecond.fails(['log'], 128);
    const byThird = repo.withEnv({ MEDIAGIT_PASSPHRASE_FILE: third });
    assert.match((await byThird.ok(['log', '--format=%s'])).out, /^a\n$/);
    const last = JSON.parse((await byThird.ok(['key', 'list', '--json'])).out) as { id: string }[];
    assert.equal(last.length, 1);
    const lastRemove = await byThird.fails(['key', 'remove', last[0]!.id], 128);
    assert.match(lastRemove.stderr, /opened the repository now|the only one/);
    // Another process holding the key file's lock: refused, nothing changed.
    const keysFile = path.join(repo.gitDir, 'keys.json');
    const keysBefore = await fs.readFile(keysFile);
    await fs.writeFile(`${keysFile}.lock`, `${process.pid} ${os.hostname()}\n`);
    const locked = await byThird.fails(['key', 'add', '--new-passphrase-file', first], 128);
    assert.match(locked.stderr, /^fatal: cannot lock the key file: .*keys\.json\.lock exists/);
    assert.equal(locked.stderr.split('\n').length, 2, locked.stderr);
    assert.deepEqual(await fs.readFile(keysFile), keysBefore);
    await fs.rm(`${keysFile}.lock`);
    // Without the new slot's secret, or in a plain repository, the verbs refuse.
    await byThird.fails(['key', 'add'], 128);
    const plain = await TempRepo.create();
    try {
      assert.match((await plain.fails(['key', 'list'], 128)).stderr, /not encrypted/);
    } finally {
      await plain.cleanup();
    }
  } finally {
    await repo.cleanup();
  }
});

test('a local-path remote: fetch from a plain one is refused with nothing written; the first push makes an empty one encrypted; clone and fetch follow', async () => {
  const repo = await encryptedRepo();
  const remote = await TempRepo.create({ init: false });
  const bare = path.join(remote.root, 'bare');
  try {
    await remote.ok(['init', '-q', '--bare', bare]);
    await fs.writeFile(repo.path('a.txt'), 'a\n');
    await repo.ok(['add', 'a.txt']);
    await repo.ok(['commit', '-q', '-m', 'a']);
    await repo.ok(['remote', 'add', 'origin', bare]);
    const before = await filesUnder(bare);
    for (const args of [
      ['fetch', 'origin'],
      ['pull', 'origin', 'main'],
    ]) {
      const result = await repo.fails(args, 128);
      assert.match(result.stderr, /is not encrypted, and this repository is/);
    }
    assert.deepEqual(
      (await filesUnder(bare)).map((f) => f.name).sort(),
      before.map((f) => f.name).sort(),
    );
    await repo.ok(['push', '-q', '-u', 'origin', 'main']);
    assert.deepEqual(
      await fs.readFile(path.join(bare, 'keys.json')),
      await fs.readFile(path.join(repo.gitDir, 'keys.json')),
    );
    const copy = (await TempRepo.create({ init: false })).withEnv({ MEDIAGIT_KEY_FILE: keyFile });
    try {
      await copy.ok(['clone', '-q', bare, '.']);
      assert.equal(await fs.readFile(copy.path('a.txt'), 'utf8'), 'a\n');
      await fs.writeFile(copy.path('b.txt'), 'b\n');
      await copy.ok(['add', 'b.txt']);
      await copy.ok(['commit', '-q', '-m', 'b']);
      await copy.ok(['push', '-q']);
      await repo.ok(['pull', '-q']);
      assert.equal(await fs.readFile(repo.path('b.txt'), 'utf8'), 'b\n');
    } finally {
      await copy.cleanup();
    }
  } finally {
    await repo.cleanup();
    await remote.cleanup();
  }
});
