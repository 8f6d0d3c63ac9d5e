/**
 * Container-aware cut points (ARCHITECTURE.md §4): offsets where a chunk must end because a
 * unit of the container format begins there. The caller ends a chunk exactly at each cut
 * and runs FastCDC between consecutive cuts, so content-defined chunking restarts at every
 * structural boundary: a metadata box that grows or moves leaves the media after it in the
 * same chunks, and each header whose size field changes with an edit is a small chunk of
 * its own instead of spoiling the large chunk that would have held it.
 *
 * Strategies (chosen by the caller from the file's format):
 * - `cdc`: no structural cuts; FastCDC over the whole file.
 * - `fixed`: no structural cuts; the caller cuts chunks of exactly `FIXED_CHUNK_SIZE`.
 * - `mp4` (MP4, MOV, M4A, fragmented MP4): every top-level box, `mdat` payload start,
 *   every child of `moov`, and around every sample table of 4 KiB or more inside a track
 *   (`containers/mp4.ts`).
 * - `ebml` (MKV, WebM): every top-level element, Segment payload start, every Segment
 *   child including every Cluster, unknown sizes included (`containers/ebml.ts`).
 * - `riff` (WAV, AVI, RF64) and `aiff` (AIFF, AIFF-C): every form and chunk, sample data
 *   start, AVI `movi` payload start (`containers/riff.ts`).
 * - `glb` (binary glTF 2.0): header end, every chunk, every BIN chunk's payload start
 *   (`containers/glb.ts`).
 *
 * The fallback for malformed input: a parser reads headers only, checks every size against
 * its parent and the file, and at the first thing that does not fit it stops and the cuts
 * found up to there are the result. A file whose first header does not parse gets none
 * (`[]`) and is cut as opaque bytes by FastCDC; a truncated file keeps the cuts of its
 * intact prefix, so it still dedups against the complete file. Cuts never change what is
 * stored, only where chunks end: restoring is byte-exact whatever the parser concluded.
 *
 * Determinism: the cuts are a function of the file's bytes and `maxCuts` only, so every
 * machine and every version cuts the same file the same way. Like the FastCDC rule, these
 * rules are fixed (`CONTAINER_CUT_RULES`, golden vectors in `containers.test.ts`): a change
 * is a new rule set with a new name, recorded by the caller next to the chunker.
 */
import {
  ContainerScan,
  ReaderFailure,
  ScanStop,
  type PositionalReader,
} from './containers/scan.ts';
import { ebmlCuts } from './containers/ebml.ts';
import { glbCuts } from './containers/glb.ts';
import { mp4Cuts } from './containers/mp4.ts';
import { aiffDialect, riffCuts, riffDialect } from './containers/riff.ts';

export type { PositionalReader } from './containers/scan.ts';

export type ChunkingStrategy = 'cdc' | 'fixed' | 'mp4' | 'ebml' | 'riff' | 'aiff' | 'glb';

export interface StructuralCutOptions {
  readonly signal?: AbortSignal | undefined;
  /**
   * At most this many cuts (default `defaultMaxCuts(size)`); the scan stops at the limit,
   * keeping those found. Part of the result: stored files must use the default.
   */
  readonly maxCuts?: number | undefined;
}

/** Name of this set of cut rules, for a manifest's chunker description. */
export const CONTAINER_CUT_RULES = 'containers-v1';

/**
 * Chunk size for the `fixed` strategy: every chunk is exactly this long except the last.
 * For formats whose content is already compressed (JPEG, PNG, ZIP-based documents, 7z),
 * where an edit re-encodes everything after it and CDC finds nothing to resynchronise on,
 * so its hashing pass would be spent for nothing; fixed chunks still share an unchanged
 * prefix or an appended tail. 1 MiB is the average of the smallest size tier, so chunk
 * counts, transfer granularity and per-chunk overhead (one object, one manifest line of
 * ~75 bytes, under 0.01 %) match those of a CDC-chunked file of the same size, and it is a
 * power of two, so ranged reads of a stored file map onto whole chunks. Formats with a
 * variable-length metadata block in front of compressed data (MP3 with ID3v2, FLAC) should
 * use `cdc`: a grown tag would shift every fixed chunk.
 */
