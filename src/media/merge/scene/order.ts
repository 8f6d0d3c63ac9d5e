/**
 * Three-way helpers shared by the scene strategies: the merge of one part's
 * value and the merge of an ordered list of parts (children of a node, the
 * groups of an OBJ, the materials of an MTL).
 */

/** How one part's value merges: which side's value wins, or a conflict. */
export type Pick3 = 'same' | 'ours' | 'theirs' | 'conflict';

/**
 * The three-way rule on a part's canonical value (undefined = absent): a part
 * one side changed takes that side's value; equal values need nothing; two
 * different changes conflict.
 */
export function pick3(
  base: string | undefined,
  ours: string | undefined,
  theirs: string | undefined,
): Pick3 {
  if (ours === theirs) return 'same';
  if (base === ours) return 'theirs';
  if (base === theirs) return 'ours';
  return 'conflict';
}

/**
 * The merged order of the parts in `kept`: the side that reordered the parts
 * common to all three lists sets the order (ours when neither did), and the
 * other side's new parts are inserted after the part they follow there.
 * Undefined when both sides reordered the common parts differently.
 */
export function mergeOrder(
  base: readonly string[],
  ours: readonly string[],
  theirs: readonly string[],
  kept: ReadonlySet<string>,
): string[] | undefined {
  const inAll = (key: string) => base.includes(key) && ours.includes(key) && theirs.includes(key);
  const common = (list: readonly string[]) => list.filter(inAll).join('\0');
  const [b, o, t] = [common(base), common(ours), common(theirs)];
  if (o !== b && t !== b && o !== t) return undefined;
  const [lead, other] = t !== b ? [theirs, ours] : [ours, theirs];
  const order = lead.filter((key) => kept.has(key));
  other.forEach((key, i) => {
    if (!kept.has(key) || order.includes(key)) return;
    const after = other
      .slice(0, i)
      .reverse()
      .find((prev) => order.includes(prev));
    order.splice(after === undefined ? 0 : order.indexOf(after) + 1, 0, key);
  });
  for (const key of kept) if (!order.includes(key)) order.push(key);
  return order;
}

/** `'a', 'b'` for a message. */
export function quoted(names: readonly string[]): string {
  return names.map((name) => `'${name}'`).join(', ');
}
