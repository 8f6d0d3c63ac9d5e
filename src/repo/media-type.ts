/**
 * A file's media type (MIME) for one-line summaries of binary changes. The
 * detection itself is the media layer's (media/detect.ts): magic bytes first,
 * then the file name's extension when one is given, then text content.
 */
import { DETECT_HEAD_BYTES, detectFormat } from '../media/detect.ts';

/** How many leading bytes `detectMediaType` looks at, at most. */
export const MEDIA_PROBE_BYTES = DETECT_HEAD_BYTES;

/** The MIME type of a file from its first bytes (and name, when known); application/octet-stream if unknown. */
export function detectMediaType(head: Uint8Array, fileName = ''): string {
  return detectFormat(head, fileName).mime;
}
