// git-lfs's `mediagit` custom transfer agent (issue 21) against `git lfs`'s own `basic` transfer,
// both pushing to the same `mediagit serve` on loopback, with the device's own limits printed
// first:
//   B. `git push` of a commit adding a new 1 GiB file from a clone without the agent (basic: the
//      whole file goes up and the server cuts and stores it);
//   A. the same from a clone with `mediagit install --local --lfs-agent` (the agent cuts the file,
//      sends the chunks in packs, and the server checks the chunks hash to the OID).
//   Each round pushes a new file from each clone (random bytes: nothing to deduplicate), three
//   rounds alternating; `sync` after each push counts; both talk to the server directly.
//   Goal: median A ≤ 0.8 × median B.
//   V. v2 of the last file with 4 KiB inserted at 300 MiB and 64 KiB overwritten at 700 MiB,
//      pushed with the agent: the bytes the server received (counted by a TCP proxy in front of
//      it), goal ≤ 1 % of the file.
//
// Run with `npm run bench:import` (after the import figures) or `node bench/lfs-agent.ts
// [--mib N] [--rounds N] [--files N] [--keep] [--profile DIR]`; not part of npm test.
// `--files N` pushes N new files of --mib each per round (git-lfs hands them to one agent, one
// after another). Scratch lives under bench-work/lfs-agent. `--profile DIR` writes V8 CPU
// profiles of the server and of every agent (and the git-lfs-driven processes) to DIR.

