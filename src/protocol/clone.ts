/**
 * `clone`: a new repository with `origin` set to the source, its branches
 * fetched as remote-tracking branches, and the remote's HEAD branch (or
 * `--branch`) checked out and set to track it. `--bare` copies branches as
 * branches and checks nothing out; `--depth N` fetches N commits per tip.
 * As in Git, a clone that fails removes the folder it created.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { MediaGitError, hasErrnoCode } from '../errors.ts';
import type { ObjectId } from '../odb/object-id.ts';
import { Refs } from '../repo/refs.ts';
import { addRemote, setUpstream } from '../repo/remote.ts';
import { Repository, type RepoContext } from '../repo/repository.ts';
import { checkoutCommit } from '../repo/switch.ts';
import { fetchWith, type FetchResult } from './fetch.ts';
import { openTransport, type TransportOptions } from './open-transport.ts';
import { isHttpUrl, localRemotePath } from './transport.ts';

export interface CloneOptions extends TransportOptions {
  readonly branch?: string | undefined;
  readonly depth?: number | undefined;
  readonly bare?: boolean;
  readonly context?: RepoContext;
  readonly onProgress?: ((done: number, total: number) => void) | undefined;
}

export interface CloneResult {
  readonly dir: string;
  readonly gitDir: string;
  /** The branch checked out; undefined for an empty remote. */
  readonly branch: string | undefined;
  readonly head: ObjectId | undefined;
  readonly fetch: FetchResult;
}

/** The folder `clone <url>` makes when none is given: the URL's last part, less `.git`. */
export function defaultCloneDir(url: string): string {
  const last =
    url
      .replace(/[/\\]+$/, '')
      .split(/[/\\:]/)
      .at(-1) ?? '';
  const name = last.replace(/\.(mediagit|git)$/, '');
  return name === '' ? 'repository' : name;
}

export async function clone(url: string, dir: string, options: CloneOptions): Promise<CloneResult> {
  const cwd = options.cwd ?? process.cwd();
  const target = path.resolve(cwd, dir);
  const created = await prepareTarget(target);
  try {
    return await cloneInto(url, target, options, cwd);
  } catch (error) {
    if (created) await fs.rm(target, { recursive: true, force: true });
    else await emptyFolder(target);
    throw error;
  }
}

async function cloneInto(
  url: string,
  target: string,
  options: CloneOptions,
  cwd: string,
): Promise<CloneResult> {
  const { repo } = await Repository.init(target, { bare: options.bare === true }, options.context);
  const storedUrl = isHttpUrl(url) ? url : localRemotePath(url, cwd);
  const transport = await openTransport(storedUrl, { ...options, cwd });
  let result: FetchResult;
  try {
    if (options.bare) {
      result = await fetchWith(repo, transport, undefined, options);
    } else {
      await addRemote(repo, 'origin', storedUrl);
      result = await fetchWith(repo, transport, 'origin', options);
    }
  } finally {
    await transport.close();
  }
  const refs = new Refs(repo);
  const wanted = options.branch;
  let branchRef = wanted !== undefined ? `refs/heads/${wanted}` : (result.head ?? undefined);
  if (wanted !== undefined && result.refs[branchRef!] === undefined) {
    throw new MediaGitError(
      'CLONE_NO_BRANCH',
      `Remote branch ${wanted} not found in upstream origin`,
      {
        kind: 'user',
        data: { branch: wanted },
      },
    );
  }
  if (branchRef !== undefined && result.refs[branchRef] === undefined) branchRef = undefined;
  if (options.bare) {
    for (const [ref, id] of Object.entries(result.refs)) {
      if (ref.startsWith('refs/heads/'))
        await refs.update(ref, id, { message: `clone: from ${url}` });
    }
  }
  if (branchRef === undefined) {
    return { dir: target, gitDir: repo.gitDir, branch: undefined, head: undefined, fetch: result };
  }
  const id = result.refs[branchRef]!;
  const branch = branchRef.slice('refs/heads/'.length);
  if (!options.bare) {
    await refs.update(branchRef, id, { expected: null, message: `clone: from ${url}` });
    await setUpstream(repo, branch, { remote: 'origin', merge: branchRef });
  }
  await refs.setHeadBranch(branchRef, `clone: from ${url}`);
  if (!options.bare) {
    const opened = await Repository.discover(target, options.context);
    await checkoutCommit(opened, undefined, id, { signal: options.signal });
  }
  return { dir: target, gitDir: repo.gitDir, branch, head: id, fetch: result };
}

/** Makes sure `target` is absent or an empty folder; true when this clone creates it. */
async function prepareTarget(target: string): Promise<boolean> {
  try {
    const entries = await fs.readdir(target);
    if (entries.length > 0) {
      throw new MediaGitError(
        'CLONE_TARGET_EXISTS',
        `destination path '${target}' already exists and is not an empty directory`,
        { kind: 'usage', data: { target } },
      );
    }
    return false;
  } catch (error) {
    if (!hasErrnoCode(error, 'ENOENT')) throw error;
    await fs.mkdir(target, { recursive: true });
    return true;
  }
}

async function emptyFolder(target: string): Promise<void> {
  for (const entry of await fs.readdir(target).catch(() => [])) {
    await fs.rm(path.join(target, entry), { recursive: true, force: true });
  }
}
