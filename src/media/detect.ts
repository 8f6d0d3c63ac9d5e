/**
 * Format detection: what a file is, from its first bytes and its name.
 *
 * Order of evidence, strongest first:
 *   1. magic: a signature in the first bytes (PNG, ftyp brands, the EBML
 *      DocType, RIFF form types, ...). Where a signature is shared by a family
 *      (ZIP, gzip, ISO-BMFF, TIFF, HDF5), the family is decided by the bytes
 *      and the member by structure (a ZIP's `mimetype` entry, an ftyp brand)
 *      or, failing that, by the extension.
 *   2. extension (case-insensitive), from the format table in formats.ts; not
 *      trusted when it names a signed binary format and the bytes are text.
 *   3. content: text recognised by its shape (JSON, XML, CSV, code, OBJ...).
 * Otherwise 'unknown'. Detection never reads beyond `head` and never throws.
 */
import { classifyContent } from '../compression/codec.ts';
import {
  EXTENSIONS,
  FORMATS,
  type ContainerKind,
  type FormatId,
  type FormatInfo,
  type MediaCategory,
} from './formats.ts';

export type { ContainerKind, MediaCategory } from './formats.ts';

export interface MediaFormat {
  /** Format id (formats.ts): the canonical extension, e.g. "mp4", "psd", "safetensors". */
  readonly format: string;
  readonly category: MediaCategory;
  /** The container structure the chunker can follow, when it has one worth following. */
  readonly container?: ContainerKind | undefined;
  /** The payload is entropy-coded already: compressing it again gains nothing. */
  readonly alreadyCompressed: boolean;
  readonly mime: string;
  readonly detectedBy: 'magic' | 'extension' | 'content' | 'none';
}

/** How many leading bytes `detectFormat` uses; callers should pass this many when they can. */
export const DETECT_HEAD_BYTES = 64 * 1024;

const UNKNOWN: MediaFormat = {
  format: 'unknown',
  category: 'unknown',
  alreadyCompressed: false,
  mime: 'application/octet-stream',
  detectedBy: 'none',
};

/**
 * Detects the format of a file from `head`, its first bytes (up to
 * DETECT_HEAD_BYTES; fewer when the file is shorter), and its name (only the
 * extension is used).
 */
export function detectFormat(head: Uint8Array, fileName: string): MediaFormat {
  const bytes = Buffer.from(head.buffer, head.byteOffset, Math.min(head.length, DETECT_HEAD_BYTES));
  const ext = extensionOf(fileName);
  const byExt = EXTENSIONS.get(ext);
  const text = bytes.length > 0 && classifyContent(bytes) === 'text';
  const magic = byMagic(bytes, byExt);
  // A signature made of printable characters is not trusted on text ("ORC", "PAR1"...).
  if (magic && !(text && PRINTABLE_SIGNATURES.has(magic.id)))
    return formatFrom(magic.id, 'magic', magic.compressed);
  if (byExt && !(text && FORMATS[byExt].signed === true)) return formatFrom(byExt, 'extension');
  if (text) return formatFrom(byTextContent(bytes), 'content');
  return UNKNOWN;
}

/** Whether the format is textual, so that text codecs suit it. */
export function isTextFormat(format: MediaFormat): boolean {
  const info = infoOf(format.format);
  return info?.text === true;
}

function infoOf(id: string): FormatInfo | undefined {
  return Object.hasOwn(FORMATS, id) ? FORMATS[id as FormatId] : undefined;
}

/** Formats whose signature is short printable ASCII, which text could start with by chance. */
const PRINTABLE_SIGNATURES: ReadonlySet<FormatId> = new Set<FormatId>([
  'orc',
  'otf',
  'caf',
  'mid',
  'flp',
  'r3d',
  'gguf',
  'parquet',
  'woff',
  'woff2',
  'bmp',
  'arrow',
  'blend',
  'abc',
  'fig',
  'clip',
  'xcf',
  'raf',
  'dpx',
  'c4d',
  'mb',
  '3dm',
  'mpegts',
  'm2ts',
]);

