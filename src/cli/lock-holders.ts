/**
 * Who holds the locks on modified lockable files, for `status`'s long
 * format (docs/locks.md). One list request to the server, made only when
 * some modified file is lockable, bounded by a short timeout; an
 * unreachable server, a remote that is no server or any other failure
 * gives no holders and no error: status must work offline.
 */
import { lockableMatcher, lockablePatterns } from '../repo/lockable.ts';
import type { Repository } from '../repo/repository.ts';
import type { Cli } from './context.ts';

const HOLDERS_TIMEOUT_MS = 2000;

/** Path → lock owner, for those of `paths` that are lockable and locked on `branch` (or globally). */
export async function lockHolders(
  cli: Cli,
  repo: Repository,
  paths: readonly string[],
  branch: string | undefined,
): Promise<Map<string, string>> {
  const holders = new Map<string, string>();
  const lockable = lockableMatcher(lockablePatterns(repo));
  const wanted = new Set(lockable ? paths.filter(lockable) : []);
  if (wanted.size === 0) return holders;
  let timer: NodeJS.Timeout | undefined;
  let close: (() => void) | undefined;
  try {
    const ask = (async () => {
      // The HTTP client loads only when some modified file is lockable.
      const { lockTarget } = await import('./lock-client.ts');
      // One try: a refused or failed connection means no holders, at once.
      const { client } = await lockTarget(cli, 'origin', { retries: 0 });
      close = () => client.close();
      return client.listLocks(branch !== undefined ? { refspec: `refs/heads/${branch}` } : {});
    })();
    const timeout = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), HOLDERS_TIMEOUT_MS);
    });
    ask.catch(() => undefined);
    const locks = await Promise.race([ask, timeout]);
    for (const lock of locks ?? []) {
      if (wanted.has(lock.path) && lock.owner) holders.set(lock.path, lock.owner.name);
    }
  } catch {
    // No server, no answer: no holders shown.
  } finally {
    clearTimeout(timer);
    close?.();
  }
  return holders;
}
