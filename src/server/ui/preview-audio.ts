/**
 * Waveform peaks of a PCM WAV (RIFF, RF64, BW64), read through RandomAccess
 * a few MiB at a time: the `fmt ` chunk says how samples are laid out, the
 * `data` chunk is walked once, and each of up to 1,500 buckets keeps the
 * lowest and highest sample of any channel in it, scaled to [-1, 1].
 */
import type { RandomAccess } from '../../media/info/random-access.ts';

export interface Peaks {
  readonly duration: number;
  readonly sampleRate: number;
  readonly channels: number;
  readonly peaks: [number, number][];
}

const BUCKETS = 1_500;
const BLOCK = 4 * 1024 * 1024;

/** The peaks of a PCM WAV; undefined when its samples are not PCM this reads (ffmpeg then decodes it). */
export async function wavPeaks(access: RandomAccess): Promise<Peaks | undefined> {
  const head = await access.read(0, 12);
  const form = head.toString('latin1', 0, 4);
  if (!['RIFF', 'RF64', 'BW64'].includes(form) || head.toString('latin1', 8, 12) !== 'WAVE')
    return undefined;
  let format = 0;
  let channels = 0;
  let sampleRate = 0;
  let bits = 0;
  let ds64Data: number | undefined;
  let data: { start: number; size: number } | undefined;
  for (let offset = 12; offset + 8 <= access.size && !data;) {
    const chunk = await access.read(offset, 8);
    const id = chunk.toString('latin1', 0, 4);
    let size = chunk.readUInt32LE(4);
    const body = offset + 8;
    if (id === 'ds64' && size >= 24)
      ds64Data = Number((await access.read(body, 24)).readBigUInt64LE(8));
    if (id === 'fmt ' && size >= 16) {
      const f = await access.read(body, Math.min(size, 40));
      format = f.readUInt16LE(0);
      channels = f.readUInt16LE(2);
      sampleRate = f.readUInt32LE(4);
      bits = f.readUInt16LE(14);
      if (format === 0xfffe && f.length >= 26) format = f.readUInt16LE(24);
    }
    if (id === 'data') {
      if (size === 0xffffffff && ds64Data !== undefined) size = ds64Data;
      data = { start: body, size: Math.min(size, access.size - body) };
    }
    offset = body + size + (size & 1);
  }
  const pcm = (format === 1 && [8, 16, 24, 32].includes(bits)) || (format === 3 && bits === 32);
  if (!data || !pcm || channels === 0 || sampleRate === 0) return undefined;
  const bytes = bits / 8;
  const frame = bytes * channels;
  const frames = Math.floor(data.size / frame);
  const buckets = Math.max(1, Math.min(BUCKETS, frames));
  const low = new Float64Array(buckets);
  const high = new Float64Array(buckets);
  const sample = (buffer: Buffer, at: number): number => {
    if (format === 3) return buffer.readFloatLE(at);
    if (bits === 8) return (buffer[at]! - 128) / 128;
    if (bits === 16) return buffer.readInt16LE(at) / 32768;
    if (bits === 24) return buffer.readIntLE(at, 3) / 8388608;
    return buffer.readInt32LE(at) / 2147483648;
  };
  const framesPerBlock = Math.max(1, Math.floor(BLOCK / frame));
  for (let first = 0; first < frames; first += framesPerBlock) {
    const count = Math.min(framesPerBlock, frames - first);
    const block = await access.read(data.start + first * frame, count * frame);
    for (let f = 0; f < count; f++) {
      const bucket = Math.min(buckets - 1, Math.floor(((first + f) * buckets) / frames));
      for (let c = 0; c < channels; c++) {
        const v = sample(block, f * frame + c * bytes);
        if (v < low[bucket]!) low[bucket] = v;
        if (v > high[bucket]!) high[bucket] = v;
      }
    }
  }
  const peaks: [number, number][] = [];
  for (let b = 0; b < buckets; b++)
    peaks.push([Math.round(low[b]! * 1e4) / 1e4, Math.round(high[b]! * 1e4) / 1e4]);
  return { duration: frames / sampleRate, sampleRate, channels, peaks };
}
