/**
 * PSD/PSB record-level merge: the three files' structure is read through
 * RandomAccess (psd-file.ts), the layer tree merges layer by layer
 * (layer-tree.ts: content, order, groups), and the merged file is a list of
 * pieces copying each chosen layer's record and channel data from its side,
 * with the lengths around them recomputed. Pixels are never decoded, so a
 * merge costs about a read of the three files and memory stays small.
 *
 * Around the layers: the canvas (size, depth, colour mode) must be the same
 * on every side; colour mode data, the section tail (global layer mask and
 * document-level tagged blocks) and each image resource merge as whole
 * parts; the flattened composite is ours' and, when the layers differ from
 * ours', is marked stale (version info resource `hasRealMergedData` = 0),
 * as applications rebuild it from the layers. Design: docs/merge/layered.md.
 */
import { readPsdFile, type PsdFile, type PsdLayerData, type Span } from './psd-file.ts';
import {
  describeLayerChanges,
  mergeLayerTrees,
  type MergedLayer,
  type TreeLayer,
} from './layer-tree.ts';
import { sameBytes, type RandomAccess } from '../../info/random-access.ts';
import type { MergeStrategy, Side, SidePiece, StrategyResult } from '../../merge-strategy.ts';

/** How much of two ranges is compared at once. */
const COMPARE_SPAN = 4 * 1024 * 1024;

/** Whether two byte ranges are equal, read COMPARE_SPAN at a time. */
export async function sameRange(
  a: RandomAccess,
  aAt: Span,
  b: RandomAccess,
  bAt: Span,
): Promise<boolean> {
  if (aAt.length !== bAt.length) return false;
  return sameBytes(a, aAt.offset, b, bAt.offset, aAt.length, COMPARE_SPAN);
}

async function sameLayer(a: PsdLayerData, b: PsdLayerData): Promise<boolean> {
  if (a.records.length !== b.records.length) return false;
  for (const [i, x] of a.records.entries()) {
    const y = b.records[i]!;
    if (!x.bytes.equals(y.bytes) || x.data.length !== y.data.length) return false;
  }
  for (const [i, x] of a.records.entries()) {
    if (!(await sameRange(a.access, x.data, b.access, b.records[i]!.data))) return false;
  }
  return true;
}

/** A whole part's three-way merge: the side to take, or undefined when both changed it. */
async function mergePart(
  files: Record<Side, PsdFile>,
  span: (file: PsdFile) => Span,
): Promise<Side | undefined> {
  const same = (x: Side, y: Side) =>
    sameRange(files[x].access, span(files[x]), files[y].access, span(files[y]));
  if (await same('base', 'theirs')) return 'ours';
  if (await same('base', 'ours')) return 'theirs';
  if (await same('ours', 'theirs')) return 'ours';
  return undefined;
}

interface Resource {
  readonly key: string;
  readonly id: number;
  readonly bytes: Buffer;
}

/** Resources a save derives from the layers or the composite: ours' are kept. */
const DERIVED_RESOURCES = new Set([1024, 1026, 1033, 1036, 1057, 1069, 1072]);
/** Per-layer arrays, wrong once the layers differ from ours': dropped then. */
const PER_LAYER_RESOURCES = new Set([1026, 1069, 1072]);
const VERSION_INFO = 1057;

function splitResources(data: Buffer): Resource[] | undefined {
  const out: Resource[] = [];
  const seen = new Map<number, number>();
  for (let p = 0; p < data.length;) {
    if (p + 8 > data.length) return undefined;
    const id = data.readUInt16BE(p + 4);
    const nameLength = data[p + 6]!;
    const sizeAt = p + 6 + ((nameLength + 2) & ~1);
    if (sizeAt + 4 > data.length) return undefined;
    const size = data.readUInt32BE(sizeAt);
    const end = sizeAt + 4 + size + (size & 1);
    if (end > data.length) return undefined;
    const n = seen.get(id) ?? 0;
    seen.set(id, n + 1);
    out.push({ key: `${id}#${n}`, id, bytes: data.subarray(p, end) });
    p = end;
  }
  return out;
}

