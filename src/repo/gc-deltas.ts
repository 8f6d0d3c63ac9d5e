/**
 * `gc --aggressive` recomputes deltas (docs/gc.md, "--aggressive: deltas
 * recomputed"), as `git gc --aggressive` does with a larger window: before
 * the reachable blobs and chunks go into gc's new pack, each is weighed
 * again for delta encoding against similar reachable objects, and its
 * record is rewritten when that stores it in clearly fewer bytes, when its
 * chain has grown too deep, or when only its depth byte has to follow a base
 * that changed. Object IDs never change: they hash the content, not the
 * encoding.
 *
 * Vocabulary:
 * - a _node_ is a blob or chunk whose encoding matters here: a delta, a
 *   base of one, or a candidate;
 * - a _candidate_ is a reachable blob or chunk of 4 KiB to 16 MiB whose
 *   file's format allows deltas (media/storage-profile.ts; a chunk of any
 *   format may be a delta against chunks of the same path, as `add`'s
 *   nearby deltas are), with a similarity sketch: it may be re-encoded
 *   (unless pinned) and may serve as a base;
 * - _old edges_ are the delta links of every stored copy of an object,
 *   _new edges_ those this pass writes.
 *
 * Safety rules, which hold whatever copies a reader or a crash leaves:
 * 1. Nodes are processed in one order (history order, oldest first,
 *    adjusted so that every old base comes before its delta) and a new
 *    delta only ever uses earlier nodes: old and new edges together have no
 *    cycle, so no mix of old and new copies can loop.
 * 2. For every node, the longest chain of old edges above it plus the
 *    longest chain of old or new edges below it stays within
 *    MAX_DELTA_DEPTH: any mix of copies reads within the reader's limit.
 * 3. In the new encoding, a delta's depth byte is 1 + its bases' (fsck
 *    checks it) and stays within its category's depth; an object whose
 *    bases' depths changed gets its depth byte rewritten.
 * 4. Objects that stay byte for byte (unreachable ones gc keeps for now)
 *    pin their bases, transitively: those keep their encoding and depth.
 * 5. Every rewritten record is decoded back to its ID before it is written;
 *    records are staged as fsynced temp files and only then renamed over
 *    (or beside) the loose copies, bases first, so readers prefer them at
 *    once; gc then packs them, verifies the pack, and deletes the old
 *    copies (gc.ts).
 *
 * Bounds: at most MAX_CANDIDATES candidates (the newest in history order),
 * each holding its 128-byte sketch and a few numbers; a candidate looks for
 * bases only among the WINDOW most recent earlier candidates sharing each
 * of its LOOKUP_VALUES smallest sketch values, compares COMPARE_LIMIT of
 * them, and is tried against one base set (plus a whole encoding when its
 * chain must shrink). Time is one decode of each candidate without a
 * cached sketch, plus at most two encodings per target.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { LRUCache } from 'lru-cache';
import { NO_FEATURE, sketchOf } from '../chunking/sketch.ts';
import {
  classifyContent,
  Codec,
  decodeDelta,
  encode,
  encodeDelta,
  encodeWithPolicy,
} from '../compression/codec.ts';
import { corruptObject, hasErrnoCode, MediaGitError } from '../errors.ts';
import { DETECT_HEAD_BYTES, detectFormat } from '../media/detect.ts';
import { storageProfileFor } from '../media/storage-profile.ts';
import {
  appendSketchRecords,
  chooseBases,
  deltaPrefix,
  MAX_BASE_BYTES,
  MAX_DELTA_DEPTH,
  parseDeltaPayload,
  readSketchRecords,
  type DeltaOptions,
  type SketchRecord,
} from '../odb/delta.ts';
import { objectIdOf, type ObjectId } from '../odb/object-id.ts';
import {
  decodeHeader,
  encodeHeader,
  HEADER_SIZE,
  type ObjectStore,
  type ObjectTypeName,
} from '../odb/object-store.ts';
import { eachLimited } from '../storage/concurrency.ts';
import { LockFile, tempName, writeFileAtomic } from '../storage/durable-file.ts';
import { otherCopyBases, PREFIX_BYTES } from './gc-copies.ts';
import {
  MinHeap,
  walkHistory,
  type FilePolicy,
  type FileVersion,
  type History,
} from './gc-history.ts';
import type { Repository } from './repository.ts';

/** Smaller objects have too few sketch features to compare (chunking/sketch.ts). */
const MIN_OBJECT_BYTES = 4 * 1024;
/** Larger objects are neither re-encoded nor bases (bases are read into memory). */
const MAX_OBJECT_BYTES = MAX_BASE_BYTES;
/** Candidates per run: the newest in history order (about 60 MiB of state). */
export const MAX_CANDIDATES = 1 << 18;
/** A candidate's smallest sketch values looked up for bases. */
const LOOKUP_VALUES = 8;
/** Earlier candidates scanned per looked-up value, the most recent first (Git's --window). */
export const WINDOW = 64;
/** Candidates whose sketches are compared in full, those sharing most values first. */
const COMPARE_LIMIT = 8;
/** A re-encoding must store the object in at least this fraction fewer bytes. */
const MIN_SAVING = 1 / 16;
/**
 * Chunks of a format whose category sets no delta policy may still be
 * deltas against chunks of the same path, as `add`'s nearby deltas are.
 */
