/**
 * The server's door, against real `mediagit serve` processes: credentials
 * and scopes, hostile repository names and bodies, size and rate limits,
 * server-side branch protection, the audit log (and no secret in any log),
 * anonymous reads, TLS with a self-signed certificate, and the schemas of
 * docs/protocol.md checked against the server's answers.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import http from 'node:http';
import { zstdCompressSync } from 'node:zlib';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import { Ajv } from 'ajv';
import { Codec } from '../src/compression/codec.ts';
import { chunkIdOf } from '../src/odb/object-id.ts';
import { encodeHeader } from '../src/odb/object-store.ts';
import { schemas } from '../src/protocol/schemas.ts';
import { pseudoRandomBytes, runCli, TempRepo, isolatedEnv } from './helpers.ts';
import { createToken, ServerProcess, useServerRoot } from './server.ts';

interface Raw {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  json: () => unknown;
}

/** One HTTP request with the path sent exactly as given (no URL normalisation). */
function raw(
  base: string,
  method: string,
  rawPath: string,
  options: { token?: string; body?: Buffer | object; type?: string } = {},
): Promise<Raw> {
  const url = new URL(base);
  const body =
    options.body === undefined
      ? undefined
      : Buffer.isBuffer(options.body)
        ? options.body
        : Buffer.from(JSON.stringify(options.body));
  const headers: http.OutgoingHttpHeaders = {};
  if (options.token) headers['authorization'] = `Bearer ${options.token}`;
  if (body) {
    headers['content-type'] =
      options.type ??
      (Buffer.isBuffer(options.body) ? 'application/octet-stream' : 'application/json');
    headers['content-length'] = body.length;
  }
  return new Promise((resolve, reject) => {
    const request = http.request(
      { host: url.hostname, port: url.port, method, path: rawPath, headers },
      (res) => {
        const parts: Buffer[] = [];
        res.on('data', (part: Buffer) => parts.push(part));
        res.on('end', () => {
          const data = Buffer.concat(parts);
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: data,
            json: () => JSON.parse(data.toString('utf8')),
          });
        });
      },
    );
    request.on('error', reject);
    request.end(body);
  });
}

function chunkRecord(data: Buffer): { id: string; record: Buffer } {
  return {
    id: chunkIdOf(data),
    record: Buffer.concat([encodeHeader('chunk', Codec.store, data.length), data]),
  };
}

async function listTree(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await fs.readdir(dir, { recursive: true, withFileTypes: true })) {
    out.push(path.join(entry.parentPath, entry.name));
  }
  return out.sort();
}

