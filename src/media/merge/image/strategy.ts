/**
 * The image merge (JPEG, PNG, WebP, TIFF). A file is its image data and its
 * metadata blocks (layout.ts). Metadata merges block by block; the image
 * data comes whole from the one side that changed it, so a metadata edit on
 * one side and a pixel edit on the other splice without re-encoding. When
 * both sides changed the image data, a lossless file (PNG, VP8L WebP, TIFF)
 * merges 64×64 tile by tile and is re-encoded with sharp; a lossy one is a
 * conflict unless one side's pixels decode equal to the base's.
 */
import type { MediaFormat } from '../../detect.ts';
import { bufferAccess } from '../../info/random-access.ts';
import {
  readWhole,
  type MergeInput,
  type MergeStrategy,
  type Side,
  type StrategyResult,
} from '../../merge-strategy.ts';
import { describeChange } from './describe.ts';
import { isContainer, layoutOf } from './containers.ts';
import {
  blockDigests,
  imageDigest,
  LayoutError,
  UnsupportedLayout,
  type Container,
  type ImageLayout,
} from './layout.ts';
import { mergeMetadata, splice, type PixelSource } from './splice.ts';
import {
  decode,
  encode,
  MAX_ENCODED_BYTES,
  mergeTiles,
  PixelProblem,
  shapeOf,
  type LosslessFormat,
  type Raster,
} from './tiles.ts';
import { tagName, tiffTags } from './tiff.ts';

const NAMES: Record<Container | 'tif', string> = {
  jpg: 'JPEG',
  png: 'PNG',
  webp: 'WebP',
  tif: 'TIFF',
};
const SIDES: readonly Side[] = ['base', 'ours', 'theirs'];

/** Runs a parse; a file that does not parse (or that the merge does not handle) is a decline. */
async function parsed<T>(what: string, parse: () => Promise<T>): Promise<T | { declined: string }> {
  try {
    return await parse();
  } catch (error) {
    if (error instanceof LayoutError)
      return { declined: `${what} does not parse: ${error.message}` };
    if (error instanceof UnsupportedLayout) return { declined: error.message };
    throw error;
  }
}

function declined(value: unknown): value is { declined: string } {
  return typeof value === 'object' && value !== null && 'declined' in value;
}

/** "both sides changed EXIF, text 'Title'"; long tile lists are cut short. */
function bothChanged(parts: readonly string[], kind = ''): string {
  const shown = parts.slice(0, 4).join(', ');
  const more = parts.length > 4 ? ` and ${parts.length - 4} more` : '';
  const noun = kind ? `${kind}${parts.length > 1 ? 's' : ''} ` : '';
  return `both sides changed ${noun}${shown}${more}`;
}

/** The merged pixels: one side's image data as it is, or an encoded merge of both. */
type PixelMerge =
  | { readonly side: Side }
  | { readonly encoded: Buffer; readonly summary: string }
  | { readonly conflict: string };

/**
 * Decodes the three sides, reading one encoded file into memory at a time,
 * for a merge that must look at pixels.
 */
async function decodeSides(
  input: MergeInput,
  name: string,
): Promise<Record<Side, Raster> | { conflict: string } | { declined: string }> {
  const largest = Math.max(input.base.size, input.ours.size, input.theirs.size);
  if (largest > MAX_ENCODED_BYTES) {
    return {
      conflict: `too large to merge (${largest} bytes; the pixel merge reads at most ${MAX_ENCODED_BYTES})`,
    };
  }
  const pixels = {} as Record<Side, Raster>;
  for (const side of SIDES) {
    const bytes = await readWhole(input[side]);
    try {
      pixels[side] = await decode(bytes);
    } catch (error) {
      if (error instanceof PixelProblem) return { conflict: error.message };
      return { declined: `${side} does not decode as ${name} (${(error as Error).message})` };
    }
  }
  return pixels;
}

