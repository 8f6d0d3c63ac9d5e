/**
 * MP4, MOV, M4A, 3GP (ISO base media file format and QuickTime).
 *
 * Walks the top-level boxes by their sizes, reading 8 bytes per box (16 for
 * a 64-bit size), so `mdat` is skipped unread wherever it sits (ffmpeg puts
 * `moov` after it). Inside `moov` only the boxes that carry properties are
 * read (mvhd; per trak tkhd, mdhd, hdlr, stsd's first entry, stts; udta
 * tags); the sample tables that grow with the file (stsz, stco, stss, ctts)
 * are skipped by size. Fragmented files (moof) report what moov declares.
 */
import { round, type MediaReader } from './random-access.ts';
import type { MediaProperties, MutableStream, StreamInfo } from './types.ts';

interface Box {
  readonly type: string;
  readonly start: number;
  /** First byte after the header. */
  readonly body: number;
  readonly end: number;
}

async function* boxes(r: MediaReader, start: number, end: number): AsyncGenerator<Box> {
  let offset = start;
  while (offset + 8 <= end) {
    const head = await r.bytes(offset, 8);
    let size = head.readUInt32BE(0);
    const type = head.toString('latin1', 4, 8);
    let header = 8;
    if (size === 1) {
      size = Number((await r.bytes(offset + 8, 8)).readBigUInt64BE(0));
      header = 16;
    } else if (size === 0) size = end - offset;
    if (size < header || offset + size > end)
      throw r.fail(`box '${type}' at byte ${offset} (${size} bytes) runs past its parent`);
    yield { type, start: offset, body: offset + header, end: offset + size };
    offset += size;
  }
}

async function childOf(r: MediaReader, parent: Box, type: string): Promise<Box | undefined> {
  for await (const box of boxes(r, parent.body, parent.end)) if (box.type === type) return box;
  return undefined;
}

async function body(r: MediaReader, box: Box, limit = 1 << 20): Promise<Buffer> {
  return r.bytes(box.body, Math.min(box.end - box.body, limit));
}

const SAMPLE_ENTRY_CODECS: Record<string, string> = {
  avc1: 'h264',
  avc3: 'h264',
  hvc1: 'hevc',
  hev1: 'hevc',
  av01: 'av1',
  vp09: 'vp9',
  vp08: 'vp8',
  mp4v: 'mpeg4',
  mp4a: 'aac',
  '.mp3': 'mp3',
  Opus: 'opus',
  fLaC: 'flac',
  'ac-3': 'ac3',
  'ec-3': 'eac3',
  alac: 'alac',
  sowt: 'pcm_s16le',
  twos: 'pcm_s16be',
  in24: 'pcm_s24be',
  in32: 'pcm_s32be',
  fl32: 'pcm_f32be',
  fl64: 'pcm_f64be',
  ulaw: 'pcm_mulaw',
  alaw: 'pcm_alaw',
  apch: 'prores',
  apcn: 'prores',
  apcs: 'prores',
  apco: 'prores',
  ap4h: 'prores',
  ap4x: 'prores',
  mjpa: 'mjpeg',
  jpeg: 'mjpeg',
  'png ': 'png',
  'raw ': 'rawvideo',
  tx3g: 'mov_text',
  text: 'text',
  wvtt: 'webvtt',
  tmcd: 'tmcd',
};

/** MPEG-4 objectTypeIndication (esds) → codec, for `mp4a` and `mp4v` entries. */
const OBJECT_TYPES: Record<number, string> = {
  0x20: 'mpeg4',
  0x21: 'h264',
  0x40: 'aac',
  0x66: 'aac',
  0x67: 'aac',
  0x68: 'aac',
  0x69: 'mp3',
  0x6b: 'mp3',
  0x6c: 'mjpeg',
  0xa5: 'ac3',
  0xa6: 'eac3',
  0xad: 'opus',
};

const HANDLERS: Record<string, StreamInfo['type']> = {
  vide: 'video',
  soun: 'audio',
  sbtl: 'subtitle',
  subt: 'subtitle',
  text: 'subtitle',
  clcp: 'subtitle',
};

