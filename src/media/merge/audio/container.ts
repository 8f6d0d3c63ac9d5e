/**
 * The chunk structure of a WAV (RIFF/WAVE) or AIFF/AIFF-C file, read through
 * RandomAccess headers only: every chunk's id, place and size, the sample
 * format, and where the sample frames lie. Only uncompressed PCM (integer or
 * float) is taken; anything else, a size that runs past the end, a stream
 * written without sizes, or RF64 is refused with the reason.
 */
import type { RandomAccess } from '../../info/random-access.ts';

export type AudioKind = 'wav' | 'aiff';

export interface Chunk {
  /** The four-character id ("bext", "LIST", "NAME"). */
  readonly id: string;
  /** Identity across versions: the id, a LIST's type, the occurrence ("LIST INFO", "ANNO#2"). */
  readonly key: string;
  /** Where the chunk's body starts (after its 8-byte header). */
  readonly body: number;
  readonly size: number;
}

export interface AudioLayout {
  readonly kind: AudioKind;
  /** "WAVE", "AIFF" or "AIFC". */
  readonly form: string;
  readonly chunks: readonly Chunk[];
  /** The chunk that holds the format ("fmt " or "COMM"), and the one holding samples ("data", "SSND"). */
  readonly formatChunk: Chunk;
  readonly soundChunk: Chunk;
  /** The format chunk's bytes with the frame count blanked: equal means the same sample format. */
  readonly formatKey: string;
  readonly formatBytes: Buffer;
  readonly sampleRate: number;
  readonly channels: number;
  readonly bits: number;
  /** Bytes per sample frame (all channels). */
  readonly frameBytes: number;
  /** The first sample byte, and how many whole frames follow. */
  readonly samplesAt: number;
  readonly frames: number;
}

export class NotAudio extends Error {}

const PCM_AIFC = new Set(['NONE', 'sowt', 'twos', 'fl32', 'FL32', 'fl64', 'FL64']);
const WAVE_PCM = 1;
const MAX_SSND_OFFSET = 1 << 16;
const WAVE_FLOAT = 3;
const WAVE_EXTENSIBLE = 0xfffe;

async function exactly(access: RandomAccess, offset: number, length: number): Promise<Buffer> {
  const data = await access.read(offset, length);
  if (data.length !== length) throw new NotAudio(`truncated at byte ${offset + data.length}`);
  return Buffer.from(data);
}

/** An IEEE 754 80-bit extended float (AIFF's sample rate). */
function extended(bytes: Buffer): number {
  const exponent = bytes.readUInt16BE(0) & 0x7fff;
  const mantissa = Number(bytes.readBigUInt64BE(2));
  const sign = bytes[0]! & 0x80 ? -1 : 1;
  if (exponent === 0 && mantissa === 0) return 0;
  return sign * mantissa * 2 ** (exponent - 16383 - 63);
}

export async function readLayout(access: RandomAccess): Promise<AudioLayout> {
  if (access.size < 12) throw new NotAudio('shorter than a RIFF or FORM header');
  const head = await exactly(access, 0, 12);
  const magic = head.toString('latin1', 0, 4);
  const form = head.toString('latin1', 8, 12);
  let kind: AudioKind;
  if (magic === 'RIFF' && form === 'WAVE') kind = 'wav';
  else if (magic === 'FORM' && (form === 'AIFF' || form === 'AIFC')) kind = 'aiff';
  else if ((magic === 'RF64' || magic === 'BW64') && form === 'WAVE')
    throw new NotAudio(`${magic} (64-bit sizes) is not merged`);
  else throw new NotAudio('no RIFF WAVE or FORM AIFF header');
  const little = kind === 'wav';
  const declared = little ? head.readUInt32LE(4) : head.readUInt32BE(4);
  if (declared + 8 !== access.size) {
    throw new NotAudio(
      `the ${magic} size says ${declared + 8} bytes, the file has ${access.size} (written as a stream?)`,
    );
  }

  const chunks: Chunk[] = [];
  const seen = new Map<string, number>();
  for (let at = 12; at < access.size;) {
    if (at + 8 > access.size) throw new NotAudio(`${access.size - at} stray bytes at the end`);
    const header = await exactly(access, at, 8);
    const id = header.toString('latin1', 0, 4);
    const size = little ? header.readUInt32LE(4) : header.readUInt32BE(4);
    const body = at + 8;
    if (body + size > access.size)
      throw new NotAudio(`chunk '${id}' at byte ${at} runs past the end`);
    let name = id;
    if (id === 'LIST' && size >= 4)
      name = `LIST ${(await exactly(access, body, 4)).toString('latin1')}`;
    const n = (seen.get(name) ?? 0) + 1;
    seen.set(name, n);
    chunks.push({ id, key: n === 1 ? name : `${name}#${n}`, body, size });
    // A last chunk of odd size may lack its pad byte.
    at = Math.min(body + size + (size & 1), access.size);
  }
  const only = (id: string): Chunk => {
    const found = chunks.filter((chunk) => chunk.id === id);
    if (found.length !== 1) throw new NotAudio(`${found.length} '${id}' chunks`);
    return found[0]!;
  };
  return kind === 'wav' ? wavLayout(access, chunks, only) : aiffLayout(access, form, chunks, only);
}

