/**
 * Worker thread of `fsck --full` (fsck-verify.ts): reads ranges of object
 * files (a loose object's file, or a run of neighbouring records of a pack)
 * and verifies every record in them exactly as a read does (header, decode,
 * size, the hash against the ID; a delta against its bases, found where
 * the repository's readers look).
 *
 * Protocol: `{ objectsDir, tmpDir }` once; then `{ seq, job }`, each
 * answered with `{ seq, results }` (one result per record, in order) or
 * `{ seq, failure }`.
 *
 * Where the time goes, and what this file does about it (docs/fsck.md,
 * "Speed"): fresh memory costs a page fault per 4 KiB on this kind of
 * machine, so nothing on the hot path allocates: reads go into reused
 * buffers, and compressed records are decompressed into one reused buffer
 * through zlib's native handle. Reads are `READ_PIECE` long and each is
 * hashed while it is still in the CPU's cache. A delta's bases are read
 * straight into its dictionary (`DeltaDecoding`).
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import { createRequire } from 'node:module';
import { finished } from 'node:stream/promises';
import zlib from 'node:zlib';
import { parentPort } from 'node:worker_threads';
import { Codec, decode, decodeDelta } from '../compression/codec.ts';
import { corruptObject, hasErrnoCode, MediaGitError, missingObject } from '../errors.ts';
import { MAX_DELTA_DEPTH, parseDeltaPayload } from '../odb/delta.ts';
import { objectIdOf, type ObjectId } from '../odb/object-id.ts';
import { ObjectCipher } from '../odb/object-cipher.ts';
import {
  decodeHeader,
  checkLinks,
  decodeStored,
  type DecodedStored,
  HEADER_SIZE,
  ObjectStore,
  type ObjectTypeName,
} from '../odb/object-store.ts';
import type { VerifyJob, VerifyResult, VerifySegment } from './fsck-verify.ts';

/** Object types whose bytes go back to the walk (they name other objects). */
const LINKING = new Set<ObjectTypeName>(['commit', 'tree', 'tag', 'manifest']);

/**
 * Bytes per read. Reading 229 MB of a pack from the page cache and
 * BLAKE3-hashing it ran at 1.9 GB/s in 8 MiB reads and 3.0-3.5 GB/s in
 * 0.5-2 MiB reads here: a smaller piece is hashed while it is still in the
 * CPU's cache instead of being fetched from memory a second time.
 */
export const READ_PIECE = 1024 * 1024;

let store: ObjectStore | undefined;
/** An encrypted repository's cipher: its records are opened and named by keyed IDs. */
let cipher: ObjectCipher | undefined;

parentPort?.on(
  'message',
  (
    message:
      | {
          objectsDir: string;
          tmpDir: string;
          cipher?: { master: Uint8Array; repository: string } | undefined;
        }
      | { seq: number; job: VerifyJob },
  ) => {
    if ('objectsDir' in message) {
      store = new ObjectStore(message.objectsDir, message.tmpDir);
      if (message.cipher) {
        const { master, repository } = message.cipher;
        cipher = new ObjectCipher(Buffer.from(master), repository);
        store.cipher = cipher;
        store.encrypted = true;
      }
      return;
    }
    void runJob(message.job).then(
      (results) => parentPort?.postMessage({ seq: message.seq, results }),
      (error: unknown) =>
        parentPort?.postMessage({
          seq: message.seq,
          failure: error instanceof Error ? error.message : String(error),
        }),
    );
  },
);

export async function runJob(job: VerifyJob): Promise<VerifyResult[]> {
  const results: VerifyResult[] = [];
  for (const segment of job.segments) results.push(...(await runSegment(segment)));
  return results;
}

// -- reading ------------------------------------------------------------------

/**
 * Buffers for reads, whole records and delta decoding, reused: fresh memory
 * costs a page fault per 4 KiB, about 14 us each on this machine (3.5 ms per
 * MiB, where filling reused memory takes 0.05 ms). `take` hands out the
 * smallest free buffer that is large enough (it may be up to twice as
 * large as asked).
 */
const free: Buffer[] = [];
let freeBytes = 0;
/** Free buffers kept beyond this many bytes are dropped, smallest first. */
const KEPT_BYTES = 64 * 1024 * 1024;

