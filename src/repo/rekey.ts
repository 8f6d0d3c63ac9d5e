/**
 * `rekey --full` (docs/encryption.md, "Rekeying"): an encrypted
 * repository's whole history written again under a new master key and a
 * new repository ID. A new master key means new keyed object IDs and a new
 * chunker gear table, so every file version is chunked and sealed again,
 * and every tree, commit and tag gets a new ID: a history rewrite, as `git
 * filter-repo` is one. Messages, authors, dates, modes and paths stay.
 *
 * Two phases, so that a crash loses nothing:
 *
 * 1. **Prepare**: the new store is built beside the old one, in
 *    `.mediagit/rekey/` (a bare repository of its own, with its own key
 *    file). The old store is only read. Last, `rekey/plan.json` is written
 *    (temp file, fsync, rename): the new value of every ref and of every
 *    index entry. A crash before the plan leaves the repository as it was;
 *    the next `rekey --full` starts over.
 * 2. **Apply**, each step idempotent: the object folders swap, the key file
 *    is replaced, refs and the index are written from the plan, the reflogs
 *    restart, the old store is deleted, the plan last. While a plan exists
 *    every other command refuses to open the repository (repository.ts)
 *    and `rekey --full` finishes the apply.
 */
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { MediaGitError } from '../errors.ts';
import { decodeTag, encodeCommit, encodeTag } from '../odb/commit.ts';
import { streamFileContent, type FileObjectKind } from '../odb/file-read.ts';
import { FileStore } from '../odb/file-store.ts';
import { isObjectId, type ObjectId } from '../odb/object-id.ts';
import type { ObjectStore } from '../odb/object-store.ts';
import { encodeTree, type TreeEntry } from '../odb/tree.ts';
import type { KdfParams, KeyFile, SlotSecret } from '../security/encryption.ts';
import { writeFileAtomic, type LockFile } from '../storage/durable-file.ts';
import { registerTreeIds, StagingIndex } from './index-file.ts';
import { KEY_FILE, openCipher, readKeyFile, type SecretSource } from './keys.ts';
import { operationInProgress } from './merge-state.ts';
import { promisorRemote } from './partial-clone.ts';
import { Refs } from './refs.ts';
import { REKEY_PLAN, Repository } from './repository.ts';
import { profileFor } from './stage.ts';
import { readCommit, readTree } from './tree-ops.ts';

const STAGING = 'rekey';
const OLD_OBJECTS = 'rekey-old-objects';

interface Plan {
  readonly version: 1;
  /** Every ref kept, with its new value. */
  readonly refs: Readonly<Record<string, ObjectId>>;
  /** Refs deleted: remote-tracking refs (their remote holds the old repository). */
  readonly dropped: readonly string[];
  /** A detached HEAD's new commit. */
  readonly detachedHead?: ObjectId | undefined;
  /** Index entries' objects, old ID → new. */
  readonly index: Readonly<Record<ObjectId, ObjectId>>;
}

export interface RekeyResult {
  readonly commits: number;
  readonly files: number;
  readonly refs: number;
  readonly dropped: readonly string[];
  /** The new key file's repository ID. */
  readonly repository: string;
  /** Slots of the old key file that were not carried over (their secrets are not known here). */
  readonly slotsLeft: readonly string[];
  /** Whether this run only finished an interrupted one. */
  readonly resumed: boolean;
}

export interface RekeyOptions {
  /** The secret of the new key file's one slot (the one that opened the repository, or a new keyring key). */
  readonly secret: SlotSecret;
  /** The slot of the old key file that opened the repository: the new slot stands for it. */
  readonly openedSlot: string;
  readonly kdf?: KdfParams | undefined;
  /** Called once the new key file exists, before anything refers to it (a keyring slot stores its key). */
  readonly keyFileMade?: ((keyFile: KeyFile) => Promise<void>) | undefined;
  readonly onProgress?: ((done: number, total: number) => void) | undefined;
}

