/**
 * The pre-push hook: before Git sends commits, find the pointers they add
 * (blobs of the new commits that parse as pointers), refuse the push when
 * one of their paths is locked by someone else, and upload the content the
 * MediaGit remote lacks, so that no pushed pointer names content the remote
 * cannot serve.
 */
import { MediaGitError } from '../errors.ts';
import { MAX_POINTER_BYTES, parsePointer, type LfsPointer } from '../odb/lfs-pointer.ts';
import { git, runGit } from './git-command.ts';
import { LfsClient, type LfsClientOptions } from './lfs-client.ts';
import { uploadContent, type MediaRemote } from './media-remote.ts';
import type { GitMediaStore } from './media-store.ts';

const ZERO = /^0+$/;

export interface PushedPointer {
  readonly pointer: LfsPointer;
  readonly paths: readonly string[];
}

/** Pointers in the commits `git push` is about to send, given the hook's stdin lines. */
export async function pushedPointers(
  cwd: string,
  env: NodeJS.ProcessEnv,
  remoteName: string,
  updates: string,
): Promise<PushedPointer[]> {
  const tips: string[] = [];
  const excluded: string[] = [];
  for (const line of updates.split('\n')) {
    const [, localSha, , remoteSha] = line.trim().split(/\s+/);
    if (!localSha || ZERO.test(localSha)) continue;
    tips.push(localSha);
    if (remoteSha && !ZERO.test(remoteSha)) {
      const known = await git(['cat-file', '-t', remoteSha], { cwd, env }).catch(() => '');
      if (known.trim() === 'commit') excluded.push(remoteSha);
    }
  }
  if (tips.length === 0) return [];
  const listing = await git(
    ['rev-list', '--objects', ...tips, '--not', ...excluded, `--remotes=${remoteName}`],
    { cwd, env },
  );
  const pathsOf = new Map<string, string[]>();
  for (const line of listing.split('\n')) {
    const space = line.indexOf(' ');
    if (space < 0) continue;
    const sha = line.slice(0, space);
    const list = pathsOf.get(sha) ?? [];
    list.push(line.slice(space + 1));
    pathsOf.set(sha, list);
  }
  if (pathsOf.size === 0) return [];
  const checks = await git(
    ['cat-file', '--batch-check=%(objectname) %(objecttype) %(objectsize)'],
    {
      cwd,
      env,
      input: [...pathsOf.keys()].join('\n') + '\n',
    },
  );
  const small = checks
    .split('\n')
    .map((line) => line.split(' '))
    .filter(([, type, size]) => type === 'blob' && Number(size) <= MAX_POINTER_BYTES)
    .map(([sha]) => sha!);
  if (small.length === 0) return [];
  const contents = await runGit(['cat-file', '--batch'], {
    cwd,
    env,
    input: small.join('\n') + '\n',
  });
  const out = contents.stdout;
  const found = new Map<string, PushedPointer>();
  let at = 0;
  while (at < out.length) {
    const newline = out.indexOf(0x0a, at);
    if (newline < 0) break;
    const [sha = '', , sizeText = '0'] = out.toString('utf8', at, newline).split(' ');
    const size = Number(sizeText);
    const body = out.subarray(newline + 1, newline + 1 + size);
    at = newline + 1 + size + 1;
    const parsed = parsePointer(body);
    if (!parsed.ok || parsed.pointer.size === 0) continue;
    const earlier = found.get(parsed.pointer.oid);
    const paths = [...(earlier?.paths ?? []), ...(pathsOf.get(sha) ?? [])];
    found.set(parsed.pointer.oid, { pointer: parsed.pointer, paths });
  }
  return [...found.values()];
}

/** Runs the hook's work; returns what it uploaded. */
export async function prePush(
  store: GitMediaStore,
  remote: MediaRemote,
  pushed: readonly PushedPointer[],
  client: LfsClientOptions,
): Promise<{ uploaded: number; present: number }> {
  if (remote.kind === 'http' && pushed.length > 0) {
    const lfs = new LfsClient(remote.endpoint, client);
    try {
      const { theirs } = await lfs.verifyLocks().catch((error: unknown) => {
        // A server without locking (404/501) has no locks to honour.
        const status = error instanceof MediaGitError ? error.data['status'] : undefined;
        if (status === 404 || status === 501) return { theirs: [] };
        throw error;
      });
      const locked = new Map(theirs.map((lock) => [lock.path, lock]));
      const refused = pushed.flatMap((p) => p.paths.filter((file) => locked.has(file)));
      if (refused.length > 0) {
        const lines = refused.map(
          (file) => `  ${file} (locked by ${locked.get(file)?.owner?.name ?? 'someone else'})`,
        );
        throw new MediaGitError(
          'LOCKED_BY_OTHERS',
          `push refused: it changes files locked by others:\n${lines.join('\n')}`,
          {
            kind: 'user',
            data: { paths: refused },
          },
        );
      }
    } finally {
      lfs.close();
    }
  }
  if (pushed.length === 0) return { uploaded: 0, present: 0 };
  return uploadContent(
    remote,
    store,
    pushed.map((p) => p.pointer),
    client,
  );
}
