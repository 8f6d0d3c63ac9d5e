/**
 * `stats`: what a repository's content is and what storing it costs
 * (definitions of every figure: docs/stats.md).
 *
 * Two passes, neither of which reads file contents:
 * - the reachability walk reads the commits, tags, trees and manifests
 *   reachable from the refs and assigns every object they reach to a
 *   bucket: the format category of the first file (in walk order) that
 *   uses it, or "metadata" (commits, tags, trees);
 * - the census (`ObjectStoreCensus`) lists every file of the object store
 *   with its size and reads every stored object's 16-byte header (type,
 *   codec, raw size) without decompressing it: one read per loose object,
 *   and for packs the record lengths come from their indexes and nearby
 *   headers are read together.
 *
 * The engine (`computeStats`) is shared by local repositories (`repoStats`,
 * census on the local disk) and repositories on a server root's storage
 * backend (protocol/root-stats.ts, census through the storage interface).
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { Codec } from '../compression/codec.ts';
import { hasErrnoCode, MediaGitError } from '../errors.ts';
import { detectFormat } from '../media/detect.ts';
import type { MediaCategory } from '../media/formats.ts';
import { decodeCommit, decodeTag } from '../odb/commit.ts';
import { decodeManifest } from '../odb/manifest.ts';
import { isObjectId, type ObjectId } from '../odb/object-id.ts';
import {
  decodeHeader,
  HEADER_SIZE,
  ObjectType,
  type ObjectStore,
  type ObjectTypeName,
} from '../odb/object-store.ts';
import { decodeTree, type TreeEntry } from '../odb/tree.ts';
import { eachLimited } from '../storage/concurrency.ts';
import { Refs } from './refs.ts';
import type { Repository } from './repository.ts';

/** Every format category, in the order reports list them (media/formats.ts). */
export const STATS_CATEGORIES: readonly MediaCategory[] = [
  'video',
  'audio',
  'audio-compressed',
  'image',
  'layered',
  '3d',
  'design',
  'usd',
  'creative',
  'ml',
  'text',
  'archive',
  'unknown',
];

/** Upper bounds (bytes, inclusive) of the chunk size buckets; a last bucket holds the rest. */
export const CHUNK_SIZE_BUCKETS: readonly number[] = [
  64 * 1024,
  128 * 1024,
  256 * 1024,
  512 * 1024,
  1024 * 1024,
  2 * 1024 * 1024,
  4 * 1024 * 1024,
  8 * 1024 * 1024,
  16 * 1024 * 1024,
  32 * 1024 * 1024,
];

export interface CategoryStats {
  readonly category: MediaCategory;
  /** Distinct file versions first reached as a file of this category. */
  readonly files: number;
  /** Their sizes. */
  readonly logicalBytes: number;
  /** Raw bytes of the distinct blobs and chunks assigned to the category. */
  readonly uniqueBytes: number;
  /** Record bytes of the objects assigned to it (blobs, chunks, manifests). */
  readonly storedBytes: number;
}

export interface TypeStats {
  readonly count: number;
  readonly rawBytes: number;
  readonly storedBytes: number;
}

export interface ChunkSizeStats {
  readonly count: number;
  readonly bytes: number;
  readonly min: number;
  readonly median: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
  readonly mean: number;
  /** Chunks per size range: sizes above the previous bucket's `upTo` up to this one's (null: no bound). */
  readonly buckets: readonly { readonly upTo: number | null; readonly count: number }[];
}

