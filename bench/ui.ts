// The web interface's server time (issue 20): a real `mediagit serve` on loopback, signed in
// with a session cookie as a browser is, answering
//   H. the first history page of a repository of 10,000 commits (and, for reference, page 100);
//   T. the tree page of a folder of 2,000 files;
//   P. the thumbnail of a 100 MB TIFF, first made (cold), then served from the preview cache.
// Each figure is the server's own `responseTime` from its request log (the time from the
// request's arrival to its answer handed to the socket), median of 20 requests, beside the
// client's wall time and the same server's answer to GET /healthz (raw HTTP: the floor of any
// request), measured in the same run. Goals: H < 200 ms, T < 300 ms, P (cached) < 20 ms.
// The device's own limits are printed first.
//
// The 10,000-commit repository is written straight into the server root's store (loose objects,
// the layout `mediagit init --bare` makes), each commit changing one file of a tree that also
// holds the 2,000-file folder; the TIFF repository is made with the real CLI (add, commit,
// push). Run with `npm run bench:ui [-- --commits N] [--repeat N] [--keep]`; not part of npm
// test. Scratch lives under bench-work/ui (removed unless --keep).

import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { encodeCommit, signatureAt } from '../src/odb/commit.ts';
import { ObjectStore } from '../src/odb/object-store.ts';
import { encodeTree, type TreeEntry } from '../src/odb/tree.ts';
import {
  benchEnv,
  cliPath,
  configureRunner,
  deviceLimits,
  formatDeviceLimits,
  freshDir,
  mediagit,
  median,
  numberOption,
  progress,
  startDaemon,
  stopDaemon,
  waitFor,
  workRoot,
} from './lib.ts';

const args = process.argv.slice(2);
const commits = numberOption(args, '--commits', 10_000);
const treeFiles = numberOption(args, '--files', 2_000);
const repeat = numberOption(args, '--repeat', 1);
const keep = args.includes('--keep');
const SAMPLES = 20;

const env = benchEnv({ MEDIAGIT_AUTO_GC: '0' });
configureRunner({ gnuTime: null, env });

/** Writes `commits` commits into the bare repository at `bare`; returns the tip. */
async function writeHistory(bare: string): Promise<string> {
  const store = new ObjectStore(path.join(bare, 'objects'), path.join(bare, 'tmp'));
  const files: TreeEntry[] = [];
  for (let i = 0; i < treeFiles; i++) {
    const data = Buffer.from(`asset ${i}\n`);
    const id = (await store.write('blob', data)).id;
    files.push({
      name: `asset-${String(i).padStart(5, '0')}.txt`,
      mode: '100644',
      kind: 'blob',
      id,
      size: data.length,
    });
  }
  const filesTree = (await store.write('tree', encodeTree(files))).id;
  let parent: string | undefined;
  const start = Date.UTC(2024, 0, 1) / 1000;
  for (let i = 0; i < commits; i++) {
    const log = Buffer.from(`entry ${i}\n`);
    const logId = (await store.write('blob', log)).id;
    const root = encodeTree([
      { name: 'assets', mode: '40000', kind: 'tree', id: filesTree, size: 0 },
      { name: 'log.txt', mode: '100644', kind: 'blob', id: logId, size: log.length },
    ]);
    const tree = (await store.write('tree', root)).id;
    const who = signatureAt('Bench', 'bench@example.com', new Date((start + i * 60) * 1000));
    const commit = encodeCommit({
      tree,
      parents: parent === undefined ? [] : [parent],
      author: who,
      committer: who,
      message: `Commit ${i}\n`,
    });
    parent = (await store.write('commit', commit)).id;
    if (i % 2000 === 1999) progress(`  ${i + 1} commits written`);
  }
  await store.flush();
  fs.mkdirSync(path.join(bare, 'refs', 'heads'), { recursive: true });
  fs.writeFileSync(path.join(bare, 'refs', 'heads', 'main'), `${parent}\n`);
  return parent!;
}

