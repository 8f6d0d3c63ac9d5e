/**
 * Matroska and WebM (EBML).
 *
 * Reads the EBML header (DocType), then the Segment's SeekHead to find Info,
 * Tracks and Tags and reads those three elements alone; without a SeekHead
 * (or when it lacks one of them) the Segment's children are walked by their
 * sizes up to the first Cluster. Clusters (the media) are never read.
 */
import { flacStreamInfo } from './flac.ts';
import { round, type MediaReader } from './random-access.ts';
import type { MediaProperties, MutableStream, StreamInfo } from './types.ts';

const ID = {
  ebml: 0x1a45dfa3,
  docType: 0x4282,
  segment: 0x18538067,
  seekHead: 0x114d9b74,
  seek: 0x4dbb,
  seekId: 0x53ab,
  seekPosition: 0x53ac,
  info: 0x1549a966,
  timestampScale: 0x2ad7b1,
  duration: 0x4489,
  title: 0x7ba9,
  tracks: 0x1654ae6b,
  trackEntry: 0xae,
  trackType: 0x83,
  codecId: 0x86,
  codecPrivate: 0x63a2,
  defaultDuration: 0x23e383,
  language: 0x22b59c,
  video: 0xe0,
  pixelWidth: 0xb0,
  pixelHeight: 0xba,
  audio: 0xe1,
  samplingFrequency: 0xb5,
  channels: 0x9f,
  bitDepth: 0x6264,
  tags: 0x1254c367,
  tag: 0x7373,
  targets: 0x63c0,
  simpleTag: 0x67c8,
  tagName: 0x45a3,
  tagString: 0x4487,
  cluster: 0x1f43b675,
} as const;

/** Track-, chapter- and attachment-scoped tags name what they apply to in Targets. */
const TARGET_UIDS = new Set([0x63c5, 0x63c9, 0x63c4, 0x63c6]);

/** The largest Info, Tracks or Tags element read into memory. */
const MAX_METADATA = 16 * 1024 * 1024;

const CODECS: Record<string, string> = {
  'V_MPEG4/ISO/AVC': 'h264',
  'V_MPEGH/ISO/HEVC': 'hevc',
  V_VP8: 'vp8',
  V_VP9: 'vp9',
  V_AV1: 'av1',
  'V_MPEG4/ISO/ASP': 'mpeg4',
  V_MPEG2: 'mpeg2video',
  V_MJPEG: 'mjpeg',
  V_PRORES: 'prores',
  V_FFV1: 'ffv1',
  V_UNCOMPRESSED: 'rawvideo',
  A_AAC: 'aac',
  A_OPUS: 'opus',
  A_VORBIS: 'vorbis',
  A_FLAC: 'flac',
  'A_MPEG/L3': 'mp3',
  'A_MPEG/L2': 'mp2',
  A_AC3: 'ac3',
  A_EAC3: 'eac3',
  A_DTS: 'dts',
  A_ALAC: 'alac',
  'S_TEXT/UTF8': 'subrip',
  'S_TEXT/ASS': 'ass',
  'S_TEXT/SSA': 'ssa',
  'S_TEXT/WEBVTT': 'webvtt',
  S_VOBSUB: 'dvd_subtitle',
  'S_HDMV/PGS': 'hdmv_pgs_subtitle',
};

const TRACK_TYPES: Record<number, StreamInfo['type']> = { 1: 'video', 2: 'audio', 17: 'subtitle' };

interface Element {
  readonly id: number;
  /** First byte of the payload. */
  readonly body: number;
  /** End of the payload; for an unknown size, the end of the parent. */
  readonly end: number;
  readonly unknownSize: boolean;
}

/** Reads a variable-length integer at `p`: [value, length], or undefined when malformed. */
function vint(b: Buffer, p: number, keepMarker: boolean): [number, number, boolean] | undefined {
  const first = b[p];
  if (first === undefined || first === 0) return undefined;
  const length = Math.clz32(first) - 23;
  if (p + length > b.length) return undefined;
  let value = keepMarker ? first : first & (0xff >> length);
  let allOnes = value === 0xff >> length;
  for (let i = 1; i < length; i++) {
    const byte = b[p + i]!;
    value = value * 256 + byte;
    if (byte !== 0xff) allOnes = false;
  }
  return [value, length, allOnes && !keepMarker];
}

function parseHeader(b: Buffer, p: number, base: number, limit: number): Element | undefined {
  const id = vint(b, p, true);
  if (!id || id[1] > 4) return undefined;
  const size = vint(b, p + id[1], false);
  if (!size) return undefined;
  const body = base + p + id[1] + size[1];
  const end = size[2] ? limit : body + size[0];
  return { id: id[0], body, end, unknownSize: size[2] };
}

