/**
 * A three-way merge of an ordered list of keyed parts (a timeline's tracks,
 * a track's clips) whose order matters and whose parts may move.
 *
 * Contents merge part by part (`mergePart`). Order: a part present in base
 * and a side but out of the longest common order of the two (an LCS of the
 * keys they share) moved on that side. Parts that survive the merge and
 * moved on neither side are the stable skeleton, in base order; each part a
 * side added or moved is placed after the stable part that precedes it on
 * that side (or at the start). Both sides placing different parts after the
 * same stable part is a conflict ("both sides inserted … after …"), as is one
 * part placed at two places.
 */

export interface Keyed<T> {
  readonly key: string;
  /** How messages name it: "clip 'Shot 2'". */
  readonly label: string;
  readonly value: T;
}

export type PartOutcome<T> =
  { readonly value: T } | { readonly deleted: true } | { readonly conflict: string };

export type SequenceResult<T> =
  { readonly items: readonly Keyed<T>[] } | { readonly conflicts: readonly string[] };

/** The largest LCS table move detection builds (cells); beyond it the caller declines. */
export const MAX_LCS_CELLS = 8_000_000;

export class SequenceTooLong extends Error {}

const START = '\u0000start';

/** Keys of `side` that are in `base` but out of their longest common order. */
export function movedKeys(base: readonly string[], side: readonly string[]): Set<string> {
  const inSide = new Set(side);
  const inBase = new Set(base);
  const a = base.filter((k) => inSide.has(k));
  const b = side.filter((k) => inBase.has(k));
  const n = a.length;
  const m = b.length;
  if ((n + 1) * (m + 1) > MAX_LCS_CELLS) throw new SequenceTooLong(`${n}×${m} parts`);
  const table = new Uint32Array((n + 1) * (m + 1));
  const at = (i: number, j: number) => table[i * (m + 1) + j]!;
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      table[i * (m + 1) + j] =
        a[i] === b[j] ? at(i + 1, j + 1) + 1 : Math.max(at(i + 1, j), at(i, j + 1));
    }
  }
  const kept = new Set<string>();
  for (let i = 0, j = 0; i < n && j < m;) {
    if (a[i] === b[j]) {
      kept.add(a[i]!);
      i++;
      j++;
    } else if (at(i + 1, j) >= at(i, j + 1)) i++;
    else j++;
  }
  return new Set(a.filter((k) => !kept.has(k)));
}

export function mergeSequence<T>(
  base: readonly Keyed<T>[],
  ours: readonly Keyed<T>[],
  theirs: readonly Keyed<T>[],
  mergePart: (
    b: Keyed<T> | undefined,
    o: Keyed<T> | undefined,
    t: Keyed<T> | undefined,
  ) => PartOutcome<T>,
  where: string,
): SequenceResult<T> {
  const maps = [base, ours, theirs].map((list) => new Map(list.map((item) => [item.key, item])));
  const [b, o, t] = maps as [Map<string, Keyed<T>>, Map<string, Keyed<T>>, Map<string, Keyed<T>>];
  const conflicts: string[] = [];
  const merged = new Map<string, Keyed<T>>();
  const keys = [...new Set([...b.keys(), ...o.keys(), ...t.keys()])];
  for (const key of keys) {
    const outcome = mergePart(b.get(key), o.get(key), t.get(key));
    if ('conflict' in outcome) conflicts.push(outcome.conflict);
    else if ('value' in outcome) {
      const label = (o.get(key) ?? t.get(key) ?? b.get(key))!.label;
      merged.set(key, { key, label, value: outcome.value });
    }
  }
  if (conflicts.length > 0) return { conflicts };

  const baseKeys = base.map((item) => item.key);
  const moved = [
    movedKeys(
      baseKeys,
      ours.map((i) => i.key),
    ),
    movedKeys(
      baseKeys,
      theirs.map((i) => i.key),
    ),
  ];
  const stable = baseKeys.filter((k) => merged.has(k) && !moved[0]!.has(k) && !moved[1]!.has(k));
  const stableSet = new Set(stable);
  const labelOf = (key: string) => (key === START ? `the start of ${where}` : b.get(key)!.label);

  const groups = [ours, theirs].map((side, s) => {
    const out = new Map<string, string[]>();
    let anchor = START;
    for (const { key } of side) {
      if (stableSet.has(key)) anchor = key;
      else if (merged.has(key) && (!b.has(key) || moved[s]!.has(key))) {
        const group = out.get(anchor) ?? [];
        group.push(key);
        out.set(anchor, group);
      }
    }
    return out;
  }) as [Map<string, string[]>, Map<string, string[]>];

  const placedAt = new Map<string, string>();
  const order: string[] = [];
  for (const anchor of [START, ...stable]) {
    if (anchor !== START) order.push(anchor);
    const go = groups[0].get(anchor) ?? [];
    const gt = groups[1].get(anchor) ?? [];
    let group = go.length > 0 ? go : gt;
    if (go.length > 0 && gt.length > 0 && go.join('\n') !== gt.join('\n')) {
      const names = [...new Set([...go, ...gt])].map((k) => merged.get(k)!.label);
      const place =
        anchor === START ? `at ${labelOf(anchor)}` : `after ${labelOf(anchor)} in ${where}`;
      conflicts.push(`both sides inserted ${names.join(', ')} ${place}`);
      group = [];
    }
    for (const key of group) {
      if (placedAt.has(key)) continue;
      placedAt.set(key, anchor);
      order.push(key);
    }
  }
  // A part one side placed at one spot and the other at another.
  for (const side of groups) {
    for (const [anchor, group] of side) {
      for (const key of group) {
        const at = placedAt.get(key);
        if (at !== undefined && at !== anchor) {
          conflicts.push(`both sides moved ${merged.get(key)!.label} in ${where}`);
        }
      }
    }
  }
  if (conflicts.length > 0) return { conflicts: [...new Set(conflicts)] };
  if (order.length !== merged.size) {
    throw new Error(`sequence merge placed ${order.length} of ${merged.size} parts in ${where}`);
  }
  return { items: order.map((key) => merged.get(key)!) };
}
