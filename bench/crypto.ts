// Encryption at rest benchmark (issue 18): the same work in a plain and in an encrypted
// repository, in the same run, on the same disk. Each round measures, for 1 GiB of
// incompressible data:
//   add + commit of the file (timed together, then `sync`), and the command's peak RSS;
//   a second version with 4 KiB inserted at 300 MiB: add + commit, and what the store grew by;
//   checkout of the file after deleting it.
// Goals: encrypted add + commit ≤ 1.3 × plain; peak RSS within 20 % of plain; the insert
// stores ≤ 1 % of the file in the encrypted repository, as in the plain one. Then push of both
// versions to `mediagit serve` on loopback (a fresh empty repository each) and a clone back,
// timed; goal: encrypted ≤ 1.3 × plain for each; the server's root is then scanned for the
// repository's planted markers (none may be found).
//
// Run with `npm run bench:crypto` (builds first) or `node bench/crypto.ts [--gib N]
// [--repeat N] [--keep]`.

import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  benchEnv,
  GiB,
  KiB,
  MiB,
  configureRunner,
  deviceLimits,
  ensureSource,
  fail,
  numberOption,
  formatBytes,
  formatDeviceLimits,
  formatRatio,
  formatSeconds,
  freshDir,
  median,
  mediagit,
  must,
  onPath,
  progress,
  startMediaGitServer,
  stopDaemon,
  sync,
  type MediaGitServer,
  treeBytes,
  workRoot,
  type RunResult,
} from './lib.ts';

const args = process.argv.slice(2);
const option = (name: string, fallback: number): number => numberOption(args, name, fallback);
const bytes = Math.round(option('--gib', 1) * GiB);
const repeat = option('--repeat', 3);
const keep = args.includes('--keep');

const root = path.join(workRoot, 'crypto');
const keyFile = path.join(workRoot, 'crypto.key');
configureRunner({
  gnuTime: onPath('/usr/bin/time'),
  env: benchEnv({ MEDIAGIT_AUTO_GC: '0', MEDIAGIT_KEY_FILE: keyFile }),
});

/** `source` with 4 KiB of new random bytes inserted at 300/1024 of it. */
function insertVersion(source: string, target: string): void {
  const at = Math.floor((bytes * 300) / 1024);
  const input = fs.openSync(source, 'r');
  const output = fs.openSync(target, 'w');
  const buffer = Buffer.allocUnsafe(8 * MiB);
  try {
    let position = 0;
    const copy = (end: number) => {
      while (position < end) {
        const n = fs.readSync(input, buffer, 0, Math.min(buffer.length, end - position), position);
        if (n === 0) fail(`${source} is short`);
        fs.writeSync(output, buffer, 0, n);
        position += n;
      }
    };
    copy(at);
    fs.writeSync(output, randomBytes(4 * KiB));
    copy(bytes);
  } finally {
    fs.closeSync(input);
    fs.closeSync(output);
  }
}

interface Side {
  push: number;
  clone: number;
  addCommit: number;
  addParts: readonly number[];
  addRss: number;
  insertAddCommit: number;
  insertGrowth: number;
  checkout: number;
  checkoutRss: number;
}

async function timed(
  steps: (() => Promise<RunResult>)[],
): Promise<{ seconds: number; rss: number; parts: number[] }> {
  await sync();
  let seconds = 0;
  let rss = 0;
  const parts: number[] = [];
  for (const step of steps) {
    const result = await step();
    seconds += result.seconds;
    parts.push(result.seconds);
    rss = Math.max(rss, result.peakRssBytes ?? 0);
  }
  const flushed = await sync();
  parts.push(flushed);
  seconds += flushed;
  return { seconds, rss, parts };
}

/** `add 1.52 + commit 0.11 + sync 0.40`: where a timed figure went. */
const breakdown = (parts: readonly number[]): string =>
  ['add', 'commit', 'sync'].map((step, i) => `${step} ${(parts[i] ?? 0).toFixed(2)}`).join(' + ');

/** Planted in a file name, a branch name and a message: none may reach the server. */
const MARKER = 'MARKERcrypto5e1f';