export interface RepoStats {
  /** Refs the walk started from (HEAD counts when detached). */
  readonly refs: number;
  readonly commits: number;
  /** Distinct file versions reachable. */
  readonly files: number;
  readonly logicalBytes: number;
  readonly uniqueBytes: number;
  /** Bytes of every file in the object store. */
  readonly storedBytes: number;
  /** Blocks allocated to the object store on disk (`du -B1`); null on a storage backend. */
  readonly allocatedBytes: number | null;
  readonly dedupRatio: number;
  readonly compressionRatio: number;
  readonly reductionRatio: number;
  /** Categories with files or stored bytes, largest logical size first. */
  readonly categories: readonly CategoryStats[];
  readonly metadata: { readonly objects: number; readonly storedBytes: number };
  readonly unreachable: { readonly objects: number; readonly storedBytes: number };
  readonly duplicates: { readonly copies: number; readonly bytes: number };
  readonly overheadBytes: number;
  /** Reachable objects stored nowhere (a shallow clone's cut-off parents excepted). */
  readonly missingObjects: number;
  /**
   * Of a partial clone (`promised`): reachable file objects (manifests,
   * blobs, chunks) absent here, promised by its remote; not in `missingObjects`.
   */
  readonly promisedObjects?: number;
  /** Stored objects whose header cannot be read. */
  readonly unreadableObjects: number;
  readonly objects: TypeStats & { readonly byType: Readonly<Record<ObjectTypeName, TypeStats>> };
  readonly compression: {
    readonly objects: number;
    readonly rawBytes: number;
    readonly storedBytes: number;
  };
  readonly deltas: {
    readonly objects: number;
    readonly rawBytes: number;
    readonly storedBytes: number;
    readonly savingsBytes: number;
  };
  readonly chunks: ChunkSizeStats;
  readonly store: {
    readonly loose: { readonly objects: number; readonly bytes: number };
    readonly packs: { readonly count: number; readonly bytes: number; readonly objects: number };
    readonly indexes: { readonly count: number; readonly bytes: number };
    readonly other: { readonly count: number; readonly bytes: number };
  };
}

/** One stored copy of an object, with its header or why that cannot be read. */
export interface StoredRecord {
  readonly id: ObjectId;
  /** Its record's length: the loose file's size, or the length its pack index gives. */
  readonly storedSize: number;
  readonly packed: boolean;
  readonly header?: {
    readonly type: ObjectTypeName;
    readonly codec: number;
    readonly rawSize: number;
  };
  readonly error?: string;
}

/** Files of an object store, by kind. */
export interface StoreFiles {
  readonly loose: { files: number; bytes: number };
  readonly packs: { files: number; bytes: number };
  readonly indexes: { files: number; bytes: number };
  readonly other: { files: number; bytes: number };
  /** Blocks allocated (files and folders), where the store is a local folder. */
  readonly allocatedBytes: number | null;
}

/** What the engine needs to know about an object store's files and records. */
export interface ObjectStoreCensus {
  /**
   * Lists every file of the store and calls `visit` once per stored copy
   * of each object (an object may be stored loose and packed, or in several
   * packs), with its header.
   */
  scan(visit: (record: StoredRecord) => void, signal?: AbortSignal): Promise<StoreFiles>;
}

export interface StatsInput {
  readonly census: ObjectStoreCensus;
  /** Where the walk starts, in this order: every ref's ID by ref name (and a detached HEAD). */
  readonly tips: readonly ObjectId[];
  /** Reads and verifies a commit, tag, tree or manifest. */
  readonly read: (id: ObjectId) => Promise<{ type: ObjectTypeName; data: Buffer }>;
  /** Commits whose parents are deliberately absent (a shallow clone). */
  readonly shallow?: ReadonlySet<ObjectId> | undefined;
  /** A partial clone: absent file objects are promised by its remote, not missing. */
  readonly promised?: boolean | undefined;
  readonly signal?: AbortSignal | undefined;
  /** Objects walked so far (the walk), then records read (the census). */
  readonly onProgress?:
    ((event: { phase: 'walk' | 'census'; objects: number }) => void) | undefined;
}

const METADATA = STATS_CATEGORIES.length;
const UNREACHABLE = METADATA + 1;
/** Headers read at once (loose files, pack ranges). */
const HEADER_PARALLEL = 16;
/** Headers of records this close together are read with one read. */
const HEADER_GAP = 64 * 1024;
/** The most one read of headers spans. */
const HEADER_SPAN = 1024 * 1024;

const categoryByExtension = new Map<string, number>();

/** The category of a file by its name's extension (formats.ts); no content is read. */
function categoryIndex(name: string): number {
  const dot = name.lastIndexOf('.');
  const ext = dot <= 0 ? '' : name.slice(dot + 1).toLowerCase();
  let index = categoryByExtension.get(ext);
  if (index === undefined) {
    const category = ext === '' ? 'unknown' : detectFormat(new Uint8Array(0), `f.${ext}`).category;
    index = STATS_CATEGORIES.indexOf(category);
    if (index < 0) index = STATS_CATEGORIES.indexOf('unknown');
    categoryByExtension.set(ext, index);
  }
  return index;
}

function isDamage(error: unknown): boolean {
  return (
    error instanceof MediaGitError &&
    (error.kind === 'corrupt' || error.code === 'BAD_OBJECT_RECORD')
  );
}

function ratio(numerator: number, denominator: number): number {
  return denominator > 0 ? numerator / denominator : 1;
}

