/**
 * For this family's tests only: running a strategy on three in-memory files,
 * and building and reading back PSDs with ag-psd (raw pixels, no canvas).
 */
import { createHash } from 'node:crypto';
import { initializeCanvas, readPsd, writePsdBuffer, type Layer } from 'ag-psd';
import { detectFormat } from '../../detect.ts';
import { bufferAccess } from '../../info/random-access.ts';
import { writeMerged, type MergeStrategy, type StrategyResult } from '../../merge-strategy.ts';

// ag-psd makes image data through a canvas unless it is given a factory; Node has none.
initializeCanvas(
  () => {
    throw new Error('no canvas: PSD layers are read as raw pixels');
  },
  (width, height) =>
    ({
      width,
      height,
      data: new Uint8ClampedArray(width * height * 4),
      colorSpace: 'srgb',
    }) as unknown as ReturnType<NonNullable<Parameters<typeof initializeCanvas>[1]>>,
);

export type Outcome =
  | { readonly bytes: Buffer; readonly summary: string }
  | { readonly conflict: string }
  | { readonly declined: string };

/** Runs `strategy` on three files and writes the merged one out. */
export async function runMerge(
  strategy: MergeStrategy,
  file: string,
  base: Buffer,
  ours: Buffer,
  theirs: Buffer,
): Promise<Outcome> {
  const sides = {
    base: bufferAccess(base),
    ours: bufferAccess(ours),
    theirs: bufferAccess(theirs),
  };
  const result: StrategyResult = await strategy.merge({
    path: file,
    format: detectFormat(ours.subarray(0, 65536), file),
    ...sides,
  });
  if (!('merged' in result)) return result;
  const parts: Uint8Array[] = [];
  await writeMerged(result.merged, sides, (data) => {
    parts.push(Buffer.from(data));
    return Promise.resolve();
  });
  return { bytes: Buffer.concat(parts), summary: result.summary };
}

export const SIZE = 8;

/** A layer's pixels from a seed: different seeds, different pixels. */
export function pixels(seed: number, size = SIZE) {
  const data = new Uint8ClampedArray(size * size * 4);
  for (let i = 0; i < data.length; i++) data[i] = (i * 7 + seed * 31) & 0xff;
  return { width: size, height: size, data, colorSpace: 'srgb' as const };
}

/** A layer or group of a test document: pixels by seed, children for a group. */
export interface Spec {
  readonly name: string;
  readonly seed?: number;
  readonly hidden?: boolean;
  readonly opacity?: number;
  readonly children?: readonly Spec[];
}

/** A PSD of `layers`, listed top first (as a layers panel shows them). */
export function psd(layers: readonly Spec[], options: { psb?: boolean } = {}): Buffer {
  const toLayer = (spec: Spec): Layer => {
    const layer: Layer = {
      name: spec.name,
      hidden: spec.hidden ?? false,
      opacity: spec.opacity ?? 1,
    };
    if (spec.children) {
      layer.children = [...spec.children].reverse().map(toLayer);
      layer.opened = true;
    } else {
      layer.top = 0;
      layer.left = 0;
      layer.imageData = pixels(spec.seed ?? 0);
    }
    return layer;
  };
  return writePsdBuffer(
    {
      width: SIZE,
      height: SIZE,
      imageData: pixels(0),
      children: [...layers].reverse().map(toLayer),
    },
    { psb: options.psb ?? false },
  );
}

export interface ReadLayer {
  readonly name: string;
  readonly hidden: boolean;
  readonly opacity: number;
  readonly pixels?: string;
  readonly children?: ReadLayer[];
}

/** A PSD read back by ag-psd: layers top first, pixels as a digest. */
export function readLayers(bytes: Buffer): ReadLayer[] {
  const doc = readPsd(bytes, {
    useImageData: true,
    skipCompositeImageData: true,
    skipThumbnail: true,
  });
  const toRead = (layer: Layer): ReadLayer => {
    const out: { -readonly [K in keyof ReadLayer]: ReadLayer[K] } = {
      name: layer.name ?? '',
      hidden: layer.hidden ?? false,
      opacity: Math.round((layer.opacity ?? 1) * 100) / 100,
    };
    if (layer.children) out.children = [...layer.children].reverse().map(toRead);
    else if (layer.imageData)
      out.pixels = createHash('sha256').update(layer.imageData.data).digest('hex').slice(0, 12);
    return out;
  };
  return [...(doc.children ?? [])].reverse().map(toRead);
}

/** Whether the PSD's version info says its composite is real. */
export function hasRealComposite(bytes: Buffer): boolean | undefined {
  const doc = readPsd(bytes, {
    skipLayerImageData: true,
    skipCompositeImageData: true,
    skipThumbnail: true,
  });
  return doc.imageResources?.versionInfo?.hasRealMergedData;
}
