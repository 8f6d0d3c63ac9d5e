/**
 * Object IDs: 64 lowercase hex digits naming an object's canonical bytes.
 * Blobs, manifests, trees, commits and tags are named by SHA-256 (so a file
 * stored whole has its Git LFS OID as its ID, and a manifest records the
 * file's SHA-256). Chunks are named by BLAKE3-256: nothing outside MediaGit
 * names a chunk, and BLAKE3 runs about four times as fast here, which is what
 * lets staging keep pace with the disk (ARCHITECTURE.md §4 allows it).
 */
import { hash } from 'node:crypto';
import { createRequire } from 'node:module';

type Blake3 = (data: Buffer) => Buffer;
let blake3Hash: Blake3 | undefined;

/**
 * The BLAKE3 binding, loaded on first use: loading it costs ~10 ms through
 * the package's loader, which commands that name no chunk, such as `status`
 * or `log`, do not pay. Most of that is the loader's libc probe (a full
 * `process.report`): on glibc Linux the platform package is loaded directly
 * (~4 ms), and anywhere that fails (musl, other systems) the loader decides.
 */
const GLIBC_BINDINGS: Readonly<Record<string, string>> = {
  'linux-x64': '@napi-rs/blake-hash-linux-x64-gnu',
  'linux-arm64': '@napi-rs/blake-hash-linux-arm64-gnu',
};

function loadBlake3(): Blake3 {
  const load = createRequire(import.meta.url);
  const direct = GLIBC_BINDINGS[`${process.platform}-${process.arch}`];
  if (direct !== undefined) {
    try {
      return (load(direct) as { blake3: Blake3 }).blake3;
    } catch {
      // Not installed, or built for another libc: the loader picks.
    }
  }
  return (load('@napi-rs/blake-hash') as { blake3: Blake3 }).blake3;
}

function blake3(data: Buffer): Buffer {
  blake3Hash ??= loadBlake3();
  return blake3Hash(data);
}

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

/** The ID of a chunk: BLAKE3-256 of its bytes. */
export function chunkIdOf(data: Uint8Array): ObjectId {
  const bytes = Buffer.isBuffer(data)
    ? data
    : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return blake3(bytes).toString('hex');
}

/** The ID an object of `type` with these canonical bytes has. */
export function objectIdOf(type: string, data: Uint8Array): ObjectId {
  return type === 'chunk' ? chunkIdOf(data) : sha256Hex(data);
}
