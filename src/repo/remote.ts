/**
 * `remote`: named remotes in the repository config, as Git keeps them:
 *
 *   [remote.origin]
 *   url = "http://host:7420/project"   (or a path / file:// URL)
 *
 * Remote-tracking branches live under refs/remotes/<name>/; a branch's
 * upstream is `branch.<name>.remote` + `branch.<name>.merge`.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { MediaGitError } from '../errors.ts';
import {
  readConfigFile,
  setConfigValue,
  updateConfigValues,
  writeConfigFile,
  type ConfigTable,
  type ConfigValue,
} from '../config/config.ts';
import { isValidRefName, Refs } from './refs.ts';
import type { Repository } from './repository.ts';

export interface RemoteInfo {
  readonly name: string;
  readonly url: string;
}

export function assertRemoteName(name: string): void {
  if (!isValidRefName(`refs/remotes/${name}`) || name.includes('/') || name.startsWith('-')) {
    throw new MediaGitError('BAD_REMOTE_NAME', `'${name}' is not a valid remote name`, {
      kind: 'usage',
      data: { name },
    });
  }
}

function remotesOf(table: ConfigTable): Record<string, ConfigTable> {
  const remotes = table['remote'];
  if (typeof remotes !== 'object') return {};
  const out: Record<string, ConfigTable> = {};
  for (const [name, value] of Object.entries(remotes)) {
    if (typeof value === 'object') out[name] = value;
  }
  return out;
}

export async function listRemotes(repo: Repository): Promise<RemoteInfo[]> {
  const table = await readConfigFile(repo.configPath);
  return Object.entries(remotesOf(table))
    .filter(([, value]) => typeof value['url'] === 'string')
    .map(([name, value]) => ({ name, url: value['url'] as string }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

export async function findRemote(repo: Repository, name: string): Promise<RemoteInfo | undefined> {
  return (await listRemotes(repo)).find((remote) => remote.name === name);
}

function noSuchRemote(name: string): MediaGitError {
  return new MediaGitError('NO_SUCH_REMOTE', `no such remote '${name}'`, {
    kind: 'usage',
    data: { name },
  });
}

/** Adds remote `name`; `alsoSet`: other config keys written in the same rewrite. */
export async function addRemote(
  repo: Repository,
  name: string,
  url: string,
  alsoSet: readonly (readonly [string, ConfigValue])[] = [],
): Promise<void> {
  assertRemoteName(name);
  const table = await readConfigFile(repo.configPath);
  if (remotesOf(table)[name]) {
    throw new MediaGitError('REMOTE_EXISTS', `remote ${name} already exists`, {
      kind: 'usage',
      data: { name },
    });
  }
  setConfigValue(table, `remote.${name}.url`, url);
  for (const [key, value] of alsoSet) setConfigValue(table, key, value);
  await writeConfigFile(repo.configPath, table);
}

export async function setRemoteUrl(repo: Repository, name: string, url: string): Promise<void> {
  const table = await readConfigFile(repo.configPath);
  if (!remotesOf(table)[name]) throw noSuchRemote(name);
  setConfigValue(table, `remote.${name}.url`, url);
  await writeConfigFile(repo.configPath, table);
}

/** Removes the remote, its remote-tracking branches and the upstreams that named it. */
export async function removeRemote(repo: Repository, name: string): Promise<void> {
  const table = await readConfigFile(repo.configPath);
  if (!remotesOf(table)[name]) throw noSuchRemote(name);
  delete (table['remote'] as ConfigTable)[name];
  forEachUpstream(table, name, (branch) => {
    delete branch['remote'];
    delete branch['merge'];
  });
  await writeConfigFile(repo.configPath, table);
  const refs = new Refs(repo);
  for (const { name: ref } of await refs.list(`refs/remotes/${name}/`)) {
    await refs.update(ref, null, { message: `remote: remove ${name}` });
  }
  await fs.rm(path.join(repo.gitDir, 'refs', 'remotes', name), { recursive: true, force: true });
}

