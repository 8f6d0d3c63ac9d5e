/**
 * The reachability walk of a local repository: which stored objects anything
 * the user can still name depends on. `gc` keeps exactly these (docs/gc.md).
 *
 * Roots, as Git's: HEAD and every ref (branches, tags, remote-tracking refs,
 * `refs/stash`), every ID in every reflog (old and new), every index entry
 * (conflict stages too) and the index's cached root tree, and every object ID
 * written in the state files at the top of the repository folder (MERGE_HEAD,
 * ORIG_HEAD, CHERRY_PICK_HEAD, REVERT_HEAD, MERGE_CONFLICTS, REBASE_STATE,
 * BISECT_*, FETCH_HEAD, shallow, ...). Reading those files for anything that
 * looks like an object ID, rather than parsing each, is deliberately
 * generous: a state file added later is covered without touching gc, and an
 * ID that is only text in a message merely keeps one more object.
 *
 * From the roots: a tag names an object; a commit its tree and parents; a
 * tree its entries; a manifest its chunks; and any object stored as a delta
 * its bases (odb/delta.ts), so a kept delta can always be decoded. Metadata
 * objects are read and verified; blobs and chunks only have their header and
 * delta prefix read.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { Codec } from '../compression/codec.ts';
import { MediaGitError } from '../errors.ts';
import { decodeCommit, decodeTag } from '../odb/commit.ts';
import { MAX_BASES } from '../odb/delta.ts';
import { decodeManifest } from '../odb/manifest.ts';
import { isObjectId, type ObjectId } from '../odb/object-id.ts';
import { decodeHeader, HEADER_SIZE, type ObjectStore } from '../odb/object-store.ts';
import { decodeTree } from '../odb/tree.ts';
import { StagingIndex } from './index-file.ts';
import type { Repository } from './repository.ts';

/** Reading at most this much of a state file for IDs (they are all tiny). */
const STATE_FILE_LIMIT = 16 * 1024 * 1024;
/** Top-level files that hold no object IDs, or that are read another way. */
const NOT_STATE = new Set(['config', 'index', 'description']);
const PARALLEL = 16;
const ID_PATTERN = /\b[0-9a-f]{64}\b/g;

/** An object to mark, and what needs it. */
interface Reference {
  readonly id: ObjectId;
  readonly from: string;
  /** Named by a reflog or state file: may be long gone. */
  readonly optional: boolean;
  /** A file's manifest, blob or chunk, which a partial clone may lack (promised by its remote). */
  readonly promisable: boolean;
}

export interface Roots {
  /** Roots that must exist: HEAD and the refs. */
  readonly required: Set<ObjectId>;
  /** Roots that may name objects long gone (reflogs, state files, the index's cached tree). */
  readonly optional: Set<ObjectId>;
  /**
   * Required roots that a partial clone may lack, promised by its remote:
   * the files the index names (a sparse clone's skipped files).
   */
  readonly promisable?: Set<ObjectId>;
}

/** Every root of the repository (see the overview). */
export async function collectRoots(repo: Repository): Promise<Roots> {
  const required = new Set<ObjectId>();
  const optional = new Set<ObjectId>();
  const promisable = new Set<ObjectId>();
  const gitDir = repo.gitDir;
  const head = (await readText(path.join(gitDir, 'HEAD')))?.trim();
  if (head && isObjectId(head)) required.add(head);
  for (const file of await filesUnder(path.join(gitDir, 'refs'))) {
    if (file.endsWith('.lock')) continue;
    const text = (await readText(file))?.trim();
    if (text === undefined || text === '') continue;
    if (!isObjectId(text)) {
      throw new MediaGitError(
        'REF_CORRUPT',
        `ref ${path.relative(gitDir, file)} is corrupt: it does not hold an object ID`,
        { kind: 'corrupt', data: { ref: path.relative(gitDir, file) } },
      );
    }
    required.add(text);
  }
  for (const file of await filesUnder(path.join(gitDir, 'logs'))) {
    for (const id of idsIn(await readText(file))) optional.add(id);
  }
  // Sparse directories stay whole: their trees are roots (their files'
  // objects, like any index entry's, may be promised by a partial clone's remote).
  const index = await StagingIndex.load(gitDir, { sparse: true });
  for (const entry of index.entries.values()) {
    required.add(entry.id);
    promisable.add(entry.id);
  }
  for (const id of index.sparseDirs().values()) required.add(id);
  if (index.treeId) optional.add(index.treeId);
  for (const entry of await fs.readdir(gitDir, { withFileTypes: true })) {
    if (!entry.isFile() || NOT_STATE.has(entry.name) || entry.name.endsWith('.lock')) continue;
    if (entry.name === 'HEAD' || entry.name.startsWith('fsmonitor')) continue;
    const file = path.join(gitDir, entry.name);
    const stats = await fs.stat(file).catch(() => undefined);
    if (!stats || stats.size > STATE_FILE_LIMIT) continue;
    for (const id of idsIn(await readText(file))) optional.add(id);
  }
  optional.delete('0'.repeat(64));
  return { required, optional, promisable };
}

/**
 * The set of objects reachable from the roots given to `mark`, grown by each
 * call (gc marks once, then again from the roots as they are under its lock).
 */
