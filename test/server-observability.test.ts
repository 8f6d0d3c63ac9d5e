/**
 * The server's observability (docs/observability.md), against one real
 * `mediagit serve` on an S3 root (s3rver on loopback, so Git LFS batches
 * hand out signed URLs) logging at debug level to a file: push, login and
 * clone, fetch, Git LFS through the server and direct, and failing requests
 * (bad and missing credentials, 403, 404s, a 500). Then: every log line is
 * JSON and every line of a request carries its ID, which every answer
 * echoes in `x-request-id` and its audit events carry; no token, key,
 * password, JWT or signed-URL signature the test used is in the log or the
 * audit events; the log file is reopened on SIGHUP; `/metrics` passes
 * `promtool check metrics` with no findings and has latency by route and
 * status, bytes in and out, deduplicated chunks and storage operations.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import { Codec } from '../src/compression/codec.ts';
import { MediaGitError } from '../src/errors.ts';
import { objectIdOf } from '../src/odb/object-id.ts';
import { encodeHeader } from '../src/odb/object-store.ts';
import { HttpTransport } from '../src/protocol/http-transport.ts';
import { loggableHeaders, requestIdOf, scrubText, serializeError } from '../src/server/logging.ts';
import { S3_SECRET_KEY } from './emulators/index.ts';
import { pseudoRandomBytes, runCli, TempRepo } from './helpers.ts';
import { useCloudRoot, type ServerProcess } from './server.ts';

const MiB = 1024 * 1024;

interface LogLine {
  level: string;
  time: string;
  msg: string;
  reqId?: string;
  req?: { method: string; url: string };
  res?: { statusCode: number | string };
  headers?: Record<string, string>;
  route?: string;
  user?: string;
  error?: { code: string; message: string };
  err?: { type: string; message: string; stack?: string };
}

/** The value of one metric sample, exactly as labelled (0 when absent). */
function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const open = line.indexOf('{');
    const labelText = open === -1 ? '' : line.slice(open + 1, line.lastIndexOf('}'));
    const found = Object.fromEntries(
      [...labelText.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]),
    );
    const want = Object.entries(labels);
    if (want.length === Object.keys(found).length && want.every(([k, v]) => found[k] === v)) {
      return Number(line.slice(line.lastIndexOf(' ') + 1));
    }
  }
  return 0;
}

function promtool(text: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('promtool', ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
    child.stdin.end(text);
  });
}

