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
  /** The remote refs (`refs/heads/main`) the commits carrying it are pushed to. */
  readonly refs: readonly string[];
}

/** Pointers in the commits `git push` is about to send, given the hook's stdin lines. */
export async function pushedPointers(
  cwd: string,
  env: NodeJS.ProcessEnv,
  remoteName: string,
  updates: string,
): Promise<PushedPointer[]> {
  const found = new Map<string, PushedPointer>();
  // Each ref update on its own: locks are per branch, so which pointers go
  // to which remote ref matters.
  for (const line of updates.split('\n')) {
    const [, localSha, remoteRef = '', remoteSha] = line.trim().split(/\s+/);
    if (!localSha || ZERO.test(localSha)) continue;
    // What the remote ref gains: the commits since its old value when that is
    // known here (a commit already pushed to another branch still counts, for
    // this branch's locks); for a new branch, those on no remote-tracking ref.
    let excluded = [`--remotes=${remoteName}`];
    if (remoteSha && !ZERO.test(remoteSha)) {
      const known = await git(['cat-file', '-t', remoteSha], { cwd, env }).catch(() => '');
      if (known.trim() === 'commit') excluded = [remoteSha];
    }
    const listing = await git(['rev-list', '--objects', localSha, '--not', ...excluded], {
      cwd,
      env,
    });
    for (const each of await pointersIn(cwd, env, listing)) {
      const earlier = found.get(each.pointer.oid);
      found.set(each.pointer.oid, {
        pointer: each.pointer,
        paths: [...new Set([...(earlier?.paths ?? []), ...each.paths])],
        refs: [...new Set([...(earlier?.refs ?? []), remoteRef])],
      });
    }
  }
  return [...found.values()];
}

/** The pointers among the objects of a `rev-list --objects` listing, with their paths. */
async function pointersIn(
  cwd: string,
  env: NodeJS.ProcessEnv,
  listing: string,
): Promise<{ pointer: LfsPointer; paths: string[] }[]> {
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
  const found = new Map<string, { pointer: LfsPointer; paths: string[] }>();
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
      const refused: string[] = [];
      const holders = new Map<string, string>();
      // Locks are per branch on a MediaGit server: each remote ref is checked
      // against the locks that apply to it (its own and global ones).
      for (const ref of new Set(pushed.flatMap((p) => p.refs))) {
        const { theirs } = await lfs.verifyLocks(ref || undefined).catch((error: unknown) => {
          // A server without locking (404/501) has no locks to honour.
          const status = error instanceof MediaGitError ? error.data['status'] : undefined;
          if (status === 404 || status === 501) return { theirs: [] };
          throw error;
        });
        const locked = new Map(theirs.map((lock) => [lock.path, lock]));
        for (const each of pushed) {
          if (!each.refs.includes(ref)) continue;
          for (const file of each.paths) {
            if (!locked.has(file) || holders.has(file)) continue;
            refused.push(file);
            holders.set(file, locked.get(file)?.owner?.name ?? 'someone else');
          }
        }
      }
      if (refused.length > 0) {
        const lines = refused.map((file) => `  ${file} (locked by ${holders.get(file)})`);
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