/** Size and colour changes, named; undefined when all three rasters have one shape. */
function shapeChange(p: Record<Side, Raster>): string | undefined {
  for (const side of ['ours', 'theirs'] as const) {
    if (p[side].width !== p.base.width || p[side].height !== p.base.height) {
      return `the canvas size changed (${p.base.width}x${p.base.height} to ${p[side].width}x${p[side].height} on ${side})`;
    }
  }
  for (const side of ['ours', 'theirs'] as const) {
    if (p[side].channels !== p.base.channels) {
      return `the colour format changed (${shapeOf(p.base)} to ${shapeOf(p[side])} on ${side})`;
    }
  }
  return undefined;
}

/** Both sides changed the image data: merge the pixels, or name why not. */
async function mergePixels(
  input: MergeInput,
  format: LosslessFormat | 'jpg',
  lossless: boolean,
): Promise<PixelMerge | { declined: string }> {
  const name = NAMES[format];
  const p = await decodeSides(input, name);
  if ('conflict' in p || 'declined' in p) return p;
  const shape = shapeChange(p);
  if (shape) return { conflict: shape };
  const same = (a: Side, b: Side) => p[a].data.equals(p[b].data);
  // Equal decoded pixels are unchanged pixels: a re-encode of the same image.
  if (same('base', 'ours')) return { side: 'theirs' };
  if (same('base', 'theirs') || same('ours', 'theirs')) return { side: 'ours' };
  if (!lossless || format === 'jpg') {
    return {
      conflict: `both sides changed the pixels of a lossy ${name} (merging them would re-encode it)`,
    };
  }
  if (p.base.palette || p.ours.palette || p.theirs.palette) {
    return {
      conflict: `both sides changed the pixels of a palette ${name} (a tile merge would re-encode it as truecolour)`,
    };
  }
  const tiles = mergeTiles(p.base, p.ours, p.theirs);
  if ('conflicts' in tiles) return { conflict: bothChanged(tiles.conflicts, 'tile') };
  if (tiles.fromTheirs === 0) return { side: 'ours' };
  if (tiles.fromOurs === 0) return { side: 'theirs' };
  return {
    encoded: await encode(format, p.base, tiles.pixels),
    summary: `tiles merged (${tiles.fromOurs} from ours, ${tiles.fromTheirs} from theirs of ${tiles.tiles})`,
  };
}

async function mergeContainer(input: MergeInput, format: Container): Promise<StrategyResult> {
  const name = NAMES[format];
  const layouts = {} as Record<Side, ImageLayout>;
  const images = {} as Record<Side, string>;
  const blocks = {} as Record<Side, Map<string, string>>;
  for (const side of SIDES) {
    const access = input[side];
    const result = await parsed(`${side} as ${name}`, async () => {
      const layout = await layoutOf(format, access);
      return {
        layout,
        image: await imageDigest(access, layout),
        blocks: await blockDigests(access, layout),
      };
    });
    if (declined(result)) return result;
    layouts[side] = result.layout;
    images[side] = result.image;
    blocks[side] = result.blocks;
  }
  const metadata = mergeMetadata({
    base: { layout: layouts.base, digests: blocks.base },
    ours: { layout: layouts.ours, digests: blocks.ours },
    theirs: { layout: layouts.theirs, digests: blocks.theirs },
  });
  if (metadata.conflicts.length > 0) return { conflict: bothChanged(metadata.conflicts) };

  let pixels: PixelMerge;
  if (images.ours === images.theirs || images.theirs === images.base) pixels = { side: 'ours' };
  else if (images.ours === images.base) pixels = { side: 'theirs' };
  else {
    const animated = SIDES.some((s) => layouts[s].animated);
    if (animated) return { conflict: `both sides changed the frames of an animated ${name}` };
    const lossless = SIDES.every((s) => layouts[s].lossless);
    const merged = await mergePixels(input, format === 'jpg' ? 'jpg' : format, lossless);
    if (declined(merged)) return merged;
    pixels = merged;
  }
  if ('conflict' in pixels) return pixels;

  let layout: ImageLayout;
  let source: PixelSource;
  let took: string;
  if ('side' in pixels) {
    layout = layouts[pixels.side];
    source = pixels.side;
    took = `pixels from ${pixels.side}`;
  } else {
    const encoded = pixels.encoded;
    const result = await parsed('the merged pixels', () => layoutOf(format, bufferAccess(encoded)));
    if (declined(result))
      throw new Error(`sharp wrote a ${name} MediaGit cannot parse: ${result.declined}`);
    layout = result;
    source = encoded;
    took = pixels.summary;
  }
  const fromTheirs =
    metadata.fromTheirs.length > 0 ? `; ${metadata.fromTheirs.join(', ')} from theirs` : '';
  return {
    merged: { pieces: splice(layout, source, metadata.chosen) },
    summary: `${took}${fromTheirs}`,
  };
}

