/**
 * `verify`: reads every file of some commits end to end and checks each
 * whole file's SHA-256 against the one its commit records (the blob's ID for
 * a small file, the manifest's `sha256` line for a chunked one), as
 * `git lfs fsck` does for LFS objects. `quick` only checks that every object
 * a file needs is stored (a manifest is still read for its chunk list).
 *
 * The engine (`verifyCommits`) reads through a `VerifySource`, so a local
 * repository (this file's `verify`) and a repository on a server root's
 * storage backend (protocol/root-verify.ts) are checked by the same code.
 *
 * Speed: a file's chunks are read in order into two reused buffers shared
 * with a hashing worker (odb/whole-file-hasher.ts), so reading and
 * decompressing the next chunk overlaps hashing the previous one; several
 * files are verified at once, one worker each (as many as the machine has
 * cores), so every core hashes. Small blobs are hashed on the main thread,
 * where a round trip to a worker would cost more than the hash. Only when a
 * file's hash does not match are its chunks read again, one by one, to name
 * the damaged ones (each checked against its own BLAKE3 ID).
 *
 * Damage is reported in the result, never thrown: one problem per commit
 * and path whose file is damaged, with what was expected and what was found.
 */
import { availableParallelism } from 'node:os';
import { hash } from 'node:crypto';
import { decode, decodeDelta, Codec } from '../compression/codec.ts';
import { MediaGitError } from '../errors.ts';
import { decodeCommit, decodeTag } from '../odb/commit.ts';
import { MAX_BASES, MAX_DELTA_DEPTH, parseDeltaPayload } from '../odb/delta.ts';
import { decodeManifest, type Manifest } from '../odb/manifest.ts';
import { chunkIdOf, type ObjectId } from '../odb/object-id.ts';
import {
  decodeHeader,
  HEADER_SIZE,
  isFileContent,
  type DecodedStored,
  type ObjectStore,
  type ObjectTypeName,
} from '../odb/object-store.ts';
import { decodeTree, type EntryKind } from '../odb/tree.ts';
import { WholeFileHasher } from '../odb/whole-file-hasher.ts';
import { eachLimited } from '../storage/concurrency.ts';
import { Refs } from './refs.ts';
import type { Repository } from './repository.ts';
import { peelToCommit, resolveCommit } from './revision.ts';

/** Where `verifyCommits` reads objects from. */
export interface VerifySource {
  /** Reads and verifies a commit, tag, tree or manifest, or a delta's base. */
  read(id: ObjectId): Promise<{ type: ObjectTypeName; data: Buffer }>;
  /**
   * An object's stored record (16-byte header + payload), not verified: into
   * the start of `into` when it fits there, else a new buffer.
   * OBJECT_MISSING when it is stored nowhere.
   */
  readRecord(id: ObjectId, into?: Buffer): Promise<Buffer>;
  /**
   * A stored record's header and the payload to decode, opened when sealed
   * (an encrypted repository: ObjectStore.decodeStored); the record as it is
   * when absent.
   */
  readonly decodeStored?: ((id: ObjectId, record: Buffer) => DecodedStored) | undefined;
  /** The ID of content whose plain ID is given (keyed in an encrypted repository); itself when absent. */
  readonly keyId?: ((plainId: ObjectId) => ObjectId) | undefined;
  /** Which of `ids` are stored nowhere, in the order given. */
  missing(ids: readonly ObjectId[]): Promise<ObjectId[]>;
  /**
   * The delta bases of a stored object (none when stored whole), from its
   * header and delta prefix alone; for `quick`. Absent where objects are
   * always stored whole (a server's standalone records).
   */
  deltaBases?(id: ObjectId): Promise<readonly ObjectId[]>;
}

export interface VerifyOptions {
  /** Check presence only: every blob, manifest and chunk is stored. */
  readonly quick?: boolean | undefined;
  /** Files verified at once, each hashed on its own worker (default: the cores). */
  readonly jobs?: number | undefined;
  readonly signal?: AbortSignal | undefined;
  /** Bytes of the distinct file versions done so far, of `total`; `work` counts files. */
  readonly onProgress?:
    | ((event: { bytes: number; total: number; work: number; totalWork: number }) => void)
    | undefined;
}