/** Resources merged one by one (by id); `stale` marks the composite as not real. */
function mergeResources(
  files: Record<Side, PsdFile>,
  stale: boolean,
): Buffer | { readonly conflict: string } | { readonly declined: string } {
  const [b, o, t] = [files.base, files.ours, files.theirs].map((f) => splitResources(f.resources));
  if (!b || !o || !t) return { declined: 'the image resources do not parse' };
  const byKey = (list: Resource[]) => new Map(list.map((r) => [r.key, r]));
  const [bm, om, tm] = [byKey(b), byKey(o), byKey(t)];
  const out: Buffer[] = [];
  const conflicts: number[] = [];
  const keys = [...o.map((r) => r.key), ...t.map((r) => r.key).filter((k) => !om.has(k))];
  for (const key of keys) {
    const [br, or, tr] = [bm.get(key), om.get(key), tm.get(key)];
    const id = (or ?? tr)!.id;
    if (stale && PER_LAYER_RESOURCES.has(id)) continue;
    if (id === VERSION_INFO && stale) continue;
    const same = (x: Resource | undefined, y: Resource | undefined) =>
      x === undefined ? y === undefined : y !== undefined && x.bytes.equals(y.bytes);
    let take: Resource | undefined;
    if (DERIVED_RESOURCES.has(id) || same(or, tr) || same(br, tr)) take = or;
    else if (same(br, or)) take = tr;
    else {
      conflicts.push(id);
      continue;
    }
    if (take) out.push(take.bytes);
  }
  if (conflicts.length > 0)
    return { conflict: `both sides changed image resource ${conflicts.join(', ')}` };
  if (stale) out.push(versionInfo(om.get(`${VERSION_INFO}#0`)?.bytes));
  return Buffer.concat(out);
}

/** The version info resource (1057) with `hasRealMergedData` cleared. */
function versionInfo(existing: Buffer | undefined): Buffer {
  if (existing) {
    const copy = Buffer.from(existing);
    const nameLength = copy[6]!;
    const dataAt = 6 + ((nameLength + 2) & ~1) + 4;
    if (dataAt + 5 <= copy.length) {
      copy[dataAt + 4] = 0;
      return copy;
    }
  }
  const unicode = (text: string) => {
    const b = Buffer.alloc(4 + text.length * 2);
    b.writeUInt32BE(text.length, 0);
    for (let i = 0; i < text.length; i++) b.writeUInt16BE(text.charCodeAt(i), 4 + i * 2);
    return b;
  };
  const version = Buffer.alloc(4);
  version.writeUInt32BE(1);
  const data = Buffer.concat([
    version,
    Buffer.from([0]),
    unicode('MediaGit'),
    unicode('MediaGit'),
    version,
  ]);
  const head = Buffer.alloc(12);
  head.write('8BIM', 0, 'latin1');
  head.writeUInt16BE(VERSION_INFO, 4);
  head.writeUInt32BE(data.length, 8);
  return Buffer.concat([head, data, Buffer.alloc(data.length & 1)]);
}

function lengthField(value: number, psb: boolean): Buffer {
  const field = Buffer.alloc(psb ? 8 : 4);
  if (psb) field.writeBigUInt64BE(BigInt(value));
  else field.writeUInt32BE(value);
  return field;
}

/** The merged layers' records and channel data, in file order. */
function layerPieces(layers: readonly MergedLayer<PsdLayerData>[]): {
  records: (Uint8Array | SidePiece)[];
  data: SidePiece[];
  count: number;
} {
  const records: Uint8Array[] = [];
  const data: SidePiece[] = [];
  const add = (side: Side, layer: TreeLayer<PsdLayerData>, index: number) => {
    const record = layer.data.records[index]!;
    records.push(record.bytes);
    if (record.data.length > 0) data.push({ side, ...record.data });
  };
  const visit = (list: readonly MergedLayer<PsdLayerData>[]) => {
    for (const m of list) {
      if (m.layer.group) {
        add(m.side, m.layer, 0); // end divider
        visit(m.children);
        add(m.side, m.layer, 1); // header
      } else add(m.side, m.layer, 0);
    }
  };
  visit(layers);
  return { records, data: coalesce(data), count: records.length };
}

