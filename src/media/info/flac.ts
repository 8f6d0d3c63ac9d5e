/**
 * FLAC: the metadata blocks before the first audio frame. STREAMINFO gives
 * rate, channels, depth and the sample count (so the duration); a
 * VORBIS_COMMENT block gives the tags. PICTURE and PADDING blocks are
 * skipped by their lengths.
 */
import { round, type MediaReader } from './random-access.ts';
import type { MediaProperties, MutableStream } from './types.ts';

const STREAMINFO = 0;
const VORBIS_COMMENT = 4;

export async function readFlac(r: MediaReader): Promise<MediaProperties> {
  let offset = 4;
  // An ID3v2 tag may precede the stream marker.
  const head = await r.bytes(0, 10);
  if (head.toString('latin1', 0, 3) === 'ID3') {
    const size =
      ((head[6]! & 0x7f) << 21) |
      ((head[7]! & 0x7f) << 14) |
      ((head[8]! & 0x7f) << 7) |
      (head[9]! & 0x7f);
    offset = 10 + size + 4;
  }
  if ((await r.bytes(offset - 4, 4)).toString('latin1') !== 'fLaC')
    throw r.fail("no 'fLaC' marker");
  const stream: MutableStream = { index: 0, type: 'audio', codec: 'flac' };
  const props: MediaProperties = { streams: [stream] };
  const tags: Record<string, string> = {};
  let haveInfo = false;
  for (let last = false; !last;) {
    const header = await r.bytes(offset, 4);
    last = (header[0]! & 0x80) !== 0;
    const type = header[0]! & 0x7f;
    const length = header.readUIntBE(1, 3);
    const body = offset + 4;
    if (body + length > r.size) throw r.fail(`metadata block at byte ${offset} runs past the end`);
    if (type === STREAMINFO) {
      if (length < 34) throw r.fail(`STREAMINFO of ${length} bytes`);
      const info = flacStreamInfo(await r.bytes(body - 4, 4 + 18));
      if (!info) throw r.fail('STREAMINFO sample rate is 0');
      stream.sampleRate = info.sampleRate;
      stream.channels = info.channels;
      stream.bitsPerSample = info.bitsPerSample;
      props.bitDepth = info.bitsPerSample;
      if (info.samples > 0) {
        stream.durationSeconds = round(info.samples / info.sampleRate);
        props.durationSeconds = stream.durationSeconds;
      }
      haveInfo = true;
    } else if (type === VORBIS_COMMENT) {
      readVorbisComments(await r.bytes(body, Math.min(length, 1 << 20)), tags);
    } else if (type === 0x7f) throw r.fail(`invalid metadata block type at byte ${offset}`);
    offset = body + length;
  }
  if (!haveInfo) throw r.fail('no STREAMINFO block');
  if (Object.keys(tags).length > 0) props.tags = tags;
  return props;
}

export interface FlacStreamInfo {
  readonly sampleRate: number;
  readonly channels: number;
  readonly bitsPerSample: number;
  readonly samples: number;
}

/**
 * STREAMINFO from a metadata block header followed by its body (or from
 * Matroska's CodecPrivate, which starts with "fLaC" before the block).
 */
export function flacStreamInfo(data: Buffer): FlacStreamInfo | undefined {
  const start = data.toString('latin1', 0, 4) === 'fLaC' ? 8 : 4;
  const b = data.subarray(start);
  if (b.length < 18) return undefined;
  // Bits 80-99: sample rate; 100-102: channels - 1; 103-107: bits - 1; 108-143: samples.
  const sampleRate = (b[10]! << 12) | (b[11]! << 4) | (b[12]! >> 4);
  if (sampleRate === 0) return undefined;
  return {
    sampleRate,
    channels: ((b[12]! >> 1) & 7) + 1,
    bitsPerSample: (((b[12]! & 1) << 4) | (b[13]! >> 4)) + 1,
    samples: (b[13]! & 0x0f) * 2 ** 32 + b.readUInt32BE(14),
  };
}

/** Vorbis comments (little-endian lengths): vendor, then "KEY=value" entries. */
export function readVorbisComments(b: Buffer, tags: Record<string, string>): void {
  if (b.length < 8) return;
  let p = 4 + b.readUInt32LE(0);
  if (p + 4 > b.length) return;
  const count = b.readUInt32LE(p);
  p += 4;
  for (let i = 0; i < count && p + 4 <= b.length; i++) {
    const length = b.readUInt32LE(p);
    p += 4;
    if (p + length > b.length) return;
    const entry = b.toString('utf8', p, p + length);
    p += length;
    const eq = entry.indexOf('=');
    if (eq > 0) tags[entry.slice(0, eq).toLowerCase()] = entry.slice(eq + 1);
  }
}
