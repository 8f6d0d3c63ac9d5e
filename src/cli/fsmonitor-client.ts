/**
 * The client side of the fsmonitor daemon: where its socket lives, and asking
 * it to run `status`. Loaded by the launcher before anything else, so it uses
 * Node built-ins only and costs almost nothing when no daemon runs.
 */
import fs from 'node:fs';
import net from 'node:net';
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

/** A Unix socket path must stay under ~104 bytes; long repository paths use the temp folder. */
export function socketPathFor(gitDir: string): string {
  const inRepo = path.join(gitDir, 'fsmonitor.sock');
  if (Buffer.byteLength(inRepo) < 100) return inRepo;
  // Loaded only here: this module sits on status's fast path.
  const { hash } = process.getBuiltinModule('node:crypto');
  const { tmpdir } = process.getBuiltinModule('node:os');
  return path.join(
    tmpdir(),
    `mediagit-fsmonitor-${hash('sha256', gitDir, 'hex').slice(0, 20)}.sock`,
  );
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

/**
 * Asks a running daemon to run the command; undefined when none answers (the
 * caller then runs the command itself), never an error.
 */
export async function askDaemon(
  argv: readonly string[],
  cwd: string,
  env: NodeJS.ProcessEnv,
  color: boolean,
): Promise<DaemonResponse | undefined> {
  const gitDir = findGitDir(cwd);
  if (!gitDir) return undefined;
  const socket = socketPathFor(gitDir);
  if (!fs.existsSync(socket)) return undefined;
  const forwarded: Record<string, string> = {};
  for (const key of FORWARDED_ENV) if (env[key] !== undefined) forwarded[key] = env[key];
  const request: DaemonRequest = { argv, cwd, color, env: forwarded };
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const connection = net.connect(socket);
    const timer = setTimeout(() => {
      connection.destroy();
      resolve(undefined);
    }, 10_000);
    connection.on('connect', () => connection.write(`${JSON.stringify(request)}\n`));
    connection.on('data', (data: Buffer) => chunks.push(data));
    connection.on('error', () => {
      clearTimeout(timer);
      resolve(undefined);
    });
    connection.on('end', () => {
      clearTimeout(timer);
      try {
        const response = JSON.parse(Buffer.concat(chunks).toString('utf8')) as DaemonResponse;
        resolve(typeof response.code === 'number' ? response : undefined);
      } catch {
        resolve(undefined);
      }
    });
  });
}