/** Computes a repository's figures from its refs, its objects and its store's files. */
export async function computeStats(input: StatsInput): Promise<RepoStats> {
  const { read, signal } = input;
  const shallow = input.shallow ?? new Set<ObjectId>();
  const buckets = STATS_CATEGORIES.length + 2;
  const files = new Float64Array(buckets);
  const logical = new Float64Array(buckets);
  const unique = new Float64Array(buckets);
  const stored = new Float64Array(buckets);
  const objectsIn = new Float64Array(buckets);

  // The walk: every reachable object, assigned to a bucket.
  const bucketOf = new Map<ObjectId, number>();
  let commits = 0;
  let walked = 0;
  const tryRead = async (
    id: ObjectId,
  ): Promise<{ type: ObjectTypeName; data: Buffer } | undefined> => {
    try {
      return await read(id);
    } catch (error) {
      if (isDamage(error)) return undefined; // missing or damaged: counted as missing below
      throw error;
    }
  };
  const addFile = async (entry: TreeEntry): Promise<void> => {
    if (bucketOf.has(entry.id)) return;
    const category = categoryIndex(entry.name);
    bucketOf.set(entry.id, category);
    files[category]!++;
    logical[category]! += entry.size;
    if (entry.kind === 'blob') {
      unique[category]! += entry.size;
      return;
    }
    const object = await tryRead(entry.id);
    if (!object || object.type !== 'manifest') return;
    let chunks;
    try {
      chunks = decodeManifest(entry.id, object.data).chunks;
    } catch (error) {
      if (isDamage(error)) return;
      throw error;
    }
    for (const chunk of chunks) {
      if (bucketOf.has(chunk.id)) continue;
      bucketOf.set(chunk.id, category);
      unique[category]! += chunk.length;
    }
  };
  const walkTree = async (root: ObjectId): Promise<void> => {
    const pending = [root];
    while (pending.length > 0) {
      const id = pending.pop()!;
      if (bucketOf.has(id)) continue;
      bucketOf.set(id, METADATA);
      signal?.throwIfAborted();
      const object = await tryRead(id);
      if (!object || object.type !== 'tree') continue;
      let entries;
      try {
        entries = decodeTree(id, object.data);
      } catch (error) {
        if (isDamage(error)) continue;
        throw error;
      }
      for (const entry of entries) {
        if (entry.kind === 'tree') pending.push(entry.id);
        else await addFile(entry);
      }
      input.onProgress?.({ phase: 'walk', objects: ++walked });
    }
  };
  const tips = [...new Set(input.tips)];
  const pending = [...tips].reverse();
  while (pending.length > 0) {
    const id = pending.pop()!;
    if (bucketOf.has(id)) continue;
    signal?.throwIfAborted();
    const object = await tryRead(id);
    if (!object) {
      bucketOf.set(id, METADATA);
      continue;
    }
    if (object.type === 'blob' || object.type === 'manifest') {
      // A ref naming a file directly (no name, so no category).
      await addFile({ name: '', mode: '100644', kind: object.type, id, size: object.data.length });
      continue;
    }
    if (object.type === 'tree') {
      await walkTree(id);
      continue;
    }
    bucketOf.set(id, METADATA);
    try {
      if (object.type === 'tag') {
        pending.push(decodeTag(id, object.data).object);
      } else if (object.type === 'commit') {
        commits++;
        const commit = decodeCommit(id, object.data);
        await walkTree(commit.tree);
        if (!shallow.has(id))
          for (const parent of [...commit.parents].reverse()) pending.push(parent);
      }
    } catch (error) {
      if (!isDamage(error)) throw error;
    }
    input.onProgress?.({ phase: 'walk', objects: ++walked });
  }
  const bucketFor = (id: ObjectId): number => bucketOf.get(id) ?? UNREACHABLE;

  // The census: every stored copy, once per ID; further copies are duplicates.
  const seen = new Set<ObjectId>();
  const byType = Object.fromEntries(
    Object.keys(ObjectType).map((type) => [type, { count: 0, rawBytes: 0, storedBytes: 0 }]),
  ) as Record<ObjectTypeName, { count: number; rawBytes: number; storedBytes: number }>;
  const compression = { objects: 0, rawBytes: 0, storedBytes: 0 };
  const deltas = { objects: 0, rawBytes: 0, storedBytes: 0 };
  const duplicates = { copies: 0, bytes: 0 };
  let recordBytes = 0;
  let packedObjects = 0;
  let unreadable = 0;
  let census = 0;
  const chunkSizes: number[] = [];
  const storeFiles = await input.census.scan((record) => {
    recordBytes += record.storedSize;
    if (seen.has(record.id)) {
      duplicates.copies++;
      duplicates.bytes += record.storedSize;
      return;
    }
    seen.add(record.id);
    if (record.packed) packedObjects++;
    const bucket = bucketFor(record.id);
    stored[bucket]! += record.storedSize;
    objectsIn[bucket]!++;
    if (++census % 4096 === 0) input.onProgress?.({ phase: 'census', objects: census });
    const header = record.header;
    if (!header) {
      unreadable++;
      return;
    }
    const totals = byType[header.type];
    totals.count++;
    totals.rawBytes += header.rawSize;
    totals.storedBytes += record.storedSize;
    if (header.codec === Codec.delta) {
      deltas.objects++;
      deltas.rawBytes += header.rawSize;
      deltas.storedBytes += record.storedSize;
    } else {
      compression.objects++;
      compression.rawBytes += header.rawSize;
      compression.storedBytes += record.storedSize;
    }
    if (header.type === 'chunk') chunkSizes.push(header.rawSize);
  }, signal);

  let missing = 0;
  let promised = 0;
  for (const [id, bucket] of bucketOf) {
    if (seen.has(id)) continue;
    // Files' objects carry their category's bucket; commits and trees METADATA.
    if (input.promised === true && bucket < STATS_CATEGORIES.length) promised++;
    else missing++;
  }
  // The parents a shallow clone cut off were never reached: not missing.

  const sum = (values: Float64Array, count: number): number => {
    let total = 0;
    for (let i = 0; i < count; i++) total += values[i]!;
    return total;
  };
  const categoryCount = STATS_CATEGORIES.length;
  const logicalBytes = sum(logical, categoryCount);
  const uniqueBytes = sum(unique, categoryCount);
  const storedBytes =
    storeFiles.loose.bytes +
    storeFiles.packs.bytes +
    storeFiles.indexes.bytes +
    storeFiles.other.bytes;
  const categories: CategoryStats[] = [];
  STATS_CATEGORIES.forEach((category, i) => {
    if (files[i] === 0 && stored[i] === 0) return;
    categories.push({
      category,
      files: files[i]!,
      logicalBytes: logical[i]!,
      uniqueBytes: unique[i]!,
      storedBytes: stored[i]!,
    });
  });
  categories.sort(
    (a, b) =>
      b.logicalBytes - a.logicalBytes ||
      STATS_CATEGORIES.indexOf(a.category) - STATS_CATEGORIES.indexOf(b.category),
  );
  const objectTotals = Object.values(byType).reduce(
    (all, t) => ({
      count: all.count + t.count,
      rawBytes: all.rawBytes + t.rawBytes,
      storedBytes: all.storedBytes + t.storedBytes,
    }),
    { count: 0, rawBytes: 0, storedBytes: 0 },
  );
  return {
    refs: input.tips.length,
    commits,
    files: sum(files, categoryCount),
    logicalBytes,
    uniqueBytes,
    storedBytes,
    allocatedBytes: storeFiles.allocatedBytes,
    dedupRatio: ratio(logicalBytes, uniqueBytes),
    compressionRatio: ratio(compression.rawBytes, compression.storedBytes),
    reductionRatio: ratio(logicalBytes, storedBytes),
    categories,
    metadata: { objects: objectsIn[METADATA]!, storedBytes: stored[METADATA]! },
    unreachable: { objects: objectsIn[UNREACHABLE]!, storedBytes: stored[UNREACHABLE]! },
    duplicates,
    overheadBytes: storedBytes - recordBytes,
    missingObjects: missing,
    ...(input.promised === true ? { promisedObjects: promised } : {}),
    unreadableObjects: unreadable,
    objects: { ...objectTotals, byType },
    compression,
    deltas: { ...deltas, savingsBytes: deltas.rawBytes - deltas.storedBytes },
    chunks: chunkSizeStats(chunkSizes),
    store: {
      loose: { objects: storeFiles.loose.files, bytes: storeFiles.loose.bytes },
      packs: {
        count: storeFiles.packs.files,
        bytes: storeFiles.packs.bytes,
        objects: packedObjects,
      },
      indexes: { count: storeFiles.indexes.files, bytes: storeFiles.indexes.bytes },
      other: { count: storeFiles.other.files, bytes: storeFiles.other.bytes },
    },
  };
}

