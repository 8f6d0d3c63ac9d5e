/**
 * Running the real `git` (the interop layer talks to Git only through its
 * command line, as git-lfs does) and reading its config.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { MediaGitError } from '../errors.ts';
import { trackChild } from '../storage/leftovers.ts';

export interface GitResult {
  readonly code: number;
  readonly stdout: Buffer;
  readonly stderr: string;
}

export interface GitOptions {
  readonly cwd: string;
  readonly env?: NodeJS.ProcessEnv | undefined;
  readonly input?: string | Uint8Array | undefined;
}

export function runGit(args: readonly string[], options: GitOptions): Promise<GitResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('git', args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    // Ended with this process if it is interrupted (leftovers.ts).
    const release = trackChild(child);
    child.once('close', release);
    child.once('error', release);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (data: Buffer) => out.push(data));
    child.stderr.on('data', (data: Buffer) => err.push(data));
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.input);
    child.on('error', (error) =>
      reject(
        new MediaGitError('GIT_NOT_FOUND', `could not run git: ${error.message}`, {
          kind: 'config',
          cause: error,
        }),
      ),
    );
    child.on('close', (code) =>
      resolve({
        code: code ?? 128,
        stdout: Buffer.concat(out),
        stderr: Buffer.concat(err).toString('utf8'),
      }),
    );
  });
}

/** Runs git and returns its stdout as text; a failure becomes a MediaGitError with git's message. */
export async function git(args: readonly string[], options: GitOptions): Promise<string> {
  const result = await runGit(args, options);
  if (result.code !== 0) {
    throw new MediaGitError(
      'GIT_FAILED',
      `git ${args.join(' ')} failed: ${result.stderr.trim() || `exit ${result.code}`}`,
      { kind: 'user', data: { args, code: result.code } },
    );
  }
  return result.stdout.toString('utf8');
}

/** The repository's git directory and work tree (work tree undefined when bare). */
export interface GitLocation {
  readonly gitDir: string;
  readonly workTree: string | undefined;
}

export async function locateGitRepo(cwd: string, env?: NodeJS.ProcessEnv): Promise<GitLocation> {
  // The common git dir: linked worktrees (`git worktree add`) share the
  // repository's store and hooks, as they share its objects.
  const result = await runGit(
    ['rev-parse', '--git-common-dir', '--is-bare-repository', '--show-toplevel'],
    { cwd, env },
  );
  const lines = result.stdout.toString('utf8').split('\n');
  if (result.code !== 0 && lines.length < 2) {
    throw new MediaGitError('NOT_A_GIT_REPO', 'not in a Git repository', {
      kind: 'usage',
      data: { cwd },
    });
  }
  const gitDir = lines[0]!;
  const bare = lines[1] === 'true';
  const top = lines[2];
  if (!gitDir) {
    throw new MediaGitError('NOT_A_GIT_REPO', 'not in a Git repository', { kind: 'usage' });
  }
  return { gitDir: path.resolve(cwd, gitDir), workTree: bare || !top ? undefined : top };
}

/** One config value (the last one), or undefined when unset. */
export async function gitConfigGet(
  key: string,
  options: GitOptions,
  scope?: '--local' | '--global',
): Promise<string | undefined> {
  const result = await runGit(['config', ...(scope ? [scope] : []), '--get', key], options);
  if (result.code === 1) return undefined;
  if (result.code !== 0) {
    throw new MediaGitError(
      'GIT_FAILED',
      `git config --get ${key} failed: ${result.stderr.trim()}`,
      {
        kind: 'user',
      },
    );
  }
  return result.stdout.toString('utf8').replace(/\n$/, '');
}
