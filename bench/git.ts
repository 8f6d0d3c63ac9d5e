// Git interop benchmark: one large incompressible file versioned in Git twice, once with the
// stock git-lfs client and once with MediaGit's filter, both pushing to the same `mediagit serve`
// on loopback (separate repositories on it), in the same run:
//   - `git add` + `git commit` of the file (the clean filter), next to `cp` + `sync`;
//   - `git push` of v1, then of v2 (4 KiB inserted at 300/1024, 64 KiB overwritten at 700/1024),
//     with the bytes the server received for v2 (its own counter);
//   - how much the server's storage grew for both versions, as a multiple of the file size;
//   - `git clone` (checkout through the smudge filter / filter-process), bytes checked.
// See bench/README.md.
//
// Run with `npm run bench:git` (builds first), or `node bench/git.ts [--quick] [--size N]
// [--repeat N] [--json]` with Node >= 24. Progress on stderr; stdout carries the table and, as
// its last line, one JSON object with every number.
//
// Contracts: each timed step is the command plus a trailing `sync`, after an untimed `sync`; each
// round uses fresh repositories (Git and server) so no round deduplicates against another; the
// figures are medians over rounds.

import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  GiB,
  MiB,
  cliPath,
  configureRunner,
  ensureSource,
  fail,
  formatBytes,
  formatRatio,
  formatSeconds,
  freshDir,
  makeSecondVersion,
  median,
  mediagit,
  must,
  onPath,
  parseRepeat,
  progress,
  sync,
  treeBytes,
  workRoot,
  deviceLimits,
  formatDeviceLimits,
  sha256OfFile,
} from './lib.ts';

interface Options {
  bytes: number;
  repeat: number;
  json: boolean;
}

function parseOptions(argv: readonly string[]): Options {
  const options: Options = { bytes: GiB, repeat: 1, json: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--quick') options.bytes = 128 * MiB;
    else if (arg === '--json') options.json = true;
    else if (arg === '--size') {
      const bytes = Number(argv[++i]);
      if (!Number.isSafeInteger(bytes) || bytes < 16 * MiB)
        fail('--size needs a byte count >= 16 MiB');
      options.bytes = bytes;
    } else if (arg === '--repeat') {
      options.repeat = parseRepeat(argv[++i]) ?? fail('--repeat needs a count from 1 to 9');
    } else fail(`unknown option ${String(arg)} (see the header of bench/git.ts)`);
  }
  return options;
}

type Side = 'gitLfs' | 'mediagit';

interface SideFigures {
  addSeconds: number;
  pushV1Seconds: number;
  pushV2Seconds: number;
  pushV2SentBytes: number;
  storageGrowthBytes: number;
  cloneSeconds: number;
}

const runDir = path.join(workRoot, 'git-run');

