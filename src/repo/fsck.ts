/**
 * `fsck`: checks a repository's integrity, as `git fsck` does (docs/fsck.md).
 *
 * 1. Inventory: every stored copy of every object, loose or in a pack
 *    (fsck-packs.ts checks the packs and their indexes as readers load them,
 *    plus their layout).
 * 2. With `full`, every copy is read once and verified (header, decode, hash
 *    against its ID, deltas against their bases) on worker threads,
 *    reachable or not (fsck-verify.ts).
 * 3. The walk from every root: HEAD, refs, reflog entries, index entries,
 *    the in-progress state files. Commits, tags, trees and manifests are
 *    always verified in full (their links are what the walk follows); blobs
 *    and chunks, without `full`, have their header checked (type, size
 *    against the tree or manifest that names them, delta prefix) and must be
 *    present. Delta bases are followed and chain depths checked.
 * 4. Each problem names the object and, from the links the walk recorded
 *    backwards, the paths, commits and refs that depend on it.
 *
 * The report also carries what a repair needs (`damage`): which objects
 * have no good copy, which loose files are bad, which packs are damaged.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { Codec, decodeDelta } from '../compression/codec.ts';
import { corruptObject, hasErrnoCode, MediaGitError } from '../errors.ts';
import { decodeCommit, decodeTag } from '../odb/commit.ts';
import { MAX_BASES, MAX_DELTA_DEPTH, parseDeltaPayload } from '../odb/delta.ts';
import { decodeManifest } from '../odb/manifest.ts';
import { isObjectId, type ObjectId } from '../odb/object-id.ts';
import {
  decodeHeader,
  HEADER_SIZE,
  isFileContent,
  type ObjectTypeName,
} from '../odb/object-store.ts';
import { decodeTree } from '../odb/tree.ts';
import { inventoryPacks, type PackInfo } from './fsck-packs.ts';
import {
  LOOSE_PER_JOB,
  RUN_BYTES,
  Verifiers,
  type VerifyJob,
  type VerifyResult,
  type VerifySegment,
} from './fsck-verify.ts';
import { StagingIndex } from './index-file.ts';
import type { Repository } from './repository.ts';

export type ProblemKind =
  | 'missing'
  | 'corrupt'
  | 'bad-link'
  | 'bad-delta'
  | 'corrupt-pack'
  | 'corrupt-pack-index'
  | 'bad-ref'
  | 'bad-reflog'
  | 'corrupt-index'
  | 'bad-state';

/** What depends on an object: at most `DEPENDENTS_SHOWN` of each. */
export interface Dependents {
  /** Repository paths of files (or folders) the object is, or is part of. */
  readonly paths: string[];
  /** Commits whose snapshot needs it (for a commit: its children). */
  readonly commits: ObjectId[];
  /** Refs, reflog entries (`HEAD@{2}`), `index` and state files that name it. */
  readonly refs: string[];
}

export interface AffectedObject extends Dependents {
  readonly id: ObjectId;
  readonly type: ObjectTypeName | null;
}

export interface FsckProblem extends Dependents {
  readonly kind: ProblemKind;
  /** The object concerned; null for a damaged file (ref, index, pack). */
  readonly id: ObjectId | null;
  /** Its type, when known (from its header, or from what names it). */
  readonly type: ObjectTypeName | null;
  readonly reason: string;
  /** The damaged file, relative to the repository folder; null when none. */
  readonly file: string | null;
  /** A good copy of the object exists elsewhere (only this copy is bad). */
  readonly goodCopy: boolean;
  /** For a damaged pack or index: the objects readers cannot find elsewhere. */
  readonly objects: AffectedObject[];
}

export interface FsckStats {
  /** Distinct objects stored. */
  objects: number;
  /** Of them, reachable from a root. */
  reachable: number;
  unreachable: number;
  loose: number;
  packs: number;
  refs: number;
  /** Copies read and verified in full, and their stored bytes. */
  verified: number;
  verifiedBytes: number;
  /**
   * Reachable files (manifests, blobs, chunks) absent from a partial clone, promised by its remote
   * (docs/partial-clone.md): counted here, not problems.
   */
  promised?: number;
}

/** What a repair has to mend (not part of the JSON report). */
export interface Damage {
  /** Objects with no good copy here: fetch them. Type when known. */
  readonly fetch: Map<ObjectId, ObjectTypeName | null>;
  /** Objects whose loose file is bad while a good copy exists elsewhere here. */
  readonly badLoose: ObjectId[];
  readonly packs: DamagedPack[];
  readonly index: boolean;
  /** Every stored copy of every object, as checked (loose first, then packs). */
  readonly copies: ReadonlyMap<ObjectId, readonly StoredCopy[]>;
}

export interface DamagedPack {
  readonly info: PackInfo;
  /** Objects whose record here failed verification. */
  readonly bad: ReadonlySet<ObjectId>;
  /** Objects whose record here verified. */
  readonly good: ReadonlySet<ObjectId>;
}

