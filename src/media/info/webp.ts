/**
 * WebP: the RIFF header and the first chunk's frame header — VP8 (lossy),
 * VP8L (lossless) or VP8X (extended: canvas size and flags, then chunk
 * headers only, to name the image chunk's compression).
 */
import type { MediaReader } from './random-access.ts';
import type { MediaProperties } from './types.ts';

export async function readWebp(r: MediaReader): Promise<MediaProperties> {
  const head = await r.bytes(0, 30);
  if (head.toString('latin1', 0, 4) !== 'RIFF' || head.toString('latin1', 8, 12) !== 'WEBP')
    throw r.fail('no RIFF WEBP header');
  const chunk = head.toString('latin1', 12, 16);
  const base: MediaProperties = { bitDepth: 8, colorSpace: 'rgb' };
  if (chunk === 'VP8 ') {
    if (head[23] !== 0x9d || head[24] !== 0x01 || head[25] !== 0x2a)
      throw r.fail('no VP8 start code');
    return {
      ...base,
      width: head.readUInt16LE(26) & 0x3fff,
      height: head.readUInt16LE(28) & 0x3fff,
      channels: 3,
      hasAlpha: false,
      compression: 'lossy',
    };
  }
  if (chunk === 'VP8L') {
    if (head[20] !== 0x2f) throw r.fail('no VP8L signature');
    const bits = head.readUInt32LE(21);
    const hasAlpha = ((bits >>> 28) & 1) === 1;
    return {
      ...base,
      width: (bits & 0x3fff) + 1,
      height: ((bits >>> 14) & 0x3fff) + 1,
      channels: hasAlpha ? 4 : 3,
      hasAlpha,
      compression: 'lossless',
    };
  }
  if (chunk !== 'VP8X') throw r.fail(`unknown first chunk '${chunk}'`);
  const flags = head[20]!;
  const hasAlpha = (flags & 0x10) !== 0;
  const props: MediaProperties = {
    ...base,
    width: head.readUIntLE(24, 3) + 1,
    height: head.readUIntLE(27, 3) + 1,
    channels: hasAlpha ? 4 : 3,
    hasAlpha,
  };
  for (let offset = 30 + (head.readUInt32LE(16) - 10); offset + 8 <= r.size;) {
    const header = await r.bytes(offset, 8);
    const id = header.toString('latin1', 0, 4);
    if (id === 'VP8 ' || id === 'VP8L') {
      props.compression = id === 'VP8L' ? 'lossless' : 'lossy';
      break;
    }
    if (id === 'ANMF') {
      props.compression = 'animated';
      break;
    }
    const size = header.readUInt32LE(4);
    offset += 8 + size + (size & 1);
  }
  return props;
}