async function side(
  kind: 'plain' | 'encrypted',
  source: string,
  second: string,
  server: MediaGitServer,
  round: number,
): Promise<Side> {
  const work = freshDir(path.join(root, kind));
  await mediagit(kind === 'plain' ? ['init', '-q'] : ['init', '-q', '--encrypt'], work);
  const file = path.join(work, 'data.bin');
  await must('cp', 'cp', [source, file], work);
  fs.writeFileSync(path.join(work, `${MARKER}.txt`), `${MARKER}\n`);
  await mediagit(['add', `${MARKER}.txt`], work);
  const first = await timed([
    () => mediagit(['add', 'data.bin'], work),
    () => mediagit(['commit', '-q', '-m', 'v1'], work),
  ]);
  const objects = path.join(work, '.mediagit', 'objects');
  const before = treeBytes(objects);
  await must('cp', 'cp', [second, file], work);
  const insert = await timed([
    () => mediagit(['add', 'data.bin'], work),
    () => mediagit(['commit', '-q', '-m', 'v2'], work),
  ]);
  const growth = treeBytes(objects) - before;
  // Both versions pushed to an empty server repository, then cloned back.
  await mediagit(['branch', MARKER], work);
  const name = `${kind}${round}`;
  await mediagit(['init', '-q', '--bare', path.join(server.root, name)], server.root);
  const url = `${server.base}/${name}`;
  const push = await timed([() => mediagit(['push', '-q', url, 'main', MARKER], work)]);
  const copy = path.join(root, `${kind}-clone`);
  fs.rmSync(copy, { recursive: true, force: true });
  const cloned = await timed([() => mediagit(['clone', '-q', url, copy], root)]);
  if (fs.statSync(path.join(copy, 'data.bin')).size !== bytes + 4 * KiB) {
    fail(`${kind}: the clone holds the wrong size`);
  }
  fs.rmSync(copy, { recursive: true, force: true });
  fs.rmSync(file);
  const checkout = await timed([() => mediagit(['checkout', '--', 'data.bin'], work)]);
  if (fs.statSync(file).size !== bytes + 4 * KiB) fail(`${kind}: checkout wrote the wrong size`);
  return {
    push: push.seconds,
    clone: cloned.seconds,
    addCommit: first.seconds,
    addParts: first.parts,
    addRss: first.rss,
    insertAddCommit: insert.seconds,
    insertGrowth: growth,
    checkout: checkout.seconds,
    checkoutRss: checkout.rss,
  };
}

async function main(): Promise<void> {
  fs.mkdirSync(workRoot, { recursive: true });
  if (!fs.existsSync(keyFile)) fs.writeFileSync(keyFile, randomBytes(64), { mode: 0o600 });
  const source = ensureSource(bytes);
  const second = path.join(workRoot, `crypto-insert-${bytes}.bin`);
  if (fs.statSync(second, { throwIfNoEntry: false })?.size !== bytes + 4 * KiB) {
    progress('writing the second version (4 KiB inserted)');
    insertVersion(source, second);
  }
  console.log(formatDeviceLimits(deviceLimits(workRoot)));
  console.log(
    `file: ${formatBytes(bytes)} incompressible; ${repeat} rounds, plain and encrypted alternating`,
  );
  const serverRoot = freshDir(path.join(root, 'server'));
  const token = await mediagit(
    ['token', 'create', '--root', serverRoot, '--user', 'bench', '--repo', '*', '--scope', 'write'],
    serverRoot,
  );
  const env = benchEnv({
    MEDIAGIT_AUTO_GC: '0',
    MEDIAGIT_KEY_FILE: keyFile,
    MEDIAGIT_TOKEN: token.stdout.trim(),
  });
  configureRunner({ gnuTime: onPath('/usr/bin/time'), env });
  const server = await startMediaGitServer(serverRoot, env);
  try {
    await rounds(source, second, server);
  } finally {
    await stopDaemon(server.daemon, 'SIGTERM');
  }
  if (!keep) fs.rmSync(root, { recursive: true, force: true });
}

/** Files under `dir` whose name or bytes hold `marker`. */
function holding(dir: string, marker: string): string[] {
  const found: string[] = [];
  for (const entry of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
    const full = path.join(entry.parentPath, entry.name);
    if (full.includes(marker)) found.push(full);
    else if (entry.isFile() && fs.readFileSync(full).includes(marker)) found.push(full);
  }
  return found;
}