/** One damaged chunk of a chunked file. */
export interface ChunkProblem {
  readonly id: ObjectId;
  /** Where the chunk starts in the file. */
  readonly offset: number;
  readonly reason: string;
}

/** A file (or a commit or folder that could not be read) of a verified commit. */
export interface VerifyProblem {
  readonly commit: ObjectId;
  /** The file's path in the commit; for a folder that cannot be read, its path ('' for the root). */
  readonly path: string;
  /** The object at fault: the file's blob or manifest, the tree, or the commit. */
  readonly object: ObjectId;
  readonly reason: string;
  /** The whole-file SHA-256 the commit records; null when it cannot be read (a lost manifest). */
  readonly expected: string | null;
  /** What the stored bytes hash to; null when some of them cannot be read (or `quick`). */
  readonly actual: string | null;
  readonly chunks: readonly ChunkProblem[];
}

export interface VerifyReport {
  readonly quick: boolean;
  /** The commits verified, in the order given. */
  readonly commits: readonly ObjectId[];
  /** Files checked: one per commit and path. */
  readonly files: number;
  /** Distinct file versions checked (a file unchanged across the commits is read once). */
  readonly contents: number;
  /** Their sizes: the bytes read and hashed (with `quick`, checked for presence). */
  readonly bytes: number;
  /** Chunk references of the chunked files among them. */
  readonly chunks: number;
  /** One per damaged file and commit; empty when everything verified. */
  readonly problems: readonly VerifyProblem[];
}

/** A blob at most this large is hashed on the main thread. */
const SMALL_BLOB = 1024 * 1024;
/** Presence checks (`quick`) in flight at once. */
const QUICK_PARALLEL = 16;
/** Main-thread files in flight besides the hashing workers' (small blobs, manifests). */
const EXTRA_PARALLEL = 4;

interface Occurrence {
  readonly commit: ObjectId;
  readonly path: string;
}

interface FileVersion {
  readonly id: ObjectId;
  readonly kind: 'blob' | 'manifest';
  /** The size the tree records. */
  readonly size: number;
  readonly at: Occurrence[];
}

/** What checking one file version found: undefined when it verified. */
interface Finding {
  readonly reason: string;
  readonly expected: string | null;
  readonly actual: string | null;
  readonly chunks: readonly ChunkProblem[];
}

/** A piece of a file: a chunk, or the whole of a blob. */
interface Piece {
  readonly id: ObjectId;
  readonly offset: number;
  readonly length: number;
}

/**
 * Verifies the files of `commits` (commit IDs) read through `source`.
 * A commit, tree or manifest that cannot be read is a problem too.
 */
