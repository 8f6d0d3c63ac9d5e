/**
 * Storage profiles: how a file of a detected format is to be chunked,
 * compressed and delta-encoded (ARCHITECTURE.md §4, the seed's table).
 *
 * The profile is advice computed from the format and the file size; what was
 * actually done is recorded per object (the codec in each object header, the
 * chunker in each manifest), so reads never consult this table.
 */
import type { CompressionPolicy } from '../compression/codec.ts';
import { isTextFormat, type MediaFormat } from './detect.ts';
import type { MediaCategory } from './formats.ts';

/**
 * Where cut points go: content-defined (FastCDC), fixed-size (already
 * compressed data, where CDC finds no structure to follow), or at the units of
 * a container (MP4/MOV atoms, EBML clusters, RIFF and AIFF chunks, GLB chunks)
 * with CDC inside large units.
 */
import type { ChunkingStrategy } from '../chunking/containers.ts';

export type { ChunkingStrategy };

export interface DeltaPolicy {
  readonly enabled: boolean;
  /** Fraction of shared content (0-1) a base must have to be used for a delta. */
  readonly minSimilarity: number;
  /** Longest chain of deltas before a full copy is stored. */
  readonly maxDepth: number;
}

export interface StorageProfile {
  readonly chunking: ChunkingStrategy;
  readonly compression: CompressionPolicy;
  readonly delta: DeltaPolicy;
}

/** Text at or above this size goes to zstd instead of Brotli (ARCHITECTURE.md §4). */
export const BROTLI_TEXT_LIMIT = 500_000_000;

/** No delta chain is ever longer than this, whatever the category. */
export const MAX_DELTA_DEPTH = 10;

const NO_DELTA: DeltaPolicy = { enabled: false, minSimilarity: 1, maxDepth: 0 };

const delta = (minSimilarity: number, maxDepth: number): DeltaPolicy => ({
  enabled: true,
  minSimilarity,
  maxDepth: Math.min(maxDepth, MAX_DELTA_DEPTH),
});

/** Delta thresholds by category (the seed's table); categories not listed get none. */
const DELTA_BY_CATEGORY: Partial<Record<MediaCategory, DeltaPolicy>> = {
  creative: delta(0.7, 10),
  ml: delta(0.75, 8),
  video: delta(0.8, 3),
  image: delta(0.85, 3),
  layered: delta(0.85, 3),
};

export function storageProfileFor(format: MediaFormat, size: number): StorageProfile {
  return {
    chunking: chunkingFor(format),
    compression: compressionFor(format, size),
    delta: DELTA_BY_CATEGORY[format.category] ?? NO_DELTA,
  };
}

function chunkingFor(format: MediaFormat): ChunkingStrategy {
  if (format.container !== undefined) return format.container;
  return format.alreadyCompressed ? 'fixed' : 'cdc';
}

/**
 * Already-compressed payloads are stored; ML tensors get fast zstd; creative
 * projects zstd (their delta settings matter more than the codec); text
 * (including textual 3D, USD and design formats such as .gltf, .usda and .svg)
 * Brotli below 500 MB and zstd above; every other binary zstd, whose entropy
 * probe still stores data that turns out to be incompressible.
 */
function compressionFor(format: MediaFormat, size: number): CompressionPolicy {
  if (format.alreadyCompressed) return 'store';
  if (format.category === 'ml') return 'zstd-fast';
  if (format.category === 'creative') return 'zstd';
  if (isTextFormat(format)) return size < BROTLI_TEXT_LIMIT ? 'brotli' : 'zstd';
  return 'zstd';
}