describe('server observability', () => {
  const fixture = useCloudRoot('s3', 'obs', ['proj']);
  let server: ServerProcess;
  let logFile: string;
  let writeKey: string;
  let readKey: string;
  /** Every credential and signature this file hands to anyone. */
  const secrets = new Set<string>();
  /** x-request-id and status of every answer the test itself received. */
  const answers: { id: string; status: number; what: string }[] = [];

  const metricsText = async (): Promise<string> => (await fetch(`${server.base}/metrics`)).text();
  const logLines = async (file = logFile): Promise<LogLine[]> =>
    (await fs.readFile(file, 'utf8'))
      .split('\n')
      .filter((line) => line !== '')
      .map((line, i) => {
        try {
          return JSON.parse(line) as LogLine;
        } catch {
          assert.fail(`log line ${i + 1} is not JSON: ${line}`);
        }
      });
  /** The log once the completion line of every request in `ids` is in it (bounded wait). */
  const logWith = async (ids: readonly string[], file = logFile): Promise<LogLine[]> => {
    // A request's line is written once its answer is handed to the socket,
    // which may be just after the client has read the answer.
    for (let attempt = 0; ; attempt++) {
      const lines = await logLines(file).catch(() => []);
      const done = new Set(lines.filter((l) => l.msg === 'request completed').map((l) => l.reqId));
      if (ids.every((id) => done.has(id)) || attempt >= 50) return lines;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };
  const auditText = async (): Promise<string> => {
    const backend = await fixture.backend();
    let text = '';
    for await (const key of backend.list('.mediagit-server/audit/')) {
      text += Buffer.from(await backend.get(key)).toString('utf8');
    }
    return text;
  };
  /** One request to the server, its answer's ID and status remembered. */
  const call = async (what: string, url: string, init: RequestInit = {}): Promise<Response> => {
    const response = await fetch(url, init);
    const id = response.headers.get('x-request-id');
    assert.ok(id, `${what}: no x-request-id in the answer (HTTP ${response.status})`);
    answers.push({ id, status: response.status, what });
    return response;
  };

  before(async () => {
    logFile = path.join(fixture.outer, 'server.log');
    writeKey = await fixture.createToken('alice', 'proj', 'write');
    readKey = await fixture.createToken('bob', 'proj', 'read');
    for (const key of [writeKey, readKey]) {
      secrets.add(key);
      // mgk_<id>_<secret>: the secret part alone must not leak either.
      secrets.add(key.slice(key.indexOf('_', 4) + 1));
    }
    secrets.add(S3_SECRET_KEY);
    server = await fixture.serve(['--log-file', logFile, '--log-level', 'debug']);
  });

  test('push, login and clone, fetch, and Git LFS leave their traces in metrics', async () => {
    const a = fixture.track(
      (await TempRepo.create({ chunkThreshold: MiB })).withEnv({ MEDIAGIT_TOKEN: writeKey }),
    );
    const big = pseudoRandomBytes(6 * MiB, 1, 'observability');
    await fs.writeFile(a.path('big.bin'), big);
    await a.ok(['add', 'big.bin']);
    await a.ok(['commit', '-q', '-m', 'first']);
    await a.ok(['remote', 'add', 'origin', server.url('proj')]);
    const before = await metricsText();
    await a.ok(['push', '-u', 'origin', 'main']);

    // A clone with a key stored by `login` (read from standard input).
    const b = fixture.track(await TempRepo.create({ init: false }));
    const login = await runCli(['login', server.url('proj')], {
      cwd: b.root,
      env: b.env,
      input: `${readKey}\n`,
    });
    assert.equal(login.code, 0, login.stderr);
    await fs.rmdir(b.dir);
    const cloned = await runCli(['clone', '-q', server.url('proj'), b.dir], {
      cwd: b.root,
      env: b.env,
    });
    assert.equal(cloned.code, 0, cloned.stderr);
    assert.ok((await fs.readFile(b.path('big.bin'))).equals(big));

    // 4 KiB inserted in the middle: the next push sends a few chunks, the
    // server is told it has the others.
    const edited = Buffer.concat([
      big.subarray(0, 3 * MiB),
      pseudoRandomBytes(4096, 2),
      big.subarray(3 * MiB),
    ]);
    await fs.writeFile(a.path('big.bin'), edited);
    await a.ok(['commit', '-q', '-a', '-m', 'edit']);
    await a.ok(['push', '-q']);
    await b.ok(['fetch', '-q']);

    // Git LFS: the batch hands out signed URLs to the store (S3) and
    // transfer tokens; an upload and a download through the server itself
    // carry the object's bytes both ways.
    const jwt = (
      (await (
        await call('auth/token', `${server.base}/auth/token`, {
          method: 'POST',
          headers: { authorization: `Bearer ${writeKey}`, 'content-type': 'application/json' },
          body: '{}',
        })
      ).json()) as { token: string }
    ).token;
    secrets.add(jwt);
    const basic = Buffer.from(`alice:${jwt}`).toString('base64');
    secrets.add(basic);
    const lfs = `${server.url('proj')}.git/info/lfs`;
    const headers = {
      authorization: `Basic ${basic}`,
      accept: 'application/vnd.git-lfs+json',
      'content-type': 'application/vnd.git-lfs+json',
    };
    const content = pseudoRandomBytes(2 * MiB, 3, 'observability-lfs');
    const oid = createHash('sha256').update(content).digest('hex');
    const batch = await call('lfs batch', `${lfs}/objects/batch`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ operation: 'upload', objects: [{ oid, size: content.length }] }),
    });
    assert.equal(batch.status, 200);
    const answer = (await batch.json()) as {
      objects: { actions: Record<string, { href: string; header?: Record<string, string> }> }[];
    };
    const actions = answer.objects[0]!.actions;
    const signed = new URL(actions['upload']!.href);
    const signature = signed.searchParams.get('X-Amz-Signature');
    assert.ok(signature, `the upload is a signed URL to the store: ${signed.origin}`);
    secrets.add(signature);
    const transferToken = actions['verify']!.header!['Authorization']!.replace(/^Bearer /, '');
    secrets.add(transferToken);

    const inBefore = sample(await metricsText(), 'mediagit_http_bytes_received_total');
    const put = await call('lfs upload', `${lfs}/objects/${oid}`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${transferToken}`, 'content-type': 'application/zip' },
      body: content,
    });
    assert.equal(put.status, 200, await put.text());
    const outBefore = sample(await metricsText(), 'mediagit_http_bytes_sent_total');
    const got = await call('lfs download', `${lfs}/objects/${oid}`, {
      headers: { authorization: `Bearer ${jwt}` },
    });
    assert.ok(Buffer.from(await got.arrayBuffer()).equals(content));
    const after = await metricsText();
    const bytesIn = sample(after, 'mediagit_http_bytes_received_total') - inBefore;
    const bytesOut = sample(after, 'mediagit_http_bytes_sent_total') - outBefore;
    // The body, plus the small JSON answers of the /metrics reads in between.
    assert.ok(bytesIn >= content.length && bytesIn < content.length + 64 * 1024, `in ${bytesIn}`);
    assert.ok(
      bytesOut >= content.length && bytesOut < content.length + 256 * 1024,
      `out ${bytesOut}`,
    );

    const dedup = sample(after, 'mediagit_chunks_deduplicated_total');
    assert.ok(dedup > sample(before, 'mediagit_chunks_deduplicated_total'), `dedup ${dedup}`);
    // The repository's store was used through the metered backend: puts of
    // pushed objects, gets and lists of reads.
    for (const operation of ['put', 'get', 'list', 'head']) {
      assert.ok(
        sample(after, 'mediagit_storage_operation_duration_seconds_count', { operation }) > 0,
        `no ${operation} storage operations counted`,
      );
    }
  });

  test('failing requests: each answer names its request; a 500 names it to the CLI too', async () => {
    const refs = `${server.url('proj')}/info/refs`;
    assert.equal((await call('no credentials', refs)).status, 401);
    const badKey = `mgk_0123456789abcdef_${'B'.repeat(43)}`;
    secrets.add(badKey);
    const bad = await call('bad key', refs, { headers: { authorization: `Bearer ${badKey}` } });
    assert.equal(bad.status, 401);
    const forgedJwt = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJtYWxsb3J5In0.c2lnbmF0dXJlLW5vdC12YWxpZA';
    secrets.add(forgedJwt);
    const forged = await call('forged JWT', refs, {
      headers: { authorization: `Bearer ${forgedJwt}` },
    });
    assert.equal(forged.status, 401);
    const readOnly = await call('read key writes', `${server.url('proj')}/refs/update`, {
      method: 'POST',
      headers: { authorization: `Bearer ${readKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ updates: [] }),
    });
    assert.equal(readOnly.status, 403);
    assert.equal((await call('no route', `${server.base}/no/such/route`)).status, 404);
    const missing = await call(
      'missing manifest',
      `${server.url('proj')}/manifests/${'0'.repeat(64)}`,
      {
        headers: { authorization: `Bearer ${readKey}` },
      },
    );
    assert.equal(missing.status, 404);
    // Credentials in a query string (a misconfigured client, a pasted
    // signed URL) are not logged with the request line.
    const querySignature = 'f'.repeat(64);
    secrets.add(querySignature);
    const query = `?access_token=${writeKey}&X-Amz-Signature=${querySignature}&want=1`;
    assert.equal((await call('query secrets', `${refs}${query}`)).status, 401);

    // A request ID from a proxy is kept; one that is unsafe or shaped like
    // a credential is replaced by the server's own.
    const given = await call('given id', `${server.base}/healthz`, {
      headers: { 'x-request-id': 'lb-7f3a9c:01' },
    });
    assert.equal(given.headers.get('x-request-id'), 'lb-7f3a9c:01');
    for (const unsafe of ['has space', 'x'.repeat(200), writeKey]) {
      const replaced = await call('unsafe id', `${server.base}/healthz`, {
        headers: { 'x-request-id': unsafe },
      });
      assert.notEqual(replaced.headers.get('x-request-id'), unsafe);
      assert.match(replaced.headers.get('x-request-id')!, /^[0-9a-f-]{36}$/);
    }

    // A commit the store holds that does not parse is the server's 500
    // ("internal error"): the CLI's message names the request, to be found
    // in the server's log.
    const nonsense = Buffer.from('not a commit');
    const corrupt = objectIdOf('commit', nonsense);
    await (
      await fixture.backend()
    ).put(
      `proj/objects/${corrupt.slice(0, 2)}/${corrupt.slice(2)}`,
      Buffer.concat([encodeHeader('commit', Codec.store, nonsense.length), nonsense]),
    );
    const transport = new HttpTransport(server.url('proj'), { token: writeKey });
    try {
      await assert.rejects(transport.want({ wants: [corrupt], haves: [] }), (error: unknown) => {
        assert.ok(error instanceof MediaGitError);
        assert.equal(error.data['status'], 500, error.message);
        const id = error.data['requestId'];
        assert.equal(typeof id, 'string');
        assert.ok(error.message.includes(`(request ID ${String(id)})`), error.message);
        answers.push({ id: String(id), status: 500, what: 'corrupt object' });
        return true;
      });
    } finally {
      await transport.close();
    }
  });

  test('every log line is JSON with its request ID; answers and audit events match the log', async () => {
    const lines = await logWith(answers.map((a) => a.id));
    assert.ok(lines.length > 50, `only ${lines.length} log lines`);
    const byId = new Map<string, LogLine[]>();
    for (const line of lines) {
      assert.equal(typeof line.time, 'string');
      assert.ok(['debug', 'info', 'warn', 'error'].includes(line.level), line.level);
      if (line.reqId === undefined) {
        // Lines outside requests: the server's own start.
        assert.equal(line.req, undefined, JSON.stringify(line));
        assert.match(line.msg, /^Server listening at /, JSON.stringify(line));
        continue;
      }
      byId.set(line.reqId, [...(byId.get(line.reqId) ?? []), line]);
    }
    for (const [id, group] of byId) {
      const done = group.filter((l) => l.msg === 'request completed');
      assert.equal(done.length, 1, `request ${id}: ${done.length} completion lines`);
      assert.ok(
        group.some((l) => l.msg === 'incoming request'),
        `request ${id}: no debug line at its start`,
      );
    }
    for (const { id, status, what } of answers) {
      const done = byId.get(id)?.find((l) => l.msg === 'request completed');
      assert.ok(done, `${what}: no log line for request ${id}`);
      assert.equal(done.res?.statusCode, status, `${what}: status in the log`);
      if (status >= 400) assert.ok(done.error?.code, `${what}: no error code in the log`);
    }
    // The 500: a line at error level with the failure, under the same ID.
    const failed = answers.find((a) => a.status === 500)!;
    const errorLine = byId.get(failed.id)!.find((l) => l.level === 'error');
    assert.ok(errorLine?.err?.message, 'the 500 has no error line');
    // Credentials in requests are logged redacted, never dropped silently.
    const withAuth = lines.find((l) => l.headers?.['authorization'] !== undefined);
    assert.equal(withAuth?.headers?.['authorization'], '[redacted]');
    const queried = lines.find((l) => l.req?.url.includes('X-Amz-Signature'));
    assert.match(
      queried!.req!.url,
      /access_token=\[redacted\]&X-Amz-Signature=\[redacted\]&want=1/,
    );

    // Audit events carry the ID of the request that made them.
    const audit = (await auditText())
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as { action: string; outcome: string; requestId?: string });
    const badKey = answers.find((a) => a.what === 'bad key')!;
    assert.ok(
      audit.some((e) => e.action === 'auth' && e.requestId === badKey.id),
      'the refused key has no audit event with its request ID',
    );
    const update = audit.find((e) => e.action === 'ref-update' && e.outcome === 'ok');
    const updateLine = byId
      .get(update?.requestId ?? '')
      ?.find((l) => l.msg === 'request completed');
    assert.equal(updateLine?.route, '/:repo/refs/update');
    assert.equal(updateLine?.user, 'alice');
  });

  test('no secret the test used is in the log or the audit events', async () => {
    const texts = { log: await fs.readFile(logFile, 'utf8'), audit: await auditText() };
    assert.ok(secrets.size >= 10, `${secrets.size} secrets`);
    for (const [where, text] of Object.entries(texts)) {
      assert.ok(text.length > 0, `the ${where} is empty`);
      for (const secret of secrets) {
        assert.equal(
          text.includes(secret),
          false,
          `a secret (${secret.slice(0, 8)}…) is in the ${where}`,
        );
      }
      assert.doesNotMatch(text, /mgk_[A-Za-z0-9_-]{16,}/, `an API key is in the ${where}`);
      assert.doesNotMatch(text, /eyJ[A-Za-z0-9_-]+\.eyJ/, `a JWT is in the ${where}`);
      assert.doesNotMatch(text, /X-Amz-Signature=[0-9a-f]/i, `a signature is in the ${where}`);
    }
  });

  test('the log file is reopened on SIGHUP (log rotation)', async () => {
    const rotated = `${logFile}.1`;
    await fs.rename(logFile, rotated);
    server.child.kill('SIGHUP');
    // The reopen is logged to the new file; wait for it, then log a request.
    let lines: LogLine[] = [];
    for (let i = 0; i < 100 && !lines.some((l) => l.msg === 'log file reopened'); i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      lines = await logLines().catch(() => []);
    }
    assert.ok(
      lines.some((l) => l.msg === 'log file reopened'),
      'no new log file after SIGHUP',
    );
    const ping = await call('after rotation', `${server.base}/healthz`);
    assert.equal(ping.status, 200);
    const id = ping.headers.get('x-request-id')!;
    assert.ok((await logWith([id])).some((l) => l.reqId === id && l.msg === 'request completed'));
    assert.ok(!(await logLines(rotated)).some((l) => l.reqId === id), 'written to the old file');
    assert.equal((await fs.stat(logFile)).mode & 0o777, 0o640);
  });

  test('/metrics passes promtool check metrics, with latency by route and status', async () => {
    const text = await metricsText();
    const checked = await promtool(text);
    assert.equal(checked.code, 0, checked.output);
    assert.equal(checked.output.trim(), '', 'promtool has lint findings');
    const latency = (route: string, status: string, method = 'GET') =>
      sample(text, 'mediagit_http_request_duration_seconds_count', { method, route, status });
    assert.ok(latency('/:repo/info/refs', '200') > 0);
    assert.ok(latency('/:repo/info/refs', '401') >= 3);
    assert.ok(latency('/:repo/refs/update', '403', 'POST') >= 1);
    assert.ok(latency('/:repo/objects/want', '500', 'POST') >= 1);
    assert.ok(latency('unknown', '404') >= 1);
    assert.ok(
      sample(text, 'mediagit_storage_operation_errors_total', {
        operation: 'get',
        code: 'STORAGE_NOT_FOUND',
      }) >= 1,
      'the missing manifest was a failed get of the store',
    );
    for (const name of ['mediagit_gc_runs_total', 'mediagit_gc_bytes_reclaimed_total']) {
      assert.match(text, new RegExp(`^# TYPE ${name} counter$`, 'm'));
    }
  });

  test('scrubbing and request IDs, unit by unit', () => {
    const url =
      'https://bucket.s3.amazonaws.com/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA%2F1&X-Amz-Signature=abc123&sig=zz&token=t0k&keep=1';
    assert.equal(
      scrubText(url),
      'https://bucket.s3.amazonaws.com/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=[redacted]&X-Amz-Signature=[redacted]&sig=[redacted]&token=[redacted]&keep=1',
    );
    assert.equal(scrubText('https://user:hunter2@host/x'), 'https://[redacted]@host/x');
    assert.equal(
      scrubText('Authorization: Bearer abcdefgh12345'),
      'Authorization: Bearer [redacted]',
    );
    assert.equal(
      scrubText('DefaultEndpointsProtocol=https;AccountName=a;AccountKey=c2VjcmV0;x=1'),
      'DefaultEndpointsProtocol=https;AccountName=a;AccountKey=[redacted];x=1',
    );
    // An SDK error whose message and raw response hold a signed URL.
    const sdk = Object.assign(new Error(`PUT ${url} failed`), {
      $metadata: { httpStatusCode: 403, requestId: 'R1' },
      $response: { request: { url } },
    });
    const wrapped = new MediaGitError('STORAGE_ACCESS_DENIED', 'storage s3: denied', {
      data: { key: 'a/b', authorization: 'AWS4-HMAC-SHA256 Signature=abc123' },
      cause: sdk,
    });
    const logged = JSON.stringify(serializeError(wrapped));
    assert.doesNotMatch(logged, /abc123|t0k|AKIA/);
    assert.match(logged, /"requestId":"R1"/);
    assert.match(logged, /"code":"STORAGE_ACCESS_DENIED"/);
    assert.deepEqual(
      loggableHeaders({
        authorization: 'Basic YWxpY2U6c2VjcmV0',
        cookie: 'session=s3cr3t',
        'x-api-key': 'k3y',
        referer: 'https://example.com/?token=t0k',
        'user-agent': 'git-lfs/3.3.0',
      }),
      {
        authorization: '[redacted]',
        cookie: '[redacted]',
        'x-api-key': '[redacted]',
        referer: 'https://example.com/?token=[redacted]',
        'user-agent': 'git-lfs/3.3.0',
      },
    );
    assert.equal(requestIdOf('abc-1'), 'abc-1');
    assert.notEqual(requestIdOf('a b'), 'a b');
    assert.notEqual(requestIdOf(['eyJa.eyJb.c']), 'eyJa.eyJb.c');
  });
});
