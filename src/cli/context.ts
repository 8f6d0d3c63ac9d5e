/**
 * What the CLI resolves from the process once, and the output helpers every
 * command uses. This is the only place (with server/) that reads the
 * environment or writes to the terminal.
 */
import os from 'node:os';
import path from 'node:path';
import { styleText } from 'node:util';
import { Repository, type RepoContext } from '../repo/repository.ts';
import { setQuotePath } from './quote-path.ts';
import { installContentSource } from './lazy-content.ts';
import { secretSource } from './secrets.ts';

export interface Cli {
  readonly cwd: string;
  readonly env: NodeJS.ProcessEnv;
  readonly repoContext: RepoContext;
  readonly out: (text: string) => void;
  /** Writes to stdout exactly (no newline added); `out` when absent. */
  readonly write?: (text: string) => void;
  readonly err: (text: string) => void;
  readonly color: boolean;
  openRepo(): Promise<Repository>;
}

export function globalConfigPath(env: NodeJS.ProcessEnv): string {
  if (env['MEDIAGIT_CONFIG_GLOBAL']) return env['MEDIAGIT_CONFIG_GLOBAL'];
  const base = env['XDG_CONFIG_HOME'] || path.join(env['HOME'] || os.homedir(), '.config');
  return path.join(base, 'mediagit', 'config.toml');
}

export function createCli(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): Cli {
  const repoContext: RepoContext = {
    globalConfigPath: globalConfigPath(env),
    authorName: env['MEDIAGIT_AUTHOR_NAME'] || undefined,
    authorEmail: env['MEDIAGIT_AUTHOR_EMAIL'] || undefined,
    secrets: secretSource(env),
  };
  const color = !env['NO_COLOR'] && process.stdout.isTTY === true && env['TERM'] !== 'dumb';
  const cli: Cli = {
    cwd,
    env,
    repoContext,
    color,
    out: (text) => process.stdout.write(text.endsWith('\n') || text === '' ? text : `${text}\n`),
    write: (text) => process.stdout.write(text),
    err: (text) => process.stderr.write(text.endsWith('\n') ? text : `${text}\n`),
    openRepo: async () => {
      const repo = await Repository.discover(cwd, repoContext);
      setQuotePath(repo.config('core.quotePath'));
      installContentSource(repo, cli);
      return repo;
    },
  };
  return cli;
}

type Style = Parameters<typeof styleText>[0];

export function paint(cli: Cli, style: Style, text: string): string {
  return cli.color ? styleText(style, text, { validateStream: false }) : text;
}

export function printJson(cli: Cli, value: unknown): void {
  cli.out(JSON.stringify(value, null, 2));
}

/** All of standard input as text (keys piped to `login`, the pre-push hook's ref lines). */
export async function readStdin(): Promise<string> {
  const parts: Buffer[] = [];
  for await (const part of process.stdin) parts.push(part as Buffer);
  return Buffer.concat(parts).toString('utf8');
}
