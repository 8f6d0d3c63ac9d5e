/**
 * A file's media type from its first bytes, for one-line summaries of binary
 * changes. Only signatures that a few leading bytes decide are recognised;
 * anything else is application/octet-stream (or text/plain for text).
 *
 * This belongs in the media layer once it exists (ARCHITECTURE.md §3); it is
 * small and dependency-free, so moving it is a rename.
 */
import { classifyContent } from '../compression/codec.ts';

/** How many leading bytes `detectMediaType` looks at, at most. */
export const MEDIA_PROBE_BYTES = 4096;

const ascii = (bytes: Uint8Array, start: number, end: number): string =>
  Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1', start, end);

const startsWith = (bytes: Uint8Array, signature: readonly number[], at = 0): boolean =>
  bytes.length >= at + signature.length && signature.every((byte, i) => bytes[at + i] === byte);

/** QuickTime brands; every other ISO base media brand is reported as MP4 family. */
const QUICKTIME_BRANDS = new Set(['qt  ']);
const AUDIO_MP4_BRANDS = new Set(['M4A ', 'M4B ', 'M4P ']);
const HEIF_BRANDS = new Set(['heic', 'heix', 'mif1', 'msf1', 'avif']);

export function detectMediaType(head: Uint8Array): string {
  if (startsWith(head, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return 'image/png';
  if (startsWith(head, [0xff, 0xd8, 0xff])) return 'image/jpeg';
  const first6 = ascii(head, 0, Math.min(6, head.length));
  if (first6 === 'GIF87a' || first6 === 'GIF89a') return 'image/gif';
  if (head.length >= 12 && ascii(head, 4, 8) === 'ftyp') {
    const brand = ascii(head, 8, 12);
    if (QUICKTIME_BRANDS.has(brand)) return 'video/quicktime';
    if (AUDIO_MP4_BRANDS.has(brand)) return 'audio/mp4';
    if (brand === 'avif') return 'image/avif';
    if (HEIF_BRANDS.has(brand)) return 'image/heif';
    return 'video/mp4';
  }
  if (startsWith(head, [0x1a, 0x45, 0xdf, 0xa3])) {
    // The EBML header names the DocType ("webm" or "matroska") within its first bytes.
    return ascii(head, 0, Math.min(64, head.length)).includes('webm')
      ? 'video/webm'
      : 'video/x-matroska';
  }
  if (head.length >= 12 && ascii(head, 0, 4) === 'RIFF') {
    const form = ascii(head, 8, 12);
    if (form === 'WAVE') return 'audio/wav';
    if (form === 'AVI ') return 'video/x-msvideo';
    if (form === 'WEBP') return 'image/webp';
    return 'application/octet-stream';
  }
  if (head.length >= 12 && ascii(head, 0, 4) === 'FORM') {
    const form = ascii(head, 8, 12);
    if (form === 'AIFF' || form === 'AIFC') return 'audio/aiff';
  }
  if (ascii(head, 0, Math.min(4, head.length)) === '8BPS') return 'image/vnd.adobe.photoshop';
  if (ascii(head, 0, Math.min(4, head.length)) === 'glTF') return 'model/gltf-binary';
  if (ascii(head, 0, Math.min(5, head.length)) === '%PDF-') return 'application/pdf';
  if (startsWith(head, [0x50, 0x4b, 0x03, 0x04]) || startsWith(head, [0x50, 0x4b, 0x05, 0x06]))
    return 'application/zip';
  if (startsWith(head, [0x49, 0x44, 0x33]) || startsWith(head, [0xff, 0xfb])) return 'audio/mpeg';
  if (ascii(head, 0, Math.min(4, head.length)) === 'fLaC') return 'audio/flac';
  if (ascii(head, 0, Math.min(4, head.length)) === 'OggS') return 'audio/ogg';
  if (startsWith(head, [0x49, 0x49, 0x2a, 0x00]) || startsWith(head, [0x4d, 0x4d, 0x00, 0x2a]))
    return 'image/tiff';
  if (head.length > 0 && classifyContent(head) === 'text') return 'text/plain';
  return 'application/octet-stream';
}
