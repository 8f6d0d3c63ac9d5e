/**
 * The links of an object outside its seal (docs/encryption.md, "The graph,
 * outside the seal"): a sealed commit, tree, manifest or tag carries the
 * IDs it points to in clear, so a server without the key can walk what a
 * ref reaches (fetch, ref updates, gc) while names, paths, messages and
 * sizes stay sealed. The client that opens the record checks that the list
 * is exactly what the content links to.
 *
 * A list is n × 33 bytes: each link's object type (the header's type codes)
 * and its 32-byte ID, in the content's order: a commit's tree, then its
 * parents; a tag's object; a tree's entries; a manifest's chunks.
 */
import { corruptObject } from '../errors.ts';
import { decodeCommit, decodeTag, encodeCommit, type Signature } from './commit.ts';
import { decodeManifest, encodeManifest } from './manifest.ts';
import type { ObjectId } from './object-id.ts';
import type { ObjectTypeName } from './object-store.ts';
import { decodeTree, encodeTree, type EntryKind } from './tree.ts';

export interface Link {
  readonly type: ObjectTypeName;
  readonly id: ObjectId;
}

const ID_BYTES = 32;
export const LINK_BYTES = 1 + ID_BYTES;
/** The type codes of object-store.ts's headers. */
const CODES: Record<ObjectTypeName, number> = {
  blob: 1,
  chunk: 2,
  manifest: 3,
  tree: 4,
  commit: 5,
  tag: 6,
};
const NAMES = new Map(Object.entries(CODES).map(([name, code]) => [code, name as ObjectTypeName]));

/** Whether sealed records of `type` carry a link list. */
export function isLinking(type: ObjectTypeName): boolean {
  return type === 'commit' || type === 'tree' || type === 'manifest' || type === 'tag';
}

/** What an object of a linking `type` with content `data` links to, in order. */
export function linksOf(type: ObjectTypeName, id: ObjectId, data: Buffer): Link[] {
  switch (type) {
    case 'commit': {
      const commit = decodeCommit(id, data);
      return [
        { type: 'tree', id: commit.tree },
        ...commit.parents.map((parent) => ({ type: 'commit' as const, id: parent })),
      ];
    }
    case 'tag': {
      const tag = decodeTag(id, data);
      const target = tag.type as ObjectTypeName;
      return [{ type: CODES[target] === undefined ? 'commit' : target, id: tag.object }];
    }
    case 'tree':
      return decodeTree(id, data).map((entry) => ({ type: entry.kind, id: entry.id }));
    case 'manifest':
      return decodeManifest(id, data).chunks.map((chunk) => ({ type: 'chunk', id: chunk.id }));
    default:
      return [];
  }
}

/** A link list as stored: a u32 count, then each link's type code and ID. */
export function encodeLinks(links: readonly Link[]): Buffer {
  const out = Buffer.alloc(4 + links.length * LINK_BYTES);
  out.writeUInt32LE(links.length, 0);
  links.forEach((link, i) => {
    const at = 4 + i * LINK_BYTES;
    out[at] = CODES[link.type];
    out.write(link.id, at + 1, ID_BYTES, 'hex');
  });
  return out;
}

/**
 * The stored link list at the start of `payload` and how many bytes it
 * takes; OBJECT_CORRUPT naming `id` when it is cut or names no type.
 */
export function decodeLinks(id: ObjectId, payload: Uint8Array): { links: Link[]; size: number } {
  const bytes = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
  if (bytes.length < 4) throw corruptObject(id, 'its link list is cut off');
  const count = bytes.readUInt32LE(0);
  const size = 4 + count * LINK_BYTES;
  if (size > bytes.length) throw corruptObject(id, 'its link list is cut off');
  const links: Link[] = [];
  for (let at = 4; at < size; at += LINK_BYTES) {
    const type = NAMES.get(bytes[at]!);
    if (type === undefined) throw corruptObject(id, `its link list names type ${bytes[at]}`);
    links.push({ type, id: bytes.toString('hex', at + 1, at + LINK_BYTES) });
  }
  return { links, size };
}

/** Whether two link lists are the same, in the same order. */
export function sameLinks(a: readonly Link[], b: readonly Link[]): boolean {
  return (
    a.length === b.length && a.every((link, i) => link.type === b[i]!.type && link.id === b[i]!.id)
  );
}

const NOBODY: Signature = { name: 'sealed', email: 'sealed', time: 0, tzOffset: 0 };
const KINDS: ReadonlySet<string> = new Set<EntryKind>(['blob', 'manifest', 'tree']);

/**
 * What a server without the key reads for a sealed object: an object of
 * the same type holding only its links (a tree's entries named by their
 * index, sizes zero, messages empty), so that every walk of the graph
 * (reachability.ts, server gc, ref checks) works unchanged. Nothing that
 * needs names, sizes or content may read it: those routes refuse an
 * encrypted repository first (docs/encryption.md).
 */
export function linkView(type: ObjectTypeName, id: ObjectId, links: readonly Link[]): Buffer {
  const kindOf = (link: Link): EntryKind => {
    if (!KINDS.has(link.type)) throw corruptObject(id, `a tree links to a ${link.type}`);
    return link.type as EntryKind;
  };
  switch (type) {
    case 'commit': {
      const [tree, ...parents] = links;
      if (tree?.type !== 'tree') throw corruptObject(id, 'a commit links to no tree first');
      return encodeCommit({
        tree: tree.id,
        parents: parents.map((parent) => parent.id),
        author: NOBODY,
        committer: NOBODY,
        message: '',
      });
    }
    case 'tag': {
      const [target] = links;
      if (target === undefined || links.length !== 1)
        throw corruptObject(id, 'a tag links to one object');
      return Buffer.from(
        `object ${target.id}\ntype ${target.type}\ntag sealed\ntagger sealed <sealed> 0 +0000\n\n`,
      );
    }
    case 'tree':
      return encodeTree(
        links.map((link, i) => ({
          name: String(i).padStart(10, '0'),
          mode: link.type === 'tree' ? '40000' : '100644',
          kind: kindOf(link),
          id: link.id,
          size: 0,
        })),
      );
    case 'manifest':
      // Lengths of one byte each: a manifest's chunks are never empty.
      return encodeManifest({
        size: links.length,
        sha256: '0'.repeat(64),
        chunker: 'sealed',
        chunks: links.map((link) => ({ id: link.id, length: 1 })),
      });
    default:
      throw corruptObject(id, `a ${type} has no links`);
  }
}