function take(size: number): Buffer {
  // Not one far larger than asked for: a big dictionary's buffer held for a
  // small output would make the next big dictionary fresh memory.
  const at = free.findIndex((buffer) => buffer.length >= size);
  if (at < 0 || free[at]!.length > 2 * Math.max(size, READ_PIECE)) {
    return Buffer.allocUnsafeSlow(Math.max(size, READ_PIECE));
  }
  const [buffer] = free.splice(at, 1);
  freeBytes -= buffer!.length;
  return buffer!;
}

function give(buffer: Buffer): void {
  const at = free.findIndex((other) => other.length >= buffer.length);
  free.splice(at < 0 ? free.length : at, 0, buffer);
  freeBytes += buffer.length;
  while (freeBytes > KEPT_BYTES && free.length > 1) freeBytes -= free.shift()!.length;
}

/**
 * Sequential reads of [start, end) of one open file into a reused buffer,
 * `READ_PIECE` at a time: `some` hands out what is buffered (for hashing as
 * it streams past), `exact` a contiguous range (for a record decoded
 * whole), reading more as needed. Both return fewer bytes only where the
 * file (or the range) ends.
 */
class RangeReader {
  readonly #file: fs.FileHandle;
  readonly #end: number;
  #buffer: Buffer;
  /** File offset of buffer[0], and how many bytes from there are valid. */
  #at: number;
  #valid = 0;
  #eof = false;

  constructor(file: fs.FileHandle, start: number, end: number) {
    this.#file = file;
    this.#end = end;
    this.#at = start;
    this.#buffer = take(READ_PIECE);
  }

