/**
 * Standalone object records: an object's header + payload that decodes on
 * its own (any codec but a delta). This is how objects travel between
 * repositories and how a server stores them: the receiver needs no other
 * object to verify one, and a hostile record is rejected before it is stored.
 */
import { MediaGitError } from '../errors.ts';
import { Codec, classifyContent, decode, encode } from '../compression/codec.ts';
import { objectIdOf, isObjectId, type ObjectId } from './object-id.ts';
import { SEAL_OVERHEAD } from '../security/encryption.ts';
import type { ObjectCipher } from './object-cipher.ts';
import { decodeLinks, isLinking, linkView } from './object-links.ts';
import {
  checkLinks,
  decodeHeader,
  decodeStored,
  encodeHeader,
  HEADER_SIZE,
  type DecodedStored,
  type ObjectStore,
  type ObjectTypeName,
} from './object-store.ts';

export interface DecodedRecord {
  readonly type: ObjectTypeName;
  readonly data: Buffer;
}

export function badRecord(id: string, reason: string, cause?: unknown): MediaGitError {
  return new MediaGitError('BAD_OBJECT_RECORD', `object ${id} was rejected: ${reason}`, {
    kind: 'user',
    data: { id, reason },
    cause,
  });
}

/**
 * The most a received record may claim to expand to, before it is
 * decompressed: a decompression bomb (a few KiB whose header claims, and
 * whose zstd frame delivers, gigabytes) is refused from its header. Every
 * chunk the chunker makes fits under the floor (its largest is 32 MiB);
 * past it, a record may claim 64 times its stored size, which compressed
 * metadata and ordinary file content stay well under. What a record claims
 * within the limit is still checked byte for byte (decompression stops at
 * the claimed size, and the result must hash to the ID).
 */
export const RAW_SIZE_FLOOR = 64 * 1024 * 1024;
export const MAX_EXPANSION = 64;

/** The largest raw size a record of `storedBytes` may claim (see RAW_SIZE_FLOOR). */
export function rawSizeLimit(storedBytes: number): number {
  return Math.max(RAW_SIZE_FLOOR, MAX_EXPANSION * storedBytes);
}

/**
 * The most bytes the record of an object of `rawSize` bytes can take: the
 * encoder stores raw bytes whenever compressing does not make them smaller
 * (codec.ts), so a header and the raw size, with a margin. A download
 * refuses an answer longer than this before reading all of it.
 */
export function recordLimit(rawSize: number): number {
  return HEADER_SIZE + rawSize + Math.ceil(rawSize / 64) + 4096;
}

/**
 * How a record is checked: in a plain repository (undefined), as its
 * content hashing to its ID; by a client of an encrypted one (its cipher),
 * opened and checked against its keyed ID and its links; by a server of an
 * encrypted one ('sealed', no key): its format alone (sealedRecord).
 */
export type RecordCheck = ObjectCipher | 'sealed' | undefined;

/**
 * Decodes a standalone record and checks that its content hashes to `id`;
 * throws BAD_OBJECT_RECORD otherwise (deltas included: they are not
 * standalone), and before decompressing anything when its header claims
 * more than rawSizeLimit, or other than `expectedSize` when the caller knows
 * the size (a chunk whose manifest says how long it is). `check` says how
 * an encrypted repository's records are checked (RecordCheck); a sealed
 * record is refused in a plain repository, and a plain one in an encrypted
 * repository.
 */
export function decodeRecord(
  id: string,
  record: Uint8Array,
  expectedSize?: number,
  check?: RecordCheck,
  /** Where an encrypted record's content is opened when it fits (a buffer the caller reuses once done with the result). */
  into?: Buffer,
): Promise<DecodedRecord> {
  return decodeChecked(id, record, expectedSize, check, into, true);
}

/**
 * A plain record read back from a store that verified it when it was
 * written, decoded without hashing it again: for a caller that checks the
 * content some other way (the whole-file SHA-256 binding an LFS OID).
 */
export function decodeStoredPlain(
  id: string,
  record: Uint8Array,
  expectedSize?: number,
): Promise<DecodedRecord> {
  return decodeChecked(id, record, expectedSize, undefined, undefined, false);
}

