/**
 * Property-based fuzzing of every HTTP endpoint of `mediagit serve` (issue
 * 18): fast-check generates requests — path segments, JSON bodies that are
 * near the schema and far from it, binary bodies, content types, sizes,
 * ranges and credentials — and a real server on loopback must answer every
 * one without a 5xx and without dying. `npm test` sends MEDIAGIT_FUZZ_RUNS
 * (default 150) requests per endpoint; `npm run fuzz` sends 10,000 each.
 * The seed is printed; MEDIAGIT_FUZZ_SEED replays a run.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import fc from 'fast-check';
import { pseudoRandomBytes, runCli, sha256, TempRepo } from './helpers.ts';
import { createToken, ServerProcess, useServerRoot } from './server.ts';

const RUNS = Number(process.env['MEDIAGIT_FUZZ_RUNS'] ?? 150);
const SEED = Number(process.env['MEDIAGIT_FUZZ_SEED'] ?? Date.now() % 2 ** 31);
/** Requests in flight at once (keep-alive sockets). */
const PARALLEL = 16;

interface FuzzRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: Buffer;
}

interface Answer {
  status: number;
  body: string;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: PARALLEL });

function send(base: URL, request: FuzzRequest): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { ...request.headers };
    if (request.body) headers['content-length'] = request.body.length;
    const req = http.request(
      {
        host: base.hostname,
        port: base.port,
        method: request.method,
        path: request.path,
        headers,
        agent,
      },
      (res) => {
        const parts: Buffer[] = [];
        let size = 0;
        res.on('data', (part: Buffer) => {
          // The status is what is checked; keep only the start of big answers.
          if (size < 4096) parts.push(part);
          size += part.length;
        });
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            body: Buffer.concat(parts).toString('utf8').slice(0, 500),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(request.body);
  });
}

/** A readable copy of a request for a failure message. */
function describeRequest(request: FuzzRequest): string {
  const body = request.body ? request.body.toString('utf8').slice(0, 300) : '';
  return `${request.method} ${request.path} ${JSON.stringify(request.headers)} ${JSON.stringify(body)}`;
}

const HEX = '0123456789abcdef'.split('');

/**
 * A path as sent on the wire: what an HTTP client cannot put there raw
 * (spaces, controls, non-ASCII) percent-encoded; `%`, `/` and dots stay as
 * generated, so hostile sequences reach the server as they are.
 */
function sendable(rawPath: string): string {
  return rawPath.replace(/[^\x21-\x7e]/gu, (c) => encodeURIComponent(c));
}

