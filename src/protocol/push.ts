/**
 * `push`: sends commits to a remote and moves its refs.
 *
 * 1. Read the remote's refs; work out each update (refspecs, --tags,
 *    --delete) and refuse locally what the server would refuse anyway
 *    (a non-fast-forward without --force).
 * 2. Collect what the remote lacks (reachability.ts); ask which of the
 *    chunks it has (`chunks/check`) and upload the others, then the
 *    metadata, in cloud packs (pack-transfer.ts): straight to the store when
 *    the server signs requests, else through it. The same objects make the
 *    same packs, so a rerun after an interruption skips the packs already
 *    stored: this is how a push resumes.
 * 3. Commit the packs (their objects become visible), then send the ref
 *    updates, which the server applies by compare-and-swap.
 */
import { remoteFor } from './encrypted.ts';
import { MediaGitError } from '../errors.ts';
import type { ObjectId } from '../odb/object-id.ts';
import { standaloneRecord } from '../odb/record.ts';
import { isAncestor } from '../repo/merge-base.ts';
import { Refs, isValidRefName } from '../repo/refs.ts';
import { readUpstream, setUpstream } from '../repo/remote.ts';
import type { Repository } from '../repo/repository.ts';
import { resolveObject } from '../repo/revision.ts';
import { resolveRemote, type TransferStats } from './fetch.ts';
import { openTransport, type TransportOptions } from './open-transport.ts';
import { collectObjects, type ObjectReader } from './reachability.ts';
import type { InfoRefs, RefUpdate, RefUpdateResult } from './service.ts';
import { changedLockedPaths, lockAppliesTo } from './lock-store.ts';
import type { Transport } from './transport.ts';
import { sendInPacks } from './pack-transfer.ts';

export interface PushOptions extends TransportOptions {
  readonly remote?: string | undefined;
  readonly refspecs?: readonly string[];
  readonly force?: boolean;
  /** --force-with-lease: per ref the value it must still have (undefined: our remote-tracking ref). */
  readonly forceWithLease?: readonly { ref: string | undefined; expect: string | undefined }[];
  readonly tags?: boolean;
  readonly delete?: boolean;
  readonly setUpstream?: boolean;
  readonly onProgress?: ((done: number, total: number) => void) | undefined;
}

export interface PushedRef extends RefUpdateResult {
  /** The local ref or revision pushed (absent for a deletion). */
  readonly source: string | undefined;
  /** Refused before anything was sent. */
  readonly local?: boolean;
  /**
   * Refused because the remote holds commits this repository does not have
   * (Git's "fetch first"), rather than because the push would lose commits
   * this repository knows about ("non-fast-forward").
   */
  readonly fetchFirst?: boolean;
}

export interface PushResult {
  readonly url: string;
  readonly remoteName: string | undefined;
  readonly refs: PushedRef[];
  readonly stats: TransferStats;
  readonly upToDate: boolean;
}

interface Planned {
  readonly source: string | undefined;
  readonly update: RefUpdate;
}

