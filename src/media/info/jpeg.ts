/**
 * JPEG: walks the marker segments by their lengths up to the first SOFn
 * (size, precision, components and their sampling factors), reading the
 * EXIF APP1 segment on the way for the orientation. Entropy-coded data is
 * never read.
 */
import { bufferAccess, MediaReader } from './random-access.ts';
import { readFirstIfd } from './tiff.ts';
import type { MediaProperties } from './types.ts';

const SOF = new Set([0xc0, 0xc1, 0xc2, 0xc3, 0xc5, 0xc6, 0xc7, 0xc9, 0xca, 0xcb, 0xcd, 0xce, 0xcf]);
const PROGRESSIVE = new Set([0xc2, 0xc6, 0xca, 0xce]);
const COLOR_SPACES: Record<number, string> = { 1: 'gray', 3: 'rgb', 4: 'cmyk' };

export async function readJpeg(r: MediaReader): Promise<MediaProperties> {
  const soi = await r.bytes(0, 2);
  if (soi[0] !== 0xff || soi[1] !== 0xd8) throw r.fail('no SOI marker');
  let orientation: number | undefined;
  for (let offset = 2; ;) {
    const marker = await r.bytes(offset, 2);
    if (marker[0] !== 0xff) throw r.fail(`no marker at byte ${offset}`);
    const code = marker[1]!;
    // Fill bytes, and the markers that have no length.
    if (code === 0xff) {
      offset += 1;
      continue;
    }
    if (code === 0x01 || (code >= 0xd0 && code <= 0xd8)) {
      offset += 2;
      continue;
    }
    if (code === 0xd9 || code === 0xda) throw r.fail('no SOF marker before the image data');
    const length = (await r.bytes(offset + 2, 2)).readUInt16BE(0);
    if (length < 2) throw r.fail(`segment of length ${length} at byte ${offset}`);
    if (code === 0xe1 && length >= 16 && orientation === undefined) {
      const segment = await r.bytes(offset + 4, length - 2);
      if (segment.toString('latin1', 0, 6) === 'Exif\0\0') {
        const exif = new MediaReader(bufferAccess(segment.subarray(6)), 'exif');
        orientation = await readFirstIfd(exif, 0).then(
          (ifd) => ifd.get(0x0112)?.[0],
          () => undefined,
        );
      }
    } else if (SOF.has(code)) {
      const sof = await r.bytes(offset + 4, length - 2);
      if (sof.length < 6) throw r.fail('SOF segment too short');
      const components = sof[5]!;
      if (sof.length < 6 + components * 3) throw r.fail('SOF segment too short for its components');
      const props: MediaProperties = {
        width: sof.readUInt16BE(3),
        height: sof.readUInt16BE(1),
        bitDepth: sof[0]!,
        channels: components,
        colorSpace: COLOR_SPACES[components] ?? 'multichannel',
        hasAlpha: false,
        progressive: PROGRESSIVE.has(code),
      };
      const subsampling = chromaSubsampling(sof, components);
      if (subsampling !== undefined) props.chromaSubsampling = subsampling;
      if (orientation !== undefined) props.orientation = orientation;
      return props;
    }
    offset += 2 + length;
  }
}

/** J:a:b notation from the luma and first chroma sampling factors, as libvips names it. */
function chromaSubsampling(sof: Buffer, components: number): string | undefined {
  if (components < 3) return undefined;
  const factors = (i: number): [number, number] => [sof[7 + i * 3]! >> 4, sof[7 + i * 3]! & 15];
  const [h1, v1] = factors(0);
  const [h2, v2] = factors(1);
  if (h2 === 0 || v2 === 0) return undefined;
  const a = 4 / (h1 / h2);
  const b = v1 / v2 === 1 ? a : 0;
  const text = `4:${a}:${b}`;
  return components === 4 ? `${text}:4` : text;
}