export async function verifyCommits(
  source: VerifySource,
  commits: readonly ObjectId[],
  options: VerifyOptions = {},
): Promise<VerifyReport> {
  const { signal } = options;
  const quick = options.quick === true;
  const problems: VerifyProblem[] = [];
  const versions = new Map<ObjectId, FileVersion>();
  let files = 0;
  const order = [...new Set(commits)];

  for (const commit of order) {
    signal?.throwIfAborted();
    let tree: ObjectId;
    try {
      const object = await source.read(commit);
      if (object.type !== 'commit') throw new Error(`${commit} is a ${object.type}, not a commit`);
      tree = decodeCommit(commit, object.data).tree;
    } catch (error) {
      problems.push(unreadable(commit, '', commit, 'the commit', error));
      continue;
    }
    // Depth-first, entries in tree order, so files come out sorted by path.
    const pending: { id: ObjectId; path: string }[] = [{ id: tree, path: '' }];
    while (pending.length > 0) {
      const folder = pending.pop()!;
      let entries;
      try {
        const object = await source.read(folder.id);
        if (object.type !== 'tree') throw new Error(`it is a ${object.type}, not a tree`);
        entries = decodeTree(folder.id, object.data);
      } catch (error) {
        problems.push(unreadable(commit, folder.path, folder.id, 'the folder', error));
        continue;
      }
      const below: { id: ObjectId; path: string }[] = [];
      for (const entry of entries) {
        const path = folder.path === '' ? entry.name : `${folder.path}/${entry.name}`;
        if (entry.kind === 'tree') {
          below.push({ id: entry.id, path });
          continue;
        }
        files++;
        let version = versions.get(entry.id);
        if (!version) {
          version = { id: entry.id, kind: fileKind(entry.kind), size: entry.size, at: [] };
          versions.set(entry.id, version);
        }
        version.at.push({ commit, path });
      }
      for (let i = below.length - 1; i >= 0; i--) pending.push(below[i]!);
    }
  }

  const all = [...versions.values()];
  const total = all.reduce((sum, v) => sum + v.size, 0);
  let bytesDone = 0;
  let filesDone = 0;
  let chunks = 0;
  const findings = new Map<ObjectId, Finding>();
  const done = (version: FileVersion, finding: Finding | undefined): void => {
    if (finding) findings.set(version.id, finding);
    bytesDone += version.size;
    filesDone++;
    options.onProgress?.({
      bytes: bytesDone,
      total,
      work: bytesDone + filesDone,
      totalWork: total + all.length,
    });
  };

  if (quick) {
    const bases = baseChecker(source);
    await eachLimited(all, QUICK_PARALLEL, async (version) => {
      signal?.throwIfAborted();
      const result = await checkPresence(source, version, bases);
      chunks += result.chunks;
      done(version, result.finding);
    });
  } else {
    const jobs = Math.max(1, options.jobs ?? availableParallelism());
    const lanes = new LanePool(jobs);
    try {
      await eachLimited(all, jobs + EXTRA_PARALLEL, async (version) => {
        signal?.throwIfAborted();
        const result = await checkContent(source, version, lanes, signal);
        chunks += result.chunks;
        done(version, result.finding);
      });
    } finally {
      await lanes.close();
    }
  }

  // One problem per damaged file and place, in commit order then path order.
  const place = new Map(order.map((commit, i) => [commit, i]));
  const damaged: VerifyProblem[] = [];
  for (const version of all) {
    const finding = findings.get(version.id);
    if (!finding) continue;
    for (const at of version.at) {
      damaged.push({ commit: at.commit, path: at.path, object: version.id, ...finding });
    }
  }
  problems.push(...damaged);
  problems.sort(
    (a, b) =>
      place.get(a.commit)! - place.get(b.commit)! ||
      (a.path < b.path ? -1 : a.path > b.path ? 1 : 0),
  );
  return {
    quick,
    commits: order,
    files,
    contents: all.length,
    bytes: total,
    chunks,
    problems,
  };
}

function fileKind(kind: EntryKind): 'blob' | 'manifest' {
  return kind === 'manifest' ? 'manifest' : 'blob';
}

function reasonOf(error: unknown): string {
  if (error instanceof MediaGitError) return error.message;
  if (error instanceof Error) return error.message;
  return String(error);
}

/** Errors that say the stored bytes are damaged or gone; anything else is rethrown. */
function isDamage(error: unknown): boolean {
  if (error instanceof MediaGitError) {
    return error.kind === 'corrupt' || error.code === 'BAD_OBJECT_RECORD';
  }
  // Our own checks (a wrong type) throw plain errors; failures of the store do not.
  return error instanceof Error && !(error as NodeJS.ErrnoException).code;
}

function unreadable(
  commit: ObjectId,
  path: string,
  object: ObjectId,
  what: string,
  error: unknown,
): VerifyProblem {
  if (!isDamage(error)) throw error;
  return {
    commit,
    path,
    object,
    reason: `${what} cannot be read: ${reasonOf(error)}`,
    expected: null,
    actual: null,
    chunks: [],
  };
}

function isMissing(error: unknown): boolean {
  return error instanceof MediaGitError && error.code === 'OBJECT_MISSING';
}

