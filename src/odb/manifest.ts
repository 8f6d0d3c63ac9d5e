/**
 * Manifest: the ordered chunk list of a large file.
 *
 * Canonical encoding (UTF-8 text, LF line ends; the object ID is its SHA-256):
 *   mediagit-manifest 1
 *   size <file size>
 *   sha256 <whole-file SHA-256, hex>
 *   chunker <name> <min> <avg> <max>
 *   chunks <count>
 *   <chunk id> <chunk length>      (one line per chunk, in file order)
 */
import { corruptObject } from '../errors.ts';
import { isObjectId, type ObjectId } from './object-id.ts';

/** Files at least this large are cut into chunks and stored as a manifest of them. */
export const DEFAULT_CHUNK_THRESHOLD = 4 * 1024 * 1024;

export interface ChunkRef {
  readonly id: ObjectId;
  readonly length: number;
}

export interface Manifest {
  readonly size: number;
  readonly sha256: ObjectId;
  readonly chunker: string;
  readonly chunks: readonly ChunkRef[];
}

export function encodeManifest(manifest: Manifest): Buffer {
  const lines = [
    'mediagit-manifest 1',
    `size ${manifest.size}`,
    `sha256 ${manifest.sha256}`,
    `chunker ${manifest.chunker}`,
    `chunks ${manifest.chunks.length}`,
  ];
  for (const chunk of manifest.chunks) lines.push(`${chunk.id} ${chunk.length}`);
  return Buffer.from(lines.join('\n') + '\n', 'utf8');
}

export function decodeManifest(id: ObjectId, data: Buffer): Manifest {
  const lines = data.toString('utf8').split('\n');
  const fail = (reason: string): never => {
    throw corruptObject(id, `bad manifest: ${reason}`);
  };
  if (lines[0] !== 'mediagit-manifest 1') fail('unknown header');
  const field = (index: number, name: string): string => {
    const line = lines[index] ?? '';
    if (!line.startsWith(`${name} `)) fail(`missing ${name}`);
    return line.slice(name.length + 1);
  };
  const size = Number(field(1, 'size'));
  const sha256 = field(2, 'sha256');
  const chunker = field(3, 'chunker');
  const count = Number(field(4, 'chunks'));
  if (!Number.isSafeInteger(size) || size < 0 || !isObjectId(sha256)) fail('bad size or sha256');
  if (!Number.isSafeInteger(count) || lines.length !== count + 6) fail('bad chunk count');
  const chunks: ChunkRef[] = [];
  let total = 0;
  for (let i = 0; i < count; i++) {
    const [chunkId = '', length = ''] = (lines[5 + i] ?? '').split(' ');
    const n = Number(length);
    if (!isObjectId(chunkId) || !Number.isSafeInteger(n) || n <= 0) fail(`bad chunk line ${i}`);
    chunks.push({ id: chunkId, length: n });
    total += n;
  }
  if (total !== size) fail('chunk lengths do not add up to the size');
  return { size, sha256, chunker, chunks };
}