export async function push(repo: Repository, options: PushOptions): Promise<PushResult> {
  const refs = new Refs(repo);
  const head = await refs.head();
  const currentBranch = head.branch?.slice('refs/heads/'.length);
  let remoteArg = options.remote;
  if (remoteArg === undefined) {
    const upstream = currentBranch ? await readUpstream(repo, currentBranch) : undefined;
    remoteArg = upstream?.remote ?? 'origin';
  }
  const { url, name } = await resolveRemote(repo, remoteArg);
  const opened = await openTransport(url, options);
  try {
    const transport = remoteFor(repo, opened, 'push');
    const info = await transport.infoRefs();
    const plans = await planUpdates(repo, refs, options, info.refs, name, currentBranch);
    const stats: TransferStats = { objects: 0, chunks: 0, chunksSkipped: 0, bytes: 0 };
    const results: PushedRef[] = [];
    const toSend: Planned[] = [];
    for (const plan of plans) {
      const { update } = plan;
      if (update.new === update.old) {
        results.push({ ...update, ok: true, source: plan.source });
        continue;
      }
      const refusal = await localRefusal(repo, update);
      if (refusal) results.push({ ...refusal, source: plan.source, local: true });
      else toSend.push(plan);
    }
    if (toSend.length > 0) await refuseAhead(repo, transport, info, toSend, results);
    if (toSend.length > 0) {
      const wants = toSend.map((p) => p.update.new).filter((id): id is ObjectId => id !== null);
      const reader = localReader(repo);
      const haves: ObjectId[] = [];
      for (const id of new Set(Object.values(info.refs)))
        if (await repo.objects.has(id)) haves.push(id);
      const collected = await collectObjects(reader, wants, { haves });
      const missing = await transport.missing(collected.chunks);
      stats.chunksSkipped = collected.chunks.length - missing.length;
      // Chunks first (in file order), then metadata: cloud packs of at most
      // 48 MiB, committed before any ref moves (pack-transfer.ts).
      const sent = await sendInPacks(
        transport,
        [...missing, ...collected.objects],
        (id, into) => standaloneRecord(repo.objects, id, into),
        {
          signal: options.signal,
          recordSize: (id) => repo.objects.recordSize(id),
          onProgress: options.onProgress,
        },
      );
      stats.chunks = missing.length;
      stats.objects = collected.objects.length;
      stats.bytes = sent.bytes;
      const answers = await transport.updateRefs(toSend.map((p) => p.update));
      answers.forEach((answer, i) => results.push({ ...answer, source: toSend[i]!.source }));
    }
    // Remote-tracking refs follow what the remote now holds.
    if (name !== undefined) {
      for (const result of results) {
        if (!result.ok || !result.ref.startsWith('refs/heads/')) continue;
        const tracking = `refs/remotes/${name}/${result.ref.slice('refs/heads/'.length)}`;
        await refs.update(tracking, result.new, { message: 'update by push' });
      }
    }
    if (options.setUpstream && name !== undefined) {
      for (const result of results) {
        const source = result.source;
        if (!result.ok || !source?.startsWith('refs/heads/') || result.new === null) continue;
        await setUpstream(repo, source.slice('refs/heads/'.length), {
          remote: name,
          merge: result.ref,
        });
      }
    }
    const upToDate = results.every((r) => r.ok && r.new === r.old);
    return { url: transport.url, remoteName: name, refs: results, stats, upToDate };
  } finally {
    await opened.close();
  }
}

/**
 * Refuses before anything is uploaded what the server would refuse after:
 * a key that may not write (the whole push), and branch updates that change
 * files others have locked (those refs; the others go on). The server still
 * checks both; this only spares the upload.
 */
async function refuseAhead(
  repo: Repository,
  transport: Transport,
  info: InfoRefs,
  toSend: Planned[],
  results: PushedRef[],
): Promise<void> {
  const access = await transport.access?.();
  if (access && access.scope !== 'write' && access.scope !== 'admin') {
    const who =
      access.user === null
        ? 'anonymous access is read-only (set MEDIAGIT_TOKEN or run `mediagit login <url>`)'
        : `this key (user ${access.user}) has ${access.scope} access; pushing needs write access`;
    throw new MediaGitError('AUTH_FORBIDDEN', `${transport.url}: ${who}; nothing was sent`, {
      kind: 'user',
      data: { url: transport.url, status: 403, exitCode: 128 },
    });
  }
  const branchUpdates = toSend.filter(
    (p) => p.update.ref.startsWith('refs/heads/') && p.update.new !== null,
  );
  if (branchUpdates.length === 0 || !transport.othersLocks) return;
  const locks = await transport.othersLocks();
  if (!locks || locks.length === 0) return;
  const read = async (id: ObjectId): Promise<Buffer> => (await repo.objects.read(id)).data;
  // A new branch is compared with the branch the remote's HEAD names, as the server does.
  const headId = info.head === null ? undefined : info.refs[info.head];
  for (const plan of branchUpdates) {
    const base = plan.update.old ?? headId ?? null;
    if (base !== null && !(await repo.objects.has(base))) continue; // the server will judge
    const applying = locks.filter((lock) => lockAppliesTo(lock, plan.update.ref));
    const changed = await changedLockedPaths(read, base, plan.update.new!, applying);
    if (changed.length === 0) continue;
    toSend.splice(toSend.indexOf(plan), 1);
    results.push({
      ...plan.update,
      ok: false,
      reason: 'locked',
      message: `it changes files locked by others: ${changed.map((l) => `${l.path} (${l.owner.name})`).join(', ')}`,
      source: plan.source,
      local: true,
    });
  }
}

function localReader(repo: Repository): ObjectReader {
  const store = repo.objects;
  return { has: (id) => store.has(id), read: (id) => store.read(id) };
}

