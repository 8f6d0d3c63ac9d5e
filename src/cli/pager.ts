/**
 * Git's pager for `log`, `diff` and `show` on a terminal: MEDIAGIT_PAGER,
 * GIT_PAGER, `core.pager`, PAGER, then `less` if installed (with LESS=FRX unless set, so
 * short output prints and returns, and colors pass). `cat` or an empty value
 * means no pager; `--no-pager` skips it. Quitting the pager early ends the
 * command quietly, as Git's SIGPIPE does.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { readConfigFile, getConfigValue } from '../config/config.ts';
import type { Cli } from './context.ts';
import { globalConfigPath } from './context.ts';

export const PAGED_VERBS = new Set(['log', 'diff', 'show']);

/** The pager command for this run, or undefined for none. */
export async function pagerCommand(cli: Cli): Promise<string | undefined> {
  let configured: unknown;
  try {
    const repo = await cli.openRepo();
    configured = repo.config('core.pager');
  } catch {
    configured = getConfigValue(await readConfigFile(globalConfigPath(cli.env)), 'core.pager');
  }
  const candidates = [
    cli.env['MEDIAGIT_PAGER'],
    cli.env['GIT_PAGER'],
    typeof configured === 'string' ? configured : undefined,
    cli.env['PAGER'],
  ];
  const chosen = candidates.find((value) => value !== undefined);
  if (chosen === undefined) return onPath('less', cli.env['PATH']) ? 'less' : undefined;
  return chosen.trim() === '' || chosen.trim() === 'cat' ? undefined : chosen;
}

/** Whether `program` is an executable file in one of PATH's folders. */
function onPath(program: string, pathVariable: string | undefined): boolean {
  return (pathVariable ?? '').split(':').some((dir) => {
    try {
      fs.accessSync(path.join(dir || '.', program), fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** A started pager and the Cli whose `out` feeds it. */
export interface Paged {
  readonly cli: Cli;
  /** Ends the pager's input and waits until the user leaves it. */
  finish(): Promise<void>;
}

export function startPager(cli: Cli, command: string): Paged {
  const env = { ...cli.env, LESS: cli.env['LESS'] ?? 'FRX', LV: cli.env['LV'] ?? '-c' };
  const child: ChildProcess = spawn('sh', ['-c', command], {
    stdio: ['pipe', 'inherit', 'inherit'],
    env,
  });
  const exited = new Promise<void>((resolve) => {
    child.on('exit', () => resolve());
    child.on('error', () => resolve());
  });
  // The user left the pager before the end: stop as Git does on SIGPIPE.
  child.stdin!.on('error', () => process.exit(0));
  void exited.then(() => {
    if (!child.stdin!.writableEnded) process.exit(0);
  });
  const out = (text: string): void => {
    child.stdin!.write(text.endsWith('\n') || text === '' ? text : `${text}\n`);
  };
  return {
    cli: { ...cli, out, write: (text: string) => void child.stdin!.write(text) },
    finish: async () => {
      child.stdin!.end();
      await exited;
    },
  };
}