async function readManifestOf(
  source: VerifySource,
  version: FileVersion,
): Promise<{ manifest: Manifest } | { finding: Finding }> {
  try {
    const object = await source.read(version.id);
    if (object.type !== 'manifest') throw new Error(`it is a ${object.type}, not a manifest`);
    return { manifest: decodeManifest(version.id, object.data) };
  } catch (error) {
    if (!isDamage(error)) throw error;
    const reason = isMissing(error)
      ? `its manifest ${version.id} is missing`
      : `its manifest cannot be read: ${reasonOf(error)}`;
    return { finding: { reason, expected: null, actual: null, chunks: [] } };
  }
}

function sizeFinding(version: FileVersion, size: number, expected: string): Finding | undefined {
  if (size === version.size) return undefined;
  return {
    reason: `it holds ${size} bytes, its commit says ${version.size}`,
    expected,
    actual: null,
    chunks: [],
  };
}

function piecesOf(manifest: Manifest): Piece[] {
  const pieces: Piece[] = [];
  let offset = 0;
  for (const chunk of manifest.chunks) {
    pieces.push({ id: chunk.id, offset, length: chunk.length });
    offset += chunk.length;
  }
  return pieces;
}

/** Why a stored object cannot be rebuilt for want of a delta base (memoized per run). */
type BaseCheck = (id: ObjectId) => Promise<string | undefined>;

function baseChecker(source: VerifySource): BaseCheck {
  const known = new Map<ObjectId, Promise<string | undefined>>();
  const check = (id: ObjectId, depth: number): Promise<string | undefined> => {
    let result = known.get(id);
    if (!result) {
      result = (async () => {
        if (!source.deltaBases) return undefined;
        let bases: readonly ObjectId[];
        try {
          bases = await source.deltaBases(id);
        } catch (error) {
          if (!isDamage(error)) throw error;
          return reasonOf(error);
        }
        if (bases.length === 0) return undefined;
        if (depth >= MAX_DELTA_DEPTH) return `its delta chain is longer than ${MAX_DELTA_DEPTH}`;
        const [gone] = await source.missing(bases);
        if (gone !== undefined) return `its delta base ${gone} is missing`;
        for (const base of bases) {
          const why = await check(base, depth + 1);
          if (why !== undefined) return `its delta base ${base}: ${why}`;
        }
        return undefined;
      })();
      known.set(id, result);
    }
    return result;
  };
  return (id) => check(id, 0);
}

/** `quick`: every object the file needs is stored (a delta's bases too). */
async function checkPresence(
  source: VerifySource,
  version: FileVersion,
  bases: BaseCheck,
): Promise<{ finding: Finding | undefined; chunks: number }> {
  if (version.kind === 'blob') {
    const [gone] = await source.missing([version.id]);
    const why = gone !== undefined ? 'is missing' : await bases(version.id);
    if (why === undefined) return { finding: undefined, chunks: 0 };
    return {
      finding: {
        reason: `its blob ${version.id} ${why}`,
        expected: version.id,
        actual: null,
        chunks: [],
      },
      chunks: 0,
    };
  }
  const read = await readManifestOf(source, version);
  if ('finding' in read) return { finding: read.finding, chunks: 0 };
  const { manifest } = read;
  const pieces = piecesOf(manifest);
  const wrongSize = sizeFinding(version, manifest.size, manifest.sha256);
  if (wrongSize) return { finding: wrongSize, chunks: pieces.length };
  const gone = new Set(await source.missing([...new Set(pieces.map((p) => p.id))]));
  const lost: ChunkProblem[] = [];
  for (const piece of pieces) {
    const why = gone.has(piece.id) ? 'missing' : await bases(piece.id);
    if (why !== undefined) lost.push({ id: piece.id, offset: piece.offset, reason: why });
  }
  if (lost.length === 0) return { finding: undefined, chunks: pieces.length };
  const all = lost.every((chunk) => chunk.reason === 'missing');
  return {
    finding: {
      reason: `${lost.length} of its ${pieces.length} chunks ${lost.length === 1 ? 'is' : 'are'} ${all ? 'missing' : 'missing or unreadable'}`,
      expected: manifest.sha256,
      actual: null,
      chunks: lost,
    },
    chunks: pieces.length,
  };
}