const planFile = (gitDir: string) => path.join(gitDir, REKEY_PLAN);

export function rekeyInterrupted(gitDir: string): boolean {
  return existsSync(planFile(gitDir));
}

/** Everything a rekey would lose or get wrong, refused before anything is written. */
async function assertRekeyable(repo: Repository, refs: Refs): Promise<void> {
  const refuse = (reason: string) =>
    new MediaGitError('REKEY_REFUSED', `rekey --full: ${reason}; nothing was changed`, {
      kind: 'user',
      data: { exitCode: 128 },
    });
  if (!repo.encrypted) {
    throw refuse('this repository is not encrypted (`init --encrypt` makes one)');
  }
  const operation = await operationInProgress(repo);
  if (operation !== undefined) throw refuse(`a ${operation} is in progress: finish or abort it`);
  if (promisorRemote(repo) !== undefined) {
    throw refuse('a partial clone lacks file contents to encrypt again: `mediagit prefetch` first');
  }
  if (repo.objects.shallow.size > 0) throw refuse('a shallow clone lacks the older history');
  if ((await refs.read('refs/stash')) !== undefined) {
    throw refuse('the stash holds entries: apply or drop them first (`mediagit stash list`)');
  }
}

/**
 * Builds the new store and the plan (phase 1), then applies it (phase 2).
 * The caller holds the repository open with its current key.
 */
export async function rekeyFull(repo: Repository, options: RekeyOptions): Promise<RekeyResult> {
  const gitDir = repo.gitDir;
  const lock = await StagingIndex.lock(gitDir);
  try {
    const refs = new Refs(repo);
    await assertRekeyable(repo, refs);
    const oldKeyFile = await readKeyFile(gitDir);
    const staging = path.join(gitDir, STAGING);
    await fs.rm(staging, { recursive: true, force: true });
    try {
      return await prepareAndApply(repo, refs, staging, oldKeyFile, lock, options);
    } catch (error) {
      // Before the plan nothing refers to the new store: it goes.
      if (!rekeyInterrupted(gitDir)) await fs.rm(staging, { recursive: true, force: true });
      throw error;
    }
  } finally {
    await lock.release();
  }
}