async function decodeChecked(
  id: string,
  record: Uint8Array,
  expectedSize: number | undefined,
  check: RecordCheck,
  into: Buffer | undefined,
  verifyId: boolean,
): Promise<DecodedRecord> {
  if (!isObjectId(id)) throw badRecord(id, 'not an object ID');
  let header;
  try {
    header = decodeHeader(id, record);
  } catch (error) {
    throw badRecord(id, error instanceof Error ? error.message : 'bad header', error);
  }
  if (header.codec === Codec.delta) throw badRecord(id, 'a delta is not a standalone record');
  if (expectedSize !== undefined && header.rawSize !== expectedSize) {
    throw badRecord(id, `its header says ${header.rawSize} bytes, ${expectedSize} were expected`);
  }
  const stored = record.length - HEADER_SIZE;
  if (header.rawSize > rawSizeLimit(stored)) {
    throw badRecord(
      id,
      `its header claims ${header.rawSize} bytes from ${stored} stored, more than a record may expand to (${rawSizeLimit(stored)})`,
    );
  }
  if ((header.codec === Codec.sealed) !== (check !== undefined)) {
    throw badRecord(
      id,
      check === undefined
        ? 'it is encrypted, and this repository is not'
        : 'it is not encrypted, and this repository is',
    );
  }
  if (check === 'sealed') return sealedRecord(id, header.type, record);
  const view = Buffer.from(record.buffer, record.byteOffset, record.byteLength);
  let codec: Codec = header.codec;
  let payload = view.subarray(HEADER_SIZE);
  let links: DecodedStored['links'];
  if (check !== undefined) {
    try {
      ({ codec, payload, links } = decodeStored(check, id, view, into));
    } catch (error) {
      throw badRecord(id, error instanceof Error ? error.message : 'it does not open', error);
    }
  }
  let data: Buffer;
  try {
    data = await decode(codec, payload, header.rawSize);
  } catch (error) {
    throw badRecord(id, 'payload does not decompress', error);
  }
  if (data.length !== header.rawSize) throw badRecord(id, 'size does not match its header');
  if (verifyId) {
    const actual =
      check === undefined ? objectIdOf(header.type, data) : check.idOf(header.type, data);
    if (actual !== id) throw badRecord(id, 'content does not match its ID');
  }
  if (links !== undefined) {
    try {
      checkLinks(id, header.type, data, links);
    } catch (error) {
      throw badRecord(id, error instanceof Error ? error.message : 'bad links', error);
    }
  }
  return { type: header.type, data };
}

/**
 * What a server without the key can check of a sealed record: its header,
 * its link list (a commit, tree, manifest or tag) and that a nonce, a codec
 * byte and a tag fit after it. Its data is the link view (object-links.ts)
 * for a linking type, empty for a chunk or blob: nothing may read those.
 */
function sealedRecord(id: ObjectId, type: ObjectTypeName, record: Uint8Array): DecodedRecord {
  let size = 0;
  let data: Buffer = Buffer.alloc(0);
  try {
    if (isLinking(type)) {
      const list = decodeLinks(id, record.subarray(HEADER_SIZE));
      size = list.size;
      data = linkView(type, id, list.links);
    }
  } catch (error) {
    throw badRecord(id, error instanceof Error ? error.message : 'bad link list', error);
  }
  if (record.length < HEADER_SIZE + size + SEAL_OVERHEAD + 1) {
    throw badRecord(id, 'too short to be a sealed record');
  }
  return { type, data };
}

/** The record type alone, after the header checks (for routing, before verification). */
export function recordType(id: string, record: Uint8Array): ObjectTypeName {
  try {
    return decodeHeader(id, record).type;
  } catch (error) {
    throw badRecord(id, error instanceof Error ? error.message : 'bad header', error);
  }
}

/**
 * An object of `store` as a standalone record: its stored bytes when they
 * are one (the common case, no work), else decoded and compressed afresh.
 */
export async function standaloneRecord(
  store: ObjectStore,
  id: ObjectId,
  into?: Buffer,
): Promise<Buffer> {
  const record = await store.readRecord(id, into);
  const header = decodeHeader(id, record);
  if (header.codec !== Codec.delta) return record;
  const object = await store.read(id);
  const encoded = await encode(object.data, classifyContent(object.data));
  return Buffer.concat([
    encodeHeader(object.type, encoded.codec, object.data.length),
    encoded.payload,
  ]);
}

/** Stores a verified standalone record in `store` as it is (no re-encoding), unless present. */
export async function writeRecord(
  store: ObjectStore,
  id: ObjectId,
  record: Buffer,
): Promise<boolean> {
  const header = decodeHeader(id, record);
  const result = await store.writeEncoded(header.type, id, header.rawSize, {
    codec: header.codec,
    payload: record.subarray(HEADER_SIZE),
  });
  return result.written;
}