/** Reads the whole file, hashes it and compares; names the damaged chunks when it differs. */
async function checkContent(
  source: VerifySource,
  version: FileVersion,
  lanes: LanePool,
  signal: AbortSignal | undefined,
): Promise<{ finding: Finding | undefined; chunks: number }> {
  let pieces: Piece[];
  let expected: string;
  let kind: 'blob' | 'chunk';
  if (version.kind === 'blob') {
    expected = version.id;
    pieces = [{ id: version.id, offset: 0, length: version.size }];
    kind = 'blob';
    if (version.size <= SMALL_BLOB) {
      return { finding: await checkSmallBlob(source, version), chunks: 0 };
    }
  } else {
    const read = await readManifestOf(source, version);
    if ('finding' in read) return { finding: read.finding, chunks: 0 };
    expected = read.manifest.sha256;
    pieces = piecesOf(read.manifest);
    kind = 'chunk';
    const wrongSize = sizeFinding(version, read.manifest.size, expected);
    if (wrongSize) return { finding: wrongSize, chunks: pieces.length };
  }
  const chunks = kind === 'chunk' ? pieces.length : 0;
  const largest = pieces.reduce((max, p) => Math.max(max, p.length), 0);
  const lane = await lanes.acquire(HEADER_SIZE + largest);
  let actual: string | null;
  try {
    actual = await lane.hash(pieces, (piece, into) => readPiece(source, piece, kind, into), signal);
  } finally {
    lanes.release(lane);
  }
  if (kind === 'blob' && actual !== null) actual = source.keyId?.(actual) ?? actual;
  if (actual === expected) return { finding: undefined, chunks };
  // Something is wrong: find which pieces, each checked on its own.
  const damaged: ChunkProblem[] = [];
  for (const piece of pieces) {
    signal?.throwIfAborted();
    try {
      const data = await readPiece(source, piece, kind);
      if (kind === 'chunk' && keyed(source, chunkIdOf(data)) !== piece.id) {
        damaged.push({
          id: piece.id,
          offset: piece.offset,
          reason: 'content does not match its ID',
        });
      }
    } catch (error) {
      if (!isDamage(error)) throw error;
      const reason = isMissing(error) ? 'missing' : reasonOf(error);
      damaged.push({ id: piece.id, offset: piece.offset, reason });
    }
  }
  if (kind === 'blob') {
    const reason = damaged[0]?.reason;
    return {
      finding: {
        reason:
          reason === 'missing'
            ? `its blob ${version.id} is missing`
            : reason !== undefined
              ? `its blob cannot be read: ${reason}`
              : 'its content does not match its SHA-256',
        expected,
        actual,
        chunks: [],
      },
      chunks: 0,
    };
  }
  const reason =
    damaged.length > 0
      ? `${damaged.length} of its ${pieces.length} chunks ${damaged.length === 1 ? 'is' : 'are'} damaged`
      : 'its content does not match its SHA-256';
  return { finding: { reason, expected, actual, chunks: damaged }, chunks };
}

async function checkSmallBlob(
  source: VerifySource,
  version: FileVersion,
): Promise<Finding | undefined> {
  let data: Buffer;
  try {
    data = await readPiece(source, { id: version.id, offset: 0, length: version.size }, 'blob');
  } catch (error) {
    if (!isDamage(error)) throw error;
    return {
      reason: isMissing(error)
        ? `its blob ${version.id} is missing`
        : `its blob cannot be read: ${reasonOf(error)}`,
      expected: version.id,
      actual: null,
      chunks: [],
    };
  }
  const actual = keyed(source, hash('sha256', data, 'hex'));
  if (actual === version.id) return undefined;
  return {
    reason: 'its content does not match its SHA-256',
    expected: version.id,
    actual,
    chunks: [],
  };
}

/**
 * A piece's bytes as stored, decoded but not checked against its ID (the
 * caller hashes them): a missing object, a bad header, a length other than
 * the manifest's or a payload that does not decode throws.
 */