  release(): void {
    give(this.#buffer);
  }

  /** Up to `max` bytes from `position` (at least one unless the range ends there). */
  async some(position: number, max: number): Promise<Buffer> {
    if (position < this.#at || position >= this.#at + this.#valid) {
      this.#at = position;
      this.#valid = 0;
      await this.#fill(Math.min(max, READ_PIECE));
    }
    const from = position - this.#at;
    return this.#buffer.subarray(from, from + Math.min(max, this.#valid - from));
  }

  /** `length` contiguous bytes from `position` (fewer where the range ends). */
  async exact(position: number, length: number): Promise<Buffer> {
    const from = position - this.#at;
    if (from >= 0 && from + length <= this.#valid) {
      return this.#buffer.subarray(from, from + length);
    }
    // Keep what is buffered from `position` on; read the rest after it.
    if (from >= 0 && from < this.#valid) {
      this.#buffer.copyWithin(0, from, this.#valid);
      this.#valid -= from;
    } else {
      this.#valid = 0;
    }
    this.#at = position;
    if (length > this.#buffer.length) {
      const bigger = take(length);
      this.#buffer.copy(bigger, 0, 0, this.#valid);
      give(this.#buffer);
      this.#buffer = bigger;
    }
    await this.#fill(length);
    return this.#buffer.subarray(0, Math.min(length, this.#valid));
  }

  /** Reads until `want` bytes are buffered from #at (at least a piece, within the range). */
  async #fill(want: number): Promise<void> {
    const target = Math.min(
      this.#buffer.length,
      Math.max(want, READ_PIECE),
      Math.max(0, this.#end - this.#at),
    );
    while (this.#valid < target && !this.#eof) {
      const { bytesRead } = await this.#file.read(
        this.#buffer,
        this.#valid,
        target - this.#valid,
        this.#at + this.#valid,
      );
      if (bytesRead === 0) this.#eof = true;
      this.#valid += bytesRead;
    }
  }
}

async function runSegment(segment: VerifySegment): Promise<VerifyResult[]> {
  let file: fs.FileHandle;
  let end: number;
  try {
    file = await fs.open(segment.file, 'r');
    end = segment.length < 0 ? (await file.stat()).size : segment.start + segment.length;
  } catch (error) {
    const reason = `cannot be read: ${error instanceof Error ? error.message : String(error)}`;
    return segment.records.map((record) => ({ id: record.id, ok: false, reason }));
  }
  const reader = new RangeReader(file, segment.start, end);
  try {
    const out: VerifyResult[] = [];
    for (const record of segment.records) {
      const at = segment.start + record.offset;
      const length = record.length < 0 ? end - at : record.length;
      const result = await verifyRecord(reader, record.id, at, length);
      out.push(result);
    }
    return out;
  } catch (error) {
    const reason = `cannot be read: ${error instanceof Error ? error.message : String(error)}`;
    return segment.records.map((record) => ({ id: record.id, ok: false, reason }));
  } finally {
    reader.release();
    await file.close();
  }
}

const CUT_SHORT = 'record is cut short in its file';

// -- verifying ----------------------------------------------------------------

/** Verifies the record of `id` at [at, at + length) of the reader's file. */
async function verifyRecord(
  reader: RangeReader,
  id: ObjectId,
  at: number,
  length: number,
): Promise<VerifyResult> {
  const head = await reader.exact(at, Math.min(length, HEADER_SIZE));
  if (head.length < Math.min(length, HEADER_SIZE)) return { id, ok: false, reason: CUT_SHORT };
  let header: ReturnType<typeof decodeHeader>;
  try {
    header = decodeHeader(id, head);
  } catch (error) {
    return { id, ok: false, reason: reasonOf(error), stored: length };
  }
  const base = { id, type: header.type, rawSize: header.rawSize, stored: length };
  if (header.codec === Codec.sealed || cipher !== undefined) {
    const record = await reader.exact(at, length);
    if (record.length < length) return { id, ok: false, reason: CUT_SHORT };
    return { ...base, ...(await verifySealed(id, record)) };
  }
  if (header.codec === Codec.store && !LINKING.has(header.type)) {
    // The common case (media is stored as it is): hashed as it is read.
    return { ...base, ...(await hashStored(reader, id, header, at, length)) };
  }
  const record = await reader.exact(at, length);
  if (record.length < length) return { id, ok: false, reason: CUT_SHORT };
  return { ...base, ...(await verifyWhole(id, header, record)) };
}

type Outcome = Omit<VerifyResult, 'id'>;

/**
 * A record of an encrypted repository: opened (its tag checked), decoded
 * and named by its keyed ID; linking objects' bytes are sent back.
 */
async function verifySealed(id: ObjectId, record: Buffer): Promise<Outcome> {
  let data: Buffer;
  let type: ObjectTypeName;
  let links: DecodedStored['links'];
  try {
    const stored = decodeStored(cipher, id, record);
    type = stored.type;
    links = stored.links;
    data = await decode(stored.codec, stored.payload, stored.rawSize);
    if (data.length !== stored.rawSize)
      return { ok: false, reason: 'size does not match its header' };
  } catch (error) {
    return { ok: false, reason: reasonOf(error, id) };
  }
  const actual = cipher ? cipher.idOf(type, data) : objectIdOf(type, data);
  if (actual !== id) return { ok: false, reason: 'content does not match its hash' };
  if (links !== undefined) {
    try {
      checkLinks(id, type, data, links);
    } catch (error) {
      return { ok: false, reason: reasonOf(error, id) };
    }
  }
  return LINKING.has(type) ? { ok: true, data: Buffer.from(data) } : { ok: true };
}

interface Hasher {
  update(data: Uint8Array): unknown;
  digest(format: 'hex'): string;
}

function hasherFor(type: ObjectTypeName): Hasher {
  return type === 'chunk' ? new (blake3Hasher())() : createHash('sha256');
}

function checkHash(id: ObjectId, hasher: Hasher): Outcome {
  const actual = hasher.digest('hex');
  if (actual !== id) {
    return { ok: false, reason: 'content does not match its hash', actualId: actual };
  }
  return { ok: true };
}

async function hashStored(
  reader: RangeReader,
  id: ObjectId,
  header: { type: ObjectTypeName; rawSize: number },
  at: number,
  length: number,
): Promise<Outcome> {
  if (length - HEADER_SIZE !== header.rawSize) {
    return { ok: false, reason: 'size does not match its header' };
  }
  const hasher = hasherFor(header.type);
  const end = at + length;
  for (let position = at + HEADER_SIZE; position < end;) {
    const piece = await reader.some(position, end - position);
    if (piece.length === 0) return { ok: false, reason: CUT_SHORT };
    hasher.update(piece);
    position += piece.length;
  }
  return checkHash(id, hasher);
}

/** A record held whole (a view of a reused buffer: not kept). */
async function verifyWhole(
  id: ObjectId,
  header: { type: ObjectTypeName; codec: Codec; rawSize: number },
  record: Buffer,
): Promise<Outcome> {
  if (header.codec === Codec.delta) return await verifyDelta(id, header, record);
  const payload = record.subarray(HEADER_SIZE);
  if (!LINKING.has(header.type) && header.codec !== Codec.store) {
    const hasher = hasherFor(header.type);
    const inflated = inflate(header.codec, payload, header.rawSize, { hasher });
    if (inflated === undefined) return await verifyStreaming(id, header, payload);
    return inflated.ok ? checkHash(id, hasher) : inflated;
  }
  // A commit, tree, tag or manifest (small): decoded whole, its bytes sent back.
  let data: Buffer;
  try {
    data = await decode(header.codec, payload, header.rawSize);
  } catch {
    return { ok: false, reason: 'payload does not decompress' };
  }
  if (data.length !== header.rawSize)
    return { ok: false, reason: 'size does not match its header' };
  const actual = objectIdOf(header.type, data);
  if (actual !== id) {
    return { ok: false, reason: 'content does not match its hash', actualId: actual };
  }
  return { ok: true, data: Buffer.from(data) };
}

// -- decompression into reused memory -----------------------------------------

/** What node:zlib's streams hold internally (stable since Node 10; minizlib uses it too). */
interface NativeZlib {
  writeSync(
    flush: number,
    input: Uint8Array,
    inOffset: number,
    inLength: number,
    output: Uint8Array,
    outOffset: number,
    outLength: number,
  ): void;
}

interface ZlibInternals {
  /** Public (`zlib.reset()`), but missing from the types of the zstd and Brotli classes. */
  reset(): void;
  readonly _handle?: NativeZlib | null;
  readonly _writeState?: Uint32Array;
  readonly _finishFlushFlag?: number;
}

type Decompressor = (zlib.ZstdDecompress | zlib.BrotliDecompress) & ZlibInternals;

/** Where decompressed bytes go: piece by piece into a hash, or into one buffer of rawSize + 1. */
type Sink = { readonly hasher: Hasher } | { readonly into: Buffer };

const decompressors = new Map<number, Decompressor>();
let inflatePiece: Buffer | undefined;

function hasNativeHandle(stream: Decompressor): boolean {
  return (
    typeof stream._handle?.writeSync === 'function' &&
    stream._writeState instanceof Uint32Array &&
    typeof stream._finishFlushFlag === 'number'
  );
}

function quiet(stream: Decompressor): Decompressor {
  // Errors are read from `destroyed` after each call; this keeps them from being unhandled.
  stream.on('error', () => undefined);
  return stream;
}

/** The worker's zstd or Brotli decompressor, reused from record to record. */
function decompressor(codec: Codec): Decompressor | undefined {
  let stream = decompressors.get(codec);
  if (!stream) {
    stream = quiet(
      (codec === Codec.zstd
        ? zlib.createZstdDecompress()
        : zlib.createBrotliDecompress()) as Decompressor,
    );
    decompressors.set(codec, stream);
  }
  return hasNativeHandle(stream) ? stream : undefined;
}

/**
 * Decompresses `payload` (zstd or Brotli) into reused memory: no memory is
 * allocated per record (Node's zlib API allocates every output piece
 * afresh; decompressing and hashing 321 MB of compressed chunks took
 * 220-660 ms that way here, 55-60 ms so). Undefined when this Node's zlib
 * lacks the native handle (the caller then uses the public API).
 */
export function inflate(
  codec: Codec,
  payload: Uint8Array,
  rawSize: number,
  sink: Sink,
): Outcome | undefined {
  const stream = decompressor(codec);
  if (!stream) return undefined;
  const outcome = drive(stream, payload, rawSize, sink);
  if (outcome.ok) {
    stream.reset();
  } else {
    // A failed or abandoned frame: a fresh decompressor for the next record.
    decompressors.delete(codec);
    if (!stream.destroyed) stream.destroy();
  }
  return outcome;
}

/** A delta's zstd frame decompressed against `dictionary` into `into` (rawSize + 1 bytes). */
async function inflateDelta(
  frame: Uint8Array,
  dictionary: Buffer,
  rawSize: number,
  into: Buffer,
): Promise<Outcome> {
  const stream = quiet(zlib.createZstdDecompress({ dictionary }) as Decompressor);
  try {
    if (hasNativeHandle(stream)) return drive(stream, frame, rawSize, { into });
  } finally {
    if (!stream.destroyed) stream.destroy();
  }
  let data: Buffer;
  try {
    data = await decodeDelta(frame, dictionary, rawSize);
  } catch {
    return { ok: false, reason: 'payload does not decompress' };
  }
  if (data.length !== rawSize) return { ok: false, reason: 'size does not match its header' };
  data.copy(into);
  return { ok: true };
}

function drive(stream: Decompressor, payload: Uint8Array, rawSize: number, sink: Sink): Outcome {
  const handle = stream._handle!;
  const state = stream._writeState!;
  const output = 'into' in sink ? sink.into : (inflatePiece ??= Buffer.allocUnsafeSlow(READ_PIECE));
  let inOffset = 0;
  let inLength = payload.length;
  let size = 0;
  for (;;) {
    const outOffset = 'into' in sink ? size : 0;
    const outLength = output.length - outOffset;
    handle.writeSync(
      stream._finishFlushFlag!,
      payload,
      inOffset,
      inLength,
      output,
      outOffset,
      outLength,
    );
    if (stream.destroyed) return { ok: false, reason: 'payload does not decompress' };
    const outLeft = state[0]!;
    const inLeft = state[1]!;
    const produced = outLength - outLeft;
    size += produced;
    // (`into` holds rawSize + 1 bytes, so it never fills without this.)
    if (size > rawSize) return { ok: false, reason: 'size does not match its header' };
    if ('hasher' in sink && produced > 0) {
      sink.hasher.update(output.subarray(0, produced));
    }
    inOffset += inLength - inLeft;
    inLength = inLeft;
    // The output had room left: the decoder took all it could.
    if (outLeft !== 0) break;
  }
  if (inLength !== 0) return { ok: false, reason: 'payload has bytes after its end' };
  if (size !== rawSize) return { ok: false, reason: 'size does not match its header' };
  return { ok: true };
}

/**
 * The public API, where the native handle is not there: decompressed in
 * 256 KiB pieces into the hash, never held whole.
 */
async function verifyStreaming(
  id: ObjectId,
  header: { type: ObjectTypeName; codec: number; rawSize: number },
  payload: Buffer,
): Promise<Outcome> {
  const hasher = hasherFor(header.type);
  const stream =
    header.codec === Codec.zstd
      ? zlib.createZstdDecompress({ chunkSize: STREAM_CHUNK })
      : zlib.createBrotliDecompress({ chunkSize: STREAM_CHUNK });
  let size = 0;
  stream.on('data', (data: Buffer) => {
    size += data.length;
    if (size > header.rawSize) stream.destroy(new Error('size does not match its header'));
    else hasher.update(data);
  });
  try {
    stream.end(payload);
    await finished(stream);
  } catch (error) {
    const reason = error instanceof Error && error.message === 'size does not match its header';
    return { ok: false, reason: reason ? error.message : 'payload does not decompress' };
  }
  if (size !== header.rawSize) return { ok: false, reason: 'size does not match its header' };
  return checkHash(id, hasher);
}

const STREAM_CHUNK = 256 * 1024;

// -- deltas ---------------------------------------------------------------------

async function verifyDelta(
  id: ObjectId,
  header: { type: ObjectTypeName; rawSize: number },
  record: Buffer,
): Promise<Outcome> {
  let facts: { bases: ObjectId[]; depth: number };
  try {
    const delta = parseDeltaPayload(id, record.subarray(HEADER_SIZE));
    facts = { bases: [...delta.bases], depth: delta.depth };
  } catch (error) {
    return { ok: false, reason: reasonOf(error) };
  }
  const decoding = new DeltaDecoding();
  const out = take(header.rawSize + 1);
  try {
    await decoding.decodeDelta(id, record, 0, out);
    const data = LINKING.has(header.type)
      ? { data: Buffer.from(out.subarray(0, header.rawSize)) }
      : {};
    return { ...facts, ok: true, ...data };
  } catch (error) {
    return { ...facts, ok: false, reason: reasonOf(error, id) };
  } finally {
    give(out);
    decoding.release();
  }
}

/** A delta base's stored record, found where readers look, with its header read. */
interface Located {
  readonly file: fs.FileHandle;
  readonly start: number;
  readonly length: number;
  readonly type: ObjectTypeName;
  readonly codec: Codec;
  readonly rawSize: number;
}

/** A base decoded earlier in the chain, and its height (delta levels in it). */
interface Known {
  readonly data: Buffer;
  readonly height: number;
}

/**
 * One delta's decoding, as ObjectStore reads one (each base read where
 * readers look, decoded and verified by its own hash, recursively), in
 * memory from the pool: a base stored whole is read or decompressed
 * straight into its place in the dictionary, and every buffer is given back
 * as soon as it is done with. (Fresh memory for each base, dictionary and
 * output cost eight 1 MiB deltas of four bases each 0.7 s of CPU and 40,000
 * page faults in a check here.) A base that is itself a delta is decoded
 * once however often the chain names it, and kept until the end.
 */
class DeltaDecoding {
  readonly #kept: Buffer[] = [];
  readonly #decoded = new Map<ObjectId, Known>();