/** The element headers of `[start, end)` of the file, read 12 bytes at a time. */
async function* elements(r: MediaReader, start: number, end: number): AsyncGenerator<Element> {
  let offset = start;
  while (offset < end) {
    const head = await r.upTo(offset, Math.min(12, end - offset));
    const element = parseHeader(head, 0, offset, end);
    if (!element || element.end > end) throw r.fail(`bad EBML element header at byte ${offset}`);
    yield element;
    if (element.unknownSize) return;
    offset = element.end;
  }
}

/** The children of an element already in memory (`b` holds `[base, base + b.length)`). */
function* children(b: Buffer, base: number, start: number, end: number): Generator<Element> {
  let p = start - base;
  while (p < end - base) {
    const element = parseHeader(b, p, base, end);
    if (!element || element.end > end) return;
    yield element;
    if (element.unknownSize) return;
    p = element.end - base;
  }
}

function uint(b: Buffer, base: number, e: Element): number {
  let value = 0;
  for (let p = e.body - base; p < e.end - base; p++) value = value * 256 + b[p]!;
  return value;
}

function float(b: Buffer, base: number, e: Element): number {
  const p = e.body - base;
  if (e.end - e.body === 4) return b.readFloatBE(p);
  if (e.end - e.body === 8) return b.readDoubleBE(p);
  return 0;
}

function text(b: Buffer, base: number, e: Element): string {
  return b.toString('utf8', e.body - base, e.end - base).replace(/\0+$/, '');
}

export async function readMatroska(r: MediaReader): Promise<MediaProperties> {
  const props: MediaProperties = {};
  const header = (await elements(r, 0, r.size).next()).value;
  if (!header || header.id !== ID.ebml) throw r.fail('no EBML header');
  const hb = await r.bytes(header.body, Math.min(header.end - header.body, 4096));
  for (const e of children(hb, header.body, header.body, header.body + hb.length))
    if (e.id === ID.docType) props.brand = text(hb, header.body, e);
  let segment: Element | undefined;
  for await (const e of elements(r, header.end, r.size)) {
    if (e.id === ID.segment) {
      segment = e;
      break;
    }
  }
  if (!segment) throw r.fail('no Segment element');
  const found = new Map<number, Element>();
  const wanted = [ID.info, ID.tracks, ID.tags];
  for await (const e of elements(r, segment.body, segment.end)) {
    if (e.id === ID.seekHead) {
      for (const [id, position] of await seekEntries(r, e)) {
        if (!wanted.includes(id as (typeof wanted)[number]) || found.has(id)) continue;
        const target = (await elements(r, segment.body + position, segment.end).next()).value;
        if (target?.id === id) found.set(id, target);
      }
    } else if (wanted.includes(e.id as (typeof wanted)[number])) found.set(e.id, e);
    if (e.id === ID.cluster || wanted.every((id) => found.has(id))) break;
  }
  const info = found.get(ID.info);
  const tracks = found.get(ID.tracks);
  if (!info || !tracks) throw r.fail('no Info or Tracks element before the first Cluster');
  const tags: Record<string, string> = {};
  await readInfo(r, info, props, tags);
  props.streams = await readTracks(r, tracks);
  const tagsElement = found.get(ID.tags);
  if (tagsElement) await readTags(r, tagsElement, tags);
  const video = props.streams.find((s) => s.type === 'video');
  if (video?.width !== undefined) props.width = video.width;
  if (video?.height !== undefined) props.height = video.height;
  if (Object.keys(tags).length > 0) props.tags = tags;
  return props;
}

async function load(r: MediaReader, e: Element): Promise<Buffer> {
  if (e.end - e.body > MAX_METADATA) throw r.fail(`a metadata element of ${e.end - e.body} bytes`);
  return r.bytes(e.body, e.end - e.body);
}

async function seekEntries(r: MediaReader, seekHead: Element): Promise<[number, number][]> {
  const b = await load(r, seekHead);
  const entries: [number, number][] = [];
  for (const seek of children(b, seekHead.body, seekHead.body, seekHead.end)) {
    if (seek.id !== ID.seek) continue;
    let id = 0;
    let position = -1;
    for (const e of children(b, seekHead.body, seek.body, seek.end)) {
      if (e.id === ID.seekId) id = uint(b, seekHead.body, e);
      else if (e.id === ID.seekPosition) position = uint(b, seekHead.body, e);
    }
    if (id !== 0 && position >= 0) entries.push([id, position]);
  }
  return entries;
}

