/**
 * `fsck --repair` (docs/fsck.md): mends what `fsck` found, from this
 * repository's own good copies first (repo/fsck-mend.ts) and then from a
 * remote: the branch's upstream remote, else `origin`, or any repository
 * named with `--from` (a path, `file://` or HTTP URL).
 *
 * Objects are asked for by ID: `objects/locate` and a ranged read of the
 * remote's pack for each (any type), else `GET chunks/<id>` (blobs and
 * chunks), else `objects/want` at depth 1 (a commit with its snapshot's
 * metadata, a tree with what is below it). Every record received is
 * verified against its ID before it is written, crash-safely, as a loose
 * object (readers look loose first, so a good copy shadows a damaged packed
 * one). Rounds repeat while they make progress: a commit fetched for a ref
 * makes its tree's chunks reachable, and the next check finds them missing.
 * Then damaged packs are moved aside once everything they hold has a good
 * copy elsewhere, and a damaged index is rebuilt from HEAD.
 */
import { MediaGitError } from '../errors.ts';
import type { ObjectId } from '../odb/object-id.ts';
import type { ObjectTypeName } from '../odb/object-store.ts';
import { decodeRecord } from '../odb/record.ts';
import { fsck, type FsckReport } from '../repo/fsck.ts';
import {
  mendFromLocalCopies,
  rebuildIndex,
  retireDamagedPacks,
  writeVerifiedLoose,
  type RepairAction,
  type Unrepaired,
} from '../repo/fsck-mend.ts';
import { Refs } from '../repo/refs.ts';
import { findRemote, readUpstream } from '../repo/remote.ts';
import { Repository } from '../repo/repository.ts';
import { resolveRemote } from './fetch.ts';
import { openTransport, type TransportOptions } from './open-transport.ts';
import { decodeTransferPack } from './transfer-pack.ts';
import type { Transport } from './transport.ts';

export type { RepairAction, Unrepaired } from '../repo/fsck-mend.ts';

export interface RepairOptions extends TransportOptions {
  /** Where good copies come from (a URL or path, from `resolveRepairSource`); none: local only. */
  readonly url?: string | undefined;
  readonly full?: boolean | undefined;
  readonly signal?: AbortSignal | undefined;
  readonly onProgress?: ((event: { bytes: number; total: number }) => void) | undefined;
}

export interface RepairResult {
  /** The check before any repair. */
  readonly before: FsckReport;
  readonly source: string | null;
  readonly actions: RepairAction[];
  /** What could not be mended, and why. */
  readonly unrepaired: Unrepaired[];
  /** The check after the repair, of a freshly opened repository. */
  readonly after: FsckReport;
}

/**
 * Most fetch rounds. A commit comes with its snapshot's metadata, so a
 * missing commit is usually two rounds (it, then its chunks); a missing
 * history one more per commit whose snapshot changed.
 */
const MAX_ROUNDS = 32;
const LOCATE_BATCH = 1000;

/**
 * The URL good copies come from: `from` (a remote's name, a path or URL),
 * else the current branch's upstream remote, else `origin`; undefined when
 * there is none.
 */
export async function resolveRepairSource(
  repo: Repository,
  from: string | undefined,
): Promise<string | undefined> {
  if (from !== undefined) return (await resolveRemote(repo, from)).url;
  const head = await new Refs(repo).head().catch(() => undefined);
  const branch = head?.branch?.replace(/^refs\/heads\//, '');
  const upstream = branch ? await readUpstream(repo, branch) : undefined;
  const remote =
    (upstream && (await findRemote(repo, upstream.remote))) ?? (await findRemote(repo, 'origin'));
  return remote?.url;
}

export async function repairRepository(
  repo: Repository,
  options: RepairOptions = {},
): Promise<RepairResult> {
  const full = options.full === true;
  const before = await fsck(repo, { full, signal: options.signal, onProgress: options.onProgress });
  const actions: RepairAction[] = [];
  const unrepaired: Unrepaired[] = [];
  let transport: Transport | undefined;
  const source = options.url ?? null;
  try {
    let report = before;
    const asked = new Set<ObjectId>();
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const mended = await mendFromLocalCopies(repo, report, actions);
      const wanted = new Map<ObjectId, ObjectTypeName | null>();
      for (const [id, type] of report.damage.fetch) {
        if (!mended.has(id) && !asked.has(id)) wanted.set(id, type);
      }
      if (wanted.size > 0 && source !== null) {
        transport ??= await openTransport(source, options);
        for (const id of wanted.keys()) asked.add(id);
        await fetchObjects(repo, transport, wanted, actions, options.signal);
      }
      if (mended.size === 0 && (wanted.size === 0 || source === null)) break;
      report = await fsck(repo, { full: false, signal: options.signal });
    }
    // Damaged packs and the index, judged as the requested check judges them.
    report = await fsck(await reopen(repo), { full, signal: options.signal });
    await retireDamagedPacks(repo, report, actions, unrepaired);
    if (report.damage.index) {
      try {
        await rebuildIndex(await reopen(repo), actions);
      } catch (error) {
        if (!(error instanceof MediaGitError)) throw error;
        unrepaired.push({
          id: null,
          file: 'index',
          reason: `cannot rebuild the index from HEAD (${error.message}); once HEAD's files are readable, run \`mediagit fsck --repair\` again, or remove the index and run \`mediagit reset\``,
        });
      }
    }
  } finally {
    await transport?.close();
  }
  const after = await fsck(await reopen(repo), {
    full,
    signal: options.signal,
    onProgress: options.onProgress,
  });
  for (const [id] of after.damage.fetch) {
    if (unrepaired.some((u) => u.id === id)) continue;
    unrepaired.push({
      id,
      file: null,
      reason:
        source === null
          ? `object ${id} has no good copy here and there is no remote to fetch it from (use --from <repo>)`
          : `object ${id} has no good copy here and ${source} did not give one`,
    });
  }
  return { before, source, actions, unrepaired, after };
}