function formatFrom(
  id: FormatId,
  detectedBy: MediaFormat['detectedBy'],
  compressed?: boolean,
): MediaFormat {
  const info: FormatInfo = FORMATS[id];
  return {
    format: id,
    category: info.category,
    alreadyCompressed: compressed ?? info.compressed,
    mime: info.mime,
    detectedBy,
    ...(info.container === undefined ? {} : { container: info.container }),
  };
}

function extensionOf(fileName: string): string {
  const base = fileName.slice(Math.max(fileName.lastIndexOf('/'), fileName.lastIndexOf('\\')) + 1);
  const dot = base.lastIndexOf('.');
  return dot <= 0 ? '' : base.slice(dot + 1).toLowerCase();
}

// ---- magic ----

interface MagicMatch {
  readonly id: FormatId;
  /** Overrides the table, e.g. a gzip- or zstd-compressed .blend. */
  readonly compressed?: boolean;
}

const ascii = (b: Buffer, start: number, length: number): string =>
  b.toString('latin1', start, Math.min(b.length, start + length));

const hasBytes = (b: Buffer, at: number, signature: readonly number[]): boolean =>
  b.length >= at + signature.length && signature.every((byte, i) => b[at + i] === byte);

const hasAscii = (b: Buffer, at: number, signature: string): boolean =>
  ascii(b, at, signature.length) === signature;

/** The extension's format when it is one of `family`, else `fallback`. */
function member(ext: FormatId | undefined, family: readonly FormatId[], fallback: FormatId) {
  return ext !== undefined && family.includes(ext) ? ext : fallback;
}

const ISO_BMFF_FAMILY: readonly FormatId[] = [
  'mp4',
  'm4v',
  'mov',
  '3gp',
  '3g2',
  'm4a',
  'braw',
  'heic',
  'avif',
  'cr3',
];
const ZIP_FAMILY: readonly FormatId[] = [
  'usdz',
  'ora',
  'kra',
  'sketch',
  'xd',
  'procreate',
  'idml',
  'drp',
  'npz',
  'keras',
  'pt',
  'pth',
  'ckpt',
  'jar',
  'sbsar',
];
const GZIP_FAMILY: readonly FormatId[] = ['tgz', 'prproj', 'als', 'svgz'];
const TIFF_FAMILY: readonly FormatId[] = ['dng', 'cr2', 'nef', 'arw'];
const CFB_FAMILY: readonly FormatId[] = ['aaf', 'max'];