async function wavLayout(
  access: RandomAccess,
  chunks: Chunk[],
  only: (id: string) => Chunk,
): Promise<AudioLayout> {
  const formatChunk = only('fmt ');
  const soundChunk = only('data');
  if (formatChunk.size < 16 || formatChunk.size > 1024)
    throw new NotAudio(`'fmt ' chunk of ${formatChunk.size} bytes`);
  const fmt = await exactly(access, formatChunk.body, formatChunk.size);
  let tag = fmt.readUInt16LE(0);
  if (tag === WAVE_EXTENSIBLE && fmt.length >= 26) tag = fmt.readUInt16LE(24);
  if (tag !== WAVE_PCM && tag !== WAVE_FLOAT)
    throw new NotAudio(`wave format 0x${tag.toString(16)} is not PCM`);
  const channels = fmt.readUInt16LE(2);
  const frameBytes = fmt.readUInt16LE(12);
  const bits = fmt.readUInt16LE(14);
  if (channels === 0 || frameBytes === 0 || frameBytes < (channels * bits) / 8)
    throw new NotAudio(`block align ${frameBytes} for ${channels} channels of ${bits} bits`);
  if (soundChunk.size % frameBytes !== 0)
    throw new NotAudio(`'data' of ${soundChunk.size} bytes is not whole ${frameBytes}-byte frames`);
  return {
    kind: 'wav',
    form: 'WAVE',
    chunks,
    formatChunk,
    soundChunk,
    formatKey: fmt.toString('hex'),
    formatBytes: fmt,
    sampleRate: fmt.readUInt32LE(4),
    channels,
    bits,
    frameBytes,
    samplesAt: soundChunk.body,
    frames: soundChunk.size / frameBytes,
  };
}

async function aiffLayout(
  access: RandomAccess,
  form: string,
  chunks: Chunk[],
  only: (id: string) => Chunk,
): Promise<AudioLayout> {
  const formatChunk = only('COMM');
  const soundChunk = only('SSND');
  if (formatChunk.size < 18 || formatChunk.size > 1024)
    throw new NotAudio(`'COMM' chunk of ${formatChunk.size} bytes`);
  const comm = await exactly(access, formatChunk.body, formatChunk.size);
  const channels = comm.readUInt16BE(0);
  const frames = comm.readUInt32BE(2);
  const bits = comm.readUInt16BE(6);
  const sampleRate = extended(comm.subarray(8, 18));
  if (form === 'AIFC') {
    const compression = comm.length >= 22 ? comm.toString('latin1', 18, 22) : '';
    if (!PCM_AIFC.has(compression)) throw new NotAudio(`AIFF-C compression '${compression}'`);
  }
  const frameBytes = channels * Math.ceil(bits / 8);
  if (channels === 0 || bits === 0 || bits > 64)
    throw new NotAudio(`${channels} channels of ${bits} bits`);
  if (soundChunk.size < 8) throw new NotAudio(`'SSND' chunk of ${soundChunk.size} bytes`);
  const offset = (await exactly(access, soundChunk.body, 4)).readUInt32BE(0);
  // The bytes before the samples are copied through memory: a block alignment, never more.
  if (offset > MAX_SSND_OFFSET) throw new NotAudio(`'SSND' sample offset of ${offset} bytes`);
  const samplesAt = soundChunk.body + 8 + offset;
  if (samplesAt + frames * frameBytes !== soundChunk.body + soundChunk.size) {
    throw new NotAudio(
      `'SSND' holds ${soundChunk.size - 8 - offset} sample bytes, 'COMM' says ${frames} frames of ${frameBytes}`,
    );
  }
  const key = Buffer.from(comm);
  key.fill(0, 2, 6);
  return {
    kind: 'aiff',
    form,
    chunks,
    formatChunk,
    soundChunk,
    formatKey: `${key.toString('hex')}/${offset}`,
    formatBytes: comm,
    sampleRate,
    channels,
    bits,
    frameBytes,
    samplesAt,
    frames,
  };
}

/** "48000 Hz, 2 ch, 16-bit". */
export function describeFormat(layout: AudioLayout): string {
  return `${layout.sampleRate} Hz, ${layout.channels} ch, ${layout.bits}-bit`;
}
