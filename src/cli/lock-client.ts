/**
 * The server `mediagit lock`, `unlock` and `locks` talk to: the Git LFS
 * File Locking API (server/lfs-api.ts) of the repository's remote. In a
 * MediaGit repository that is the remote's URL (`origin` unless --remote);
 * in a Git repository using the MediaGit filter, its MediaGit remote
 * (git/media-remote.ts). Paths are sent relative to the work tree root.
 */
import path from 'node:path';
import { MediaGitError } from '../errors.ts';
import { git, locateGitRepo, runGit } from '../git/git-command.ts';
import { lfsEndpoint, LfsClient, type LfsClientOptions } from '../git/lfs-client.ts';
import { resolveMediaRemote } from '../git/media-remote.ts';
import { lockableMatcher, lockablePatterns } from '../repo/lockable.ts';
import { isValidRefName, Refs } from '../repo/refs.ts';
import { findRemote } from '../repo/remote.ts';
import type { Cli } from './context.ts';
import { loadCredential, tlsClientOptions } from './credentials.ts';

export interface LockTarget {
  readonly client: LfsClient;
  /** The work tree root, for turning paths given on the command line into repository paths. */
  readonly root: string | undefined;
  /** The checked-out branch (`refs/heads/<name>`); undefined on a detached HEAD. */
  readonly branch: string | undefined;
  /**
   * HEAD's commit in a MediaGit repository (the server may have it, so it
   * can apply the smart-lock rule); undefined in a Git repository.
   */
  readonly head: string | undefined;
  /** Whether a repository path is lockable (checked out read-only until locked). */
  readonly isLockable: (repoPath: string) => Promise<boolean>;
}

export async function lockTarget(
  cli: Cli,
  remoteName = 'origin',
  clientOptions: Pick<LfsClientOptions, 'retries'> = {},
): Promise<LockTarget> {
  let url: string | undefined;
  let root: string | undefined;
  let branch: string | undefined;
  let head: string | undefined;
  let isLockable: (repoPath: string) => Promise<boolean>;
  const repo = await cli.openRepo().catch(() => undefined);
  if (repo) {
    url = (await findRemote(repo, remoteName))?.url;
    root = repo.workTree;
    if (!url) {
      throw new MediaGitError('NO_REMOTE', `no remote named ${remoteName}`, { kind: 'usage' });
    }
    const state = await new Refs(repo).head();
    branch = state.branch;
    head = state.id;
    const matcher = lockableMatcher(lockablePatterns(repo));
    isLockable = (repoPath) => Promise.resolve(matcher?.(repoPath) ?? false);
  } else {
    const location = await locateGitRepo(cli.cwd, cli.env);
    root = location.workTree;
    const remote = await resolveMediaRemote(cli.cwd, cli.env, remoteName);
    if (remote?.kind === 'http') url = remote.endpoint;
    const symbolic = await runGit(['symbolic-ref', '-q', 'HEAD'], { cwd: cli.cwd, env: cli.env });
    const name = symbolic.stdout.toString('utf8').trim();
    branch = symbolic.code === 0 && name.startsWith('refs/heads/') ? name : undefined;
    // The `lockable` attribute of .gitattributes, as git-lfs reads it.
    isLockable = async (repoPath) => {
      const out = await git(['check-attr', 'lockable', '--', repoPath], {
        cwd: root ?? cli.cwd,
        env: cli.env,
      });
      return /: lockable: set\n?$/.test(out);
    };
  }
  if (!url || !/^https?:\/\//i.test(url)) {
    throw new MediaGitError(
      'LOCKS_NEED_SERVER',
      `file locks live on a MediaGit server; the remote ${url ?? remoteName} is not an http(s) URL`,
      { kind: 'usage' },
    );
  }
  const endpoint = lfsEndpoint(url);
  const client = new LfsClient(endpoint, {
    ...clientOptions,
    token: await loadCredential(cli, endpoint),
    ...(await tlsClientOptions(cli)),
  });
  return { client, root, branch, head, isLockable };
}

/** A branch given on the command line (`main` or `refs/heads/main`) as a full ref name. */
export function branchRef(given: string): string {
  const ref = given.startsWith('refs/') ? given : `refs/heads/${given}`;
  if (!ref.startsWith('refs/heads/') || !isValidRefName(ref)) {
    throw new MediaGitError('BAD_REF', `not a branch: ${given}`, { kind: 'usage' });
  }
  return ref;
}

/** A path given on the command line as a repository path ('/'-separated, from the root). */
export function repositoryPath(cli: Cli, root: string | undefined, given: string): string {
  if (!root) return given.split(path.sep).join('/');
  const relative = path.relative(root, path.resolve(cli.cwd, given));
  if (relative === '' || relative.startsWith('..') || path.isAbsolute(relative)) {
    throw new MediaGitError('PATH_OUTSIDE_REPO', `${given} is outside the repository`, {
      kind: 'usage',
    });
  }
  return relative.split(path.sep).join('/');
}