const SAME_PATH: DeltaOptions = { minSimilarity: 0.5, maxDepth: 3 };
const DECODED_CACHE_BYTES = 64 * 1024 * 1024;
/** Sort keys are `value * RANK_SCALE + rank`, exact in a double. */
const RANK_SCALE = 2 ** 20;
const PARALLEL_READS = 16;
const PARALLEL_DECODES = 4;

/** What the pass did, reported by gc (`deltas` in `gc --json`). */
export interface DeltaStats {
  /** Candidates weighed (reachable blobs and chunks of 4 KiB to 16 MiB with a sketch). */
  readonly considered: number;
  /** Objects now stored as deltas against bases this pass chose. */
  readonly deltasMade: number;
  /** Deltas stored whole again because their chain would have grown too deep. */
  readonly madeWhole: number;
  /** Delta records whose depth byte alone was rewritten. */
  readonly depthsRewritten: number;
  /** Stored bytes of the rewritten records before, minus after. */
  readonly bytesSaved: number;
  /** Candidates left as they are because of MAX_CANDIDATES. */
  readonly leftOut: number;
  /** Deltas written by other commands during gc whose depth byte was fixed under gc.lock. */
  readonly concurrentFixed: number;
  /** Why nothing was reconsidered, if so. */
  readonly skipped: string | undefined;
}

export interface DeltaPassInput {
  /** What gc's new pack will hold. */
  readonly toPack: ReadonlySet<ObjectId>;
  /** What gc's mark reached. */
  readonly marked: ReadonlySet<ObjectId>;
  /** The loose objects gc listed, and its prune date: those it keeps stay byte for byte. */
  readonly loose: readonly { readonly id: ObjectId; readonly mtimeMs: number }[];
  readonly cutoff: number;
  readonly signal?: AbortSignal | undefined;
  readonly onProgress?: ((event: { bytes: number; total: number }) => void) | undefined;
}

/** Parsed front of a stored record. */
interface Prefix {
  readonly type: ObjectTypeName;
  readonly codec: Codec;
  readonly rawSize: number;
  readonly storedSize: number;
  readonly bases: readonly ObjectId[] | undefined;
  readonly depth: number;
}

interface Node {
  readonly id: ObjectId;
  readonly type: ObjectTypeName;
  readonly rawSize: number;
  readonly storedSize: number;
  /** Depth byte of the stored record (0: whole). */
  readonly depthByte: number;
  readonly marked: boolean;
  /** Bases of the copy readers use (what gc packs). */
  bases: Node[] | undefined;
  /** Bases of its other stored copies (old edges too). */
  otherBases: Node[];
  /** Keeps its record byte for byte (rule 4). */
  pinned: boolean;
  /** History order (oldest first); Infinity when history does not name it. */
  order: number;
  /** Its file (history walk), or -1. */
  file: number;
  sketch: Uint32Array | undefined;
  /** Depth recorded in the sketch cache, or -1 when the cache has none. */
  cachedDepth: number;
  /** Position among candidates in processing order, or -1. */
  rank: number;
  /** Longest chain of old edges above it. */
  upOld: number;
  /** Longest chain of old or new edges below it (rule 2). */
  down: number;
  /** Depth in the new encoding. */
  depth: number;
  placed: boolean;
}