describe('fuzzing every endpoint of a real server', () => {
  const fixture = useServerRoot('fuzz', ['proj', 'other']);
  let server: ServerProcess;
  let base: URL;
  let tokens: { admin: string; write: string; read: string; other: string };
  /** IDs that exist in the repository (commit, tree, manifest, chunks) and an LFS OID. */
  const known: string[] = [];
  let knownOid = '';

  before(async () => {
    const root = fixture.root;
    tokens = {
      admin: await createToken(root, 'root', '*', 'admin'),
      write: await createToken(root, 'alice', 'proj', 'write'),
      read: await createToken(root, 'bob', 'proj', 'read'),
      other: await createToken(root, 'carol', 'other', 'write'),
    };
    // Errors only: a log line per request would be most of the run's work.
    // Rate limits high enough that the requests reach the routes (a 429 for
    // most of them would test only the limiter).
    server = await fixture.serve([
      '--log-level',
      'error',
      '--ip-rate-limit',
      '100000000',
      '--rate-limit',
      '100000000',
    ]);
    base = new URL(server.base);
    // Some content, so that requests naming real objects reach deeper code.
    const repo = fixture.track(await TempRepo.create({ chunkThreshold: 65536 }));
    const content = pseudoRandomBytes(300_000, 7);
    await fs.writeFile(repo.path('a.bin'), content);
    await fs.writeFile(repo.path('b.txt'), 'hello\n');
    await repo.ok(['add', '.']);
    await repo.ok(['commit', '-q', '-m', 'one']);
    await repo.ok(['remote', 'add', 'origin', server.url('proj')]);
    const push = await runCli(['push', '-q', 'origin', 'main'], {
      cwd: repo.dir,
      env: { ...repo.env, MEDIAGIT_TOKEN: tokens.write },
    });
    assert.equal(push.code, 0, push.stderr);
    // Every object the client holds is on the server now.
    for (const entry of await fs.readdir(path.join(repo.gitDir, 'objects'), { recursive: true })) {
      const id = entry.replaceAll('/', '');
      if (/^[0-9a-f]{64}$/.test(id)) known.push(id);
    }
    assert.ok(known.length >= 4, `objects: ${known.join(' ')}`);
    knownOid = sha256(content);
  });

  // ---- generators -------------------------------------------------------

  const hexId = fc.string({ unit: fc.constantFrom(...HEX), minLength: 64, maxLength: 64 });
  const anyId = (): fc.Arbitrary<string> =>
    fc.oneof(
      { weight: 3, arbitrary: fc.constantFrom(...known, knownOid) },
      { weight: 3, arbitrary: hexId },
      { weight: 1, arbitrary: fc.string({ maxLength: 80 }) },
      {
        weight: 1,
        arbitrary: fc.string({ unit: fc.constantFrom(...HEX, 'A', 'g'), maxLength: 70 }),
      },
    );
  const hostileSegment = fc.constantFrom(
    '..',
    '.',
    '%2e%2e',
    '..%2f..%2fetc',
    '.mediagit',
    '.mediagit-server',
    '%00',
    'a%2fb',
    '%ff%fe',
    '~',
    '-',
    'CON',
    'x'.repeat(300),
  );
  const segment = (valid: fc.Arbitrary<string>): fc.Arbitrary<string> =>
    fc.oneof(
      { weight: 6, arbitrary: valid },
      { weight: 2, arbitrary: hostileSegment },
      { weight: 2, arbitrary: fc.string({ maxLength: 40 }).map(encodeURIComponent) },
    );
  const repoSegment = segment(fc.constantFrom('proj', 'proj.git', 'other', 'nope'));
  const idSegment = segment(anyId());
  const refName = fc.oneof(
    fc.constantFrom('refs/heads/main', 'refs/heads/x', 'refs/tags/v1', 'refs/heads/../x'),
    fc.string({ maxLength: 60 }).map((s) => `refs/${s}`),
    fc.string({ maxLength: 30 }),
  );
  /** Any JSON value, sometimes with the fields a schema names. */
  const junk = fc.jsonValue({ maxDepth: 3 });
  const idList = fc.oneof(
    fc.array(anyId(), { maxLength: 6 }),
    fc.array(hexId, { minLength: 0, maxLength: 3000 }),
    junk,
  );
  const number = fc.oneof(
    fc.integer(),
    fc.double(),
    fc.constantFrom(0, -1, 48, 2 ** 31, 2 ** 53, 1099511627776 + 1),
    junk,
  );
  const jsonBody = (shape: fc.Arbitrary<unknown>): fc.Arbitrary<Buffer> =>
    fc
      .oneof({ weight: 5, arbitrary: shape }, { weight: 2, arbitrary: junk })
      .map((value) => Buffer.from(JSON.stringify(value) ?? 'null'));
  const binary = fc.oneof(
    fc.uint8Array({ maxLength: 2048 }).map((a) => Buffer.from(a)),
    fc.string({ maxLength: 200 }).map((s) => Buffer.from(s)),
    fc.constantFrom(Buffer.alloc(0), Buffer.from('MGPK'), Buffer.from('\u0028\u00b5\u002f\u00fd')),
  );

  const bodies: Record<string, fc.Arbitrary<Buffer>> = {
    none: fc.constant(Buffer.alloc(0)),
    binary,
    token: jsonBody(fc.record({ repo: fc.oneof(repoSegment, junk) }, { requiredKeys: [] })),
    keyFile: jsonBody(
      fc.record(
        {
          version: fc.oneof(fc.constant(1), junk),
          repository: fc.oneof(fc.stringMatching(/^[0-9a-f]{32}$/), junk),
          slots: fc.oneof(
            fc.array(
              fc.record(
                {
                  id: fc.oneof(fc.stringMatching(/^[0-9a-f]{16}$/), junk),
                  kind: fc.oneof(fc.constantFrom('passphrase', 'keyfile'), junk),
                  wrapped: fc.oneof(fc.stringMatching(/^[A-Za-z0-9+/]{80}$/), junk),
                  kdf: junk,
                },
                { requiredKeys: [] },
              ),
              { maxLength: 3 },
            ),
            junk,
          ),
        },
        { requiredKeys: [] },
      ),
    ),
    createRepo: jsonBody(
      fc.record(
        {
          name: fc.oneof(segment(fc.constantFrom('new-repo', 'proj')), junk),
          defaultBranch: fc.oneof(fc.string(), junk),
        },
        { requiredKeys: [] },
      ),
    ),
    gc: jsonBody(
      fc.record(
        {
          repo: fc.oneof(repoSegment, junk),
          graceSeconds: number,
          dryRun: fc.oneof(fc.constant(true), junk),
        },
        { requiredKeys: [] },
      ),
    ),
    want: jsonBody(
      fc.record(
        {
          wants: idList,
          haves: idList,
          depth: number,
          shallow: idList,
          filter: fc.oneof(
            fc.constantFrom('blob:none', 'blob:limit=0', 'blob:limit=9999999999999999'),
            fc.string(),
          ),
        },
        { requiredKeys: [] },
      ),
    ),
    ids: jsonBody(fc.record({ ids: idList }, { requiredKeys: [] })),
    locate: jsonBody(
      fc.record(
        { ids: idList, direct: fc.oneof(fc.boolean(), junk), gone: idList },
        { requiredKeys: [] },
      ),
    ),
    refs: jsonBody(
      fc.record(
        {
          updates: fc.oneof(
            fc.array(
              fc.record(
                {
                  ref: refName,
                  old: fc.oneof(fc.constant(null), anyId()),
                  new: fc.oneof(fc.constant(null), anyId()),
                  force: fc.oneof(fc.boolean(), junk),
                },
                { requiredKeys: ['ref', 'old', 'new'] },
              ),
              { maxLength: 4 },
            ),
            junk,
          ),
        },
        { requiredKeys: [] },
      ),
    ),
    packBegin: jsonBody(
      fc.record(
        {
          packs: fc.oneof(
            fc.array(fc.record({ name: anyId(), size: number }), { maxLength: 4 }),
            junk,
          ),
          direct: fc.oneof(fc.boolean(), junk),
        },
        { requiredKeys: [] },
      ),
    ),
    packCommit: jsonBody(
      fc.record(
        {
          packs: fc.oneof(
            fc.array(
              fc.oneof(
                anyId(),
                fc.record({
                  name: anyId(),
                  size: number,
                  table: fc.oneof(fc.base64String({ maxLength: 200 }), junk),
                }),
              ),
              { maxLength: 4 },
            ),
            junk,
          ),
        },
        { requiredKeys: [] },
      ),
    ),
    batch: jsonBody(
      fc.record(
        {
          operation: fc.oneof(fc.constantFrom('download', 'upload'), junk),
          transfers: fc.oneof(fc.constant(['basic']), junk),
          ref: fc.oneof(fc.record({ name: refName }), junk),
          objects: fc.oneof(
            fc.array(fc.record({ oid: anyId(), size: number }, { requiredKeys: [] }), {
              maxLength: 5,
            }),
            junk,
          ),
          hash_algo: fc.oneof(fc.constant('sha256'), junk),
        },
        { requiredKeys: [] },
      ),
    ),
    lfsVerify: jsonBody(fc.record({ oid: anyId(), size: number }, { requiredKeys: [] })),
    lock: jsonBody(
      fc.record(
        {
          path: fc.oneof(
            fc.constantFrom('a.bin', '../etc/passwd', '/abs', '.mediagit/HEAD', 'a/../../b'),
            fc.string(),
          ),
          ref: fc.oneof(fc.record({ name: refName }), junk),
        },
        { requiredKeys: [] },
      ),
    ),
    lockVerify: jsonBody(
      fc.record(
        {
          ref: fc.oneof(fc.record({ name: refName }), junk),
          cursor: fc.oneof(fc.string(), junk),
          limit: number,
        },
        { requiredKeys: [] },
      ),
    ),
    unlock: jsonBody(fc.record({ force: fc.oneof(fc.boolean(), junk) }, { requiredKeys: [] })),
  };

  interface Endpoint {
    name: string;
    method: string;
    /** The path, from generated segments. */
    path: fc.Arbitrary<string>;
    body: keyof typeof bodies;
    /** The content type a well-behaved client sends. */
    type?: string;
    /** Extra headers the route reads. */
    headers?: fc.Arbitrary<Record<string, string>>;
    /** A query string the route reads. */
    query?: fc.Arbitrary<string>;
  }

  const on = (...parts: fc.Arbitrary<string>[]): fc.Arbitrary<string> =>
    fc.tuple(...parts).map((segments) => segments.join(''));
  const lit = (text: string) => fc.constant(text);
  const JSON_TYPE = 'application/json';
  const LFS_TYPE = 'application/vnd.git-lfs+json';
  const OCTETS = 'application/octet-stream';
  const rangeHeader = fc.oneof(
    fc.tuple(fc.nat(400_000), fc.nat(400_000)).map(([a, b]) => `bytes=${a}-${b}`),
    fc.constantFrom('bytes=0-', 'bytes=-5', 'bytes=5-1', 'bytes=0-99999999999999', 'items=0-1'),
    fc.string({ maxLength: 30 }),
  );

  const endpoints: Endpoint[] = [
    { name: 'GET /healthz', method: 'GET', path: lit('/healthz'), body: 'none' },
    { name: 'GET /metrics', method: 'GET', path: lit('/metrics'), body: 'none' },
    {
      name: 'POST /auth/token',
      method: 'POST',
      path: lit('/auth/token'),
      body: 'token',
      type: JSON_TYPE,
    },
    { name: 'GET /auth/whoami', method: 'GET', path: lit('/auth/whoami'), body: 'none' },
    {
      name: 'GET /:repo/access',
      method: 'GET',
      path: on(lit('/'), repoSegment, lit('/access')),
      body: 'none',
    },
    {
      name: 'POST /admin/repos',
      method: 'POST',
      path: lit('/admin/repos'),
      body: 'createRepo',
      type: JSON_TYPE,
    },
    { name: 'POST /admin/gc', method: 'POST', path: lit('/admin/gc'), body: 'gc', type: JSON_TYPE },
    {
      name: 'GET /:repo/info/refs',
      method: 'GET',
      path: on(lit('/'), repoSegment, lit('/info/refs')),
      body: 'none',
    },
    {
      name: 'GET /:repo/keys',
      method: 'GET',
      path: on(lit('/'), repoSegment, lit('/keys')),
      body: 'none',
    },
    {
      name: 'PUT /:repo/keys',
      method: 'PUT',
      path: on(lit('/'), repoSegment, lit('/keys')),
      body: 'keyFile',
      type: JSON_TYPE,
    },
    {
      name: 'POST /:repo/objects/want',
      method: 'POST',
      path: on(lit('/'), repoSegment, lit('/objects/want')),
      body: 'want',
      type: JSON_TYPE,
    },
    {
      name: 'GET /:repo/objects/pack',
      method: 'GET',
      path: on(lit('/'), repoSegment, lit('/objects/pack')),
      body: 'none',
      query: fc
        .record(
          {
            want: fc.array(anyId(), { maxLength: 3 }),
            have: fc.array(anyId(), { maxLength: 3 }),
            depth: fc.oneof(fc.integer().map(String), fc.string({ maxLength: 5 })),
          },
          { requiredKeys: [] },
        )
        .map((q) => {
          const parts: string[] = [];
          for (const w of q.want ?? []) parts.push(`want=${encodeURIComponent(w)}`);
          if (q.have) parts.push(`have=${q.have.map(encodeURIComponent).join(',')}`);
          if (q.depth !== undefined) parts.push(`depth=${encodeURIComponent(q.depth)}`);
          return parts.length ? `?${parts.join('&')}` : '';
        }),
    },
    {
      name: 'POST /:repo/objects/pack',
      method: 'POST',
      path: on(lit('/'), repoSegment, lit('/objects/pack')),
      body: 'binary',
      type: 'application/x-mediagit-pack',
    },
    {
      name: 'POST /:repo/chunks/check',
      method: 'POST',
      path: on(lit('/'), repoSegment, lit('/chunks/check')),
      body: 'ids',
      type: JSON_TYPE,
    },
    {
      name: 'PUT /:repo/chunks/:id',
      method: 'PUT',
      path: on(lit('/'), repoSegment, lit('/chunks/'), idSegment),
      body: 'binary',
      type: OCTETS,
    },
    {
      name: 'GET /:repo/chunks/:id',
      method: 'GET',
      path: on(lit('/'), repoSegment, lit('/chunks/'), idSegment),
      body: 'none',
    },
    {
      name: 'POST /:repo/packs/begin',
      method: 'POST',
      path: on(lit('/'), repoSegment, lit('/packs/begin')),
      body: 'packBegin',
      type: JSON_TYPE,
    },
    {
      name: 'PUT /:repo/packs/:name',
      method: 'PUT',
      path: on(lit('/'), repoSegment, lit('/packs/'), idSegment),
      body: 'binary',
      type: OCTETS,
    },
    {
      name: 'GET /:repo/packs/:name',
      method: 'GET',
      path: on(lit('/'), repoSegment, lit('/packs/'), idSegment),
      body: 'none',
      headers: fc.record({ range: rangeHeader }, { requiredKeys: [] }),
    },
    {
      name: 'POST /:repo/packs/commit',
      method: 'POST',
      path: on(lit('/'), repoSegment, lit('/packs/commit')),
      body: 'packCommit',
      type: JSON_TYPE,
    },
    {
      name: 'POST /:repo/objects/locate',
      method: 'POST',
      path: on(lit('/'), repoSegment, lit('/objects/locate')),
      body: 'locate',
      type: JSON_TYPE,
    },
    {
      name: 'PUT /:repo/manifests/:oid',
      method: 'PUT',
      path: on(lit('/'), repoSegment, lit('/manifests/'), idSegment),
      body: 'binary',
      type: OCTETS,
      headers: fc.record({ 'x-mediagit-object-id': anyId() }, { requiredKeys: [] }),
    },
    {
      name: 'GET /:repo/manifests/:oid',
      method: 'GET',
      path: on(lit('/'), repoSegment, lit('/manifests/'), idSegment),
      body: 'none',
    },
    {
      name: 'POST /:repo/refs/update',
      method: 'POST',
      path: on(lit('/'), repoSegment, lit('/refs/update')),
      body: 'refs',
      type: JSON_TYPE,
    },
    {
      name: 'POST /:repo/info/lfs/objects/batch',
      method: 'POST',
      path: on(lit('/'), repoSegment, lit('/info/lfs/objects/batch')),
      body: 'batch',
      type: LFS_TYPE,
    },
    {
      name: 'PUT /:repo/info/lfs/objects/:oid',
      method: 'PUT',
      path: on(lit('/'), repoSegment, lit('/info/lfs/objects/'), idSegment),
      body: 'binary',
      type: OCTETS,
    },
    {
      name: 'GET /:repo/info/lfs/objects/:oid',
      method: 'GET',
      path: on(lit('/'), repoSegment, lit('/info/lfs/objects/'), idSegment),
      body: 'none',
      headers: fc.record({ range: rangeHeader }, { requiredKeys: [] }),
    },
    {
      name: 'POST /:repo/info/lfs/verify',
      method: 'POST',
      path: on(lit('/'), repoSegment, lit('/info/lfs/verify')),
      body: 'lfsVerify',
      type: LFS_TYPE,
    },
    {
      name: 'POST /:repo/info/lfs/locks',
      method: 'POST',
      path: on(lit('/'), repoSegment, lit('/info/lfs/locks')),
      body: 'lock',
      type: LFS_TYPE,
    },
    {
      name: 'GET /:repo/info/lfs/locks',
      method: 'GET',
      path: on(lit('/'), repoSegment, lit('/info/lfs/locks')),
      body: 'none',
      query: fc
        .record(
          {
            path: fc.string({ maxLength: 20 }),
            id: fc.string({ maxLength: 20 }),
            cursor: fc.string({ maxLength: 10 }),
            limit: fc.string({ maxLength: 6 }),
            refspec: fc.string({ maxLength: 20 }),
          },
          { requiredKeys: [] },
        )
        .map((q) => {
          const text = new URLSearchParams(q as Record<string, string>).toString();
          return text ? `?${text}` : '';
        }),
    },
    {
      name: 'POST /:repo/info/lfs/locks/verify',
      method: 'POST',
      path: on(lit('/'), repoSegment, lit('/info/lfs/locks/verify')),
      body: 'lockVerify',
      type: LFS_TYPE,
    },
    {
      name: 'POST /:repo/info/lfs/locks/:id/unlock',
      method: 'POST',
      path: on(
        lit('/'),
        repoSegment,
        lit('/info/lfs/locks/'),
        segment(fc.string({ maxLength: 40 })),
        lit('/unlock'),
      ),
      body: 'unlock',
      type: LFS_TYPE,
    },
  ];

  /** The credential: mostly a real key of some scope, sometimes none or a forged one. */
  const authorization = (): fc.Arbitrary<string | undefined> =>
    fc.oneof(
      {
        weight: 3,
        arbitrary: fc.constantFrom(tokens.admin, tokens.write).map((t) => `Bearer ${t}`),
      },
      {
        weight: 1,
        arbitrary: fc.constantFrom(tokens.read, tokens.other).map((t) => `Bearer ${t}`),
      },
      { weight: 1, arbitrary: fc.constant(undefined) },
      {
        weight: 1,
        arbitrary: fc.oneof(
          fc
            .string({
              unit: fc.constantFrom(
                ...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.'.split(''),
              ),
              maxLength: 200,
            })
            .map((t) => `Bearer ${t}`),
          fc.constantFrom(
            'Basic Zm9vOmJhcg==',
            'Bearer',
            'Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.',
            'Token x',
          ),
        ),
      },
    );

  const contentType = (usual: string | undefined): fc.Arbitrary<string | undefined> =>
    fc.oneof(
      { weight: 6, arbitrary: fc.constant(usual) },
      {
        weight: 2,
        arbitrary: fc.constantFrom(
          JSON_TYPE,
          OCTETS,
          LFS_TYPE,
          'text/plain',
          'multipart/form-data; boundary=x',
          'application/json; charset=utf-16',
          'application/x-www-form-urlencoded',
          undefined,
        ),
      },
    );

  const requestFor = (endpoint: Endpoint): fc.Arbitrary<FuzzRequest> =>
    fc
      .record({
        method: fc.oneof(
          { weight: 12, arbitrary: fc.constant(endpoint.method) },
          {
            weight: 1,
            arbitrary: fc.constantFrom('GET', 'PUT', 'POST', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD'),
          },
        ),
        path: endpoint.path,
        query: endpoint.query ?? fc.constant(''),
        body: bodies[endpoint.body]!,
        type: contentType(endpoint.type),
        authorization: authorization(),
        extra: endpoint.headers ?? fc.constant({}),
      })
      .map(({ method, path: urlPath, query, body, type, authorization: auth, extra }) => {
        const headers: Record<string, string> = { ...extra };
        if (type !== undefined) headers['content-type'] = type;
        if (auth !== undefined) headers['authorization'] = auth;
        const hasBody = method !== 'GET' && method !== 'HEAD' && body.length > 0;
        return { method, path: sendable(urlPath + query), headers, ...(hasBody ? { body } : {}) };
      });

  test(`${RUNS} fuzzed requests per endpoint: no 5xx, no crash (seed ${SEED})`, async (t) => {
    const started = Date.now();
    let total = 0;
    const byStatus = new Map<number, number>();
    for (const endpoint of endpoints) {
      const samples = fc.sample(requestFor(endpoint), { numRuns: RUNS, seed: SEED });
      const failures: string[] = [];
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < samples.length && failures.length < 5) {
          const request = samples[next++]!;
          let answer: Answer;
          try {
            answer = await send(base, request);
          } catch (error) {
            failures.push(`${(error as Error).message}: ${describeRequest(request)}`);
            continue;
          }
          byStatus.set(answer.status, (byStatus.get(answer.status) ?? 0) + 1);
          if (answer.status >= 500 || answer.status < 200) {
            failures.push(`${answer.status} ${answer.body}: ${describeRequest(request)}`);
          }
        }
      };
      await Promise.all(Array.from({ length: PARALLEL }, worker));
      total += samples.length;
      assert.deepEqual(failures, [], `${endpoint.name}: ${failures.join('\n')}`);
      assert.equal(server.child.exitCode, null, `the server exited: ${server.stderr}`);
    }
    // Still serving, and nothing it logged at error level.
    const health = await send(base, { method: 'GET', path: '/healthz', headers: {} });
    assert.equal(health.status, 200);
    assert.equal(server.stderr.trim(), '', 'the server logged errors');
    const seconds = (Date.now() - started) / 1000;
    const statuses = [...byStatus].sort(([a], [b]) => a - b).map(([s, n]) => `${s}:${n}`);
    t.diagnostic(
      `${total} requests over ${endpoints.length} endpoints in ${seconds.toFixed(1)} s; answers ${statuses.join(' ')}`,
    );
    // Most requests must get past the router and the credential check, or
    // the fuzzing tests nothing but 401s.
    const deep = [...byStatus]
      .filter(([s]) => s !== 401 && s !== 404 && s !== 429)
      .reduce((n, [, c]) => n + c, 0);
    assert.ok(
      deep > total / 3,
      `only ${deep} of ${total} answers went past routing, auth and rate limits`,
    );
  });
});
