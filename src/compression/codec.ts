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

/**
 * `delta` is zstd with another object's raw bytes as its dictionary: the
 * payload names that base (odb/delta.ts) and only a reader that can fetch it
 * decodes it (`decodeDelta`).
 */
/**
 * How a record's payload is stored. `sealed`: encrypted (an encrypted
 * repository, odb/object-cipher.ts); the codec it was stored with before
 * sealing is inside the ciphertext.
 */
export const Codec = { store: 0, zstd: 1, brotli: 2, delta: 3, sealed: 4 } as const;
export type Codec = (typeof Codec)[keyof typeof Codec];

export function codecName(codec: Codec): string {
  switch (codec) {
    case Codec.zstd:
      return 'zstd';
    case Codec.brotli:
      return 'brotli';
    case Codec.delta:
      return 'delta';
    case Codec.sealed:
      return 'sealed';
    default:
      return 'store';
  }
}

/** What the caller knows about the content; decides the codec family. */
export type ContentClass = 'text' | 'binary' | 'compressed';

const zstdCompress = promisify(zlib.zstdCompress);
const zstdDecompress = promisify(zlib.zstdDecompress);
const brotliCompress = promisify(zlib.brotliCompress);
const brotliDecompress = promisify(zlib.brotliDecompress);
/** Objects up to this size decode synchronously (decode). */
const INLINE_DECODE_BYTES = 64 * 1024;

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
 * How an object is to be compressed, as decided from its format and size
 * (media/storage-profile.ts) or, with 'auto', from its bytes alone.
 *
 * - `auto`: classify a sample (`classifyContent`) and `encode` by its class.
 * - `brotli`: Brotli, quality 9 below 1 MiB and 5 above (text).
 * - `zstd`: zstd level 3 (general binaries, large text, creative projects).
 * - `zstd-fast`: zstd level 1 (ML tensors: same ratio as level 3 on float
 *   weights; negative levels save nothing on float32).
 * - `store`: no compression (already-compressed formats).
 *
 * A policy is a request, not a promise: the codec actually used is the one in
 * the returned `Encoded` (and so in the object header).
 */
export type CompressionPolicy = 'auto' | 'brotli' | 'zstd' | 'zstd-fast' | 'store';

const BROTLI_SMALL = 1 << 20;
const BROTLI_QUALITY_SMALL = 9;
const BROTLI_QUALITY_LARGE = 5;
const ZSTD_LEVEL = 3;
const ZSTD_FAST_LEVEL = 1;

const stored = (data: Uint8Array): Encoded => ({ codec: Codec.store, payload: data });

async function brotli(data: Uint8Array): Promise<Buffer> {
  return brotliCompress(data, {
    params: {
      [zlib.constants.BROTLI_PARAM_QUALITY]:
        data.length < BROTLI_SMALL ? BROTLI_QUALITY_SMALL : BROTLI_QUALITY_LARGE,
      [zlib.constants.BROTLI_PARAM_SIZE_HINT]: data.length,
      // A window no larger than the data: the encoder's memory follows the
      // window (4 MiB by default), which many small objects at once multiply.
      [zlib.constants.BROTLI_PARAM_LGWIN]: Math.min(
        zlib.constants.BROTLI_DEFAULT_WINDOW,
        Math.max(zlib.constants.BROTLI_MIN_WINDOW_BITS, Math.ceil(Math.log2(data.length + 1))),
      ),
    },
  });
}

async function zstd(data: Uint8Array, level: number): Promise<Buffer> {
  return zstdCompress(data, { params: { [zlib.constants.ZSTD_c_compressionLevel]: level } });
}

/** Keeps a compressed payload only when it saves at least 1/32 of the input. */
function smallerOrStored(data: Uint8Array, codec: Codec, payload: Uint8Array): Encoded {
  return payload.length + (data.length >> 5) >= data.length ? stored(data) : { codec, payload };
}

