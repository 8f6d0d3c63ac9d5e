/**
 * `reflog expire`: drop old reflog entries, so history removed on purpose
 * (a deleted branch, a rewritten one) stops being reachable and `gc` can
 * reclaim it, with Git's rules and defaults:
 *
 * - an entry older than `expire` goes (default 90 days, `gc.reflogExpire`);
 * - an entry whose old or new value is not reachable from the ref's current
 *   value (for HEAD, which visits every branch: from any ref) goes once older
 *   than `expireUnreachable` (default 30 days, `gc.reflogExpireUnreachable`);
 * - `refs/stash` follows `expire` only: its entries are the stash stack and
 *   are never ancestors of one another.
 *
 * The ref's lock is held while its log is rewritten (appends happen under
 * it), and the new log replaces the old atomically.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { MediaGitError, hasErrnoCode } from '../errors.ts';
import { decodeCommit, decodeTag, parseSignature } from '../odb/commit.ts';
import type { ObjectId } from '../odb/object-id.ts';
import { LockFile, writeFileAtomic } from '../storage/durable-file.ts';
import { Refs, ZERO_ID } from './refs.ts';
import type { Repository } from './repository.ts';

export const DAY_MS = 24 * 60 * 60 * 1000;
export const DEFAULT_REFLOG_EXPIRE_MS = 90 * DAY_MS;
export const DEFAULT_REFLOG_EXPIRE_UNREACHABLE_MS = 30 * DAY_MS;

export interface ReflogExpireOptions {
  /** Entries older than this instant (ms since the epoch) go; -Infinity keeps all. */
  readonly expire: number;
  /** Entries not reachable from the ref's value and older than this go. */
  readonly expireUnreachable: number;
  /** Full ref names (or HEAD); all reflogs when omitted. */
  readonly refs?: readonly string[] | undefined;
  readonly dryRun?: boolean | undefined;
  readonly signal?: AbortSignal | undefined;
}

export interface ReflogExpireResult {
  /** Per reflog with entries removed: its ref and how many went / stayed. */
  readonly logs: { ref: string; removed: number; kept: number }[];
  readonly removed: number;
}

export async function reflogExpire(
  repo: Repository,
  options: ReflogExpireOptions,
): Promise<ReflogExpireResult> {
  const logsDir = path.join(repo.gitDir, 'logs');
  const names = options.refs ?? (await logNames(logsDir));
  const logs: ReflogExpireResult['logs'] = [];
  let removed = 0;
  for (const ref of names) {
    options.signal?.throwIfAborted();
    const outcome = await expireOne(repo, ref, options);
    if (outcome && outcome.removed > 0) {
      logs.push({ ref, ...outcome });
      removed += outcome.removed;
    }
  }
  return { logs, removed };
}

async function expireOne(
  repo: Repository,
  ref: string,
  options: ReflogExpireOptions,
): Promise<{ removed: number; kept: number } | undefined> {
  const logFile = path.join(repo.gitDir, 'logs', ref);
  const refFile = path.join(repo.gitDir, ref);
  let lock: LockFile | undefined;
  if (!options.dryRun) {
    await fs.mkdir(path.dirname(refFile), { recursive: true });
    try {
      lock = await LockFile.acquire(refFile);
    } catch (error) {
      if (!hasErrnoCode(error, 'EEXIST')) throw error;
      throw new MediaGitError(
        'REF_LOCKED',
        `cannot lock ref '${ref}': ${refFile}.lock exists; another mediagit process may be running`,
        { kind: 'conflict', data: { ref } },
      );
    }
  }
  try {
    let text: string;
    try {
      text = await fs.readFile(logFile, 'utf8');
    } catch (error) {
      if (hasErrnoCode(error, 'ENOENT')) return undefined;
      throw error;
    }
    const tip = await currentValue(repo, ref);
    let reachable: Set<ObjectId> | undefined;
    const kept: string[] = [];
    let removed = 0;
    for (const line of text.split('\n')) {
      if (line === '') continue;
      const match = /^([0-9a-f]{64}) ([0-9a-f]{64}) ([^\t]*)\t/.exec(line);
      const time = match ? (parseSignature(match[3]!)?.time ?? 0) * 1000 : 0;
      let goes = time < options.expire;
      if (!goes && ref !== 'refs/stash' && time < options.expireUnreachable && match) {
        reachable ??= await ancestry(repo, ref === 'HEAD' ? await allTips(repo) : tips(tip));
        const [oldId, newId] = [match[1]!, match[2]!];
        goes = (oldId !== ZERO_ID && !reachable.has(oldId)) || !reachable.has(newId);
      }
      if (goes) removed++;
      else kept.push(`${line}\n`);
    }
    if (removed > 0 && !options.dryRun) {
      await writeFileAtomic(logFile, [Buffer.from(kept.join(''))], {
        tmpDir: repo.objects.tmpDir,
      });
    }
    return { removed, kept: kept.length };
  } finally {
    await lock?.release();
  }
}

/** The ID a ref (or HEAD) holds now, if any. */
async function currentValue(repo: Repository, ref: string): Promise<ObjectId | undefined> {
  const refs = new Refs(repo);
  if (ref === 'HEAD') return (await refs.head()).id;
  return refs.read(ref).catch(() => undefined);
}

function tips(tip: ObjectId | undefined): ObjectId[] {
  return tip === undefined ? [] : [tip];
}

/** HEAD's value and every ref's. */
async function allTips(repo: Repository): Promise<ObjectId[]> {
  const refs = new Refs(repo);
  const out = (await refs.list('refs/')).map((ref) => ref.id);
  const head = (await refs.head()).id;
  if (head) out.push(head);
  return out;
}

/** Every commit reachable from `from` (a missing commit ends its line of history). */
async function ancestry(repo: Repository, from: readonly ObjectId[]): Promise<Set<ObjectId>> {
  const seen = new Set<ObjectId>();
  const stack = [...from];
  while (stack.length > 0) {
    const id = stack.pop()!;
    if (seen.has(id)) continue;
    seen.add(id);
    let object;
    try {
      object = await repo.objects.read(id);
    } catch (error) {
      if (error instanceof MediaGitError) continue;
      throw error;
    }
    if (object.type === 'tag') stack.push(decodeTag(id, object.data).object);
    if (object.type !== 'commit') continue;
    for (const parent of decodeCommit(id, object.data).parents) stack.push(parent);
  }
  return seen;
}

/** The refs (and HEAD) that have a reflog, as names relative to logs/. */
async function logNames(logsDir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    let entries;
    try {
      entries = await fs.readdir(path.join(logsDir, rel), { withFileTypes: true });
    } catch {
      return;
    }
    for (const entry of entries) {
      const name = rel === '' ? entry.name : `${rel}/${entry.name}`;
      if (entry.isDirectory()) await walk(name);
      else if (entry.isFile()) out.push(name);
    }
  };
  await walk('');
  return out.sort();
}
