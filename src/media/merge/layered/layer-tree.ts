/**
 * The three-way merge of a layer tree, shared by PSD, OpenRaster and Krita:
 * each format parses its sides into `TreeLayer`s (children in file order)
 * and says when two versions of one layer have equal content; this module
 * matches layers across sides, decides each layer's side, merges the order
 * and grouping, and returns the merged tree for the format to write out.
 *
 * Identity: a layer is the same layer on two sides when its name path
 * ("Group/Sky") is unique on both; then its id (PSD `lyid`, Krita `uuid`)
 * breaks ties between repeated names and follows renames; then a name
 * unique among the layers still unmatched follows a move between groups.
 * With `uidFirst` (Krita, whose uuids are always there) the id comes first.
 *
 * Content (a layer's own properties and pixels, not its children) merges
 * per layer: one side changed → that side; both the same → either; both
 * differently → conflict. The arrangement (each layer's group and its place
 * among its siblings) merges as a whole: when only one side rearranged the
 * layers every side kept, that side's arrangement is taken, and layers the
 * other side added are placed after the layer they follow there.
 */
import type { Side } from '../../merge-strategy.ts';

export interface TreeLayer<T> {
  readonly name: string;
  /** A stable id when the format has one (PSD `lyid`, Krita `uuid`). */
  readonly uid: string | undefined;
  readonly group: boolean;
  /** A group's layers, in file order; empty for a layer. */
  readonly children: readonly TreeLayer<T>[];
  /** What the format needs to compare and write the layer. */
  readonly data: T;
}

export interface MergedLayer<T> {
  readonly side: Side;
  readonly layer: TreeLayer<T>;
  readonly children: MergedLayer<T>[];
}

export type TreeMergeResult<T> =
  | {
      readonly layers: MergedLayer<T>[];
      /** Paths of the layers whose content came from theirs. */
      readonly fromTheirs: string[];
      /** Whether the arrangement came from theirs. */
      readonly orderFromTheirs: boolean;
      /** Whether the merged tree is ours exactly (same layers, same order, all from ours). */
      readonly isOurs: boolean;
    }
  | { readonly conflict: string }
  | { readonly declined: string };

export interface TreeMergeOptions<T> {
  /** Whether two versions of one layer have equal content (own data, not children). */
  same(a: T, b: T): Promise<boolean>;
  /** Match by id before name path. */
  readonly uidFirst: boolean;
}

interface Placed<T> {
  readonly layer: TreeLayer<T>;
  readonly path: string;
  readonly parent: Placed<T> | undefined;
  id: number;
}

function flatten<T>(
  layers: readonly TreeLayer<T>[],
  parent: Placed<T> | undefined = undefined,
  out: Placed<T>[] = [],
): Placed<T>[] {
  for (const layer of layers) {
    const path = parent ? `${parent.path}/${layer.name}` : layer.name;
    const placed: Placed<T> = { layer, path, parent, id: -1 };
    out.push(placed);
    flatten(layer.children, placed, out);
  }
  return out;
}

type KeyOf<T> = (p: Placed<T>) => string | undefined;
const byPath: KeyOf<unknown> = (p) => `${p.layer.group}:${p.path}`;
const byUid: KeyOf<unknown> = (p) =>
  p.layer.uid === undefined ? undefined : `${p.layer.group}:${p.layer.uid}`;
const byName: KeyOf<unknown> = (p) => `${p.layer.group}:${p.layer.name}`;

/** Pairs `to`'s layers with `from`'s: each key unique among the unmatched on both sides. */
function pair<T>(
  from: readonly Placed<T>[],
  to: readonly Placed<T>[],
  uidFirst: boolean,
): Map<Placed<T>, Placed<T>> {
  const pairs = new Map<Placed<T>, Placed<T>>();
  const used = new Set<Placed<T>>();
  const step = (keyOf: KeyOf<T>): void => {
    const index = (list: readonly Placed<T>[], skip: (p: Placed<T>) => boolean) => {
      const map = new Map<string, Placed<T>[]>();
      for (const p of list) {
        const key = skip(p) ? undefined : keyOf(p);
        if (key === undefined) continue;
        map.set(key, [...(map.get(key) ?? []), p]);
      }
      return map;
    };
    const a = index(from, (p) => used.has(p));
    const b = index(to, (p) => pairs.has(p));
    for (const [key, [target, ...more]] of b) {
      const [source, ...others] = a.get(key) ?? [];
      if (target && source && more.length === 0 && others.length === 0) {
        pairs.set(target, source);
        used.add(source);
      }
    }
  };
  for (const keyOf of uidFirst ? [byUid, byPath, byName] : [byPath, byUid, byName]) step(keyOf);
  return pairs;
}

