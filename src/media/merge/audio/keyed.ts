/**
 * The three-way merge every audio part uses: parts identified by a key
 * (a chunk's id and occurrence, a bext field, an INFO tag, a cue point's id,
 * an iXML element, a Reaper track's GUID), compared by a caller's equality.
 * A part one side changed takes that side's version; a part both changed
 * differently goes to `both`, which may merge it deeper or name a conflict.
 */

export interface Keyed<T> {
  readonly key: string;
  readonly value: T;
}

export type PartMerge<T> = { readonly value: T } | { readonly conflicts: readonly string[] };

export interface KeyedResult<T> {
  /** The merged parts, in ours' order with theirs' additions after the part they follow. */
  readonly merged: Keyed<T>[];
  /** Parts both sides changed differently, as named by `name` (or by `both`). */
  readonly conflicts: string[];
  /** Keys whose merged value came from theirs (for summaries). */
  readonly fromTheirs: string[];
}

export interface KeyedMergeOptions<T> {
  same(a: T, b: T): boolean;
  /** How a conflict names a part: "bext field 'Description'". */
  name(key: string): string;
  /** Both sides changed a part differently: merge it deeper, or name what conflicts. */
  both?(key: string, base: T, ours: T, theirs: T): PartMerge<T>;
}

/** Merges keyed parts; keys must be unique within each list. */
export function mergeKeyed<T>(
  base: readonly Keyed<T>[],
  ours: readonly Keyed<T>[],
  theirs: readonly Keyed<T>[],
  options: KeyedMergeOptions<T>,
): KeyedResult<T> {
  const b = new Map(base.map((part) => [part.key, part.value]));
  const o = new Map(ours.map((part) => [part.key, part.value]));
  const t = new Map(theirs.map((part) => [part.key, part.value]));
  const order = ours.map((part) => part.key);
  theirs.forEach((part, i) => {
    if (o.has(part.key) || b.has(part.key)) return;
    let after = -1;
    for (let j = i - 1; j >= 0 && after < 0; j--) after = order.indexOf(theirs[j]!.key);
    order.splice(after + 1, 0, part.key);
  });
  const same = (x: T | undefined, y: T | undefined): boolean =>
    x !== undefined && y !== undefined && options.same(x, y);

  const merged: Keyed<T>[] = [];
  const conflicts: string[] = [];
  const fromTheirs: string[] = [];
  // Parts ours deleted are visited too: theirs may have changed one (a conflict).
  const placed = new Set(order);
  const deletedByOurs = [...b.keys()].filter((key) => !placed.has(key));
  for (const key of [...order, ...deletedByOurs]) {
    const [bv, ov, tv] = [b.get(key), o.get(key), t.get(key)];
    if (ov !== undefined && tv !== undefined) {
      if (same(ov, tv) || same(bv, tv)) merged.push({ key, value: ov });
      else if (same(bv, ov)) {
        merged.push({ key, value: tv });
        fromTheirs.push(key);
      } else if (bv !== undefined && options.both) {
        const deeper = options.both(key, bv, ov, tv);
        if ('value' in deeper) merged.push({ key, value: deeper.value });
        else conflicts.push(...deeper.conflicts);
      } else conflicts.push(options.name(key));
    } else if (ov !== undefined) {
      // Theirs deleted it, or only ours has it.
      if (bv === undefined) merged.push({ key, value: ov });
      else if (!same(bv, ov)) conflicts.push(`${options.name(key)} (theirs deleted it)`);
    } else if (tv !== undefined) {
      if (bv === undefined) {
        merged.push({ key, value: tv });
        fromTheirs.push(key);
      } else if (!same(bv, tv)) conflicts.push(`${options.name(key)} (ours deleted it)`);
    }
  }
  return { merged, conflicts, fromTheirs };
}

/** Keys made unique by occurrence: "INAM", then "INAM#2" for a second one. */
export function withOccurrence<T>(parts: readonly { key: string; value: T }[]): Keyed<T>[] {
  const seen = new Map<string, number>();
  return parts.map(({ key, value }) => {
    const n = (seen.get(key) ?? 0) + 1;
    seen.set(key, n);
    return { key: n === 1 ? key : `${key}#${n}`, value };
  });
}
