/**
 * `mediagit migrate` end to end: a server root of three repositories (one
 * holding a 1 GiB incompressible file, 320 MiB unless MEDIAGIT_TEST_SCALE
 * is full, two small ones with branches and tags) is moved from a local folder to S3 and from there to Azure Blob,
 * each move killed twice part-way (SIGKILL) and run again. Checked:
 *
 * - after each kill, the target holds no partial object and no ref or HEAD
 *   ahead of what it names;
 * - the last run exits 0, and every repository at the target passes the
 *   server-side full check (every reachable object read and hashed), with the
 *   same refs, HEAD and keys as the source (small keys byte for byte);
 * - what a kill cost is at most what migrate lets be in flight (32 MiB, or
 *   one bigger key); at full scale, the bytes each move sent the target
 *   store, over all three runs, are at most 1.1× the root's size (a
 *   smaller root cannot absorb two kills' in-flight bytes in 10 %);
 * - clones from a server on the Azure root are byte-identical to what was
 *   pushed to the local one, with the same commits, using an API key made on
 *   the local root (the server's state moved too).
 *
 * Bytes sent are counted by a proxy in front of each emulator as they
 * arrive, so a request cut off by a kill counts what got through before it.
 * s3rver's own count (`bytesIn`) adds each request's declared length when it
 * starts, so it counts a cut-off upload in full: it is reported beside ours,
 * and is an upper bound. Azurite counts no bytes at all.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, test, type TestContext } from 'node:test';
import { storageSettings } from '../src/cli/storage-settings.ts';
import { BackendRepo } from '../src/protocol/backend-repo.ts';
import { verifyRepo } from '../src/protocol/verify.ts';
import type { StorageBackend } from '../src/storage/backend.ts';
import { openBackend } from '../src/storage/open.ts';
import { startAzure, startS3, type Emulator } from './emulators/index.ts';
import {
  assertWorkTreeEquals,
  collect,
  FULL_SCALE,
  isolatedEnv,
  pseudoRandomBytes,
  replaceTree,
  runCli,
  spawnCli,
  TempRepo,
  writePseudoRandomFile,
  type TreeItem,
  type TreeSpec,
} from './helpers.ts';
import { createToken, makeServerRoot, ServerProcess } from './server.ts';

const MiB = 1024 * 1024;
const BIG = FULL_SCALE ? 1024 * MiB : 320 * MiB;
const BIG_NAME = FULL_SCALE ? '1 GiB' : '320 MiB';
/** Where each move is killed: bytes received by the target store, all runs of the move counted. */
const KILLS = FULL_SCALE ? ([300 * MiB, 700 * MiB] as const) : ([90 * MiB, 210 * MiB] as const);
/** What migrate may be uploading when killed (its default `maxInFlightBytes`). */
const MAX_IN_FLIGHT = 32 * MiB;
const REPOS = ['alpha', 'beta', 'gamma'] as const;

/**
 * An HTTP proxy in front of an emulator that counts the request-body bytes
 * clients get through to it, as it reads them. `when(bytes, act)` runs `act`
 * as soon as the count reaches `bytes` (the sender is by then up to the
 * socket buffers ahead: those bytes are counted too, see `settled`). A
 * client that goes away mid-request (killed) has its upstream request cut
 * off too, as the emulator would see without the proxy.
 */
class CountingProxy {
  bytesIn = 0;
  readonly #server: http.Server;
  readonly #agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  readonly #target: URL;
  #trigger: { bytes: number; act: () => void } | undefined;
  readonly #open = new Set<http.ClientRequest>();

  private constructor(target: string) {
    this.#target = new URL(target);
    this.#server = http.createServer((req, res) => this.#forward(req, res));
  }

  static async start(target: string): Promise<CountingProxy> {
    const proxy = new CountingProxy(target);
    await new Promise<void>((resolve) => proxy.#server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  get origin(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  when(bytes: number, act: () => void): void {
    this.#trigger = { bytes, act };
  }

  #count(bytes: number): void {
    this.bytesIn += bytes;
    const trigger = this.#trigger;
    if (trigger && this.bytesIn >= trigger.bytes) {
      this.#trigger = undefined;
      trigger.act();
    }
  }

