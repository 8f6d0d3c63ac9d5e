/**
 * Just enough ZIP to read one small entry of a ZIP-based document (ORA's
 * stack.xml, KRA's maindoc.xml): the end-of-central-directory record (ZIP64
 * too), the central directory, and the entry's bytes, inflated when deflated.
 * Other entries' data is never read.
 */
import { constants, inflateRawSync } from 'node:zlib';
import type { MediaReader } from './random-access.ts';

export interface ZipEntry {
  readonly name: string;
  readonly method: number;
  /** CRC-32 of the uncompressed content, from the central directory. */
  readonly crc32: number;
  readonly compressedSize: number;
  readonly size: number;
  readonly localHeader: number;
}

/** The largest entry inflated whole (the XML indexes are kilobytes). */
const MAX_ENTRY = 16 * 1024 * 1024;
/** EOCD (22 bytes) plus the longest comment. */
const EOCD_SEARCH = 22 + 0xffff;

export async function zipEntries(r: MediaReader): Promise<ZipEntry[]> {
  const tailStart = Math.max(0, r.size - EOCD_SEARCH);
  const tail = await r.bytes(tailStart, r.size - tailStart);
  const at = tail.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  if (at < 0 || at + 22 > tail.length) throw r.fail('no ZIP end of central directory');
  let count = tail.readUInt16LE(at + 10);
  let directorySize = tail.readUInt32LE(at + 12);
  let directory = tail.readUInt32LE(at + 16);
  if (count === 0xffff || directory === 0xffffffff) {
    const locator = at - 20;
    if (locator < 0 || tail.readUInt32LE(locator) !== 0x07064b50)
      throw r.fail('no ZIP64 end of central directory locator');
    const record = await r.bytes(Number(tail.readBigUInt64LE(locator + 8)), 56);
    if (record.readUInt32LE(0) !== 0x06064b50) throw r.fail('bad ZIP64 end of central directory');
    count = Number(record.readBigUInt64LE(32));
    directorySize = Number(record.readBigUInt64LE(40));
    directory = Number(record.readBigUInt64LE(48));
  }
  if (directorySize > 64 * 1024 * 1024)
    throw r.fail(`a central directory of ${directorySize} bytes`);
  const cd = await r.bytes(directory, directorySize);
  const entries: ZipEntry[] = [];
  for (let p = 0, i = 0; i < count; i++) {
    if (p + 46 > cd.length || cd.readUInt32LE(p) !== 0x02014b50)
      throw r.fail(`bad central directory entry ${i}`);
    const nameLength = cd.readUInt16LE(p + 28);
    const extraLength = cd.readUInt16LE(p + 30);
    const commentLength = cd.readUInt16LE(p + 32);
    let compressedSize = cd.readUInt32LE(p + 20);
    let size = cd.readUInt32LE(p + 24);
    let localHeader = cd.readUInt32LE(p + 42);
    const name = cd.toString('utf8', p + 46, p + 46 + nameLength);
    // ZIP64 extra field: the 64-bit values of the fields set to 0xffffffff, in order.
    for (let e = p + 46 + nameLength; e + 4 <= p + 46 + nameLength + extraLength;) {
      const id = cd.readUInt16LE(e);
      const length = cd.readUInt16LE(e + 2);
      if (id === 1) {
        let v = e + 4;
        const next = (): number => {
          const value = Number(cd.readBigUInt64LE(v));
          v += 8;
          return value;
        };
        if (size === 0xffffffff) size = next();
        if (compressedSize === 0xffffffff) compressedSize = next();
        if (localHeader === 0xffffffff) localHeader = next();
      }
      e += 4 + length;
    }
    entries.push({
      name,
      method: cd.readUInt16LE(p + 10),
      crc32: cd.readUInt32LE(p + 16),
      compressedSize,
      size,
      localHeader,
    });
    p += 46 + nameLength + extraLength + commentLength;
  }
  return entries;
}

export async function dataStart(r: MediaReader, entry: ZipEntry): Promise<number> {
  const local = await r.bytes(entry.localHeader, 30);
  if (local.readUInt32LE(0) !== 0x04034b50) throw r.fail(`no local header for '${entry.name}'`);
  return entry.localHeader + 30 + local.readUInt16LE(26) + local.readUInt16LE(28);
}

/** An entry's content, whole. */
export async function readZipEntry(r: MediaReader, entry: ZipEntry): Promise<Buffer> {
  if (entry.size > MAX_ENTRY) throw r.fail(`entry '${entry.name}' of ${entry.size} bytes`);
  const data = await r.bytes(await dataStart(r, entry), entry.compressedSize);
  if (entry.method === 0) return data;
  if (entry.method !== 8)
    throw r.fail(`entry '${entry.name}' uses compression method ${entry.method}`);
  try {
    return inflateRawSync(data, { maxOutputLength: MAX_ENTRY });
  } catch (error) {
    throw r.fail(`entry '${entry.name}' does not inflate (${(error as Error).message})`);
  }
}

/** The first `length` bytes of an entry's content (fewer when it is shorter or does not inflate). */
export async function readZipEntryHead(
  r: MediaReader,
  entry: ZipEntry,
  length: number,
): Promise<Buffer> {
  const start = await dataStart(r, entry);
  if (entry.method === 0) return r.bytes(start, Math.min(length, entry.compressedSize));
  if (entry.method !== 8) return Buffer.alloc(0);
  // Deflate rarely shrinks a PNG header; 4x the wanted length of input is plenty.
  const data = await r.bytes(start, Math.min(entry.compressedSize, Math.max(4 * length, 1024)));
  try {
    return inflateRawSync(data, { finishFlush: constants.Z_SYNC_FLUSH }).subarray(0, length);
  } catch {
    return Buffer.alloc(0);
  }
}
