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
  FORWARDED_ENV,
  pidFileFor,
  publishFile,
  REQUEST_PREFIX,
  SHELL_PIPE_PREFIX,
  SHELL_REQUEST_PREFIX,
  type DaemonRequest,
  type DaemonResponse,
} from './fsmonitor-client.ts';

export const IDLE_EXIT_MS = 30 * 60 * 1000;
const REQUEST_NAME = new RegExp(`^${REQUEST_PREFIX}([\\w-]+)$`);
const SHELL_PIPE_NAME = new RegExp(`^${SHELL_PIPE_PREFIX}(\\d+)$`);
/** How long a shell client's request may wait for the client to open its pipe. */
const SHELL_OPEN_TIMEOUT_MS = 3000;
/** Leftovers of shell clients that died are removed after this age. */
const SHELL_LEFTOVER_MS = 30_000;

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
    const shell = SHELL_PIPE_NAME.exec(name);
    if (shell) {
      queue = queue
        .then(() => serveShell(gitDir, shell[1]!, monitor, main, armIdle))
        .catch(() => undefined);
      return;
    }
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
        return answer(parseRequest(line), line, monitor, main).then((response) => {
          publishFile(gitDir, `${ANSWER_PREFIX}${id}`, JSON.stringify(response));
        });
      })
      // A request that fails is left unanswered: its client falls back to a walk.
      .catch(() => undefined);
  };
  const watchdog = setInterval(() => {
    if (monitor.gone || !fs.existsSync(gitDir) || daemonPid(gitDir) !== process.pid) stop();
    else removeShellLeftovers(gitDir);
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

function parseRequest(line: string): DaemonRequest | undefined {
  try {
    const request = JSON.parse(line) as DaemonRequest;
    return Array.isArray(request.argv) && typeof request.cwd === 'string' ? request : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A request of the shell launcher (bin/mediagit): lines of tab-separated
 * fields, `cwd <dir>`, `color 0|1`, `env <name> <value>` and `arg <value>`.
 */
export function parseShellRequest(text: string): DaemonRequest | undefined {
  let cwd: string | undefined;
  let color = false;
  const env: Record<string, string> = {};
  const argv: string[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const tab = line.indexOf('\t');
    if (tab < 0) return undefined;
    const field = line.slice(0, tab);
    const value = line.slice(tab + 1);
    if (field === 'cwd') cwd = value;
    else if (field === 'color') color = value === '1';
    else if (field === 'arg') argv.push(value);
    else if (field === 'env') {
      const split = value.indexOf('\t');
      if (split < 0) return undefined;
      const name = value.slice(0, split);
      if (FORWARDED_ENV.includes(name)) env[name] = value.slice(split + 1);
    } else return undefined;
  }
  return cwd === undefined || !path.isAbsolute(cwd) ? undefined : { argv, cwd, color, env };
}

/**
 * Serves one request of the shell launcher. The launcher wrote its request to
 * `fsmonitor--sh-<id>`, then made the pipe `fsmonitor--pipe-<id>` (whose
 * event, like a request file's, comes after every earlier change's), and
 * waits reading the pipe. The answer is a header line `<code> <stderr lines>
 * <stdout bytes>`, the stderr lines, then stdout.
 */
async function serveShell(
  gitDir: string,
  id: string,
  monitor: WorkTreeMonitor,
  main: Main,
  armIdle: () => void,
): Promise<void> {
  const requestPath = path.join(gitDir, `${SHELL_REQUEST_PREFIX}${id}`);
  const pipePath = path.join(gitDir, `${SHELL_PIPE_PREFIX}${id}`);
  let text: string;
  try {
    text = fs.readFileSync(requestPath, 'utf8');
  } catch {
    return; // Served already (this is the event of the pipe's removal), or abandoned.
  }
  fs.rmSync(requestPath, { force: true });
  armIdle();
  // The pipe is opened before the answer is computed: once it is, the
  // launcher waits for the answer however long it takes.
  const fd = await openPipe(pipePath);
  if (fd === undefined) return;
  try {
    monitor.applyDelivered();
    const request = parseShellRequest(text);
    // Closing the pipe unanswered sends the launcher to the CLI itself.
    if (request === undefined) return;
    const response = await answer(request, text, monitor, main);
    const stderr =
      response.stderr === '' || response.stderr.endsWith('\n')
        ? response.stderr
        : `${response.stderr}\n`;
    const lines = stderr === '' ? 0 : stderr.split('\n').length - 1;
    const body = Buffer.from(
      `${response.code} ${lines} ${Buffer.byteLength(response.stdout)}\n${stderr}${response.stdout}`,
    );
    // Written outside the queue: a reader that stops reading holds up no one.
    void writePipe(fd, body).finally(() => fs.closeSync(fd));
  } catch (error) {
    fs.closeSync(fd);
    throw error;
  }
}

/**
 * Opens a shell client's pipe for writing without ever blocking a thread: a
 * non-blocking open fails until the client has opened the pipe for reading
 * (it does so right after making it), so it is retried for a while. The
 * pipe's name is removed once open; undefined when the client never came.
 */
async function openPipe(pipePath: string): Promise<number | undefined> {
  const deadline = Date.now() + SHELL_OPEN_TIMEOUT_MS;
  for (let wait = 1; ; wait = Math.min(wait * 2, 50)) {
    try {
      if (!fs.lstatSync(pipePath).isFIFO()) return undefined;
      const fd = fs.openSync(pipePath, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
      fs.rmSync(pipePath, { force: true });
      return fd;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENXIO' || Date.now() > deadline) {
        fs.rmSync(pipePath, { force: true });
        return undefined;
      }
    }
    await new Promise((resolve) => setTimeout(resolve, wait));
  }
}

/** Writes all of `body` to a non-blocking pipe, waiting while it is full; stops when the reader is gone. */
async function writePipe(fd: number, body: Buffer): Promise<void> {
  let done = 0;
  for (let wait = 1; done < body.length;) {
    try {
      done += fs.writeSync(fd, body, done, body.length - done);
      wait = 1;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') return; // EPIPE: the reader left.
      await new Promise((resolve) => setTimeout(resolve, wait));
      wait = Math.min(wait * 2, 100);
    }
  }
}

/** Removes request files and pipes of shell clients that died before being served. */
function removeShellLeftovers(gitDir: string): void {
  let names: string[];
  try {
    names = fs.readdirSync(gitDir);
  } catch {
    return;
  }
  const now = Date.now();
  for (const name of names) {
    if (!name.startsWith(SHELL_REQUEST_PREFIX) && !name.startsWith(SHELL_PIPE_PREFIX)) continue;
    const file = path.join(gitDir, name);
    const stat = fs.lstatSync(file, { throwIfNoEntry: false });
    if (stat && now - stat.mtimeMs > SHELL_LEFTOVER_MS) fs.rmSync(file, { force: true });
  }
}

async function answer(
  request: DaemonRequest | undefined,
  line: string,
  monitor: WorkTreeMonitor,
  main: Main,
): Promise<DaemonResponse> {
  if (request === undefined) {
    return { code: 128, stdout: '', stderr: 'fatal: bad fsmonitor request\n' };
  }
  if (request.argv[0] !== 'status') {
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
  const files = ['index', 'HEAD', 'config', 'packed-refs'].map((name) => path.join(gitDir, name));
  if (globalConfig) files.push(globalConfig);
  // Status tells how the branch stands against its upstream: a fetch
  // replaces a file under refs/remotes/, which changes its folder's stamp.
  const remotes = path.join(gitDir, 'refs', 'remotes');
  files.push(remotes);
  try {
    for (const entry of fs.readdirSync(remotes, { withFileTypes: true, recursive: true })) {
      if (entry.isDirectory()) files.push(path.join(entry.parentPath, entry.name));
    }
  } catch {
    // No remote-tracking branches.
  }
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
