/**
 * Media properties read from a file's structure: `readMediaInfo` detects the
 * format from the first bytes and the name (detect.ts) and hands the file to
 * the parser of its family, one module each:
 *
 *   isobmff.ts  MP4, MOV, M4A, 3GP      ebml.ts  MKV, WebM
 *   wav.ts      WAV, RF64, BW64          flac.ts  FLAC
 *   png.ts, jpeg.ts, webp.ts, tiff.ts    psd.ts   PSD, PSB (layers)
 *   layered-zip.ts  ORA, KRA (layers from their XML index; zip.ts)
 *   gltf.ts     GLB, glTF
 *
 * Every parser reads through `RandomAccess` (random-access.ts) and reads only
 * headers and indexes, skipping payloads by their declared sizes; the caller
 * decides what a read costs (a working-tree file, or a stored file whose
 * chunks are fetched and verified only when touched). A format without a
 * parser is not an error: the caller reports what it knows. A file whose
 * structure does not parse is a MEDIA_CORRUPT error (kind `user`).
 */
import { detectFormat, type MediaFormat } from '../detect.ts';
import { readMatroska } from './ebml.ts';
import { readFlac } from './flac.ts';
import { readGlb, readGltfJson } from './gltf.ts';
import { readIsoBmff } from './isobmff.ts';
import { readJpeg } from './jpeg.ts';
import { readKra, readOra } from './layered-zip.ts';
import { readPng } from './png.ts';
import { readPsd } from './psd.ts';
import { MediaReader, type RandomAccess } from './random-access.ts';
import { readTiff } from './tiff.ts';
import type { MediaProperties } from './types.ts';
import { readWav } from './wav.ts';
import { readWebp } from './webp.ts';

export type { RandomAccess } from './random-access.ts';
export { bufferAccess } from './random-access.ts';
export type { LayerInfo, MediaProperties, SceneInfo, StreamInfo } from './types.ts';

/**
 * How many leading bytes detection reads: at most INFO_HEAD_BYTES, and no
 * further than the first stored chunk goes, but at least MIN_HEAD_BYTES.
 * Smaller than DETECT_HEAD_BYTES on purpose: every signature a parser here
 * needs sits in the first few dozen bytes, and a longer head would pull in
 * the second chunk of a stored MP4 (its first chunk ends where `mdat`'s
 * payload starts, after a few dozen bytes: ftyp, free, the mdat header).
 */
export const INFO_HEAD_BYTES = 4096;
const MIN_HEAD_BYTES = 16;

type Parser = (r: MediaReader) => Promise<MediaProperties>;

const PARSERS: Record<string, Parser> = {
  mp4: readIsoBmff,
  m4v: readIsoBmff,
  mov: readIsoBmff,
  m4a: readIsoBmff,
  '3gp': readIsoBmff,
  '3g2': readIsoBmff,
  mkv: readMatroska,
  webm: readMatroska,
  wav: readWav,
  flac: readFlac,
  png: readPng,
  jpg: readJpeg,
  webp: readWebp,
  tif: readTiff,
  psd: readPsd,
  psb: readPsd,
  ora: readOra,
  kra: readKra,
  glb: readGlb,
  gltf: readGltfJson,
};

export interface MediaInfoResult {
  readonly format: MediaFormat;
  /** Whether a parser for the format exists (false: only the detected type is known). */
  readonly parsed: boolean;
  readonly properties: MediaProperties;
}

/** The formats `readMediaInfo` parses (the others are only detected). */
export function parsedFormats(): string[] {
  return Object.keys(PARSERS);
}

export async function readMediaInfo(
  access: RandomAccess,
  fileName: string,
  signal?: AbortSignal,
): Promise<MediaInfoResult> {
  // Within the first stored chunk: a stored MP4's first chunk ends where `mdat`'s payload starts.
  const span = Math.max(MIN_HEAD_BYTES, access.fetchSpan?.(0) ?? INFO_HEAD_BYTES);
  const head = await access.read(0, Math.min(access.size, INFO_HEAD_BYTES, span));
  const format = detectFormat(head, fileName);
  const parser = PARSERS[format.format];
  // A file named like a parsed format is held to it: bytes that do not parse are corrupt media.
  if (!parser) return { format, parsed: false, properties: {} };
  const properties = await parser(new MediaReader(access, format.format, signal));
  return { format, parsed: true, properties };
}