/** Count, extremes, nearest-rank percentiles and buckets of the chunks' raw sizes. */
export function chunkSizeStats(sizes: number[]): ChunkSizeStats {
  const sorted = Float64Array.from(sizes).sort();
  const n = sorted.length;
  const rank = (p: number): number => (n === 0 ? 0 : sorted[Math.max(0, Math.ceil(p * n) - 1)]!);
  let bytes = 0;
  for (const size of sorted) bytes += size;
  const counts = new Array<number>(CHUNK_SIZE_BUCKETS.length + 1).fill(0);
  let bucket = 0;
  for (const size of sorted) {
    while (bucket < CHUNK_SIZE_BUCKETS.length && size > CHUNK_SIZE_BUCKETS[bucket]!) bucket++;
    counts[bucket]!++;
  }
  return {
    count: n,
    bytes,
    min: n === 0 ? 0 : sorted[0]!,
    median: rank(0.5),
    p90: rank(0.9),
    p99: rank(0.99),
    max: n === 0 ? 0 : sorted[n - 1]!,
    mean: n === 0 ? 0 : bytes / n,
    buckets: counts.map((count, i) => ({ upTo: CHUNK_SIZE_BUCKETS[i] ?? null, count })),
  };
}

/** A record of a pack: where it is (from the pack's index). */
export interface PackRecord {
  readonly id: ObjectId;
  readonly offset: number;
  readonly length: number;
}