export interface FsckReport {
  readonly ok: boolean;
  readonly full: boolean;
  readonly problems: FsckProblem[];
  readonly stats: FsckStats;
  readonly damage: Damage;
}

export interface FsckOptions {
  /** Read and verify every stored copy of every object (`--full`). */
  readonly full?: boolean | undefined;
  readonly signal?: AbortSignal | undefined;
  /** Stored bytes verified so far, of `total` (the `full` pass). */
  readonly onProgress?: ((event: { bytes: number; total: number }) => void) | undefined;
}

export const DEPENDENTS_SHOWN = 20;
/** Backward links kept per object: enough to name its dependents, bounded in memory. */
const EDGES_KEPT = 8;
const PARALLEL = 16;
const LINKING = new Set<ObjectTypeName>(['commit', 'tree', 'tag', 'manifest']);
/** A header and the longest delta prefix (base count, 4 bases, depth) with a byte of its frame. */
const PREFIX_BYTES = HEADER_SIZE + 2 + 32 * MAX_BASES + 1;
const STATE_COMMIT_FILES = [
  'MERGE_HEAD',
  'CHERRY_PICK_HEAD',
  'REVERT_HEAD',
  'ORIG_HEAD',
  'BISECT_BAD',
  'BISECT_GOOD',
  'BISECT_SKIP',
  'BISECT_START',
];

/** One stored copy of an object and what checking it found. */
export interface StoredCopy {
  readonly file: string;
  /** Unset for a loose object (the whole file). */
  readonly pack: PackInfo | undefined;
  readonly offset: number;
  readonly length: number;
  status: 'unchecked' | 'ok' | 'header-ok' | 'bad';
  reason?: string;
  type?: ObjectTypeName;
  rawSize?: number;
  bases?: readonly ObjectId[];
  depth?: number;
}

type Copy = StoredCopy;

/** A backward link: `from` needs the object (as entry `name` of a tree, or a root label). */
interface Edge {
  readonly from: string;
  readonly kind: 'entry' | 'tree' | 'parent' | 'tag' | 'chunk' | 'base' | 'root';
  readonly name?: string;
}

interface Expect {
  readonly type: ObjectTypeName | null;
  readonly size?: number | undefined;
}

interface Examined {
  readonly copy: Copy | undefined;
  readonly data: Buffer | undefined;
}

export async function fsck(repo: Repository, options: FsckOptions = {}): Promise<FsckReport> {
  return new Checker(repo, options).run();
}

class Checker {
  readonly repo: Repository;
  readonly full: boolean;
  readonly options: FsckOptions;
  readonly copies = new Map<ObjectId, Copy[]>();
  readonly contents = new Map<ObjectId, Buffer>();
  readonly edges = new Map<ObjectId, Edge[]>();
  readonly expected = new Map<ObjectId, Expect>();
  readonly visited = new Map<ObjectId, Examined>();
  readonly problems: FsckProblem[] = [];
  readonly stats: FsckStats = {
    objects: 0,
    reachable: 0,
    unreachable: 0,
    loose: 0,
    packs: 0,
    refs: 0,
    verified: 0,
    verifiedBytes: 0,
  };
  packs: PackInfo[] = [];
  indexProblems: { file: string; reason: string }[] = [];
  indexCorrupt = false;
  readonly #handles = new Map<string, Promise<fs.FileHandle>>();
  /** The worker threads of the full read, once started. */
  #verifiers: Verifiers | undefined;

  constructor(repo: Repository, options: FsckOptions) {
    this.repo = repo;
    this.full = options.full === true;
    this.options = options;
  }

  async run(): Promise<FsckReport> {
    try {
      // Started first: their start-up (~0.1-0.3 s each) runs while the objects are listed.
      if (this.full) this.#startVerifiers();
      await this.inventory();
      await this.verifyStored();
      const roots = await this.collectRoots();
      await this.walk(roots);
      this.checkDeltaDepths();
      return this.report();
    } finally {
      await this.#verifiers?.close();
      for (const handle of this.#handles.values()) {
        await handle.then((file) => file.close()).catch(() => undefined);
      }
    }
  }

  rel(file: string): string {
    return path.relative(this.repo.gitDir, file).split(path.sep).join('/');
  }

  // -- 1. inventory ---------------------------------------------------------

  async inventory(): Promise<void> {
    const store = this.repo.objects;
    for await (const id of store.listLoose()) {
      this.copies.set(id, [
        { file: store.pathOf(id), pack: undefined, offset: 0, length: -1, status: 'unchecked' },
      ]);
      this.stats.loose++;
    }
    const inventory = await inventoryPacks(store.objectsDir);
    this.packs = inventory.packs;
    this.indexProblems = inventory.indexProblems;
    this.stats.packs = this.packs.length;
    // Readers look loose first, then in the packs they can load.
    const ordered = [...this.packs].sort((a, b) => Number(b.readable) - Number(a.readable));
    for (const pack of ordered) {
      for (const entry of pack.entries) {
        const list = this.copies.get(entry.id) ?? [];
        list.push({
          file: pack.packPath,
          pack,
          offset: entry.offset,
          length: entry.length,
          status: 'unchecked',
        });
        this.copies.set(entry.id, list);
      }
    }
    this.stats.objects = this.copies.size;
  }

