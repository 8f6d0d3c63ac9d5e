/**
 * A hostile server during clone, fetch and pull (issue 18): a real
 * `mediagit serve` whose store holds crafted objects (a compromised server
 * root), and a proxy in front of it that lies in its answers. The client must
 * refuse with one clear error, write nothing outside the clone's folder
 * (checked against a sentinel tree around it) and not take more memory or
 * disk than what it was told to expect.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { encodeCommit, type Signature } from '../src/odb/commit.ts';
import { ObjectStore } from '../src/odb/object-store.ts';
import { decodeRecord } from '../src/odb/record.ts';
import { encodeTransferPack } from '../src/protocol/transfer-pack.ts';
import { encodeTree, type TreeEntry } from '../src/odb/tree.ts';
import { isolatedEnv, runCli, spawnCli, collect, type CliResult } from './helpers.ts';
import { GitWorld } from './git-world.ts';
import { createToken, makeServerRoot, ServerProcess } from './server.ts';

const WHO: Signature = {
  name: 'Mallory',
  email: 'm@example.com',
  time: 1_700_000_000,
  tzOffset: 0,
};

/** Every file under `dir` (but `skip`) with its size and content hash. */
async function snapshot(dir: string, skip: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const entry of await fs.readdir(dir, { recursive: true, withFileTypes: true })) {
    const full = path.join(entry.parentPath, entry.name);
    if (full === skip || full.startsWith(skip + path.sep)) continue;
    const stat = await fs.lstat(full);
    if (stat.isSymbolicLink()) out[full] = `link ${await fs.readlink(full)}`;
    else if (stat.isFile()) {
      out[full] = createHash('sha256')
        .update(await fs.readFile(full))
        .digest('hex');
    } else out[full] = 'dir';
  }
  return out;
}

/** Builds crafted objects straight into a server repository's store. */
class Forger {
  readonly store: ObjectStore;
  readonly repoDir: string;

  constructor(repoDir: string) {
    this.repoDir = repoDir;
    this.store = new ObjectStore(path.join(repoDir, 'objects'), path.join(repoDir, 'tmp'));
  }

  async blob(text: string): Promise<TreeEntry> {
    const data = Buffer.from(text);
    const { id } = await this.store.write('blob', data);
    return { name: '', mode: '100644', kind: 'blob', id, size: data.length };
  }

  /** A tree of the entries as given: names are not checked (encodeTree does not). */
  async tree(entries: readonly TreeEntry[]): Promise<TreeEntry> {
    const { id } = await this.store.write('tree', encodeTree(entries));
    return { name: '', mode: '40000', kind: 'tree', id, size: 0 };
  }

  async commit(tree: TreeEntry, parents: string[] = [], message = 'forged\n'): Promise<string> {
    const data = encodeCommit({ tree: tree.id, parents, author: WHO, committer: WHO, message });
    return (await this.store.write('commit', data)).id;
  }

  async branch(name: string, id: string): Promise<void> {
    const file = path.join(this.repoDir, 'refs', 'heads', name);
    await fs.mkdir(path.dirname(file), { recursive: true });
    await fs.writeFile(file, `${id}\n`);
  }
}

/**
 * What a hostile server answers to objects/want: the metadata reachable from
 * the wanted commits, read from the repository's store and walked without
 * any of the checks a real server makes (a real one refuses to serve a tree
 * it finds corrupt, so the crafted trees would never reach the client).
 */
async function hostileWantPack(repoDir: string, wants: readonly string[]): Promise<Buffer> {
  const store = path.join(repoDir, 'objects');
  const read = async (id: string) => {
    const record = await fs.readFile(path.join(store, id.slice(0, 2), id.slice(2)));
    return { record, object: await decodeRecord(id, record) };
  };
  const seen = new Set<string>();
  const entries: { id: string; record: Buffer }[] = [];
  const queue = [...wants];
  while (queue.length > 0) {
    const id = queue.shift()!;
    if (seen.has(id)) continue;
    seen.add(id);
    const { record, object } = await read(id);
    entries.push({ id, record });
    const text = object.data.toString('utf8');
    if (object.type === 'commit') {
      for (const match of text.matchAll(/^(?:tree|parent) ([0-9a-f]{64})$/gm))
        queue.push(match[1]!);
    } else if (object.type === 'tree') {
      // Small files travel as blobs in the pack; chunks of large ones do not.
      for (const match of text.matchAll(/\d+ (?:tree|manifest|blob) ([0-9a-f]{64}) /g)) {
        queue.push(match[1]!);
      }
    }
  }
  return encodeTransferPack(entries);
}