async function prepareAndApply(
  repo: Repository,
  refs: Refs,
  staging: string,
  oldKeyFile: KeyFile,
  lock: LockFile,
  options: RekeyOptions,
): Promise<RekeyResult> {
  const gitDir = repo.gitDir;
  const { repo: staged } = await Repository.init(
    staging,
    { bare: true, encrypt: { secret: options.secret, kdf: options.kdf } },
    { ...repo.context, secrets: async () => options.secret },
  );
  const newKeyFile = await readKeyFile(staging);
  await options.keyFileMade?.(newKeyFile);

  const rewriter = new Rewriter(repo.objects, staged.objects, repo.chunkThreshold, staging);
  try {
    const kept = (await refs.list('refs/')).filter((ref) => !ref.name.startsWith('refs/remotes/'));
    const dropped = (await refs.list('refs/remotes/')).map((ref) => ref.name);
    const head = await refs.head();
    const tips = [...kept.map((ref) => ref.id), ...(head.branch ? [] : [head.id!])];
    const total = await rewriter.countCommits(tips);
    const newRefs: Record<string, ObjectId> = {};
    for (const ref of kept) {
      newRefs[ref.name] = await rewriter.object(ref.id, options.onProgress, total);
    }
    const detachedHead =
      head.branch === undefined && head.id !== undefined
        ? await rewriter.object(head.id, options.onProgress, total)
        : undefined;

    // Sparse directories stay whole: their trees are mapped like entries.
    const index = await StagingIndex.load(gitDir, { sparse: true });
    const indexMap: Record<ObjectId, ObjectId> = {};
    for (const [dir, id] of index.sparseDirs()) {
      const mapped = rewriter.mapped(id);
      if (mapped === undefined) {
        throw new MediaGitError(
          'REKEY_REFUSED',
          `rekey --full: the index's folder ${dir} is in no commit: run \`mediagit sparse-checkout disable\` first; nothing was changed`,
          { kind: 'user', data: { exitCode: 128, path: dir } },
        );
      }
      indexMap[id] = mapped;
    }
    for (const entry of index.entries.values()) {
      const mapped = rewriter.mapped(entry.id);
      if (mapped === undefined) {
        throw new MediaGitError(
          'REKEY_REFUSED',
          `rekey --full: ${entry.path} is staged but in no commit: commit it or unstage it first; nothing was changed`,
          { kind: 'user', data: { exitCode: 128, path: entry.path } },
        );
      }
      indexMap[entry.id] = mapped;
    }
    await rewriter.close();
    const plan: Plan = {
      version: 1,
      refs: newRefs,
      dropped,
      ...(detachedHead ? { detachedHead } : {}),
      index: indexMap,
    };
    // The commit point: from here on, the rewrite is finished, not undone.
    await writeFileAtomic(planFile(gitDir), [Buffer.from(JSON.stringify(plan))], {
      tmpDir: path.join(staging, 'tmp'),
    });
    await apply(gitDir, options.secret, lock);
    return {
      commits: rewriter.commits,
      files: rewriter.files,
      refs: kept.length,
      dropped,
      repository: newKeyFile.repository,
      slotsLeft: oldKeyFile.slots.map((slot) => slot.id).filter((id) => id !== options.openedSlot),
      resumed: false,
    };
  } finally {
    // The hasher's worker must not outlive a failure.
    await rewriter.close();
  }
}

/** Finishes an interrupted rekey (phase 2 again); `secret` opens the new key file. */
export async function finishRekey(gitDir: string, secrets: SecretSource): Promise<RekeyResult> {
  // The interrupted rekey's index.lock is left behind: while the plan
  // exists no other command opens the repository, so it is that one's.
  await fs.rm(path.join(gitDir, 'index.lock'), { force: true });
  const lock = await StagingIndex.lock(gitDir);
  try {
    const staging = path.join(gitDir, STAGING);
    const newKeys = existsSync(path.join(staging, KEY_FILE)) ? staging : gitDir;
    const keyFile = await readKeyFile(newKeys);
    const secret = await secrets('unlock', keyFile);
    const plan = await readPlan(gitDir);
    await apply(gitDir, secret, lock);
    return {
      commits: 0,
      files: 0,
      refs: Object.keys(plan.refs).length,
      dropped: plan.dropped,
      repository: keyFile.repository,
      slotsLeft: [],
      resumed: true,
    };
  } finally {
    await lock.release();
  }
}

async function readPlan(gitDir: string): Promise<Plan> {
  let plan: Plan | undefined;
  try {
    plan = JSON.parse(await fs.readFile(planFile(gitDir), 'utf8')) as Plan;
  } catch {
    plan = undefined;
  }
  const ids = (values: readonly unknown[]) => values.every((id) => isObjectId(String(id)));
  if (
    plan?.version !== 1 ||
    typeof plan.refs !== 'object' ||
    !ids(Object.values(plan.refs)) ||
    !ids(Object.values(plan.index)) ||
    !Object.keys(plan.refs).every((name) => name.startsWith('refs/') && !name.includes('..'))
  ) {
    throw new MediaGitError('REKEY_PLAN_CORRUPT', `${planFile(gitDir)} is corrupt`, {
      kind: 'corrupt',
    });
  }
  return plan;
}