export const FIXED_CHUNK_SIZE = 1024 * 1024;

/** One cut per 64 KiB of file, at least 1024: far above any real file's structure. */
export function defaultMaxCuts(size: number): number {
  return Math.max(1024, Math.floor(size / 65536));
}

type Parser = (scan: ContainerScan) => Promise<void>;

const PARSERS: Readonly<Record<ChunkingStrategy, Parser | undefined>> = {
  cdc: undefined,
  fixed: undefined,
  mp4: mp4Cuts,
  ebml: ebmlCuts,
  riff: (scan) => riffCuts(scan, riffDialect),
  aiff: (scan) => riffCuts(scan, aiffDialect),
  glb: glbCuts,
};

/**
 * Offsets where a chunk must end: ascending, unique, each 0 < o < size. `[]` for `cdc` and
 * `fixed`, and for a container whose first header does not parse (see the module comment
 * for the fallback). Reads only headers, through `reader`, a few KiB at a time; the work is
 * bounded by `maxCuts` and by a step budget of `4 * maxCuts + size / 1024` headers visited
 * (a step costs about 0.25 µs, so even a crafted file of 2-byte elements costs under
 * 0.3 s per GiB; real files visit one header per unit, and the budget only limits how far
 * an unknown-size Cluster of tiny blocks is walked).
 *
 * Never throws because of the file's content, even through a parser bug (the file is then
 * treated as opaque: `[]`). Rejects with the reader's own error when a read fails, with the
 * signal's reason when aborted, and with a RangeError for an unknown strategy, a size that
 * is not a safe non-negative integer or a `maxCuts` that is not one.
 */
export async function structuralCuts(
  strategy: ChunkingStrategy,
  reader: PositionalReader,
  options: StructuralCutOptions = {},
): Promise<number[]> {
  return await scanCuts(strategy, reader, options, false);
}

/**
 * `structuralCuts` that rethrows a parser bug instead of falling back to `[]`, for tests
 * and fuzzing, where a bug must fail loudly.
 */
export async function structuralCutsStrict(
  strategy: ChunkingStrategy,
  reader: PositionalReader,
  options: StructuralCutOptions = {},
): Promise<number[]> {
  return await scanCuts(strategy, reader, options, true);
}

async function scanCuts(
  strategy: ChunkingStrategy,
  reader: PositionalReader,
  options: StructuralCutOptions,
  strict: boolean,
): Promise<number[]> {
  if (!Object.hasOwn(PARSERS, strategy)) {
    throw new RangeError(`unknown chunking strategy ${JSON.stringify(strategy)}`);
  }
  const size = reader.size;
  if (!(Number.isSafeInteger(size) && size >= 0)) {
    throw new RangeError(`invalid reader size ${size}`);
  }
  const maxCuts = options.maxCuts ?? defaultMaxCuts(size);
  if (!(Number.isSafeInteger(maxCuts) && maxCuts >= 0)) {
    throw new RangeError(`invalid maxCuts ${maxCuts}`);
  }
  const { signal } = options;
  signal?.throwIfAborted();
  const parse = PARSERS[strategy];
  if (parse === undefined || maxCuts === 0) return [];
  const maxSteps = 4 * maxCuts + Math.floor(size / 1024);
  const scan = new ContainerScan(reader, { maxCuts, maxSteps }, signal);
  try {
    await parse(scan);
  } catch (error) {
    if (error instanceof ReaderFailure) throw error.cause;
    if (!(error instanceof ScanStop)) {
      if (strict || (signal?.aborted && error === signal.reason)) throw error;
      return [];
    }
  }
  return scan.cuts;
}
