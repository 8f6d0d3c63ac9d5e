/**
 * Encrypted repositories through a server that never holds the key (issue
 * 18; docs/encryption.md, "The server"): the first push gives an empty
 * server repository its key file; clone (with the secret), fetch, pull and
 * push work as in a plain repository; the server's root holds none of the
 * markers planted in contents, file names, branch and tag names, messages
 * and authors; it still checks what it stores (a malformed sealed record, a
 * record in clear, a push of a plain repository and one under other keys
 * are refused), refuses what needs the plaintext with 409, and its gc
 * keeps what the refs reach through the links outside the seals.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import { encodeHeader } from '../src/odb/object-store.ts';
import { Codec } from '../src/compression/codec.ts';
import { encodeTransferPack } from '../src/protocol/transfer-pack.ts';
import type { ServerGcResult } from '../src/protocol/server-gc.ts';
import { pseudoRandomBytes, runCli, TempRepo } from './helpers.ts';
import { createToken, useServerRoot, type ServerProcess } from './server.ts';

const KiB = 1024;
const MiB = 1024 * KiB;
const MARKERS = {
  content: 'MARKERcontent7f3a',
  fileName: 'MARKERfilename2b9c',
  branch: 'MARKERbranch5d1e',
  tag: 'MARKERtag8c4f',
  message: 'MARKERmessage1a6b',
  author: 'MARKERauthor9e2d',
};

/** Every file under `dir`, its path and bytes, searched for the markers. */
async function markersUnder(dir: string): Promise<string[]> {
  const found = new Set<string>();
  for (const entry of await fs.readdir(dir, { recursive: true, withFileTypes: true })) {
    const full = path.join(entry.parentPath, entry.name);
    const bytes = entry.isFile() ? await fs.readFile(full) : Buffer.alloc(0);
    for (const marker of Object.values(MARKERS)) {
      if (full.includes(marker) || bytes.includes(marker)) found.add(marker);
    }
  }
  return [...found];
}