/**
 * Reads the header of every record of one pack with few reads: records
 * whose headers lie within HEADER_GAP of each other are read together (a
 * pack of small metadata records is read in a few spans, a pack of chunks
 * 16 bytes per chunk), HEADER_PARALLEL reads at a time.
 */
export async function readPackHeaders(
  records: readonly PackRecord[],
  readRange: (start: number, end: number) => Promise<Uint8Array>,
  visit: (record: StoredRecord) => void,
  signal?: AbortSignal,
): Promise<void> {
  const sorted = [...records].sort((a, b) => a.offset - b.offset);
  const spans: PackRecord[][] = [];
  let span: PackRecord[] = [];
  for (const record of sorted) {
    const first = span[0];
    const last = span[span.length - 1];
    if (
      first &&
      last &&
      (record.offset - (last.offset + HEADER_SIZE) > HEADER_GAP ||
        record.offset + HEADER_SIZE - first.offset > HEADER_SPAN)
    ) {
      spans.push(span);
      span = [];
    }
    span.push(record);
  }
  if (span.length > 0) spans.push(span);
  await eachLimited(spans, HEADER_PARALLEL, async (group) => {
    signal?.throwIfAborted();
    const start = group[0]!.offset;
    const end = group[group.length - 1]!.offset + HEADER_SIZE;
    const bytes = await readRange(start, end);
    for (const record of group) {
      const at = record.offset - start;
      visit(headerRecord(record.id, record.length, true, bytes.subarray(at, at + HEADER_SIZE)));
    }
  });
}

/** A stored copy with its header decoded, or the reason it cannot be. */
export function headerRecord(
  id: ObjectId,
  storedSize: number,
  packed: boolean,
  bytes: Uint8Array,
): StoredRecord {
  try {
    if (storedSize < HEADER_SIZE) throw new Error('record is shorter than its header');
    const header = decodeHeader(id, bytes);
    return { id, storedSize, packed, header };
  } catch (error) {
    return {
      id,
      storedSize,
      packed,
      error: error instanceof Error ? error.message : String(error),
    };
  }
}

export type StoreFileKind = 'loose' | 'packs' | 'indexes' | 'other';

/** What a file of an object store is, by its path relative to `objects/`. */
export function storeFileKind(relative: string): StoreFileKind {
  if (/^[0-9a-f]{2}\/[0-9a-f]{62}$/.test(relative)) return 'loose';
  if (/^pack\/pack-[0-9a-f]{64}\.pack$/.test(relative)) return 'packs';
  if (
    /^pack\/pack-[0-9a-f]{64}\.idx$/.test(relative) ||
    /^index\/[0-9a-f]{64}\.idx$/.test(relative)
  )
    return 'indexes';
  return 'other';
}

export function emptyStoreFiles(allocatedBytes: number | null): StoreFiles {
  return {
    loose: { files: 0, bytes: 0 },
    packs: { files: 0, bytes: 0 },
    indexes: { files: 0, bytes: 0 },
    other: { files: 0, bytes: 0 },
    allocatedBytes,
  };
}

