/**
 * A small deterministic ZIP writer for merged ORA/KRA documents, and the
 * reading side it pairs with. Members keep their compressed bytes: a layer
 * taken from a side is copied as that side stored it (method, CRC and sizes
 * carried over), so a merge never inflates or recompresses pixels. The first
 * member is `mimetype`, stored, with no extra field, as both formats require.
 * Every timestamp is 1980-01-01 00:00 and no extra fields are written, so
 * the same members give the same bytes.
 */
import { crc32, deflateRawSync, inflateRawSync } from 'node:zlib';
import { MediaReader, bufferAccess } from '../../info/random-access.ts';
import { dataStart, zipEntries } from '../../info/zip.ts';

export interface ZipMember {
  readonly name: string;
  /** 0 stored, 8 deflated. */
  readonly method: number;
  readonly crc32: number;
  /** Uncompressed size. */
  readonly size: number;
  /** The member's bytes as stored (compressed when method is 8). */
  readonly raw: Buffer;
}

/** The members of a ZIP held in memory, by name; a MEDIA_CORRUPT error if it does not parse. */
export async function readZipMembers(
  bytes: Buffer,
  format: string,
): Promise<Map<string, ZipMember>> {
  const r = new MediaReader(bufferAccess(bytes), format);
  const members = new Map<string, ZipMember>();
  for (const entry of await zipEntries(r)) {
    if (entry.method !== 0 && entry.method !== 8)
      throw r.fail(`member '${entry.name}' uses compression method ${entry.method}`);
    if (members.has(entry.name)) throw r.fail(`member '${entry.name}' appears twice`);
    const start = await dataStart(r, entry);
    const raw = await r.bytes(start, entry.compressedSize);
    members.set(entry.name, {
      name: entry.name,
      method: entry.method,
      crc32: entry.crc32,
      size: entry.size,
      raw,
    });
  }
  return members;
}

/** A member's uncompressed content (members are bounded by the strategy's maxBytes). */
export function memberContent(member: ZipMember): Buffer {
  if (member.method === 0) return member.raw;
  return inflateRawSync(member.raw, { maxOutputLength: Math.max(member.size, 1) });
}

/** Whether two members hold the same content (the same stored bytes, or equal once inflated). */
export function sameMember(a: ZipMember | undefined, b: ZipMember | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  if (a.size !== b.size || a.crc32 !== b.crc32) return false;
  if (a.method === b.method && a.raw.equals(b.raw)) return true;
  try {
    return memberContent(a).equals(memberContent(b));
  } catch {
    return false;
  }
}

/** A new member from content, deflated (or stored when that is smaller). */
export function newMember(name: string, content: Buffer, store = false): ZipMember {
  const deflated = store ? content : deflateRawSync(content, { level: 9 });
  const method = store || deflated.length >= content.length ? 0 : 8;
  return {
    name,
    method,
    crc32: crc32(content),
    size: content.length,
    raw: method === 0 ? content : deflated,
  };
}

/** The same member under another name. */
export function renamed(member: ZipMember, name: string): ZipMember {
  return { ...member, name };
}

const DOS_DATE = 0x0021; // 1980-01-01

/** A ZIP of `members` in the order given (mimetype must come first). */
export function writeZip(members: readonly ZipMember[]): Buffer {
  const parts: Buffer[] = [];
  const directory: Buffer[] = [];
  let offset = 0;
  for (const m of members) {
    const name = Buffer.from(m.name, 'utf8');
    const flags = /^[\x20-\x7e]*$/.test(m.name) ? 0 : 0x0800;
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(flags, 6);
    local.writeUInt16LE(m.method, 8);
    local.writeUInt16LE(0, 10);
    local.writeUInt16LE(DOS_DATE, 12);
    local.writeUInt32LE(m.crc32 >>> 0, 14);
    local.writeUInt32LE(m.raw.length, 18);
    local.writeUInt32LE(m.size, 22);
    local.writeUInt16LE(name.length, 26);
    local.writeUInt16LE(0, 28);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(20, 4);
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(flags, 8);
    central.writeUInt16LE(m.method, 10);
    central.writeUInt16LE(0, 12);
    central.writeUInt16LE(DOS_DATE, 14);
    central.writeUInt32LE(m.crc32 >>> 0, 16);
    central.writeUInt32LE(m.raw.length, 20);
    central.writeUInt32LE(m.size, 24);
    central.writeUInt16LE(name.length, 28);
    central.writeUInt32LE(offset, 42);
    directory.push(central, name);
    parts.push(local, name, m.raw);
    offset += 30 + name.length + m.raw.length;
  }
  const directoryBytes = Buffer.concat(directory);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(members.length, 8);
  end.writeUInt16LE(members.length, 10);
  end.writeUInt32LE(directoryBytes.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...parts, directoryBytes, end]);
}