/** Phase 2, idempotent: safe to run again from any point where it stopped. */
async function apply(gitDir: string, secret: SlotSecret, indexLock: LockFile): Promise<void> {
  const staging = path.join(gitDir, STAGING);
  const plan = await readPlan(gitDir);
  const objects = path.join(gitDir, 'objects');
  const old = path.join(gitDir, OLD_OBJECTS);
  const fresh = path.join(staging, 'objects');
  if (existsSync(fresh)) {
    // `objects` is still the old store while the new one waits in staging
    // (an `old` beside it could only be a leftover: the old store is
    // removed before the plan).
    if (existsSync(objects)) {
      await fs.rm(old, { recursive: true, force: true });
      await fs.rename(objects, old);
    }
    await fs.rename(fresh, objects);
  }
  const tmpDir = path.join(gitDir, 'tmp');
  await fs.mkdir(tmpDir, { recursive: true });
  if (existsSync(path.join(staging, KEY_FILE))) {
    await writeFileAtomic(
      path.join(gitDir, KEY_FILE),
      [await fs.readFile(path.join(staging, KEY_FILE))],
      { tmpDir },
    );
    await fs.rm(path.join(staging, KEY_FILE));
  }
  const write = (name: string, id: ObjectId) =>
    writeFileAtomic(path.join(gitDir, name), [Buffer.from(`${id}\n`)], { tmpDir });
  for (const [name, id] of Object.entries(plan.refs)) await write(name, id);
  for (const name of plan.dropped) await fs.rm(path.join(gitDir, name), { force: true });
  if (plan.detachedHead) await write('HEAD', plan.detachedHead);
  for (const name of ['ORIG_HEAD', 'FETCH_HEAD']) {
    await fs.rm(path.join(gitDir, name), { force: true });
  }
  // Reflogs name the old commits: they start again.
  await fs.rm(path.join(gitDir, 'logs'), { recursive: true, force: true });
  await fs.mkdir(path.join(gitDir, 'logs', 'refs', 'heads'), { recursive: true });

  // The index, with its tree ID under the new key.
  const cipher = await openCipher(gitDir, async () => secret);
  registerTreeIds(gitDir, (data) => cipher.idOf('tree', data));
  const index = await StagingIndex.load(gitDir, { sparse: true });
  if (existsSync(path.join(gitDir, 'index'))) {
    for (const [name, entry] of index.entries) {
      index.entries.set(name, { ...entry, id: plan.index[entry.id] ?? entry.id });
    }
    for (const [dir, id] of index.sparseDirs()) index.setSparseDir(dir, plan.index[id] ?? id);
    await index.save(indexLock);
  }
  await fs.rm(old, { recursive: true, force: true });
  await fs.rm(planFile(gitDir), { force: true });
  await fs.rm(staging, { recursive: true, force: true });
}

/** Writes every object reachable from the tips again into `to`, memoized by old ID. */
class Rewriter {
  readonly #from: ObjectStore;
  readonly #to: ObjectStore;
  readonly #files: FileStore;
  readonly #chunkThreshold: number;
  readonly #tmp: string;
  readonly #map = new Map<ObjectId, ObjectId>();
  commits = 0;
  files = 0;

  constructor(from: ObjectStore, to: ObjectStore, chunkThreshold: number, staging: string) {
    this.#from = from;
    this.#to = to;
    this.#files = new FileStore(to);
    this.#chunkThreshold = chunkThreshold;
    this.#tmp = path.join(staging, 'tmp');
  }

  mapped(id: ObjectId): ObjectId | undefined {
    return this.#map.get(id);
  }