/** A ~100 MB uncompressed RGB TIFF with a gradient and noise (sharp). */
async function writeTiff(file: string): Promise<number> {
  const width = 5800;
  const height = 5800;
  const pixels = Buffer.allocUnsafe(width * height * 3);
  let seed = 1;
  for (let i = 0; i < pixels.length; i += 3) {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    const x = (i / 3) % width;
    pixels[i] = (x * 255) / width;
    pixels[i + 1] = seed & 0xff;
    pixels[i + 2] = 128;
  }
  await sharp(pixels, { raw: { width, height, channels: 3 } })
    .tiff({ compression: 'none' })
    .toFile(file);
  return fs.statSync(file).size;
}

interface Timing {
  readonly serverMs: number;
  readonly wallMs: number;
  /** The server time of the first request (nothing of the repository cached in the process yet). */
  readonly firstMs?: number | undefined;
}

async function runOnce(round: number): Promise<Record<string, Timing>> {
  const scratch = freshDir(path.join(workRoot, 'ui'));
  const root = path.join(scratch, 'root');
  fs.mkdirSync(root);
  await mediagit(['init', '--bare', '-q', path.join(root, 'history')], scratch);
  await mediagit(['init', '--bare', '-q', path.join(root, 'media')], scratch);
  const key = (
    await mediagit(
      ['token', 'create', '--root', root, '--user', 'bench', '--repo', '*', '--scope', 'admin'],
      scratch,
    )
  ).stdout.trim();
  progress(`round ${round}: writing ${commits} commits and a ${treeFiles}-file folder`);
  await writeHistory(path.join(root, 'history'));
  const logFile = path.join(scratch, 'server.log');
  const daemon = startDaemon(
    'mediagit serve',
    process.execPath,
    [cliPath, 'serve', '--root', root, '--port', '0', '--log-level', 'info', '--log-file', logFile],
    scratch,
    env,
  );
  const base = await waitFor(
    daemon,
    () => /listening on (http:\/\/[\d.]+:\d+)/.exec(daemon.output())?.[1] ?? null,
  );
  try {
    progress('making a 100 MB TIFF and pushing it');
    const work = path.join(scratch, 'work');
    fs.mkdirSync(work);
    await mediagit(['init', '-q'], work);
    const tiffBytes = await writeTiff(path.join(work, 'plate.tif'));
    await mediagit(['add', 'plate.tif'], work);
    await mediagit(['commit', '-q', '-m', 'plate'], work);
    await mediagit(['remote', 'add', 'origin', `${base}/media`], work);
    configureRunner({ gnuTime: null, env: { ...env, MEDIAGIT_TOKEN: key } });
    await mediagit(['push', '-q', 'origin', 'main'], work);
    configureRunner({ gnuTime: null, env });
    progress(`  plate.tif: ${(tiffBytes / 1e6).toFixed(0)} MB`);

    // Sign in as a browser does: the sign-in form's cookie and token, then the session cookie.
    const form = await fetch(`${base}/-/signin`);
    const signinCookie = /mediagit_signin=([^;]+)/.exec(form.headers.get('set-cookie') ?? '')![1]!;
    const signedIn = await fetch(`${base}/-/signin`, {
      method: 'POST',
      redirect: 'manual',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        cookie: `mediagit_signin=${signinCookie}`,
      },
      body: new URLSearchParams({ csrf: signinCookie, key, next: '/' }).toString(),
    });
    const session = /mediagit_session=([^;]+)/.exec(signedIn.headers.get('set-cookie') ?? '')![1]!;
    const cookie = `mediagit_session=${session}`;

    const get = async (url: string): Promise<{ wallMs: number; status: number; body: string }> => {
      const started = process.hrtime.bigint();
      const response = await fetch(`${base}${url}`, { headers: { cookie } });
      const body = await response.text();
      return {
        wallMs: Number(process.hrtime.bigint() - started) / 1e6,
        status: response.status,
        body,
      };
    };
    const file = await get('/-/r/media/blob/main/plate.tif');
    const object = /data-object="([0-9a-f]{64})"/.exec(file.body)?.[1];
    if (!object) throw new Error(`no object ID on the file page (${file.status})`);
    const thumb = `/-/r/media/preview/thumb/${object}/plate.tif`;
    const cold = await get(thumb);
    if (cold.status !== 200)
      throw new Error(`thumbnail answered ${cold.status}: ${cold.body.slice(0, 200)}`);

    const measured: Record<string, string> = {
      'raw HTTP (GET /healthz)': '/healthz',
      [`history page 1 (${commits} commits)`]: '/-/r/history/commits/main',
      'history page 100': '/-/r/history/commits/main?page=100',
      [`tree page (${treeFiles} files)`]: '/-/r/history/tree/main/assets',
      'thumbnail of a 100 MB TIFF, cached': thumb,
    };
    const walls: Record<string, number[]> = {};
    for (const [label, url] of Object.entries(measured)) {
      walls[label] = [];
      await get(url); // warm: the first answer of each page reads its objects from disk
      for (let i = 0; i < SAMPLES; i++) {
        const answer = await get(url);
        if (answer.status !== 200) throw new Error(`${url} answered ${answer.status}`);
        walls[label]!.push(answer.wallMs);
      }
    }
    await stopDaemon(daemon, 'SIGTERM');
    // The server's own time per request, from its log: the last SAMPLES of each URL.
    const lines = fs
      .readFileSync(logFile, 'utf8')
      .split('\n')
      .filter((line) => line.includes('"request completed"'))
      .map((line) => JSON.parse(line) as { req: { url: string }; responseTime: number });
    const result: Record<string, Timing> = {};
    for (const [label, url] of Object.entries(measured)) {
      const times = lines.filter((l) => l.req.url === url).map((l) => l.responseTime);
      result[label] = {
        serverMs: median(times.slice(-SAMPLES)),
        wallMs: median(walls[label]!),
        firstMs: times[0],
      };
    }
    const coldTime = lines.find((l) => l.req.url === thumb)?.responseTime ?? Number.NaN;
    result['thumbnail of a 100 MB TIFF, first request (made)'] = {
      serverMs: coldTime,
      wallMs: cold.wallMs,
    };
    return result;
  } finally {
    await stopDaemon(daemon, 'SIGTERM');
    if (!keep) fs.rmSync(scratch, { recursive: true, force: true });
  }
}