  #forward(req: http.IncomingMessage, res: http.ServerResponse): void {
    let answered = false;
    // The Host header passes unchanged: S3 requests sign it.
    const upstream = http.request(
      {
        host: this.#target.hostname,
        port: this.#target.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
        agent: this.#agent,
      },
      (answer) => {
        answered = true;
        if (res.destroyed) {
          answer.resume(); // the client left before the answer: nobody reads it
          return;
        }
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    this.#open.add(upstream);
    upstream.on('close', () => this.#open.delete(upstream));
    upstream.on('error', () => req.socket.destroy());
    req.on('data', (chunk: Buffer) => this.#count(chunk.length));
    req.pipe(upstream);
    // A client gone mid-request or mid-answer: so is the proxy, and the store
    // sees the request cut off. A whole request not answered yet runs on:
    // the store applies it, as it would without the proxy.
    res.on('close', () => {
      if (!res.writableFinished && (!req.complete || answered)) upstream.destroy();
    });
  }

  /**
   * Resolves once every request forwarded has been answered or cut off: by
   * then what a killed client had sent before it died (its socket buffers,
   * and ours, can hold tens of MiB) is counted, and the store has applied
   * whatever it received whole. A request the store has not answered after
   * 60 s is cut off (once, in a CI run on two busy cores, Azurite left one
   * whole request of a killed client unanswered for over a minute); the
   * rerun must cope with that as with any cut request. Returns how many.
   */
  async settled(): Promise<number> {
    const deadline = Date.now() + 60_000;
    while (this.#open.size > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const stragglers = this.#open.size;
    for (const request of this.#open) request.destroy();
    while (this.#open.size > 0) await new Promise((resolve) => setTimeout(resolve, 10));
    return stragglers;
  }

  async stop(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#agent.destroy();
  }
}

/** What `mediagit migrate --json` prints. */
interface MigrateReport {
  readonly keys: number;
  readonly totalBytes: number;
  readonly copied: number;
  readonly bytesCopied: number;
  readonly alreadyThere: number;
}

/** Every key under a store with its size. */
async function keySizes(backend: StorageBackend): Promise<Map<string, number>> {
  const sizes = new Map<string, number>();
  for await (const key of backend.list('')) {
    const head = await backend.head(key);
    if (head) sizes.set(key, head.size);
  }
  return sizes;
}

/** The bytes of every regular file under `dir` (what a local root takes). */
async function folderBytes(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await fs.readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) total += (await fs.stat(path.join(entry.parentPath, entry.name))).size;
  }
  return total;
}

/** Seconds since `since` (a Date.now()), for diagnostics. */
function seconds(since: number): string {
  return ((Date.now() - since) / 1000).toFixed(1);
}

async function fileSha256(file: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(file, { highWaterMark: 8 * MiB }), hash);
  return hash.digest('hex');
}

/**
 * What a kill may leave at the target: whole keys only (each the size it
 * has at the source), a repository's refs only once all its objects are
 * there, its HEAD only once its refs are.
 */
function assertNoPartialState(
  source: ReadonlyMap<string, number>,
  target: ReadonlyMap<string, number>,
  label: string,
): void {
  assert.ok(target.size < source.size, `${label}: the kill came before the end`);
  for (const [key, size] of target) {
    assert.equal(size, source.get(key), `${label}: ${key} at the target is not the whole key`);
  }
  for (const repo of REPOS) {
    const sourceKeys = [...source.keys()].filter((key) => key.startsWith(`${repo}/`));
    const missing = (pattern: RegExp): string[] =>
      sourceKeys.filter((key) => pattern.test(key) && !target.has(key));
    const hasRefs = [...target.keys()].some((key) => key.startsWith(`${repo}/refs/`));
    if (hasRefs || target.has(`${repo}/HEAD`)) {
      assert.deepEqual(missing(/\/objects\//), [], `${label}: ${repo} has refs before objects`);
    }
    if (target.has(`${repo}/HEAD`)) {
      assert.deepEqual(missing(/\/refs\//), [], `${label}: ${repo} has HEAD before refs`);
    }
  }
}

/**
 * The target holds what the source holds: the same keys and sizes, small
 * keys byte for byte, and per repository the same HEAD and refs and a clean
 * full check (every object reachable from the refs read and hashed).
 */
async function assertSameRoot(
  t: TestContext,
  source: StorageBackend,
  target: StorageBackend,
): Promise<void> {
  const [from, to] = await Promise.all([keySizes(source), keySizes(target)]);
  assert.deepEqual([...to].sort(), [...from].sort(), 'same keys, same sizes');
  for (const [key, size] of from) {
    if (size > MiB) continue; // packs: their records are read and hashed by verifyRepo
    assert.ok(
      Buffer.from(await target.get(key)).equals(Buffer.from(await source.get(key))),
      `${key} differs`,
    );
  }
  for (const name of REPOS) {
    const was = new BackendRepo(source.child(name));
    const now = new BackendRepo(target.child(name));
    assert.equal(await now.head(), await was.head(), `${name}: HEAD`);
    assert.deepEqual(await now.listRefs(), await was.listRefs(), `${name}: refs`);
    const report = await verifyRepo(now);
    assert.deepEqual(report.problems, [], `${name}: verify at ${target.url}`);
    assert.ok(report.refs > 0 && report.objects > 0, `${name}: verify saw nothing`);
    t.diagnostic(
      `${target.url}/${name}: ${report.refs} refs, ${report.objects} objects, ${report.chunks} chunks verified`,
    );
  }
}

describe(`mediagit migrate: a root of 3 repositories (one of ${BIG_NAME}), file → s3 → az, killed twice per move`, () => {
  let outer = '';
  let root = '';
  let s3: Emulator;
  let az: Emulator;
  let s3Proxy: CountingProxy;
  let azProxy: CountingProxy;
  let token = '';
  let bigSha256 = '';
  /** Bytes of every file under the local root: the size of the root. */
  let rootBytes = 0;
  const heads = new Map<string, string>();
  const mainTrees = new Map<string, TreeSpec>();
  const repos: TempRepo[] = [];
  const servers: ServerProcess[] = [];

  const track = (repo: TempRepo): TempRepo => {
    repos.push(repo);
    return repo;
  };
  const env = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({
    ...isolatedEnv(outer),
    ...extra,
  });
  /** The stores as MediaGit reaches them, straight (for checks: not counted). */
  const open = async (url: string): Promise<StorageBackend> =>
    openBackend(url, await storageSettings(env({ ...s3.env, ...az.env })));

  before(async () => {
    outer = await fs.mkdtemp(path.join(os.tmpdir(), 'mediagit-migrate-'));
    root = path.join(outer, 'root');
    [s3, az] = await Promise.all([startS3(), startAzure()]);
    [s3Proxy, azProxy] = await Promise.all([
      CountingProxy.start(s3.endpoint),
      CountingProxy.start(new URL(az.endpoint).origin),
    ]);
  });

  after(async () => {
    await Promise.all(servers.map((server) => server.stop()));
    await Promise.all([s3Proxy?.stop(), azProxy?.stop()]);
    await Promise.all([s3?.stop(), az?.stop()]);
    for (const repo of repos) await repo.cleanup();
    if (outer) await fs.rm(outer, { recursive: true, force: true });
  });

  /**
   * Runs `mediagit migrate from to`, killed with SIGKILL each time the bytes
   * `proxy` has received reach the next of `KILLS`, then once more to the
   * end. Checks the target after each kill; returns the last run's report.
   */
  async function migrateKilledTwice(
    t: TestContext,
    from: string,
    to: string,
    runEnv: NodeJS.ProcessEnv,
    proxy: CountingProxy,
  ): Promise<{ report: MigrateReport; largestKey: number }> {
    const args = ['migrate', '--json', from, to];
    const [source, target] = await Promise.all([open(from), open(to)]);
    const sourceKeys = await keySizes(source);
    for (const [i, at] of KILLS.entries()) {
      const child: ChildProcess = spawnCli(args, { cwd: outer, env: runEnv });
      proxy.when(at, () => child.kill('SIGKILL'));
      const run = await collect(child);
      assert.equal(run.signal, 'SIGKILL', `run ${i + 1} ended before its kill: ${run.stderr}`);
      const cut = await proxy.settled();
      if (cut > 0)
        t.diagnostic(
          `run ${i + 1}: ${cut} request(s) the store left unanswered for 60 s were cut off`,
        );
      const left = await keySizes(target);
      // What the kills cost so far: bytes sent that are in no key at the target.
      const stored = [...left.values()].reduce((sum, size) => sum + size, 0);
      t.diagnostic(
        `run ${i + 1} killed at ${(proxy.bytesIn / MiB).toFixed(1)} MiB received; ${left.size} of ${sourceKeys.size} keys (${(stored / MiB).toFixed(1)} MiB) at the target; lost so far ${((proxy.bytesIn - stored) / MiB).toFixed(1)} MiB`,
      );
      assertNoPartialState(sourceKeys, left, `after kill ${i + 1}`);
    }
    const before = proxy.bytesIn;
    const last = await runCli(args, { cwd: outer, env: runEnv });
    assert.equal(last.code, 0, last.stderr);
    const report = JSON.parse(last.out) as MigrateReport;
    const sent = proxy.bytesIn - before;
    t.diagnostic(
      `last run: ${report.copied} keys copied (${(report.bytesCopied / MiB).toFixed(1)} MiB), ${report.alreadyThere} already there; ${(sent / MiB).toFixed(1)} MiB received`,
    );
    // migrate's own count of the last run against the proxy's.
    assert.equal(report.copied + report.alreadyThere, report.keys);
    assert.equal(report.keys, sourceKeys.size);
    assert.ok(report.alreadyThere > 0, 'the reruns found what the killed runs had copied');
    assert.ok(
      sent >= report.bytesCopied && sent <= report.bytesCopied + MiB,
      `last run: the store received ${sent} bytes, migrate says it copied ${report.bytesCopied}`,
    );
    return { report, largestKey: Math.max(...sourceKeys.values()) };
  }

  /** The bytes a move sent the store against the root's size. */
  function assertBytesSent(
    t: TestContext,
    label: string,
    sent: number,
    { report, largestKey }: { report: MigrateReport; largestKey: number },
  ): void {
    assert.equal(report.totalBytes, rootBytes, `${label}: migrate counts the root's bytes`);
    const ratio = sent / rootBytes;
    t.diagnostic(
      `${label}: ${(sent / MiB).toFixed(1)} MiB sent for a root of ${(rootBytes / MiB).toFixed(1)} MiB: ${ratio.toFixed(3)}×`,
    );
    assert.ok(sent >= rootBytes, `${label}: sent less than the root (${sent} < ${rootBytes})`);
    assert.ok(
      sent - rootBytes <= KILLS.length * Math.max(MAX_IN_FLIGHT, largestKey),
      `${label}: the kills cost ${sent - rootBytes} bytes, more than was in flight`,
    );
    // The requirement, at full scale. A kill cuts off at most 32 MiB of
    // uploads, or one pack (48 MiB, 4.6% of a 1 GiB root) uploading alone:
    // two kills stay under 1.1× wherever they land (uploads cut off part-way
    // are not resumed).
    if (!FULL_SCALE) {
      t.diagnostic(`${label}: ≤ 1.1× is asserted on a 1 GiB root (MEDIAGIT_TEST_SCALE=full)`);
      return;
    }
    assert.ok(
      KILLS.length * Math.max(MAX_IN_FLIGHT, largestKey) < 0.1 * rootBytes,
      `${label}: the root is too small for two kills to fit in 1.1× (largest key ${largestKey})`,
    );
    assert.ok(ratio <= 1.1, `${label}: sent ${ratio.toFixed(3)}× the root's size`);
  }

  test(`a local root: ${BIG_NAME} in alpha, branches and tags in beta and gamma`, async (t) => {
    await makeServerRoot(root, REPOS);
    token = await createToken(root, 'alice', '*', 'write');
    const server = await ServerProcess.start(root, [], env());
    servers.push(server);
    const withToken = { MEDIAGIT_TOKEN: token };

    let since = Date.now();
    for (const [n, name] of ['beta', 'gamma'].entries()) {
      const repo = track((await TempRepo.create({ chunkThreshold: MiB })).withEnv(withToken));
      const file = (content: Uint8Array): TreeItem => ({ type: 'file', content });
      const first: TreeSpec = new Map([
        ['README.md', file(Buffer.from(`# ${name}\n`))],
        ['art/texture.bin', file(pseudoRandomBytes(3 * MiB, 10 + n, name))],
        ['scenes/one.json', file(Buffer.from('{"nodes": [1, 2]}\n'))],
      ]);
      await replaceTree(repo.dir, first);
      await repo.ok(['add', '-A']);
      await repo.ok(['commit', '-q', '-m', 'first']);
      await repo.ok(['tag', '-a', '-m', 'first cut', 'v1']);
      await repo.ok(['switch', '-q', '-c', 'feature']);
      await replaceTree(
        repo.dir,
        new Map([...first, ['notes.txt', file(Buffer.from('feature work\n'))]]),
      );
      await repo.ok(['add', '-A']);
      await repo.ok(['commit', '-q', '-m', 'feature']);
      await repo.ok(['switch', '-q', 'main']);
      // 4 KiB rewritten in the middle of the texture.
      const texture = pseudoRandomBytes(3 * MiB, 10 + n, name);
      texture.set(pseudoRandomBytes(4096, 20 + n, name), MiB);
      const second: TreeSpec = new Map([
        ...first,
        ['README.md', file(Buffer.from(`# ${name}\n\nsecond pass\n`))],
        ['art/texture.bin', file(texture)],
        ['art/small.bin', file(pseudoRandomBytes(200 * 1024, 30 + n, name))],
      ]);
      await replaceTree(repo.dir, second);
      await repo.ok(['add', '-A']);
      await repo.ok(['commit', '-q', '-m', 'second']);
      await repo.ok(['tag', 'v2']);
      await repo.ok(['push', '-q', server.url(name), 'main', 'feature', '--tags']);
      heads.set(name, (await repo.head()).id!);
      mainTrees.set(name, second);
    }
    t.diagnostic(`beta and gamma made and pushed in ${seconds(since)} s`);

    const alpha = track((await TempRepo.create()).withEnv(withToken));
    since = Date.now();
    await writePseudoRandomFile(alpha.path('take.bin'), BIG, 1, 'migrate');
    bigSha256 = await fileSha256(alpha.path('take.bin'));
    await fs.writeFile(alpha.path('shot.txt'), 'shot 12, take 3\n');
    const written = seconds(since);
    await alpha.ok(['add', '-A']);
    await alpha.ok(['commit', '-q', '-m', 'take 3']);
    const committed = seconds(since);
    await alpha.ok(['push', '-q', server.url('alpha'), 'main']);
    heads.set('alpha', (await alpha.head()).id!);
    t.diagnostic(
      `alpha: ${BIG_NAME} written and hashed in ${written} s, committed at ${committed} s, pushed at ${seconds(since)} s`,
    );

    // The source must not change while it is migrated.
    await server.stop();
    rootBytes = await folderBytes(root);
    const local = await open(root);
    for (const name of REPOS) {
      const refs = await new BackendRepo(local.child(name)).listRefs();
      assert.equal(refs.find((ref) => ref.name === 'refs/heads/main')?.id, heads.get(name));
    }
    assert.ok(rootBytes > BIG, `the root holds ${rootBytes} bytes`);
  });

  test('file → s3, killed twice and run again: verified, no more bytes than the root and what was in flight', async (t) => {
    const since = Date.now();
    await s3.resetStats();
    const result = await migrateKilledTwice(
      t,
      root,
      s3.url('m1'),
      env({ ...s3.env, AWS_ENDPOINT_URL: s3Proxy.origin }),
      s3Proxy,
    );
    const declared = (await s3.stats())['bytesIn'] ?? 0;
    t.diagnostic(
      `s3rver's count of declared request lengths: ${(declared / MiB).toFixed(1)} MiB (${(declared / rootBytes).toFixed(3)}×)`,
    );
    t.diagnostic(`file → s3 took ${seconds(since)} s`);
    await assertSameRoot(t, await open(root), await open(s3.url('m1')));
    assertBytesSent(t, 'file → s3', s3Proxy.bytesIn, result);
  });

  test('s3 → az, killed twice and run again: verified, no more bytes than the root and what was in flight', async (t) => {
    const since = Date.now();
    const connection = az.env['AZURE_STORAGE_CONNECTION_STRING']!.replace(
      new URL(az.endpoint).origin,
      azProxy.origin,
    );
    const result = await migrateKilledTwice(
      t,
      s3.url('m1'),
      az.url('m2'),
      env({ ...s3.env, AZURE_STORAGE_CONNECTION_STRING: connection }),
      azProxy,
    );
    t.diagnostic(`s3 → az took ${seconds(since)} s`);
    await assertSameRoot(t, await open(s3.url('m1')), await open(az.url('m2')));
    assertBytesSent(t, 's3 → az', azProxy.bytesIn, result);
  });

  test('clones from a server on the az root are byte-identical, with the same commits', async (t) => {
    const since = Date.now();
    const server = await ServerProcess.start(az.url('m2'), [], env(az.env));
    servers.push(server);
    const clone = async (name: string): Promise<TempRepo> => {
      const peer = track(
        (await TempRepo.create({ init: false })).withEnv({ MEDIAGIT_TOKEN: token }),
      );
      await fs.rmdir(peer.dir);
      const result = await runCli(['clone', '-q', server.url(name), peer.dir], {
        cwd: peer.root,
        env: peer.env,
      });
      assert.equal(result.code, 0, result.stderr);
      assert.equal((await peer.head()).id, heads.get(name), `${name}: HEAD commit`);
      return peer;
    };
    const alpha = await clone('alpha');
    assert.equal(await fileSha256(alpha.path('take.bin')), bigSha256, 'take.bin');
    assert.equal(await fs.readFile(alpha.path('shot.txt'), 'utf8'), 'shot 12, take 3\n');
    for (const name of ['beta', 'gamma']) {
      const peer = await clone(name);
      await assertWorkTreeEquals(peer.dir, mainTrees.get(name)!, name);
    }
    t.diagnostic(`three clones from az in ${seconds(since)} s`);
  });
});