/** Runs the pass, under `objects/info/gc-deltas.lock`; see the overview. */
export async function recomputeDeltas(repo: Repository, input: DeltaPassInput): Promise<DeltaPass> {
  const store = repo.objects;
  for (const id of input.marked) {
    if (!input.toPack.has(id)) {
      return DeltaPass.skipped(store, 'not every reachable object is being repacked');
    }
  }
  let lock: LockFile;
  try {
    lock = await LockFile.acquire(path.join(store.objectsDir, 'info', 'gc-deltas'));
  } catch (error) {
    if (!hasErrnoCode(error, 'EEXIST')) throw error;
    return DeltaPass.skipped(store, 'another gc --aggressive is recomputing deltas');
  }
  // Held while planning and installing: a pass that starts later plans
  // from the records this one installed (and the links of every copy).
  const pass = new DeltaPass(store);
  try {
    await pass.run(repo, input);
  } finally {
    await lock.release();
  }
  return pass;
}

/**
 * The pass and what it leaves for gc: the loose files it created (gc
 * deletes them once its pack holds them) and `settle`, run under gc.lock.
 */
export class DeltaPass {
  readonly #store: ObjectStore;
  readonly #nodes = new Map<ObjectId, Node>();
  /** Nodes whose record this pass rewrote, with their new depths. */
  readonly #rewritten = new Map<ObjectId, number>();
  /** Candidates whose sketch or depth the cache does not hold yet. */
  readonly #sketchUpdates: Node[] = [];
  /** Loose files the pass created where there was none. */
  readonly createdLoose: { id: ObjectId; size: number; mtimeMs: number }[] = [];
  #stats: {
    considered: number;
    deltasMade: number;
    madeWhole: number;
    depthsRewritten: number;
    bytesSaved: number;
    leftOut: number;
    concurrentFixed: number;
    skipped: string | undefined;
  } = {
    considered: 0,
    deltasMade: 0,
    madeWhole: 0,
    depthsRewritten: 0,
    bytesSaved: 0,
    leftOut: 0,
    concurrentFixed: 0,
    skipped: undefined,
  };

  constructor(store: ObjectStore) {
    this.#store = store;
  }

  static skipped(store: ObjectStore, reason: string): DeltaPass {
    const pass = new DeltaPass(store);
    pass.#stats.skipped = reason;
    return pass;
  }

  get stats(): DeltaStats {
    return { ...this.#stats };
  }

  async run(repo: Repository, input: DeltaPassInput): Promise<void> {
    const history = await walkHistory(repo, input.marked, input.signal);
    const looseIds = new Set(input.loose.map((o) => o.id));
    const { order, broken } = await this.#collectNodes(history, input, looseIds);
    const candidates = await this.#candidates(order, broken, history, input);
    const staged: { id: ObjectId; tmp: string }[] = [];
    try {
      await this.#plan(order, candidates, history, input, staged);
      await this.#install(staged, looseIds);
    } finally {
      for (const { tmp } of staged) await fs.rm(tmp, { force: true });
    }
  }

  /**
   * Steps 1 to 3: the nodes (every blob or chunk gc packs or keeps that is a
   * delta, may be a candidate, or is a base of either) with the links of
   * every stored copy; their processing order; pins (rule 4); `upOld`.
   */
  async #collectNodes(
    history: History,
    input: DeltaPassInput,
    looseIds: ReadonlySet<ObjectId>,
  ): Promise<{ order: Node[]; broken: Set<Node> }> {
    const store = this.#store;
    const nodes = this.#nodes;
    const staying = input.loose
      .filter((o) => !input.marked.has(o.id) && o.mtimeMs >= input.cutoff)
      .map((o) => o.id);
    const survey = [...input.toPack].filter((id) => !history.metadata.has(id));
    survey.push(...staying.filter((id) => !input.toPack.has(id)));
    const broken = new Set<Node>();
    const addNode = (id: ObjectId, prefix: Prefix): Node => {
      const order = history.order.get(id);
      const node: Node = {
        id,
        type: prefix.type,
        rawSize: prefix.rawSize,
        storedSize: prefix.storedSize,
        depthByte: prefix.depth,
        marked: input.marked.has(id),
        bases: undefined,
        otherBases: [],
        pinned: false,
        order: order ?? Infinity,
        file: order === undefined ? -1 : history.owner[order]!,
        sketch: undefined,
        cachedDepth: -1,
        rank: -1,
        upOld: 0,
        down: 0,
        depth: prefix.depth,
        placed: false,
      };
      nodes.set(id, node);
      return node;
    };
    const baseIds = new Map<Node, readonly ObjectId[]>();
    await eachLimited(survey, PARALLEL_READS, async (id) => {
      input.signal?.throwIfAborted();
      const prefix = await readPrefix(store, id).catch((error: unknown) => {
        if (error instanceof MediaGitError) return undefined; // gone or damaged: packing reports it
        throw error;
      });
      if (prefix?.type !== 'blob' && prefix?.type !== 'chunk') return;
      const fits = prefix.rawSize >= MIN_OBJECT_BYTES && prefix.rawSize <= MAX_OBJECT_BYTES;
      if (!prefix.bases && !(fits && input.marked.has(id))) return;
      const node = addNode(id, prefix);
      if (prefix.bases) baseIds.set(node, prefix.bases);
    });
    const otherCopies = await otherCopyBases(store, looseIds, () => true);
    // Bases not met yet (whole objects too large or small to be candidates).
    const resolve = async (id: ObjectId): Promise<Node | undefined> => {
      const known = nodes.get(id);
      if (known) return known;
      let prefix: Prefix;
      try {
        prefix = await readPrefix(store, id);
      } catch (error) {
        if (error instanceof MediaGitError) return undefined;
        throw error;
      }
      const node = addNode(id, prefix);
      if (prefix.bases) baseIds.set(node, prefix.bases);
      await link(node);
      return node;
    };
    const link = async (node: Node): Promise<void> => {
      const ids = baseIds.get(node);
      if (ids) {
        node.bases = [];
        for (const id of ids) {
          const base = await resolve(id);
          if (base) node.bases.push(base);
          else broken.add(node);
        }
      }
      for (const id of otherCopies.get(node.id) ?? []) {
        const base = await resolve(id);
        if (base && !node.otherBases.includes(base)) node.otherBases.push(base);
      }
    };
    for (const node of [...nodes.values()]) await link(node);

    // History order, every base (of any copy) first. Nodes left out lie on
    // a cycle (a damaged repository): they are left be.
    const order = topologicalOrder([...nodes.values()]);
    for (const node of nodes.values()) {
      if (!node.placed) {
        broken.add(node);
        node.upOld = MAX_DELTA_DEPTH;
      }
    }
    const pinQueue = [...nodes.values()].filter((n) => !n.marked || broken.has(n));
    for (let node = pinQueue.pop(); node; node = pinQueue.pop()) {
      if (node.pinned) continue;
      node.pinned = true;
      pinQueue.push(...(node.bases ?? []), ...node.otherBases);
    }
    for (let i = order.length - 1; i >= 0; i--) {
      const node = order[i]!;
      for (const base of [...(node.bases ?? []), ...node.otherBases]) {
        base.upOld = Math.max(base.upOld, node.upOld + 1);
      }
    }
    for (const node of broken) {
      for (const base of node.bases ?? []) base.upOld = MAX_DELTA_DEPTH;
    }
    return { order, broken };
  }

  /**
   * Step 4: the candidates, in processing order and ranked so: reachable
   * nodes of 4 KiB to 16 MiB in files whose format allows deltas, each with
   * its sketch (cached, or computed from its bytes). Decoding each file's
   * first object gives its format.
   */
  async #candidates(
    order: readonly Node[],
    broken: ReadonlySet<Node>,
    history: History,
    input: DeltaPassInput,
  ): Promise<Node[]> {
    const store = this.#store;
    const sized = order.filter(
      (n) =>
        n.marked &&
        !broken.has(n) &&
        n.file >= 0 &&
        n.rawSize >= MIN_OBJECT_BYTES &&
        n.rawSize <= MAX_OBJECT_BYTES,
    );
    const heads = new Map<ObjectId, number[]>();
    for (const file of new Set(sized.map((n) => n.file))) {
      const head = history.files[file]!.head;
      heads.set(head, [...(heads.get(head) ?? []), file]);
    }
    const cached = await readSketchRecords(store.objectsDir, (id) => this.#nodes.has(id));
    for (const node of sized) {
      const record = cached.get(node.id);
      if (record && record.length === node.rawSize) {
        node.sketch = record.sketch;
        node.cachedDepth = record.depth;
      }
    }
    const sizedSet = new Set(sized);
    let decoded = 0;
    let total = heads.size;
    const sketch = (node: Node | undefined, data: Buffer): void => {
      if (!node || node.sketch || !sizedSet.has(node)) return;
      node.sketch = sketchOf(data);
      if (node.sketch) this.#sketchUpdates.push(node);
    };
    await eachLimited([...heads.keys()], PARALLEL_DECODES, async (id) => {
      input.signal?.throwIfAborted();
      const data = (await store.read(id)).data;
      for (const file of heads.get(id)!) {
        const version = history.files[file]!;
        version.policy = policyFor(data.subarray(0, DETECT_HEAD_BYTES), version);
      }
      const node = this.#nodes.get(id);
      if (node && allowsDelta(node, history)) sketch(node, data);
      input.onProgress?.({ bytes: ++decoded, total });
    });
    let candidates = sized.filter((n) => allowsDelta(n, history));
    if (candidates.length > MAX_CANDIDATES) {
      const byAge = [...candidates].sort((a, b) => a.order - b.order || (a.id < b.id ? -1 : 1));
      const kept = new Set(byAge.slice(byAge.length - MAX_CANDIDATES));
      this.#stats.leftOut = candidates.length - kept.size;
      candidates = candidates.filter((n) => kept.has(n));
    }
    const unsketched = candidates.filter((n) => !n.sketch);
    total += unsketched.length;
    await eachLimited(unsketched, PARALLEL_DECODES, async (node) => {
      input.signal?.throwIfAborted();
      sketch(node, (await store.read(node.id)).data);
      input.onProgress?.({ bytes: ++decoded, total });
    });
    candidates = candidates.filter((n) => n.sketch !== undefined);
    candidates.forEach((node, rank) => (node.rank = rank));
    this.#stats.considered = candidates.length;
    return candidates;
  }

  /** Steps 5 and 6: each node's decision, in order; new records staged as temp files. */
  async #plan(
    order: readonly Node[],
    candidates: readonly Node[],
    history: History,
    input: DeltaPassInput,
    staged: { id: ObjectId; tmp: string }[],
  ): Promise<void> {
    const store = this.#store;
    // Each candidate's smallest sketch values, as `value * RANK_SCALE + rank`, sorted.
    const keys = new Float64Array(candidates.length * LOOKUP_VALUES);
    let used = 0;
    for (const node of candidates) {
      for (let k = 0; k < LOOKUP_VALUES; k++) {
        const value = node.sketch![k]!;
        if (value === NO_FEATURE) break;
        keys[used++] = value * RANK_SCALE + node.rank;
      }
    }
    const table = keys.subarray(0, used).sort();
    const content = new LRUCache<ObjectId, Buffer>({
      maxSize: DECODED_CACHE_BYTES,
      sizeCalculation: (value) => Math.max(1, value.length),
    });
    const read = async (id: ObjectId): Promise<Buffer> => {
      let data = content.get(id);
      if (!data) {
        data = (await store.read(id)).data;
        if (data.length <= DECODED_CACHE_BYTES / 4) content.set(id, data);
      }
      return data;
    };
    let done = 0;
    for (const node of order) {
      input.signal?.throwIfAborted();
      const record = await this.#decide(node, candidates, table, history, read);
      if (record) {
        await store.decodeVerified(node.id, record);
        const tmp = tempName(store.tmpDir, 'gc-delta');
        staged.push({ id: node.id, tmp });
        await writeDurable(tmp, record);
        this.#rewritten.set(node.id, node.depth);
        this.#stats.bytesSaved += node.storedSize - record.length;
      } else if (node.rank >= 0 && node.cachedDepth >= 0 && node.cachedDepth !== node.depth) {
        this.#sketchUpdates.push(node);
      }
      input.onProgress?.({ bytes: ++done, total: order.length });
    }
  }

  /**
   * Renames the staged records into place, bases first (each record's bases
   * are already in their final form), and makes the folders durable.
   */
  async #install(
    staged: { id: ObjectId; tmp: string }[],
    looseIds: ReadonlySet<ObjectId>,
  ): Promise<void> {
    const store = this.#store;
    let installed = 0;
    try {
      for (const { id, tmp } of staged) {
        const final = store.pathOf(id);
        await fs.mkdir(path.dirname(final), { recursive: true });
        await fs.rename(tmp, final);
        installed++;
        store.dirSync.add(path.dirname(final));
        if (!looseIds.has(id)) {
          this.createdLoose.push({ id, size: (await fs.stat(final)).size, mtimeMs: Date.now() });
        }
      }
    } finally {
      staged.splice(0, installed);
    }
    await store.flush();
  }

  /** The new record of `node`, or undefined to keep it; sets its depth and reach. */
  async #decide(
    node: Node,
    candidates: readonly Node[],
    table: Float64Array,
    history: History,
    read: (id: ObjectId) => Promise<Buffer>,
  ): Promise<Buffer | undefined> {
    const old = node.bases;
    const keepDepth = old ? 1 + Math.max(...old.map((b) => b.depth)) : 0;
    const oldDown = Math.max(0, ...[...(old ?? []), ...node.otherBases].map((b) => 1 + b.down));
    node.depth = keepDepth;
    node.down = oldDown;
    // Candidates are in files that allow deltas (#candidates).
    const policy = node.file >= 0 ? history.files[node.file]!.policy : undefined;
    if (policy && node.rank >= 0 && !node.pinned) {
      const keepValid = !old || keepDepth <= policy.delta.maxDepth;
      const found = this.#findBases(node, policy, candidates, table, history);
      const same =
        found && old && found.length === old.length && found.every((b, i) => b === old[i]);
      let best: { record: Buffer; bases: Node[] | undefined } | undefined;
      if (found && !same) {
        const data = await read(node.id);
        const dictionary = Buffer.concat(await Promise.all(found.map((b) => read(b.id))));
        const depth = 1 + Math.max(...found.map((b) => b.depth));
        const frame = await encodeDelta(data, dictionary);
        const record = Buffer.concat([
          encodeHeader(node.type, Codec.delta, node.rawSize),
          deltaPrefix(
            found.map((b) => b.id),
            depth,
          ),
          frame,
        ]);
        if (!keepValid || record.length <= node.storedSize * (1 - MIN_SAVING)) {
          best = { record, bases: found };
        }
      }
      if (!keepValid) {
        const data = await read(node.id);
        const whole =
          policy.compression === 'auto'
            ? await encode(data, classifyContent(data.subarray(0, 64 * 1024)))
            : await encodeWithPolicy(data, policy.compression);
        const record = Buffer.concat([
          encodeHeader(node.type, whole.codec, node.rawSize),
          whole.payload,
        ]);
        if (!best || record.length < best.record.length) best = { record, bases: undefined };
      }
      if (best) {
        if (best.bases) {
          node.depth = 1 + Math.max(...best.bases.map((b) => b.depth));
          node.down = Math.max(oldDown, ...best.bases.map((b) => 1 + b.down));
          this.#stats.deltasMade++;
        } else {
          node.depth = 0;
          this.#stats.madeWhole++;
        }
        this.#checkLimits(node);
        return best.record;
      }
    }
    if (!old || keepDepth === node.depthByte || node.pinned) {
      // What fsck compares a delta's depth byte with is its base's byte.
      node.depth = node.depthByte;
      return undefined;
    }
    this.#checkLimits(node);
    // Its bases' depths changed: only its depth byte does.
    const record = Buffer.from(await this.#store.readRecord(node.id));
    const at = HEADER_SIZE + 1 + 32 * old.length;
    if (record[at] !== node.depthByte) {
      throw new MediaGitError(
        'GC_CONCURRENT',
        `object ${node.id} was stored again while gc --aggressive re-encoded it; run gc again`,
        { kind: 'conflict', data: { id: node.id } },
      );
    }
    record[at] = keepDepth;
    this.#stats.depthsRewritten++;
    return record;
  }

  /** Rules 2 and 3, which the choice of bases keeps; a failure here is a bug. */
  #checkLimits(node: Node): void {
    if (node.upOld + node.down > MAX_DELTA_DEPTH || node.depth > MAX_DELTA_DEPTH) {
      throw new MediaGitError(
        'GC_DELTA_LIMIT',
        `gc would leave object ${node.id} on a delta chain of more than ${MAX_DELTA_DEPTH}`,
        { kind: 'internal', data: { id: node.id } },
      );
    }
  }

  /** Bases for a target among earlier candidates (see the overview's bounds). */
  #findBases(
    node: Node,
    policy: FilePolicy,
    candidates: readonly Node[],
    table: Float64Array,
    history: History,
  ): Node[] | undefined {
    const hits = new Map<number, number>();
    const sketch = node.sketch!;
    for (let k = 0; k < LOOKUP_VALUES; k++) {
      const value = sketch[k]!;
      if (value === NO_FEATURE) break;
      const base = value * RANK_SCALE;
      const lo = lowerBound(table, base);
      const hi = lowerBound(table, base + node.rank);
      for (let j = hi - 1; j >= Math.max(lo, hi - WINDOW); j--) {
        const rank = table[j]! - base;
        hits.set(rank, (hits.get(rank) ?? 0) + 1);
      }
    }
    const path = history.files[node.file]!.path;
    const eligible = [...hits]
      .map(([rank, count]) => ({ base: candidates[rank]!, count, rank }))
      .filter(
        ({ base }) =>
          base.depth + 1 <= policy.delta.maxDepth &&
          node.upOld + 1 + base.down <= MAX_DELTA_DEPTH &&
          (!policy.samePath || (base.file >= 0 && history.files[base.file]!.path === path)),
      )
      .sort((a, b) => b.count - a.count || b.rank - a.rank)
      .slice(0, COMPARE_LIMIT)
      .map(({ base }) => base);
    const chosen = chooseBases(
      sketch,
      node.rawSize,
      eligible.map((base) => ({ sketch: base.sketch!, length: base.rawSize })),
      policy.delta.minSimilarity,
    );
    return chosen?.picks.map((pick) => eligible[pick]!);
  }

  /**
   * Under gc.lock, after gc's second mark: objects other commands wrote
   * during gc (`fresh`) may be deltas against objects whose depth this pass
   * changed, their depth byte then off by the difference. Each such delta
   * is rewritten loose (depth byte fixed, or stored whole if its chain
   * would pass MAX_DELTA_DEPTH), and the sketch cache learns the new
   * sketches and depths (writers, which append to it, are excluded here).
   */
  async settle(fresh: Iterable<ObjectId>): Promise<void> {
    if (this.#rewritten.size > 0) {
      const freshSet = new Set(fresh);
      const depths = new Map<ObjectId, number>();
      const visiting = new Set<ObjectId>();
      const depthOf = async (id: ObjectId): Promise<number> => {
        const node = this.#nodes.get(id);
        if (!freshSet.has(id) || visiting.has(id)) return node?.depth ?? 0;
        const known = depths.get(id);
        if (known !== undefined) return known;
        visiting.add(id);
        try {
          const depth = await this.#settleOne(id, depthOf);
          depths.set(id, depth);
          return depth;
        } finally {
          visiting.delete(id);
        }
      };
      for (const id of freshSet) await depthOf(id);
      await this.#store.flush();
    }
    await appendSketchRecords(
      this.#store.objectsDir,
      this.#sketchUpdates.map((node): SketchRecord => ({
        id: node.id,
        depth: node.depth,
        length: node.rawSize,
        sketch: node.sketch!,
      })),
    );
  }

  /** Checks (and fixes) one object written during gc; returns its depth. */
  async #settleOne(id: ObjectId, depthOf: (id: ObjectId) => Promise<number>): Promise<number> {
    const store = this.#store;
    let prefix: Prefix;
    try {
      prefix = await readPrefix(store, id);
    } catch (error) {
      if (error instanceof MediaGitError) return 0;
      throw error;
    }
    if (!prefix.bases) return 0;
    let expected = 0;
    for (const base of prefix.bases) expected = Math.max(expected, 1 + (await depthOf(base)));
    if (expected === prefix.depth) return expected;
    const record = Buffer.from(await store.readRecord(id));
    const delta = parseDeltaPayload(id, record.subarray(HEADER_SIZE));
    let depth = expected;
    if (expected <= MAX_DELTA_DEPTH) {
      record[HEADER_SIZE + 1 + 32 * delta.bases.length] = expected;
      await store.decodeVerified(id, record);
      await writeFileAtomic(store.pathOf(id), [record], {
        tmpDir: store.tmpDir,
        dirSync: store.dirSync,
      });
    } else {
      // Read through its bases one by one: each chain is within the limit.
      const bases = await Promise.all(delta.bases.map(async (b) => (await store.read(b)).data));
      const data = await decodeDelta(delta.frame, Buffer.concat(bases), prefix.rawSize);
      if (objectIdOf(prefix.type, data) !== id) throw corruptObject(id, 'delta does not decode');
      const whole = await encode(data, classifyContent(data.subarray(0, 64 * 1024)));
      await writeFileAtomic(
        store.pathOf(id),
        [encodeHeader(prefix.type, whole.codec, prefix.rawSize), whole.payload],
        { tmpDir: store.tmpDir, dirSync: store.dirSync },
      );
      depth = 0;
    }
    this.#stats.concurrentFixed++;
    return depth;
  }
}