async function readInfo(
  r: MediaReader,
  info: Element,
  props: MediaProperties,
  tags: Record<string, string>,
): Promise<void> {
  const b = await load(r, info);
  let scale = 1_000_000;
  let duration: number | undefined;
  for (const e of children(b, info.body, info.body, info.end)) {
    if (e.id === ID.timestampScale) scale = uint(b, info.body, e);
    else if (e.id === ID.duration) duration = float(b, info.body, e);
    else if (e.id === ID.title) tags['title'] = text(b, info.body, e);
  }
  if (duration !== undefined) props.durationSeconds = round((duration * scale) / 1e9);
}

async function readTracks(r: MediaReader, tracks: Element): Promise<StreamInfo[]> {
  const b = await load(r, tracks);
  const base = tracks.body;
  const streams: StreamInfo[] = [];
  for (const entry of children(b, base, base, tracks.end)) {
    if (entry.id !== ID.trackEntry) continue;
    const stream: MutableStream = { index: streams.length, type: 'data', codec: 'unknown' };
    let codecId = '';
    let hasLanguage = false;
    let codecPrivate: Buffer | undefined;
    for (const e of children(b, base, entry.body, entry.end)) {
      if (e.id === ID.trackType) stream.type = TRACK_TYPES[uint(b, base, e)] ?? 'data';
      else if (e.id === ID.codecId) codecId = text(b, base, e);
      else if (e.id === ID.codecPrivate) codecPrivate = b.subarray(e.body - base, e.end - base);
      else if (e.id === ID.language) {
        const language = text(b, base, e);
        hasLanguage = true;
        if (language !== 'und') stream.language = language;
      } else if (e.id === ID.defaultDuration) {
        const ns = uint(b, base, e);
        if (ns > 0) stream.frameRate = round(1e9 / ns);
      } else if (e.id === ID.video) {
        for (const v of children(b, base, e.body, e.end)) {
          if (v.id === ID.pixelWidth) stream.width = uint(b, base, v);
          else if (v.id === ID.pixelHeight) stream.height = uint(b, base, v);
        }
      } else if (e.id === ID.audio) {
        stream.sampleRate = 8000;
        stream.channels = 1;
        for (const a of children(b, base, e.body, e.end)) {
          if (a.id === ID.samplingFrequency) stream.sampleRate = float(b, base, a);
          else if (a.id === ID.channels) stream.channels = uint(b, base, a);
          else if (a.id === ID.bitDepth) stream.bitsPerSample = uint(b, base, a);
        }
      }
    }
    // Matroska's default Language is English (ffprobe reports it so too).
    if (!hasLanguage) stream.language = 'eng';
    // DefaultDuration is a frame rate for video only (audio's is a block's length).
    if (stream.type !== 'video') delete stream.frameRate;
    // FLAC keeps its STREAMINFO (with the sample depth) in CodecPrivate.
    if (codecId === 'A_FLAC' && codecPrivate) {
      const info = flacStreamInfo(codecPrivate);
      if (info) stream.bitsPerSample = info.bitsPerSample;
    }
    stream.codecTag = codecId;
    stream.codec = codecName(codecId, stream.bitsPerSample);
    if (!stream.codec.startsWith('pcm_') && stream.codec !== 'flac') delete stream.bitsPerSample;
    streams.push(stream);
  }
  return streams;
}

function codecName(codecId: string, bits: number | undefined): string {
  const depth = bits ?? 16;
  if (codecId === 'A_PCM/INT/LIT') return depth === 8 ? 'pcm_u8' : `pcm_s${depth}le`;
  if (codecId === 'A_PCM/INT/BIG') return depth === 8 ? 'pcm_u8' : `pcm_s${depth}be`;
  if (codecId === 'A_PCM/FLOAT/IEEE') return `pcm_f${depth}le`;
  if (codecId.startsWith('A_AAC')) return 'aac';
  return CODECS[codecId] ?? codecId.toLowerCase();
}

async function readTags(
  r: MediaReader,
  element: Element,
  tags: Record<string, string>,
): Promise<void> {
  const b = await load(r, element);
  const base = element.body;
  for (const tag of children(b, base, base, element.end)) {
    if (tag.id !== ID.tag) continue;
    let global = true;
    const simple: [string, string][] = [];
    for (const e of children(b, base, tag.body, tag.end)) {
      if (e.id === ID.targets) {
        for (const t of children(b, base, e.body, e.end))
          if (TARGET_UIDS.has(t.id) && uint(b, base, t) !== 0) global = false;
      } else if (e.id === ID.simpleTag) {
        let name = '';
        let value: string | undefined;
        for (const s of children(b, base, e.body, e.end)) {
          if (s.id === ID.tagName) name = text(b, base, s);
          else if (s.id === ID.tagString) value = text(b, base, s);
        }
        if (name !== '' && value !== undefined) simple.push([name.toLowerCase(), value]);
      }
    }
    if (global) for (const [name, value] of simple) tags[name] = value;
  }
}