/**
 * TIFF: pixels merge tile by tile; the descriptive tags are compared, not
 * spliced, so a merge that would need one side's tags and the other's
 * pixels in one file is a conflict that says so.
 */
async function mergeTiff(input: MergeInput): Promise<StrategyResult> {
  const tags = {} as Record<Side, Map<number, string>>;
  let lossless = true;
  for (const side of SIDES) {
    const access = input[side];
    const result = await parsed(`${side} as TIFF`, () => tiffTags(access));
    if (declined(result)) return result;
    tags[side] = result.tags;
    lossless &&= result.lossless;
  }
  const changedTags: Record<'ours' | 'theirs', string[]> = { ours: [], theirs: [] };
  const conflicts: string[] = [];
  const mergedTags = new Map<number, string>();
  for (const tag of new Set([...tags.base.keys(), ...tags.ours.keys(), ...tags.theirs.keys()])) {
    const [b, o, t] = SIDES.map((s) => tags[s].get(tag));
    if (o !== b && t !== b && o !== t) conflicts.push(tagName(tag));
    else if (o !== b) changedTags.ours.push(tagName(tag));
    else if (t !== b) changedTags.theirs.push(tagName(tag));
    const kept = o !== b ? o : t;
    if (kept !== undefined) mergedTags.set(tag, kept);
  }
  if (conflicts.length > 0) return { conflict: bothChanged(conflicts) };
  const pixels = await mergePixels(input, 'tif', lossless);
  if (declined(pixels) || 'conflict' in pixels) return pixels;
  if ('side' in pixels) {
    const other = pixels.side === 'ours' ? 'theirs' : 'ours';
    if (changedTags[other].length > 0) {
      return {
        conflict: `${other} changed the TIFF ${changedTags[other].join(', ')} and ${pixels.side} the pixels (TIFF metadata is not spliced)`,
      };
    }
    const access = input[pixels.side];
    return {
      merged: { pieces: [{ side: pixels.side, offset: 0, length: access.size }] },
      summary: `TIFF from ${pixels.side}`,
    };
  }
  // A re-encoded TIFF has sharp's tags: it must carry every tag the merge keeps.
  const encodedTags = (await tiffTags(bufferAccess(pixels.encoded))).tags;
  const lost = [...mergedTags]
    .filter(([tag, digest]) => encodedTags.get(tag) !== digest)
    .map(([tag]) => tagName(tag));
  if (lost.length > 0) {
    return {
      conflict: `both sides changed the pixels, and a tile merge would drop the TIFF ${lost.join(', ')}`,
    };
  }
  return { merged: pixels.encoded, summary: pixels.summary };
}

export const imageMergeStrategy: MergeStrategy = {
  name: 'image',
  accepts: (format: MediaFormat) => isContainer(format.format) || format.format === 'tif',
  // Splices read segment headers only; the pixel merge bounds its own reads (MAX_ENCODED_BYTES).
  maxBytes: Infinity,
  merge(input) {
    const format = input.format.format;
    if (format === 'tif') return mergeTiff(input);
    if (!isContainer(format))
      return Promise.resolve({ declined: `not an image format (${format})` });
    return mergeContainer(input, format);
  },
  describe: describeChange,
};