  #closed = false;

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#files.close();
  }

  /** How many commits the tips reach (for progress). */
  async countCommits(tips: readonly ObjectId[]): Promise<number> {
    const seen = new Set<ObjectId>();
    const stack = [...tips];
    while (stack.length > 0) {
      const id = stack.pop()!;
      if (seen.has(id)) continue;
      const object = await this.#from.read(id);
      if (object.type === 'tag') {
        stack.push(decodeTag(id, object.data).object);
        continue;
      }
      if (object.type !== 'commit') continue;
      seen.add(id);
      stack.push(...(await readCommit(this.#from, id)).parents);
    }
    return seen.size;
  }

  /** The new ID of a commit or tag (or a tree or file a tag names), written with all it reaches. */
  async object(
    id: ObjectId,
    onProgress?: (done: number, total: number) => void,
    total = 0,
  ): Promise<ObjectId> {
    const done = this.#map.get(id);
    if (done !== undefined) return done;
    const object = await this.#from.read(id);
    switch (object.type) {
      case 'tag': {
        const tag = decodeTag(id, object.data);
        const target = await this.object(tag.object, onProgress, total);
        return this.#remember(
          id,
          (await this.#to.write('tag', encodeTag({ ...tag, object: target }))).id,
        );
      }
      case 'commit':
        await this.#commits(id, onProgress, total);
        return this.#map.get(id)!;
      case 'tree':
        return this.#tree(id, '');
      default:
        return this.#file(object.type === 'manifest' ? 'manifest' : 'blob', id, '');
    }
  }

  #remember(id: ObjectId, to: ObjectId): ObjectId {
    this.#map.set(id, to);
    return to;
  }

  /** Parents before children, without recursion (histories are deep). */
  async #commits(
    tip: ObjectId,
    onProgress: ((done: number, total: number) => void) | undefined,
    total: number,
  ): Promise<void> {
    const stack: { id: ObjectId; expanded: boolean }[] = [{ id: tip, expanded: false }];
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      if (this.#map.has(top.id)) {
        stack.pop();
        continue;
      }
      const commit = await readCommit(this.#from, top.id);
      if (!top.expanded) {
        top.expanded = true;
        for (const parent of commit.parents) {
          if (!this.#map.has(parent)) stack.push({ id: parent, expanded: false });
        }
        continue;
      }
      stack.pop();
      const tree = await this.#tree(commit.tree, '');
      const parents = commit.parents.map((parent) => this.#map.get(parent)!);
      const written = await this.#to.write('commit', encodeCommit({ ...commit, tree, parents }));
      this.#remember(top.id, written.id);
      this.commits++;
      onProgress?.(this.commits, total);
    }
  }

  async #tree(id: ObjectId, prefix: string): Promise<ObjectId> {
    const done = this.#map.get(id);
    if (done !== undefined) return done;
    const entries: TreeEntry[] = [];
    for (const entry of await readTree(this.#from, id)) {
      const entryPath = prefix + entry.name;
      const newId =
        entry.kind === 'tree'
          ? await this.#tree(entry.id, `${entryPath}/`)
          : await this.#file(entry.kind, entry.id, entryPath);
      entries.push({ ...entry, id: newId });
    }
    return this.#remember(id, (await this.#to.write('tree', encodeTree(entries))).id);
  }

  /** A file version, chunked and sealed again (the new gear table cuts it elsewhere). */
  async #file(kind: FileObjectKind, id: ObjectId, repoPath: string): Promise<ObjectId> {
    const done = this.#map.get(id);
    if (done !== undefined) return done;
    const profile = (head: Uint8Array, size: number) => profileFor(head, repoPath, size, true);
    let stored;
    if (kind === 'blob') {
      const data = await this.#from.readTyped(id, 'blob');
      stored = await this.#files.storeBlob(data, profile(data, data.length).compression);
    } else {
      await fs.mkdir(this.#tmp, { recursive: true });
      const tmp = path.join(this.#tmp, 'file');
      const handle = await fs.open(tmp, 'w');
      try {
        await streamFileContent(this.#from, kind, id, async (chunk) => {
          await handle.write(chunk);
        });
      } finally {
        await handle.close();
      }
      stored = await this.#files.storeFile(tmp, { chunkThreshold: this.#chunkThreshold, profile });
      await fs.rm(tmp, { force: true });
    }
    this.files++;
    return this.#remember(id, stored.id);
  }
}