export class Marker {
  readonly marked = new Set<ObjectId>();
  /** Reachable objects that are missing or unreadable, with what needed them. */
  readonly problems: { id: ObjectId; reason: string }[] = [];
  readonly #store: ObjectStore;
  readonly #signal: AbortSignal | undefined;

  constructor(store: ObjectStore, signal?: AbortSignal) {
    this.#store = store;
    this.#signal = signal;
  }

  async mark(roots: Roots): Promise<void> {
    const queue: Reference[] = [];
    for (const id of roots.required) {
      const promisable = roots.promisable?.has(id) ?? false;
      queue.push({ id, from: 'a ref or the index', optional: false, promisable });
    }
    for (const id of roots.optional)
      queue.push({ id, from: 'a reflog or state file', optional: true, promisable: false });
    const work = async (): Promise<void> => {
      for (let item = queue.pop(); item; item = queue.pop()) {
        this.#signal?.throwIfAborted();
        if (this.marked.has(item.id)) continue;
        const next = await this.#visit(item);
        for (const child of next) if (!this.marked.has(child.id)) queue.push(child);
      }
    };
    // Workers stop when the queue is empty; a visit in flight may refill it.
    while (queue.length > 0) await Promise.all(Array.from({ length: PARALLEL }, work));
  }

  async #visit({ id, from, optional, promisable }: Reference): Promise<Reference[]> {
    if (!isObjectId(id)) return [];
    const store = this.#store;
    let header: ReturnType<typeof decodeHeader>;
    let bases: ObjectId[] = [];
    try {
      const handle = await store.open(id);
      try {
        const prefix = Buffer.alloc(HEADER_SIZE + 1 + MAX_BASES * 32);
        const { bytesRead } = await handle.read(prefix, 0, prefix.length, 0);
        header = decodeHeader(id, prefix.subarray(0, bytesRead));
        if (header.codec === Codec.delta)
          bases = deltaBases(id, prefix.subarray(HEADER_SIZE, bytesRead));
      } finally {
        await handle.close();
      }
    } catch (error) {
      if (!(error instanceof MediaGitError)) throw error;
      if (optional && error.code === 'OBJECT_MISSING') return [];
      // A partial clone's absent files (manifests, blobs, chunks) are promised by its remote, not lost.
      if (error.code === 'OBJECT_MISSING' && store.contentSource !== undefined && promisable)
        return [];
      if (
        this.#store.shallow.size > 0 &&
        error.code === 'OBJECT_MISSING' &&
        from.startsWith('parent of ')
      ) {
        const child = from.slice('parent of '.length);
        if (this.#store.shallow.has(child)) return [];
      }
      this.marked.add(id);
      this.problems.push({ id, reason: `${error.message} (needed by ${from})` });
      return [];
    }
    this.marked.add(id);
    const next: Reference[] = bases.map((base) => ({
      id: base,
      from: `delta ${id}`,
      optional: false,
      promisable: false,
    }));
    if (header.type === 'blob' || header.type === 'chunk') return next;
    let data: Buffer;
    try {
      data = (await store.read(id)).data;
    } catch (error) {
      if (!(error instanceof MediaGitError)) throw error;
      this.problems.push({ id, reason: `${error.message} (needed by ${from})` });
      return next;
    }
    const child = (childId: ObjectId, how: string, promised = false): void => {
      next.push({ id: childId, from: how, optional: false, promisable: promised });
    };
    switch (header.type) {
      case 'commit': {
        const commit = decodeCommit(id, data);
        child(commit.tree, `commit ${id}`);
        for (const parent of commit.parents) child(parent, `parent of ${id}`);
        break;
      }
      case 'tag':
        child(decodeTag(id, data).object, `tag ${id}`);
        break;
      case 'tree':
        for (const entry of decodeTree(id, data)) {
          child(entry.id, `tree ${id} (${entry.name})`, entry.kind !== 'tree');
        }
        break;
      case 'manifest':
        for (const chunk of decodeManifest(id, data).chunks) {
          child(chunk.id, `manifest ${id}`, true);
        }
        break;
    }
    return next;
  }
}

/** The base IDs of a delta payload's prefix (docs/format.md, "Deltas"). */
function deltaBases(id: ObjectId, prefix: Buffer): ObjectId[] {
  const count = prefix[0] ?? 0;
  if (count < 1 || count > MAX_BASES || prefix.length < 1 + count * 32) {
    throw new MediaGitError('OBJECT_CORRUPT', `object ${id} is corrupt: bad delta prefix`, {
      kind: 'corrupt',
      data: { id },
    });
  }
  const bases: ObjectId[] = [];
  for (let i = 0; i < count; i++) bases.push(prefix.toString('hex', 1 + i * 32, 33 + i * 32));
  return bases;
}

function idsIn(text: string | undefined): ObjectId[] {
  return text === undefined ? [] : (text.match(ID_PATTERN) ?? []);
}

async function readText(file: string): Promise<string | undefined> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch {
    return undefined;
  }
}

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  let entries;
  try {
    entries = await fs.readdir(dir, { withFileTypes: true });
  } catch {
    return out;
  }
  for (const entry of entries) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await filesUnder(full)));
    else if (entry.isFile()) out.push(full);
  }
  return out;
}
