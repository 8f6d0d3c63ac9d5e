/**
 * Transfer packs: how metadata objects (commits, trees, manifests, tags,
 * small-file blobs) travel in one body (docs/protocol.md). Chunks travel on
 * their own, in parallel, and are never in a transfer pack.
 *
 *   "MGTP" | version u32 LE (1) | count u32 LE
 *   count × ( id: 32 raw bytes | length u32 LE | standalone record )
 *   SHA-256 of every byte before it (32 bytes)
 *
 * Parsing checks the framing and the trailer; each record is then verified
 * against its ID by whoever stores it (odb/record.ts).
 */
import { createHash } from 'node:crypto';
import { MediaGitError } from '../errors.ts';
import type { ObjectId } from '../odb/object-id.ts';

const MAGIC = Buffer.from('MGTP', 'latin1');
const VERSION = 1;
const HEADER_SIZE = 12;
const ENTRY_HEADER_SIZE = 36;
const TRAILER_SIZE = 32;

export interface TransferEntry {
  readonly id: ObjectId;
  readonly record: Buffer;
}

export function badPack(reason: string): MediaGitError {
  return new MediaGitError('BAD_TRANSFER_PACK', `transfer pack rejected: ${reason}`, {
    kind: 'user',
    data: { reason },
  });
}

export function encodeTransferPack(entries: readonly TransferEntry[]): Buffer {
  const parts: Buffer[] = [];
  const header = Buffer.alloc(HEADER_SIZE);
  MAGIC.copy(header, 0);
  header.writeUInt32LE(VERSION, 4);
  header.writeUInt32LE(entries.length, 8);
  parts.push(header);
  for (const { id, record } of entries) {
    const entryHeader = Buffer.alloc(ENTRY_HEADER_SIZE);
    Buffer.from(id, 'hex').copy(entryHeader, 0);
    entryHeader.writeUInt32LE(record.length, 32);
    parts.push(entryHeader, record);
  }
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part);
  parts.push(hash.digest());
  return Buffer.concat(parts);
}

export function decodeTransferPack(body: Uint8Array): TransferEntry[] {
  const pack = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  if (pack.length < HEADER_SIZE + TRAILER_SIZE) throw badPack('too short');
  if (!pack.subarray(0, 4).equals(MAGIC)) throw badPack('bad magic');
  if (pack.readUInt32LE(4) !== VERSION)
    throw badPack(`unsupported version ${pack.readUInt32LE(4)}`);
  const body_ = pack.subarray(0, pack.length - TRAILER_SIZE);
  const digest = createHash('sha256').update(body_).digest();
  if (!digest.equals(pack.subarray(pack.length - TRAILER_SIZE))) {
    throw badPack('checksum mismatch (truncated or altered in transit)');
  }
  const count = pack.readUInt32LE(8);
  const entries: TransferEntry[] = [];
  let at = HEADER_SIZE;
  for (let n = 0; n < count; n++) {
    if (at + ENTRY_HEADER_SIZE > body_.length) throw badPack('entry table runs past the end');
    const id = body_.toString('hex', at, at + 32);
    const length = body_.readUInt32LE(at + 32);
    at += ENTRY_HEADER_SIZE;
    if (at + length > body_.length) throw badPack(`record of ${id} runs past the end`);
    entries.push({ id, record: body_.subarray(at, at + length) });
    at += length;
  }
  if (at !== body_.length) throw badPack('bytes after the last entry');
  return entries;
}
