/**
 * `clone`: a new repository with `origin` set to the source, its branches
 * fetched as remote-tracking branches, and the remote's HEAD branch (or
 * `--branch`) checked out and set to track it. `--bare` copies branches as
 * branches and checks nothing out; `--depth N` fetches N commits per tip.
 * As in Git, a clone that fails removes the folder it created; one that is
 * interrupted (its AbortSignal aborted: Ctrl-C in the CLI) keeps what has
 * arrived, and running the same clone again resumes it: the folder's
 * CLONE_IN_PROGRESS file names the source, the chunks already stored are not
 * asked for again, and the checkout replaces whatever a cut-off checkout left.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { MediaGitError, hasErrnoCode } from '../errors.ts';
import type { ObjectId } from '../odb/object-id.ts';
import { Refs } from '../repo/refs.ts';
import { addRemote, findRemote, upstreamSettings } from '../repo/remote.ts';
import { Repository, type RepoContext } from '../repo/repository.ts';
import { sparseSettings, writeSparsePatterns, writeSparseSpec } from '../repo/sparse.ts';
import { UNKNOWN_SHA256 } from '../repo/index-file.ts';
import { checkoutCommit } from '../repo/switch.ts';
import { decodeManifest } from '../odb/manifest.ts';
import type { DecodedRecord } from '../odb/record.ts';
import { CheckoutWriter } from './checkout-writer.ts';
import { fetchWith, type FetchResult, type TransferStats } from './fetch.ts';
import { openTransport, type TransportOptions } from './open-transport.ts';
import { isHttpUrl, localRemotePath, overriding, type Transport } from './transport.ts';
import { remoteFor, remoteKeyFile } from './encrypted.ts';
import type { InfoRefs, WantRequest } from './service.ts';
import { needsKey } from '../repo/keys.ts';
import { unlockSlot } from '../security/encryption.ts';
import {
  formatFilter,
  notePromisor,
  promisorSettings,
  type PartialCloneFilter,
} from '../repo/partial-clone.ts';
import { updateConfigValues, type ConfigValue } from '../config/config.ts';
import { RemoteContentSource } from './lazy-content.ts';
import { writeFileAtomic } from '../storage/durable-file.ts';

export interface CloneOptions extends TransportOptions {
  readonly branch?: string | undefined;
  readonly depth?: number | undefined;
  readonly bare?: boolean;
  /** Check out only the files at the top (`clone --sparse`; sparse-checkout widens it). */
  readonly sparse?: boolean | undefined;
  /**
   * Partial clone (docs/partial-clone.md): the chunks of files this filter
   * leaves out stay on the remote, recorded as the promisor, until needed.
   */
  readonly filter?: PartialCloneFilter | undefined;
  /** Set HEAD but check nothing out (`--no-checkout`). */
  readonly noCheckout?: boolean | undefined;
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

/** The file that marks a clone in progress, in the new repository's folder. */
export const CLONE_MARKER = 'CLONE_IN_PROGRESS';

interface CloneMarker {
  readonly url: string;
  readonly bare: boolean;
}

/** Whether `target` holds an interrupted clone that `clone(url, target)` resumes. */
export async function resumesClone(
  url: string,
  dir: string,
  options: Pick<CloneOptions, 'bare' | 'cwd'> = {},
): Promise<boolean> {
  const cwd = options.cwd ?? process.cwd();
  const target = path.resolve(cwd, dir);
  const marker = await readMarker(target);
  if (marker === undefined) return false;
  const storedUrl = isHttpUrl(url) ? url : localRemotePath(url, cwd);
  if (marker.url !== storedUrl || marker.bare !== (options.bare === true)) {
    throw new MediaGitError(
      'CLONE_TARGET_EXISTS',
      `destination path '${target}' holds an interrupted clone of ${marker.url}${marker.bare ? ' (bare)' : ''}: resume it with that command, or remove the folder`,
      { kind: 'usage', data: { target, url: marker.url } },
    );
  }
  return true;
}