async function readPiece(
  source: VerifySource,
  piece: Piece,
  kind: 'blob' | 'chunk',
  into?: Buffer,
): Promise<Buffer> {
  const record = await source.readRecord(piece.id, into);
  const header = source.decodeStored
    ? source.decodeStored(piece.id, record)
    : { ...decodeHeader(piece.id, record), payload: record.subarray(HEADER_SIZE) };
  if (!isFileContent(header.type)) throw new Error(`it is stored as a ${header.type}`);
  if (header.rawSize !== piece.length) {
    const whose = kind === 'chunk' ? 'its manifest' : 'its commit';
    throw new Error(`it holds ${header.rawSize} bytes, ${whose} says ${piece.length}`);
  }
  const payload = header.payload;
  let data: Buffer;
  if (header.codec === Codec.delta) {
    const delta = parseDeltaPayload(piece.id, payload);
    const bases: Buffer[] = [];
    for (const base of delta.bases) {
      try {
        bases.push((await source.read(base)).data);
      } catch (error) {
        if (!isDamage(error)) throw error;
        throw new Error(`its delta base ${base} cannot be read: ${reasonOf(error)}`, {
          cause: error,
        });
      }
    }
    try {
      data = await decodeDelta(
        delta.frame,
        bases.length === 1 ? bases[0]! : Buffer.concat(bases),
        header.rawSize,
      );
    } catch (error) {
      throw new Error('its delta does not decode against its bases', { cause: error });
    }
  } else {
    try {
      data = await decode(header.codec, payload, header.rawSize);
    } catch (error) {
      throw new Error('its payload does not decompress', { cause: error });
    }
  }
  if (data.length !== header.rawSize) {
    throw new Error(`it decodes to ${data.length} bytes, its header says ${header.rawSize}`);
  }
  return data;
}

/**
 * A hashing worker with two buffers it shares with this thread: the pieces
 * of one file go through them in turn (read into one while the other is
 * hashed) and come out as the file's SHA-256.
 */
class HashLane {
  readonly #hasher = new WholeFileHasher();
  #slots: Buffer[] = [];