/** The same repository opened afresh (its pack and object caches empty). */
async function reopen(repo: Repository): Promise<Repository> {
  return Repository.discover(repo.workTree ?? repo.gitDir, repo.context);
}

/**
 * Fetches `wanted` from the remote, each verified against its ID before it
 * is written as a loose object. Objects the remote lacks are left out.
 */
async function fetchObjects(
  repo: Repository,
  transport: Transport,
  wanted: ReadonlyMap<ObjectId, ObjectTypeName | null>,
  actions: RepairAction[],
  signal: AbortSignal | undefined,
): Promise<void> {
  const store = repo.objects;
  const done = new Set<ObjectId>();
  const storeFetched = async (id: ObjectId, record: Buffer, how: string): Promise<boolean> => {
    if (done.has(id)) return true;
    let type: string;
    try {
      type = (await decodeRecord(id, record)).type;
      await writeVerifiedLoose(store, id, Buffer.from(record));
    } catch (error) {
      if (error instanceof MediaGitError) return false; // a bad copy there too: not written
      throw error;
    }
    done.add(id);
    actions.push({
      kind: 'fetched',
      id,
      file: `objects/${id.slice(0, 2)}/${id.slice(2)}`,
      message: `fetched ${type} ${id} from ${transport.url} (${how}), verified`,
    });
    return true;
  };

  const want = async (id: ObjectId): Promise<void> => {
    let entries;
    try {
      entries = decodeTransferPack(await transport.want({ wants: [id], depth: 1 }));
    } catch (error) {
      if (error instanceof MediaGitError) return; // the remote lacks it
      throw error;
    }
    for (const entry of entries) {
      // The wanted objects, and whatever else of that snapshot is not here.
      if (wanted.has(entry.id) || (!done.has(entry.id) && !(await store.has(entry.id)))) {
        await storeFetched(entry.id, entry.record, 'objects/want');
      }
    }
  };

  // 1. Commits and trees with what they name (a commit: its snapshot's
  //    metadata, one generation), so one round brings a whole snapshot.
  for (const [id, type] of wanted) {
    signal?.throwIfAborted();
    if ((type === 'commit' || type === 'tree') && !done.has(id)) await want(id);
  }
  // 2. The rest where the remote keeps them: one ranged read of its pack each.
  const ids = [...wanted.keys()].filter((id) => !done.has(id));
  for (let i = 0; i < ids.length; i += LOCATE_BATCH) {
    signal?.throwIfAborted();
    let answer;
    try {
      answer = await transport.locate(ids.slice(i, i + LOCATE_BATCH));
    } catch (error) {
      if (error instanceof MediaGitError) break; // an older server: the other ways remain
      throw error;
    }
    for (const object of answer.objects) {
      if (!('pack' in object)) continue;
      const pack = answer.packs[object.pack];
      if (!pack) continue;
      try {
        const bytes = await transport.readPack(pack, object.offset, object.length);
        const record = Buffer.from(bytes);
        transport.release(bytes);
        await storeFetched(object.id, record, `pack ${pack.name}`);
      } catch (error) {
        if (!(error instanceof MediaGitError)) throw error;
      }
    }
  }
  // 3. Loose there: blobs and chunks one by one, anything else through a want.
  for (const [id, type] of wanted) {
    signal?.throwIfAborted();
    if (done.has(id)) continue;
    if (type === null || type === 'blob' || type === 'chunk') {
      try {
        const bytes = await transport.getChunk(id);
        const record = Buffer.from(bytes);
        transport.release(bytes);
        if (await storeFetched(id, record, 'chunks')) continue;
      } catch (error) {
        if (!(error instanceof MediaGitError)) throw error;
      }
    }
    if (type !== 'chunk' && type !== 'commit' && type !== 'tree') await want(id);
  }
  await store.flush();
}