/** Whether the node's file allows it deltas (same-path policies hold only chunks). */
function allowsDelta(node: Node, history: History): boolean {
  const policy = node.file >= 0 ? history.files[node.file]!.policy : undefined;
  return policy !== undefined && (node.type === 'chunk' || !policy.samePath);
}

/** A file's delta policy from its format (see the overview's "target"). */
function policyFor(head: Uint8Array, version: FileVersion): FilePolicy | undefined {
  const profile = storageProfileFor(detectFormat(head, version.path), version.size);
  if (profile.delta.enabled) {
    return {
      delta: { minSimilarity: profile.delta.minSimilarity, maxDepth: profile.delta.maxDepth },
      compression: profile.compression,
      samePath: false,
    };
  }
  return version.kind === 'manifest'
    ? { delta: SAME_PATH, compression: profile.compression, samePath: true }
    : undefined;
}

/**
 * Kahn's order over the nodes' links (bases of any copy before the delta),
 * taking the oldest ready node first; marks the nodes it places.
 */
function topologicalOrder(nodes: readonly Node[]): Node[] {
  const waiting = new Map<Node, number>();
  const dependents = new Map<Node, Node[]>();
  for (const node of nodes) {
    const bases = new Set([...(node.bases ?? []), ...node.otherBases]);
    bases.delete(node);
    waiting.set(node, bases.size);
    for (const base of bases) dependents.set(base, [...(dependents.get(base) ?? []), node]);
  }
  const before = (a: Node, b: Node): boolean =>
    a.order < b.order || (a.order === b.order && a.id < b.id);
  const heap = new MinHeap<Node>(before);
  for (const [node, count] of waiting) if (count === 0) heap.push(node);
  const out: Node[] = [];
  for (let node = heap.pop(); node; node = heap.pop()) {
    node.placed = true;
    out.push(node);
    for (const dependent of dependents.get(node) ?? []) {
      const left = waiting.get(dependent)! - 1;
      waiting.set(dependent, left);
      if (left === 0) heap.push(dependent);
    }
  }
  return out;
}