/** iTunes-style `ilst` items and QuickTime `udta` text atoms, by ffprobe's key names. */
const TAG_NAMES: Record<string, string> = {
  '\u00a9nam': 'title',
  '\u00a9ART': 'artist',
  aART: 'album_artist',
  '\u00a9alb': 'album',
  '\u00a9day': 'date',
  '\u00a9too': 'encoder',
  '\u00a9swr': 'encoder',
  '\u00a9cmt': 'comment',
  '\u00a9gen': 'genre',
  '\u00a9wrt': 'composer',
  cprt: 'copyright',
  '\u00a9cpy': 'copyright',
  desc: 'description',
  '\u00a9des': 'description',
};

export async function readIsoBmff(r: MediaReader): Promise<MediaProperties> {
  const props: MediaProperties = {};
  let moov: Box | undefined;
  for await (const box of boxes(r, 0, r.size)) {
    if (box.type === 'ftyp' && box.end - box.body >= 4)
      props.brand = (await r.bytes(box.body, 4)).toString('latin1').trim();
    else if (box.type === 'moov') {
      moov = box;
      break;
    }
  }
  if (!moov) throw r.fail("no 'moov' box (the file holds no movie header)");
  let movieTimescale = 0;
  const streams: StreamInfo[] = [];
  const tags: Record<string, string> = {};
  for await (const box of boxes(r, moov.body, moov.end)) {
    if (box.type === 'mvhd') {
      const b = await body(r, box, 32);
      const v1 = b[0] === 1;
      movieTimescale = b.readUInt32BE(v1 ? 20 : 12);
      const duration = v1 ? Number(b.readBigUInt64BE(24)) : b.readUInt32BE(16);
      if (movieTimescale > 0 && duration !== 0xffffffff)
        props.durationSeconds = round(duration / movieTimescale);
    } else if (box.type === 'trak') {
      const stream = await readTrack(r, box, streams.length, movieTimescale);
      if (stream) streams.push(stream);
    } else if (box.type === 'udta') await readUserData(r, box, tags);
  }
  if (movieTimescale === 0) throw r.fail("no 'mvhd' box in 'moov'");
  props.streams = streams;
  const video = streams.find((s) => s.type === 'video');
  if (video?.width !== undefined) props.width = video.width;
  if (video?.height !== undefined) props.height = video.height;
  if (Object.keys(tags).length > 0) props.tags = tags;
  return props;
}

async function readTrack(
  r: MediaReader,
  trak: Box,
  index: number,
  movieTimescale: number,
): Promise<StreamInfo | undefined> {
  let mdia: Box | undefined;
  let edited: number | undefined;
  for await (const box of boxes(r, trak.body, trak.end)) {
    if (box.type === 'mdia') mdia = box;
    else if (box.type === 'edts') edited = await editedDuration(r, box);
  }
  if (!mdia) return undefined;
  let timescale = 0;
  let duration = 0;
  let language: string | undefined;
  let handler = '';
  let minf: Box | undefined;
  for await (const box of boxes(r, mdia.body, mdia.end)) {
    if (box.type === 'mdhd') {
      const b = await body(r, box, 36);
      const v1 = b[0] === 1;
      timescale = b.readUInt32BE(v1 ? 20 : 12);
      duration = v1 ? Number(b.readBigUInt64BE(24)) : b.readUInt32BE(16);
      const packed = b.readUInt16BE(v1 ? 32 : 20);
      if (packed !== 0 && packed !== 0x7fff) {
        language = String.fromCharCode(
          ((packed >> 10) & 31) + 0x60,
          ((packed >> 5) & 31) + 0x60,
          (packed & 31) + 0x60,
        );
      }
    } else if (box.type === 'hdlr') {
      handler = (await body(r, box, 12)).toString('latin1', 8, 12);
    } else if (box.type === 'minf') minf = box;
  }
  const stbl = minf && (await childOf(r, minf, 'stbl'));
  if (!stbl) return undefined;
  const stream: MutableStream = { index, type: HANDLERS[handler] ?? 'data', codec: 'unknown' };
  // "und" (undetermined) is reported as no language, as ffprobe does for Matroska.
  if (language !== undefined && language !== 'und') stream.language = language;
  // An edit list says what part of the media plays (AAC's priming samples are cut off).
  if (edited !== undefined && movieTimescale > 0)
    stream.durationSeconds = round(edited / movieTimescale);
  else if (timescale > 0) stream.durationSeconds = round(duration / timescale);
  for await (const box of boxes(r, stbl.body, stbl.end)) {
    if (box.type === 'stsd') await readSampleEntry(r, box, stream);
    else if (box.type === 'stts' && stream.type === 'video') {
      const head = await r.bytes(box.body, 8);
      const count = head.readUInt32BE(4);
      const table = await r.bytes(box.body + 8, count * 8);
      let frames = 0;
      let ticks = 0;
      for (let i = 0; i < count; i++) {
        frames += table.readUInt32BE(i * 8);
        ticks += table.readUInt32BE(i * 8) * table.readUInt32BE(i * 8 + 4);
      }
      stream.frameCount = frames;
      if (ticks > 0 && timescale > 0) stream.frameRate = round((frames * timescale) / ticks);
    }
  }
  return stream;
}

