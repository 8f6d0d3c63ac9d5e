/**
 * PSD/PSB layer merge (ag-psd): a three-way merge of the top-level layers,
 * matched by name. A layer only one side changed (pixels, position, opacity,
 * visibility, blend mode, name-keyed properties) takes that side's version;
 * one both changed differently is a conflict; a layer one side added is
 * kept at its place after the layer it followed; a layer one side deleted and
 * the other left alone is deleted. The document's other properties (size,
 * resources) come from ours, and a change of canvas size on either side, or
 * layer names that are not unique, make it a conflict.
 *
 * The flattened composite image is not recomputed (ag-psd does not render
 * blend modes): the merged file is written without one, as applications
 * rebuild it from the layers; the layers read back exactly.
 */
import { createHash } from 'node:crypto';
import { initializeCanvas, readPsd, writePsdBuffer, type Layer, type Psd } from 'ag-psd';
import { readSides, type MergeStrategy, type StrategyResult } from '../../merge-strategy.ts';

// Pixels as plain arrays: ag-psd needs no canvas for them once it can make
// image data itself (Node has no canvas; nothing here draws).
initializeCanvas(
  () => {
    throw new Error('no canvas in MediaGit: PSD layers are read as raw pixels');
  },
  (width, height) =>
    ({
      width,
      height,
      data: new Uint8ClampedArray(width * height * 4),
      colorSpace: 'srgb',
    }) as unknown as ReturnType<NonNullable<Parameters<typeof initializeCanvas>[1]>>,
);

const READ = { useImageData: true, skipThumbnail: true, skipCompositeImageData: true } as const;

function parse(bytes: Uint8Array): Psd {
  return readPsd(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), READ);
}

/** A digest of everything about a layer: its properties and its pixels. */
function layerDigest(layer: Layer): string {
  const hash = createHash('sha256');
  const visit = (value: unknown): void => {
    if (value instanceof Uint8Array || value instanceof Uint8ClampedArray) {
      hash.update(value);
    } else if (Array.isArray(value)) {
      hash.update('[');
      value.forEach(visit);
      hash.update(']');
    } else if (value !== null && typeof value === 'object') {
      for (const key of Object.keys(value).sort()) {
        hash.update(`${key}:`);
        visit((value as Record<string, unknown>)[key]);
      }
    } else {
      hash.update(JSON.stringify(value ?? null));
    }
  };
  visit(layer);
  return hash.digest('hex');
}

function byName(psd: Psd): Map<string, Layer> | undefined {
  const out = new Map<string, Layer>();
  for (const layer of psd.children ?? []) {
    const name = layer.name ?? '';
    if (out.has(name)) return undefined;
    out.set(name, layer);
  }
  return out;
}

export const psdMergeStrategy: MergeStrategy = {
  name: 'psd-layers',
  accepts: (format) => format.format === 'psd' || format.format === 'psb',
  maxBytes: 512 * 1024 * 1024,
  async merge(input): Promise<StrategyResult> {
    const [baseBytes, oursBytes, theirsBytes] = await readSides(input);
    let base: Psd;
    let ours: Psd;
    let theirs: Psd;
    try {
      [base, ours, theirs] = [parse(baseBytes), parse(oursBytes), parse(theirsBytes)];
    } catch (error) {
      return { declined: `a side is not a PSD ag-psd can read (${(error as Error).message})` };
    }
    if (
      ours.width !== theirs.width ||
      ours.height !== theirs.height ||
      ours.width !== base.width ||
      ours.height !== base.height
    ) {
      return { conflict: 'the canvas size changed' };
    }
    const [b, o, t] = [byName(base), byName(ours), byName(theirs)];
    if (!b || !o || !t) return { conflict: 'layer names are not unique' };
    const same = (x: Layer | undefined, y: Layer | undefined) =>
      x !== undefined && y !== undefined && layerDigest(x) === layerDigest(y);

    // Order: ours, with theirs' new layers inserted after the layer they follow in theirs.
    const order = [...o.keys()];
    const theirsOrder = [...t.keys()];
    theirsOrder.forEach((name, i) => {
      if (o.has(name) || b.has(name)) return;
      const after = theirsOrder
        .slice(0, i)
        .reverse()
        .find((prev) => order.includes(prev));
      order.splice(after === undefined ? 0 : order.indexOf(after) + 1, 0, name);
    });
    for (const name of b.keys()) if (!order.includes(name)) order.push(name);

    const merged: Layer[] = [];
    const conflicts: string[] = [];
    const took: string[] = [];
    for (const name of order) {
      const [bl, ol, tl] = [b.get(name), o.get(name), t.get(name)];
      let pick: Layer | undefined;
      if (ol && tl) {
        if (same(ol, tl) || same(bl, tl)) pick = ol;
        else if (same(bl, ol)) {
          pick = tl;
          took.push(name);
        } else conflicts.push(name);
      } else if (ol) {
        // Theirs deleted it (or never had it).
        if (bl && !same(bl, ol)) conflicts.push(name);
        else if (!bl) pick = ol;
      } else if (tl) {
        if (bl && !same(bl, tl)) conflicts.push(name);
        else if (!bl) {
          pick = tl;
          took.push(name);
        }
      }
      if (pick) merged.push(pick);
    }
    if (conflicts.length > 0) {
      return {
        conflict: `both sides changed layer${conflicts.length > 1 ? 's' : ''} ${conflicts.map((n) => `'${n}'`).join(', ')}`,
      };
    }
    const document: Psd = { ...ours, children: merged };
    delete document.imageData;
    delete document.canvas;
    const bytes = writePsdBuffer(document, { noBackground: true });
    return { merged: bytes, summary: `merged PSD layers (theirs: ${took.join(', ') || 'none'})` };
  },
};
