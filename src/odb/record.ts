/**
 * Standalone object records: an object's header + payload that decodes on
 * its own (any codec but a delta). This is how objects travel between
 * repositories and how a server stores them: the receiver needs no other
 * object to verify one, and a hostile record is rejected before it is stored.
 */
import { MediaGitError } from '../errors.ts';
import { Codec, classifyContent, decode, encode } from '../compression/codec.ts';
import { objectIdOf, isObjectId, type ObjectId } from './object-id.ts';
import {
  decodeHeader,
  encodeHeader,
  HEADER_SIZE,
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
 * Decodes a standalone record and checks that its content hashes to `id`;
 * throws BAD_OBJECT_RECORD otherwise (deltas included: they are not standalone).
 */
export async function decodeRecord(id: string, record: Uint8Array): Promise<DecodedRecord> {
  if (!isObjectId(id)) throw badRecord(id, 'not an object ID');
  let header;
  try {
    header = decodeHeader(id, record);
  } catch (error) {
    throw badRecord(id, error instanceof Error ? error.message : 'bad header', error);
  }
  if (header.codec === Codec.delta) throw badRecord(id, 'a delta is not a standalone record');
  let data: Buffer;
  try {
    data = await decode(header.codec, record.subarray(HEADER_SIZE), header.rawSize);
  } catch (error) {
    throw badRecord(id, 'payload does not decompress', error);
  }
  if (data.length !== header.rawSize) throw badRecord(id, 'size does not match its header');
  if (objectIdOf(header.type, data) !== id) throw badRecord(id, 'content does not match its ID');
  return { type: header.type, data };
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