/** First position in the sorted `table` holding a value >= `key`. */
function lowerBound(table: Float64Array, key: number): number {
  let lo = 0;
  let hi = table.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (table[mid]! < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The header and delta prefix of the copy readers find first. */
async function readPrefix(store: ObjectStore, id: ObjectId): Promise<Prefix> {
  const handle = await store.open(id);
  try {
    const buffer = Buffer.alloc(PREFIX_BYTES);
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
    const header = decodeHeader(id, buffer.subarray(0, bytesRead));
    const storedSize = (await handle.stat()).size;
    if (header.codec !== Codec.delta) return { ...header, storedSize, bases: undefined, depth: 0 };
    const delta = parseDeltaPayload(id, buffer.subarray(HEADER_SIZE, bytesRead));
    return { ...header, storedSize, bases: delta.bases, depth: delta.depth };
  } finally {
    await handle.close();
  }
}

/** Writes `record` to a new file and fsyncs it. */
async function writeDurable(file: string, record: Buffer): Promise<void> {
  const handle = await fs.open(file, 'wx', 0o444);
  try {
    for (let done = 0; done < record.length;) {
      done += (await handle.write(record, done, record.length - done, done)).bytesWritten;
    }
    await handle.sync();
  } finally {
    await handle.close();
  }
}
