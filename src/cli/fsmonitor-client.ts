/**
 * The client side of the fsmonitor daemon. Loaded by the launcher before
 * anything else, so it uses `fs` and `path` only: a request and its answer are
 * files in the repository folder, which costs less than loading a socket
 * library (docs/design.md).
 *
 * Protocol, all in `.mediagit/`:
 *   fsmonitor.pid                  the daemon's PID, present while it serves
 *   fsmonitor--request-<id>        JSON DaemonRequest, written to a temp name
 *                                  and renamed, so it appears complete
 *   fsmonitor--answer-<id>         JSON DaemonResponse, likewise; the client
 *                                  deletes it once read
 *   fsmonitor--sh-<pid>            a request of the shell launcher
 *                                  (bin/mediagit), lines of tab-separated
 *                                  fields (parseShellRequest)
 *   fsmonitor--pipe-<pid>          a named pipe the shell launcher makes once
 *                                  its request is written, and reads the
 *                                  answer from (daemon's serveShell)
 * The request's own file event (the pipe's, for the shell launcher) is the
 * daemon's synchronisation point: every change made before the request was
 * written has been delivered by then.
 */
import fs from 'node:fs';
import path from 'node:path';

export interface DaemonRequest {
  readonly argv: readonly string[];
  readonly cwd: string;
  readonly color: boolean;
  readonly env: Record<string, string>;
}

export interface DaemonResponse {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Variables that change how `status` reads config or prints. */
export const FORWARDED_ENV = [
  'HOME',
  'XDG_CONFIG_HOME',
  'MEDIAGIT_CONFIG_GLOBAL',
  'NO_COLOR',
  'TERM',
  'CI',
];
export const REQUEST_PREFIX = 'fsmonitor--request-';
export const ANSWER_PREFIX = 'fsmonitor--answer-';
/** The shell launcher's request (a text file) and answer pipe, named by its PID. */
export const SHELL_REQUEST_PREFIX = 'fsmonitor--sh-';
export const SHELL_PIPE_PREFIX = 'fsmonitor--pipe-';
const ANSWER_TIMEOUT_MS = 3000;

export function pidFileFor(gitDir: string): string {
  return path.join(gitDir, 'fsmonitor.pid');
}

/** The PID of the daemon serving this repository, if one is alive. */
export function daemonPid(gitDir: string): number | undefined {
  let pid: number;
  try {
    pid = Number(fs.readFileSync(pidFileFor(gitDir), 'utf8').trim());
  } catch {
    return undefined;
  }
  if (!Number.isSafeInteger(pid) || pid <= 0) return undefined;
  try {
    process.kill(pid, 0);
    return pid;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM' ? pid : undefined;
  }
}

/** The `.mediagit` folder of the work tree containing `cwd`, if any. */
export function findGitDir(cwd: string): string | undefined {
  for (let dir = path.resolve(cwd); ;) {
    const candidate = path.join(dir, '.mediagit');
    if (fs.existsSync(path.join(candidate, 'HEAD'))) return candidate;
    const parent = path.dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

/** Writes `data` to `dir/name` so that the name appears only with complete content. */
export function publishFile(dir: string, name: string, data: string): void {
  const tmp = path.join(dir, `${name}.tmp`);
  fs.writeFileSync(tmp, data, { mode: 0o600 });
  fs.renameSync(tmp, path.join(dir, name));
}

/**
 * Asks a running daemon to run the command; undefined when none answers in
 * time (the caller then runs the command itself), never an error.
 */
export function askDaemon(
  argv: readonly string[],
  cwd: string,
  env: NodeJS.ProcessEnv,
  color: boolean,
): DaemonResponse | undefined {
  const gitDir = findGitDir(cwd);
  if (!gitDir || daemonPid(gitDir) === undefined) return undefined;
  const forwarded: Record<string, string> = {};
  for (const key of FORWARDED_ENV) if (env[key] !== undefined) forwarded[key] = env[key];
  const request: DaemonRequest = { argv, cwd, color, env: forwarded };
  const id = `${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
  const answerPath = path.join(gitDir, `${ANSWER_PREFIX}${id}`);
  try {
    publishFile(gitDir, `${REQUEST_PREFIX}${id}`, JSON.stringify(request));
  } catch {
    return undefined;
  }
  const sleeper = new Int32Array(new SharedArrayBuffer(4));
  const deadline = Date.now() + ANSWER_TIMEOUT_MS;
  for (let wait = 0.05; Date.now() < deadline; wait = Math.min(wait * 2, 2)) {
    let text: string | undefined;
    try {
      text = fs.readFileSync(answerPath, 'utf8');
    } catch {
      text = undefined;
    }
    if (text !== undefined) {
      fs.rmSync(answerPath, { force: true });
      try {
        const response = JSON.parse(text) as DaemonResponse;
        return typeof response.code === 'number' ? response : undefined;
      } catch {
        return undefined;
      }
    }
    Atomics.wait(sleeper, 0, 0, wait);
  }
  fs.rmSync(path.join(gitDir, `${REQUEST_PREFIX}${id}`), { force: true });
  return undefined;
}

/** Whether a file descriptor is a terminal, without building process.stdout. */
export function isTerminal(fd: number): boolean {
  try {
    return fs.fstatSync(fd).isCharacterDevice();
  } catch {
    return false;
  }
}

/** Writes all of `text` to a descriptor, waiting out a non-blocking pipe that is full. */
export function writeFully(fd: number, text: string): void {
  const bytes = Buffer.from(text, 'utf8');
  const sleeper = new Int32Array(new SharedArrayBuffer(4));
  let done = 0;
  while (done < bytes.length) {
    try {
      done += fs.writeSync(fd, bytes, done, bytes.length - done);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') throw error;
      Atomics.wait(sleeper, 0, 0, 1);
    }
  }
}
