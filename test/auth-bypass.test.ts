/**
 * Attempts to get past a real server's authentication and scopes (issue 18):
 * unsigned (`alg: none`), expired, forged, re-scoped and algorithm-swapped
 * JWTs, keys for another repository, and a read key asking /auth/token for
 * more than it has. Every attempt is refused, and an attempted write stores
 * nothing (the root's bytes are compared before and after).
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import { SignJWT } from 'jose';
import { TokenStore } from '../src/protocol/token-store.ts';
import { createToken, ServerProcess, useServerRoot } from './server.ts';

interface Answer {
  status: number;
  body: string;
}

function call(
  base: string,
  method: string,
  route: string,
  token?: string,
  body?: Buffer | object,
): Promise<Answer> {
  const url = new URL(route, base);
  const data =
    body === undefined
      ? undefined
      : Buffer.isBuffer(body)
        ? body
        : Buffer.from(JSON.stringify(body));
  const headers: http.OutgoingHttpHeaders = {};
  if (token !== undefined) headers['authorization'] = `Bearer ${token}`;
  if (data) {
    headers['content-type'] = Buffer.isBuffer(body)
      ? 'application/octet-stream'
      : 'application/json';
    headers['content-length'] = data.length;
  }
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (part: Buffer) => parts.push(part));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts).toString('utf8') }),
      );
    });
    req.on('error', reject);
    req.end(data);
  });
}

/** Every file under the root (but logs and the audit trail) with its content hash. */
async function rootBytes(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const entry of await fs.readdir(root, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const full = path.join(entry.parentPath, entry.name);
    if (/audit|\.log$/.test(full)) continue;
    out[full] = createHash('sha256')
      .update(await fs.readFile(full))
      .digest('hex');
  }
  return out;
}

/** `status`, or 429 where 401 is expected (the failed-authentication limit). */
const refused = (actual: number, expected: number): boolean =>
  actual === expected || (expected === 401 && actual === 429);

const b64 = (value: object): string => Buffer.from(JSON.stringify(value)).toString('base64url');
const parts = (jwt: string): [Record<string, unknown>, Record<string, unknown>, string] => {
  const [header, payload, signature] = jwt.split('.');
  return [
    JSON.parse(Buffer.from(header!, 'base64url').toString('utf8')),
    JSON.parse(Buffer.from(payload!, 'base64url').toString('utf8')),
    signature!,
  ];
};