import { createCipheriv, createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import {
  benchEnv,
  cliPath,
  configureRunner,
  deviceLimits,
  formatBytes,
  formatDeviceLimits,
  formatRatio,
  formatSeconds,
  freshDir,
  makeSecondVersion,
  median,
  MiB,
  must,
  numberOption,
  progress,
  startMediaGitServer,
  stopDaemon,
  sync,
  workRoot,
} from './lib.ts';

const args = process.argv.slice(2);
const fileBytes = numberOption(args, '--mib', 1024) * MiB;
const rounds = numberOption(args, '--rounds', 3);
/** New files per push (each --mib): git-lfs hands them to one agent process, one after another. */
const filesPerPush = numberOption(args, '--files', 1);
const keep = args.includes('--keep');
const profileAt = args.indexOf('--profile');
const profileArg = profileAt >= 0 ? args[profileAt + 1] : undefined;
// `--profile` alone (or before another flag) writes to the default folder.
const profileDir =
  profileAt >= 0
    ? path.resolve(
        profileArg === undefined || profileArg.startsWith('--')
          ? 'bench-work/profiles'
          : profileArg,
      )
    : undefined;
if (profileDir) fs.mkdirSync(profileDir, { recursive: true });
const profiled = profileDir ? { NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${profileDir}` } : {};

const scratch = freshDir(path.join(workRoot, 'lfs-agent'));
const home = path.join(scratch, 'home');
const bin = path.join(scratch, 'bin');
fs.mkdirSync(home);
fs.mkdirSync(bin);
fs.writeFileSync(
  path.join(bin, 'mediagit'),
  `#!/bin/sh\nexec "${process.execPath}" "${cliPath}" "$@"\n`,
  { mode: 0o755 },
);
const env = benchEnv({
  HOME: home,
  PATH: `${bin}:${process.env['PATH'] ?? '/usr/bin:/bin'}`,
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_TERMINAL_PROMPT: '0',
  GIT_AUTHOR_NAME: 'Bench',
  GIT_AUTHOR_EMAIL: 'bench@example.com',
  GIT_COMMITTER_NAME: 'Bench',
  GIT_COMMITTER_EMAIL: 'bench@example.com',
  MEDIAGIT_AUTO_GC: '0',
});
configureRunner({ gnuTime: null, env });

const git = (gitArgs: string[], cwd: string) =>
  must(`git ${gitArgs.join(' ')}`, 'git', gitArgs, cwd, 900);
const mg = (mgArgs: string[], cwd: string) =>
  must(`mediagit ${mgArgs.join(' ')}`, process.execPath, [cliPath, ...mgArgs], cwd);

/** Writes `bytes` of seeded noise (AES-CTR keystream) to `file`. */
function writeNoise(file: string, bytes: number, seed: string): void {
  const key = createHash('sha256').update(`bench-lfs-agent-${seed}`).digest();
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  const zeros = Buffer.alloc(8 * MiB);
  const fd = fs.openSync(file, 'w');
  try {
    for (let done = 0; done < bytes;) {
      const n = Math.min(zeros.length, bytes - done);
      const piece = cipher.update(zeros.subarray(0, n));
      for (let at = 0; at < piece.length;) at += fs.writeSync(fd, piece, at);
      done += n;
    }
  } finally {
    fs.closeSync(fd);
  }
}

/** A TCP proxy to `port` counting the bytes clients send through it. */
async function countingProxy(port: number): Promise<{
  port: number;
  sent: () => number;
  close: () => void;
}> {
  let sent = 0;
  const server = net.createServer((client) => {
    const upstream = net.connect(port, '127.0.0.1');
    client.on('data', (data: Buffer) => {
      sent += data.length;
    });
    client.pipe(upstream);
    upstream.pipe(client);
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end);
    upstream.on('error', end);
    client.on('close', end);
    upstream.on('close', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    sent: () => sent,
    close: () => server.close(),
  };
}

try {
  console.log(formatDeviceLimits(deviceLimits(workRoot)));
  await git(['config', '--global', 'init.defaultBranch', 'main'], scratch);
  await git(['lfs', 'install', '--skip-repo'], scratch);
  const root = path.join(scratch, 'server');
  fs.mkdirSync(root);
  await mg(['init', '--bare', '-q', path.join(root, 'media')], root);
  const token = await mg(
    ['token', 'create', '--root', root, '--user', 'bench', '--repo', 'media', '--scope', 'write'],
    root,
  );
  const key = /mgk_\S+/.exec(token.stdout)?.[0];
  if (!key) throw new Error(`token create printed no key: ${token.stdout}`);
  // With --profile, every process from here on writes a CPU profile.
  configureRunner({ gnuTime: null, env: { ...env, ...profiled } });
  const server = await startMediaGitServer(root, { ...env, ...profiled });
  const proxy = await countingProxy(Number(new URL(server.base).port));
  try {
    const origin = path.join(scratch, 'origin.git');
    await git(['init', '-q', '--bare', origin], scratch);
    const clone = async (name: string, agent: boolean): Promise<string> => {
      const dir = path.join(scratch, name);
      await git(['init', '-q', dir], scratch);
      await git(['remote', 'add', 'origin', origin], dir);
      const helper = `!f() { echo username=bench; echo password=${key}; }; f`;
      await git(['config', 'credential.helper', helper], dir);
      await git(['config', 'lfs.url', `${server.base}/media.git/info/lfs`], dir);
      await git(['lfs', 'track', '*.bin'], dir);
      if (agent) await mg(['install', '--local', '--lfs-agent'], dir);
      await git(['add', '.gitattributes'], dir);
      await git(['commit', '-q', '-m', 'attributes'], dir);
      return dir;
    };
    // Each clone pushes its own branch: no pulls, nothing downloaded.
    const basic = await clone('basic', false);
    const agent = await clone('agent', true);

    /** The round's new file names: `<prefix><round>.bin`, or `-<k>` added with --files. */
    const namesOf = (prefix: string, round: number): string[] =>
      filesPerPush === 1
        ? [`${prefix}${round}.bin`]
        : Array.from({ length: filesPerPush }, (_, k) => `${prefix}${round}-${k}.bin`);
    /** Commits new files in `dir`, pushes them, and returns the push's time (`sync` included). */
    const pushNew = async (dir: string, names: readonly string[], seed: string) => {
      for (const name of names) writeNoise(path.join(dir, name), fileBytes, `${seed}${name}`);
      await git(['add', ...names], dir);
      await git(['commit', '-q', '-m', `add ${names.join(' ')}`], dir);
      await sync();
      const push = await git(
        ['push', '-q', 'origin', `HEAD:refs/heads/${path.basename(dir)}`],
        dir,
      );
      return { seconds: push.seconds + (await sync()) };
    };
    /** Frees the round's files from the clone (git-lfs's copy too): the disk holds a few GiB only. */
    const drop = (dir: string, names: readonly string[]): void => {
      for (const name of names) fs.rmSync(path.join(dir, name), { force: true });
      fs.rmSync(path.join(dir, '.git', 'lfs', 'objects'), { recursive: true, force: true });
    };

    const times = { basic: [] as number[], agent: [] as number[] };
    for (let round = 1; round <= rounds; round++) {
      progress(
        `round ${round}/${rounds}: ${filesPerPush} new ${formatBytes(fileBytes)} file(s) each, basic then agent`,
      );
      const b = await pushNew(basic, namesOf('b', round), `b${round}`);
      drop(basic, namesOf('b', round));
      const a = await pushNew(agent, namesOf('a', round), `a${round}`);
      times.basic.push(b.seconds);
      times.agent.push(a.seconds);
      console.log(
        `  round ${round}: B ${formatSeconds(b.seconds)}   A ${formatSeconds(a.seconds)}   A/B ${formatRatio(a.seconds / b.seconds)}`,
      );
      if (round < rounds) drop(agent, namesOf('a', round));
    }

    progress('V: v2 of the last file (4 KiB inserted, 64 KiB overwritten), pushed with the agent');
    const last = path.join(agent, namesOf('a', rounds)[0]!);
    const v2 = makeSecondVersion(last, path.join(scratch, 'v2.bin'), fileBytes);
    fs.renameSync(v2.file, last);
    await git(['commit', '-q', '-a', '-m', 'v2'], agent);
    // Through the counting proxy only here (in the timed pushes it would take a core's share).
    await git(['config', 'lfs.url', `http://127.0.0.1:${proxy.port}/media.git/info/lfs`], agent);
    await sync();
    const before = proxy.sent();
    const push = await git(['push', '-q', 'origin', 'HEAD:refs/heads/agent'], agent);
    const sent = proxy.sent() - before;

    const mb = median(times.basic);
    const ma = median(times.agent);
    const ratio = ma / mb;
    const share = sent / v2.bytes;
    console.log(
      `\ngit push of ${filesPerPush === 1 ? 'a new' : `${filesPerPush} new`} ${formatBytes(fileBytes)} file${filesPerPush === 1 ? '' : 's'} to mediagit serve, ${rounds} rounds`,
    );
    console.log(
      `  B  git-lfs basic        median ${formatSeconds(mb)}  (${times.basic.map(formatSeconds).join(', ')})`,
    );
    console.log(
      `  A  mediagit agent       median ${formatSeconds(ma)}  (${times.agent.map(formatSeconds).join(', ')})`,
    );
    console.log(
      `  A / B                   ${formatRatio(ratio)}   goal ≤ 0.80x  ${ratio <= 0.8 ? '✓' : '✗'}`,
    );
    console.log(
      `  V  v2 with the agent    ${formatBytes(sent)} sent = ${(share * 100).toFixed(2)} % of ${formatBytes(v2.bytes)} in ${formatSeconds(push.seconds)}   goal ≤ 1 %  ${share <= 0.01 ? '✓' : '✗'}`,
    );
    process.exitCode = ratio <= 0.8 && share <= 0.01 ? 0 : 1;
  } finally {
    proxy.close();
    await stopDaemon(server.daemon, 'SIGTERM');
  }
} finally {
  if (!keep) fs.rmSync(scratch, { recursive: true, force: true });
}