async function readSampleEntry(r: MediaReader, stsd: Box, stream: MutableStream): Promise<void> {
  const entry = (await boxes(r, stsd.body + 8, stsd.end).next()).value;
  if (!entry) return;
  const fourcc = entry.type;
  stream.codecTag = fourcc.trim();
  stream.codec = SAMPLE_ENTRY_CODECS[fourcc] ?? fourcc.trim();
  let children = entry.end;
  const b = await r.bytes(entry.start, Math.min(entry.end - entry.start, 80));
  if (stream.type === 'video' && b.length >= 36) {
    stream.width = b.readUInt16BE(32);
    stream.height = b.readUInt16BE(34);
    children = entry.start + 86;
  } else if (stream.type === 'audio' && b.length >= 36) {
    const version = b.readUInt16BE(16);
    if (version === 2 && b.length >= 72) {
      stream.sampleRate = b.readDoubleBE(40);
      stream.channels = b.readUInt32BE(48);
      stream.bitsPerSample = b.readUInt32BE(56);
      children = entry.start + 72;
    } else {
      stream.channels = b.readUInt16BE(24);
      stream.bitsPerSample = b.readUInt16BE(26);
      stream.sampleRate = b.readUInt32BE(32) / 65536;
      children = entry.start + (version === 1 ? 52 : 36);
    }
    // Compressed audio declares 16 bits in the entry by convention; only PCM has a real depth.
    if (!stream.codec.startsWith('pcm_')) delete stream.bitsPerSample;
  }
  if (fourcc === 'mp4a' || fourcc === 'mp4v') {
    const config = await decoderConfig(r, children, entry.end);
    if (config) {
      stream.codec = OBJECT_TYPES[config.objectType] ?? stream.codec;
      // The entry's channel count is a fixed 2 in MP4 files; AAC's own config has the real one.
      const channels = config.objectType === 0x40 ? aacChannels(config.specific) : undefined;
      if (channels) stream.channels = channels;
    }
  }
}

interface DecoderConfig {
  readonly objectType: number;
  /** DecoderSpecificInfo (for AAC, the AudioSpecificConfig). */
  readonly specific: Buffer;
}

/** The `esds` decoder config among the boxes of `[start, end)` (QuickTime nests it in `wave`). */
async function decoderConfig(
  r: MediaReader,
  start: number,
  end: number,
): Promise<DecoderConfig | undefined> {
  if (start >= end) return undefined;
  for await (const box of boxes(r, start, end)) {
    if (box.type === 'wave') {
      const found = await decoderConfig(r, box.body, box.end);
      if (found !== undefined) return found;
    }
    if (box.type !== 'esds') continue;
    const b = await body(r, box, 512);
    let p = 4;
    const descriptor = (): [number, number] => {
      const tag = b[p++] ?? 0;
      let length = 0;
      for (let i = 0; i < 4; i++) {
        const byte = b[p++] ?? 0;
        length = (length << 7) | (byte & 0x7f);
        if (!(byte & 0x80)) break;
      }
      return [tag, length];
    };
    const [tag] = descriptor();
    if (tag !== 3) return undefined;
    p += 2;
    const flags = b[p++] ?? 0;
    if (flags & 0x80) p += 2;
    if (flags & 0x40) p += 1 + (b[p] ?? 0);
    if (flags & 0x20) p += 2;
    const [configTag, configLength] = descriptor();
    if (configTag !== 4 || p >= b.length) return undefined;
    const objectType = b[p]!;
    const configEnd = p + configLength;
    p += 13;
    let specific: Buffer = Buffer.alloc(0);
    if (p < configEnd && p < b.length) {
      const [specificTag, specificLength] = descriptor();
      if (specificTag === 5) specific = b.subarray(p, Math.min(b.length, p + specificLength));
    }
    return { objectType, specific };
  }
  return undefined;
}

