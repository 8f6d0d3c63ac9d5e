/**
 * The local half of `fsck --repair` (docs/fsck.md): what can be mended from
 * this repository's own good copies, and the writes every repair makes.
 * Fetching from a remote is protocol/fsck-repair.ts.
 *
 * Rules: every object written is verified against its ID first and written
 * crash-safely (temp file, fsync, rename); a damaged loose file is replaced
 * only by a verified copy; a damaged pack is moved aside (renamed `.bad`,
 * never deleted) and only once every object it holds has a verified copy
 * elsewhere; a damaged index file is kept as `index.bad`.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { hasErrnoCode, MediaGitError } from '../errors.ts';
import { encodeMultiIndex, MultiIndex } from '../odb/cloud-pack.ts';
import type { ObjectId } from '../odb/object-id.ts';
import type { ObjectStore } from '../odb/object-store.ts';
import type { PackEntry } from '../odb/pack.ts';
import { fsyncDirectory, writeFileAtomic } from '../storage/durable-file.ts';
import type { FsckReport, StoredCopy } from './fsck.ts';
import type { PackInfo } from './fsck-packs.ts';
import { StagingIndex } from './index-file.ts';
import { Refs } from './refs.ts';
import type { Repository } from './repository.ts';
import { flattenCommit } from './tree-ops.ts';
import { entryWithoutStats } from './worktree-update.ts';

export type RepairKind =
  'fetched' | 'restored' | 'salvaged' | 'moved-aside' | 'rewrote-pack-index' | 'rebuilt-index';

export interface RepairAction {
  readonly kind: RepairKind;
  readonly id: ObjectId | null;
  /** The file written or moved, relative to the repository folder. */
  readonly file: string | null;
  readonly message: string;
}

export interface Unrepaired {
  readonly id: ObjectId | null;
  readonly file: string | null;
  readonly reason: string;
}

function rel(repo: Repository, file: string): string {
  return path.relative(repo.gitDir, file).split(path.sep).join('/');
}

/**
 * Verifies `record` against `id` (a delta against its bases in `store`) and
 * writes it as the loose object, replacing a damaged loose file if there is
 * one. Throws OBJECT_CORRUPT when it does not verify (nothing is written).
 */
export async function writeVerifiedLoose(
  store: ObjectStore,
  id: ObjectId,
  record: Buffer,
): Promise<void> {
  await store.decodeVerified(id, record);
  // Also registers this process as a writer (gc must not race the write).
  await store.has(id);
  await writeFileAtomic(store.pathOf(id), [record], {
    tmpDir: store.tmpDir,
    dirSync: store.dirSync,
  });
}

/** A copy's stored bytes; undefined when the file cannot give them all. */
export async function readCopy(copy: StoredCopy): Promise<Buffer | undefined> {
  try {
    if (!copy.pack) return await fs.readFile(copy.file);
    const handle = await fs.open(copy.file, 'r');
    try {
      const buffer = Buffer.allocUnsafe(copy.length);
      let done = 0;
      while (done < copy.length) {
        const { bytesRead } = await handle.read(
          buffer,
          done,
          copy.length - done,
          copy.offset + done,
        );
        if (bytesRead === 0) return undefined;
        done += bytesRead;
      }
      return buffer;
    } finally {
      await handle.close();
    }
  } catch (error) {
    if (hasErrnoCode(error, 'ENOENT')) return undefined;
    throw error;
  }
}

/** Whether the copy reads back and verifies. */
async function verifies(store: ObjectStore, id: ObjectId, copy: StoredCopy): Promise<boolean> {
  const record = await readCopy(copy);
  if (!record) return false;
  try {
    await store.decodeVerified(id, record);
    return true;
  } catch (error) {
    if (error instanceof MediaGitError) return false;
    throw error;
  }
}

/**
 * Mends from this repository's own copies: a damaged loose file whose object
 * has a good packed copy gets that copy; an object readers cannot find (its
 * only good record is in a pack they refuse) gets a loose copy of it.
 * Returns the objects mended.
 */