function byMagic(b: Buffer, ext: FormatId | undefined): MagicMatch | undefined {
  const id = (found: FormatId): MagicMatch => ({ id: found });
  const four = ascii(b, 0, 4);

  // ISO base media (MP4, MOV, HEIF, AVIF, M4A, CR3): a box whose type is ftyp.
  if (hasAscii(b, 4, 'ftyp')) return id(isoBrand(b, ext));
  if (quickTimeWithoutFtyp(b)) return id(member(ext, ISO_BMFF_FAMILY, 'mov'));
  if (hasBytes(b, 0, [0x1a, 0x45, 0xdf, 0xa3])) {
    const docType = ebmlDocType(b);
    if (docType === 'webm') return id('webm');
    return id(ext === 'mka' ? 'mka' : 'mkv');
  }
  if (four === 'RIFF' || four === 'RF64') {
    const form = ascii(b, 8, 4);
    if (form === 'WAVE') return id('wav');
    if (form === 'AVI ') return id('avi');
    if (form === 'WEBP') return id('webp');
  }
  if (four === 'RIFX' && ascii(b, 8, 4) === 'Egg!') return id('aep');
  if (four === 'FORM') {
    const form = ascii(b, 8, 4);
    if (form === 'AIFF') return id('aiff');
    if (form === 'AIFC') return id('aifc');
  }
  if ((four === 'FOR4' || four === 'FOR8') && (hasAscii(b, 8, 'Maya') || hasAscii(b, 16, 'Maya')))
    return id('mb');
  if (four === 'glTF') return id('glb');
  if (four === '8BPS') return id(b.readUInt16BE(4) === 2 ? 'psb' : 'psd');
  if (hasBytes(b, 0, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return id('png');
  if (hasBytes(b, 0, [0xff, 0xd8, 0xff])) return id('jpg');
  if (hasAscii(b, 0, 'GIF87a') || hasAscii(b, 0, 'GIF89a')) return id('gif');
  if (hasAscii(b, 0, '%PDF-')) return id(ext === 'ai' ? 'ai' : 'pdf');
  if (hasAscii(b, 0, '%!PS')) return id(ext === 'ai' ? 'ai' : 'eps');
  if (four === 'PK\x03\x04' || four === 'PK\x05\x06' || four === 'PK\x07\x08')
    return id(zipMember(b, ext));
  if (hasBytes(b, 0, [0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c])) return id('7z');
  if (hasAscii(b, 0, 'Rar!\x1a\x07\x00') || hasAscii(b, 0, 'Rar!\x1a\x07\x01\x00'))
    return id('rar');
  if (hasBytes(b, 0, [0x1f, 0x8b, 0x08])) {
    if (ext === 'blend') return { id: 'blend', compressed: true };
    return id(member(ext, GZIP_FAMILY, 'gz'));
  }
  if (hasBytes(b, 0, [0x28, 0xb5, 0x2f, 0xfd])) {
    if (ext === 'blend') return { id: 'blend', compressed: true };
    return id('zst');
  }
  if (hasAscii(b, 0, 'BZh') && b.length > 3 && b[3]! >= 0x31 && b[3]! <= 0x39) return id('bz2');
  if (hasBytes(b, 0, [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])) return id('xz');
  if (hasBytes(b, 0, [0x04, 0x22, 0x4d, 0x18])) return id('lz4');
  if (hasAscii(b, 257, 'ustar')) return id('tar');
  if (four === 'OggS') return id(oggCodec(b));
  if (four === 'fLaC') return id('flac');
  if (four === 'GGUF') return id('gguf');
  if (hasBytes(b, 0, [0x76, 0x2f, 0x31, 0x01])) return id('exr');
  if (four === 'PAR1') return id('parquet');
  if (hasAscii(b, 0, 'ARROW1')) return id('arrow');
  if (hasAscii(b, 0, 'Obj\x01')) return id('avro');
  if (hasAscii(b, 0, 'ORC')) return id('orc');
  if (hasAscii(b, 0, 'BLENDER')) return id('blend');
  if (hasAscii(b, 0, 'PXR-USDC')) return id('usdc');
  if (hasAscii(b, 0, '#usda ')) return id('usda');
  if (hasAscii(b, 0, 'Ogawa')) return id('abc');
  if (hasBytes(b, 0, [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a])) {
    return id(ext === 'abc' ? 'abc' : ext === 'keras' ? 'keras' : 'h5');
  }
  if (hasAscii(b, 4, 'TFL3')) return id('tflite');
  if (hasAscii(b, 0, '\x93NUMPY')) return id('npy');
  if (safetensorsHeader(b)) return id('safetensors');
  if (isMxf(b)) return id('mxf');
  if (hasAscii(b, 0, 'Kaydara FBX Binary') || hasAscii(b, 0, '; FBX ')) return id('fbx');
  if (hasAscii(b, 0, 'ply\n') || hasAscii(b, 0, 'ply\r\n')) return id('ply');
  if (hasAscii(b, 0, '3D Geometry File Format ')) return id('3dm');
  if (hasBytes(b, 0, [0x20, 0x42, 0x44, 0x56, 0, 0, 0, 0])) return id('vdb');
  if (hasAscii(b, 0, '//Maya ASCII')) return id('ma');
  if (hasAscii(b, 0, 'gimp xcf ')) return id('xcf');
  if (hasAscii(b, 0, 'CSFCHUNK')) return id('clip');
  if (hasAscii(b, 0, 'fig-kiwi')) return id('fig');
  if (hasAscii(b, 0, 'FLhd')) return id('flp');
  if (ascii(b, 0, 16).includes('C4DC4D6')) return id('c4d');
  if (hasAscii(b, 4, 'RED2') || hasAscii(b, 4, 'RED1')) return id('r3d');
  if (
    hasBytes(b, 0, [0x06, 0x06, 0xed, 0xf5, 0xd8, 0x1d, 0x46, 0xe5]) &&
    hasBytes(b, 8, [0xbd, 0x31, 0xef, 0xe7, 0xfe, 0x74, 0xb7, 0x1d])
  )
    return id('indd');
  if (hasBytes(b, 0, [0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1]))
    return id(member(ext, CFB_FAMILY, 'cfb'));
  // TIFF and the camera raw formats built on it.
  if (four === 'II*\0' || four === 'MM\0*' || four === 'II+\0' || four === 'MM\0+')
    return id(member(ext, TIFF_FAMILY, 'tif'));
  if (four === 'IIRO' || four === 'IIRS' || four === 'MMOR') return id('orf');
  if (four === 'IIU\0') return id('rw2');
  if (hasAscii(b, 0, 'FUJIFILMCCD-RAW')) return id('raf');
  if (four === 'SDPX' || four === 'XPDS') return id('dpx');
  if (hasBytes(b, 0, [0x80, 0x2a, 0x5f, 0xd7]) || hasBytes(b, 0, [0xd7, 0x5f, 0x2a, 0x80]))
    return id('cin');
  if (hasAscii(b, 0, '#?RADIANCE') || hasAscii(b, 0, '#?RGBE')) return id('hdr');
  if (hasBytes(b, 0, [0, 0, 0, 0x0c, 0x4a, 0x58, 0x4c, 0x20, 0x0d, 0x0a, 0x87, 0x0a]))
    return id('jxl');
  if (hasBytes(b, 0, [0xff, 0x0a])) return id('jxl');
  if (hasBytes(b, 0, [0, 0, 0, 0x0c, 0x6a, 0x50, 0x20, 0x20, 0x0d, 0x0a, 0x87, 0x0a]))
    return id('jp2');
  if (hasAscii(b, 0, 'BM') && bmpHeader(b)) return id('bmp');
  if (four === 'wOFF') return id('woff');
  if (four === 'wOF2') return id('woff2');
  if (four === 'OTTO') return id('otf');
  if (four === 'caff') return id('caf');
  if (four === 'MThd') return id('mid');
  if (hasAscii(b, 0, '#!AMR')) return id('amr');
  if (hasAscii(b, 0, 'FLV\x01')) return id('flv');
  if (hasAscii(b, 0, 'YUV4MPEG2 ')) return id('y4m');
  if (hasBytes(b, 0, [0x30, 0x26, 0xb2, 0x75, 0x8e, 0x66, 0xcf, 0x11]))
    return id(ext === 'wma' ? 'wma' : 'wmv');
  if (hasBytes(b, 0, [0, 0, 1, 0xba]) || hasBytes(b, 0, [0, 0, 1, 0xb3])) return id('mpg');
  const transport = transportStream(b);
  if (transport) return id(transport);
  if (hasAscii(b, 32769, 'CD001')) return id('iso');
  const audio = mpegAudio(b);
  if (audio) return id(audio);
  return undefined;
}

/** The ftyp major brand decides; generic brands (isom, mp42...) defer to a family extension. */
function isoBrand(b: Buffer, ext: FormatId | undefined): FormatId {
  const major = ascii(b, 8, 4);
  const boxSize = b.length >= 4 ? b.readUInt32BE(0) : 0;
  const compatible: string[] = [];
  for (let at = 16; at + 4 <= Math.min(boxSize, b.length, 256); at += 4)
    compatible.push(ascii(b, at, 4));
  const brands = [major, ...compatible];
  if (major === 'qt  ') return 'mov';
  if (major === 'M4A ' || major === 'M4B ' || major === 'M4P ') return 'm4a';
  if (major === 'M4V ' || major === 'M4VH' || major === 'M4VP') return 'm4v';
  if (major === 'crx ') return 'cr3';
  if (major === 'avif' || major === 'avis') return 'avif';
  if (['heic', 'heix', 'hevc', 'hevx', 'heim', 'heis'].includes(major)) return 'heic';
  if (major === 'mif1' || major === 'msf1') {
    // Generic HEIF: the compatible brands say whether the images are AV1 or HEVC.
    return brands.includes('avif') || brands.includes('avis') ? 'avif' : 'heic';
  }
  if (major.startsWith('3gp')) return '3gp';
  if (major.startsWith('3g2')) return '3g2';
  return member(ext, ISO_BMFF_FAMILY, 'mp4');
}

/** Old QuickTime files open with a moov, mdat, wide, free or skip atom instead of ftyp. */
function quickTimeWithoutFtyp(b: Buffer): boolean {
  if (b.length < 8) return false;
  const size = b.readUInt32BE(0);
  const type = ascii(b, 4, 4);
  return (
    (size === 1 || size >= 8) && ['moov', 'mdat', 'wide', 'free', 'skip', 'pnot'].includes(type)
  );
}

/** Reads an EBML variable-length integer; `keepMarker` for element IDs. */
function ebmlVint(
  b: Buffer,
  at: number,
  keepMarker: boolean,
): { value: number; length: number } | undefined {
  const first = b[at];
  if (first === undefined || first === 0) return undefined;
  const length = Math.clz32(first) - 23;
  if (at + length > b.length) return undefined;
  let value = keepMarker ? first : first & (0xff >> length);
  for (let i = 1; i < length; i++) value = value * 256 + b[at + i]!;
  return { value, length };
}

/** The DocType string of the EBML header ("matroska", "webm"), if present in `b`. */
function ebmlDocType(b: Buffer): string | undefined {
  const headerSize = ebmlVint(b, 4, false);
  if (!headerSize) return undefined;
  let at = 4 + headerSize.length;
  const end = Math.min(b.length, at + headerSize.value);
  while (at < end) {
    const elementId = ebmlVint(b, at, true);
    if (!elementId) return undefined;
    const size = ebmlVint(b, at + elementId.length, false);
    if (!size) return undefined;
    const data = at + elementId.length + size.length;
    if (elementId.value === 0x4282) return ascii(b, data, size.value).replace(/\0+$/, '');
    at = data + size.value;
  }
  return undefined;
}

function oggCodec(b: Buffer): FormatId {
  const segments = b[26] ?? 0;
  const packet = 27 + segments;
  if (hasAscii(b, packet, 'OpusHead')) return 'opus';
  if (hasAscii(b, packet, '\x80theora')) return 'ogv';
  return 'ogg';
}

function zipEntryName(b: Buffer): { name: string; dataAt: number; storedSize: number } | undefined {
  if (!hasAscii(b, 0, 'PK\x03\x04') || b.length < 30) return undefined;
  const nameLength = b.readUInt16LE(26);
  const extraLength = b.readUInt16LE(28);
  return {
    name: b.toString('utf8', 30, Math.min(b.length, 30 + nameLength)),
    dataAt: 30 + nameLength + extraLength,
    storedSize: b.readUInt16LE(8) === 0 ? b.readUInt32LE(18) : 0,
  };
}

/** Which ZIP-based format: a stored `mimetype` entry first, the extension next, then structure. */
function zipMember(b: Buffer, ext: FormatId | undefined): FormatId {
  const first = zipEntryName(b);
  if (first?.name === 'mimetype' && first.storedSize > 0) {
    const mimetype = ascii(b, first.dataAt, Math.min(first.storedSize, 100));
    if (mimetype === 'image/openraster') return 'ora';
    if (mimetype === 'application/x-krita') return 'kra';
    if (mimetype.startsWith('application/vnd.adobe.sparkler')) return 'xd';
    if (mimetype === 'application/vnd.adobe.indesign-idml-package') return 'idml';
  }
  if (ext !== undefined && ZIP_FAMILY.includes(ext)) return ext;
  if (first) {
    // USDZ: the first entry must be the root USD layer (USDZ spec).
    if (/\.usd[ac]?$/i.test(first.name)) return 'usdz';
    // torch.save: "<archive>/data.pkl", "<archive>/byteorder", "<archive>/version"...
    if (/^[^/]+\/(data\.pkl|byteorder|version|\.format_version|\.data\/version)$/.test(first.name))
      return 'pt';
  }
  return 'zip';
}

/**
 * safetensors: an unsigned 64-bit little-endian header length, then that many
 * bytes of JSON. The length must be plausible and the JSON must open an object
 * with a quoted key.
 */
function safetensorsHeader(b: Buffer): boolean {
  if (b.length < 10) return false;
  const length = b.readBigUInt64LE(0);
  if (length < 2n || length > 100_000_000n) return false;
  if (b[8] !== 0x7b) return false;
  const next = ascii(b, 9, 8).trimStart();
  return next.startsWith('"') || (next.startsWith('}') && length === 2n);
}

/** MXF: a header partition pack key, after an optional run-in of under 64 KiB. */
const MXF_HEADER_PARTITION = Buffer.from([
  0x06, 0x0e, 0x2b, 0x34, 0x02, 0x05, 0x01, 0x01, 0x0d, 0x01, 0x02, 0x01, 0x01, 0x02,
]);

function isMxf(b: Buffer): boolean {
  return b.indexOf(MXF_HEADER_PARTITION) >= 0;
}

/** MPEG transport stream: 0x47 sync bytes every 188 bytes (192 with a timecode prefix). */
function transportStream(b: Buffer): FormatId | undefined {
  const synced = (start: number, stride: number): boolean => {
    let seen = 0;
    for (let at = start; at < b.length && seen < 4; at += stride, seen++)
      if (b[at] !== 0x47) return false;
    return seen >= 2;
  };
  if (synced(0, 188)) return 'mpegts';
  if (synced(4, 192)) return 'm2ts';
  return undefined;
}

function bmpHeader(b: Buffer): boolean {
  if (b.length < 18) return false;
  return [12, 40, 52, 56, 64, 108, 124].includes(b.readUInt32LE(14));
}

// MPEG audio frame headers: bit rates (kbit/s) by [version][layer] and sample rates by version.
const MPEG1_RATES = [
  [32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448], // layer I
  [32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384], // layer II
  [32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320], // layer III
];
const MPEG2_RATES = [
  [32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256],
  [8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160],
  [8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160],
];
const SAMPLE_RATES: Record<number, readonly number[]> = {
  3: [44100, 48000, 32000], // MPEG-1
  2: [22050, 24000, 16000], // MPEG-2
  0: [11025, 12000, 8000], // MPEG-2.5
};

/** Length of the MPEG audio (layer I-III) frame at `at`, or undefined if none starts there. */
function mpegFrameLength(b: Buffer, at: number): number | undefined {
  if (at + 4 > b.length || b[at] !== 0xff || (b[at + 1]! & 0xe0) !== 0xe0) return undefined;
  const version = (b[at + 1]! >> 3) & 3;
  const layerBits = (b[at + 1]! >> 1) & 3;
  const rateIndex = b[at + 2]! >> 4;
  const sampleIndex = (b[at + 2]! >> 2) & 3;
  const padding = (b[at + 2]! >> 1) & 1;
  if (version === 1 || layerBits === 0 || rateIndex === 0 || rateIndex === 15 || sampleIndex === 3)
    return undefined;
  const layer = 4 - layerBits; // 1, 2 or 3
  const kbps = (version === 3 ? MPEG1_RATES : MPEG2_RATES)[layer - 1]![rateIndex - 1]!;
  const sampleRate = SAMPLE_RATES[version]![sampleIndex]!;
  if (layer === 1) return (Math.floor((12 * kbps * 1000) / sampleRate) + padding) * 4;
  const perFrame = layer === 3 && version !== 3 ? 72 : 144;
  return Math.floor((perFrame * kbps * 1000) / sampleRate) + padding;
}

/** Length of the ADTS (AAC) frame at `at`, or undefined if none starts there. */
function adtsFrameLength(b: Buffer, at: number): number | undefined {
  if (at + 7 > b.length || b[at] !== 0xff || (b[at + 1]! & 0xf6) !== 0xf0) return undefined;
  if (((b[at + 2]! >> 2) & 0xf) > 12) return undefined;
  const length = ((b[at + 3]! & 3) << 11) | (b[at + 4]! << 3) | (b[at + 5]! >> 5);
  return length >= 7 ? length : undefined;
}

/**
 * MP3 or AAC (ADTS): an optional ID3v2 tag, then a frame header whose
 * successor (when inside `b`) is a frame header too. Two frames in a row keep
 * random binary data that happens to start with 0xFFFx from matching.
 */
function mpegAudio(b: Buffer): FormatId | undefined {
  let start = 0;
  const tagged = hasAscii(b, 0, 'ID3') && b.length >= 10 && b[3]! >= 2 && b[3]! <= 4;
  if (tagged) {
    const size = ((b[6]! & 0x7f) << 21) | ((b[7]! & 0x7f) << 14) | ((b[8]! & 0x7f) << 7) | b[9]!;
    start = 10 + size + (b[5]! & 0x10 ? 10 : 0);
    if (start >= b.length) return 'mp3';
  }
  const chained = (at: number, frameLength: (b: Buffer, at: number) => number | undefined) => {
    const length = frameLength(b, at);
    if (length === undefined) return false;
    return at + length + 4 > b.length || frameLength(b, at + length) !== undefined;
  };
  // After a tag, encoders may pad; look a little further for the first frame.
  const limit = tagged ? Math.min(b.length, start + 4096) : start + 1;
  for (let at = start; at < limit; at++) {
    if (b[at] !== 0xff) continue;
    if (chained(at, adtsFrameLength)) return 'aac';
    if (chained(at, mpegFrameLength)) return 'mp3';
  }
  return tagged ? 'mp3' : undefined;
}

// ---- text content ----

const CODE_PATTERNS: readonly [FormatId, RegExp][] = [
  ['py', /^(from\s+[\w.]+\s+import\s|def\s+\w+\s*\(.*\)\s*(->.*)?:\s*$|if __name__ == )/m],
  ['rs', /^\s*(pub(\([\w:]+\))?\s+)?(fn\s+\w+|use\s+(std|crate|super)::|impl\b.*\{|mod\s+\w+;)/m],
  [
    'js',
    /^(import\s[^;\n]*\sfrom\s*['"]|export\s+(default|const|function|class|async)\b|const\s+\w+\s*=|function\s+\w+\s*\(|module\.exports\b)/m,
  ],
  ['py', /^import\s+[\w.]+(\s+as\s+\w+)?\s*$/m],
];

/** Recognises text formats by their shape; plain text otherwise. */
function byTextContent(b: Buffer): FormatId {
  let text = b.toString('utf8');
  if (b.length === DETECT_HEAD_BYTES) text = text.slice(0, text.lastIndexOf('\n') + 1) || text;
  text = text.replace(/^\uFEFF/, '');
  const start = text.trimStart();
  if (start.startsWith('{') || start.startsWith('[')) return jsonKind(start);
  if (start.startsWith('<')) return markupKind(start.slice(0, 4096));
  if (start.startsWith('#!')) {
    const shebang = start.split('\n', 1)[0]!;
    if (/python/.test(shebang)) return 'py';
    if (/\b(node|deno|bun)\b/.test(shebang)) return 'js';
    if (/nuke/i.test(shebang)) return 'nk';
    return 'sh';
  }
  if (/^solid\b/.test(start) && /\bfacet normal\b/.test(text)) return 'stl';
  if (/^Root \{/m.test(start.slice(0, 2000))) return 'nk';
  const lines = text
    .split(/\r?\n/)
    .slice(0, 64)
    .filter((line) => line.trim() !== '');
  if (isObj(lines)) return 'obj';
  const delimited = delimiter(lines);
  if (delimited) return delimited;
  for (const [format, pattern] of CODE_PATTERNS) if (pattern.test(text)) return format;
  return 'txt';
}

function jsonKind(start: string): FormatId {
  const lines = start.split('\n', 3).filter((line) => line.trim() !== '');
  if (lines.length >= 2 && lines.every((line) => /^\{.*\}\s*$/.test(line))) return 'jsonl';
  const head = start.slice(0, 16384);
  if (/"asset"\s*:\s*\{/.test(head) && /"(meshes|scenes|buffers|nodes)"/.test(head)) return 'gltf';
  if (/"nbformat"\s*:/.test(head) || /"cells"\s*:\s*\[/.test(head)) return 'ipynb';
  if (/"OTIO_SCHEMA"\s*:/.test(head)) return 'otio';
  return 'json';
}

function markupKind(start: string): FormatId {
  const body = start.replace(/^<\?xml[^>]*>\s*/, '').replace(/^(<!--[\s\S]*?-->\s*)+/, '');
  if (/^<!doctype html|^<html\b/i.test(body)) return 'html';
  if (/^(<!DOCTYPE svg[^>]*>\s*)?<svg\b/.test(body)) return 'svg';
  if (/^<COLLADA\b/.test(body)) return 'dae';
  if (/^(<!DOCTYPE fcpxml>\s*)?<fcpxml\b/.test(body)) return 'fcpxml';
  if (/^<REAPER_PROJECT\b/.test(body)) return 'rpp';
  if (/^<AfterEffectsProject\b/.test(body)) return 'aepx';
  if (/^<X3D\b/.test(body)) return 'x3d';
  return 'xml';
}

/** Wavefront OBJ: most lines are vertex, face or grouping statements, and some are vertices. */
function isObj(lines: readonly string[]): boolean {
  const statements = lines.filter((line) => !line.startsWith('#'));
  if (statements.length < 3) return false;
  const objLines = statements.filter((line) =>
    /^(v|vt|vn|vp|f|l|p|o|g|s|usemtl|mtllib)\s/.test(line),
  );
  return (
    objLines.length >= statements.length * 0.8 && statements.some((line) => line.startsWith('v '))
  );
}

/** CSV or TSV: at least two lines with the same non-zero number of separators (outside quotes). */
function delimiter(lines: readonly string[]): FormatId | undefined {
  if (lines.length < 2) return undefined;
  const sample = lines.slice(0, 20);
  for (const [separator, format] of [
    [',', 'csv'],
    ['\t', 'tsv'],
  ] as const) {
    const counts = sample.map((line) => countOutsideQuotes(line, separator));
    const first = counts[0]!;
    if (first > 0 && counts.every((count) => count === first)) return format;
  }
  return undefined;
}

function countOutsideQuotes(line: string, separator: string): number {
  let count = 0;
  let quoted = false;
  for (const ch of line) {
    if (ch === '"') quoted = !quoted;
    else if (ch === separator && !quoted) count++;
  }
  return count;
}