describe('an encrypted repository through mediagit serve', () => {
  const fixture = useServerRoot('encrypted-remote', ['vault', 'plain', 'other']);
  let server: ServerProcess;
  let token: string;
  let keyFile: string;
  let alice: TempRepo;
  const big = pseudoRandomBytes(2 * MiB, 1, 'encrypted-remote');

  /** The server's audit log, one event per line. */
  const auditEvents = async () =>
    (await fs.readFile(path.join(fixture.root, '.mediagit-server', 'audit.log'), 'utf8'))
      .trim()
      .split('\n')
      .map(
        (line) =>
          JSON.parse(line) as { action: string; outcome: string; repo?: string; user?: string },
      );

  /** A repository opened with `key` (a key file), pushing with the token. */
  const member = async (key: string, init = true): Promise<TempRepo> => {
    const repo = fixture.track(
      (await TempRepo.create({ init: false })).withEnv({
        MEDIAGIT_KEY_FILE: key,
        MEDIAGIT_TOKEN: token,
        MEDIAGIT_AUTHOR_NAME: MARKERS.author,
      }),
    );
    if (init) {
      await repo.ok(['init', '-q', '--encrypt']);
      await repo.ok(['config', 'core.chunkThreshold', String(256 * KiB)]);
    }
    return repo;
  };

  before(async () => {
    server = await fixture.serve();
    token = await createToken(fixture.root, 'alice', '*', 'write');
    keyFile = path.join(fixture.outer, 'vault.key');
    await fs.writeFile(keyFile, randomBytes(64));
    alice = await member(keyFile);
    await fs.writeFile(alice.path('big.bin'), big);
    await fs.writeFile(alice.path(`${MARKERS.fileName}.txt`), `${MARKERS.content}\n`);
    await alice.ok(['add', '-A']);
    await alice.ok(['commit', '-q', '-m', `first ${MARKERS.message}`]);
    await alice.ok(['tag', MARKERS.tag]);
    await alice.ok(['switch', '-q', '-c', MARKERS.branch]);
    const edited = Buffer.from(big);
    edited.set(pseudoRandomBytes(4 * KiB, 2, 'encrypted-remote'), MiB);
    await fs.writeFile(alice.path('big.bin'), edited);
    await alice.ok(['commit', '-q', '-a', '-m', 'an edit in the middle']);
    await alice.ok(['switch', '-q', 'main']);
    await alice.ok(['remote', 'add', 'origin', server.url('vault')]);
  });

  test('push to an empty repository, then clone, fetch and pull with the key; the server holds no marker', async () => {
    await alice.ok(['push', '-q', '-u', 'origin', 'main', MARKERS.branch, '--tags']);
    const vault = path.join(fixture.root, 'vault');
    // The server took the key file (wrapped keys only) and holds only ciphertext.
    assert.deepEqual(
      JSON.parse(await fs.readFile(path.join(vault, 'keys.json'), 'utf8')),
      JSON.parse(await fs.readFile(path.join(alice.gitDir, 'keys.json'), 'utf8')),
    );
    assert.deepEqual(await markersUnder(vault), []);
    // The audit log records who made the repository encrypted.
    const made = (await auditEvents()).filter((e) => e.action === 'encrypt');
    assert.deepEqual(
      made.map((e) => [e.outcome, e.repo, e.user]),
      [['ok', 'vault', 'alice']],
    );
    // The control: the same scan finds every marker in the working tree and reflog of alice's repository.
    assert.deepEqual((await markersUnder(alice.root)).sort(), Object.values(MARKERS).sort());
    const refs = await fs.readdir(path.join(vault, 'refs', 'heads'));
    assert.equal(refs.length, 2);
    for (const name of refs) assert.match(name, /^[0-9a-f]{120,}$/, 'branch names are sealed');

    const bob = await member(keyFile, false);
    await bob.ok(['clone', '-q', server.url('vault'), '.']);
    assert.deepEqual(await fs.readFile(bob.path('big.bin')), big);
    assert.equal(
      await fs.readFile(bob.path(`${MARKERS.fileName}.txt`), 'utf8'),
      `${MARKERS.content}\n`,
    );
    const branches = (await bob.ok(['branch', '-a'])).out;
    assert.match(branches, new RegExp(`remotes/origin/${MARKERS.branch}`));
    assert.match((await bob.ok(['tag'])).out, new RegExp(MARKERS.tag));
    assert.match((await bob.ok(['log', '--oneline'])).out, new RegExp(MARKERS.message));
    await bob.ok(['fsck', '--full']);

    // Bob's commit travels back: push, then alice's fetch and pull.
    await fs.writeFile(bob.path('from-bob.txt'), 'bob was here\n');
    await bob.ok(['add', 'from-bob.txt']);
    await bob.ok(['commit', '-q', '-m', 'bob']);
    await bob.ok(['push', '-q']);
    const fetched = await alice.ok(['fetch']);
    assert.match(fetched.stderr + fetched.out, /main\s+->\s+origin\/main/);
    await alice.ok(['pull', '-q']);
    assert.equal(await fs.readFile(alice.path('from-bob.txt'), 'utf8'), 'bob was here\n');
    // A non-fast-forward is refused by the server, which walks the links outside the seals.
    await alice.ok(['reset', '-q', '--hard', 'HEAD~1']);
    await fs.writeFile(alice.path('diverged.txt'), 'x\n');
    await alice.ok(['add', 'diverged.txt']);
    await alice.ok(['commit', '-q', '-m', 'diverged']);
    const refused = await alice.fails(['push', 'origin', 'main'], 1);
    assert.match(refused.stderr, /main -> main \(non-fast-forward\)|rejected/);
    assert.doesNotMatch(
      refused.stderr,
      /[0-9a-f]{100}/,
      'the refusal names the branch, not its sealed name',
    );
    await alice.ok(['reset', '-q', '--hard', 'origin/main']);
    assert.deepEqual(await markersUnder(vault), []);
  });

  test('key push publishes slots added and removed on clients, merged; the server swaps its key file only if unchanged since read', async () => {
    const vault = path.join(fixture.root, 'vault');
    const serverSlots = async () =>
      (
        JSON.parse(await fs.readFile(path.join(vault, 'keys.json'), 'utf8')) as {
          slots: { id: string }[];
        }
      ).slots.map((slot) => slot.id);
    const second = path.join(fixture.outer, 'second.key');
    const third = path.join(fixture.outer, 'third.key');
    await fs.writeFile(second, randomBytes(64));
    await fs.writeFile(third, randomBytes(64));
    const slotOf = (out: string) => /added key slot ([0-9a-f]{16})/.exec(out)![1]!;

    // A slot added on alice's client is not on the server until key push.
    const s2 = slotOf((await alice.ok(['key', 'add', '--new-key-file', second])).out);
    const carol = await member(second, false);
    const early = await carol.fails(['clone', '-q', server.url('vault'), '.'], 128);
    assert.match(early.stderr, /opens no key slot/);
    const pushed = await alice.ok(['key', 'push']);
    assert.match(pushed.stderr, new RegExp(`key slots on origin: added ${s2}`));
    assert.ok((await serverSlots()).includes(s2));
    assert.deepEqual((await alice.ok(['key', 'push'])).stderr.trim(), 'Everything up-to-date');
    await carol.ok(['clone', '-q', server.url('vault'), '.']);
    assert.deepEqual(await fs.readFile(carol.path('big.bin')), big);

    // Carol adds a slot; alice removes the one carol opened with. Both push: both changes hold.
    const s3 = slotOf((await carol.ok(['key', 'add', '--new-key-file', third])).out);
    await carol.ok(['key', 'push']);
    await alice.ok(['key', 'remove', s2]);
    const merged = await alice.ok(['key', 'push']);
    assert.match(merged.stderr, new RegExp(`took key slot\\(s\\) ${s3} from origin`));
    assert.match(merged.stderr, new RegExp(`removed ${s2}`));
    assert.ok(!(await serverSlots()).includes(s2));
    assert.ok((await serverSlots()).includes(s3));
    // Carol's next key push with the removed slot is refused, and her local file kept;
    // opened with her own new slot it takes the removal.
    const stale = await carol.fails(['key', 'push'], 128);
    assert.match(
      stale.stderr,
      new RegExp(`key slot ${s2}, which opened this repository, was removed`),
    );
    await carol.withEnv({ MEDIAGIT_KEY_FILE: third }).ok(['key', 'push']);
    await carol.fails(['log', '--oneline'], 128);
    await carol.withEnv({ MEDIAGIT_KEY_FILE: third }).ok(['log', '--oneline']);
    const late = await (
      await member(second, false)
    ).fails(['clone', server.url('vault'), 'x'], 128);
    assert.match(late.stderr, /opens no key slot/);
    const events = (await auditEvents()).filter((e) => e.action === 'key-slots');
    assert.ok(events.length >= 3 && events.every((e) => e.outcome === 'ok'));

    // The swap is conditional: a key file read before another client's change is refused.
    const current = await fs.readFile(path.join(vault, 'keys.json'));
    const put = (query: string, body: Buffer) =>
      fetch(server.url(`vault/keys${query}`), {
        method: 'PUT',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body,
      });
    const staleSwap = await put(`?replaces=${'0'.repeat(64)}`, current);
    assert.equal(staleSwap.status, 409);
    assert.equal(
      ((await staleSwap.json()) as { error: { code: string } }).error.code,
      'KEYS_CHANGED',
    );
    assert.equal((await put('?replaces=nothex', current)).status, 400);
    const foreign = JSON.parse(current.toString('utf8')) as { repository: string };
    foreign.repository = randomBytes(16).toString('hex');
    const digest = createHash('sha256').update(current).digest('hex');
    assert.equal(
      (await put(`?replaces=${digest}`, Buffer.from(JSON.stringify(foreign)))).status,
      409,
    );
    assert.deepEqual(await fs.readFile(path.join(vault, 'keys.json')), current);
  });

  test('a wrong key, a plain repository, other keys and a partial clone are refused, one line each, nothing written', async () => {
    const wrongKey = path.join(fixture.outer, 'wrong.key');
    await fs.writeFile(wrongKey, randomBytes(64));
    const stranger = await member(wrongKey, false);
    const wrong = await stranger.fails(['clone', server.url('vault'), 'copy'], 128);
    assert.match(wrong.stderr, /opens no key slot/);
    await assert.rejects(fs.stat(stranger.path('copy')), { code: 'ENOENT' });
    const filtered = await (
      await member(keyFile, false)
    ).fails(['clone', '--filter=blob:none', server.url('vault'), 'copy'], 128);
    assert.match(filtered.stderr, /encrypted: a partial clone needs file sizes/);

    // A plain repository can neither push to nor fetch from the vault.
    const plain = fixture.track((await TempRepo.create()).withEnv({ MEDIAGIT_TOKEN: token }));
    await fs.writeFile(plain.path('a.txt'), 'plain\n');
    await plain.ok(['add', '-A']);
    await plain.ok(['commit', '-q', '-m', 'plain']);
    const pushed = await plain.fails(['push', server.url('vault'), 'main'], 128);
    assert.match(pushed.stderr, /is an encrypted repository and this one is not/);
    const downloaded = await plain.fails(
      ['download', server.url('vault'), 'big.bin', '-o', 'x'],
      128,
    );
    assert.match(downloaded.stderr, /is an encrypted repository: downloading one file/);
    const fetched = await plain.fails(['fetch', server.url('vault')], 128);
    assert.match(fetched.stderr, /is an encrypted repository and this one is not/);
    // ... and an encrypted one cannot push into a plain repository holding branches.
    await plain.ok(['push', '-q', server.url('plain'), 'main']);
    const intoPlain = await alice.fails(['push', server.url('plain'), 'main'], 128);
    assert.match(intoPlain.stderr, /not encrypted and holds branches/);
    assert.ok(
      (await auditEvents()).some(
        (e) => e.action === 'encrypt' && e.outcome === 'denied' && e.repo === 'plain',
      ),
    );
    await assert.rejects(fs.stat(path.join(fixture.root, 'plain', 'keys.json')), {
      code: 'ENOENT',
    });
    // Another encrypted repository (other keys) cannot push into the vault.
    const other = await member(wrongKey);
    await fs.writeFile(other.path('o.txt'), 'other\n');
    await other.ok(['add', '-A']);
    await other.ok(['commit', '-q', '-m', 'other']);
    const otherKeys = await other.fails(['push', server.url('vault'), 'main'], 128);
    assert.match(otherKeys.stderr, /encrypted under other keys/);
  });

  test('the server checks sealed records by format and refuses what needs the plaintext with 409', async () => {
    const request = (
      method: string,
      route: string,
      body?: Buffer,
      type = 'application/octet-stream',
    ) =>
      fetch(`${server.url('vault')}/${route}`, {
        method,
        headers: { authorization: `Bearer ${token}`, 'content-type': type },
        ...(body ? { body } : {}),
      });
    const id = 'ab'.repeat(32);
    // A sealed chunk too short to hold a nonce and a tag.
    const stub = Buffer.concat([encodeHeader('chunk', Codec.sealed, 10), Buffer.alloc(8)]);
    const short = await request('PUT', `chunks/${id}`, stub);
    assert.equal(short.status, 400);
    assert.match(await short.text(), /too short to be a sealed record/);
    // A record in clear.
    const clear = Buffer.concat([encodeHeader('chunk', Codec.store, 3), Buffer.from('abc')]);
    const plain = await request('PUT', `chunks/${id}`, clear);
    assert.equal(plain.status, 400);
    assert.match(await plain.text(), /it is not encrypted, and this repository is/);
    // A tree whose link list is cut off.
    const cut = Buffer.concat([
      encodeHeader('tree', Codec.sealed, 10),
      Buffer.from([5, 0, 0, 0]),
      Buffer.alloc(60),
    ]);
    const pack = await request(
      'POST',
      'objects/pack',
      transferPack(id, cut),
      'application/x-mediagit-pack',
    );
    assert.equal(pack.status, 400);
    // The Git LFS API and manifests by file hash need the plaintext.
    const lfs = await fetch(`${server.url('vault')}.git/info/lfs/objects/batch`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${token}`,
        'content-type': 'application/vnd.git-lfs+json',
        accept: 'application/vnd.git-lfs+json',
      },
      body: JSON.stringify({ operation: 'download', objects: [{ oid: id, size: 1 }] }),
    });
    assert.equal(lfs.status, 409);
    assert.match(await lfs.text(), /ENCRYPTED_REPOSITORY/);
    const locks = await fetch(`${server.url('vault')}.git/info/lfs/locks`, {
      headers: { authorization: `Bearer ${token}`, accept: 'application/vnd.git-lfs+json' },
    });
    assert.equal(locks.status, 409);
    assert.match(await locks.text(), /locks name paths/);
    const manifest = await request('GET', `manifests/${id}`);
    assert.equal(manifest.status, 409);
    // The key file is served (wrapped keys only); a plain repository has none.
    assert.equal((await request('GET', 'keys')).status, 200);
    const none = await fetch(`${server.url('plain')}/keys`, {
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(none.status, 204);
  });

  test('server gc on the vault deletes what no ref reaches and keeps the rest', async () => {
    // A branch pushed on its own (its own pack), then deleted.
    await alice.ok(['switch', '-q', '-c', 'scratch']);
    await fs.writeFile(alice.path('scratch.bin'), pseudoRandomBytes(MiB, 3, 'encrypted-remote'));
    await alice.ok(['add', 'scratch.bin']);
    await alice.ok(['commit', '-q', '-m', 'scratch']);
    await alice.ok(['push', '-q', 'origin', 'scratch']);
    await alice.ok(['switch', '-q', 'main']);
    await alice.ok(['push', '-q', 'origin', '--delete', 'scratch', MARKERS.branch]);
    const gc = async (...extra: string[]) => {
      const run = await runCli(
        ['gc', '--root', fixture.root, '--repo', 'vault', ...extra, '--json'],
        {
          cwd: fixture.outer,
          env: alice.env,
        },
      );
      assert.equal(run.code, 0, run.stderr);
      return (JSON.parse(run.out) as { repositories: ServerGcResult[] }).repositories[0]!;
    };
    const found = await gc(); // records what no ref reaches, for the grace window
    assert.ok(found.pendingPacks + found.pendingObjects >= 1, JSON.stringify(found));
    const swept = await gc('--prune=now');
    assert.ok(
      swept.deletedObjects + swept.deletedPacks >= 1,
      `the deleted branch's objects are collected: ${JSON.stringify(swept)}`,
    );
    // fsck checks the vault's records by format; verify needs the key, and says so.
    const cli = (...args: string[]) => runCli(args, { cwd: fixture.outer, env: alice.env });
    const fsck = await cli('fsck', '--root', fixture.root, '--repo', 'vault');
    assert.equal(fsck.code, 0, fsck.stderr);
    const verifyAll = await cli('verify', '--root', fixture.root);
    assert.equal(verifyAll.code, 0, verifyAll.stderr + verifyAll.out);
    assert.match(verifyAll.out, /vault: not verified: encrypted/);
    const verifyVault = await cli('verify', '--root', fixture.root, '--repo', 'vault');
    assert.equal(verifyVault.code, 128);
    assert.match(
      verifyVault.stderr,
      /vault is encrypted: its files can be verified only with the key/,
    );
    const carol = await member(keyFile, false);
    await carol.ok(['clone', '-q', server.url('vault'), '.']);
    await carol.ok(['fsck', '--full']);
    assert.deepEqual(await fs.readFile(carol.path('big.bin')), big);
    assert.equal(await fs.readFile(carol.path('from-bob.txt'), 'utf8'), 'bob was here\n');
  });
});

/** A transfer pack of one record (protocol/transfer-pack.ts). */
function transferPack(id: string, record: Buffer): Buffer {
  return encodeTransferPack([{ id, record }]);
}
