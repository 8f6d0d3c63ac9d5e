/**
 * Delta compression between similar objects (docs/format.md, "Deltas").
 *
 * An object may be stored as a delta against earlier objects of similar
 * content (its bases): a zstd frame whose dictionary is the bases' raw bytes,
 * concatenated in order. Several bases matter for chunks: an edit that moves a
 * CDC cut point makes the new chunk straddle two old ones. The payload of such
 * an object (codec `delta`) is
 *
 *   byte  0      n, the number of bases (1 to MAX_BASES)
 *   n x 32 bytes the bases' IDs (raw)
 *   byte         the chain depth: 1 + the deepest base's depth (a base
 *                stored whole has depth 0); never over 10
 *   the rest     the zstd frame
 *
 * Reading a delta reads its bases (verified, recursively) and then verifies
 * the result against the object's own ID like any read.
 *
 * Bases are found with similarity sketches (chunking/sketch.ts) kept in
 * `objects/info/sketches`, a cache: losing it costs only future deltas.
 */
import { constants } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { containment, NO_FEATURE, SKETCH_SIZE, unionSketch } from '../chunking/sketch.ts';
import { corruptObject, hasErrnoCode } from '../errors.ts';
import type { ObjectId } from './object-id.ts';

/** No delta chain is ever longer than this (ARCHITECTURE.md §4). */
export const MAX_DELTA_DEPTH = 10;
/** Most bases one delta draws on. */
export const MAX_BASES = 4;
/** Most bytes of bases one delta draws on (they are read into memory). */
export const MAX_BASE_BYTES = 16 * 1024 * 1024;
/** A further base must raise the estimated shared content by this much. */
const MIN_GAIN = 0.05;

/** When a delta may be stored: the category's thresholds (media/storage-profile.ts). */
export interface DeltaOptions {
  /** Estimated fraction (0-1) of the new object's content its bases must hold. */
  readonly minSimilarity: number;
  /** Longest chain allowed for objects of this category (at most MAX_DELTA_DEPTH). */
  readonly maxDepth: number;
}

export interface DeltaPayload {
  readonly bases: readonly ObjectId[];
  readonly depth: number;
  readonly frame: Uint8Array;
}

/** The bytes before the frame: base count, base IDs, depth. */
export function deltaPrefix(bases: readonly ObjectId[], depth: number): Buffer {
  if (bases.length < 1 || bases.length > MAX_BASES) {
    throw new RangeError(`bad delta base count ${bases.length}`);
  }
  if (!(depth >= 1 && depth <= MAX_DELTA_DEPTH)) throw new RangeError(`bad delta depth ${depth}`);
  const prefix = Buffer.alloc(2 + 32 * bases.length);
  prefix[0] = bases.length;
  bases.forEach((base, i) => prefix.write(base, 1 + 32 * i, 32, 'hex'));
  prefix[1 + 32 * bases.length] = depth;
  return prefix;
}

export function parseDeltaPayload(id: ObjectId, payload: Uint8Array): DeltaPayload {
  const count = payload[0] ?? 0;
  if (count < 1 || count > MAX_BASES) throw corruptObject(id, `bad delta base count ${count}`);
  const frameStart = 2 + 32 * count;
  if (payload.length <= frameStart) throw corruptObject(id, 'delta payload is cut short');
  const bytes = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
  const bases: ObjectId[] = [];
  for (let i = 0; i < count; i++) bases.push(bytes.toString('hex', 1 + 32 * i, 33 + 32 * i));
  if (bases.includes(id)) throw corruptObject(id, 'is a delta against itself');
  const depth = bytes[frameStart - 1]!;
  if (depth < 1 || depth > MAX_DELTA_DEPTH) throw corruptObject(id, `bad delta depth ${depth}`);
  return { bases, depth, frame: payload.subarray(frameStart) };
}

/** Bases chosen for a new object. */
export interface DeltaBases {
  readonly ids: readonly ObjectId[];
  /** The new object's depth: 1 + the deepest base's. */
  readonly depth: number;
  /** Estimated fraction of the new object's content the bases hold. */
  readonly similarity: number;
}

