/**
 * Media-aware merges: when both sides changed a file, a strategy chosen by
 * the file's detected format may still combine them part by part (metadata
 * blocks, layers, tiles, nodes, clips, tracks) before the merge declares a
 * ModifyModify conflict. Design: docs/media-merge.md.
 *
 * The rules every strategy keeps:
 * - A part is unchanged only when its bytes (or its decoded data) are equal;
 *   a perceptual likeness never decides a merge.
 * - A part changed on one side only takes that side's version; a part both
 *   sides changed differently is a conflict that names the part.
 * - Output is deterministic: the same three inputs give the same bytes.
 * - A file the strategy cannot parse is declined, not guessed at: the merge
 *   then does what it would do with no strategy (a line merge for text, a
 *   binary conflict otherwise).
 *
 * Each family is a folder under `merge/` whose `index.ts` exports
 * `strategies`; this registry names them without loading them, so commands
 * that never merge media do not pay for sharp, ag-psd or glTF-Transform.
 */
import type { MediaFormat } from './detect.ts';
import type { RandomAccess } from './info/random-access.ts';

export type Side = 'base' | 'ours' | 'theirs';

/** A run of one input's bytes, copied into the result without being held in memory. */
export interface SidePiece {
  readonly side: Side;
  readonly offset: number;
  readonly length: number;
}

/** The merged file: its bytes, or the pieces it is made of, in order. */
export type MergedContent = Uint8Array | { readonly pieces: readonly (Uint8Array | SidePiece)[] };

export type StrategyResult =
  /** Merged; `summary` says what came from where, in one line ("layer 'Sky' from theirs"). */
  | { readonly merged: MergedContent; readonly summary: string }
  /** Both sides changed one part differently; names the part ("both sides changed layer 'Sky'"). */
  | { readonly conflict: string }
  /** Not a file this strategy can merge after all (did not parse, unsupported variant). */
  | { readonly declined: string };

export interface MergeInput {
  /** The file's path in the repository (for messages only). */
  readonly path: string;
  readonly format: MediaFormat;
  readonly base: RandomAccess;
  readonly ours: RandomAccess;
  readonly theirs: RandomAccess;
}

export interface MergeStrategy {
  /** Shown in reports: "psd-layers", "image-tiles", "gltf-scene". */
  readonly name: string;
  /** Whether this strategy merges files of this format (detect.ts ids: "png", "glb", "nk"). */
  accepts(format: MediaFormat): boolean;
  /**
   * The largest input this strategy reads whole into memory; Infinity for
   * one that reads through its RandomAccess inputs in bounded pieces.
   */
  readonly maxBytes: number;
  merge(input: MergeInput): Promise<StrategyResult>;
  /**
   * What changed between two versions, in the format's own terms, one line
   * each ("pixels unchanged; EXIF changed", "visually identical"), for `diff`.
   */
  describe?(before: RandomAccess, after: RandomAccess, format: MediaFormat): Promise<string[]>;
}

/** A family's entry: which formats it takes, and how to load its strategies. */
interface Family {
  readonly name: string;
  readonly formats: ReadonlySet<string>;
  readonly load: () => Promise<{ readonly strategies: readonly MergeStrategy[] }>;
}

const FAMILIES: readonly Family[] = [
  {
    name: 'layered',
    formats: new Set(['psd', 'psb', 'ora', 'kra']),
    load: () => import('./merge/layered/index.ts'),
  },
  {
    name: 'vfx',
    formats: new Set(['nk', 'exr']),
    load: () => import('./merge/vfx/index.ts'),
  },
  {
    name: 'timeline',
    formats: new Set(['otio', 'mp4', 'mov', 'm4v', 'edl', 'fcpxml']),
    load: () => import('./merge/timeline/index.ts'),
  },
  {
    name: 'scene',
    formats: new Set(['glb', 'gltf', 'obj', 'mtl']),
    load: () => import('./merge/scene/index.ts'),
  },
  {
    name: 'image',
    formats: new Set(['jpg', 'png', 'webp', 'tif']),
    load: () => import('./merge/image/index.ts'),
  },
  {
    name: 'audio',
    formats: new Set(['wav', 'aiff', 'aifc', 'rpp']),
    load: () => import('./merge/audio/index.ts'),
  },
];

/** The strategy for a detected format, if there is one. */
export async function mergeStrategyFor(format: MediaFormat): Promise<MergeStrategy | undefined> {
  for (const family of FAMILIES) {
    if (!family.formats.has(format.format)) continue;
    const { strategies } = await family.load();
    const strategy = strategies.find((s) => s.accepts(format));
    if (strategy) return strategy;
  }
  return undefined;
}

/** Whether any family merges this format, without loading it. */
export function hasMergeStrategy(format: MediaFormat): boolean {
  return FAMILIES.some((family) => family.formats.has(format.format));
}

/** Reads a whole input into memory: for strategies whose `maxBytes` bounds their inputs. */
export async function readWhole(access: RandomAccess): Promise<Buffer> {
  const data = await access.read(0, access.size);
  if (data.length !== access.size) {
    throw new Error(`short read: ${data.length} of ${access.size} bytes`);
  }
  return Buffer.from(data);
}

/** How much of a side piece is read at once when a merged file is written out. */
const COPY_SPAN = 8 * 1024 * 1024;

/** The merged file's length in bytes. */
export function mergedSize(content: MergedContent): number {
  if (content instanceof Uint8Array) return content.length;
  let total = 0;
  for (const piece of content.pieces) total += piece.length;
  return total;
}

/**
 * Writes a merged file from offset 0 of `write`'s target, copying side
 * pieces from the inputs COPY_SPAN at a time, so a merge that keeps most of
 * a 500 MB file from one side never holds it in memory.
 */
export async function writeMerged(
  content: MergedContent,
  sides: Pick<MergeInput, Side>,
  write: (data: Uint8Array) => Promise<void>,
): Promise<number> {
  if (content instanceof Uint8Array) {
    await write(content);
    return content.length;
  }
  let total = 0;
  for (const piece of content.pieces) {
    if (piece instanceof Uint8Array) {
      if (piece.length > 0) await write(piece);
      total += piece.length;
      continue;
    }
    const access = sides[piece.side];
    if (piece.offset < 0 || piece.offset + piece.length > access.size) {
      throw new Error(
        `merge piece ${piece.offset}+${piece.length} is outside ${piece.side} (${access.size} bytes)`,
      );
    }
    for (let at = 0; at < piece.length;) {
      const data = await access.read(piece.offset + at, Math.min(COPY_SPAN, piece.length - at));
      if (data.length === 0) throw new Error(`short read of ${piece.side} at ${piece.offset + at}`);
      await write(data);
      at += data.length;
    }
    total += piece.length;
  }
  return total;
}

/** The three inputs in memory, for strategies whose `maxBytes` bounds them. */
export async function readSides(input: MergeInput): Promise<[Buffer, Buffer, Buffer]> {
  return [await readWhole(input.base), await readWhole(input.ours), await readWhole(input.theirs)];
}
