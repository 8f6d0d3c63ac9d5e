/**
 * What `fsck` knows of a repository's packs (docs/fsck.md): every pack with
 * an index (`objects/pack/pack-<name>.idx`, versions 1 and 2) and every
 * cloud pack named by a multi-pack index (`objects/index/<name>.idx`,
 * version 3), loaded and checked as readers load them (odb/pack.ts), plus
 * the checks readers skip: records lie back to back from the header to the
 * trailer (so no byte of the body escapes the per-record verification), and
 * a version-2 pack's trailer is the hash of its record table.
 *
 * A pack that readers refuse (a damaged index, header or trailer) is kept
 * with the entries its index still yields when read leniently (or, for a
 * cloud pack, its own record table), so the report can name the objects it
 * holds and a repair can salvage the records that still verify.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { hasErrnoCode, MediaGitError } from '../errors.ts';
import {
  cloudPackTableOffset,
  MultiIndex,
  parseCloudPackTable,
  type IndexedObject,
} from '../odb/cloud-pack.ts';
import { isObjectId, type ObjectId } from '../odb/object-id.ts';
import {
  INGEST_PACK_VERSION,
  Pack,
  PACK_HEADER_SIZE,
  PACK_TRAILER_SIZE,
  packFileName,
  recordTableChecksum,
  type PackEntry,
} from '../odb/pack.ts';

export interface PackProblem {
  /** The damaged file, absolute. */
  readonly file: string;
  readonly reason: string;
}

export interface PackInfo {
  readonly name: string;
  readonly packPath: string;
  /** Its `.idx`, or the multi-pack index that names it. */
  readonly indexPath: string;
  /** The multi-pack index naming it (cloud packs), else undefined. */
  readonly multiIndex: string | undefined;
  /** The pack file's size (0 when it is missing). */
  readonly size: number;
  /** Whether readers use it; false when they refuse it (its entries are salvaged). */
  readonly readable: boolean;
  /** As indexed (or salvaged; fsck renames an entry whose record holds another object). */
  readonly entries: PackEntry[];
  readonly problems: readonly PackProblem[];
}

export interface PackInventory {
  readonly packs: PackInfo[];
  /** Damaged multi-pack indexes (each with what it still names). */
  readonly indexProblems: PackProblem[];
}

const IDX_NAME = /^pack-([0-9a-f]{64})\.idx$/;
const MULTI_NAME = /^([0-9a-f]{64})\.idx$/;
const IDX_FIXED = 8 + 1024 + 64;

export async function inventoryPacks(objectsDir: string): Promise<PackInventory> {
  const packDir = path.join(objectsDir, 'pack');
  const indexDir = path.join(objectsDir, 'index');
  const packs: PackInfo[] = [];
  const indexProblems: PackProblem[] = [];

  for (const file of (await listDir(packDir)).sort()) {
    const match = IDX_NAME.exec(file);
    if (match) {
      const info = await loadIndexedPack(packDir, match[1]!);
      if (info) packs.push(info);
    }
  }

  // Cloud packs: the first index naming a pack gives its entries (as PackSet does).
  const byPack = new Map<string, { index: string; entries: PackEntry[] }>();
  for (const file of (await listDir(indexDir)).sort()) {
    const match = MULTI_NAME.exec(file);
    if (!match) continue;
    const where = path.join(indexDir, file);
    let bytes: Buffer;
    try {
      bytes = await fs.readFile(where);
    } catch (error) {
      if (hasErrnoCode(error, 'ENOENT')) continue;
      throw error;
    }
    let index: MultiIndex;
    try {
      index = MultiIndex.parse(bytes, match[1]!, where);
    } catch (error) {
      if (!(error instanceof MediaGitError) || error.code !== 'PACK_CORRUPT') throw error;
      indexProblems.push({ file: where, reason: reasonOf(error) });
      // What it still names: its pack list, each pack read through its own table.
      for (const name of lenientPackList(bytes)) {
        if (byPack.has(name)) continue;
        const entries = await cloudPackEntries(packDir, name);
        if (entries) byPack.set(name, { index: where, entries });
      }
      continue;
    }
    const grouped = new Map<string, PackEntry[]>();
    for (const entry of index.entries()) {
      const list = grouped.get(entry.pack) ?? [];
      list.push(entryOf(entry.id, entry));
      grouped.set(entry.pack, list);
    }
    for (const [name, entries] of grouped) {
      if (!byPack.has(name)) byPack.set(name, { index: where, entries });
    }
  }
  const broken = new Set(indexProblems.map((problem) => problem.file));
  for (const [name, { index, entries }] of byPack) {
    packs.push(await loadCloudPack(packDir, name, index, entries, broken.has(index)));
  }
  return { packs, indexProblems };
}