  /** Makes both buffers hold at least `bytes` (between files only). */
  reserve(bytes: number): void {
    if ((this.#slots[0]?.length ?? 0) >= bytes) return;
    const size = 2 ** Math.ceil(Math.log2(Math.max(bytes, 64 * 1024)));
    this.#slots = [0, 1].map(() => Buffer.from(new SharedArrayBuffer(size)));
  }

  /**
   * The SHA-256 of the pieces' bytes in order, or null when one of them
   * cannot be read (the caller then finds out which).
   */
  async hash(
    pieces: readonly Piece[],
    read: (piece: Piece, into: Buffer) => Promise<Buffer>,
    signal: AbortSignal | undefined,
  ): Promise<string | null> {
    const slots = this.#slots;
    this.#hasher.begin(slots);
    const hashing: (Promise<void> | undefined)[] = [undefined, undefined];
    let complete = true;
    try {
      for (const [i, piece] of pieces.entries()) {
        signal?.throwIfAborted();
        const slot = i % 2;
        const buffer = slots[slot]!;
        await hashing[slot];
        let data: Buffer;
        try {
          data = await read(piece, buffer);
        } catch (error) {
          if (!isDamage(error)) throw error;
          complete = false;
          break;
        }
        let start = 0;
        if (data.buffer === buffer.buffer) start = data.byteOffset - buffer.byteOffset;
        else data.copy(buffer, 0);
        const pending = this.#hasher.update(slot, start, start + data.length);
        pending.catch(() => undefined); // awaited before the slot is reused, or below
        hashing[slot] = pending;
      }
    } finally {
      await Promise.allSettled(hashing);
    }
    await Promise.all(hashing);
    // Always finished, so the worker starts the next file afresh.
    const digest = await this.#hasher.finish();
    return complete ? digest : null;
  }

  close(): Promise<void> {
    return this.#hasher.close();
  }
}

/** At most `size` lanes, made when first needed and reused. */
class LanePool {
  readonly #size: number;
  readonly #idle: HashLane[] = [];
  readonly #all: HashLane[] = [];
  readonly #waiting: ((lane: HashLane) => void)[] = [];

  constructor(size: number) {
    this.#size = size;
  }

  async acquire(bytes: number): Promise<HashLane> {
    let lane = this.#idle.pop();
    if (!lane && this.#all.length < this.#size) {
      lane = new HashLane();
      this.#all.push(lane);
    }
    lane ??= await new Promise<HashLane>((resolve) => this.#waiting.push(resolve));
    lane.reserve(bytes);
    return lane;
  }

  release(lane: HashLane): void {
    const next = this.#waiting.shift();
    if (next) next(lane);
    else this.#idle.push(lane);
  }

  async close(): Promise<void> {
    await Promise.all(this.#all.map((lane) => lane.close()));
  }
}

function keyed(source: VerifySource, plainId: ObjectId): ObjectId {
  return source.keyId?.(plainId) ?? plainId;
}

/** The source of a local repository: its object store. */
export function storeSource(store: ObjectStore): VerifySource {
  return {
    read: (id) => store.read(id),
    readRecord: (id, into) => store.readRecord(id, into),
    decodeStored: (id, record) => store.decodeStored(id, record),
    keyId: (plainId) => store.keyId(plainId),
    missing: async (ids) => {
      const present = new Array<boolean>(ids.length);
      await eachLimited(ids, QUICK_PARALLEL, async (id, i) => {
        present[i] = await store.has(id);
      });
      return ids.filter((_, i) => !present[i]);
    },
    deltaBases: async (id) => {
      const handle = await store.open(id);
      try {
        // The header, the base count, up to MAX_BASES IDs, the depth and one byte of frame.
        const prefix = Buffer.alloc(HEADER_SIZE + 1 + 32 * MAX_BASES + 2);
        const { bytesRead } = await handle.read(prefix, 0, prefix.length, 0);
        const header = decodeHeader(id, prefix.subarray(0, bytesRead));
        if (header.codec !== Codec.delta) return [];
        const payload = prefix.subarray(HEADER_SIZE, bytesRead);
        const count = payload[0] ?? 0;
        return parseDeltaPayload(
          id,
          payload.subarray(0, Math.min(payload.length, 2 + 32 * count + 1)),
        ).bases;
      } finally {
        await handle.close();
      }
    },
  };
}

export interface LocalVerifyOptions extends VerifyOptions {
  /** Every ref's commit (branches, tags, remote-tracking, stash) and HEAD, instead of HEAD. */
  readonly all?: boolean | undefined;
}

/**
 * Verifies the files of `revisions` in a local repository (each resolved
 * to a commit; annotated tags peeled); none: HEAD's, or with `all` every
 * ref's. An unborn HEAD has nothing to verify (an empty report).
 */
export async function verify(
  repo: Repository,
  revisions: readonly string[],
  options: LocalVerifyOptions = {},
): Promise<VerifyReport> {
  const commits: ObjectId[] = [];
  for (const rev of revisions) commits.push(await resolveCommit(repo, rev));
  if (revisions.length === 0) {
    const refs = new Refs(repo);
    const head = (await refs.head()).id;
    if (head !== undefined) commits.push(await peelToCommit(repo, head, 'HEAD'));
    if (options.all) {
      for (const ref of await refs.list('refs/')) {
        try {
          commits.push(await peelToCommit(repo, ref.id, ref.name));
        } catch (error) {
          // A ref naming a tree or blob has no files to verify as a commit's.
          if (error instanceof MediaGitError && error.code === 'NOT_A_COMMIT') continue;
          // A ref to a lost commit is reported by the walk.
          if (isDamage(error)) commits.push(ref.id);
          else throw error;
        }
      }
    }
  }
  return verifyCommits(storeSource(repo.objects), commits, options);
}

/** The annotated-tag chain of `id` peeled to what it finally names (for sources without revision parsing). */
export async function peelTags(source: VerifySource, id: ObjectId): Promise<ObjectId> {
  let current = id;
  for (let depth = 0; depth < 10; depth++) {
    const object = await source.read(current);
    if (object.type !== 'tag') return current;
    current = decodeTag(current, object.data).object;
  }
  return current;
}
