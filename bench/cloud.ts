// Cloud benchmark (issue 13): push and clone of one incompressible file through a `mediagit
// serve` whose root is on an object-store emulator on loopback (s3rver, Azurite), against
// `rclone copy` of the same file to and from the same emulator. Also: the server's CPU time
// during the push against the client's (pack bytes go straight to the bucket through signed
// URLs), and the peak RSS of client and server.
//
// Usage: npm run bench:cloud [-- --size <bytes>] [--repeat <n>] [--backends s3,az] [--json]
//
// Each step runs after an untimed `sync` and is timed from spawn to exit plus a trailing `sync`
// (the emulators write what they receive to this machine's disk), for MediaGit and rclone alike.

import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  AZURITE_ACCOUNT,
  AZURITE_KEY,
  startAzure,
  startS3,
  type Emulator,
} from '../test/emulators/index.ts';
import {
  cliPath,
  configureRunner,
  deviceLimits,
  formatDeviceLimits,
  type DeviceLimits,
  ensureSource,
  fail,
  formatBytes,
  formatRatio,
  formatSeconds,
  freshDir,
  GiB,
  installMissing,
  KiB,
  median,
  mediagit,
  MiB,
  must,
  onPath,
  parseRepeat,
  progress,
  readOrEmpty,
  sync,
  toolVersion,
  workRoot,
  type RunResult,
  sha256OfFile,
} from './lib.ts';

const timeGoal = 1.25;
const serverCpuGoal = 0.1;
const rssGoal = 300 * MiB;

type Kind = 's3' | 'az';

interface Options {
  fileBytes: number;
  repeat: number;
  backends: Kind[];
  json: boolean;
}

const usage = `usage: node bench/cloud.ts [--size <bytes>] [--repeat <n>] [--backends s3,az] [--json]
  --size <bytes>     file size (default 1 GiB)
  --repeat <n>       rounds per figure, the median is reported (default 3)
  --backends <list>  which emulators: s3 (s3rver), az (Azurite); default both
  --json             print only the JSON record`;

function parseOptions(argv: readonly string[]): Options {
  const options: Options = { fileBytes: GiB, repeat: 3, backends: ['s3', 'az'], json: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = (): string => argv[++i] ?? fail(`${arg} needs a value\n${usage}`);
    if (arg === '--size') {
      const bytes = Number(value());
      if (!Number.isInteger(bytes) || bytes < MiB) fail(`--size must be at least ${MiB}`);
      options.fileBytes = bytes;
    } else if (arg === '--repeat') {
      options.repeat = parseRepeat(value()) ?? fail('--repeat must be 1 to 9');
    } else if (arg === '--backends') {
      const kinds = value().split(',');
      if (kinds.some((k) => k !== 's3' && k !== 'az')) fail('--backends takes s3 and/or az');
      options.backends = kinds as Kind[];
    } else if (arg === '--json') {
      options.json = true;
    } else if (arg === '--help' || arg === '-h') {
      console.log(usage);
      process.exit(0);
    } else {
      fail(`unknown option ${String(arg)}\n${usage}`);
    }
  }
  return options;
}

// ---------------------------------------------------------------------------------------------
// Processes

const clockTicks = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout) || 100;

