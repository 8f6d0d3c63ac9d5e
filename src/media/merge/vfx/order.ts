/** Ordering shared by the VFX strategies: nodes in a scope, knobs in a node, parts in a file. */

/**
 * The merged order of a list of keys: ours' order, with the keys only
 * theirs has inserted after the key they follow in theirs.
 */
export function mergeOrder(
  ours: readonly string[],
  theirs: readonly string[],
  keep: (key: string) => boolean,
): string[] {
  const order = ours.filter(keep);
  const placed = new Set(order);
  theirs.forEach((key, i) => {
    if (placed.has(key) || !keep(key)) return;
    let after = -1;
    for (let j = i - 1; j >= 0; j--) {
      const previous = theirs[j];
      if (previous !== undefined && placed.has(previous)) {
        after = order.indexOf(previous);
        break;
      }
    }
    order.splice(after + 1, 0, key);
    placed.add(key);
  });
  return order;
}