async function readMarker(target: string): Promise<CloneMarker | undefined> {
  for (const gitDir of [path.join(target, '.mediagit'), target]) {
    let text: string;
    try {
      text = await fs.readFile(path.join(gitDir, CLONE_MARKER), 'utf8');
    } catch {
      continue;
    }
    try {
      const marker = JSON.parse(text) as CloneMarker;
      if (typeof marker.url === 'string' && typeof marker.bare === 'boolean') return marker;
    } catch {
      // Unreadable: not a clone this code can resume.
    }
  }
  return undefined;
}

export async function clone(url: string, dir: string, options: CloneOptions): Promise<CloneResult> {
  const cwd = options.cwd ?? process.cwd();
  const target = path.resolve(cwd, dir);
  if (options.filter !== undefined && options.bare === true) {
    throw new MediaGitError('CLONE_FILTER_BARE', '--filter cannot be used with --bare', {
      kind: 'usage',
    });
  }
  const resume = await resumesClone(url, dir, options);
  const created = resume ? false : await prepareTarget(target);
  try {
    return await cloneInto(url, target, options, cwd, resume);
  } catch (error) {
    // Interrupted: what arrived stays, for the same command to resume.
    if (options.signal?.aborted && (await readMarker(target)) !== undefined) throw error;
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
  resume: boolean,
): Promise<CloneResult> {
  const bare = options.bare === true;
  const storedUrl = isHttpUrl(url) ? url : localRemotePath(url, cwd);
  let transport = await openTransport(storedUrl, { ...options, cwd });
  let repo: Repository;
  /** The remote's refs as a new clone first saw them (a resumed one asks during its fetch). */
  let first: InfoRefs | undefined;
  try {
    if (resume) {
      repo = await Repository.discover(target, options.context);
      transport = remoteFor(repo, transport, 'fetch');
    } else {
      first = await transport.infoRefs();
      const early = wantingEarly(transport, first, options);
      repo = await newRepository(transport, first, target, options);
      transport = remoteFor(repo, early, 'fetch', first);
    }
  } catch (error) {
    await transport.close();
    throw error;
  }
  const marker: CloneMarker = { url: storedUrl, bare };
  if (!resume) {
    await writeFileAtomic(
      path.join(repo.gitDir, CLONE_MARKER),
      [Buffer.from(JSON.stringify(marker))],
      {
        tmpDir: repo.objects.tmpDir,
      },
    );
  }
  let result: FetchResult;
  /** The branch ref whose upstream and sparse settings went in with the remote's. */
  let settledRef: string | undefined;
  let writer: CheckoutWriter | undefined;
  let prestaged = new Map<ObjectId, string>();
  /** The commits, trees and manifests received, for the checkout's index entries. */
  let received: ReadonlyMap<ObjectId, DecodedRecord> | undefined;
  try {
    if (options.bare) {
      result = await fetchWith(repo, transport, undefined, { ...options, emptyStore: !resume });
    } else {
      // The remote and, in a partial clone, its promisor settings: one config
      // rewrite. A new clone knows its branch already: its upstream and sparse
      // settings go in the same rewrite, and the patterns file is written
      // while the config is.
      const promisor =
        options.filter === undefined ? [] : promisorSettings('origin', options.filter);
      if (!resume || (await findRemote(repo, 'origin')) === undefined) {
        settledRef = first === undefined ? undefined : branchToCheckOut(first, options.branch);
        const early = settledRef === undefined ? [] : branchSettings(settledRef, options.sparse);
        await bothSettled(
          addRemote(repo, 'origin', storedUrl, [...promisor, ...early]),
          settledRef !== undefined && options.sparse
            ? writeSparsePatterns(repo, SPARSE_CLONE)
            : Promise.resolve(),
        );
      } else if (options.filter !== undefined) {
        await updateConfigValues(repo.configPath, promisor);
      }
      if (options.filter !== undefined) notePromisor(repo, 'origin', options.filter);
      const eager = options.filter === undefined && options.noCheckout !== true;
      result = await fetchWith(repo, transport, 'origin', {
        ...options,
        singlePack: true,
        keepOnAbort: true,
        emptyStore: !resume,
        // The files to check out are written while their chunks arrive
        // (not in a partial clone: the checkout fetches what it lacks).
        sinkFor: async (info, metadata) => {
          received = metadata;
          if (!eager) return undefined;
          const ref = options.branch !== undefined ? `refs/heads/${options.branch}` : info.head;
          const tip = ref === null ? undefined : info.refs[ref];
          if (tip === undefined) return undefined;
          writer = await CheckoutWriter.forCommit(repo.objects.tmpDir, tip, metadata);
          return writer;
        },
      });
      if (writer) prestaged = await writer.finish();
    }
  } catch (error) {
    await writer?.abort();
    throw error;
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
    await fs.rm(path.join(repo.gitDir, CLONE_MARKER), { force: true });
    return { dir: target, gitDir: repo.gitDir, branch: undefined, head: undefined, fetch: result };
  }
  const id = result.refs[branchRef]!;
  const branch = branchRef.slice('refs/heads/'.length);
  const ref = branchRef;
  if (!options.bare && settledRef !== ref) {
    // Before the checkout, which reads the sparse settings.
    if (options.sparse) await writeSparseSpec(repo, SPARSE_CLONE, branchSettings(ref, false));
    else await updateConfigValues(repo.configPath, branchSettings(ref, false));
  }
  const pointRefs = async (): Promise<void> => {
    if (!options.bare) {
      // A resumed clone may have got this far before.
      await refs.update(ref, id, {
        ...(resume ? {} : { expected: null }),
        message: `clone: from ${url}`,
      });
    }
    await refs.setHeadBranch(ref, `clone: from ${url}`);
  };
  if (options.bare || options.noCheckout === true) {
    await pointRefs();
  } else {
    // The checkout names neither ref, so both go on at once: until the
    // marker goes the clone is unfinished, whichever ends first.
    const checkout = checkOut(
      target,
      id,
      { ...options, cwd, storedUrl, resume },
      received,
      prestaged,
    );
    const [lazy] = await bothSettled(checkout, pointRefs());
    // What the checkout fetched counts as received too.
    result.stats.chunks += lazy?.chunks ?? 0;
    result.stats.bytes += lazy?.bytes ?? 0;
  }
  await fs.rm(path.join(repo.gitDir, CLONE_MARKER), { force: true });
  return { dir: target, gitDir: repo.gitDir, branch, head: id, fetch: result };
}

/**
 * `transport` with a new clone's one `want` already asked, while the
 * repository is being created: its store is empty, so the request follows
 * from the remote's refs alone (the same one fetchWith makes, which gets
 * this answer). Not for an encrypted remote: its key is checked first.
 */
function wantingEarly(transport: Transport, info: InfoRefs, options: CloneOptions): Transport {
  const wants = [...new Set(Object.values(info.refs))];
  if (info.encrypted === true || wants.length === 0) return transport;
  const request: WantRequest = {
    wants,
    haves: [],
    ...(options.filter !== undefined ? { filter: formatFilter(options.filter) } : {}),
    ...(options.depth !== undefined ? { depth: options.depth } : {}),
  };
  let answer: Promise<Buffer> | undefined = transport.want(request);
  // Awaited by the fetch, or never (the clone failed first).
  answer.catch(() => undefined);
  return overriding(transport, {
    want: (asked: WantRequest): Promise<Buffer> => {
      const same = answer !== undefined && sameWant(asked, request);
      const early = answer;
      answer = undefined;
      return same ? early! : transport.want(asked);
    },
  });
}

function sameWant(a: WantRequest, b: WantRequest): boolean {
  const list = (ids: readonly string[] | undefined): string => (ids ?? []).join(',');
  return (
    list(a.wants) === list(b.wants) &&
    list(a.haves) === list(b.haves) &&
    list(a.shallow) === list(b.shallow) &&
    a.filter === b.filter &&
    a.depth === b.depth
  );
}

/** The cone a sparse clone starts with: the files at the top. */
const SPARSE_CLONE = { cone: true, patterns: [] } as const;

/** The ref a clone checks out, when the remote has it: `--branch`, else the remote's HEAD. */
function branchToCheckOut(info: InfoRefs, wanted: string | undefined): string | undefined {
  const ref = wanted !== undefined ? `refs/heads/${wanted}` : info.head;
  return ref !== null && info.refs[ref] !== undefined ? ref : undefined;
}

/** The config keys a clone sets for its branch: its upstream, and sparse checkout when `sparse`. */
function branchSettings(ref: string, sparse: boolean | undefined): [string, ConfigValue][] {
  return [
    ...upstreamSettings(ref.slice('refs/heads/'.length), { remote: 'origin', merge: ref }),
    ...(sparse ? sparseSettings(SPARSE_CLONE) : []),
  ];
}

/**
 * Awaits both; the first failure is thrown only once the other has settled
 * too (a clone that fails removes its folder: nothing may still be writing).
 */
async function bothSettled<A, B>(a: Promise<A>, b: Promise<B>): Promise<[A, B]> {
  const [x, y] = await Promise.allSettled([a, b]);
  if (x.status === 'rejected') throw x.reason;
  if (y.status === 'rejected') throw y.reason;
  return [x.value, y.value];
}

/**
 * Checks out commit `id` of the new clone in `target` from what it received
 * (decoded in `received`, and files already written in `prestaged`); in a
 * partial clone what else it needs is fetched. Returns what that fetched.
 */
async function checkOut(
  target: string,
  id: ObjectId,
  options: CloneOptions & { cwd: string; storedUrl: string; resume: boolean },
  received: ReadonlyMap<ObjectId, DecodedRecord> | undefined,
  prestaged: ReadonlyMap<ObjectId, string>,
): Promise<TransferStats | undefined> {
  try {
    const opened = await Repository.discover(target, options.context);
    const lazy =
      options.filter === undefined
        ? undefined
        : new RemoteContentSource(
            opened.objects,
            { name: 'origin', url: options.storedUrl },
            options,
          );
    opened.objects.contentSource = lazy;
    // The commits, trees and manifests just received (and stored durably),
    // decoded: the checkout reads them from memory, not back from the pack.
    if (received !== undefined) opened.objects.remember(received);
    // Files a cut-off checkout wrote are in the way of a resumed one: replaced.
    await checkoutCommit(opened, undefined, id, {
      signal: options.signal,
      prestaged,
      knownSha256: (id) => {
        const record = received?.get(id);
        if (record?.type === 'manifest') return decodeManifest(id, record.data).sha256;
        // A new filtered clone holds only what it received: the rest stayed on the remote.
        const absent = record === undefined && options.filter !== undefined && !options.resume;
        return absent ? UNKNOWN_SHA256 : undefined;
      },
      force: options.resume,
      // A sparse clone's index keeps each folder outside the cone as one
      // entry: with blob:none, what it holds for their files is what their
      // trees say (no file of theirs was received).
      sparseIndex:
        options.sparse === true && !options.resume && options.filter?.kind === 'blob:none',
    });
    return lazy?.stats;
  } finally {
    for (const file of prestaged.values()) await fs.rm(file, { force: true });
  }
}

/**
 * The repository a clone fills: encrypted under the remote's key file when
 * the remote is encrypted, unlocked first with the secret the context
 * gives (a wrong one is refused before anything is written).
 */
async function newRepository(
  transport: Transport,
  info: InfoRefs,
  target: string,
  options: CloneOptions,
): Promise<Repository> {
  const bare = options.bare === true;
  const keyFile = info.encrypted === true ? await remoteKeyFile(transport) : undefined;
  if (keyFile === undefined) return (await Repository.init(target, { bare }, options.context)).repo;
  if (options.filter !== undefined) {
    throw new MediaGitError(
      'ENCRYPTED_REPOSITORY',
      `${transport.url} is encrypted: a partial clone needs file sizes, which are sealed; clone it whole`,
      { kind: 'user', data: { exitCode: 128 } },
    );
  }
  const secrets = options.context?.secrets;
  if (secrets === undefined) throw needsKey();
  const secret = await secrets('unlock', keyFile);
  await unlockSlot(keyFile, secret);
  return (await Repository.init(target, { bare, encrypt: { secret, keyFile } }, options.context))
    .repo;
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