const named = (entry: TreeEntry, name: string, mode = entry.mode): TreeEntry => ({
  ...entry,
  name,
  mode,
});

/**
 * A proxy in front of the server that passes everything through but what
 * `rewrite` answers itself.
 */
async function startProxy(
  upstream: string,
  rewrite: (
    req: http.IncomingMessage,
    body: Buffer,
    res: http.ServerResponse,
    forward: () => Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }>,
  ) => Promise<boolean>,
): Promise<{ base: string; close: () => Promise<void> }> {
  const target = new URL(upstream);
  const server = http.createServer(async (req, res) => {
    const parts: Buffer[] = [];
    for await (const part of req) parts.push(part as Buffer);
    const body = Buffer.concat(parts);
    const forward = () =>
      new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }>(
        (resolve, reject) => {
          const out = http.request(
            {
              host: target.hostname,
              port: target.port,
              method: req.method,
              path: req.url,
              headers: { ...req.headers, host: target.host },
            },
            (answer) => {
              const chunks: Buffer[] = [];
              answer.on('data', (c: Buffer) => chunks.push(c));
              answer.on('end', () =>
                resolve({
                  status: answer.statusCode ?? 502,
                  headers: answer.headers,
                  body: Buffer.concat(chunks),
                }),
              );
            },
          );
          out.on('error', reject);
          out.end(body);
        },
      );
    try {
      if (await rewrite(req, body, res, forward)) return;
      const answer = await forward();
      res.writeHead(answer.status, answer.headers);
      res.end(answer.body);
    } catch {
      res.destroy();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    base: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Runs the CLI and records its peak resident memory (from /proc while it runs). */
async function runMeasured(
  args: readonly string[],
  cwd: string,
  env: NodeJS.ProcessEnv,
): Promise<CliResult & { peakRssMiB: number }> {
  const child = spawnCli(args, { cwd, env });
  let peak = 0;
  const poll = setInterval(() => {
    fs.readFile(`/proc/${child.pid}/status`, 'utf8')
      .then((text) => {
        const kb = Number(/VmHWM:\s+(\d+)/.exec(text)?.[1] ?? 0);
        peak = Math.max(peak, kb / 1024);
      })
      .catch(() => undefined);
  }, 20);
  const result = await collect(child);
  clearInterval(poll);
  return { ...result, peakRssMiB: peak };
}

type Lie = (
  req: http.IncomingMessage,
  res: http.ServerResponse,
  forward: () => Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }>,
) => Promise<boolean>;

/**
 * The lie of a server that answers every content request (a chunk, a pack
 * range) with 2 GiB of garbage, its length announced or not; with `loose`,
 * it first says every object is stored on its own, so chunks are asked for
 * one by one.
 */
function contentBomb(
  loose: boolean,
  announce: boolean,
  count: (bytes: number) => void,
  routes: Set<string>,
): Lie {
  return async (req, res, forward) => {
    if (loose && req.method === 'POST' && req.url?.endsWith('/objects/locate')) {
      const answer = JSON.parse((await forward()).body.toString('utf8')) as {
        objects: { id: string }[];
      };
      const body = Buffer.from(
        JSON.stringify({
          packs: [],
          objects: answer.objects.map(({ id }) => ({ id, loose: true })),
        }),
      );
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
      res.end(body);
      return true;
    }
    const route = /\/(chunks|packs)\/[0-9a-f]{64}$/.exec(req.url ?? '')?.[1];
    if (req.method !== 'GET' || route === undefined) return false;
    routes.add(route);
    res.writeHead(route === 'packs' ? 206 : 200, {
      'content-type': 'application/octet-stream',
      ...(announce ? { 'content-length': String(2 ** 31) } : {}),
    });
    const block = randomBytes(1024 * 1024);
    for (let i = 0; i < 2048 && !res.destroyed; i++) {
      count(block.length);
      if (!res.write(block)) {
        await new Promise((resolve) => {
          res.once('drain', resolve);
          res.once('close', resolve);
        });
      }
    }
    res.end();
    return true;
  };
}

/** The peak resident memory of every process whose command line matches, while `run` runs. */
async function peakRssOf<T>(match: RegExp, run: () => Promise<T>): Promise<[T, number]> {
  let peak = 0;
  let polling = true;
  const poll = (async () => {
    while (polling) {
      for (const pid of await fs.readdir('/proc').catch(() => [])) {
        if (!/^\d+$/.test(pid)) continue;
        try {
          const cmdline = await fs.readFile(`/proc/${pid}/cmdline`, 'utf8');
          if (!match.test(cmdline.replaceAll('\0', ' '))) continue;
          const status = await fs.readFile(`/proc/${pid}/status`, 'utf8');
          peak = Math.max(peak, Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024);
        } catch {
          // gone
        }
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  })();
  try {
    return [await run(), peak];
  } finally {
    polling = false;
    await poll;
  }
}

describe('a hostile server during clone, fetch and pull', () => {
  let outer = '';
  let root = '';
  let sentinel = '';
  let work = '';
  let env: NodeJS.ProcessEnv;
  let server: ServerProcess;
  let proxy: { base: string; close: () => Promise<void> };
  /** What the hostile server says besides serving crafted metadata. */
  let lie: Lie | undefined;
  let before_: Record<string, string>;

  before(async () => {
    outer = await fs.mkdtemp(path.join(os.tmpdir(), 'mediagit-hostile-'));
    root = path.join(outer, 'root');
    await makeServerRoot(root, ['paths', 'sym', 'refs', 'bomb', 'smudge']);
    // The sentinel tree: files beside and above where the clones go.
    sentinel = path.join(outer, 'sentinel');
    work = path.join(sentinel, 'inner', 'work');
    await fs.mkdir(work, { recursive: true });
    await fs.mkdir(path.join(sentinel, 'inner', 'escape-dir'), { recursive: true });
    for (const file of ['escape.txt', 'inner/escape.txt', 'inner/config', 'keep.bin']) {
      await fs.writeFile(path.join(sentinel, file), `sentinel ${file}\n`);
    }
    env = isolatedEnv(path.join(outer, 'home'));
    await fs.mkdir(path.join(outer, 'home'), { recursive: true });
    before_ = await snapshot(sentinel, work);
    server = await ServerProcess.start(root, ['--allow-anonymous-read']);
    // The hostile server: the real one behind a proxy that serves metadata
    // itself, unchecked, and tells whatever lie a test sets.
    proxy = await startProxy(server.base, async (req, body, res, forward) => {
      if (lie && (await lie(req, res, forward))) return true;
      const want = /^\/([^/]+)\/objects\/want$/.exec(req.url ?? '');
      // Repositories of crafted objects only (bomb's are genuine, in packs).
      if (req.method !== 'POST' || !want || ['bomb', 'smudge'].includes(want[1]!)) return false;
      const { wants } = JSON.parse(body.toString('utf8')) as { wants: string[] };
      const pack = await hostileWantPack(path.join(root, want[1]!), wants);
      res.writeHead(200, {
        'content-type': 'application/x-mediagit-pack',
        'content-length': pack.length,
      });
      res.end(pack);
      return true;
    });
  });

  after(async () => {
    await proxy?.close();
    await server?.stop();
    await fs.rm(outer, { recursive: true, force: true });
  });

  /** Asserts the sentinel tree is as it was, and clears the clones' folder. */
  async function sentinelIntact(): Promise<void> {
    assert.deepEqual(await snapshot(sentinel, work), before_);
    await fs.rm(work, { recursive: true, force: true });
    await fs.mkdir(work);
  }

  /** The one error line a refused command prints. */
  function oneClearError(result: CliResult, pattern: RegExp): void {
    assert.equal(result.code, 128, `exit ${result.code}: ${result.stderr}`);
    const lines = result.stderr.trim().split('\n');
    assert.equal(lines.length, 1, result.stderr);
    assert.match(lines[0]!, /^fatal: /);
    assert.match(lines[0]!, pattern);
    assert.doesNotMatch(result.stderr, /\n\s+at /, 'no stack trace');
  }

  const clone = (repo: string, args: string[] = []) =>
    runCli(['clone', '-q', ...args, `${proxy.base}/${repo}`, 'c'], { cwd: work, env });

  test('tree entries that name a way out (.., /, \\, .mediagit) are refused at clone', async () => {
    const forger = new Forger(path.join(root, 'paths'));
    const payload = await forger.blob('pwned\n');
    const hostile = [
      '..',
      '../escape.txt',
      '../../escape.txt',
      '/abs',
      'a\\..\\..\\escape.txt',
      '.mediagit',
      '.MediaGit',
      '.',
    ];
    for (const name of hostile) {
      const entry =
        name.toLowerCase() === '.mediagit'
          ? named(await forger.tree([named(await forger.blob('[core]\n'), 'config')]), name)
          : named(payload, name);
      const tree = await forger.tree([named(await forger.blob('fine\n'), 'ok.txt'), entry]);
      await forger.branch('main', await forger.commit(tree));
      const result = await clone('paths');
      oneClearError(result, /corrupt/i);
      assert.match(result.stderr, new RegExp(tree.id.slice(0, 12)), 'the error names the object');
      await sentinelIntact();
    }
  });

  test('a symlink that points out, then becomes a folder with a file: the file lands inside', async () => {
    const forger = new Forger(path.join(root, 'sym'));
    const link = await forger.blob('../../escape-dir');
    const c1 = await forger.commit(await forger.tree([named(link, 'd', '120000')]));
    await forger.branch('main', c1);
    const cloned = await clone('sym');
    assert.equal(cloned.code, 0, cloned.stderr);
    const dir = path.join(work, 'c');
    assert.equal(await fs.readlink(path.join(dir, 'd')), '../../escape-dir');
    // The server moves the branch on: d is now a folder holding x.
    const second = await forger.tree([
      named(await forger.tree([named(await forger.blob('through the link?\n'), 'x')]), 'd'),
    ]);
    await forger.branch('main', await forger.commit(second, [c1]));
    const pull = await runCli(['pull', '-q'], { cwd: dir, env });
    assert.equal(pull.code, 0, pull.stderr);
    assert.ok((await fs.lstat(path.join(dir, 'd'))).isDirectory());
    assert.equal(await fs.readFile(path.join(dir, 'd', 'x'), 'utf8'), 'through the link?\n');
    await sentinelIntact();
  });

  test('advertised ref names that climb out of refs/ are refused by fetch and clone', async () => {
    const forger = new Forger(path.join(root, 'refs'));
    const good = await forger.commit(
      await forger.tree([named(await forger.blob('ok\n'), 'a.txt')]),
    );
    await forger.branch('main', good);
    const bad = [
      'refs/heads/../../../../escape.txt',
      'refs/heads/x/../../../../../inner/config',
      'refs/tags/../../../keep.bin',
      'refs/heads/.mediagit/../../x',
      'refs/heads/a\\..\\..\\b',
    ];
    const cloned = await clone('refs');
    assert.equal(cloned.code, 0, cloned.stderr);
    await fs.rename(path.join(work, 'c'), path.join(outer, 'refs-clone'));
    await sentinelIntact();
    for (const name of bad) {
      lie = async (req, res, forward) => {
        if (req.method !== 'GET' || !req.url?.endsWith('/info/refs')) return false;
        const answer = await forward();
        const info = JSON.parse(answer.body.toString('utf8')) as { refs: Record<string, string> };
        info.refs[name] = good;
        const body = Buffer.from(JSON.stringify(info));
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
        res.end(body);
        return true;
      };
      try {
        oneClearError(await clone('refs'), /ref/i);
        await sentinelIntact();
        const fetched = await runCli(['fetch', '-q'], { cwd: path.join(outer, 'refs-clone'), env });
        oneClearError(fetched, /ref/i);
        await sentinelIntact();
      } finally {
        lie = undefined;
      }
    }
  });

  test('content answers longer than announced, or without a length, are cut off: bounded memory and disk', async (t) => {
    // A file big enough to be chunked, pushed through the server.
    const src = path.join(outer, 'src');
    await fs.mkdir(src, { recursive: true });
    const token = await createToken(root, 'pusher', 'bomb', 'write');
    const run = async (args: string[]) => {
      const result = await runCli(args, { cwd: src, env: { ...env, MEDIAGIT_TOKEN: token } });
      assert.equal(result.code, 0, `${args.join(' ')}: ${result.stderr}`);
    };
    await run(['init', '-q']);
    await fs.writeFile(path.join(src, 'big.bin'), randomBytes(12 * 1024 * 1024));
    await run(['add', 'big.bin']);
    await run(['commit', '-q', '-m', 'big']);
    await run(['push', '-q', server.url('bomb'), 'HEAD:refs/heads/main']);
    const routes = new Set<string>();
    const variants: [loose: boolean, announce: boolean][] = [
      [false, false],
      [false, true],
      [true, false],
      [true, true],
    ];
    for (const [loose, announce] of variants) {
      let sent = 0;
      lie = contentBomb(loose, announce, (bytes) => (sent += bytes), routes);
      try {
        const result = await runMeasured(['clone', '-q', `${proxy.base}/bomb`, 'c'], work, env);
        oneClearError(result, /broken or hostile server/);
        t.diagnostic(
          `${loose ? 'chunks' : 'packs'}, length ${announce ? 'announced' : 'not announced'}: ` +
            `peak RSS ${result.peakRssMiB.toFixed(0)} MiB, ${(sent / 2 ** 20).toFixed(0)} MiB sent`,
        );
        assert.ok(result.peakRssMiB < 300, `peak RSS ${result.peakRssMiB.toFixed(0)} MiB`);
        assert.ok(sent < 512 * 1024 * 1024, `the client read ${sent} bytes before cutting off`);
        let bytes = 0;
        for (const entry of await fs.readdir(work, { recursive: true, withFileTypes: true })) {
          if (entry.isFile())
            bytes += (await fs.stat(path.join(entry.parentPath, entry.name))).size;
        }
        assert.ok(bytes < 16 * 1024 * 1024, `${bytes} bytes left on disk`);
        await sentinelIntact();
      } finally {
        lie = undefined;
      }
    }
    assert.deepEqual([...routes].sort(), ['chunks', 'packs']);
  });

  test("the Git filter's smudge from a hostile server: refused in words, bounded, nothing written outside", async (t) => {
    const world = await GitWorld.create();
    try {
      const env = { MEDIAGIT_TOKEN: await createToken(root, 'carol', 'smudge', 'write') };
      const carol = world.path('carol');
      const origin = world.path('origin.git');
      await world.git(['init', '-q', '--bare', origin], world.root);
      await world.git(['init', '-q', carol], world.root);
      await world.mediagit(['install', '--local'], carol);
      await world.git(['remote', 'add', 'origin', origin], carol);
      await world.git(['config', 'mediagit.url', server.url('smudge')], carol);
      await world.mediagit(['track', '*.psd'], carol);
      await fs.writeFile(path.join(carol, 'art.psd'), randomBytes(12 * 1024 * 1024));
      await world.git(['add', '.'], carol);
      await world.git(['commit', '-q', '-m', 'art'], carol);
      await world.git(['push', '-q', 'origin', 'main'], carol, { env });
      const routes = new Set<string>();
      const variants: [loose: boolean, announce: boolean][] = [
        [true, false],
        [false, true],
      ];
      for (const [loose, announce] of variants) {
        let sent = 0;
        lie = contentBomb(loose, announce, (bytes) => (sent += bytes), routes);
        try {
          const dest = path.join(work, 'dave');
          const [result, peak] = await peakRssOf(/filter-process/, () =>
            world.run(
              'git',
              [
                '-c',
                'filter.mediagit.process=mediagit filter-process',
                '-c',
                'filter.mediagit.required=true',
                '-c',
                `mediagit.url=${proxy.base}/smudge`,
                'clone',
                '-q',
                origin,
                dest,
              ],
              work,
              { env },
            ),
          );
          assert.notEqual(result.code, 0, 'the clone must fail');
          assert.match(result.stderr, /broken or hostile server/, result.stderr);
          assert.doesNotMatch(result.stderr, /\n\s+at /, 'no stack trace');
          t.diagnostic(
            `smudge, ${loose ? 'chunks' : 'packs'}: filter peak RSS ${peak.toFixed(0)} MiB, ${(sent / 2 ** 20).toFixed(0)} MiB sent`,
          );
          assert.ok(peak > 0 && peak < 300, `filter peak RSS ${peak.toFixed(0)} MiB`);
          assert.ok(sent < 512 * 1024 * 1024, `the filter read ${sent} bytes before cutting off`);
          // No garbage in the working tree: the file is absent or not there at all.
          const art = await fs.readFile(path.join(dest, 'art.psd')).catch(() => undefined);
          assert.ok(art === undefined || art.length < 1024, `art.psd holds ${art?.length} bytes`);
          await sentinelIntact();
        } finally {
          lie = undefined;
        }
      }
      assert.deepEqual([...routes].sort(), ['chunks', 'packs']);
    } finally {
      await fs.rm(world.root, { recursive: true, force: true });
    }
  });
});