  release(): void {
    for (const buffer of this.#kept.splice(0)) give(buffer);
  }

  /**
   * Decodes the delta `record` (header and payload) of `id` into `out`
   * (room for its size + 1) and verifies it; returns its height (delta
   * levels in it). Throws OBJECT_CORRUPT naming what is wrong.
   */
  async decodeDelta(id: ObjectId, record: Buffer, nesting: number, out: Buffer): Promise<number> {
    const { type, rawSize } = decodeHeader(id, record);
    const delta = parseDeltaPayload(id, record.subarray(HEADER_SIZE));
    // Each step of a chain is one level deeper (as ObjectStore counts).
    if (nesting >= MAX_DELTA_DEPTH) {
      throw corruptObject(id, `delta chain longer than ${MAX_DELTA_DEPTH}`);
    }
    const bases: (Known | Located)[] = [];
    let dictionary: Buffer | undefined;
    try {
      try {
        for (const base of delta.bases) bases.push(await this.#find(base, nesting + 1));
      } catch (error) {
        if (error instanceof MediaGitError && error.code === 'OBJECT_MISSING') {
          throw corruptObject(id, `a delta base of it is missing: ${error.message}`, error);
        }
        throw error;
      }
      for (const [i, base] of bases.entries()) {
        if ('file' in base && base.codec === Codec.delta) {
          bases[i] = await this.#decodeBase(delta.bases[i]!, base, nesting + 1);
          await base.file.close();
        }
      }
      const sizes = bases.map((base) => ('data' in base ? base.data.length : base.rawSize));
      const total = sizes.reduce((sum, size) => sum + size, 0);
      // One more byte than the bases need: the last one's room to show it is too long.
      dictionary = take(total + 1);
      let height = 0;
      let at = 0;
      for (const [i, base] of bases.entries()) {
        const slot = dictionary.subarray(at, at + sizes[i]! + 1);
        if ('data' in base) {
          base.data.copy(slot);
          height = Math.max(height, base.height);
        } else {
          await this.#fill(delta.bases[i]!, base, slot);
        }
        at += sizes[i]!;
      }
      const outcome = await inflateDelta(delta.frame, dictionary.subarray(0, total), rawSize, out);
      if (!outcome.ok) {
        throw corruptObject(
          id,
          outcome.reason === 'size does not match its header'
            ? outcome.reason
            : 'delta does not decode against its bases',
        );
      }
      if (objectIdOf(type, out.subarray(0, rawSize)) !== id) {
        throw corruptObject(id, 'content does not match its hash');
      }
      return height + 1;
    } finally {
      if (dictionary) give(dictionary);
      for (const base of bases) if ('file' in base) await base.file.close();
    }
  }

  /** A base already decoded in this chain, or its record located (the caller closes it). */
  async #find(id: ObjectId, nesting: number): Promise<Known | Located> {
    const known = this.#decoded.get(id);
    if (!known) return await locate(id);
    // Decoded at another depth of the chain: what is below it still counts.
    if (nesting + known.height > MAX_DELTA_DEPTH) {
      throw corruptObject(id, `delta chain longer than ${MAX_DELTA_DEPTH}`);
    }
    return known;
  }

  /**
   * A base that is itself a delta, decoded into memory kept for the rest of
   * the chain (decoding it again could cost more than keeping it). Decoded
   * before the dictionary that needs it is taken, so that its own
   * dictionary is given back first and the next one can reuse it.
   */
  async #decodeBase(id: ObjectId, base: Located, nesting: number): Promise<Known> {
    const buffer = take(base.length);
    try {
      const record = buffer.subarray(0, base.length);
      await readExactly(id, base.file, record, base.start);
      const kept = take(base.rawSize + 1);
      this.#kept.push(kept);
      const height = await this.decodeDelta(id, record, nesting, kept);
      const known = { data: kept.subarray(0, base.rawSize), height };
      this.#decoded.set(id, known);
      return known;
    } finally {
      give(buffer);
    }
  }