/** CPU seconds (user + system) a process has used so far, from /proc/<pid>/stat. */
function cpuSecondsOf(pid: number): number {
  const stat = readOrEmpty(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / clockTicks;
}

function peakRssOf(pid: number): number | null {
  const match = /VmHWM:\s+(\d+) kB/.exec(readOrEmpty(`/proc/${pid}/status`));
  return match?.[1] === undefined ? null : Number(match[1]) * KiB;
}

interface Server {
  pid: number;
  base: string;
  stop(): Promise<void>;
}

async function startServer(root: string, env: NodeJS.ProcessEnv, cwd: string): Promise<Server> {
  // MEDIAGIT_BENCH_SERVER_PROFILE=<dir>: a V8 CPU profile of the server, written when it stops.
  const profile = process.env['MEDIAGIT_BENCH_SERVER_PROFILE'];
  const args = [
    ...(profile ? ['--cpu-prof', '--cpu-prof-dir', profile] : []),
    cliPath,
    ...['serve', '--root', root, '--port', '0', '--log', 'silent'],
  ];
  const child = spawn(process.execPath, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const deadline = Date.now() + 60_000;
  for (;;) {
    const base = /listening on (http:\/\/[\d.]+:\d+)/.exec(output)?.[1];
    if (base !== undefined) {
      return {
        pid: child.pid!,
        base,
        stop: async () => {
          child.kill('SIGTERM');
          const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
          await exited;
          clearTimeout(timer);
        },
      };
    }
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`mediagit serve did not start: ${output.trim()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Bytes the server itself received over HTTP so far (its /metrics counter). */
async function serverBytesReceived(server: Server): Promise<number> {
  const text = await (await fetch(`${server.base}/metrics`)).text();
  const match = /^mediagit_http_bytes_received_total (\S+)$/m.exec(text);
  if (match?.[1] === undefined) throw new Error('GET /metrics has no bytes received counter');
  return Number(match[1]);
}

// ---------------------------------------------------------------------------------------------
// rclone

/** rclone's configuration for the emulator, as environment variables (remote named `bench`). */
async function rcloneEnv(emulator: Emulator, dir: string): Promise<NodeJS.ProcessEnv> {
  const env: NodeJS.ProcessEnv = { RCLONE_CONFIG: path.join(dir, 'rclone.conf') };
  if (emulator.kind === 's3') {
    return Object.assign(env, {
      RCLONE_CONFIG_BENCH_TYPE: 's3',
      RCLONE_CONFIG_BENCH_PROVIDER: 'Other',
      RCLONE_CONFIG_BENCH_ENDPOINT: emulator.endpoint,
      RCLONE_CONFIG_BENCH_ACCESS_KEY_ID: emulator.env['AWS_ACCESS_KEY_ID'],
      RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY: emulator.env['AWS_SECRET_ACCESS_KEY'],
      RCLONE_CONFIG_BENCH_FORCE_PATH_STYLE: 'true',
    });
  }
  // rclone 1.60 makes an https URL of any endpoint but takes a SAS URL as it is.
  const azure = await import('@azure/storage-blob');
  const credential = new azure.StorageSharedKeyCredential(AZURITE_ACCOUNT, AZURITE_KEY);
  const sas = azure.generateBlobSASQueryParameters(
    {
      containerName: 'mediagit',
      permissions: azure.ContainerSASPermissions.parse('racwdl'),
      expiresOn: new Date(Date.now() + 24 * 3600_000),
    },
    credential,
  );
  return Object.assign(env, {
    RCLONE_CONFIG_BENCH_TYPE: 'azureblob',
    RCLONE_CONFIG_BENCH_SAS_URL: `${emulator.endpoint}/mediagit?${sas.toString()}`,
  });
}

// ---------------------------------------------------------------------------------------------
// Measuring

interface Step {
  seconds: number;
  cpuSeconds: number | null;
  peakRssBytes: number | null;
}

/** Untimed sync, then the command, timed from spawn to exit plus a trailing sync. */
async function timedStep(command: () => Promise<RunResult>): Promise<Step> {
  await sync();
  const result = await command();
  const flush = await sync();
  return {
    seconds: result.seconds + flush,
    cpuSeconds: result.cpuSeconds,
    peakRssBytes: result.peakRssBytes,
  };
}

interface BackendFigures {
  kind: Kind;
  push: number[];
  clone: number[];
  rcloneUp: number[];
  rcloneDown: number[];
  clientPushCpu: number[];
  serverPushCpu: number[];
  emulatorPushCpu: number[];
  clientCloneCpu: number[];
  serverCloneCpu: number[];
  /** Bytes of the push that went through the server (the rest went straight to the bucket). */
  serverReceived: number[];
  clientPeakRss: number | null;
  serverPeakRss: number | null;
}

async function measureBackend(
  kind: Kind,
  options: Options,
  ctx: { runDir: string; work: string; source: string; sourceSha: string; env: NodeJS.ProcessEnv },
): Promise<BackendFigures> {
  const figures: BackendFigures = {
    kind,
    push: [],
    clone: [],
    rcloneUp: [],
    rcloneDown: [],
    clientPushCpu: [],
    serverPushCpu: [],
    emulatorPushCpu: [],
    clientCloneCpu: [],
    serverCloneCpu: [],
    serverReceived: [],
    clientPeakRss: null,
    serverPeakRss: null,
  };
  progress(`${kind}: starting ${kind === 's3' ? 's3rver' : 'Azurite'}`);
  const emulator = kind === 's3' ? await startS3() : await startAzure();
  let server: Server | null = null;
  const timeout = Math.max(300, Math.ceil((options.fileBytes / GiB) * 120));
  const env: NodeJS.ProcessEnv = {
    ...ctx.env,
    ...emulator.env,
    ...(await rcloneEnv(emulator, ctx.runDir)),
  };
  configureRunner({ gnuTime: onPath('/usr/bin/time'), env });
  try {
    const root = emulator.url('bench');
    const token = await mediagit(
      ['token', 'create', '--root', root, '--user', 'bench', '--repo', '*', '--scope', 'write'],
      ctx.runDir,
    );
    env['MEDIAGIT_TOKEN'] = token.stdout.trim();
    server = await startServer(root, env, ctx.runDir);
    // A server runs for long: one push (untimed) first, so the figures are a
    // warm server's, not the loading and compiling of its code on first use.
    // 256 MiB: several packs, so a push's every step has run once.
    const warm = freshDir(path.join(ctx.runDir, 'warm-up'));
    await mediagit(['init', '-q'], warm);
    fs.writeFileSync(path.join(warm, 'warm.txt'), 'warm-up\n');
    const warmSource = fs.openSync(ctx.source, 'r');
    const warmBytes = Buffer.alloc(Math.min(256 * MiB, options.fileBytes));
    fs.readSync(warmSource, warmBytes, 0, warmBytes.length, 0);
    fs.closeSync(warmSource);
    fs.writeFileSync(path.join(warm, 'warm.bin'), warmBytes);
    await mediagit(['add', 'warm.txt', 'warm.bin'], warm);
    await mediagit(['commit', '-q', '-m', 'warm-up'], warm);
    await mediagit(['init', '--bare', '-q', `${root}/warm-up`], ctx.runDir);
    await mediagit(['push', '-q', `${server.base}/warm-up`, 'main'], warm);
    const rss = (r: number | null): void => {
      if (r !== null) figures.clientPeakRss = Math.max(figures.clientPeakRss ?? 0, r);
    };
    for (let round = 1; round <= options.repeat; round++) {
      progress(`${kind}: round ${round} of ${options.repeat}`);
      const repo = `repo${round}`;
      await mediagit(['init', '--bare', '-q', `${root}/${repo}`], ctx.runDir);
      const url = `${server.base}/${repo}`;

      // The server's counter is read outside the CPU window (a /metrics scrape costs CPU too).
      const received = await serverBytesReceived(server);
      const serverCpu = cpuSecondsOf(server.pid);
      const emulatorCpu = await emulator.cpuSeconds();
      const push = await timedStep(() => mediagit(['push', '-q', url, 'main'], ctx.work, timeout));
      figures.push.push(push.seconds);
      figures.clientPushCpu.push(push.cpuSeconds ?? NaN);
      figures.serverPushCpu.push(cpuSecondsOf(server.pid) - serverCpu);
      figures.emulatorPushCpu.push((await emulator.cpuSeconds()) - emulatorCpu);
      figures.serverReceived.push((await serverBytesReceived(server)) - received);
      rss(push.peakRssBytes);
      progress(`  mediagit push ${formatSeconds(push.seconds)}`);

      const cloneDir = path.join(ctx.runDir, 'clone');
      fs.rmSync(cloneDir, { recursive: true, force: true });
      const serverBeforeClone = cpuSecondsOf(server.pid);
      const clone = await timedStep(() =>
        mediagit(['clone', '-q', url, cloneDir], ctx.runDir, timeout),
      );
      figures.clone.push(clone.seconds);
      figures.clientCloneCpu.push(clone.cpuSeconds ?? NaN);
      figures.serverCloneCpu.push(cpuSecondsOf(server.pid) - serverBeforeClone);
      rss(clone.peakRssBytes);
      progress(`  mediagit clone ${formatSeconds(clone.seconds)}`);
      if (round === 1 && sha256OfFile(path.join(cloneDir, 'big.bin')) !== ctx.sourceSha) {
        throw new Error(`${kind}: the cloned big.bin differs from the pushed one`);
      }
      fs.rmSync(cloneDir, { recursive: true, force: true });

      const remote = `bench:mediagit/rclone${round}`;
      const up = await timedStep(() =>
        must('rclone copy (upload)', 'rclone', ['copy', ctx.source, remote], ctx.runDir, timeout),
      );
      figures.rcloneUp.push(up.seconds);
      progress(`  rclone copy up ${formatSeconds(up.seconds)}`);
      const down = freshDir(path.join(ctx.runDir, 'rclone-down'));
      const name = path.basename(ctx.source);
      const get = await timedStep(() =>
        must(
          'rclone copy (download)',
          'rclone',
          ['copy', `${remote}/${name}`, down],
          ctx.runDir,
          timeout,
        ),
      );
      figures.rcloneDown.push(get.seconds);
      progress(`  rclone copy down ${formatSeconds(get.seconds)}`);
      if (fs.statSync(path.join(down, name)).size !== options.fileBytes) {
        throw new Error(`${kind}: rclone downloaded a file of the wrong size`);
      }
      fs.rmSync(down, { recursive: true, force: true });
    }
    figures.serverPeakRss = peakRssOf(server.pid);
  } finally {
    await server?.stop();
    await emulator.stop();
  }
  return figures;
}

// ---------------------------------------------------------------------------------------------
// Report

const mark = (met: boolean): string => (met ? '✓' : '✗');

function render(all: readonly BackendFigures[], options: Options, limits: DeviceLimits): string[] {
  const lines: string[] = [];
  const of = options.repeat > 1 ? `median of ${options.repeat}` : 'one run';
  lines.push(
    `MediaGit cloud benchmark: ${formatBytes(options.fileBytes)} of random bytes, ${of}, ` +
      `${os.cpus().length} CPUs, Node ${process.version}, ${toolVersion('rclone', ['version'])}`,
  );
  lines.push(formatDeviceLimits(limits));
  lines.push('times: spawn to exit plus a trailing sync, after an untimed sync; loopback');
  for (const f of all) {
    const name = f.kind === 's3' ? 's3rver' : 'Azurite';
    const push = median(f.push);
    const clone = median(f.clone);
    const up = median(f.rcloneUp);
    const down = median(f.rcloneDown);
    const clientCpu = median(f.clientPushCpu);
    const serverCpu = median(f.serverPushCpu);
    const cpuShare = serverCpu / clientCpu;
    lines.push('');
    lines.push(`${name}:`);
    lines.push(
      `  push   ${formatSeconds(push).padStart(8)}  rclone copy up   ${formatSeconds(up).padStart(8)}` +
        `  ${formatRatio(push / up).padStart(6)} (goal ≤ ${timeGoal}x) ${mark(push / up <= timeGoal)}`,
    );
    lines.push(
      `  clone  ${formatSeconds(clone).padStart(8)}  rclone copy down ${formatSeconds(down).padStart(8)}` +
        `  ${formatRatio(clone / down).padStart(6)} (goal ≤ ${timeGoal}x) ${mark(clone / down <= timeGoal)}`,
    );
    lines.push(
      `  push CPU: server ${formatSeconds(serverCpu)}, client ${formatSeconds(clientCpu)} ` +
        `(${(cpuShare * 100).toFixed(1)} %, goal < ${serverCpuGoal * 100} %) ${mark(cpuShare < serverCpuGoal)}; ` +
        `emulator ${formatSeconds(median(f.emulatorPushCpu))}`,
    );
    lines.push(
      `  clone CPU: server ${formatSeconds(median(f.serverCloneCpu))}, ` +
        `client ${formatSeconds(median(f.clientCloneCpu))}`,
    );
    lines.push(
      `  through the server during the push: ${formatBytes(median(f.serverReceived))} ` +
        '(pack bytes go straight to the bucket)',
    );
    const rssLine = (who: string, bytes: number | null): string =>
      bytes === null ? `${who} ?` : `${who} ${formatBytes(bytes)} ${mark(bytes < rssGoal)}`;
    lines.push(
      `  peak RSS (goal < ${formatBytes(rssGoal)}): ${rssLine('client', f.clientPeakRss)}, ` +
        rssLine('server', f.serverPeakRss),
    );
  }
  return lines;
}

async function main(): Promise<number> {
  const options = parseOptions(process.argv.slice(2));
  installMissing([
    { command: 'rclone', pkg: 'rclone' },
    { command: '/usr/bin/time', pkg: 'time' },
  ]);
  if (onPath('rclone') === null) fail('rclone is needed as the baseline (apt-get install rclone)');
  if (onPath('/usr/bin/time') === null) fail('GNU time is needed (apt-get install time)');
  const runDir = path.join(workRoot, 'cloud-run');
  fs.mkdirSync(workRoot, { recursive: true });
  const stats = fs.statfsSync(workRoot);
  const needed = (3 + 2 * options.repeat) * options.fileBytes;
  if (stats.bavail * stats.bsize < needed) fail(`needs about ${formatBytes(needed)} free`);
  freshDir(runDir);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    LC_ALL: 'C',
    MEDIAGIT_AUTHOR_NAME: 'bench',
    MEDIAGIT_AUTHOR_EMAIL: 'bench@example.com',
  };
  // A CA bundle set for the machine's own AWS use makes rclone fail on a plain-HTTP endpoint.
  delete env['AWS_CA_BUNDLE'];
  configureRunner({ gnuTime: '/usr/bin/time', env });

  const source = ensureSource(options.fileBytes);
  const sourceSha = sha256OfFile(source);
  const work = freshDir(path.join(runDir, 'work'));
  progress('committing the file in a client work tree (untimed)');
  await mediagit(['init', '-q'], work);
  fs.copyFileSync(source, path.join(work, 'big.bin'));
  await mediagit(['add', 'big.bin'], work, 600);
  await mediagit(['commit', '-q', '-m', 'v1'], work, 600);
  const limits = deviceLimits(runDir);

  const all: BackendFigures[] = [];
  for (const kind of options.backends) {
    all.push(await measureBackend(kind, options, { runDir, work, source, sourceSha, env }));
  }
  fs.rmSync(runDir, { recursive: true, force: true });
  if (options.fileBytes !== GiB) fs.rmSync(source, { force: true });

  const json = JSON.stringify({
    meta: { date: new Date().toISOString(), fileBytes: options.fileBytes, repeat: options.repeat },
    limits,
    backends: all,
  });
  if (!options.json) for (const line of render(all, options, limits)) console.log(line);
  console.log(json);
  return 0;
}

process.exitCode = await main();