const FILE_MAGIC = Buffer.from('MGSK0002', 'latin1');
/** ID, depth, 3 reserved bytes, length (uint32 LE), sketch (uint32 LE each). */
const RECORD_SIZE = 32 + 4 + 4 + SKETCH_SIZE * 4;
const SKETCH_AT = 40;
/** Objects remembered per sketch value: enough for many versions of a file. */
const BUCKET_LIMIT = 8;
/** Candidates whose sketches are compared in full, the most promising first. */
const COMPARE_LIMIT = 8;

/**
 * The sketches of objects stored so far that may serve as delta bases, with
 * their chain depths; found by shared sketch values.
 */
export class SketchIndex {
  readonly #file: string;
  readonly #ids: ObjectId[] = [];
  readonly #depths: number[] = [];
  readonly #lengths: number[] = [];
  readonly #sketches: Uint32Array[] = [];
  readonly #buckets = new Map<number, number[]>();
  /** Records added since load, appended on save. */
  readonly #unsaved: Buffer[] = [];
  /** Bytes of whole records in the file (a crash may leave a partial one after). */
  #validLength = 0;
  #fileLength = 0;

  private constructor(file: string) {
    this.#file = file;
  }

  static async load(objectsDir: string): Promise<SketchIndex> {
    const index = new SketchIndex(path.join(objectsDir, 'info', 'sketches'));
    let data: Buffer;
    try {
      data = await fs.readFile(index.#file);
    } catch (error) {
      if (hasErrnoCode(error, 'ENOENT')) return index;
      throw error;
    }
    index.#fileLength = data.length;
    // An unreadable cache is dropped, not trusted: it only ever suggests bases.
    if (data.length < FILE_MAGIC.length || !data.subarray(0, 8).equals(FILE_MAGIC)) return index;
    const count = Math.floor((data.length - FILE_MAGIC.length) / RECORD_SIZE);
    for (let i = 0; i < count; i++) {
      const at = FILE_MAGIC.length + i * RECORD_SIZE;
      const id = data.toString('hex', at, at + 32);
      const depth = data[at + 32]!;
      const length = data.readUInt32LE(at + 36);
      const sketch = new Uint32Array(SKETCH_SIZE);
      for (let k = 0; k < SKETCH_SIZE; k++) sketch[k] = data.readUInt32LE(at + SKETCH_AT + k * 4);
      if (depth <= MAX_DELTA_DEPTH) index.#remember(id, depth, length, sketch);
    }
    index.#validLength = FILE_MAGIC.length + count * RECORD_SIZE;
    return index;
  }

  get size(): number {
    return this.#ids.length;
  }

  /**
   * Bases for a new object of `length` bytes with `sketch`: the remembered
   * object holding most of its content, then (greedily) further ones while
   * each adds at least MIN_GAIN; undefined unless together they hold
   * `options.minSimilarity` of it within the depth limit.
   */
  find(sketch: Uint32Array, length: number, options: DeltaOptions): DeltaBases | undefined {
    const hits = new Map<number, number>();
    for (const value of sketch) {
      if (value === NO_FEATURE) break;
      for (const record of this.#buckets.get(value) ?? []) {
        hits.set(record, (hits.get(record) ?? 0) + 1);
      }
    }
    const candidates = [...hits]
      .filter(([record]) => this.#depths[record]! < options.maxDepth)
      .sort((a, b) => b[1] - a[1] || b[0] - a[0])
      .slice(0, COMPARE_LIMIT)
      .map(([record]) => record);
    const chosen: number[] = [];
    let union: Uint32Array = new Uint32Array(0);
    let unionLength = 0;
    let score = 0;
    while (chosen.length < MAX_BASES) {
      let best: { record: number; score: number; union: Uint32Array } | undefined;
      for (const record of candidates) {
        const baseLength = this.#lengths[record]!;
        if (chosen.includes(record) || unionLength + baseLength > MAX_BASE_BYTES) continue;
        const merged = unionSketch(union, this.#sketches[record]!);
        const estimate = containment(sketch, length, merged, unionLength + baseLength);
        if (!best || estimate > best.score) best = { record, score: estimate, union: merged };
      }
      if (!best || best.score - score < MIN_GAIN) break;
      chosen.push(best.record);
      union = best.union;
      unionLength += this.#lengths[best.record]!;
      score = best.score;
    }
    if (chosen.length === 0 || score < options.minSimilarity) return undefined;
    return {
      ids: chosen.map((record) => this.#ids[record]!),
      depth: 1 + Math.max(...chosen.map((record) => this.#depths[record]!)),
      similarity: score,
    };
  }

  /** Remembers a newly stored object (searchable at once; written by `save`). */
  add(id: ObjectId, depth: number, length: number, sketch: Uint32Array): void {
    this.#remember(id, depth, length, sketch);
    const record = Buffer.alloc(RECORD_SIZE);
    record.write(id, 0, 32, 'hex');
    record[32] = depth;
    record.writeUInt32LE(length, 36);
    for (let k = 0; k < SKETCH_SIZE; k++) record.writeUInt32LE(sketch[k]!, SKETCH_AT + k * 4);
    this.#unsaved.push(record);
  }

  /**
   * Appends the records added since load and fsyncs them. A record cut short
   * by a crash is cut off first, so records stay aligned.
   */
  async save(): Promise<void> {
    if (this.#unsaved.length === 0) return;
    await fs.mkdir(path.dirname(this.#file), { recursive: true });
    const handle = await fs.open(this.#file, constants.O_RDWR | constants.O_CREAT, 0o644);
    try {
      let length = this.#validLength;
      if (length === 0) {
        await handle.truncate(0);
        await handle.write(FILE_MAGIC, 0, FILE_MAGIC.length, 0);
        length = FILE_MAGIC.length;
      } else if (this.#fileLength !== length) {
        await handle.truncate(length);
      }
      const records = Buffer.concat(this.#unsaved);
      await handle.write(records, 0, records.length, length);
      await handle.sync();
      this.#validLength = this.#fileLength = length + records.length;
      this.#unsaved.length = 0;
    } finally {
      await handle.close();
    }
  }

  #remember(id: ObjectId, depth: number, length: number, sketch: Uint32Array): void {
    const record = this.#ids.length;
    this.#ids.push(id);
    this.#depths.push(depth);
    this.#lengths.push(length);
    this.#sketches.push(sketch);
    for (const value of sketch) {
      if (value === NO_FEATURE) break;
      let bucket = this.#buckets.get(value);
      if (!bucket) this.#buckets.set(value, (bucket = []));
      bucket.push(record);
      if (bucket.length > BUCKET_LIMIT) bucket.shift();
    }
  }
}

/** A stored object weighed as a delta base by `chooseBases`. */
export interface BaseCandidate {
  readonly sketch: Uint32Array;
  readonly length: number;
}

/**
 * The greedy choice `SketchIndex.find` makes, over candidates the caller
 * has already filtered (by depth, by what may be a base): the candidate
 * holding most of the new object's content, then further ones while each
 * adds at least MIN_GAIN, up to MAX_BASES and MAX_BASE_BYTES. Returns the
 * chosen positions in `candidates`, in dictionary order, and the estimated
 * fraction of the object they hold; undefined below `minSimilarity`.
 */
export function chooseBases(
  sketch: Uint32Array,
  length: number,
  candidates: readonly BaseCandidate[],
  minSimilarity: number,
): { picks: number[]; similarity: number } | undefined {
  const picks: number[] = [];
  let union: Uint32Array = new Uint32Array(0);
  let unionLength = 0;
  let score = 0;
  while (picks.length < MAX_BASES) {
    let best: { pick: number; score: number; union: Uint32Array } | undefined;
    candidates.forEach((candidate, pick) => {
      if (picks.includes(pick) || unionLength + candidate.length > MAX_BASE_BYTES) return;
      const merged = unionSketch(union, candidate.sketch);
      const estimate = containment(sketch, length, merged, unionLength + candidate.length);
      if (!best || estimate > best.score) best = { pick, score: estimate, union: merged };
    });
    if (!best || best.score - score < MIN_GAIN) break;
    picks.push(best.pick);
    union = best.union;
    unionLength += candidates[best.pick]!.length;
    score = best.score;
  }
  if (picks.length === 0 || score < minSimilarity) return undefined;
  return { picks, similarity: score };
}

/** One record of the sketch cache (`objects/info/sketches`). */
export interface SketchRecord {
  readonly id: ObjectId;
  /** The object's delta chain depth when the record was written. */
  readonly depth: number;
  readonly length: number;
  readonly sketch: Uint32Array;
}

/**
 * The cached sketches of the objects `wanted` accepts, read in pieces (the
 * file is not held in memory); the last record of an ID wins. A missing or
 * foreign file gives none: the cache only ever saves work.
 */
export async function readSketchRecords(
  objectsDir: string,
  wanted: (id: ObjectId) => boolean,
): Promise<Map<ObjectId, SketchRecord>> {
  const out = new Map<ObjectId, SketchRecord>();
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(path.join(objectsDir, 'info', 'sketches'), 'r');
  } catch (error) {
    if (hasErrnoCode(error, 'ENOENT')) return out;
    throw error;
  }
  try {
    const magic = Buffer.alloc(FILE_MAGIC.length);
    const { bytesRead } = await handle.read(magic, 0, magic.length, 0);
    if (bytesRead < magic.length || !magic.equals(FILE_MAGIC)) return out;
    const buffer = Buffer.alloc(RECORD_SIZE * 4096);
    let position = FILE_MAGIC.length;
    for (;;) {
      const { bytesRead: got } = await handle.read(buffer, 0, buffer.length, position);
      const records = Math.floor(got / RECORD_SIZE);
      for (let r = 0; r < records; r++) {
        const at = r * RECORD_SIZE;
        const id = buffer.toString('hex', at, at + 32);
        const depth = buffer[at + 32]!;
        if (depth > MAX_DELTA_DEPTH || !wanted(id)) continue;
        const sketch = new Uint32Array(SKETCH_SIZE);
        for (let k = 0; k < SKETCH_SIZE; k++)
          sketch[k] = buffer.readUInt32LE(at + SKETCH_AT + k * 4);
        out.set(id, { id, depth, length: buffer.readUInt32LE(at + 36), sketch });
      }
      if (records === 0) break;
      position += records * RECORD_SIZE;
    }
  } finally {
    await handle.close();
  }
  return out;
}

/**
 * Appends records to the sketch cache and fsyncs it, as `SketchIndex.save`
 * does: a record cut short by a crash is cut off first, and a missing or
 * foreign file is started afresh.
 */
export async function appendSketchRecords(
  objectsDir: string,
  records: readonly SketchRecord[],
): Promise<void> {
  if (records.length === 0) return;
  const file = path.join(objectsDir, 'info', 'sketches');
  await fs.mkdir(path.dirname(file), { recursive: true });
  const handle = await fs.open(file, constants.O_RDWR | constants.O_CREAT, 0o644);
  try {
    const size = (await handle.stat()).size;
    const magic = Buffer.alloc(FILE_MAGIC.length);
    const { bytesRead } = await handle.read(magic, 0, magic.length, 0);
    let length: number;
    if (bytesRead < magic.length || !magic.equals(FILE_MAGIC)) {
      await handle.truncate(0);
      await handle.write(FILE_MAGIC, 0, FILE_MAGIC.length, 0);
      length = FILE_MAGIC.length;
    } else {
      length =
        FILE_MAGIC.length + Math.floor((size - FILE_MAGIC.length) / RECORD_SIZE) * RECORD_SIZE;
      if (length !== size) await handle.truncate(length);
    }
    const out = Buffer.alloc(RECORD_SIZE * records.length);
    records.forEach((record, r) => {
      const at = r * RECORD_SIZE;
      out.write(record.id, at, 32, 'hex');
      out[at + 32] = record.depth;
      out.writeUInt32LE(record.length, at + 36);
      for (let k = 0; k < SKETCH_SIZE; k++)
        out.writeUInt32LE(record.sketch[k] ?? NO_FEATURE, at + SKETCH_AT + k * 4);
    });
    await handle.write(out, 0, out.length, length);
    await handle.sync();
  } finally {
    await handle.close();
  }
}
