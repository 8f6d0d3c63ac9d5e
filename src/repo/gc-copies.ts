/**
 * The delta bases of every stored copy of an object (gc.ts and the
 * `--aggressive` delta pass, gc-deltas.ts): an object stored more than once
 * (loose and packed, or in several packs) may be encoded differently in each
 * copy, and every copy's bases must survive.
 */
import fs from 'node:fs/promises';
import { Codec } from '../compression/codec.ts';
import { MediaGitError } from '../errors.ts';
import { MAX_BASES, parseDeltaPayload } from '../odb/delta.ts';
import type { ObjectId } from '../odb/object-id.ts';
import { decodeHeader, HEADER_SIZE, type ObjectStore } from '../odb/object-store.ts';
import type { Marker } from './reachable.ts';

/** Header, base count, up to MAX_BASES IDs, depth, and one frame byte. */
export const PREFIX_BYTES = HEADER_SIZE + 2 + 32 * MAX_BASES + 1;

/**
 * Marks the delta bases of every stored copy of each marked object, not only
 * of the copy readers find first: after an interrupted `gc --aggressive` an
 * object may have a loose copy and a packed one encoded differently, and a
 * copy whose base gc pruned would be unreadable the day a reader picks it.
 */
export async function markBasesOfEveryCopy(
  store: ObjectStore,
  marker: Marker,
  looseIds: ReadonlySet<ObjectId>,
): Promise<void> {
  for (;;) {
    const others = await otherCopyBases(store, looseIds, (id) => marker.marked.has(id));
    const unmarked = new Set<ObjectId>();
    for (const bases of others.values()) {
      for (const base of bases) if (!marker.marked.has(base)) unmarked.add(base);
    }
    if (unmarked.size === 0) return;
    await marker.mark({ required: new Set(), optional: unmarked });
    // Objects marked just now may have several copies too.
    if ([...unmarked].every((id) => !marker.marked.has(id))) return;
  }
}

/**
 * The delta bases of the packed copies of objects stored more than once
 * (loose and packed, or in several packs), for the objects `wanted` accepts.
 */
export async function otherCopyBases(
  store: ObjectStore,
  looseIds: ReadonlySet<ObjectId>,
  wanted: (id: ObjectId) => boolean,
): Promise<Map<ObjectId, ObjectId[]>> {
  const out = new Map<ObjectId, ObjectId[]>();
  const packs = await store.packs.all();
  for (const [p, pack] of packs.entries()) {
    let file: fs.FileHandle | undefined;
    try {
      for (let i = 0; i < pack.count; i++) {
        const entry = pack.entryAt(i);
        if (!wanted(entry.id)) continue;
        const key = Buffer.from(entry.id, 'hex');
        const elsewhere =
          looseIds.has(entry.id) || packs.some((other, q) => q !== p && other.indexOf(key) >= 0);
        if (!elsewhere) continue;
        file ??= await fs.open(pack.packPath, 'r');
        const prefix = Buffer.alloc(Math.min(PREFIX_BYTES, entry.length));
        const { bytesRead } = await file.read(prefix, 0, prefix.length, entry.offset);
        try {
          const header = decodeHeader(entry.id, prefix.subarray(0, bytesRead));
          if (header.codec !== Codec.delta) continue;
          const { bases } = parseDeltaPayload(entry.id, prefix.subarray(HEADER_SIZE, bytesRead));
          out.set(entry.id, [...(out.get(entry.id) ?? []), ...bases]);
        } catch (error) {
          if (!(error instanceof MediaGitError)) throw error; // a damaged copy: fsck's to report
        }
      }
    } finally {
      await file?.close();
    }
  }
  return out;
}
