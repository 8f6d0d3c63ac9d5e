/**
 * Automatic `gc --auto` after commands that add objects, as Git's: kept
 * apart from the gc command so that a commit loads only this check, not
 * gc, repack and the server-side collector.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Repository } from '../repo/repository.ts';
import type { Cli } from './context.ts';

/** Git's defaults for `gc.auto` and `gc.autoPackLimit`. */
const AUTO_LOOSE = 6700;
const AUTO_PACKS = 50;

function configNumber(repo: Repository, key: string, fallback: number): number {
  const value = repo.config(key);
  return typeof value === 'number' && Number.isFinite(value) ? value : fallback;
}

/**
 * Whether the repository has outgrown Git's thresholds: about `gc.auto`
 * loose objects (estimated, as Git does, from one of the 256 fan-out
 * folders) or more than `gc.autoPackLimit` packs. 0 disables either.
 */
export async function needsAutoGc(repo: Repository): Promise<boolean> {
  if (repo.bare) return false;
  const looseLimit = configNumber(repo, 'gc.auto', AUTO_LOOSE);
  if (looseLimit <= 0) return false;
  const sample = await fs.promises
    .readdir(path.join(repo.objects.objectsDir, '17'))
    .catch(() => [] as string[]);
  if (sample.length * 256 > looseLimit) return true;
  const packLimit = configNumber(repo, 'gc.autoPackLimit', AUTO_PACKS);
  if (packLimit <= 0) return false;
  const packs = await fs.promises.readdir(repo.objects.packs.dir).catch(() => [] as string[]);
  return packs.filter((name) => name.endsWith('.idx')).length > packLimit;
}

/**
 * After a command that adds objects (commit, merge, fetch, ...): when the
 * repository needs it, runs `gc --auto` in the background (in the
 * foreground with `gc.autoDetach = false`), as Git does; never with
 * MEDIAGIT_AUTO_GC=0. Never fails the command that triggered it.
 */
export async function autoGc(cli: Cli): Promise<void> {
  // Test suites (as Git's) keep background work from racing their checks.
  if (cli.env['MEDIAGIT_AUTO_GC'] === '0') return;
  let repo: Repository;
  try {
    repo = await cli.openRepo();
    if (!(await needsAutoGc(repo))) return;
  } catch {
    return;
  }
  const launcher = process.argv[1];
  const detach = repo.config('gc.autoDetach');
  if (detach === false || launcher === undefined) {
    cli.err('Auto packing the repository for optimum performance.');
    cli.err('See "mediagit help gc" for manual housekeeping.');
    const { main } = await import('./main.ts');
    await main(['gc', '--auto', '--quiet'], cli).catch(() => undefined);
    return;
  }
  cli.err('Auto packing the repository in background for optimum performance.');
  cli.err('See "mediagit help gc" for manual housekeeping.');
  const child = spawn(process.execPath, [launcher, 'gc', '--auto', '--quiet'], {
    cwd: repo.workTree ?? repo.gitDir,
    detached: true,
    stdio: 'ignore',
  });
  child.on('error', () => undefined);
  child.unref();
}