/** A repeated path whose layers no id tells apart, on one side. */
function ambiguous<T>(side: readonly Placed<T>[]): string | undefined {
  const seen = new Map<string, Placed<T>>();
  for (const p of side) {
    const key = `${p.layer.group}:${p.path}`;
    const other = seen.get(key);
    if (other && (other.layer.uid === undefined || p.layer.uid === undefined)) return p.path;
    seen.set(key, p);
  }
  return undefined;
}

const kind = (layer: TreeLayer<unknown>): string => (layer.group ? 'group' : 'layer');

export async function mergeLayerTrees<T>(
  trees: Record<Side, readonly TreeLayer<T>[]>,
  options: TreeMergeOptions<T>,
): Promise<TreeMergeResult<T>> {
  const base = flatten(trees.base);
  const ours = flatten(trees.ours);
  const theirs = flatten(trees.theirs);
  for (const side of [base, ours, theirs]) {
    const path = ambiguous(side);
    if (path !== undefined)
      return { declined: `layers named '${path}' repeat and carry no ids to tell them apart` };
  }

  // Identity: base layers are 0..n-1; added layers get the next numbers.
  base.forEach((p, i) => (p.id = i));
  let next = base.length;
  const oursPairs = pair(base, ours, options.uidFirst);
  for (const p of ours) p.id = oursPairs.get(p)?.id ?? next++;
  const theirsPairs = pair(base, theirs, options.uidFirst);
  const addedOurs = ours.filter((p) => !oursPairs.has(p));
  const theirsAdded = theirs.filter((p) => !theirsPairs.has(p));
  const bothAdded = pair(addedOurs, theirsAdded, options.uidFirst);
  for (const p of theirs) p.id = theirsPairs.get(p)?.id ?? bothAdded.get(p)?.id ?? next++;

  const at = (side: readonly Placed<T>[]) => new Map(side.map((p) => [p.id, p]));
  const sides: Record<Side, Map<number, Placed<T>>> = {
    base: at(base),
    ours: at(ours),
    theirs: at(theirs),
  };

  // Content: which side each surviving layer comes from.
  const pick = new Map<number, Side>();
  const bothChanged: string[] = [];
  const conflicts: string[] = [];
  const fromTheirs: string[] = [];
  const same = async (x: Placed<T>, y: Placed<T>) =>
    x.layer.group === y.layer.group && (await options.same(x.layer.data, y.layer.data));
  for (let id = 0; id < next; id++) {
    const [b, o, t] = [sides.base.get(id), sides.ours.get(id), sides.theirs.get(id)];
    const name = (b ?? o ?? t)!;
    const label = `${kind(name.layer)} '${name.path}'`;
    if (o && t) {
      if (b === undefined) {
        if (await same(o, t)) pick.set(id, 'ours');
        else conflicts.push(`both sides added ${label}`);
      } else if (await same(b, t)) pick.set(id, 'ours');
      else if (await same(b, o)) pick.set(id, 'theirs');
      else if (await same(o, t)) pick.set(id, 'ours');
      else bothChanged.push(label);
    } else if (o) {
      if (b === undefined) pick.set(id, 'ours');
      else if (!(await same(b, o))) conflicts.push(`ours changed ${label}, theirs deleted it`);
    } else if (t) {
      if (b === undefined) pick.set(id, 'theirs');
      else if (!(await same(b, t))) conflicts.push(`theirs changed ${label}, ours deleted it`);
    }
    if (pick.get(id) === 'theirs') fromTheirs.push(name.path);
  }
  if (bothChanged.length > 0) {
    const names = bothChanged.join(', ');
    conflicts.unshift(`both sides changed ${names}`);
  }
  if (conflicts.length > 0) return { conflict: conflicts.join('; ') };

  // Arrangement: compare where each layer every side kept sits (its group, its
  // rank among such siblings) on each side against base.
  const common = [...pick.keys()].filter(
    (id) => sides.base.has(id) && sides.ours.has(id) && sides.theirs.has(id),
  );
  const commonSet = new Set(common);
  const arrangement = (side: Map<number, Placed<T>>): string => {
    const ranks = new Map<string, number>();
    const out: string[] = [];
    const ordered = [...side.values()].filter((p) => commonSet.has(p.id));
    for (const p of ordered) {
      let parent = p.parent;
      while (parent && !pick.has(parent.id)) parent = parent.parent;
      const key = String(parent?.id ?? -1);
      const rank = ranks.get(key) ?? 0;
      ranks.set(key, rank + 1);
      out.push(`${p.id}@${key}#${rank}`);
    }
    return out.sort().join(',');
  };
  const [b, o, t] = [arrangement(sides.base), arrangement(sides.ours), arrangement(sides.theirs)];
  let frame: Side = 'ours';
  if (o !== b && t !== b && o !== t) return { conflict: 'both sides changed the layer order' };
  if (o === b && t !== b) frame = 'theirs';
  const other: Side = frame === 'ours' ? 'theirs' : 'ours';

  // The frame side's tree, its layers in their merged versions; then the other
  // side's added layers, each after the layer it follows there.
  const built = new Map<number, MergedLayer<T>>();
  const version = (id: number): MergedLayer<T> => {
    const side = pick.get(id)!;
    const merged: MergedLayer<T> = { side, layer: sides[side].get(id)!.layer, children: [] };
    built.set(id, merged);
    return merged;
  };
  const roots: MergedLayer<T>[] = [];
  let orphan: string | undefined;
  const walk = (
    layers: readonly TreeLayer<T>[],
    into: MergedLayer<T>[],
    byLayer: Map<TreeLayer<T>, Placed<T>>,
  ) => {
    for (const layer of layers) {
      const placed = byLayer.get(layer)!;
      if (!pick.has(placed.id)) {
        const kept = flatten(layer.children).find((c) => pick.has(byLayer.get(c.layer)!.id));
        if (kept)
          orphan ??= `${kind(kept.layer)} '${placed.path}/${kept.path}' is kept in group '${placed.path}' that was deleted`;
        continue;
      }
      const merged = version(placed.id);
      into.push(merged);
      walk(layer.children, merged.children, byLayer);
    }
  };
  const frameSide = frame === 'ours' ? ours : theirs;
  walk(trees[frame], roots, new Map(frameSide.map((p) => [p.layer, p])));
  if (orphan) return { conflict: orphan };
  const otherSide = other === 'ours' ? ours : theirs;
  const otherByLayer = new Map(otherSide.map((q) => [q.layer, q]));
  for (const p of otherSide) {
    if (!pick.has(p.id) || built.has(p.id)) continue;
    const parent = p.parent;
    const siblings = parent ? built.get(parent.id)?.children : roots;
    if (!siblings) {
      return {
        conflict: `${other} added ${kind(p.layer)} '${p.path}' to group '${parent!.path}' that ${frame} deleted`,
      };
    }
    const before = (parent ? parent.layer.children : trees[other]).slice(
      0,
      (parent ? parent.layer.children : trees[other]).indexOf(p.layer),
    );
    let index = 0;
    for (let i = before.length - 1; i >= 0; i--) {
      const prev = built.get(otherByLayer.get(before[i]!)!.id);
      const found = prev ? siblings.indexOf(prev) : -1;
      if (found >= 0) {
        index = found + 1;
        break;
      }
    }
    siblings.splice(index, 0, version(p.id));
  }

  // Ours exactly: every layer from ours, in ours' arrangement.
  const mergedLayers: TreeLayer<T>[] = [];
  let allOurs = true;
  const collect = (layers: readonly MergedLayer<T>[]): void => {
    for (const m of layers) {
      mergedLayers.push(m.layer);
      allOurs &&= m.side === 'ours';
      collect(m.children);
    }
  };
  collect(roots);
  const isOurs =
    allOurs &&
    mergedLayers.length === ours.length &&
    mergedLayers.every((layer, i) => layer === ours[i]!.layer);
  return { layers: roots, fromTheirs, orderFromTheirs: frame === 'theirs', isOurs };
}

/** What changed between two versions of a layer tree, one line each, by name path (for `diff`). */
export async function describeLayerChanges<T>(
  before: readonly TreeLayer<T>[],
  after: readonly TreeLayer<T>[],
  same: (a: T, b: T) => Promise<boolean>,
): Promise<string[]> {
  const byPath = (layers: readonly TreeLayer<T>[]) =>
    new Map(flatten(layers).map((p) => [p.path, p.layer]));
  const [x, y] = [byPath(before), byPath(after)];
  const lines: string[] = [];
  for (const [path, layer] of y) {
    const old = x.get(path);
    if (!old) lines.push(`${kind(layer)} '${path}' added`);
    else if (old.group !== layer.group || !(await same(old.data, layer.data)))
      lines.push(`${kind(layer)} '${path}' changed`);
  }
  for (const [path, layer] of x) if (!y.has(path)) lines.push(`${kind(layer)} '${path}' deleted`);
  const kept = (m: Map<string, unknown>) => [...m.keys()].filter((k) => x.has(k) && y.has(k));
  if (kept(x).join('\n') !== kept(y).join('\n')) lines.push('layer order changed');
  if (lines.length === 0) lines.push('layers unchanged');
  return lines;
}