  // -- 2. reading every stored copy ----------------------------------------

  /**
   * With `full`, every copy; without, only the records of packs readers
   * refuse (to know which of their objects can be salvaged).
   */
  async verifyStored(): Promise<void> {
    const jobs: VerifyJob[] = [];
    const jobCopies = new Map<VerifyJob, Copy[]>();
    const add = (segments: VerifySegment[], copies: Copy[], bytes: number): void => {
      const job = { segments, bytes };
      jobs.push(job);
      jobCopies.set(job, copies);
    };
    if (this.full) {
      let segments: VerifySegment[] = [];
      let copies: Copy[] = [];
      for (const [id, list] of this.copies) {
        const loose = list[0];
        if (loose?.pack !== undefined || loose === undefined) continue;
        segments.push({
          file: loose.file,
          start: 0,
          length: -1,
          records: [{ id, offset: 0, length: -1 }],
        });
        copies.push(loose);
        if (segments.length >= LOOSE_PER_JOB) {
          add(segments, copies, 0);
          segments = [];
          copies = [];
        }
      }
      if (segments.length > 0) add(segments, copies, 0);
    }
    for (const pack of this.packs) {
      if (!this.full && pack.readable) continue;
      const records = [...pack.entries].sort((a, b) => a.offset - b.offset);
      const copyOf = (id: ObjectId, offset: number): Copy =>
        this.copies.get(id)!.find((c) => c.pack === pack && c.offset === offset)!;
      for (let i = 0; i < records.length;) {
        const start = records[i]!.offset;
        let end = start;
        const run: { id: ObjectId; offset: number; length: number }[] = [];
        const copies: Copy[] = [];
        // A run of neighbouring records (overlaps and gaps end it; a big record is a run alone).
        while (i < records.length) {
          const entry = records[i]!;
          if (run.length > 0 && (entry.offset !== end || end + entry.length - start > RUN_BYTES)) {
            break;
          }
          run.push({ id: entry.id, offset: entry.offset - start, length: entry.length });
          copies.push(copyOf(entry.id, entry.offset));
          end = entry.offset + entry.length;
          i++;
        }
        add(
          [{ file: pack.packPath, start, length: end - start, records: run }],
          copies,
          end - start,
        );
      }
    }
    if (jobs.length > 0) await this.#runJobs(jobs, jobCopies);
    await this.#verifiers?.close();
    this.#verifiers = undefined;
    this.#applyRenames();
    // A delta whose base is only where readers cannot look (a pack they
    // refuse): verified again here, its bases taken from any copy that verifies.
    for (const [id, list] of this.copies) {
      for (const copy of list) {
        if (copy.status !== 'bad' || !copy.bases) continue;
        try {
          const record = await this.#read(copy, undefined);
          await this.#verifyWithCopies(id, record, 0);
          copy.status = 'ok';
          delete copy.reason;
        } catch (error) {
          if (!(error instanceof MediaGitError)) throw error;
          copy.reason = reasonOf(error);
        }
      }
    }
  }