/**
 * Compresses `data` by its class, returning the raw bytes with `store` when the
 * codec saves less than 1/32 of the size. Runs in the libuv pool, so several
 * calls overlap with work on the main thread.
 */
export async function encode(data: Uint8Array, contentClass: ContentClass): Promise<Encoded> {
  if (data.length < MIN_COMPRESSIBLE || contentClass === 'compressed') return stored(data);
  if (contentClass === 'binary' && byteEntropy(data) > ENTROPY_LIMIT) return stored(data);
  if (contentClass === 'text' && data.length < BROTLI_TEXT_LIMIT) {
    return smallerOrStored(data, Codec.brotli, await brotli(data));
  }
  return smallerOrStored(data, Codec.zstd, await zstd(data, ZSTD_LEVEL));
}

/**
 * Compresses `data` as `policy` asks. Every policy but `store` first runs the
 * entropy probe and stores data it finds incompressible (so a mislabelled
 * JPEG costs one 16 KiB histogram, not a compression pass), and the result is
 * stored whenever the codec saves less than 1/32 of the size: the payload is
 * never longer than `data`.
 */
export async function encodeWithPolicy(
  data: Uint8Array,
  policy: CompressionPolicy,
): Promise<Encoded> {
  if (policy === 'auto') return encode(data, classifyContent(data));
  if (policy === 'store' || data.length < MIN_COMPRESSIBLE) return stored(data);
  if (byteEntropy(data) > ENTROPY_LIMIT) return stored(data);
  switch (policy) {
    case 'brotli':
      return smallerOrStored(data, Codec.brotli, await brotli(data));
    case 'zstd':
      return smallerOrStored(data, Codec.zstd, await zstd(data, ZSTD_LEVEL));
    case 'zstd-fast':
      return smallerOrStored(data, Codec.zstd, await zstd(data, ZSTD_FAST_LEVEL));
  }
}

export async function decode(codec: number, payload: Uint8Array, rawSize: number): Promise<Buffer> {
  const options = { maxOutputLength: Math.max(rawSize, 1) };
  // Small objects (trees, manifests, commits: thousands in a clone's
  // metadata) decompress in microseconds: on this thread, without the
  // thread-pool round trip that costs more than the work.
  const inline = rawSize <= INLINE_DECODE_BYTES;
  switch (codec) {
    case Codec.store:
      return Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
    case Codec.zstd:
      return inline ? zlib.zstdDecompressSync(payload, options) : zstdDecompress(payload, options);
    case Codec.brotli:
      return inline
        ? zlib.brotliDecompressSync(payload, options)
        : brotliDecompress(payload, options);
    case Codec.delta:
      throw new Error('a delta is decoded with its base (decodeDelta)');
    default:
      throw new Error(`unknown codec ${codec}`);
  }
}

/**
 * Encodes `target` as a zstd frame that uses `base` as its dictionary, so
 * whatever `target` shares with `base` costs a few bytes per match. The hash
 * table is sized to the base (2^(log2 size - 3) entries measured best here:
 * smaller misses matches, larger only costs time), the window to both.
 */
export async function encodeDelta(target: Uint8Array, base: Uint8Array): Promise<Buffer> {
  const span = Math.ceil(Math.log2(Math.max(base.length, 1024)));
  return zstdCompress(target, {
    dictionary: base,
    params: {
      [zlib.constants.ZSTD_c_compressionLevel]: ZSTD_FAST_LEVEL,
      [zlib.constants.ZSTD_c_hashLog]: Math.min(24, Math.max(14, span - 3)),
      [zlib.constants.ZSTD_c_windowLog]: Math.min(
        27,
        Math.max(10, Math.ceil(Math.log2(base.length + target.length + 1))),
      ),
    },
  });
}

/** Decodes a frame from `encodeDelta` given the same base bytes. */
export async function decodeDelta(
  frame: Uint8Array,
  base: Uint8Array,
  rawSize: number,
): Promise<Buffer> {
  return zstdDecompress(frame, { dictionary: base, maxOutputLength: Math.max(rawSize, 1) });
}