describe('auth bypass attempts against a real server', () => {
  const fixture = useServerRoot('authx', ['proj', 'other']);
  let server: ServerProcess;
  let keys: { read: string; write: string; other: string };
  /** A JWT the server issued for the read key of proj. */
  let readJwt = '';

  before(async () => {
    keys = {
      read: await createToken(fixture.root, 'bob', 'proj', 'read'),
      write: await createToken(fixture.root, 'alice', 'proj', 'write'),
      other: await createToken(fixture.root, 'carol', 'other', 'admin'),
    };
    server = await fixture.serve();
    const issued = await call(server.base, 'POST', '/auth/token', keys.read, { repo: 'proj' });
    assert.equal(issued.status, 200, issued.body);
    readJwt = (JSON.parse(issued.body) as { token: string }).token;
  });

  /**
   * A write that must be refused with `status` and leave the root as it was.
   * Past 30 failed authentications a minute from one address the server
   * answers 429 instead of 401 (both refuse; neither says more).
   */
  async function refusedWrite(
    token: string | undefined,
    status: number,
    repo = 'proj',
  ): Promise<void> {
    const chunk = randomBytes(64);
    const beforeBytes = await rootBytes(fixture.root);
    const id = createHash('sha256').update(chunk).digest('hex');
    const answers = await Promise.all([
      call(server.base, 'PUT', `/${repo}/chunks/${id}`, token, chunk),
      call(server.base, 'POST', `/${repo}/refs/update`, token, {
        updates: [{ ref: 'refs/heads/evil', old: null, new: id }],
      }),
      call(server.base, 'POST', `/${repo}/info/lfs/locks`, token, { path: 'a.bin' }),
    ]);
    for (const answer of answers)
      assert.ok(refused(answer.status, status), `${answer.status} ${answer.body}`);
    assert.deepEqual(await rootBytes(fixture.root), beforeBytes);
  }

  test('a JWT with alg "none", its signature stripped or kept, is 401', async () => {
    const [header, payload, signature] = parts(readJwt);
    for (const alg of ['none', 'None', 'NONE']) {
      const head = b64({ ...header, alg });
      const elevated = b64({ ...payload, scope: 'admin', repo: '*' });
      for (const token of [
        `${head}.${elevated}.`,
        `${head}.${elevated}.${signature}`,
        `${head}.${b64(payload)}.`,
      ]) {
        const answer = await call(server.base, 'GET', '/proj/info/refs', token);
        assert.ok(refused(answer.status, 401), `${alg}: ${answer.status} ${answer.body}`);
        await refusedWrite(token, 401);
      }
    }
  });

  test('expired, future-dated, forged, re-scoped and algorithm-swapped JWTs are 401', async () => {
    const [header, payload, signature] = parts(readJwt);
    const ring = new TokenStore(fixture.root).keyRing();
    const key = await ring.current();
    const now = Math.floor(Date.now() / 1000);
    const sign = (
      claims: Record<string, unknown>,
      secret: Uint8Array,
      alg = 'HS256',
      kid = key.kid,
    ) => new SignJWT(claims).setProtectedHeader({ alg, typ: 'JWT', kid }).sign(secret);
    const base = { ...payload } as Record<string, unknown>;
    const attempts: [string, string][] = [
      ['expired a minute ago', await sign({ ...base, iat: now - 960, exp: now - 60 }, key.secret)],
      [
        'issued in the future',
        await sign({ ...base, iat: now + 3600, nbf: now + 3600, exp: now + 7200 }, key.secret),
      ],
      [
        'signed with another key under the real kid',
        await sign({ ...base, scope: 'admin' }, randomBytes(32)),
      ],
      ['an unknown kid', await sign(base, key.secret, 'HS256', 'k-unknown')],
      ['HS512 with the real key', await sign(base, key.secret, 'HS512')],
      ['wrong audience', await sign({ ...base, aud: 'someone-else' }, key.secret)],
      ['wrong issuer', await sign({ ...base, iss: 'someone-else' }, key.secret)],
      [
        'scope raised, signature kept',
        `${b64(header)}.${b64({ ...payload, scope: 'admin' })}.${signature}`,
      ],
      [
        'repository widened, signature kept',
        `${b64(header)}.${b64({ ...payload, repo: '*' })}.${signature}`,
      ],
      ['an API key with its secret changed', keys.write.slice(0, -4) + 'AAAA'],
      [
        'an API key of an unknown id',
        `mgk_${'0'.repeat(16)}_${randomBytes(32).toString('base64url')}`,
      ],
    ];
    for (const [what, token] of attempts) {
      const answer = await call(server.base, 'GET', '/proj/info/refs', token);
      assert.ok(refused(answer.status, 401), `${what}: ${answer.status} ${answer.body}`);
    }
    // The same claims, properly signed and current, pass: the refusals above
    // are the attempts', not a broken key ring.
    const fine = await sign({ ...base, iat: now, exp: now + 600 }, key.secret);
    assert.equal((await call(server.base, 'GET', '/proj/info/refs', fine)).status, 200);
    for (const [, token] of attempts.slice(0, 3)) await refusedWrite(token, 401);
  });

  test('a key or token for another repository is 403 there; a read key cannot write', async () => {
    const answer = await call(server.base, 'GET', '/other/info/refs', keys.read);
    assert.equal(answer.status, 403, answer.body);
    await refusedWrite(keys.other, 403, 'proj');
    await refusedWrite(readJwt, 403, 'proj');
    await refusedWrite(keys.read, 403, 'proj');
  });

  test('/auth/token never issues more than the key has', async () => {
    for (const repo of ['*', 'other', 'proj', '../other', undefined]) {
      const issued = await call(
        server.base,
        'POST',
        '/auth/token',
        keys.read,
        repo === undefined ? {} : { repo },
      );
      if (issued.status !== 200) {
        assert.ok(issued.status >= 400 && issued.status < 500, issued.body);
        continue;
      }
      const [, claims] = parts((JSON.parse(issued.body) as { token: string }).token);
      assert.equal(claims['repo'], 'proj', `asked for ${repo}`);
      assert.equal(claims['scope'], 'read', `asked for ${repo}`);
    }
    // Nor does a JWT buy a JWT of another repository.
    const again = await call(server.base, 'POST', '/auth/token', readJwt, { repo: 'other' });
    if (again.status === 200) {
      const [, claims] = parts((JSON.parse(again.body) as { token: string }).token);
      assert.equal(claims['repo'], 'proj');
      assert.equal(claims['scope'], 'read');
    } else assert.ok(again.status >= 400 && again.status < 500, again.body);
  });
});
