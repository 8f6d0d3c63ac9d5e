/**
 * Read-only lockable files in a Git repository using the MediaGit filter
 * (docs/locks.md): Git, not MediaGit, writes the work tree there, and a file
 * Git writes is created writable. The post-checkout and post-merge hooks
 * (git/install.ts) call `readOnlyAfterGit` with what Git just wrote, and
 * every file among them that carries the `lockable` attribute loses its
 * write bits, as git-lfs's hooks do. `mediagit lock` makes it writable.
 *
 * No server is asked: the work tree does not know who holds a lock, so a
 * lockable file Git rewrites goes read-only even if you hold its lock (the
 * same rule as MediaGit's own checkout; `mediagit lock` again is idempotent).
 */
import path from 'node:path';
import { makeReadOnly } from '../repo/lockable.ts';
import { git, runGit } from './git-command.ts';

const ZERO = /^0+$/;

/** Which files Git has just written: named ones, or every clean tracked file. */
export type Written = { readonly paths: readonly string[] } | { readonly allClean: true };

/**
 * What `git checkout` / `git switch` wrote, from the post-checkout hook's
 * arguments: the files that differ between the two commits on a branch
 * checkout; after a clone (old commit all zeros) every file; after a file
 * checkout (`git checkout -- <paths>`, flag 0, paths unknown) every tracked
 * file that matches the index (Git wrote the restored files that way).
 */
export async function writtenByCheckout(
  cwd: string,
  env: NodeJS.ProcessEnv,
  previous: string,
  next: string,
  flag: string,
): Promise<Written> {
  if (flag !== '1' || ZERO.test(previous)) return { allClean: true };
  return { paths: await changedBetween(cwd, env, previous, next) };
}

/** What `git merge` / `git pull` wrote, from ORIG_HEAD (the commit before it) to HEAD. */
export async function writtenByMerge(cwd: string, env: NodeJS.ProcessEnv): Promise<Written> {
  const before = await runGit(['rev-parse', '-q', '--verify', 'ORIG_HEAD^{commit}'], { cwd, env });
  const id = before.stdout.toString('utf8').trim();
  if (before.code !== 0 || !id) return { allClean: true };
  return { paths: await changedBetween(cwd, env, id, 'HEAD') };
}

async function changedBetween(
  cwd: string,
  env: NodeJS.ProcessEnv,
  from: string,
  to: string,
): Promise<string[]> {
  const out = await git(['diff', '--name-only', '-z', '--no-renames', from, to, '--'], {
    cwd,
    env,
  });
  return out.split('\0').filter((p) => p !== '');
}

/**
 * Makes the lockable files among `written` read-only; returns their paths
 * (relative to the work tree root, '/'-separated). Files modified against
 * the index are left alone: someone is editing them.
 */
export async function readOnlyAfterGit(
  workTree: string,
  env: NodeJS.ProcessEnv,
  written: Written,
): Promise<string[]> {
  const options = { cwd: workTree, env };
  let candidates: string[];
  if ('paths' in written) {
    candidates = [...written.paths];
  } else {
    const tracked = await git(['ls-files', '-z', '--full-name'], options);
    const modified = new Set(
      (await git(['diff', '--name-only', '-z', '--no-renames'], options)).split('\0'),
    );
    candidates = tracked.split('\0').filter((p) => p !== '' && !modified.has(p));
  }
  if (candidates.length === 0) return [];
  const attributes = await git(['check-attr', '-z', '--stdin', 'lockable'], {
    ...options,
    input: candidates.join('\0') + '\0',
  });
  // -z output: <path> NUL <attribute> NUL <value> NUL, per path.
  const fields = attributes.split('\0');
  const lockable: string[] = [];
  for (let i = 0; i + 2 < fields.length; i += 3) {
    if (fields[i + 2] === 'set') lockable.push(fields[i]!);
  }
  await makeReadOnly(lockable.map((p) => path.join(workTree, ...p.split('/'))));
  return lockable;
}