  #startVerifiers(): Verifiers {
    return (this.#verifiers ??= new Verifiers({
      objectsDir: this.repo.objects.objectsDir,
      tmpDir: this.repo.objects.tmpDir,
      cipher: this.repo.objects.cipher?.material,
    }));
  }

  async #runJobs(jobs: VerifyJob[], jobCopies: Map<VerifyJob, Copy[]>): Promise<void> {
    const total = jobs.reduce((sum, job) => sum + job.bytes, 0);
    let done = 0;
    const verifiers = this.#startVerifiers();
    // A record larger than a run goes first, so that no core is left idle at
    // the end while another hashes it (the sort is stable: packs stay in order).
    jobs.sort((a, b) => Number(b.bytes > RUN_BYTES) - Number(a.bytes > RUN_BYTES));
    await verifiers.run(jobs, {
      signal: this.options.signal,
      onResults: (job, results) => {
        const copies = jobCopies.get(job)!;
        results.forEach((result, i) => this.#record(copies[i]!, result));
        done += job.bytes;
        this.options.onProgress?.({ bytes: done, total });
      },
    });
  }

  #record(copy: Copy, result: VerifyResult): void {
    if (
      !result.ok &&
      result.actualId !== undefined &&
      result.actualId !== result.id &&
      copy.pack &&
      !copy.pack.readable
    ) {
      this.#renames.push({ claimed: result.id, actual: result.actualId, copy });
    }
    copy.status = result.ok ? 'ok' : 'bad';
    if (result.reason !== undefined) copy.reason = result.reason;
    if (result.type !== undefined) copy.type = result.type;
    if (result.rawSize !== undefined) copy.rawSize = result.rawSize;
    if (result.bases !== undefined) copy.bases = result.bases;
    copy.depth = result.depth ?? 0;
    if (result.ok && result.data !== undefined && !this.contents.has(result.id)) {
      this.contents.set(result.id, Buffer.from(result.data));
    }
    if (result.ok) {
      this.stats.verified++;
      this.stats.verifiedBytes += result.stored ?? Math.max(0, copy.length);
    }
  }

  readonly #renames: { claimed: ObjectId; actual: ObjectId; copy: Copy }[] = [];

  /**
   * A damaged pack index may name a record wrongly (a flipped bit in its ID
   * table): the record is filed under the object it does hold.
   */
  #applyRenames(): void {
    for (const { claimed, actual, copy } of this.#renames) {
      const list = (this.copies.get(claimed) ?? []).filter((c) => c !== copy);
      if (list.length > 0) this.copies.set(claimed, list);
      else this.copies.delete(claimed);
      // Its content was decoded and hashed to `actual`: a good copy of that.
      copy.status = 'ok';
      delete copy.reason;
      this.copies.set(actual, [...(this.copies.get(actual) ?? []), copy]);
      const entries = copy.pack!.entries;
      const at = entries.findIndex((e) => e.id === claimed && e.offset === copy.offset);
      if (at >= 0) entries[at] = { id: actual, offset: copy.offset, length: copy.length };
    }
    this.stats.objects = this.copies.size;
  }

  /**
   * Verifies a record as a read does, except that a delta's bases come from
   * any of their copies here that verifies (readers look only where they can).
   */
  async #verifyWithCopies(id: ObjectId, record: Buffer, nesting: number): Promise<Buffer> {
    const header = decodeHeader(id, record);
    if (header.codec !== Codec.delta)
      return (await this.repo.objects.decodeVerified(id, record)).data;
    if (nesting >= MAX_DELTA_DEPTH)
      throw corruptObject(id, `delta chain longer than ${MAX_DELTA_DEPTH}`);
    const delta = parseDeltaPayload(id, record.subarray(HEADER_SIZE));
    const bases: Buffer[] = [];
    for (const base of delta.bases) {
      let data: Buffer | undefined;
      for (const copy of this.copies.get(base) ?? []) {
        try {
          data = await this.#verifyWithCopies(base, await this.#read(copy, undefined), nesting + 1);
          break;
        } catch (error) {
          if (!(error instanceof MediaGitError)) throw error;
        }
      }
      if (!data) throw corruptObject(id, `its delta base ${base} is missing or damaged`);
      bases.push(data);
    }
    let data: Buffer;
    try {
      data = await decodeDelta(delta.frame, Buffer.concat(bases), header.rawSize);
    } catch (error) {
      throw corruptObject(id, 'delta does not decode against its bases', error);
    }
    if (data.length !== header.rawSize || this.repo.objects.idOf(header.type, data) !== id) {
      throw corruptObject(id, 'content does not match its hash');
    }
    return data;
  }

  // -- 3. roots and the walk -----------------------------------------------

  async collectRoots(): Promise<{ id: ObjectId; edge: Edge; expect: Expect }[]> {
    const gitDir = this.repo.gitDir;
    const roots: { id: ObjectId; edge: Edge; expect: Expect }[] = [];
    const commitRoot = (
      id: ObjectId,
      label: string,
      type: ObjectTypeName | null = 'commit',
    ): void => {
      roots.push({ id, edge: { from: label, kind: 'root' }, expect: { type } });
    };

    // HEAD
    const headText = await readText(path.join(gitDir, 'HEAD'));
    if (headText === undefined) {
      this.#fileProblem('bad-ref', 'HEAD', 'HEAD is missing');
    } else {
      const head = headText.trim();
      if (head.startsWith('ref: ')) {
        if (!head.slice(5).startsWith('refs/')) {
          this.#fileProblem('bad-ref', 'HEAD', `HEAD points outside refs/: ${head.slice(5)}`);
        }
      } else if (isObjectId(head)) {
        commitRoot(head, 'HEAD');
      } else {
        this.#fileProblem('bad-ref', 'HEAD', 'HEAD holds neither a ref nor a commit ID');
      }
    }

    // refs/
    for (const file of await filesUnder(path.join(gitDir, 'refs'))) {
      if (file.endsWith('.lock')) continue;
      const name = this.rel(file);
      const text = (await readText(file))?.trim() ?? '';
      this.stats.refs++;
      if (!isObjectId(text)) {
        this.#fileProblem('bad-ref', name, `ref ${name} does not hold an object ID`);
        continue;
      }
      commitRoot(text, name, name.startsWith('refs/tags/') ? null : 'commit');
    }

    // Reflogs: every entry's old and new IDs.
    for (const file of await filesUnder(path.join(gitDir, 'logs'))) {
      const ref = this.rel(file).slice('logs/'.length);
      const lines = ((await readText(file)) ?? '').split('\n');
      if (lines.at(-1) === '') lines.pop();
      const count = lines.length;
      lines.forEach((line, i) => {
        const match = /^([0-9a-f]{64}) ([0-9a-f]{64}) ([^\t]*)\t(.*)$/.exec(line);
        if (!match) {
          this.#fileProblem(
            'bad-reflog',
            this.rel(file),
            `reflog of ${ref} has an unreadable entry on line ${i + 1}`,
          );
          return;
        }
        const label = `${ref}@{${count - 1 - i}}`;
        const type = ref.startsWith('refs/tags/') ? null : 'commit';
        if (match[1] !== '0'.repeat(64)) commitRoot(match[1]!, label, type);
        if (match[2] !== '0'.repeat(64)) commitRoot(match[2]!, label, type);
      });
    }

    // The index.
    try {
      const index = await StagingIndex.load(gitDir);
      for (const entry of index.entries.values()) {
        roots.push({
          id: entry.id,
          edge: { from: 'index', kind: 'root', name: entry.path },
          expect: { type: entry.kind, size: entry.size },
        });
      }
    } catch (error) {
      if (!(error instanceof MediaGitError) || error.code !== 'INDEX_CORRUPT') throw error;
      this.indexCorrupt = true;
      const reason = error.message.replace(/^index file .* is corrupt: /, '');
      this.#fileProblem('corrupt-index', 'index', `index file is corrupt: ${reason}`);
    }

    // In-progress state: merge, cherry-pick, revert, bisect, rebase.
    for (const name of STATE_COMMIT_FILES) {
      const text = await readText(path.join(gitDir, name));
      if (text === undefined) continue;
      for (const line of text.split('\n')) {
        const id = line.trim().split(/\s/)[0] ?? '';
        if (isObjectId(id)) commitRoot(id, name);
      }
    }
    const conflicts = await readText(path.join(gitDir, 'MERGE_CONFLICTS'));
    if (conflicts !== undefined) {
      try {
        const parsed = JSON.parse(conflicts) as {
          conflicts?: { path: string; [side: string]: unknown }[];
        };
        for (const conflict of parsed.conflicts ?? []) {
          for (const side of ['base', 'ours', 'theirs']) {
            const version = conflict[side] as
              { id?: string; kind?: string; size?: number } | undefined;
            if (!version?.id || !isObjectId(version.id)) continue;
            roots.push({
              id: version.id,
              edge: { from: 'MERGE_CONFLICTS', kind: 'root', name: conflict.path },
              expect: {
                type: version.kind === 'manifest' ? 'manifest' : 'blob',
                size: version.size,
              },
            });
          }
        }
      } catch {
        this.#fileProblem('bad-state', 'MERGE_CONFLICTS', 'MERGE_CONFLICTS is not valid JSON');
      }
    }
    const rebase = await readText(path.join(gitDir, 'REBASE_STATE'));
    if (rebase !== undefined) {
      try {
        const state = JSON.parse(rebase) as {
          origHead?: string;
          onto?: string;
          todo?: { id?: string }[];
          current?: { id?: string };
        };
        const ids = [
          state.origHead,
          state.onto,
          state.current?.id,
          ...(state.todo ?? []).map((t) => t.id),
        ];
        for (const id of ids) if (id && isObjectId(id)) commitRoot(id, 'REBASE_STATE');
      } catch {
        this.#fileProblem('bad-state', 'REBASE_STATE', 'REBASE_STATE is not valid JSON');
      }
    }
    return roots;
  }

  async walk(roots: { id: ObjectId; edge: Edge; expect: Expect }[]): Promise<void> {
    const queue: { id: ObjectId; expect: Expect }[] = [];
    const push = (id: ObjectId, edge: Edge, expect: Expect): void => {
      const list = this.edges.get(id) ?? [];
      if (list.length < EDGES_KEPT) list.push(edge);
      this.edges.set(id, list);
      if (!this.expected.has(id)) {
        this.expected.set(id, expect);
        queue.push({ id, expect });
      }
    };
    for (const root of roots) push(root.id, root.edge, root.expect);
    const work = async (): Promise<void> => {
      for (let item = queue.pop(); item; item = queue.pop()) {
        this.options.signal?.throwIfAborted();
        if (this.visited.has(item.id)) continue;
        this.visited.set(item.id, { copy: undefined, data: undefined });
        const examined = await this.examine(item.id, item.expect);
        this.visited.set(item.id, examined);
        // A delta's bases, even when no copy decodes (a base may be what is gone).
        const copy = examined.copy;
        const delta = copy ?? (this.copies.get(item.id) ?? []).find((c) => c.bases);
        for (const base of delta?.bases ?? []) {
          push(base, { from: item.id, kind: 'base' }, { type: delta?.type ?? null });
        }
        if (copy && examined.data) this.#links(item.id, copy.type!, examined.data, push);
      }
    };
    while (queue.length > 0) await Promise.all(Array.from({ length: PARALLEL }, work));
  }

  /** Follows what a verified commit, tag, tree or manifest names. */
  #links(
    id: ObjectId,
    type: ObjectTypeName,
    data: Buffer,
    push: (id: ObjectId, edge: Edge, expect: Expect) => void,
  ): void {
    try {
      if (type === 'commit') {
        const commit = decodeCommit(id, data);
        push(commit.tree, { from: id, kind: 'tree' }, { type: 'tree' });
        if (this.repo.objects.shallow.has(id)) return;
        for (const parent of commit.parents) {
          push(parent, { from: id, kind: 'parent' }, { type: 'commit' });
        }
      } else if (type === 'tag') {
        const tag = decodeTag(id, data);
        const named = ['commit', 'tree', 'blob', 'tag'].includes(tag.type)
          ? (tag.type as ObjectTypeName)
          : null;
        push(tag.object, { from: id, kind: 'tag' }, { type: named });
      } else if (type === 'tree') {
        for (const entry of decodeTree(id, data)) {
          push(
            entry.id,
            { from: id, kind: 'entry', name: entry.name },
            { type: entry.kind, size: entry.kind === 'tree' ? undefined : entry.size },
          );
        }
      } else if (type === 'manifest') {
        const manifest = decodeManifest(id, data);
        const expect = this.expected.get(id);
        if (expect?.size !== undefined && expect.size !== manifest.size) {
          this.#objectProblem(
            'bad-link',
            id,
            'manifest',
            `describes ${manifest.size} bytes, but what names it says ${expect.size}`,
          );
        }
        for (const chunk of manifest.chunks) {
          push(chunk.id, { from: id, kind: 'chunk' }, { type: 'chunk', size: chunk.length });
        }
      }
    } catch (error) {
      if (!(error instanceof MediaGitError)) throw error;
      // Hashes to its ID but does not parse: written wrong, not damaged since.
      this.#objectProblem('corrupt', id, type, reasonOf(error));
    }
  }

  /**
   * Finds a good copy of `id`: the first, in the order readers look, that
   * verifies (a commit, tag, tree or manifest, or an object of unknown
   * type) or whose header checks (a blob or chunk, without `full`).
   */
  async examine(id: ObjectId, expect: Expect): Promise<Examined> {
    const copies = this.copies.get(id) ?? [];
    for (const copy of copies) {
      if (copy.status === 'unchecked') await this.#check(id, copy, expect);
      if (copy.status === 'bad') continue;
      let data = this.contents.get(id);
      if (copy.type && LINKING.has(copy.type) && !data) {
        // Verified by the full pass without its bytes (cannot happen), or a type surprise.
        await this.#check(id, copy, { type: copy.type });
        data = this.contents.get(id);
      }
      this.#checkExpectation(id, copy, expect);
      return { copy, data };
    }
    return { copy: undefined, data: undefined };
  }

  async #check(id: ObjectId, copy: Copy, expect: Expect): Promise<void> {
    try {
      const wantsAll = expect.type === null || LINKING.has(expect.type);
      const prefix = await this.#read(copy, wantsAll ? undefined : PREFIX_BYTES);
      const header = decodeHeader(id, prefix);
      copy.type = header.type;
      copy.rawSize = header.rawSize;
      copy.depth = 0;
      if (header.codec === Codec.delta) {
        const delta = parseDeltaPayload(id, prefix.subarray(HEADER_SIZE));
        copy.bases = delta.bases;
        copy.depth = delta.depth;
      }
      if (!LINKING.has(header.type)) {
        copy.status = 'header-ok';
        return;
      }
      const record = wantsAll ? prefix : await this.#read(copy, undefined);
      const object = await this.repo.objects.decodeVerified(id, record);
      this.contents.set(id, object.data);
      copy.status = 'ok';
      this.stats.verified++;
      this.stats.verifiedBytes += record.length;
    } catch (error) {
      if (!(error instanceof MediaGitError)) throw error;
      copy.status = 'bad';
      copy.reason = reasonOf(error);
    }
  }

  /** A copy's stored bytes (at most `limit` of them). */
  async #read(copy: Copy, limit: number | undefined): Promise<Buffer> {
    let handle: fs.FileHandle;
    let close = false;
    try {
      if (copy.pack) {
        let opening = this.#handles.get(copy.file);
        if (!opening) {
          opening = fs.open(copy.file, 'r');
          opening.catch(() => undefined);
          this.#handles.set(copy.file, opening);
        }
        handle = await opening;
      } else {
        handle = await fs.open(copy.file, 'r');
        close = true;
      }
    } catch (error) {
      throw new MediaGitError('OBJECT_CORRUPT', String(error), {
        kind: 'corrupt',
        data: {
          reason: `cannot be read: ${error instanceof Error ? error.message : String(error)}`,
        },
      });
    }
    try {
      const length = copy.length >= 0 ? copy.length : (await handle.stat()).size;
      const want = Math.min(length, limit ?? length);
      const buffer = Buffer.allocUnsafe(want);
      let done = 0;
      while (done < want) {
        const { bytesRead } = await handle.read(buffer, done, want - done, copy.offset + done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
      if (done < want) {
        throw new MediaGitError('OBJECT_CORRUPT', 'cut short', {
          kind: 'corrupt',
          data: { reason: 'record is cut short in its file' },
        });
      }
      return buffer;
    } finally {
      if (close) await handle.close();
    }
  }

  /** The type and size what names the object expects. */
  #checkExpectation(id: ObjectId, copy: Copy, expect: Expect): void {
    const type = copy.type;
    if (!type || expect.type === null) return;
    const fits = type === expect.type || (isFileContent(type) && isFileContent(expect.type));
    if (!fits) {
      this.#objectProblem('bad-link', id, type, `is a ${type}, but is named as a ${expect.type}`);
      return;
    }
    if (isFileContent(type) && expect.size !== undefined && copy.rawSize !== expect.size) {
      this.#objectProblem(
        'bad-link',
        id,
        type,
        `holds ${copy.rawSize} bytes, but what names it says ${expect.size}`,
      );
    }
  }

  /** A delta's depth byte is 1 + its deepest base's (a loop or a lie fails this). */
  checkDeltaDepths(): void {
    for (const [id, examined] of this.visited) {
      const copy = examined.copy;
      if (!copy?.bases) continue;
      const depths = copy.bases.map((base) => this.visited.get(base)?.copy?.depth);
      if (depths.some((depth) => depth === undefined)) continue; // a base is missing: reported so
      const expected = 1 + Math.max(...(depths as number[]));
      if (copy.depth !== expected) {
        this.#objectProblem(
          'bad-delta',
          id,
          copy.type ?? null,
          `delta chain depth says ${copy.depth}, its bases make it ${expected}`,
        );
      }
    }
  }

  // -- 4. the report -------------------------------------------------------

  #fileProblem(kind: ProblemKind, file: string, reason: string): void {
    this.problems.push({
      kind,
      id: null,
      type: null,
      reason,
      file,
      goodCopy: false,
      objects: [],
      paths: [],
      commits: [],
      refs: [],
    });
  }

  #objectProblem(
    kind: ProblemKind,
    id: ObjectId,
    type: ObjectTypeName | null,
    reason: string,
  ): void {
    this.problems.push({
      kind,
      id,
      type,
      reason,
      file: null,
      goodCopy: false,
      objects: [],
      ...this.dependents(id),
    });
  }

  /** Walks the backward links from `id` to the paths, commits and refs that need it. */
  dependents(id: ObjectId): Dependents {
    const paths = new Set<string>();
    const commits = new Set<ObjectId>();
    const refs = new Set<string>();
    const startType = this.typeOf(id);
    const stack: { id: string; suffix: string }[] = [{ id, suffix: '' }];
    const seen = new Set<string>();
    let steps = 0;
    const full = (): boolean => paths.size >= DEPENDENTS_SHOWN && commits.size >= DEPENDENTS_SHOWN;
    while (stack.length > 0 && steps++ < 10_000 && !full()) {
      const { id: at, suffix } = stack.pop()!;
      const key = `${at}\0${suffix}`;
      if (seen.has(key)) continue;
      seen.add(key);
      for (const edge of this.edges.get(at) ?? []) {
        const joined = (name: string): string => (suffix ? `${name}/${suffix}` : name);
        switch (edge.kind) {
          case 'entry':
            stack.push({ id: edge.from, suffix: joined(edge.name!) });
            break;
          case 'tree':
            add(commits, edge.from);
            if (suffix) add(paths, suffix);
            if (startType === 'tree' && at === id) stack.push({ id: edge.from, suffix: '' });
            break;
          case 'parent':
            // A commit's children depend on it; a file's commits are found through trees.
            if (at === id || startType === 'tag') add(commits, edge.from);
            break;
          case 'chunk':
          case 'base':
          case 'tag':
            stack.push({ id: edge.from, suffix });
            break;
          case 'root':
            add(refs, edge.from);
            if (edge.name) add(paths, edge.name);
            break;
        }
      }
      // A commit or tag: the refs that name it.
      if (
        at !== id &&
        suffix === '' &&
        (this.typeOf(at) === 'commit' || this.typeOf(at) === 'tag')
      ) {
        for (const edge of this.edges.get(at) ?? []) if (edge.kind === 'root') add(refs, edge.from);
      }
    }
    return { paths: [...paths], commits: [...commits], refs: [...refs] };
  }

  typeOf(id: ObjectId): ObjectTypeName | null {
    const copy = this.visited.get(id)?.copy ?? this.copies.get(id)?.find((c) => c.type);
    return copy?.type ?? this.expected.get(id)?.type ?? null;
  }

  report(): FsckReport {
    const fetch = new Map<ObjectId, ObjectTypeName | null>();
    const badLoose: ObjectId[] = [];
    const readableGood = (list: readonly Copy[]): boolean =>
      list.some(
        (c) => (c.status === 'ok' || c.status === 'header-ok') && (c.pack?.readable ?? true),
      );

    // Reachable objects: missing, or with no good copy a reader can use.
    for (const [id, examined] of this.visited) {
      const list = this.copies.get(id) ?? [];
      const type = examined.copy?.type ?? this.expected.get(id)?.type ?? null;
      const promisable = type === 'chunk' || type === 'manifest' || type === 'blob';
      if (list.length === 0 && promisable && this.repo.objects.contentSource) {
        this.stats.promised = (this.stats.promised ?? 0) + 1;
      } else if (list.length === 0) {
        fetch.set(id, type);
        this.problems.push({
          kind: 'missing',
          id,
          type,
          reason: 'is missing',
          file: null,
          goodCopy: false,
          objects: [],
          ...this.dependents(id),
        });
      } else if (!readableGood(list)) {
        fetch.set(id, type);
      }
    }
    // Every copy found bad (all of them with `full`), reachable or not.
    for (const [id, list] of this.copies) {
      const bad = list.filter((c) => c.status === 'bad');
      if (bad.length === 0) continue;
      const good = readableGood(list);
      const first = bad[0]!;
      const type = first.type ?? this.typeOf(id);
      if (!good && !this.visited.has(id)) fetch.set(id, type);
      if (good && bad.some((c) => c.pack === undefined)) badLoose.push(id);
      // A record of a pack readers refuse is the pack's problem, unless nothing better exists.
      if (bad.every((c) => c.pack && !c.pack.readable) && (good || !this.visited.has(id))) continue;
      this.problems.push({
        kind: 'corrupt',
        id,
        type,
        reason: first.reason ?? 'does not verify',
        file: this.rel(first.file),
        goodCopy: good,
        objects: [],
        ...this.dependents(id),
      });
    }

    // Damaged packs and indexes, with the objects readers find nowhere else.
    const damaged: DamagedPack[] = [];
    const affected = (pack: PackInfo): AffectedObject[] =>
      pack.entries
        .filter((entry) => !readableGood(this.copies.get(entry.id) ?? []))
        .map((entry) => ({
          id: entry.id,
          type: this.typeOf(entry.id),
          ...this.dependents(entry.id),
        }));
    for (const pack of this.packs) {
      const bad = new Set<ObjectId>();
      const good = new Set<ObjectId>();
      for (const entry of pack.entries) {
        const copy = this.copies
          .get(entry.id)
          ?.find((c) => c.pack === pack && c.offset === entry.offset);
        if (copy?.status === 'bad') bad.add(entry.id);
        else if (copy?.status === 'ok') good.add(entry.id);
      }
      if (pack.problems.length > 0 || bad.size > 0 || !pack.readable)
        damaged.push({ info: pack, bad, good });
      for (const problem of pack.problems) {
        const isIndex = problem.file.endsWith('.idx');
        this.problems.push({
          kind: isIndex ? 'corrupt-pack-index' : 'corrupt-pack',
          id: null,
          type: null,
          reason: problem.reason,
          file: this.rel(problem.file),
          goodCopy: false,
          objects: pack.readable ? [] : affected(pack),
          paths: [],
          commits: [],
          refs: [],
        });
      }
    }
    for (const problem of this.indexProblems) {
      const named = this.packs.filter((pack) => pack.multiIndex === problem.file);
      this.problems.push({
        kind: 'corrupt-pack-index',
        id: null,
        type: null,
        reason: problem.reason,
        file: this.rel(problem.file),
        goodCopy: false,
        objects: named.flatMap(affected),
        paths: [],
        commits: [],
        refs: [],
      });
    }

    let reachable = 0;
    for (const id of this.visited.keys()) if (this.copies.has(id)) reachable++;
    this.stats.reachable = reachable;
    this.stats.unreachable = this.stats.objects - reachable;
    const order: ProblemKind[] = [
      'bad-ref',
      'bad-reflog',
      'bad-state',
      'corrupt-index',
      'corrupt-pack-index',
      'corrupt-pack',
      'missing',
      'corrupt',
      'bad-delta',
      'bad-link',
    ];
    const problems = this.problems.sort(
      (a, b) =>
        order.indexOf(a.kind) - order.indexOf(b.kind) ||
        (a.file ?? '').localeCompare(b.file ?? '') ||
        (a.id ?? '').localeCompare(b.id ?? ''),
    );
    return {
      ok: problems.length === 0,
      full: this.full,
      problems,
      stats: this.stats,
      damage: { fetch, badLoose, packs: damaged, index: this.indexCorrupt, copies: this.copies },
    };
  }
}

function add<T>(set: Set<T>, value: T): void {
  if (set.size < DEPENDENTS_SHOWN) set.add(value);
}

function reasonOf(error: MediaGitError): string {
  return typeof error.data['reason'] === 'string' ? error.data['reason'] : error.message;
}

async function readText(file: string): Promise<string | undefined> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (error) {
    if (hasErrnoCode(error, 'ENOENT') || hasErrnoCode(error, 'EISDIR')) return undefined;
    throw error;
  }
}

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  let entries;
  try {
    entries = await fs.readdir(dir, { withFileTypes: true });
  } catch (error) {
    if (hasErrnoCode(error, 'ENOENT')) return out;
    throw error;
  }
  for (const entry of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await filesUnder(full)));
    else if (entry.isFile()) out.push(full);
  }
  return out;
}
