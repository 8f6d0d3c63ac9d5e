/**
 * Per-object compression: which codec an object is stored with, and the
 * choice itself.
 *
 * The choice is recorded in each stored object's header, so a reader never
 * guesses. An object never grows by being "compressed": when a codec does not
 * save at least a little, the bytes are stored as they are.
 */
import { promisify } from 'node:util';
import zlib from 'node:zlib';

export const Codec = { store: 0, zstd: 1, brotli: 2 } as const;
export type Codec = (typeof Codec)[keyof typeof Codec];

export function codecName(codec: Codec): string {
  return codec === Codec.zstd ? 'zstd' : codec === Codec.brotli ? 'brotli' : 'store';
}

/** What the caller knows about the content; decides the codec family. */
export type ContentClass = 'text' | 'binary' | 'compressed';

const zstdCompress = promisify(zlib.zstdCompress);
const zstdDecompress = promisify(zlib.zstdDecompress);
const brotliCompress = promisify(zlib.brotliCompress);
const brotliDecompress = promisify(zlib.brotliDecompress);

/** Text under this size goes to Brotli (ARCHITECTURE.md §4); larger text to zstd. */
const BROTLI_TEXT_LIMIT = 500_000_000;
/** Below this, compression headers cost more than they save. */
const MIN_COMPRESSIBLE = 64;
/** Bits per byte above which a sample is treated as incompressible. */
const ENTROPY_LIMIT = 7.6;
const PROBE_BYTES = 16 * 1024;

const textDecoder = new TextDecoder('utf-8', { fatal: true });

/**
 * Classifies bytes from a sample: text when the sample has no NUL and decodes as
 * UTF-8 (allowing a code point cut at the sample's end), compressed when the
 * sample's byte entropy is near 8 bits, binary otherwise.
 */
export function classifyContent(sample: Uint8Array): ContentClass {
  const probe = sample.subarray(0, PROBE_BYTES);
  if (probe.length > 0 && !probe.includes(0) && looksLikeUtf8(probe)) return 'text';
  return byteEntropy(probe) > ENTROPY_LIMIT ? 'compressed' : 'binary';
}

function looksLikeUtf8(bytes: Uint8Array): boolean {
  // Trim a possibly cut multi-byte sequence at the end of the sample.
  let end = bytes.length;
  for (let back = 0; back < 3 && end > 0; back++) {
    const byte = bytes[end - 1] ?? 0;
    if (byte < 0x80) break;
    end--;
    if (byte >= 0xc0) break;
  }
  try {
    textDecoder.decode(bytes.subarray(0, end));
    return true;
  } catch {
    return false;
  }
}

/** Shannon entropy in bits per byte, estimated from up to PROBE_BYTES spread over the data. */
export function byteEntropy(data: Uint8Array): number {
  const counts = new Int32Array(256);
  const n = data.length;
  if (n === 0) return 0;
  // Sample four windows spread over the data so one header does not decide.
  const window = Math.min(n, PROBE_BYTES / 4);
  let total = 0;
  for (let w = 0; w < 4; w++) {
    const start = Math.floor(((n - window) * w) / 3);
    for (let i = start; i < start + window; i++) counts[data[i] as number]! += 1;
    total += window;
  }
  let entropy = 0;
  for (let i = 0; i < 256; i++) {
    const c = counts[i] as number;
    if (c === 0) continue;
    const p = c / total;
    entropy -= p * Math.log2(p);
  }
  return entropy;
}

export interface Encoded {
  readonly codec: Codec;
  readonly payload: Uint8Array;
}

/**
 * Compresses `data` by its class, returning the raw bytes with `store` when the
 * codec saves less than 1/32 of the size. Runs in the libuv pool, so several
 * calls overlap with work on the main thread.
 */
export async function encode(data: Uint8Array, contentClass: ContentClass): Promise<Encoded> {
  if (data.length < MIN_COMPRESSIBLE || contentClass === 'compressed') {
    return { codec: Codec.store, payload: data };
  }
  if (contentClass === 'binary' && byteEntropy(data) > ENTROPY_LIMIT) {
    return { codec: Codec.store, payload: data };
  }
  let codec: Codec;
  let payload: Uint8Array;
  if (contentClass === 'text' && data.length < BROTLI_TEXT_LIMIT) {
    codec = Codec.brotli;
    payload = await brotliCompress(data, {
      params: {
        [zlib.constants.BROTLI_PARAM_QUALITY]: data.length < 1 << 20 ? 9 : 5,
        [zlib.constants.BROTLI_PARAM_SIZE_HINT]: data.length,
      },
    });
  } else {
    codec = Codec.zstd;
    payload = await zstdCompress(data, {
      params: { [zlib.constants.ZSTD_c_compressionLevel]: 3 },
    });
  }
  if (payload.length + (data.length >> 5) >= data.length)
    return { codec: Codec.store, payload: data };
  return { codec, payload };
}

export async function decode(codec: number, payload: Uint8Array, rawSize: number): Promise<Buffer> {
  switch (codec) {
    case Codec.store:
      return Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
    case Codec.zstd:
      return zstdDecompress(payload, { maxOutputLength: Math.max(rawSize, 1) });
    case Codec.brotli:
      return brotliDecompress(payload, { maxOutputLength: Math.max(rawSize, 1) });
    default:
      throw new Error(`unknown codec ${codec}`);
  }
}