export async function mendFromLocalCopies(
  repo: Repository,
  report: FsckReport,
  actions: RepairAction[],
): Promise<Set<ObjectId>> {
  const store = repo.objects;
  const mended = new Set<ObjectId>();
  const wanted = new Set<ObjectId>([...report.damage.badLoose, ...report.damage.fetch.keys()]);
  // Passes until none mends more: a delta verifies once its base is out.
  for (let before = -1; mended.size !== before;) {
    before = mended.size;
    for (const id of wanted) if (!mended.has(id)) await mendOne(id);
  }
  await store.flush();
  return mended;

  async function mendOne(id: ObjectId): Promise<void> {
    const copies = report.damage.copies.get(id) ?? [];
    for (const copy of copies) {
      if (!copy.pack || copy.status === 'bad') continue;
      const record = await readCopy(copy);
      if (!record) continue;
      try {
        await writeVerifiedLoose(store, id, record);
      } catch (error) {
        if (error instanceof MediaGitError) continue;
        throw error;
      }
      mended.add(id);
      const replaced = copies.some((c) => !c.pack);
      actions.push({
        kind: replaced ? 'restored' : 'salvaged',
        id,
        file: rel(repo, store.pathOf(id)),
        message: replaced
          ? `replaced the damaged loose ${copy.type ?? 'object'} ${id} with its good copy from ${rel(repo, copy.file)}`
          : `copied ${copy.type ?? 'object'} ${id} out of ${rel(repo, copy.file)}, which readers cannot use, as a loose object`,
      });
      break;
    }
  }
}

/**
 * Moves damaged packs (and damaged multi-pack indexes) aside once every
 * object they hold has a verified copy elsewhere, copying out first, as
 * loose objects, the records of theirs that still verify. A pack holding an
 * object with no good copy anywhere stays where it is.
 */
export async function retireDamagedPacks(
  repo: Repository,
  report: FsckReport,
  actions: RepairAction[],
  unrepaired: Unrepaired[],
): Promise<void> {
  const store = repo.objects;
  const groups: { files: string[]; packs: PackInfo[]; brokenIndex: string | undefined }[] = [];
  const brokenIndexes = new Set(
    report.problems
      .filter((p) => p.kind === 'corrupt-pack-index' && p.file?.startsWith('objects/index/'))
      .map((p) => path.join(repo.gitDir, p.file!)),
  );
  for (const index of brokenIndexes) {
    const packs = report.damage.packs.map((d) => d.info).filter((p) => p.multiIndex === index);
    groups.push({ files: [index], packs, brokenIndex: index });
  }
  for (const damaged of report.damage.packs) {
    if (damaged.info.multiIndex && brokenIndexes.has(damaged.info.multiIndex)) continue;
    groups.push({ files: [damaged.info.packPath], packs: [damaged.info], brokenIndex: undefined });
  }

  for (const group of groups) {
    let pending: { pack: PackInfo; entry: PackEntry }[] = [];
    for (const pack of group.packs) {
      for (const entry of pack.entries) {
        if (!(await hasGoodCopyElsewhere(store, entry.id, report, group.packs))) {
          pending.push({ pack, entry });
        }
      }
    }
    // Passes until none succeeds: a delta verifies once its base is out.
    for (;;) {
      const failed: typeof pending = [];
      for (const { pack, entry } of pending) {
        const copy = report.damage.copies
          .get(entry.id)
          ?.find((c) => c.pack === pack && c.offset === entry.offset);
        const record = copy && (await readCopy(copy));
        let saved = false;
        if (record) {
          try {
            await writeVerifiedLoose(store, entry.id, record);
            saved = true;
          } catch (error) {
            if (!(error instanceof MediaGitError)) throw error;
          }
        }
        if (!saved) {
          failed.push({ pack, entry });
          continue;
        }
        actions.push({
          kind: 'salvaged',
          id: entry.id,
          file: rel(repo, store.pathOf(entry.id)),
          message: `copied ${copy?.type ?? 'object'} ${entry.id} out of damaged ${rel(repo, pack.packPath)} as a loose object`,
        });
      }
      if (failed.length === pending.length) break;
      pending = failed;
    }
    const blocking = pending.map(({ entry }) => entry.id);
    await store.flush();
    const what = group.files.map((f) => rel(repo, f)).join(', ');
    if (blocking.length > 0) {
      unrepaired.push({
        id: blocking[0]!,
        file: what,
        reason: `kept ${what}: ${blocking.length} object(s) it holds have no good copy anywhere (first: ${blocking[0]})`,
      });
      continue;
    }
    if (group.brokenIndex) {
      await moveAside(
        repo,
        group.brokenIndex,
        actions,
        'every object its packs hold has a verified copy elsewhere',
      );
    } else {
      for (const pack of group.packs) await retirePack(repo, pack, actions);
    }
  }
}

/** A verified copy of `id` outside `packs`: loose, or in a pack readers use. */
async function hasGoodCopyElsewhere(
  store: ObjectStore,
  id: ObjectId,
  report: FsckReport,
  packs: readonly PackInfo[],
): Promise<boolean> {
  const loose: StoredCopy = {
    file: store.pathOf(id),
    pack: undefined,
    offset: 0,
    length: -1,
    status: 'unchecked',
  };
  if (await verifies(store, id, loose)) return true;
  for (const copy of report.damage.copies.get(id) ?? []) {
    if (!copy.pack || packs.includes(copy.pack) || !copy.pack.readable) continue;
    if (report.damage.packs.some((d) => d.info === copy.pack)) continue;
    if (await verifies(store, id, copy)) return true;
  }
  return false;
}

