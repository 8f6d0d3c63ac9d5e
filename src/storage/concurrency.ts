/** Bounded parallel work, the way every layer moves many objects at once. */

/**
 * Runs `work` on each item, `limit` at a time, in order of start. The first
 * failure stops workers from starting more items and is rethrown once the
 * items already running have settled.
 */
export async function eachLimited<T>(
  items: readonly T[],
  limit: number,
  work: (item: T, index: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  let failed = false;
  let failure: unknown;
  await Promise.all(
    Array.from({ length: Math.max(0, Math.min(limit, items.length)) }, async () => {
      for (let i = next++; i < items.length && !failed; i = next++) {
        try {
          await work(items[i]!, i);
        } catch (error) {
          if (!failed) failure = error;
          failed = true;
        }
      }
    }),
  );
  if (failed) throw failure;
}
