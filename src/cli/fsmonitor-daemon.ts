/**
 * The fsmonitor daemon: a background process per working tree that keeps a
 * WorkTreeMonitor current and answers `status` requests over a Unix socket,
 * so `status` on a large tree costs a process start and a socket round trip
 * instead of a walk and an lstat of every file. It is opt-in
 * (`core.fsmonitor = true`, or `mediagit fsmonitor start`), as Git's is.
 *
 * The daemon runs the very same `status` command code with the monitor's file
 * list in place of a fresh walk, so its output is the command's output. It
 * exits after an idle period, when its work tree disappears, or on SIGTERM.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Repository } from '../repo/repository.ts';
import { WorkTreeMonitor } from '../repo/worktree-monitor.ts';
import { createCli, type Cli } from './context.ts';
import { socketPathFor, type DaemonRequest, type DaemonResponse } from './fsmonitor-client.ts';

export const IDLE_EXIT_MS = 30 * 60 * 1000;

export async function runDaemon(cli: Cli, options: { idleMs?: number } = {}): Promise<void> {
  const repo = await cli.openRepo();
  const workTree = repo.requireWorkTree('fsmonitor');
  const socket = socketPathFor(repo.gitDir);
  if (await isAnswering(socket)) return;
  fs.rmSync(socket, { force: true });
  const monitor = new WorkTreeMonitor(workTree, repo.gitDir);
  monitor.start();
  const { main } = await import('./main.ts');

  let queue: Promise<void> = Promise.resolve();
  let idleTimer: NodeJS.Timeout | undefined;
  const server = net.createServer((connection) => {
    let buffered = '';
    connection.on('data', (data: Buffer) => {
      buffered += data.toString('utf8');
      const newline = buffered.indexOf('\n');
      if (newline < 0) return;
      const line = buffered.slice(0, newline);
      queue = queue.then(async () => {
        if (line.includes('"argv":["fsmonitor-stop"]')) {
          connection.end(JSON.stringify({ code: 0, stdout: '', stderr: '' }));
          stop();
          return;
        }
        const response = await answer(line, monitor, main, cli);
        connection.end(JSON.stringify(response));
      });
    });
    connection.on('error', () => undefined);
    armIdle();
  });

  const stop = (): void => {
    clearTimeout(idleTimer);
    clearInterval(watchdog);
    monitor.close();
    server.close();
    fs.rmSync(socket, { force: true });
  };
  const armIdle = (): void => {
    clearTimeout(idleTimer);
    idleTimer = setTimeout(stop, options.idleMs ?? IDLE_EXIT_MS);
  };
  const watchdog = setInterval(() => {
    if (monitor.gone || !fs.existsSync(repo.gitDir) || !fs.existsSync(socket)) stop();
  }, 5000);
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socket, () => {
      fs.chmodSync(socket, 0o600);
      resolve();
    });
  });
  armIdle();
  await new Promise<void>((resolve) => server.once('close', () => resolve()));
}

async function answer(
  line: string,
  monitor: WorkTreeMonitor,
  main: (argv: readonly string[], cli: Cli) => Promise<number>,
  daemonCli: Cli,
): Promise<DaemonResponse> {
  let request: DaemonRequest;
  try {
    request = JSON.parse(line) as DaemonRequest;
  } catch {
    return { code: 128, stdout: '', stderr: 'fatal: bad fsmonitor request\n' };
  }
  if (request.argv[0] !== 'status' || typeof request.cwd !== 'string') {
    return { code: 128, stdout: '', stderr: 'fatal: the fsmonitor daemon only answers status\n' };
  }
  await monitor.sync();
  const base = createCli({ ...request.env, MEDIAGIT_FSMONITOR_DAEMON: '1' }, request.cwd);
  // The answer depends only on the request, the file list, and the files below:
  // when none changed since the last answer, it is the last answer.
  const key = [
    line,
    monitor.generation,
    stamps(monitor.gitDir, base.repoContext.globalConfigPath),
  ].join('\n');
  if (lastAnswer?.key === key) return lastAnswer.response;
  let stdout = '';
  let stderr = '';
  const cli: Cli = {
    ...base,
    color: request.color,
    out: (text) => {
      stdout += text.endsWith('\n') || text === '' ? text : `${text}\n`;
    },
    err: (text) => {
      stderr += text.endsWith('\n') ? text : `${text}\n`;
    },
    openRepo: () =>
      Repository.discover(request.cwd, {
        ...base.repoContext,
        scanWorkTree: () => monitor.files(),
        shareIndex: true,
      }),
  };
  void daemonCli;
  const code = await main(request.argv, cli);
  const response = { code, stdout, stderr };
  // Stamps are taken after the answer: a status that refreshed the index is
  // cached against the refreshed index.
  lastAnswer = {
    key: [line, monitor.generation, stamps(monitor.gitDir, base.repoContext.globalConfigPath)].join(
      '\n',
    ),
    response,
  };
  return response;
}

let lastAnswer: { key: string; response: DaemonResponse } | undefined;

/** Identity of the repository files `status` reads besides the work tree. */
function stamps(gitDir: string, globalConfig: string | undefined): string {
  const files = ['index', 'HEAD', 'config'].map((name) => path.join(gitDir, name));
  if (globalConfig) files.push(globalConfig);
  try {
    const head = fs.readFileSync(path.join(gitDir, 'HEAD'), 'utf8').trim();
    if (head.startsWith('ref: ')) files.push(path.join(gitDir, ...head.slice(5).split('/')));
  } catch {
    // No HEAD: the stamp of HEAD below says so.
  }
  return files
    .map((file) => {
      const s = fs.statSync(file, { throwIfNoEntry: false });
      return s ? `${s.ino}:${s.size}:${s.mtimeMs}:${s.ctimeMs}` : '-';
    })
    .join('|');
}

async function isAnswering(socket: string): Promise<boolean> {
  if (!fs.existsSync(socket)) return false;
  return new Promise((resolve) => {
    const connection = net.connect(socket);
    connection.on('connect', () => {
      connection.destroy();
      resolve(true);
    });
    connection.on('error', () => resolve(false));
  });
}