async function startServer(
  root: string,
  env: NodeJS.ProcessEnv,
): Promise<{ child: ChildProcess; base: string }> {
  const child = spawn(process.execPath, [cliPath, 'serve', '--root', root, '--port', '0'], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  for (let waited = 0; waited < 20_000; waited += 50) {
    const match = /listening on (http:\/\/[\d.]+:\d+)/.exec(output);
    if (match?.[1]) return { child, base: match[1] };
    if (child.exitCode !== null) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  child.kill();
  return fail(`mediagit serve did not start: ${output}`);
}

async function bytesReceived(base: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('mediagit_http_bytes_received_total '));
  return Number(line?.split(' ')[1] ?? NaN);
}

/** A timed command followed by a timed sync. */
async function timed(
  what: string,
  command: string,
  args: readonly string[],
  cwd: string,
): Promise<number> {
  await sync();
  const result = await must(what, command, args, cwd, 1800);
  return result.seconds + (await sync());
}

async function measureSide(
  side: Side,
  round: number,
  base: string,
  serverRoot: string,
  source: string,
  second: { file: string; sha256: string },
  bytes: number,
): Promise<SideFigures> {
  const name = `${side === 'gitLfs' ? 'lfs' : 'mg'}-${round}`;
  await mediagit(['init', '--bare', '-q', path.join(serverRoot, name)], runDir);
  const origin = path.join(runDir, `${name}-origin.git`);
  const repo = freshDir(path.join(runDir, name));
  const git = (args: readonly string[], cwd = repo) =>
    must(`git ${args.join(' ')}`, 'git', args, cwd, 1800);
  await git(['init', '-q', '--bare', origin], runDir);
  await git(['init', '-q']);
  await git(['remote', 'add', 'origin', origin]);
  if (side === 'gitLfs') {
    await git(['lfs', 'track', '*.bin']);
    fs.writeFileSync(
      path.join(repo, '.lfsconfig'),
      `[lfs]\n\turl = ${base}/${name}.git/info/lfs\n`,
    );
  } else {
    await mediagit(['track', '*.bin'], repo);
    await git(['config', 'mediagit.url', `${base}/${name}`]);
  }
  await git(['add', '.']);
  await git(['commit', '-q', '-m', 'setup']);
  const big = path.join(repo, 'big.bin');
  const commit = async (file: string, message: string): Promise<number> => {
    fs.copyFileSync(file, big);
    await sync();
    const add = await timed('git add', 'git', ['add', 'big.bin'], repo);
    return add + (await timed('git commit', 'git', ['commit', '-q', '-m', message], repo));
  };
  const store = path.join(serverRoot, name);
  const storage0 = treeBytes(store);
  progress(`${side} round ${round}: add + commit v1`);
  const addSeconds = await commit(source, 'v1');
  progress(`${side} round ${round}: push v1`);
  const pushV1Seconds = await timed('git push', 'git', ['push', '-q', 'origin', 'HEAD:main'], repo);
  await commit(second.file, 'v2');
  const in1 = await bytesReceived(base);
  progress(`${side} round ${round}: push v2`);
  const pushV2Seconds = await timed('git push', 'git', ['push', '-q', 'origin', 'HEAD:main'], repo);
  const pushV2SentBytes = (await bytesReceived(base)) - in1;
  const storageGrowthBytes = treeBytes(store) - storage0;
  progress(`${side} round ${round}: clone`);
  const clone = path.join(runDir, `${name}-clone`);
  const cloneArgs = side === 'gitLfs' ? [] : ['-c', `mediagit.url=${base}/${name}`];
  const cloneSeconds = await timed(
    'git clone',
    'git',
    [...cloneArgs, 'clone', '-q', origin, clone],
    runDir,
  );
  if (sha256OfFile(path.join(clone, 'big.bin')) !== second.sha256)
    fail(`${side}: the clone's big.bin differs from v2`);
  for (const dir of [repo, origin, clone]) fs.rmSync(dir, { recursive: true, force: true });
  fs.rmSync(store, { recursive: true, force: true });
  void bytes;
  return {
    addSeconds,
    pushV1Seconds,
    pushV2Seconds,
    pushV2SentBytes,
    storageGrowthBytes,
    cloneSeconds,
  };
}

async function main(): Promise<number> {
  const options = parseOptions(process.argv.slice(2));
  if (!onPath('git') || !onPath('git-lfs'))
    fail('git and git-lfs are needed (apt-get install git git-lfs)');
  freshDir(runDir);
  const source = ensureSource(options.bytes);
  progress('making the second version');
  const second = makeSecondVersion(source, path.join(runDir, 'v2.bin'), options.bytes);
  const home = freshDir(path.join(runDir, 'home'));
  const shims = freshDir(path.join(runDir, 'bin'));
  fs.writeFileSync(
    path.join(shims, 'mediagit'),
    `#!/bin/sh\nexec "${process.execPath}" "${cliPath}" "$@"\n`,
    { mode: 0o755 },
  );
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env))
    if (!key.startsWith('MEDIAGIT_')) env[key] = value;
  Object.assign(env, {
    HOME: home,
    XDG_CONFIG_HOME: path.join(home, '.config'),
    PATH: `${shims}:${process.env['PATH'] ?? '/usr/bin:/bin'}`,
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_TERMINAL_PROMPT: '0',
    GIT_AUTHOR_NAME: 'Bench',
    GIT_AUTHOR_EMAIL: 'bench@example.com',
    GIT_COMMITTER_NAME: 'Bench',
    GIT_COMMITTER_EMAIL: 'bench@example.com',
    MEDIAGIT_AUTHOR_NAME: 'Bench',
    MEDIAGIT_AUTHOR_EMAIL: 'bench@example.com',
  });
  configureRunner({ gnuTime: null, env });
  const serverRoot = freshDir(path.join(runDir, 'server'));
  const token = await mediagit(
    ['token', 'create', '--root', serverRoot, '--user', 'bench', '--repo', '*', '--scope', 'write'],
    runDir,
  );
  const key = token.stdout.trim();
  env['MEDIAGIT_TOKEN'] = key;
  const { child, base } = await startServer(serverRoot, env);
  try {
    const gitGlobal = (args: readonly string[]) =>
      must('git config', 'git', ['config', '--global', ...args], home);
    await gitGlobal(['init.defaultBranch', 'main']);
    await gitGlobal([
      'credential.helper',
      `!f() { echo username=bench; echo password=${key}; }; f`,
    ]);
    await must('git lfs install', 'git', ['lfs', 'install', '--skip-repo'], home);
    await mediagit(['install'], home);

    const cpTimes: number[] = [];
    const rounds: Record<Side, SideFigures[]> = { gitLfs: [], mediagit: [] };
    for (let round = 1; round <= options.repeat; round++) {
      const copy = path.join(runDir, 'copy.bin');
      cpTimes.push(await timed('cp', 'cp', [source, copy], runDir));
      fs.rmSync(copy);
      for (const side of ['gitLfs', 'mediagit'] as const) {
        rounds[side].push(
          await measureSide(side, round, base, serverRoot, source, second, options.bytes),
        );
      }
    }
    const med = (side: Side, key: keyof SideFigures) => median(rounds[side].map((r) => r[key]));
    const figures: Record<string, number> = { 'cp.seconds': median(cpTimes) };
    for (const side of ['gitLfs', 'mediagit'] as const) {
      for (const key of Object.keys(rounds[side][0]!) as (keyof SideFigures)[])
        figures[`${side}.${key}`] = med(side, key);
      figures[`${side}.storageGrowthRatio`] = med(side, 'storageGrowthBytes') / options.bytes;
    }
    const lines = [
      `Git interop, ${formatBytes(options.bytes)} incompressible file, v2 = 4 KiB inserted + 64 KiB overwritten; medians of ${options.repeat}`,
      `                                  git-lfs client   MediaGit filter   MediaGit / git-lfs`,
    ];
    const row = (label: string, key: keyof SideFigures, format: (n: number) => string) => {
      const a = figures[`gitLfs.${key}`]!;
      const b = figures[`mediagit.${key}`]!;
      lines.push(
        `${label.padEnd(34)}${format(a).padStart(14)}   ${format(b).padStart(15)}   ${formatRatio(b / a).padStart(18)}`,
      );
    };
    row('git add + commit v1 (+ sync)', 'addSeconds', formatSeconds);
    row('git push v1 (+ sync)', 'pushV1Seconds', formatSeconds);
    row('git push v2 (+ sync)', 'pushV2Seconds', formatSeconds);
    row('  bytes the server received for v2', 'pushV2SentBytes', formatBytes);
    row('server storage growth, v1 + v2', 'storageGrowthBytes', formatBytes);
    row('git clone (checkout v2, + sync)', 'cloneSeconds', formatSeconds);
    lines.push(
      `cp + sync of the file: ${formatSeconds(figures['cp.seconds']!)}; add + commit / cp: git-lfs ${formatRatio(figures['gitLfs.addSeconds']! / figures['cp.seconds']!)}, MediaGit ${formatRatio(figures['mediagit.addSeconds']! / figures['cp.seconds']!)}`,
      `server storage for both versions: ${figures['gitLfs.storageGrowthRatio']!.toFixed(4)}x the file (git-lfs client), ${figures['mediagit.storageGrowthRatio']!.toFixed(4)}x (MediaGit filter); goal < 1.05x`,
    );
    const device = deviceLimits(workRoot);
    lines.push(formatDeviceLimits(device));
    const report = {
      meta: { bytes: options.bytes, repeat: options.repeat, node: process.version, device },
      figures,
    };
    if (!options.json) process.stdout.write(`${lines.join('\n')}\n`);
    process.stdout.write(`${JSON.stringify(report)}\n`);
    return 0;
  } finally {
    child.kill('SIGTERM');
    fs.rmSync(runDir, { recursive: true, force: true });
  }
}

process.exitCode = await main();