  /** A base stored whole, read or decompressed into `slot` (its size + 1 bytes), verified. */
  async #fill(id: ObjectId, base: Located, slot: Buffer): Promise<void> {
    const target = slot.subarray(0, base.rawSize);
    if (base.codec === Codec.store) {
      if (base.length - HEADER_SIZE !== base.rawSize) {
        throw corruptObject(id, 'size does not match its header');
      }
      await readExactly(id, base.file, target, base.start + HEADER_SIZE);
    } else {
      const buffer = take(base.length);
      try {
        const record = buffer.subarray(0, base.length);
        await readExactly(id, base.file, record, base.start);
        await inflateWhole(id, base.codec, record.subarray(HEADER_SIZE), base.rawSize, slot);
      } finally {
        give(buffer);
      }
    }
    if (objectIdOf(base.type, target) !== id) {
      throw corruptObject(id, 'content does not match its hash');
    }
  }
}

/** A base's stored record, where readers look: loose, then in the packs. */
async function locate(id: ObjectId): Promise<Located> {
  let file: fs.FileHandle | undefined;
  let start = 0;
  let length = 0;
  try {
    file = await fs.open(store!.pathOf(id), 'r');
    length = (await file.stat()).size;
  } catch (error) {
    if (!hasErrnoCode(error, 'ENOENT')) throw error;
  }
  if (!file) {
    const found = await store!.packs.find(id);
    if (!found) throw store!.packs.notFound(id, missingObject(id));
    file = await fs.open(found.pack.packPath, 'r');
    start = found.entry.offset;
    length = found.entry.length;
  }
  try {
    const head = Buffer.alloc(Math.min(length, HEADER_SIZE));
    await readExactly(id, file, head, start);
    return { file, start, length, ...decodeHeader(id, head) };
  } catch (error) {
    await file.close();
    throw error;
  }
}