async function planUpdates(
  repo: Repository,
  refs: Refs,
  options: PushOptions,
  remoteRefs: Record<string, ObjectId>,
  remoteName: string | undefined,
  currentBranch: string | undefined,
): Promise<Planned[]> {
  const specs = [...(options.refspecs ?? [])];
  const plans: Planned[] = [];
  if (specs.length === 0 && !options.tags) {
    if (currentBranch === undefined) {
      throw new MediaGitError(
        'PUSH_NO_BRANCH',
        'You are not currently on a branch: name what to push (`mediagit push <remote> <commit>:<branch>`)',
        { kind: 'usage' },
      );
    }
    const upstream = await readUpstream(repo, currentBranch);
    const target = upstream?.merge ?? `refs/heads/${currentBranch}`;
    specs.push(`refs/heads/${currentBranch}:${target}`);
  }
  for (const raw of specs) {
    let spec = raw;
    let force = options.force === true;
    if (spec.startsWith('+')) {
      force = true;
      spec = spec.slice(1);
    }
    const colon = spec.indexOf(':');
    let src = colon === -1 ? spec : spec.slice(0, colon);
    let dst = colon === -1 ? spec : spec.slice(colon + 1);
    if (options.delete) {
      src = '';
      dst = spec;
    }
    if (src === '') {
      const ref = await remoteRefName(dst, remoteRefs);
      plans.push({
        source: undefined,
        update: { ref, old: remoteRefs[ref] ?? null, new: null, force },
      });
      continue;
    }
    const local = await localRefName(repo, src);
    const id = await resolveObject(repo, src);
    const ref =
      colon === -1 && local !== undefined ? local : await remoteRefName(dst, remoteRefs, local);
    plans.push({
      source: local ?? src,
      update: { ref, old: remoteRefs[ref] ?? null, new: id, force },
    });
  }
  if (options.tags) {
    for (const { name, id } of await refs.list('refs/tags/')) {
      if (plans.some((p) => p.update.ref === name)) continue;
      if (remoteRefs[name] === id) continue;
      plans.push({ source: name, update: { ref: name, old: remoteRefs[name] ?? null, new: id } });
    }
  }
  // --force-with-lease: forced, but only if the remote still has what we expect.
  for (const lease of options.forceWithLease ?? []) {
    for (let i = 0; i < plans.length; i++) {
      const plan = plans[i]!;
      const short = plan.update.ref.replace(/^refs\/(heads|tags)\//, '');
      if (lease.ref !== undefined && lease.ref !== plan.update.ref && lease.ref !== short) continue;
      let expect: ObjectId | null;
      if (lease.expect !== undefined) {
        expect = lease.expect === '' ? null : await resolveObject(repo, lease.expect);
      } else {
        const tracking =
          remoteName !== undefined && plan.update.ref.startsWith('refs/heads/')
            ? await refs.read(`refs/remotes/${remoteName}/${short}`)
            : undefined;
        expect = tracking ?? null;
      }
      plans[i] = { source: plan.source, update: { ...plan.update, old: expect, force: true } };
    }
  }
  return plans;
}

async function localRefName(repo: Repository, name: string): Promise<string | undefined> {
  const refs = new Refs(repo);
  for (const candidate of [name, `refs/heads/${name}`, `refs/tags/${name}`]) {
    if (candidate.startsWith('refs/') && (await refs.read(candidate)) !== undefined)
      return candidate;
  }
  return undefined;
}

async function remoteRefName(
  dst: string,
  remoteRefs: Record<string, ObjectId>,
  local?: string,
): Promise<string> {
  let ref: string;
  if (dst.startsWith('refs/')) ref = dst;
  else if (remoteRefs[`refs/heads/${dst}`] !== undefined) ref = `refs/heads/${dst}`;
  else if (remoteRefs[`refs/tags/${dst}`] !== undefined) ref = `refs/tags/${dst}`;
  else if (local?.startsWith('refs/tags/')) ref = `refs/tags/${dst}`;
  else ref = `refs/heads/${dst}`;
  if (!isValidRefName(ref)) {
    throw new MediaGitError('BAD_REF_NAME', `invalid destination ref ${dst}`, { kind: 'usage' });
  }
  return ref;
}

/** What the server would refuse anyway, refused before anything is sent (as Git does). */
async function localRefusal(
  repo: Repository,
  update: RefUpdate,
): Promise<(RefUpdateResult & { fetchFirst?: boolean }) | undefined> {
  if (update.force || update.old === null || update.new === null) return undefined;
  const reject = (message: string): RefUpdateResult => ({
    ...update,
    ok: false,
    reason: 'non-fast-forward',
    message,
  });
  if (update.ref.startsWith('refs/tags/')) {
    return {
      ...update,
      ok: false,
      reason: 'already-exists',
      message: `${update.ref} already exists`,
    };
  }
  if (!(await repo.objects.has(update.old))) {
    return { ...reject('the remote contains work that you do not have locally'), fetchFirst: true };
  }
  if (!(await isAncestor(repo, update.old, update.new))) {
    return reject('the tip of your branch is behind its remote counterpart');
  }
  return undefined;
}
