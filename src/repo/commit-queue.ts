/**
 * The order history walks visit commits in (log, ahead/behind counts):
 * newest committer time first, as Git's prio-queue.
 */
import type { Commit } from '../odb/commit.ts';
import type { ObjectId } from '../odb/object-id.ts';

/** Max-heap on committer time; earlier insertion wins ties, as in Git's prio-queue. */
export class CommitQueue {
  readonly #items: { id: ObjectId; commit: Commit; time: number; seq: number }[] = [];
  #seq = 0;

  get size(): number {
    return this.#items.length;
  }

  push(id: ObjectId, commit: Commit): void {
    const items = this.#items;
    items.push({ id, commit, time: commit.committer.time, seq: this.#seq++ });
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.#before(i, parent)) break;
      [items[i], items[parent]] = [items[parent]!, items[i]!];
      i = parent;
    }
  }

  pop(): { id: ObjectId; commit: Commit } | undefined {
    const items = this.#items;
    const top = items[0];
    const last = items.pop();
    if (top === undefined || last === undefined) return undefined;
    if (items.length > 0) {
      items[0] = last;
      let i = 0;
      while (true) {
        const left = 2 * i + 1;
        const right = left + 1;
        let best = i;
        if (left < items.length && this.#before(left, best)) best = left;
        if (right < items.length && this.#before(right, best)) best = right;
        if (best === i) break;
        [items[i], items[best]] = [items[best]!, items[i]!];
        i = best;
      }
    }
    return top;
  }

  #before(a: number, b: number): boolean {
    const x = this.#items[a]!;
    const y = this.#items[b]!;
    return x.time > y.time || (x.time === y.time && x.seq < y.seq);
  }
}