async function readExactly(
  id: ObjectId,
  file: fs.FileHandle,
  target: Buffer,
  position: number,
): Promise<void> {
  let done = 0;
  while (done < target.length) {
    const { bytesRead } = await file.read(target, done, target.length - done, position + done);
    if (bytesRead === 0) throw corruptObject(id, 'record is cut short in its file');
    done += bytesRead;
  }
}

/** A compressed record's payload into `slot` (its size + 1 bytes); throws OBJECT_CORRUPT. */
async function inflateWhole(
  id: ObjectId,
  codec: Codec,
  payload: Buffer,
  rawSize: number,
  slot: Buffer,
): Promise<void> {
  let outcome = inflate(codec, payload, rawSize, { into: slot });
  if (outcome === undefined) {
    try {
      const data = await decode(codec, payload, rawSize);
      data.copy(slot);
      outcome =
        data.length === rawSize
          ? { ok: true }
          : { ok: false, reason: 'size does not match its header' };
    } catch {
      outcome = { ok: false, reason: 'payload does not decompress' };
    }
  }
  if (!outcome.ok) throw corruptObject(id, outcome.reason ?? 'payload does not decompress');
}

// -- helpers --------------------------------------------------------------------

let blake3Class: (new () => Hasher) | undefined;

function blake3Hasher(): new () => Hasher {
  blake3Class ??= (
    createRequire(import.meta.url)('@napi-rs/blake-hash') as { Blake3Hasher: new () => Hasher }
  ).Blake3Hasher;
  return blake3Class;
}

/** Why it failed; a delta's base failing is said so, naming the base. */
function reasonOf(error: unknown, id?: string): string {
  if (error instanceof MediaGitError) {
    const other =
      typeof error.data['id'] === 'string' && error.data['id'] !== id
        ? error.data['id']
        : undefined;
    const reason = typeof error.data['reason'] === 'string' ? error.data['reason'] : error.message;
    if (error.code === 'PACK_CORRUPT') return `its delta base cannot be read: ${error.message}`;
    return other ? `its delta base ${other} is unreadable: ${reason}` : reason;
  }
  return error instanceof Error ? error.message : String(error);
}