const GOALS: Record<string, number> = {
  [`history page 1 (${commits} commits)`]: 200,
  [`tree page (${treeFiles} files)`]: 300,
  'thumbnail of a 100 MB TIFF, cached': 20,
};

console.log(formatDeviceLimits(deviceLimits(workRoot)));
let failed = false;
for (let round = 1; round <= repeat; round++) {
  const result = await runOnce(round);
  const floor = result['raw HTTP (GET /healthz)']!.serverMs;
  console.log(
    `\nround ${round}: median of ${SAMPLES} requests (server time from its log; client wall time)`,
  );
  for (const [label, timing] of Object.entries(result)) {
    const goal = GOALS[label];
    const verdict =
      goal === undefined
        ? ''
        : timing.serverMs < goal
          ? `  goal < ${goal} ms: met`
          : `  goal < ${goal} ms: MISSED`;
    if (goal !== undefined && !(timing.serverMs < goal)) failed = true;
    const first =
      timing.firstMs === undefined || label.includes('first request') || label.includes('cached')
        ? ''
        : `; first request ${timing.firstMs.toFixed(1)} ms`;
    console.log(
      `  ${label.padEnd(52)} server ${timing.serverMs.toFixed(2).padStart(8)} ms  wall ${timing.wallMs.toFixed(2).padStart(8)} ms  (${(timing.serverMs / floor).toFixed(0)}× raw HTTP)${verdict}${first}`,
    );
  }
}
process.exitCode = failed ? 1 : 0;