describe('server security', () => {
  const fixture = useServerRoot('sec', ['proj', 'other']);
  let outer: string;
  let root: string;
  let server: ServerProcess;
  let writeKey: string;
  let readKey: string;
  let otherRepoKey: string;

  before(async () => {
    outer = fixture.outer;
    root = fixture.root;
    writeKey = await createToken(root, 'alice', 'proj', 'write');
    readKey = await createToken(root, 'bob', 'proj', 'read');
    otherRepoKey = await createToken(root, 'carol', 'other', 'admin');
    server = await fixture.serve(['--log', 'info']);
  });

  test('no token is 401, a token for another repository 403, a read token cannot push', async () => {
    const none = await raw(server.base, 'GET', '/proj/info/refs');
    assert.equal(none.status, 401);
    assert.match(String(none.headers['www-authenticate']), /Bearer/);
    assert.equal(
      (
        await raw(server.base, 'GET', '/proj/info/refs', {
          token: 'mgk_0123456789abcdef_' + 'A'.repeat(43),
        })
      ).status,
      401,
    );
    assert.equal(
      (await raw(server.base, 'GET', '/proj/info/refs', { token: otherRepoKey })).status,
      403,
    );
    const read = await raw(server.base, 'GET', '/proj/info/refs', { token: readKey });
    assert.equal(read.status, 200);
    const { id, record } = chunkRecord(pseudoRandomBytes(1000, 1, 'sec'));
    const put = await raw(server.base, 'PUT', `/proj/chunks/${id}`, {
      token: readKey,
      body: record,
    });
    assert.equal(put.status, 403);
    assert.match((put.json() as { error: { message: string } }).error.message, /read access/);

    // The CLI says so and exits 128, as git does when the remote refuses.
    const repo = (await TempRepo.create()).withEnv({ MEDIAGIT_TOKEN: readKey });
    fixture.track(repo);
    await fs.writeFile(repo.path('a.bin'), pseudoRandomBytes(300_000, 2, 'sec'));
    await repo.ok(['add', 'a.bin']);
    await repo.ok(['commit', '-q', '-m', 'a']);
    await repo.ok(['remote', 'add', 'origin', server.url('proj')]);
    const bytesBefore = await server.metric('mediagit_http_bytes_received_total');
    const pushed = await repo.run(['push', 'origin', 'main']);
    assert.equal(pushed.code, 128, pushed.stderr);
    // Refused before any upload, in words (not at the first chunk, with its URL).
    assert.match(
      pushed.stderr,
      /^fatal: .*user bob\) has read access; pushing needs write access; nothing was sent/m,
    );
    assert.doesNotMatch(pushed.stderr, /chunks\//);
    const received = (await server.metric('mediagit_http_bytes_received_total')) - bytesBefore;
    assert.ok(received < 2000, `the refused push sent ${received} bytes`);
    const anonymous = await repo.withEnv({ MEDIAGIT_TOKEN: '' }).run(['fetch']);
    assert.equal(anonymous.code, 128);
    assert.match(anonymous.stderr, /MEDIAGIT_TOKEN|login/);
  });

  test('a read-only key is refused (403) on every write route, route by route, and nothing stored changes', async () => {
    const { id, record } = chunkRecord(pseudoRandomBytes(2000, 3, 'routes'));
    const oid = 'a'.repeat(64);
    const zeros = '0'.repeat(64);
    // Every route that changes what the server stores, with a body it would accept from a writer.
    const routes: { method: string; path: string; body?: Buffer | object; type?: string }[] = [
      { method: 'PUT', path: `/proj/chunks/${id}`, body: record },
      { method: 'PUT', path: `/proj/manifests/${oid}`, body: record },
      {
        method: 'POST',
        path: '/proj/objects/pack',
        body: Buffer.alloc(64),
        type: 'application/x-mediagit-pack',
      },
      { method: 'POST', path: '/proj/packs/begin', body: { packs: [{ name: oid, size: 1000 }] } },
      { method: 'PUT', path: `/proj/packs/${oid}`, body: Buffer.alloc(1000) },
      { method: 'POST', path: '/proj/packs/commit', body: { packs: [oid] } },
      {
        method: 'POST',
        path: '/proj/refs/update',
        body: { updates: [{ ref: 'refs/heads/main', old: zeros, new: oid }] },
      },
      { method: 'PUT', path: `/proj.git/info/lfs/objects/${oid}`, body: Buffer.alloc(10) },
      { method: 'POST', path: '/proj.git/info/lfs/verify', body: { oid, size: 10 } },
      {
        method: 'POST',
        path: '/proj.git/info/lfs/objects/batch',
        body: { operation: 'upload', objects: [{ oid, size: 10 }] },
        type: 'application/vnd.git-lfs+json',
      },
      {
        method: 'POST',
        path: '/proj.git/info/lfs/locks',
        body: { path: 'art/hero.psd' },
        type: 'application/vnd.git-lfs+json',
      },
      {
        method: 'POST',
        path: '/proj.git/info/lfs/locks/verify',
        body: {},
        type: 'application/vnd.git-lfs+json',
      },
      {
        method: 'POST',
        path: '/proj.git/info/lfs/locks/1/unlock',
        body: { force: true },
        type: 'application/vnd.git-lfs+json',
      },
      { method: 'POST', path: '/admin/repos', body: { name: 'made-by-bob' } },
      { method: 'POST', path: '/admin/gc', body: { repo: 'proj' } },
    ];
    const stored = async (): Promise<string> => {
      const lines: string[] = [];
      for (const file of await listTree(root)) {
        // The audit log records each refusal: that is the one write expected.
        if (file.includes(`${path.sep}audit`)) continue;
        const stats = await fs.stat(file);
        lines.push(
          stats.isFile() ? `${file} ${(await fs.readFile(file)).toString('base64')}` : file,
        );
      }
      return lines.join('\n');
    };
    const before = await stored();
    for (const route of routes) {
      const answer = await raw(server.base, route.method, route.path, { token: readKey, ...route });
      assert.equal(answer.status, 403, `${route.method} ${route.path}: ${answer.body.toString()}`);
      assert.match(answer.body.toString(), /read access/, `${route.method} ${route.path}`);
    }
    assert.equal(await stored(), before, 'a refused write changed what the server stores');
  });

  test('an API key is exchanged for a JWT; tampered and revoked credentials are refused', async () => {
    const issued = await raw(server.base, 'POST', '/auth/token', { token: writeKey, body: {} });
    assert.equal(issued.status, 200);
    const ajv = new Ajv({ strict: false });
    assert.ok(ajv.validate(schemas.tokenResponse, issued.json()), ajv.errorsText());
    const jwt = (issued.json() as { token: string }).token;
    assert.equal((await raw(server.base, 'GET', '/proj/info/refs', { token: jwt })).status, 200);
    const [h, p, s] = jwt.split('.');
    const flipped = `${h}.${p}.${s!.slice(0, -2)}${s!.endsWith('AA') ? 'BB' : 'AA'}`;
    assert.equal(
      (await raw(server.base, 'GET', '/proj/info/refs', { token: flipped })).status,
      401,
    );

    const doomed = await createToken(root, 'dave', 'proj', 'read');
    assert.equal((await raw(server.base, 'GET', '/proj/info/refs', { token: doomed })).status, 200);
    const id = doomed.split('_')[1]!;
    const revoked = await runCli(['token', 'revoke', '--root', root, id], {
      cwd: root,
      env: isolatedEnv(root),
    });
    assert.equal(revoked.code, 0, revoked.stderr);
    assert.equal((await raw(server.base, 'GET', '/proj/info/refs', { token: doomed })).status, 401);
  });

  test('the JWT signing key rotates without downtime: old tokens keep working, new ones name the new key', async () => {
    const kidOf = (jwt: string): unknown =>
      JSON.parse(Buffer.from(jwt.split('.')[0]!, 'base64url').toString('utf8')).kid;
    const exchange = async (): Promise<string> => {
      const issued = await raw(server.base, 'POST', '/auth/token', { token: writeKey, body: {} });
      assert.equal(issued.status, 200);
      return (issued.json() as { token: string }).token;
    };
    const before = await exchange();
    const rotated = await runCli(['token', 'rotate-signing-key', '--root', root, '--json'], {
      cwd: root,
      env: isolatedEnv(root),
    });
    assert.equal(rotated.code, 0, rotated.stderr);
    const { kid, kept } = JSON.parse(rotated.out) as { kid: string; kept: string[] };
    assert.deepEqual(kept, [kidOf(before)]);
    // The running server picks the new key up within seconds, no restart.
    const deadline = Date.now() + 15_000;
    let after = await exchange();
    while (kidOf(after) !== kid) {
      assert.ok(Date.now() < deadline, 'the server never signed with the rotated key');
      await new Promise((resolve) => setTimeout(resolve, 250));
      after = await exchange();
    }
    for (const jwt of [before, after]) {
      assert.equal((await raw(server.base, 'GET', '/proj/info/refs', { token: jwt })).status, 200);
    }
  });

  test('a decompression bomb uploaded as a chunk is 400, stores nothing, and the server stays small', async () => {
    // 32 zstd frames of 64 MiB of zeros: ~64 KiB on the wire, 2 GiB once decompressed.
    const frame = zstdCompressSync(Buffer.alloc(64 * 1024 * 1024));
    const payload = Buffer.concat(Array.from({ length: 32 }, () => frame));
    const claimed = 32 * 64 * 1024 * 1024;
    const record = Buffer.concat([encodeHeader('chunk', Codec.zstd, claimed), payload]);
    const id = chunkIdOf(Buffer.from('not these bytes'));
    const before = await listTree(path.join(root, 'proj'));
    const put = await raw(server.base, 'PUT', `/proj/chunks/${id}`, {
      token: writeKey,
      body: record,
    });
    assert.equal(put.status, 400, put.body.toString());
    assert.match(put.body.toString(), /more than a record may expand to/);
    assert.deepEqual(await listTree(path.join(root, 'proj')), before);
    const status = await fs.readFile(`/proc/${server.child.pid}/status`, 'utf8');
    const peakKiB = Number(/^VmHWM:\s+(\d+) kB/m.exec(status)?.[1]);
    assert.ok(peakKiB > 0 && peakKiB < 300 * 1024, `server peak RSS ${peakKiB} KiB`);
  });

  test('a chunk that does not hash to its ID is 400 and nothing is stored', async () => {
    const { id, record } = chunkRecord(pseudoRandomBytes(5000, 2, 'sec'));
    const bad = Buffer.from(record);
    bad[bad.length - 1]! ^= 0xff;
    const before = await listTree(path.join(root, 'proj'));
    const put = await raw(server.base, 'PUT', `/proj/chunks/${id}`, { token: writeKey, body: bad });
    assert.equal(put.status, 400);
    assert.equal((put.json() as { error: { code: string } }).error.code, 'BAD_OBJECT_RECORD');
    assert.deepEqual(await listTree(path.join(root, 'proj')), before);
    const truncated = await raw(server.base, 'PUT', `/proj/chunks/${id}`, {
      token: writeKey,
      body: record.subarray(0, record.length - 100),
    });
    assert.equal(truncated.status, 400);
    assert.equal(
      (await raw(server.base, 'GET', `/proj/chunks/${id}`, { token: writeKey })).status,
      404,
    );
    // The good record is accepted once, then deduplicated.
    const good = await raw(server.base, 'PUT', `/proj/chunks/${id}`, {
      token: writeKey,
      body: record,
    });
    assert.equal(good.status, 201);
    const again = await raw(server.base, 'PUT', `/proj/chunks/${id}`, {
      token: writeKey,
      body: record,
    });
    assert.equal(again.status, 200);
    const back = await raw(server.base, 'GET', `/proj/chunks/${id}`, { token: readKey });
    assert.deepEqual(back.body, record);
    const check = await raw(server.base, 'POST', '/proj/chunks/check', {
      token: readKey,
      body: { ids: [id, 'f'.repeat(64)] },
    });
    const ajv = new Ajv({ strict: false });
    assert.ok(ajv.validate(schemas.chunkCheckResponse, check.json()), ajv.errorsText());
    assert.deepEqual(check.json(), { missing: ['f'.repeat(64)] });
    const malformed = await raw(server.base, 'POST', '/proj/chunks/check', {
      token: readKey,
      body: { ids: ['not-an-id'] },
    });
    assert.equal(malformed.status, 400);
  });

  test('hostile repository names are 400/404 and touch nothing outside the root', async () => {
    const outside = await listTree(outer);
    const { id, record } = chunkRecord(pseudoRandomBytes(300, 3, 'sec'));
    const admin = await createToken(root, 'root', '*', 'admin');
    const names = [
      '/..',
      '/../info/refs',
      '/%2e%2e/info/refs',
      '/%2E%2E/chunks/' + id,
      '/..%2f..%2fetc/info/refs',
      '/%2Ftmp%2Fevil/info/refs',
      '/.mediagit-server/info/refs',
      '/proj%2f..%2f..%2fescape/chunks/' + id,
      '/..%5c..%5cwin/info/refs',
      '/a/b/info/refs',
    ];
    for (const name of names) {
      for (const method of ['GET', 'PUT'] as const) {
        const target =
          method === 'PUT' && !name.includes('/chunks/') ? `${name}/../chunks/${id}` : name;
        const answer = await raw(server.base, method, target, {
          token: admin,
          ...(method === 'PUT' ? { body: record } : {}),
        });
        assert.ok([400, 404].includes(answer.status), `${method} ${target} -> ${answer.status}`);
      }
    }
    const created = await raw(server.base, 'POST', '/admin/repos', {
      token: admin,
      body: { name: '../escape' },
    });
    assert.equal(created.status, 400);
    const after = (await listTree(outer)).filter((p) => !p.endsWith('audit.log'));
    assert.deepEqual(
      after,
      outside.filter((p) => !p.endsWith('audit.log')),
    );
  });

  test('oversized bodies are 413 and too many requests 429 with Retry-After', async () => {
    const small = await ServerProcess.start(root, [
      '--max-chunk-size',
      '65536',
      '--rate-limit',
      '5',
    ]);
    try {
      const { id, record } = chunkRecord(pseudoRandomBytes(100_000, 4, 'sec'));
      const big = await raw(small.base, 'PUT', `/proj/chunks/${id}`, {
        token: writeKey,
        body: record,
      });
      assert.equal(big.status, 413);
      let limited: Raw | undefined;
      for (let i = 0; i < 10 && !limited; i++) {
        const answer = await raw(small.base, 'GET', '/proj/info/refs', { token: writeKey });
        if (answer.status === 429) limited = answer;
      }
      assert.ok(limited, 'no 429 after 10 requests with a limit of 5 per minute');
      const wait = Number(limited.headers['retry-after']);
      assert.ok(wait >= 1 && wait <= 60, `Retry-After ${limited.headers['retry-after']}`);
      // Another key is not limited by this one's use.
      assert.equal(
        (await raw(small.base, 'GET', '/proj/info/refs', { token: readKey })).status,
        200,
      );
    } finally {
      await small.stop();
    }
  });

  test('protected branches refuse force-pushes and deletion on the server', async () => {
    const repo = (await TempRepo.create()).withEnv({ MEDIAGIT_TOKEN: writeKey });
    fixture.track(repo);
    await fs.writeFile(repo.path('f.txt'), 'one\n');
    await repo.ok(['add', 'f.txt']);
    await repo.ok(['commit', '-q', '-m', 'one']);
    await repo.ok(['remote', 'add', 'origin', server.url('proj')]);
    await repo.ok(['push', 'origin', 'main']);
    const protect = await runCli(['branch', '--protect', 'main'], {
      cwd: path.join(root, 'proj'),
      env: isolatedEnv(root),
    });
    assert.equal(protect.code, 0, protect.stderr);
    await fs.writeFile(repo.path('f.txt'), 'rewritten\n');
    await repo.ok(['add', 'f.txt']);
    await repo.ok(['commit', '-q', '--amend', '-m', 'rewritten']);
    const forced = await repo.run(['push', '--force', '--json', 'origin', 'main']);
    assert.equal(forced.code, 1);
    const result = JSON.parse(forced.out) as { refs: { ok: boolean; reason: string }[] };
    assert.deepEqual(
      result.refs.map((r) => [r.ok, r.reason]),
      [[false, 'protected']],
    );
    const deleted = await repo.run(['push', '--json', '--delete', 'origin', 'main']);
    assert.equal(deleted.code, 1);
    assert.equal(
      (JSON.parse(deleted.out) as { refs: { reason: string }[] }).refs[0]!.reason,
      'protected',
    );
    const refs = await raw(server.base, 'GET', '/proj/info/refs', { token: readKey });
    const ajv = new Ajv({ strict: false });
    assert.ok(ajv.validate(schemas.infoRefs, refs.json()), ajv.errorsText());
  });

  test('the audit log records ref updates and refusals; no log holds a secret', async () => {
    const lines = (await fs.readFile(path.join(root, '.mediagit-server', 'audit.log'), 'utf8'))
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    const update = lines.find((l) => l['action'] === 'ref-update' && l['outcome'] === 'ok');
    assert.ok(update, 'no ref-update entry');
    assert.equal(update['user'], 'alice');
    assert.equal(update['ip'], '127.0.0.1');
    const refs = update['refs'] as { ref: string; old: string | null; new: string }[];
    assert.equal(refs[0]!.ref, 'refs/heads/main');
    assert.match(refs[0]!.new, /^[0-9a-f]{64}$/);
    assert.ok(lines.some((l) => l['action'] === 'auth' && l['outcome'] === 'denied'));
    const denied = lines.find((l) => l['action'] === 'ref-update' && l['outcome'] === 'denied');
    assert.ok(denied, 'the protected-branch refusal is not in the audit log');
    const logs = [
      await fs.readFile(path.join(root, '.mediagit-server', 'audit.log'), 'utf8'),
      server.stderr,
    ];
    assert.ok(server.stderr.length > 0, 'the server logged nothing at --log info');
    for (const text of logs) {
      for (const secret of [writeKey, readKey, otherRepoKey]) {
        assert.equal(text.includes(secret), false, 'an API key appears in a log');
        // mgk_<id>_<secret>: the secret is everything after the second '_'
        // (base64url, so it may hold '_' itself).
        const secretPart = secret.slice(secret.indexOf('_', 4) + 1);
        assert.ok(secretPart.length >= 43);
        assert.equal(text.includes(secretPart), false, 'an API key secret appears in a log');
      }
      assert.equal(/eyJ[A-Za-z0-9_-]+\.eyJ/.test(text), false, 'a JWT appears in a log');
    }
    const metrics = await server.metric('mediagit_http_requests_total');
    assert.ok(metrics > 10, `requests counted: ${metrics}`);
    assert.ok((await server.metric('mediagit_auth_failures_total')) >= 3);
  });

  test('anonymous reads only when the server allows them', async () => {
    const open = await ServerProcess.start(root, ['--allow-anonymous-read']);
    try {
      assert.equal((await raw(open.base, 'GET', '/proj/info/refs')).status, 200);
      const { id, record } = chunkRecord(pseudoRandomBytes(100, 5, 'sec'));
      assert.equal(
        (await raw(open.base, 'PUT', `/proj/chunks/${id}`, { body: record })).status,
        401,
      );
      const clone = await runCli(['clone', open.url('proj'), path.join(outer, 'anon')], {
        cwd: outer,
        env: isolatedEnv(outer),
      });
      assert.equal(clone.code, 0, clone.stderr);
      assert.equal(await fs.readFile(path.join(outer, 'anon', 'f.txt'), 'utf8'), 'one\n');
    } finally {
      await open.stop();
      await fs.rm(path.join(outer, 'anon'), { recursive: true, force: true });
    }
  });

  test('HTTPS with a self-signed certificate, trusted through MEDIAGIT_CA_FILE', async () => {
    const tls = await ServerProcess.start(root, ['--tls-self-signed']);
    try {
      assert.match(tls.base, /^https:\/\//);
      const cert = path.join(root, '.mediagit-server', 'tls', 'self-signed.pem');
      const env = { ...isolatedEnv(outer), MEDIAGIT_TOKEN: readKey };
      const untrusted = await runCli(['clone', tls.url('proj'), path.join(outer, 'tls1')], {
        cwd: outer,
        env,
      });
      assert.equal(untrusted.code, 128);
      assert.match(untrusted.stderr, /certificate/i);
      const trusted = await runCli(['clone', tls.url('proj'), path.join(outer, 'tls2')], {
        cwd: outer,
        env: { ...env, MEDIAGIT_CA_FILE: cert },
      });
      assert.equal(trusted.code, 0, trusted.stderr);
      assert.equal(await fs.readFile(path.join(outer, 'tls2', 'f.txt'), 'utf8'), 'one\n');
    } finally {
      await tls.stop();
    }
  });
});
