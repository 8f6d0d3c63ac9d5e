import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import {
  ARGON2_PARAMETERS,
  generateApiKey,
  hashSecret,
  hashSecretArgon2,
  isScope,
  parseApiKey,
  scopeAllows,
  SCOPES,
  verifySecret,
  type SecretHash,
} from './api-keys.ts';

test('api keys: generated keys have the documented format and parse back', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 50; i++) {
    const { key, id, secret } = generateApiKey();
    assert.match(key, /^mgk_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
    assert.equal(key, `mgk_${id}_${secret}`);
    assert.equal(Buffer.from(secret, 'base64url').length, 32);
    assert.deepEqual(parseApiKey(key), { id, secret });
    seen.add(id);
  }
  assert.equal(seen.size, 50);
});

test('api keys: parse rejects every variant of the format', () => {
  const { key, id, secret } = generateApiKey();
  // A secret whose last character has non-zero padding bits is not canonical.
  const nonCanonical = `${secret.slice(0, 42)}${secret.endsWith('B') ? 'C' : 'B'}`;
  const canonicalTail = Buffer.from(nonCanonical, 'base64url').toString('base64url');
  const variants = [
    '',
    'mgk_',
    key.slice(0, -1),
    `${key}A`,
    ` ${key}`,
    `${key}\n`,
    key.replace('mgk_', 'MGK_'),
    key.replace('mgk_', 'mgx_'),
    `mgk_${id.toUpperCase()}_${secret}`,
    `mgk_${id.slice(1)}_${secret}`,
    `mgk_${id}g_${secret.slice(1)}`,
    `mgk_${id}-${secret}`,
    `mgk_${id}_${secret.slice(0, 42)}=`,
    `mgk_${id}_${secret.slice(0, 42)}+`,
    `mgk_${id}_${secret.slice(0, 42)}/`,
    `Bearer ${key}`,
  ];
  for (const variant of variants) assert.equal(parseApiKey(variant), undefined, variant);
  assert.notEqual(canonicalTail, nonCanonical);
  assert.equal(parseApiKey(`mgk_${id}_${nonCanonical}`), undefined);
  assert.equal(parseApiKey(42 as unknown as string), undefined);
});

test('api keys: scopes nest admin over write over read', () => {
  assert.deepEqual([...SCOPES], ['read', 'write', 'admin']);
  const table: [string, string, boolean][] = [
    ['read', 'read', true],
    ['read', 'write', false],
    ['read', 'admin', false],
    ['write', 'read', true],
    ['write', 'write', true],
    ['write', 'admin', false],
    ['admin', 'read', true],
    ['admin', 'write', true],
    ['admin', 'admin', true],
  ];
  for (const [granted, needed, expected] of table) {
    assert.ok(isScope(granted) && isScope(needed));
    assert.equal(scopeAllows(granted, needed), expected, `${granted} ⊇ ${needed}`);
  }
  assert.equal(isScope('root'), false);
  assert.equal(isScope('Read'), false);
});

test('api keys: a new key stores the SHA-256 of its secret, and verifies', async () => {
  const { secret } = generateApiKey();
  const stored = await hashSecret(secret);
  assert.equal(stored.algorithm, 'sha256');
  assert.equal(stored.hash, createHash('sha256').update(secret).digest('base64'));
  const reloaded = JSON.parse(JSON.stringify(stored)) as SecretHash;
  assert.equal(await verifySecret(secret, reloaded), true);
  const other = `${secret.slice(0, -1)}${secret.endsWith('A') ? 'B' : 'A'}`;
  assert.equal(await verifySecret(other, reloaded), false);
  assert.equal(await verifySecret('', reloaded), false);
  const bytes = Buffer.from(stored.hash, 'base64');
  bytes[0] = (bytes[0] ?? 0) ^ 1;
  assert.equal(await verifySecret(secret, { ...stored, hash: bytes.toString('base64') }), false);
  for (const bad of [
    { algorithm: 'sha256' },
    { algorithm: 'sha256', hash: '' },
    { algorithm: 'sha256', hash: bytes.subarray(0, 16).toString('base64') },
    { algorithm: 'sha256', hash: `${stored.hash}%` },
    { algorithm: 'sha512', hash: stored.hash },
  ]) {
    assert.equal(await verifySecret(secret, bad as SecretHash), false, JSON.stringify(bad));
  }
});

