import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { SignJWT } from 'jose';
import { MediaGitError } from '../errors.ts';
import { issueAccessToken, looksLikeJwt, verifyAccessToken, type AccessClaims } from './jwt.ts';

const secret = new Uint8Array(randomBytes(32));
const claims: AccessClaims = {
  user: 'alice',
  keyId: '0123456789abcdef',
  repo: 'films',
  scope: 'write',
};

/** Asserts AUTH_INVALID_TOKEN whose message and data never contain the token. */
async function rejects(token: string, key: Uint8Array = secret, reason?: RegExp): Promise<void> {
  await assert.rejects(verifyAccessToken(key, token), (error: unknown) => {
    assert.ok(error instanceof MediaGitError);
    assert.equal(error.code, 'AUTH_INVALID_TOKEN');
    assert.equal(error.kind, 'user');
    if (token.length > 0) {
      assert.ok(!error.message.includes(token), error.message);
      for (const part of token.split('.').filter((p) => p.length > 8)) {
        assert.ok(!error.message.includes(part), error.message);
        assert.ok(!JSON.stringify(error.data).includes(part));
      }
    }
    if (reason) assert.match(error.message, reason);
    return true;
  });
}

/** Signs an arbitrary payload with the real issuer and audience unless overridden. */
function craft(payload: Record<string, unknown>, key: Uint8Array = secret): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ iss: 'mediagit', aud: 'mediagit', iat: now, exp: now + 60, ...payload })
    .setProtectedHeader({ alg: 'HS256' })
    .sign(key);
}

test('jwt: issue and verify round trip', async () => {
  const before = Date.now();
  const { token, expiresAt } = await issueAccessToken(secret, claims, 600);
  assert.ok(looksLikeJwt(token));
  assert.ok(token.startsWith('eyJ'));
  assert.deepEqual(await verifyAccessToken(secret, token), claims);
  const expected = Math.floor(before / 1000) + 600;
  assert.ok(Math.abs(expiresAt.getTime() / 1000 - expected) <= 1);
  const payload = JSON.parse(
    Buffer.from(token.split('.')[1] ?? '', 'base64url').toString(),
  ) as Record<string, unknown>;
  assert.equal(payload['sub'], 'alice');
  assert.equal(payload['iss'], 'mediagit');
  assert.equal(payload['aud'], 'mediagit');
  assert.equal(payload['kid'], '0123456789abcdef');
  assert.equal(payload['repo'], 'films');
  assert.equal(payload['scope'], 'write');
  assert.equal(payload['exp'], expiresAt.getTime() / 1000);
  assert.equal(typeof payload['iat'], 'number');
  // Default lifetime is 15 minutes.
  const fifteen = await issueAccessToken(secret, { ...claims, repo: '*' }, undefined);
  assert.ok(Math.abs(fifteen.expiresAt.getTime() - Date.now() - 900_000) < 2_000);
  assert.equal((await verifyAccessToken(secret, fifteen.token)).repo, '*');
});

test('jwt: an expired token is rejected', async () => {
  const now = Math.floor(Date.now() / 1000);
  const expired = await craft({
    sub: 'alice',
    kid: 'k',
    repo: 'films',
    scope: 'read',
    iat: now - 120,
    exp: now - 60,
  });
  await rejects(expired, secret, /expired/);
  // And one issued by us, after its lifetime passes.
  const { token } = await issueAccessToken(secret, claims, 1);
  await new Promise((resolve) => setTimeout(resolve, 2100));
  await rejects(token, secret, /expired/);
});

test('jwt: a token signed with another secret is rejected', async () => {
  const { token } = await issueAccessToken(new Uint8Array(randomBytes(32)), claims);
  await rejects(token, secret, /signature/);
});

test('jwt: a tampered payload or header is rejected', async () => {
  const { token } = await issueAccessToken(secret, { ...claims, scope: 'read' });
  const [header = '', payload = '', signature = ''] = token.split('.');
  const raised = JSON.parse(Buffer.from(payload, 'base64url').toString()) as Record<
    string,
    unknown
  >;
  raised['scope'] = 'admin';
  const forged = `${header}.${Buffer.from(JSON.stringify(raised)).toString('base64url')}.${signature}`;
  await rejects(forged, secret, /signature/);
  // alg "none" with the signature stripped.
  const none = Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url');
  await rejects(`${none}.${payload}.`);
  await rejects(`${none}.${payload}.${signature}`);
  // A flipped signature character.
  const flipped = `${header}.${payload}.${signature.startsWith('A') ? 'B' : 'A'}${signature.slice(1)}`;
  await rejects(flipped);
});

test('jwt: wrong issuer or audience, or missing claims, are rejected', async () => {
  const base = { sub: 'alice', kid: 'k1', repo: 'films', scope: 'read' };
  await rejects(await craft({ ...base, iss: 'someone-else' }), secret, /iss/);
  await rejects(await craft({ ...base, aud: 'other' }), secret, /aud/);
  await rejects(await craft({ ...base, iss: undefined }));
  await rejects(await craft({ ...base, exp: undefined }));
  await rejects(await craft({ ...base, sub: undefined }));
  await rejects(await craft({ ...base, kid: undefined }), secret, /kid/);
  await rejects(await craft({ ...base, repo: 42 }), secret, /repo/);
  await rejects(await craft({ ...base, scope: 'root' }), secret, /scope/);
  await rejects(await craft({ ...base, sub: '' }));
  // Sanity: the crafted base passes, so the failures above are the fields.
  assert.deepEqual(await verifyAccessToken(secret, await craft(base)), {
    user: 'alice',
    keyId: 'k1',
    repo: 'films',
    scope: 'read',
  });
});

test('jwt: malformed input is rejected without echoing it', async () => {
  for (const token of [
    '',
    'abc',
    'a.b',
    'a.b.c.d',
    'eyJhbGciOiJIUzI1NiJ9.e30',
    'mgk_0123456789abcdef_x',
    'eyJ!.eyJ.x',
    'eyJhbGciOiJIUzI1NiJ9.notjson.c2ln',
  ]) {
    await rejects(token);
  }
  await rejects(`${'a'.repeat(5000)}.b.c`);
});

test('jwt: looksLikeJwt recognises three base64url segments', () => {
  assert.equal(looksLikeJwt('eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJl'), true);
  assert.equal(looksLikeJwt('a.b.c'), true);
  assert.equal(looksLikeJwt('a.b'), false);
  assert.equal(looksLikeJwt('a.b.'), false);
  assert.equal(looksLikeJwt('a..c'), false);
  assert.equal(looksLikeJwt('a.b.c.d'), false);
  assert.equal(looksLikeJwt('a+b.c.d'), false);
  assert.equal(looksLikeJwt('mgk_0123456789abcdef_abc'), false);
});

test('jwt: a short secret or a bad lifetime is refused', async () => {
  await assert.rejects(issueAccessToken(new Uint8Array(16), claims), {
    code: 'JWT_SECRET_TOO_SHORT',
  });
  await assert.rejects(issueAccessToken(secret, claims, 0), { code: 'BAD_TOKEN_TTL' });
  await assert.rejects(issueAccessToken(secret, claims, 1.5), { code: 'BAD_TOKEN_TTL' });
});