async function rounds(source: string, second: string, server: MediaGitServer): Promise<void> {
  const ratios: {
    add: number;
    rss: number;
    checkout: number;
    checkoutRss: number;
    push: number;
    clone: number;
  }[] = [];
  for (let round = 1; round <= repeat; round++) {
    const order: ('plain' | 'encrypted')[] =
      round % 2 === 1 ? ['plain', 'encrypted'] : ['encrypted', 'plain'];
    const results = new Map<string, Side>();
    for (const kind of order) {
      progress(`round ${round}: ${kind}`);
      results.set(kind, await side(kind, source, second, server, round));
    }
    const plain = results.get('plain')!;
    const enc = results.get('encrypted')!;
    const r = {
      add: enc.addCommit / plain.addCommit,
      rss: enc.addRss / plain.addRss,
      checkout: enc.checkout / plain.checkout,
      checkoutRss: enc.checkoutRss / plain.checkoutRss,
      push: enc.push / plain.push,
      clone: enc.clone / plain.clone,
    };
    ratios.push(r);
    const pct = (growth: number) => `${((100 * growth) / bytes).toFixed(2)} %`;
    console.log(
      `round ${round}: add+commit plain ${formatSeconds(plain.addCommit)}, encrypted ${formatSeconds(enc.addCommit)} ` +
        `(${formatRatio(r.add)}, goal ≤ 1.3×); peak RSS ${formatBytes(plain.addRss)} vs ${formatBytes(enc.addRss)} ` +
        `(${formatRatio(r.rss)}, goal within 20 %)`,
    );
    console.log(
      `  add+commit in steps: plain ${breakdown(plain.addParts)} s; encrypted ${breakdown(enc.addParts)} s`,
    );
    console.log(
      `  4 KiB insert: add+commit plain ${formatSeconds(plain.insertAddCommit)}, encrypted ${formatSeconds(enc.insertAddCommit)}; ` +
        `stored plain ${formatBytes(plain.insertGrowth)} (${pct(plain.insertGrowth)}), encrypted ` +
        `${formatBytes(enc.insertGrowth)} (${pct(enc.insertGrowth)}, goal ≤ 1 %)`,
    );
    console.log(
      `  checkout plain ${formatSeconds(plain.checkout)}, encrypted ${formatSeconds(enc.checkout)} ` +
        `(${formatRatio(r.checkout)}); peak RSS ${formatBytes(plain.checkoutRss)} vs ${formatBytes(enc.checkoutRss)}`,
    );
    console.log(
      `  push of both versions: plain ${formatSeconds(plain.push)}, encrypted ${formatSeconds(enc.push)} ` +
        `(${formatRatio(r.push)}, goal ≤ 1.3×); clone plain ${formatSeconds(plain.clone)}, encrypted ` +
        `${formatSeconds(enc.clone)} (${formatRatio(r.clone)}, goal ≤ 1.3×)`,
    );
    const leaked = holding(path.join(server.root, `encrypted${round}`), MARKER);
    const control = holding(path.join(server.root, `plain${round}`), MARKER);
    console.log(
      `  server root scanned for the marker: encrypted repository ${leaked.length} files` +
        ` (control, the plain one: ${control.length})`,
    );
    if (leaked.length > 0) fail(`the marker reached the server: ${leaked.join(', ')}`);
  }
  console.log(
    `median: add+commit ${formatRatio(median(ratios.map((r) => r.add)))} plain, worst ${formatRatio(Math.max(...ratios.map((r) => r.add)))}; ` +
      `peak RSS ${formatRatio(median(ratios.map((r) => r.rss)))}; checkout ${formatRatio(median(ratios.map((r) => r.checkout)))}`,
  );
  console.log(
    `median: push ${formatRatio(median(ratios.map((r) => r.push)))} plain, worst ${formatRatio(Math.max(...ratios.map((r) => r.push)))}; ` +
      `clone ${formatRatio(median(ratios.map((r) => r.clone)))}, worst ${formatRatio(Math.max(...ratios.map((r) => r.clone)))}`,
  );
}

await main();
