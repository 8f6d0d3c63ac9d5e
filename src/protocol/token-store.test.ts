import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { MediaGitError } from '../errors.ts';
import { hashSecretArgon2 } from '../security/api-keys.ts';
import { issueAccessToken, verifyAccessToken } from '../security/jwt.ts';
import { TokenStore } from './token-store.ts';

const roots: string[] = [];
after(async () => {
  for (const root of roots) await fs.rm(root, { recursive: true, force: true });
});

async function freshRoot(): Promise<string> {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'mediagit-tokens-'));
  roots.push(root);
  return root;
}

const tokensFile = (root: string): string => path.join(root, '.mediagit-server', 'tokens.json');

test('token store: a created key authenticates; a wrong or unknown one does not', async () => {
  const root = await freshRoot();
  const store = new TokenStore(root);
  const { key, record } = await store.create({ user: 'alice', repo: 'films', scope: 'write' });
  assert.match(key, /^mgk_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
  assert.ok(key.startsWith(`mgk_${record.id}_`));
  assert.equal(record.user, 'alice');
  assert.equal(record.repo, 'films');
  assert.equal(record.scope, 'write');
  assert.equal(record.revoked, undefined);
  assert.ok(!Number.isNaN(Date.parse(record.created)));

  const found = await store.authenticate(key);
  assert.equal(found?.id, record.id);
  assert.equal(found?.scope, 'write');
  // Cached, and still right.
  assert.equal((await store.authenticate(key))?.id, record.id);
  // A second process (fresh instance) verifies from the file.
  assert.equal((await new TokenStore(root).authenticate(key))?.id, record.id);

  const secret = key.slice(`mgk_${record.id}_`.length);
  const wrong = `mgk_${record.id}_${secret.startsWith('A') ? 'B' : 'A'}${secret.slice(1)}`;
  assert.equal(await store.authenticate(wrong), undefined);
  assert.equal(await store.authenticate(`mgk_ffffffffffffffff_${secret}`), undefined);
  assert.equal(await store.authenticate('not a key'), undefined);
  assert.equal(await store.authenticate(''), undefined);

  // The file holds a hash, never the key or its secret, and is private.
  const text = await fs.readFile(tokensFile(root), 'utf8');
  assert.ok(!text.includes(secret));
  const data = JSON.parse(text) as { version: number; tokens: unknown[] };
  assert.equal(data.version, 1);
  assert.equal(data.tokens.length, 1);
  assert.equal((await fs.stat(tokensFile(root))).mode & 0o777, 0o600);
  assert.equal((await fs.stat(path.dirname(tokensFile(root)))).mode & 0o777, 0o700);
  assert.deepEqual(
    (await fs.readdir(path.dirname(tokensFile(root)))).filter((n) => n !== 'tokens.json'),
    ['.tmp'],
    'no lock file left behind',
  );
  assert.deepEqual(
    await fs.readdir(path.join(root, '.mediagit-server', '.tmp')),
    [],
    'no temp file',
  );
});

test('token store: a key stored with an Argon2id hash (made by an older version) still authenticates', async () => {
  const root = await freshRoot();
  const { key, record } = await new TokenStore(root).create({
    user: 'old',
    repo: '*',
    scope: 'read',
  });
  const secret = key.slice(`mgk_${record.id}_`.length);
  const data = JSON.parse(await fs.readFile(tokensFile(root), 'utf8')) as {
    tokens: { hash: unknown }[];
  };
  assert.equal((data.tokens[0]!.hash as { algorithm: string }).algorithm, 'sha256');
  data.tokens[0]!.hash = await hashSecretArgon2(secret);
  await fs.writeFile(tokensFile(root), JSON.stringify(data));
  assert.equal((await new TokenStore(root).authenticate(key))?.id, record.id);
  const wrong = `mgk_${record.id}_${secret.startsWith('A') ? 'B' : 'A'}${secret.slice(1)}`;
  assert.equal(await new TokenStore(root).authenticate(wrong), undefined);
});

test('token store: revoke takes effect at once, also for another instance that cached the key', async () => {
  const root = await freshRoot();
  const cli = new TokenStore(root);
  const server = new TokenStore(root);
  const { key, record } = await cli.create({ user: 'bob', repo: '*', scope: 'read' });
  const other = await cli.create({ user: 'carol', repo: 'games', scope: 'admin' });
  // The server verifies and caches both keys.
  assert.equal((await server.authenticate(key))?.id, record.id);
  assert.equal((await server.authenticate(other.key))?.id, other.record.id);
  // An unrelated change keeps the cached key valid.
  await cli.create({ user: 'dave', repo: 'films', scope: 'read' });
  assert.equal((await server.authenticate(key))?.id, record.id);

  assert.equal(await cli.revoke(record.id), true);
  assert.equal(await server.authenticate(key), undefined);
  assert.equal(await cli.authenticate(key), undefined);
  assert.equal(await new TokenStore(root).authenticate(key), undefined);
  // Other keys are unaffected.
  assert.equal((await server.authenticate(other.key))?.id, other.record.id);

  const listed = await cli.list();
  const revoked = listed.find((t) => t.id === record.id);
  assert.ok(revoked?.revoked !== undefined && !Number.isNaN(Date.parse(revoked.revoked)));
  // Revoking again keeps the first time; an unknown id is false and changes nothing.
  const before = await fs.readFile(tokensFile(root), 'utf8');
  assert.equal(await cli.revoke(record.id), true);
  assert.equal(await cli.revoke('0000000000000000'), false);
  assert.equal(await cli.revoke('nonsense'), false);
  assert.equal(await fs.readFile(tokensFile(root), 'utf8'), before);
});

test('token store: list shows every token without its hash', async () => {
  const root = await freshRoot();
  const store = new TokenStore(root);
  assert.deepEqual(await store.list(), []);
  const a = await store.create({ user: 'alice', repo: 'films', scope: 'read' });
  const b = await store.create({
    user: 'Bob Smith <bob@example.com>',
    repo: 'x.y_z-1',
    scope: 'admin',
  });
  await store.revoke(a.record.id);
  const listed = await new TokenStore(root).list();
  assert.deepEqual(
    listed.map((t) => [t.id, t.user, t.repo, t.scope, t.revoked !== undefined]),
    [
      [a.record.id, 'alice', 'films', 'read', true],
      [b.record.id, 'Bob Smith <bob@example.com>', 'x.y_z-1', 'admin', false],
    ],
  );
  for (const t of listed) {
    assert.ok(!('hash' in t));
    assert.ok(!JSON.stringify(t).includes(b.record.hash.hash));
  }
});

test('token store: a malformed tokens.json is an error naming the file, and is left untouched', async () => {
  const bad = [
    '{"version": 1, "tokens": [',
    '[]',
    '{"version": 2, "tokens": []}',
    '{"version": 1, "tokens": {}}',
    '{"version": 1, "tokens": [{"id": "zz"}]}',
    '',
  ];
  for (const content of bad) {
    const root = await freshRoot();
    await fs.mkdir(path.join(root, '.mediagit-server'));
    await fs.writeFile(tokensFile(root), content);
    const store = new TokenStore(root);
    const isConfigError = (error: unknown): boolean => {
      assert.ok(error instanceof MediaGitError);
      assert.equal(error.code, 'TOKENS_FILE_INVALID');
      assert.equal(error.kind, 'config');
      assert.ok(error.message.includes(tokensFile(root)), error.message);
      return true;
    };
    await assert.rejects(store.create({ user: 'a', repo: 'r', scope: 'read' }), isConfigError);
    await assert.rejects(store.list(), isConfigError);
    await assert.rejects(store.revoke('0123456789abcdef'), isConfigError);
    await assert.rejects(
      store.authenticate('mgk_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'),
      isConfigError,
    );
    assert.equal(await fs.readFile(tokensFile(root), 'utf8'), content, JSON.stringify(content));
    assert.deepEqual(await fs.readdir(path.join(root, '.mediagit-server')), ['tokens.json']);
  }
});

test('token store: a damaged record or duplicate id is reported', async () => {
  const root = await freshRoot();
  const store = new TokenStore(root);
  const { record } = await store.create({ user: 'a', repo: 'r', scope: 'read' });
  const text = await fs.readFile(tokensFile(root), 'utf8');
  const data = JSON.parse(text) as { version: number; tokens: Record<string, unknown>[] };
  await fs.writeFile(tokensFile(root), JSON.stringify({ ...data, tokens: [record, record] }));
  await assert.rejects(new TokenStore(root).list(), /appears twice/);
  await fs.writeFile(
    tokensFile(root),
    JSON.stringify({ ...data, tokens: [{ ...record, scope: 'root' }] }),
  );
  await assert.rejects(new TokenStore(root).list(), /token #0: bad "scope"/);
});

test('token store: concurrent creates from two processes all land', async () => {
  const root = await freshRoot();
  const script = `
    import { TokenStore } from ${JSON.stringify(new URL('./token-store.ts', import.meta.url).href)};
    const store = new TokenStore(process.argv[1]);
    const made = await Promise.all(Array.from({ length: 4 }, (_, i) =>
      store.create({ user: 'p' + process.argv[2] + '-' + i, repo: '*', scope: 'read' })));
    console.log(JSON.stringify(made.map((m) => m.key)));
  `;
  const outputs = await Promise.all(
    [0, 1].map(
      (n) =>
        new Promise<string[]>((resolve, reject) => {
          const child = spawn(
            process.execPath,
            ['--input-type=module', '-e', script, root, String(n)],
            {
              stdio: ['ignore', 'pipe', 'inherit'],
            },
          );
          let out = '';
          child.stdout.on('data', (d: Buffer) => (out += d.toString()));
          child.on('error', reject);
          child.on('close', (code) =>
            code === 0 ? resolve(JSON.parse(out) as string[]) : reject(new Error(`exit ${code}`)),
          );
        }),
    ),
  );
  const keys = outputs.flat();
  assert.equal(keys.length, 8);
  const store = new TokenStore(root);
  const listed = await store.list();
  assert.deepEqual(listed.map((t) => t.user).sort(), [
    'p0-0',
    'p0-1',
    'p0-2',
    'p0-3',
    'p1-0',
    'p1-1',
    'p1-2',
    'p1-3',
  ]);
  for (const key of keys) assert.ok(await store.authenticate(key), key);
});

test('token store: the JWT secret is created once and shared by every instance', async () => {
  const root = await freshRoot();
  const instances = Array.from({ length: 6 }, () => new TokenStore(root));
  const secrets = await Promise.all(instances.map((s) => s.jwtSecret()));
  for (const secret of secrets) {
    assert.equal(secret.length, 32);
    assert.deepEqual(secret, secrets[0]);
  }
  assert.notDeepEqual(secrets[0], new Uint8Array(32));
  const keyFile = path.join(root, '.mediagit-server', 'jwt.key');
  assert.equal((await fs.stat(keyFile)).mode & 0o777, 0o600);
  assert.deepEqual(new Uint8Array(await fs.readFile(keyFile)), secrets[0]);
  assert.deepEqual(await new TokenStore(root).jwtSecret(), secrets[0]);
  assert.deepEqual((await fs.readdir(path.dirname(keyFile))).sort(), ['.tmp', 'jwt.key']);
  assert.deepEqual(await fs.readdir(path.join(path.dirname(keyFile), '.tmp')), []);
  // A different root has a different secret.
  assert.notDeepEqual(await new TokenStore(await freshRoot()).jwtSecret(), secrets[0]);
  // A damaged key file is reported, not replaced.
  const other = await freshRoot();
  await fs.mkdir(path.join(other, '.mediagit-server'));
  await fs.writeFile(path.join(other, '.mediagit-server', 'jwt.key'), 'short');
  await assert.rejects(new TokenStore(other).jwtSecret(), {
    code: 'JWT_KEY_INVALID',
    kind: 'config',
  });
});

test('token store: bad user, repo or scope is a usage error and writes nothing', async () => {
  const root = await freshRoot();
  const store = new TokenStore(root);
  const cases: [Record<string, unknown>, string][] = [
    [{ user: '', repo: 'r', scope: 'read' }, 'BAD_TOKEN_USER'],
    [{ user: 'a\nb', repo: 'r', scope: 'read' }, 'BAD_TOKEN_USER'],
    [{ user: 'a\u0000', repo: 'r', scope: 'read' }, 'BAD_TOKEN_USER'],
    [{ user: 'x'.repeat(101), repo: 'r', scope: 'read' }, 'BAD_TOKEN_USER'],
    [{ user: 42, repo: 'r', scope: 'read' }, 'BAD_TOKEN_USER'],
    [{ user: 'a', repo: '', scope: 'read' }, 'BAD_TOKEN_REPO'],
    [{ user: 'a', repo: '../etc', scope: 'read' }, 'BAD_TOKEN_REPO'],
    [{ user: 'a', repo: 'a/b', scope: 'read' }, 'BAD_TOKEN_REPO'],
    [{ user: 'a', repo: '.hidden', scope: 'read' }, 'BAD_TOKEN_REPO'],
    [{ user: 'a', repo: '-flag', scope: 'read' }, 'BAD_TOKEN_REPO'],
    [{ user: 'a', repo: 'films.lock', scope: 'read' }, 'BAD_TOKEN_REPO'],
    [{ user: 'a', repo: 'r'.repeat(101), scope: 'read' }, 'BAD_TOKEN_REPO'],
    [{ user: 'a', repo: '**', scope: 'read' }, 'BAD_TOKEN_REPO'],
    [{ user: 'a', repo: 'r', scope: 'root' }, 'BAD_TOKEN_SCOPE'],
    [{ user: 'a', repo: 'r', scope: 'READ' }, 'BAD_TOKEN_SCOPE'],
    [{ user: 'a', repo: 'r' }, 'BAD_TOKEN_SCOPE'],
  ];
  for (const [options, code] of cases) {
    await assert.rejects(
      store.create(options as never),
      (error: unknown) =>
        error instanceof MediaGitError && error.code === code && error.kind === 'usage',
      JSON.stringify(options),
    );
  }
  assert.deepEqual(await fs.readdir(root), []);
  // The limits themselves are accepted.
  await store.create({ user: 'x'.repeat(100), repo: `R${'r'.repeat(99)}`, scope: 'admin' });
  await store.create({ user: 'Zoë 🎬', repo: '0films.git', scope: 'read' });
  assert.equal((await store.list()).length, 2);
});

test('token store: the root must be an existing directory', async () => {
  const root = await freshRoot();
  const missing = new TokenStore(path.join(root, 'nope'));
  await assert.rejects(missing.create({ user: 'a', repo: 'r', scope: 'read' }), {
    code: 'SERVER_ROOT_MISSING',
    kind: 'user',
  });
  await assert.rejects(missing.list(), { code: 'SERVER_ROOT_MISSING' });
  await assert.rejects(missing.jwtSecret(), { code: 'SERVER_ROOT_MISSING' });
  const file = path.join(root, 'file');
  await fs.writeFile(file, '');
  await assert.rejects(new TokenStore(file).create({ user: 'a', repo: 'r', scope: 'read' }), {
    code: 'SERVER_ROOT_NOT_DIRECTORY',
    kind: 'user',
  });
  await assert.rejects(new TokenStore(file).revoke('0123456789abcdef'), {
    code: 'SERVER_ROOT_NOT_DIRECTORY',
  });
  assert.equal(await missing.authenticate('mgk_0123456789abcdef_x'), undefined);
});

test('token store: a rotated signing key signs, the previous one still verifies, older ones stop; every instance follows', async () => {
  const root = await freshRoot();
  const a = new TokenStore(root);
  const b = new TokenStore(root);
  const claims = { user: 'alice', keyId: '0123456789abcdef', repo: '*', scope: 'write' } as const;
  // Before any rotation: jwt.key signs (kid k0), and tokens from before key ids verify too.
  const first = await a.keyRing().current();
  assert.equal(first.kid, 'k0');
  assert.deepEqual(first.secret, await a.jwtSecret());
  const fromK0 = (await issueAccessToken(first, claims)).token;
  const legacy = (await issueAccessToken(await a.jwtSecret(), claims)).token;
  for (const token of [fromK0, legacy]) {
    assert.equal((await verifyAccessToken(b.keyRing(), token)).user, 'alice');
  }
  const rotated = await a.rotateSigningKey();
  assert.match(rotated.kid, /^k[0-9a-f]{12}$/);
  assert.deepEqual(rotated.kept, ['k0']);
  assert.deepEqual(rotated.dropped, []);
  const ringFile = path.join(root, '.mediagit-server', 'jwt-keys.json');
  assert.equal((await fs.stat(ringFile)).mode & 0o777, 0o600);
  const second = await a.keyRing().current();
  assert.equal(second.kid, rotated.kid);
  const fromNew = (await issueAccessToken(second, claims)).token;
  // b read the ring before the rotation: a token naming a key it does not know makes it read again.
  await new Promise((resolve) => setTimeout(resolve, 1100));
  for (const token of [fromNew, fromK0, legacy]) {
    assert.equal((await verifyAccessToken(b.keyRing(), token)).user, 'alice');
  }
  // A second rotation drops k0: its tokens, and those from before key ids, stop working.
  const again = await a.rotateSigningKey();
  assert.deepEqual(again.kept, [rotated.kid]);
  assert.deepEqual(again.dropped, ['k0']);
  const c = new TokenStore(root);
  for (const token of [fromK0, legacy]) {
    await assert.rejects(verifyAccessToken(c.keyRing(), token), { code: 'AUTH_INVALID_TOKEN' });
  }
  assert.equal((await verifyAccessToken(c.keyRing(), fromNew)).user, 'alice');
  // A token whose header names one key but is signed by another is a bad signature.
  const [header, payload] = fromNew.split('.');
  const resigned = (await issueAccessToken(await a.jwtSecret(), claims)).token.split('.')[2];
  await assert.rejects(verifyAccessToken(c.keyRing(), `${header}.${payload}.${resigned}`), {
    code: 'AUTH_INVALID_TOKEN',
  });
  // A damaged ring is reported, not replaced.
  await fs.writeFile(ringFile, '{"version":1,"keys":[{"kid":"x","secret":"c2hvcnQ="}]}');
  await assert.rejects(new TokenStore(root).keyRing().current(), { code: 'JWT_KEY_INVALID' });
  await assert.rejects(new TokenStore(root).rotateSigningKey(), { code: 'JWT_KEY_INVALID' });
});
