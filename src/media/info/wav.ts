/**
 * WAV (RIFF/WAVE, RF64, BW64): walks the chunks by their sizes, reads `fmt `
 * and the `LIST INFO` tags, and takes the duration from the `data` chunk's
 * size without reading it.
 */
import { round, type MediaReader } from './random-access.ts';
import type { MediaProperties, MutableStream } from './types.ts';

const INFO_TAGS: Record<string, string> = {
  INAM: 'title',
  IART: 'artist',
  IPRD: 'album',
  ICMT: 'comment',
  ICRD: 'date',
  IGNR: 'genre',
  ICOP: 'copyright',
  ISFT: 'encoder',
  ITRK: 'track',
};

function pcmCodec(format: number, bits: number): string {
  if (format === 1) return bits === 8 ? 'pcm_u8' : `pcm_s${bits}le`;
  if (format === 3) return `pcm_f${bits}le`;
  return (
    { 2: 'adpcm_ms', 6: 'pcm_alaw', 7: 'pcm_mulaw', 0x11: 'adpcm_ima_wav', 0x55: 'mp3' }[format] ??
    `wav_0x${format.toString(16)}`
  );
}

export async function readWav(r: MediaReader): Promise<MediaProperties> {
  const head = await r.bytes(0, 12);
  const form = head.toString('latin1', 0, 4);
  if (!['RIFF', 'RF64', 'BW64'].includes(form) || head.toString('latin1', 8, 12) !== 'WAVE')
    throw r.fail('no RIFF WAVE header');
  const stream: MutableStream = { index: 0, type: 'audio', codec: 'unknown' };
  const tags: Record<string, string> = {};
  let byteRate = 0;
  let dataSize: number | undefined;
  let ds64DataSize: number | undefined;
  let haveFormat = false;
  let offset = 12;
  while (offset + 8 <= r.size) {
    const chunk = await r.bytes(offset, 8);
    const id = chunk.toString('latin1', 0, 4);
    let size = chunk.readUInt32LE(4);
    const body = offset + 8;
    if (id === 'data') {
      if (size === 0xffffffff && ds64DataSize !== undefined) size = ds64DataSize;
      // A stream written without seeking back leaves the size unset: the data runs to the end.
      dataSize = Math.min(size, r.size - body);
    } else if (body + size > r.size)
      throw r.fail(`chunk '${id}' at byte ${offset} runs past the end`);
    else if (id === 'ds64' && size >= 24) {
      ds64DataSize = Number((await r.bytes(body, 24)).readBigUInt64LE(8));
    } else if (id === 'fmt ') {
      if (size < 16) throw r.fail(`'fmt ' chunk of ${size} bytes`);
      const f = await r.bytes(body, Math.min(size, 40));
      let format = f.readUInt16LE(0);
      stream.channels = f.readUInt16LE(2);
      stream.sampleRate = f.readUInt32LE(4);
      byteRate = f.readUInt32LE(8);
      stream.bitsPerSample = f.readUInt16LE(14);
      // WAVE_FORMAT_EXTENSIBLE: the real format is the first two bytes of the sub-format GUID.
      if (format === 0xfffe && f.length >= 26) format = f.readUInt16LE(24);
      stream.codec = pcmCodec(format, stream.bitsPerSample);
      stream.codecTag = `0x${format.toString(16).padStart(4, '0')}`;
      haveFormat = true;
    } else if (id === 'LIST' && size >= 4) {
      const list = await r.bytes(body, Math.min(size, 1 << 20));
      if (list.toString('latin1', 0, 4) === 'INFO') {
        for (let p = 4; p + 8 <= list.length;) {
          const key = list.toString('latin1', p, p + 4);
          const length = list.readUInt32LE(p + 4);
          const name = INFO_TAGS[key];
          if (name !== undefined && p + 8 + length <= list.length)
            tags[name] = list.toString('utf8', p + 8, p + 8 + length).replace(/\0+$/, '');
          p += 8 + length + (length & 1);
        }
      }
    }
    offset = body + size + (size & 1);
  }
  if (!haveFormat) throw r.fail("no 'fmt ' chunk");
  if (dataSize === undefined) throw r.fail("no 'data' chunk");
  if (byteRate > 0) stream.durationSeconds = round(dataSize / byteRate);
  const props: MediaProperties = { streams: [stream] };
  if (stream.durationSeconds !== undefined) props.durationSeconds = stream.durationSeconds;
  if (stream.bitsPerSample !== undefined) props.bitDepth = stream.bitsPerSample;
  if (Object.keys(tags).length > 0) props.tags = tags;
  return props;
}