async function retirePack(
  repo: Repository,
  pack: PackInfo,
  actions: RepairAction[],
): Promise<void> {
  const why = 'every object it holds has a verified copy elsewhere';
  if (!pack.multiIndex) {
    // Its index first: a pack without an index is ignored by readers.
    await moveAside(repo, pack.indexPath, actions, why);
    await moveAside(repo, pack.packPath, actions, why);
    return;
  }
  // A cloud pack: every multi-pack index naming it is rewritten without it.
  const indexDir = path.dirname(pack.multiIndex);
  for (const file of await fs.readdir(indexDir).catch(() => [] as string[])) {
    const match = /^([0-9a-f]{64})\.idx$/.exec(file);
    if (!match) continue;
    const where = path.join(indexDir, file);
    let index: MultiIndex;
    try {
      index = MultiIndex.parse(await fs.readFile(where), match[1]!, where);
    } catch {
      continue;
    }
    if (!index.packs.includes(pack.name)) continue;
    const byPack = new Map<string, PackEntry[]>();
    for (const entry of index.entries()) {
      if (entry.pack === pack.name) continue;
      const list = byPack.get(entry.pack) ?? [];
      list.push({ id: entry.id, offset: entry.offset, length: entry.length });
      byPack.set(entry.pack, list);
    }
    if (byPack.size > 0) {
      const { name, bytes } = encodeMultiIndex(
        [...byPack].map(([n, entries]) => ({ name: n, entries })),
      );
      const target = path.join(indexDir, `${name}.idx`);
      await writeFileAtomic(target, [bytes], { tmpDir: repo.objects.tmpDir, mode: 0o444 });
      await fsyncDirectory(indexDir);
      actions.push({
        kind: 'rewrote-pack-index',
        id: null,
        file: rel(repo, target),
        message: `wrote ${rel(repo, target)}: ${rel(repo, where)} without damaged pack ${pack.name}`,
      });
    }
    await moveAside(repo, where, actions, `it names damaged pack ${pack.name}`);
  }
  await moveAside(
    repo,
    pack.packPath,
    actions,
    'every object it holds has a verified copy elsewhere',
  );
}

/** Renames `file` to `file.bad` (or `.bad.N` when taken); never deletes. */
async function moveAside(
  repo: Repository,
  file: string,
  actions: RepairAction[],
  why: string,
): Promise<void> {
  let target = `${file}.bad`;
  for (let n = 1; await exists(target); n++) target = `${file}.bad.${n}`;
  try {
    await fs.rename(file, target);
  } catch (error) {
    if (hasErrnoCode(error, 'ENOENT')) return;
    throw error;
  }
  await fsyncDirectory(path.dirname(file));
  actions.push({
    kind: 'moved-aside',
    id: null,
    file: rel(repo, target),
    message: `moved ${rel(repo, file)} aside to ${path.basename(target)} (${why})`,
  });
}

async function exists(file: string): Promise<boolean> {
  try {
    await fs.access(file);
    return true;
  } catch {
    return false;
  }
}

/**
 * Rebuilds a damaged index from HEAD, as `git read-tree HEAD` (or removing
 * the index and `reset --mixed`) would: the working tree is not touched, so
 * every change in it stays and shows as unstaged; what only the damaged
 * index held (staged changes) cannot be read back, and the file is kept as
 * `index.bad`. Entries carry no stat data, so the next status re-hashes.
 */
export async function rebuildIndex(repo: Repository, actions: RepairAction[]): Promise<void> {
  const head = await new Refs(repo).head();
  const files = await flattenCommit(repo.objects, head.id);
  const index = new StagingIndex(repo.gitDir);
  for (const file of files.values())
    index.entries.set(file.path, await entryWithoutStats(repo.objects, file));
  const lock = await StagingIndex.lock(repo.gitDir);
  try {
    const current = path.join(repo.gitDir, 'index');
    let kept = `${current}.bad`;
    for (let n = 1; await exists(kept); n++) kept = `${current}.bad.${n}`;
    try {
      await fs.copyFile(current, kept);
    } catch (error) {
      if (!hasErrnoCode(error, 'ENOENT')) throw error;
    }
    await index.save(lock);
    actions.push({
      kind: 'rebuilt-index',
      id: null,
      file: 'index',
      message: `rebuilt the index from ${head.id ? `HEAD (${head.id})` : 'an unborn HEAD (empty)'}; the damaged one is kept as ${path.basename(kept)}; the working tree was not touched`,
    });
  } finally {
    await lock.release();
  }
}
