/**
 * `remote show`: what a remote holds against this repository, as Git's
 * `git remote show` reports it: the remote's HEAD branch; each of its
 * branches as tracked (a remote-tracking branch follows it), new (the next
 * fetch will store it) or stale (the remote-tracking branch remains, the
 * branch is gone); the local branches whose upstream is there; and how each
 * local branch stands against the remote branch of the same name (Git shows
 * the "matching" push here whatever push.default says).
 *
 * Without `query` the remote is not contacted: only this repository's
 * remote-tracking branches and config are read, as `git remote show -n`.
 */
import { readConfigFile, type ConfigTable } from '../config/config.ts';
import type { ObjectId } from '../odb/object-id.ts';
import { isAncestor } from '../repo/merge-base.ts';
import { Refs } from '../repo/refs.ts';
import { findRemote } from '../repo/remote.ts';
import type { Repository } from '../repo/repository.ts';
import { resolveRemote } from './fetch.ts';
import { remoteFor } from './encrypted.ts';
import { openTransport, type TransportOptions } from './open-transport.ts';
import type { InfoRefs } from './service.ts';
import { compareNames } from '../odb/tree.ts';

const HEADS = 'refs/heads/';

export type RemoteBranchState = 'tracked' | 'new' | 'stale';

export interface RemoteBranch {
  /**
   * The remote's branch name (`main`); for a stale one, the remote-tracking
   * ref left behind (`refs/remotes/origin/gone`), as Git names it.
   */
  readonly name: string;
  /** The remote-tracking ref that follows it (present or to be made). */
  readonly trackingRef: string;
  /** Null when the remote was not queried. */
  readonly state: RemoteBranchState | null;
}

export interface PullInfo {
  /** The local branch whose upstream is on this remote. */
  readonly branch: string;
  /** The remote branch it merges (short: `main`). */
  readonly merges: string;
}

export type PushStatus = 'up to date' | 'fast-forwardable' | 'local out of date';

export interface PushInfo {
  readonly branch: string;
  readonly remoteBranch: string;
  readonly status: PushStatus;
}

export interface RemoteState {
  readonly name: string;
  readonly url: string;
  readonly queried: boolean;
  /** The remote's HEAD branch (short); null when unknown or not queried. */
  readonly head: string | null;
  /** Sorted by name, as Git lists them. */
  readonly branches: RemoteBranch[];
  readonly pull: PullInfo[];
  /** Null when not queried (Git prints "(matching) pushes to (matching)"). */
  readonly push: PushInfo[] | null;
}

export interface ShowRemoteOptions extends TransportOptions {
  /** Contact the remote (false: `-n`). */
  readonly query: boolean;
}

/**
 * Describes the remote `name` (a configured remote; with `query`, a URL or
 * path too, as Git allows). Throws NO_SUCH_REMOTE / REMOTE_NOT_FOUND (exit
 * 128) when it cannot be reached.
 */
export async function showRemote(
  repo: Repository,
  name: string,
  options: ShowRemoteOptions,
): Promise<RemoteState> {
  const configured = await findRemote(repo, name);
  const pull = await pullInfo(repo, name);
  const refs = new Refs(repo);
  const tracking = configured ? await trackingRefs(refs, name) : new Map<string, ObjectId>();
  if (!options.query) {
    return {
      name,
      url: configured?.url ?? name,
      queried: false,
      head: null,
      branches: [...tracking.keys()].map((ref) => ({
        name: ref.slice(`refs/remotes/${name}/`.length),
        trackingRef: ref,
        state: null,
      })),
      pull,
      push: null,
    };
  }
  const { url } = await resolveRemote(repo, name);
  const transport = await openTransport(url, options);
  let info: InfoRefs;
  try {
    info = await remoteFor(repo, transport, 'fetch').infoRefs();
  } finally {
    await transport.close();
  }
  const head =
    info.head !== null && info.head.startsWith(HEADS) && info.refs[info.head] !== undefined
      ? info.head.slice(HEADS.length)
      : null;
  return {
    name,
    url,
    queried: true,
    head,
    branches: configured ? remoteBranches(name, info, tracking) : [],
    pull,
    push: await pushInfo(repo, refs, info),
  };
}

/** The remote's branches against the remote-tracking refs `tracking` (full name to ID). */
export function remoteBranches(
  remote: string,
  info: InfoRefs,
  tracking: ReadonlyMap<string, ObjectId>,
): RemoteBranch[] {
  const prefix = `refs/remotes/${remote}/`;
  const out: RemoteBranch[] = [];
  const onRemote = new Set<string>();
  for (const ref of Object.keys(info.refs)) {
    if (!ref.startsWith(HEADS)) continue;
    const branch = ref.slice(HEADS.length);
    const trackingRef = prefix + branch;
    onRemote.add(trackingRef);
    out.push({ name: branch, trackingRef, state: tracking.has(trackingRef) ? 'tracked' : 'new' });
  }
  for (const ref of tracking.keys()) {
    if (!onRemote.has(ref)) out.push({ name: ref, trackingRef: ref, state: 'stale' });
  }
  return out.sort((a, b) => compareNames(a.name, b.name));
}

/** `refs/remotes/<remote>/*` but the HEAD pointer, full name to ID. */
export async function trackingRefs(refs: Refs, remote: string): Promise<Map<string, ObjectId>> {
  const prefix = `refs/remotes/${remote}/`;
  const out = new Map<string, ObjectId>();
  for (const { name, id } of await refs.list(prefix)) {
    if (name !== `${prefix}HEAD`) out.set(name, id);
  }
  return out;
}

/** Local branches whose upstream (branch.<b>.remote / .merge) is on `remote`. */
async function pullInfo(repo: Repository, remote: string): Promise<PullInfo[]> {
  const table = await readConfigFile(repo.configPath);
  const branches = table['branch'];
  if (typeof branches !== 'object') return [];
  const out: PullInfo[] = [];
  for (const [branch, value] of Object.entries(branches as ConfigTable)) {
    if (typeof value !== 'object' || value['remote'] !== remote) continue;
    const merge = value['merge'];
    if (typeof merge !== 'string') continue;
    out.push({ branch, merges: merge.startsWith(HEADS) ? merge.slice(HEADS.length) : merge });
  }
  return out.sort((a, b) => compareNames(a.branch, b.branch));
}

/**
 * Each local branch that has a namesake on the remote, and what pushing it
 * would do: nothing, a fast-forward, or a refusal (the remote holds commits
 * this repository lacks or has not merged).
 */
async function pushInfo(repo: Repository, refs: Refs, info: InfoRefs): Promise<PushInfo[]> {
  const out: PushInfo[] = [];
  for (const { name: ref, id } of await refs.list(HEADS)) {
    const theirs = info.refs[ref];
    if (theirs === undefined) continue;
    const branch = ref.slice(HEADS.length);
    let status: PushStatus;
    if (theirs === id) status = 'up to date';
    else if ((await repo.objects.has(theirs)) && (await isAncestor(repo, theirs, id))) {
      status = 'fast-forwardable';
    } else status = 'local out of date';
    out.push({ branch, remoteBranch: branch, status });
  }
  return out;
}