/** Adjacent pieces of one side's bytes as one piece. */
function coalesce(pieces: readonly SidePiece[]): SidePiece[] {
  const out: SidePiece[] = [];
  for (const piece of pieces) {
    const last = out.at(-1);
    if (last && last.side === piece.side && last.offset + last.length === piece.offset) {
      out[out.length - 1] = { ...last, length: last.length + piece.length };
    } else out.push(piece);
  }
  return out;
}

export const psdMergeStrategy: MergeStrategy = {
  name: 'psd-layers',
  accepts: (format) => format.format === 'psd' || format.format === 'psb',
  maxBytes: Infinity,
  async merge(input): Promise<StrategyResult> {
    let files: Record<Side, PsdFile>;
    try {
      files = {
        base: await readPsdFile(input.base),
        ours: await readPsdFile(input.ours),
        theirs: await readPsdFile(input.theirs),
      };
    } catch (error) {
      return { declined: `a side is not a PSD this strategy reads (${(error as Error).message})` };
    }
    const { base, ours, theirs } = files;
    if (base.psb !== ours.psb || base.psb !== theirs.psb)
      return { conflict: 'the file changed between PSD and PSB' };
    const canvas = (f: PsdFile) => f.header.subarray(14, 22).toString('hex');
    if (canvas(base) !== canvas(ours) || canvas(base) !== canvas(theirs))
      return { conflict: 'the canvas size changed' };
    const mode = (f: PsdFile) =>
      f.header.subarray(12, 14).toString('hex') + f.header.subarray(22, 26).toString('hex');
    if (mode(base) !== mode(ours) || mode(base) !== mode(theirs))
      return { conflict: 'the colour mode, depth or channel count changed' };

    const tree = await mergeLayerTrees(
      { base: base.layers, ours: ours.layers, theirs: theirs.layers },
      { same: sameLayer, uidFirst: false },
    );
    if ('conflict' in tree || 'declined' in tree) return tree;
    const colorMode = await mergePart(files, (f) => f.colorMode);
    if (!colorMode) return { conflict: 'both sides changed the colour mode data' };
    const tail = await mergePart(files, (f) => f.tail);
    if (!tail)
      return { conflict: 'both sides changed the global layer mask or document layer data' };
    const stale = !tree.isOurs;
    const resources = mergeResources(files, stale);
    if ('conflict' in resources || 'declined' in resources) return resources;

    const { records, data, count } = layerPieces(tree.layers);
    const psb = ours.psb;
    let infoLength = 0;
    if (count > 0) {
      infoLength = 2;
      for (const r of records) infoLength += r instanceof Uint8Array ? r.length : r.length;
      for (const d of data) infoLength += d.length;
    }
    const padding = Buffer.alloc((4 - (infoLength % 4)) % 4);
    infoLength += padding.length;
    const countField = Buffer.alloc(count > 0 ? 2 : 0);
    if (count > 0) countField.writeInt16BE(ours.mergedAlpha ? -count : count);
    const tailSpan = files[tail].tail;
    const sectionLength = (psb ? 8 : 4) + infoLength + tailSpan.length;
    const resourcesLength = Buffer.alloc(4);
    resourcesLength.writeUInt32BE(resources.length);
    const pieces: (Uint8Array | SidePiece)[] = [
      ours.header,
      { side: colorMode, ...files[colorMode].colorMode },
      resourcesLength,
      resources,
      lengthField(sectionLength, psb),
      lengthField(infoLength, psb),
      countField,
      ...records,
      ...data,
      padding,
      { side: tail, ...tailSpan },
      { side: 'ours', ...ours.imageData },
    ];
    const from = tree.fromTheirs.map((p) => `'${p}'`).join(', ');
    const summary = [
      from ? `layers ${from} from theirs` : 'no layer from theirs',
      tree.orderFromTheirs ? "theirs' layer order" : undefined,
      stale ? "ours' composite, marked stale" : undefined,
    ]
      .filter(Boolean)
      .join('; ');
    return {
      merged: { pieces: pieces.filter((p) => p.length > 0) },
      summary,
    };
  },
  async describe(before, after): Promise<string[]> {
    let a: PsdFile;
    let b: PsdFile;
    try {
      [a, b] = [await readPsdFile(before), await readPsdFile(after)];
    } catch {
      return [];
    }
    return describeLayerChanges(a.layers, b.layers, sameLayer);
  },
};