export async function renameRemote(repo: Repository, from: string, to: string): Promise<void> {
  assertRemoteName(to);
  const table = await readConfigFile(repo.configPath);
  const remotes = remotesOf(table);
  if (!remotes[from]) throw noSuchRemote(from);
  if (remotes[to]) {
    throw new MediaGitError('REMOTE_EXISTS', `remote ${to} already exists`, { kind: 'usage' });
  }
  const section = table['remote'] as ConfigTable;
  section[to] = section[from]!;
  delete section[from];
  forEachUpstream(table, from, (branch) => {
    branch['remote'] = to;
  });
  await writeConfigFile(repo.configPath, table);
  const refs = new Refs(repo);
  for (const { name: ref, id } of await refs.list(`refs/remotes/${from}/`)) {
    const renamed = `refs/remotes/${to}/${ref.slice(`refs/remotes/${from}/`.length)}`;
    await refs.update(renamed, id, { message: `remote: renamed ${ref} to ${renamed}` });
    await refs.update(ref, null, { message: `remote: renamed ${ref} to ${renamed}` });
  }
}

function forEachUpstream(
  table: ConfigTable,
  remote: string,
  change: (branch: ConfigTable) => void,
): void {
  const branches = table['branch'];
  if (typeof branches !== 'object') return;
  for (const value of Object.values(branches)) {
    if (typeof value === 'object' && value['remote'] === remote) change(value);
  }
}

export interface Upstream {
  readonly remote: string;
  /** The branch on the remote, as a full ref (refs/heads/x). */
  readonly merge: string;
}

export async function readUpstream(
  repo: Repository,
  branch: string,
): Promise<Upstream | undefined> {
  const table = await readConfigFile(repo.configPath);
  const entry = (table['branch'] as ConfigTable | undefined)?.[branch];
  if (typeof entry !== 'object') return undefined;
  const remote = entry['remote'];
  const merge = entry['merge'];
  if (typeof remote !== 'string' || typeof merge !== 'string') return undefined;
  return { remote, merge };
}

export async function setUpstream(
  repo: Repository,
  branch: string,
  upstream: Upstream,
): Promise<void> {
  await updateConfigValues(repo.configPath, upstreamSettings(branch, upstream));
}

/** The config keys that record `upstream` as `branch`'s. */
export function upstreamSettings(
  branch: string,
  upstream: Upstream,
): [key: string, value: ConfigValue][] {
  return [
    [`branch.${branch}.remote`, upstream.remote],
    [`branch.${branch}.merge`, upstream.merge],
  ];
}

export async function unsetUpstream(repo: Repository, branch: string): Promise<boolean> {
  const table = await readConfigFile(repo.configPath);
  const had = setConfigValue(table, `branch.${branch}.merge`, undefined);
  setConfigValue(table, `branch.${branch}.remote`, undefined);
  if (had) await writeConfigFile(repo.configPath, table);
  return had;
}

/**
 * `<remote>/<branch>` as an upstream: a configured remote whose
 * remote-tracking branch exists (as `git branch -u` requires).
 */
export async function parseUpstream(repo: Repository, spec: string): Promise<Upstream> {
  for (const remote of await listRemotes(repo)) {
    if (!spec.startsWith(`${remote.name}/`)) continue;
    const branch = spec.slice(remote.name.length + 1);
    if ((await new Refs(repo).read(`refs/remotes/${remote.name}/${branch}`)) !== undefined) {
      return { remote: remote.name, merge: `refs/heads/${branch}` };
    }
  }
  throw new MediaGitError(
    'NO_UPSTREAM_BRANCH',
    `the requested upstream branch '${spec}' does not exist (fetch it first)`,
    { kind: 'usage', data: { spec } },
  );
}

/**
 * The remote-tracking branch `switch <name>` may start a new branch from, as
 * Git's --guess does: `refs/remotes/<remote>/<name>` in exactly one remote.
 */
export async function guessRemoteBranch(
  repo: Repository,
  name: string,
): Promise<{ remote: string; ref: string } | undefined> {
  const found: { remote: string; ref: string }[] = [];
  for (const remote of await listRemotes(repo)) {
    const ref = `refs/remotes/${remote.name}/${name}`;
    if ((await new Refs(repo).read(ref).catch(() => undefined)) !== undefined) {
      found.push({ remote: remote.name, ref });
    }
  }
  return found.length === 1 ? found[0] : undefined;
}
