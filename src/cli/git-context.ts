/**
 * What the Git interop verbs (filter, filter-process, pre-push, lock, ...)
 * resolve from the process: the Git repository, its MediaGit store, its
 * MediaGit remote and the credentials for it. Opening it installs the
 * pre-push hook when the repository has none (git/install.ts).
 */
import { MIN_SIZE_KEY, parseByteSize } from '../git/attributes.ts';
import { gitConfigGet, locateGitRepo, type GitLocation } from '../git/git-command.ts';
import { installHooks } from '../git/install.ts';
import type { LfsClientOptions } from '../git/lfs-client.ts';
import { resolveMediaRemote, type MediaRemote } from '../git/media-remote.ts';
import type { Cli } from './context.ts';
import { loadCredential, tlsClientOptions } from './credentials.ts';

export interface GitContext {
  readonly location: GitLocation;
  readonly remote: MediaRemote | undefined;
  readonly client: LfsClientOptions;
  /** `track --min-size`: content below it stays ordinary Git content. */
  readonly minSize: number;
}

export async function gitContext(
  cli: Cli,
  remoteName = 'origin',
  remoteUrl?: string,
): Promise<GitContext> {
  const location = await locateGitRepo(cli.cwd, cli.env);
  if (location.workTree) await installHooks(location.gitDir, location.workTree);
  const remote = await resolveMediaRemote(cli.cwd, cli.env, remoteName, remoteUrl);
  const client: LfsClientOptions = {
    token: remote?.kind === 'http' ? await loadCredential(cli, remote.endpoint) : undefined,
    ...(await tlsClientOptions(cli)),
  };
  const minSize = await gitConfigGet(MIN_SIZE_KEY, { cwd: cli.cwd, env: cli.env });
  return { location, remote, client, minSize: minSize ? parseByteSize(minSize) : 0 };
}