async function loadIndexedPack(packDir: string, name: string): Promise<PackInfo | undefined> {
  const packPath = path.join(packDir, packFileName(name));
  const indexPath = path.join(packDir, `pack-${name}.idx`);
  const base = { name, packPath, indexPath, multiIndex: undefined };
  try {
    const pack = await Pack.load(packDir, name);
    const entries: PackEntry[] = [];
    for (let i = 0; i < pack.count; i++) entries.push(pack.entryAt(i));
    const problems = layoutProblems(pack.packPath, pack.packSize, entries, pack.version);
    if (
      pack.version === INGEST_PACK_VERSION &&
      recordTableChecksum(entries).toString('hex') !== name
    ) {
      problems.push({ file: indexPath, reason: 'record table does not match the pack checksum' });
    }
    return { ...base, size: pack.packSize, readable: true, entries, problems };
  } catch (error) {
    if (hasErrnoCode(error, 'ENOENT')) return undefined; // removed since listed
    if (!(error instanceof MediaGitError) || error.code !== 'PACK_CORRUPT') throw error;
    const size = await fileSize(packPath);
    let entries: PackEntry[] = [];
    try {
      entries = lenientIndexEntries(await fs.readFile(indexPath), size);
    } catch (readError) {
      if (!hasErrnoCode(readError, 'ENOENT')) throw readError;
    }
    const file = typeof error.data['pack'] === 'string' ? error.data['pack'] : indexPath;
    return {
      ...base,
      size,
      readable: false,
      entries,
      problems: [{ file, reason: reasonOf(error) }],
    };
  }
}

async function loadCloudPack(
  packDir: string,
  name: string,
  indexPath: string,
  entries: PackEntry[],
  indexBroken: boolean,
): Promise<PackInfo> {
  const packPath = path.join(packDir, packFileName(name));
  const base = { name, packPath, indexPath, multiIndex: indexPath, entries };
  const size = await fileSize(packPath);
  if (indexBroken) return { ...base, size, readable: false, problems: [] };
  try {
    const pack = await Pack.fromEntries(packDir, name, entries);
    const problems = layoutProblems(packPath, pack.packSize, entries, 3);
    return { ...base, size: pack.packSize, readable: true, problems };
  } catch (error) {
    if (hasErrnoCode(error, 'ENOENT')) {
      return {
        ...base,
        size,
        readable: false,
        problems: [
          { file: packPath, reason: `the pack file is missing but ${indexPath} names it` },
        ],
      };
    }
    if (!(error instanceof MediaGitError) || error.code !== 'PACK_CORRUPT') throw error;
    return {
      ...base,
      size,
      readable: false,
      problems: [{ file: packPath, reason: reasonOf(error) }],
    };
  }
}

/**
 * Records must lie back to back from the header to the trailer (version 3:
 * to its record table): every byte of the body then belongs to a record
 * that the full check verifies against its ID.
 */
