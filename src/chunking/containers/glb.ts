/**
 * Cut points for binary glTF 2.0 (GLB): a 12-byte header (`glTF`, u32 version 2, u32 total
 * length) and then chunks `u32 length | u32 type | payload`, all little-endian: one `JSON`
 * chunk first, usually one `BIN\0` chunk after it, possibly extension chunks.
 *
 * Cuts: the end of the header (the total length in it changes with every edit); the start
 * of every chunk; and the start of every non-JSON chunk's payload, so the buffer data keeps
 * its chunks when only the JSON (materials, node transforms, names) changes, and the BIN
 * chunk header, whose length changes when geometry is added, is a chunk of its own. The
 * JSON chunk header stays with the JSON: both change together. The end of the declared
 * length is cut when bytes follow it.
 *
 * Stops, keeping the cuts so far, when the header is not a version-2 GLB header, when the
 * first chunk is not JSON, and at a chunk that ends past the declared length or the file.
 * A declared length past the end of the file (a truncated file) is read as the file's end.
 */
import { u32le, type ContainerScan } from './scan.ts';

const GLTF_MAGIC = 0x46546c67; // "glTF" as a little-endian u32
const JSON_CHUNK = 0x4e4f534a; // "JSON" as a little-endian u32
const HEADER_SIZE = 12;
const CHUNK_HEADER_SIZE = 8;

export async function glbCuts(scan: ContainerScan): Promise<void> {
  scan.step();
  const header = await scan.bytes(0, HEADER_SIZE);
  if (header.length < HEADER_SIZE || u32le(header, 0) !== GLTF_MAGIC || u32le(header, 4) !== 2) {
    scan.stop();
  }
  const declared = u32le(header, 8);
  const end = declared >= HEADER_SIZE && declared <= scan.size ? declared : scan.size;
  let at = HEADER_SIZE;
  while (at < end) {
    scan.step();
    scan.cut(at);
    const b = await scan.bytes(at, CHUNK_HEADER_SIZE);
    if (b.length < CHUNK_HEADER_SIZE) scan.stop();
    const type = u32le(b, 4);
    if (at === HEADER_SIZE && type !== JSON_CHUNK) scan.stop();
    if (type !== JSON_CHUNK) scan.cut(at + CHUNK_HEADER_SIZE);
    const next = at + CHUNK_HEADER_SIZE + u32le(b, 0);
    if (next > end) scan.stop();
    at = next;
  }
  scan.cut(end);
}
