/**
 * The fsmonitor daemon: a background process per working tree that keeps a
 * WorkTreeMonitor current and answers `status` requests (files in the
 * repository folder, see fsmonitor-client.ts), so `status` on a large tree
 * costs a process start and a file round trip instead of a walk and an lstat
 * of every file. It is opt-in (`core.fsmonitor = true`, or `mediagit
 * fsmonitor start`), as Git's is.
 *
 * The daemon runs the very same `status` command code with the monitor's file
 * list in place of a fresh walk, so its output is the command's output. It
 * exits after an idle period, when its work tree or PID file disappears, or on
 * SIGTERM.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Repository } from '../repo/repository.ts';
import { WorkTreeMonitor } from '../repo/worktree-monitor.ts';
import { createCli, type Cli } from './context.ts';
import {
  ANSWER_PREFIX,
  daemonPid,
  pidFileFor,
  publishFile,
  REQUEST_PREFIX,
  type DaemonRequest,
  type DaemonResponse,
} from './fsmonitor-client.ts';

export const IDLE_EXIT_MS = 30 * 60 * 1000;
const REQUEST_NAME = new RegExp(`^${REQUEST_PREFIX}([\\w-]+)$`);

type Main = (argv: readonly string[], cli: Cli) => Promise<number>;

export async function runDaemon(cli: Cli, options: { idleMs?: number } = {}): Promise<void> {
  const repo = await cli.openRepo();
  const workTree = repo.requireWorkTree('fsmonitor');
  const gitDir = repo.gitDir;
  if (!claimLock(gitDir)) return;
  const monitor = new WorkTreeMonitor(workTree, gitDir);
  const { main } = await import('./main.ts');
  let queue: Promise<void> = Promise.resolve();
  let idleTimer: NodeJS.Timeout | undefined;
  let resolveDone: () => void = () => undefined;
  const done = new Promise<void>((resolve) => {
    resolveDone = resolve;
  });

  const stop = (): void => {
    clearTimeout(idleTimer);
    clearInterval(watchdog);
    monitor.close();
    if (daemonPid(gitDir) === process.pid) fs.rmSync(pidFileFor(gitDir), { force: true });
    if (lockHolder(gitDir) === process.pid) fs.rmSync(lockFileFor(gitDir), { force: true });
    resolveDone();
  };
  const armIdle = (): void => {
    clearTimeout(idleTimer);
    idleTimer = setTimeout(stop, options.idleMs ?? IDLE_EXIT_MS);
  };
  monitor.onRepositoryFile = (name) => {
    const match = REQUEST_NAME.exec(name);
    if (!match) return;
    const id = match[1]!;
    queue = queue
      .then(() => {
        const requestPath = path.join(gitDir, name);
        let line: string;
        try {
          line = fs.readFileSync(requestPath, 'utf8');
        } catch {
          return; // The event of its deletion, or a client that gave up.
        }
        fs.rmSync(requestPath, { force: true });
        armIdle();
        if (line.includes('"argv":["fsmonitor-stop"]')) {
          publishFile(
            gitDir,
            `${ANSWER_PREFIX}${id}`,
            JSON.stringify({ code: 0, stdout: '', stderr: '' }),
          );
          stop();
          return;
        }
        // This request's event came after every earlier change's event.
        monitor.applyDelivered();
        return answer(line, monitor, main).then((response) => {
          publishFile(gitDir, `${ANSWER_PREFIX}${id}`, JSON.stringify(response));
        });
      })
      // A request that fails is left unanswered: its client falls back to a walk.
      .catch(() => undefined);
  };
  const watchdog = setInterval(() => {
    if (monitor.gone || !fs.existsSync(gitDir) || daemonPid(gitDir) !== process.pid) stop();
  }, 2000);
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  monitor.start();
  // Clients look for the PID file: it appears only once the daemon is watching.
  publishFile(gitDir, 'fsmonitor.pid', `${process.pid}\n`);
  armIdle();
  await done;
}

function lockFileFor(gitDir: string): string {
  return path.join(gitDir, 'fsmonitor.lock');
}

function lockHolder(gitDir: string): number | undefined {
  try {
    const pid = Number(fs.readFileSync(lockFileFor(gitDir), 'utf8').trim());
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Takes the daemon lock, or returns false when another live daemon holds it. */
function claimLock(gitDir: string): boolean {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(lockFileFor(gitDir), `${process.pid}\n`, { flag: 'wx', mode: 0o644 });
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const holder = lockHolder(gitDir);
      if (holder !== undefined && isAlive(holder)) return false;
      fs.rmSync(lockFileFor(gitDir), { force: true });
    }
  }
  return false;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function answer(line: string, monitor: WorkTreeMonitor, main: Main): Promise<DaemonResponse> {
  let request: DaemonRequest;
  try {
    request = JSON.parse(line) as DaemonRequest;
  } catch {
    return { code: 128, stdout: '', stderr: 'fatal: bad fsmonitor request\n' };
  }
  if (request.argv[0] !== 'status' || typeof request.cwd !== 'string') {
    return { code: 128, stdout: '', stderr: 'fatal: the fsmonitor daemon only answers status\n' };
  }
  const base = createCli({ ...request.env, MEDIAGIT_FSMONITOR_DAEMON: '1' }, request.cwd);
  // The answer depends only on the request, the file list, and the files below:
  // when none changed since the last answer, it is the last answer.
  const keyOf = (): string =>
    [line, monitor.generation, stamps(monitor.gitDir, base.repoContext.globalConfigPath)].join(
      '\n',
    );
  if (lastAnswer?.key === keyOf()) return lastAnswer.response;
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
  const code = await main(request.argv, cli);
  const response = { code, stdout, stderr };
  // Stamps are taken after the answer: a status that refreshed the index is
  // cached against the refreshed index.
  lastAnswer = { key: keyOf(), response };
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