test('api keys: an older key hashed with Argon2id (OWASP parameters) still verifies', async () => {
  const { secret } = generateApiKey();
  const stored = await hashSecretArgon2(secret);
  assert.equal(stored.algorithm, 'argon2id');
  assert.equal(stored.memory, 19456);
  assert.equal(stored.passes, 2);
  assert.equal(stored.parallelism, 1);
  assert.equal(Buffer.from(stored.salt, 'base64').length, ARGON2_PARAMETERS.saltLength);
  assert.equal(Buffer.from(stored.hash, 'base64').length, 32);
  // Plain JSON: survives a round trip through tokens.json.
  const reloaded = JSON.parse(JSON.stringify(stored)) as SecretHash;
  assert.equal(await verifySecret(secret, reloaded), true);
  assert.equal(
    await verifySecret(`${secret.slice(0, -1)}${secret.endsWith('A') ? 'B' : 'A'}`, reloaded),
    false,
  );
  assert.equal(await verifySecret('', reloaded), false);
});

test('api keys: two Argon2id hashes of one secret differ (random salt), both verify', async () => {
  const { secret } = generateApiKey();
  const [a, b] = await Promise.all([hashSecretArgon2(secret), hashSecretArgon2(secret)]);
  assert.notEqual(a.salt, b.salt);
  assert.notEqual(a.hash, b.hash);
  assert.equal(await verifySecret(secret, a), true);
  assert.equal(await verifySecret(secret, b), true);
});

test('api keys: a tampered salt, hash or parameter fails verification', async () => {
  const { secret } = generateApiKey();
  const stored = await hashSecretArgon2(secret);
  const flipFirstByte = (b64: string): string => {
    const bytes = Buffer.from(b64, 'base64');
    bytes[0] = (bytes[0] ?? 0) ^ 1;
    return bytes.toString('base64');
  };
  assert.equal(await verifySecret(secret, { ...stored, salt: flipFirstByte(stored.salt) }), false);
  assert.equal(await verifySecret(secret, { ...stored, hash: flipFirstByte(stored.hash) }), false);
  assert.equal(await verifySecret(secret, { ...stored, passes: 3 }), false);
  assert.equal(await verifySecret(secret, { ...stored, memory: 19456 + 1024 }), false);
  // A truncated hash is a different tag length, so a different tag.
  const short = Buffer.from(stored.hash, 'base64').subarray(0, 16).toString('base64');
  assert.equal(await verifySecret(secret, { ...stored, hash: short }), false);
});

test('api keys: malformed stored records yield false, never a throw', async () => {
  const { secret } = generateApiKey();
  const good = await hashSecretArgon2(secret);
  const malformed: unknown[] = [
    null,
    undefined,
    'argon2id',
    [],
    {},
    { ...good, algorithm: 'argon2i' },
    { ...good, algorithm: undefined },
    { ...good, memory: '19456' },
    { ...good, memory: 1 },
    { ...good, memory: 2 ** 31 },
    { ...good, memory: 19456.5 },
    { ...good, passes: 0 },
    { ...good, passes: 1e9 },
    { ...good, parallelism: 0 },
    { ...good, parallelism: -1 },
    { ...good, salt: '' },
    { ...good, salt: 'AAAA' },
    { ...good, salt: 'not base64!' },
    { ...good, salt: 42 },
    { ...good, hash: '' },
    { ...good, hash: 'AAAA' },
    { ...good, hash: `${good.hash}%` },
    { ...good, hash: null },
  ];
  for (const record of malformed) {
    assert.equal(await verifySecret(secret, record as SecretHash), false, JSON.stringify(record));
  }
  assert.equal(await verifySecret(undefined as unknown as string, good), false);
  assert.equal(await verifySecret(secret, good), true);
});