/** The channel configuration of an AudioSpecificConfig (0: given elsewhere). */
function aacChannels(asc: Buffer): number | undefined {
  if (asc.length < 2) return undefined;
  let bit = 0;
  const read = (n: number): number => {
    let value = 0;
    for (let i = 0; i < n; i++, bit++) {
      const byte = asc[bit >> 3];
      if (byte === undefined) return -1;
      value = (value << 1) | ((byte >> (7 - (bit & 7))) & 1);
    }
    return value;
  };
  if (read(5) === 31) read(6);
  if (read(4) === 15) read(24);
  const config = read(4);
  // Configurations 1-6 are that many channels; 7 is 7.1 (8 channels).
  if (config >= 1 && config <= 6) return config;
  return config === 7 ? 8 : undefined;
}

/** The playing length of an `edts/elst`, in movie ticks: its edits, without empty ones. */
async function editedDuration(r: MediaReader, edts: Box): Promise<number | undefined> {
  const elst = await childOf(r, edts, 'elst');
  if (!elst) return undefined;
  const head = await r.bytes(elst.body, 8);
  const v1 = head[0] === 1;
  const count = head.readUInt32BE(4);
  const size = v1 ? 20 : 12;
  if (count === 0 || count > 4096) return undefined;
  const table = await r.bytes(elst.body + 8, count * size);
  let total = 0;
  for (let i = 0; i < count; i++) {
    const p = i * size;
    const segment = v1 ? Number(table.readBigUInt64BE(p)) : table.readUInt32BE(p);
    const mediaTime = v1 ? Number(table.readBigInt64BE(p + 8)) : table.readInt32BE(p + 4);
    if (mediaTime !== -1) total += segment;
  }
  return total;
}

async function readUserData(
  r: MediaReader,
  udta: Box,
  tags: Record<string, string>,
): Promise<void> {
  for await (const box of boxes(r, udta.body, udta.end)) {
    const name = TAG_NAMES[box.type];
    if (name !== undefined && box.end - box.body >= 4) {
      // QuickTime text atom: 16-bit length, 16-bit language, the text.
      const b = await body(r, box, 4096);
      const length = b.readUInt16BE(0);
      if (4 + length <= b.length) tags[name] = b.toString('utf8', 4, 4 + length);
    } else if (box.type === 'meta') {
      // ISO `meta` is a full box (4 bytes of version and flags); QuickTime's is not.
      const peek = await r.bytes(box.body, Math.min(8, box.end - box.body));
      const start = peek.toString('latin1', 4, 8) === 'hdlr' ? box.body : box.body + 4;
      for await (const child of boxes(r, start, box.end))
        if (child.type === 'ilst') await readItemList(r, child, tags);
    }
  }
}

async function readItemList(
  r: MediaReader,
  ilst: Box,
  tags: Record<string, string>,
): Promise<void> {
  for await (const item of boxes(r, ilst.body, ilst.end)) {
    const name = TAG_NAMES[item.type];
    if (name === undefined) continue;
    const data = await childOf(r, item, 'data');
    if (!data || data.end - data.body < 8) continue;
    const b = await body(r, data, 4096);
    // Well-known type 1 is UTF-8 text.
    if (b.readUInt32BE(0) === 1) tags[name] = b.toString('utf8', 8);
  }
}
