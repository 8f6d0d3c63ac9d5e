/**
 * PSD and PSB (Photoshop): the 26-byte header, then the lengths of the colour
 * mode data and image resources to skip them, then the layer records of the
 * layer-and-mask section — bounds, opacity, visibility, names (Unicode `luni`
 * when present) and group markers (`lsct`). Channel image data, which is
 * almost all of a PSD, is never read.
 */
import type { MediaReader } from './random-access.ts';
import type { LayerInfo, MediaProperties } from './types.ts';

const COLOR_MODES: Record<number, string> = {
  0: 'bitmap',
  1: 'gray',
  2: 'indexed',
  3: 'rgb',
  4: 'cmyk',
  7: 'multichannel',
  8: 'duotone',
  9: 'lab',
};

/** At most this many layer records are read (a PSD of more is surely corrupt). */
const MAX_LAYERS = 10_000;

export async function readPsd(r: MediaReader): Promise<MediaProperties> {
  const header = await r.bytes(0, 26);
  if (header.toString('latin1', 0, 4) !== '8BPS') throw r.fail("no '8BPS' signature");
  const version = header.readUInt16BE(4);
  if (version !== 1 && version !== 2) throw r.fail(`unknown version ${version}`);
  const psb = version === 2;
  const props: MediaProperties = {
    channels: header.readUInt16BE(12),
    height: header.readUInt32BE(14),
    width: header.readUInt32BE(18),
    bitDepth: header.readUInt16BE(22),
    colorSpace: COLOR_MODES[header.readUInt16BE(24)] ?? `mode-${header.readUInt16BE(24)}`,
  };
  let offset = 26;
  offset += 4 + (await r.bytes(offset, 4)).readUInt32BE(0); // colour mode data
  offset += 4 + (await r.bytes(offset, 4)).readUInt32BE(0); // image resources
  const length = async (at: number): Promise<number> =>
    psb
      ? Number((await r.bytes(at, 8)).readBigUInt64BE(0))
      : (await r.bytes(at, 4)).readUInt32BE(0);
  const lengthSize = psb ? 8 : 4;
  const sectionLength = await length(offset);
  const section = offset + lengthSize;
  const sectionEnd = section + sectionLength;
  if (sectionEnd > r.size) throw r.fail('the layer and mask section runs past the end');
  if (sectionLength === 0) {
    props.layers = [];
    return props;
  }
  const layerInfoLength = await length(section);
  let layers: LayerInfo[] = [];
  if (layerInfoLength > 0) layers = await readLayerInfo(r, section + lengthSize, psb);
  else {
    // 16- and 32-bit documents keep their layers in an `Lr16` / `Lr32` block after the
    // global layer mask info.
    let at = section + lengthSize;
    at += 4 + (await r.bytes(at, 4)).readUInt32BE(0);
    while (at + 12 <= sectionEnd) {
      const block = await r.bytes(at, 12);
      const signature = block.toString('latin1', 0, 4);
      if (signature !== '8BIM' && signature !== '8B64') break;
      const key = block.toString('latin1', 4, 8);
      const wide =
        psb &&
        [
          'LMsk',
          'Lr16',
          'Lr32',
          'Layr',
          'Mt16',
          'Mt32',
          'Mtrn',
          'Alph',
          'FMsk',
          'lnk2',
          'FEid',
          'FXid',
          'PxSD',
        ].includes(key);
      const blockLength = wide ? await length(at + 8) : block.readUInt32BE(8);
      const data = at + 8 + (wide ? 8 : 4);
      if (key === 'Lr16' || key === 'Lr32' || key === 'Layr') {
        layers = await readLayerInfo(r, data, psb);
        break;
      }
      at = data + blockLength;
    }
  }
  props.layers = layers;
  return props;
}

/** The layer records at `start` (just after the layer info length). */
async function readLayerInfo(r: MediaReader, start: number, psb: boolean): Promise<LayerInfo[]> {
  const count = Math.abs((await r.bytes(start, 2)).readInt16BE(0));
  if (count > MAX_LAYERS) throw r.fail(`${count} layers`);
  const layers: LayerInfo[] = [];
  let at = start + 2;
  for (let i = 0; i < count; i++) {
    const fixed = await r.bytes(at, 18);
    const top = fixed.readInt32BE(0);
    const left = fixed.readInt32BE(4);
    const bottom = fixed.readInt32BE(8);
    const right = fixed.readInt32BE(12);
    const channels = fixed.readUInt16BE(16);
    if (channels > 56) throw r.fail(`layer ${i} has ${channels} channels`);
    at += 18 + channels * (psb ? 10 : 6);
    const blend = await r.bytes(at, 16);
    if (blend.toString('latin1', 0, 4) !== '8BIM')
      throw r.fail(`layer ${i} has no blend mode signature`);
    const opacity = blend[8]!;
    const flags = blend[10]!;
    const extraLength = blend.readUInt32BE(12);
    const extra = await r.bytes(at + 16, extraLength);
    at += 16 + extraLength;
    const name = layerName(extra);
    layers.push({
      name: name.name,
      kind: name.kind,
      top,
      left,
      width: right - left,
      height: bottom - top,
      opacity: Math.round((opacity / 255) * 100) / 100,
      visible: (flags & 0x02) === 0,
    });
  }
  return layers;
}

/** The name and group role from a layer record's extra data. */
function layerName(extra: Buffer): { name: string; kind: LayerInfo['kind'] } {
  let p = 0;
  const skip = (): void => {
    const n = p + 4 <= extra.length ? extra.readUInt32BE(p) : 0;
    p += 4 + n;
  };
  skip(); // layer mask data
  skip(); // blending ranges
  const pascalLength = extra[p] ?? 0;
  let name = extra.toString('latin1', p + 1, Math.min(extra.length, p + 1 + pascalLength));
  p += (pascalLength + 1 + 3) & ~3;
  let kind: LayerInfo['kind'] = 'layer';
  while (p + 12 <= extra.length) {
    const signature = extra.toString('latin1', p, p + 4);
    if (signature !== '8BIM' && signature !== '8B64') break;
    const key = extra.toString('latin1', p + 4, p + 8);
    const length = extra.readUInt32BE(p + 8);
    const data = p + 12;
    if (data + length > extra.length) break;
    if (key === 'luni' && length >= 4) {
      const chars = extra.readUInt32BE(data);
      if (data + 4 + chars * 2 <= extra.length) {
        const utf16 = Buffer.from(extra.subarray(data + 4, data + 4 + chars * 2));
        name = utf16.swap16().toString('utf16le').replace(/\0+$/, '');
      }
    } else if ((key === 'lsct' || key === 'lsdk') && length >= 4) {
      const type = extra.readUInt32BE(data);
      if (type === 1 || type === 2) kind = 'group';
      else if (type === 3) kind = 'group-end';
    }
    p = data + length;
  }
  return { name, kind };
}