/**
 * The census of a local object store: its folder walked (every file's
 * size, and the blocks of files and folders as `du` counts them), loose
 * headers read one file at a time, packed ones through the packs' indexes.
 */
export function localCensus(store: ObjectStore): ObjectStoreCensus {
  return {
    async scan(visit, signal) {
      const root = store.objectsDir;
      let allocated = 0;
      const totals = emptyStoreFiles(0);
      const loose: { id: ObjectId; file: string }[] = [];
      const walk = async (dir: string, relative: string): Promise<void> => {
        let entries;
        try {
          entries = await fs.readdir(dir, { withFileTypes: true });
        } catch (error) {
          if (hasErrnoCode(error, 'ENOENT') || hasErrnoCode(error, 'ENOTDIR')) return;
          throw error;
        }
        for (const entry of entries) {
          signal?.throwIfAborted();
          const file = path.join(dir, entry.name);
          const rel = relative === '' ? entry.name : `${relative}/${entry.name}`;
          if (entry.isDirectory()) {
            allocated += await blocksOf(file);
            await walk(file, rel);
            continue;
          }
          const kind = storeFileKind(rel);
          if (kind === 'loose') {
            // Size and blocks come with the header read.
            loose.push({ id: rel.replace('/', ''), file });
            continue;
          }
          let stat;
          try {
            stat = await fs.lstat(file);
          } catch (error) {
            if (hasErrnoCode(error, 'ENOENT')) continue; // removed meanwhile
            throw error;
          }
          totals[kind].files++;
          totals[kind].bytes += stat.size;
          allocated += stat.blocks * 512;
        }
      };
      allocated += await blocksOf(root);
      await walk(root, '');
      await eachLimited(loose, HEADER_PARALLEL, async ({ id, file }) => {
        signal?.throwIfAborted();
        let handle;
        try {
          handle = await fs.open(file, 'r');
        } catch (error) {
          if (hasErrnoCode(error, 'ENOENT')) return; // packed and removed meanwhile
          throw error;
        }
        try {
          const stat = await handle.stat();
          const header = Buffer.alloc(HEADER_SIZE);
          const { bytesRead } = await handle.read(header, 0, HEADER_SIZE, 0);
          totals.loose.files++;
          totals.loose.bytes += stat.size;
          allocated += stat.blocks * 512;
          visit(headerRecord(id, stat.size, false, header.subarray(0, bytesRead)));
        } finally {
          await handle.close();
        }
      });
      for (const pack of await store.packs.all()) {
        const records: PackRecord[] = [];
        for (let i = 0; i < pack.count; i++) records.push(pack.entryAt(i));
        const handle = await fs.open(pack.packPath, 'r');
        try {
          await readPackHeaders(
            records,
            async (start, end) => {
              const out = Buffer.alloc(end - start);
              let done = 0;
              while (done < out.length) {
                const { bytesRead } = await handle.read(out, done, out.length - done, start + done);
                if (bytesRead === 0) break;
                done += bytesRead;
              }
              return out.subarray(0, done);
            },
            visit,
            signal,
          );
        } finally {
          await handle.close();
        }
      }
      return { ...totals, allocatedBytes: allocated };
    },
  };
}

async function blocksOf(file: string): Promise<number> {
  try {
    return (await fs.lstat(file)).blocks * 512;
  } catch (error) {
    if (hasErrnoCode(error, 'ENOENT')) return 0;
    throw error;
  }
}

export interface RepoStatsOptions {
  readonly signal?: AbortSignal | undefined;
  readonly onProgress?: StatsInput['onProgress'];
}

/**
 * The figures of a local repository: reachable from HEAD and every ref
 * under refs/ (branches, tags, remote-tracking refs, the stash).
 */
export async function repoStats(
  repo: Repository,
  options: RepoStatsOptions = {},
): Promise<RepoStats> {
  const refs = new Refs(repo);
  const tips: ObjectId[] = (await refs.list('refs/')).map((ref) => ref.id);
  const head = await refs.head();
  if (head.branch === undefined && head.id !== undefined && isObjectId(head.id)) tips.push(head.id);
  return computeStats({
    census: localCensus(repo.objects),
    tips,
    // What is stored: a partial clone's absent objects are not fetched to be counted.
    read: (id) => repo.objects.readHere(id),
    shallow: repo.objects.shallow,
    promised: repo.objects.contentSource !== undefined,
    signal: options.signal,
    onProgress: options.onProgress,
  });
}
