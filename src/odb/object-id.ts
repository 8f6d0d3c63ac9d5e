/**
 * Object IDs: the lowercase hex SHA-256 of an object's canonical bytes.
 * For a file stored whole or chunked, the file's ID equals its Git LFS OID.
 */
import { hash } from 'node:crypto';

export type ObjectId = string;

const OBJECT_ID = /^[0-9a-f]{64}$/;

export function isObjectId(value: string): value is ObjectId {
  return OBJECT_ID.test(value);
}

export function sha256Hex(data: Uint8Array): ObjectId {
  return hash('sha256', data, 'hex');
}

/** SHA-256 of the empty string: the ID of an empty blob. */
export const EMPTY_BLOB_ID = sha256Hex(new Uint8Array(0));