function layoutProblems(
  packPath: string,
  size: number,
  entries: readonly PackEntry[],
  version: number,
): PackProblem[] {
  const sorted = [...entries].sort((a, b) => a.offset - b.offset);
  const end = size - PACK_TRAILER_SIZE - (version === 3 ? 48 * entries.length : 0);
  let at = PACK_HEADER_SIZE;
  for (const entry of sorted) {
    if (entry.offset !== at) {
      return [
        {
          file: packPath,
          reason: `records do not lie back to back (object ${entry.id} at ${entry.offset}, expected ${at})`,
        },
      ];
    }
    at += entry.length;
  }
  if (at !== end) {
    return [{ file: packPath, reason: `bytes ${at}-${end} after the last record belong to none` }];
  }
  return [];
}

/**
 * The entries a damaged version-1 index still yields: its entry count from
 * its size (else its fan-out), each entry as written, kept when its record
 * lies inside the pack. Whether each really holds its object is for the
 * record's verification to say.
 */
export function lenientIndexEntries(index: Buffer, packSize: number): PackEntry[] {
  let count = (index.length - IDX_FIXED) / 48;
  if (!Number.isInteger(count) || count < 0) {
    count = index.length >= 8 + 1024 ? index.readUInt32LE(8 + 255 * 4) : 0;
    if (IDX_FIXED + count * 48 > index.length) {
      count = Math.max(0, Math.floor((index.length - 8 - 1024) / 48));
    }
  }
  const idsAt = 8 + 1024;
  const offsetsAt = idsAt + count * 32;
  const lengthsAt = offsetsAt + count * 8;
  const out: PackEntry[] = [];
  for (let i = 0; i < count; i++) {
    if (lengthsAt + i * 8 + 8 > index.length) break;
    const id = index.toString('hex', idsAt + i * 32, idsAt + (i + 1) * 32);
    const offset = Number(index.readBigUInt64LE(offsetsAt + i * 8));
    const length = Number(index.readBigUInt64LE(lengthsAt + i * 8));
    if (
      offset < PACK_HEADER_SIZE ||
      length < 16 ||
      offset + length > packSize - PACK_TRAILER_SIZE
    ) {
      continue;
    }
    out.push({ id, offset, length });
  }
  return out;
}

/** The pack names a damaged multi-pack index still lists. */
function lenientPackList(index: Buffer): string[] {
  if (index.length < 12) return [];
  const count = index.readUInt32LE(8);
  const out: string[] = [];
  for (let i = 0; i < count && 12 + (i + 1) * 32 <= index.length; i++) {
    const name = index.toString('hex', 12 + i * 32, 12 + (i + 1) * 32);
    if (isObjectId(name)) out.push(name);
  }
  return out;
}

/** A cloud pack's entries from its own record table, or undefined when unreadable. */
async function cloudPackEntries(packDir: string, name: string): Promise<PackEntry[] | undefined> {
  const packPath = path.join(packDir, packFileName(name));
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(packPath, 'r');
  } catch {
    return undefined;
  }
  try {
    const { size } = await handle.stat();
    const header = Buffer.alloc(PACK_HEADER_SIZE);
    await handle.read(header, 0, PACK_HEADER_SIZE, 0);
    const tableAt = cloudPackTableOffset(header, size, packPath);
    const tail = Buffer.alloc(size - tableAt);
    await handle.read(tail, 0, tail.length, tableAt);
    return parseCloudPackTable(tail, tableAt, packPath).entries;
  } catch {
    return undefined;
  } finally {
    await handle.close();
  }
}

function entryOf(id: ObjectId, at: IndexedObject): PackEntry {
  return { id, offset: at.offset, length: at.length };
}

async function listDir(dir: string): Promise<string[]> {
  try {
    return await fs.readdir(dir);
  } catch (error) {
    if (hasErrnoCode(error, 'ENOENT')) return [];
    throw error;
  }
}

async function fileSize(file: string): Promise<number> {
  try {
    return (await fs.stat(file)).size;
  } catch (error) {
    if (hasErrnoCode(error, 'ENOENT')) return 0;
    throw error;
  }
}

function reasonOf(error: MediaGitError): string {
  return typeof error.data['reason'] === 'string' ? error.data['reason'] : error.message;
}
