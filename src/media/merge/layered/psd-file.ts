/**
 * A PSD/PSB file's structure as a record-level merge needs it, read through
 * RandomAccess: where each section lies, the image resources (small, read
 * whole), and each layer record (its bytes) with where its channel image
 * data lies. Channel data, almost all of a PSD, is never read here; it is
 * compared and copied by range.
 *
 * File layout: header (26 bytes); colour mode data, image resources (each a
 * 4-byte length and its bytes); the layer and mask section (a 4-byte length,
 * 8 in PSB) holding the layer info (a length, the layer count, the layer
 * records, then every layer's channel data in record order) and a tail (the
 * global layer mask and document-level tagged blocks); the flattened image
 * data to the end of the file.
 */
import { MediaReader, type RandomAccess } from '../../info/random-access.ts';
import type { TreeLayer } from './layer-tree.ts';

export interface Span {
  readonly offset: number;
  readonly length: number;
}

export interface PsdRecord {
  /** The record's bytes: bounds, channel lengths, blend mode, extra data. */
  readonly bytes: Buffer;
  /** The record's channel image data (each channel's compression and data). */
  readonly data: Span;
  readonly name: string;
  readonly id: number | undefined;
  /** `lsct` type: 0 a layer, 1/2 an open/closed group, 3 the end of a group. */
  readonly section: number;
}

/** A layer as the tree merge sees it: its records (a group's: divider, then header). */
export interface PsdLayerData {
  readonly access: RandomAccess;
  readonly records: readonly PsdRecord[];
}

export interface PsdFile {
  readonly access: RandomAccess;
  readonly psb: boolean;
  readonly header: Buffer;
  /** Colour mode data, with its length field. */
  readonly colorMode: Span;
  /** Image resources' content (after the length field). */
  readonly resources: Buffer;
  /** Whether the layer count is negative (the first alpha channel is the merged transparency). */
  readonly mergedAlpha: boolean;
  readonly records: readonly PsdRecord[];
  /** From the end of the layer info to the end of the layer and mask section. */
  readonly tail: Span;
  /** The flattened image, to the end of the file. */
  readonly imageData: Span;
  readonly layers: readonly TreeLayer<PsdLayerData>[];
}

const MAX_LAYERS = 10_000;
/** Resources and colour mode data are read whole; beyond this the file is declined. */
const MAX_RESOURCES = 64 * 1024 * 1024;
/** Tagged blocks whose length is 8 bytes in PSB. */
const WIDE_KEYS = new Set([
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
]);

/** Parses the structure; a MEDIA_CORRUPT error for a file that is not a PSD this can merge. */
export async function readPsdFile(access: RandomAccess): Promise<PsdFile> {
  const r = new MediaReader(access, 'psd');
  const header = Buffer.from(await r.bytes(0, 26));
  if (header.toString('latin1', 0, 4) !== '8BPS') throw r.fail("no '8BPS' signature");
  const version = header.readUInt16BE(4);
  if (version !== 1 && version !== 2) throw r.fail(`unknown version ${version}`);
  const psb = version === 2;
  const lengthSize = psb ? 8 : 4;
  const length = async (at: number): Promise<number> =>
    psb
      ? Number((await r.bytes(at, 8)).readBigUInt64BE(0))
      : (await r.bytes(at, 4)).readUInt32BE(0);

  const colorModeLength = (await r.bytes(26, 4)).readUInt32BE(0);
  const colorMode = { offset: 26, length: 4 + colorModeLength };
  const resourcesAt = 26 + colorMode.length;
  const resourcesLength = (await r.bytes(resourcesAt, 4)).readUInt32BE(0);
  if (resourcesLength > MAX_RESOURCES || colorModeLength > MAX_RESOURCES)
    throw r.fail('image resources too large to merge');
  const resources = Buffer.from(await r.bytes(resourcesAt + 4, resourcesLength));
  const sectionAt = resourcesAt + 4 + resourcesLength;
  const sectionLength = await length(sectionAt);
  const sectionEnd = sectionAt + lengthSize + sectionLength;
  if (sectionEnd > r.size) throw r.fail('the layer and mask section runs past the end');
  const imageData = { offset: sectionEnd, length: r.size - sectionEnd };

  const records: PsdRecord[] = [];
  let mergedAlpha = false;
  let tailAt = sectionEnd;
  if (sectionLength > 0) {
    const infoAt = sectionAt + lengthSize;
    const infoLength = await length(infoAt);
    const infoEnd = infoAt + lengthSize + infoLength;
    if (infoEnd > sectionEnd) throw r.fail('the layer info runs past its section');
    tailAt = infoEnd;
    if (infoLength > 0) {
      const count = (await r.bytes(infoAt + lengthSize, 2)).readInt16BE(0);
      mergedAlpha = count < 0;
      if (Math.abs(count) > MAX_LAYERS) throw r.fail(`${Math.abs(count)} layers`);
      let at = infoAt + lengthSize + 2;
      const dataLengths: number[] = [];
      for (let i = 0; i < Math.abs(count); i++) {
        const fixed = await r.bytes(at, 18);
        const channels = fixed.readUInt16BE(16);
        if (channels > 56) throw r.fail(`layer ${i} has ${channels} channels`);
        const channelInfo = await r.bytes(at + 18, channels * (psb ? 10 : 6));
        let dataLength = 0;
        for (let c = 0; c < channels; c++) {
          dataLength += psb
            ? Number(channelInfo.readBigUInt64BE(c * 10 + 2))
            : channelInfo.readUInt32BE(c * 6 + 2);
        }
        const blendAt = at + 18 + channelInfo.length;
        const blend = await r.bytes(blendAt, 16);
        if (blend.toString('latin1', 0, 4) !== '8BIM')
          throw r.fail(`layer ${i} has no blend mode signature`);
        const extraLength = blend.readUInt32BE(12);
        const end = blendAt + 16 + extraLength;
        if (end > infoEnd) throw r.fail(`layer ${i} runs past the layer info`);
        const bytes = Buffer.from(await r.bytes(at, end - at));
        const extra = bytes.subarray(end - at - extraLength);
        records.push({
          bytes,
          data: { offset: 0, length: dataLength },
          ...recordFacts(extra, psb),
        });
        dataLengths.push(dataLength);
        at = end;
      }
      for (const [i, record] of records.entries()) {
        const dataLength = dataLengths[i]!;
        if (at + dataLength > infoEnd)
          throw r.fail(`layer ${i}'s channel data runs past the layer info`);
        records[i] = { ...record, data: { offset: at, length: dataLength } };
        at += dataLength;
      }
    }
    await refuseDeepLayers(r, tailAt, sectionEnd, psb, length);
  }
  return {
    access,
    psb,
    header,
    colorMode,
    resources,
    mergedAlpha,
    records,
    tail: { offset: tailAt, length: sectionEnd - tailAt },
    imageData,
    layers: layerTree(r, access, records),
  };
}

/** 16- and 32-bit documents keep their layers in an `Lr16`/`Lr32` block of the tail: not merged. */
async function refuseDeepLayers(
  r: MediaReader,
  tailAt: number,
  sectionEnd: number,
  psb: boolean,
  length: (at: number) => Promise<number>,
): Promise<void> {
  if (tailAt + 4 > sectionEnd) return;
  let at = tailAt + 4 + (await r.bytes(tailAt, 4)).readUInt32BE(0);
  while (at + 12 <= sectionEnd) {
    const block = await r.bytes(at, 12);
    const signature = block.toString('latin1', 0, 4);
    if (signature !== '8BIM' && signature !== '8B64') return;
    const key = block.toString('latin1', 4, 8);
    if (key === 'Lr16' || key === 'Lr32' || key === 'Layr')
      throw r.fail(`layers in a '${key}' block (16- or 32-bit document) are not merged`);
    const wide = psb && WIDE_KEYS.has(key);
    at += 8 + (wide ? 8 : 4) + (wide ? await length(at + 8) : block.readUInt32BE(8));
  }
}

/** Name (Unicode `luni` when present), `lyid` and `lsct` from a record's extra data. */
function recordFacts(extra: Buffer, psb: boolean): Pick<PsdRecord, 'name' | 'id' | 'section'> {
  let p = 0;
  const skip = (): void => {
    p += 4 + (p + 4 <= extra.length ? extra.readUInt32BE(p) : 0);
  };
  skip(); // layer mask data
  skip(); // blending ranges
  const pascalLength = extra[p] ?? 0;
  let name = extra.toString('latin1', p + 1, Math.min(extra.length, p + 1 + pascalLength));
  p += (pascalLength + 1 + 3) & ~3;
  let id: number | undefined;
  let section = 0;
  while (p + 12 <= extra.length) {
    const signature = extra.toString('latin1', p, p + 4);
    if (signature !== '8BIM' && signature !== '8B64') break;
    const key = extra.toString('latin1', p + 4, p + 8);
    const wide = psb && WIDE_KEYS.has(key);
    if (wide && p + 16 > extra.length) break;
    const length = wide ? Number(extra.readBigUInt64BE(p + 8)) : extra.readUInt32BE(p + 8);
    const data = p + (wide ? 16 : 12);
    if (data + length > extra.length) break;
    if (key === 'luni' && length >= 4) {
      const chars = extra.readUInt32BE(data);
      if (data + 4 + chars * 2 <= extra.length) {
        const utf16 = Buffer.from(extra.subarray(data + 4, data + 4 + chars * 2));
        name = utf16.swap16().toString('utf16le').replace(/\0+$/, '');
      }
    } else if (key === 'lyid' && length >= 4) {
      id = extra.readUInt32BE(data);
    } else if ((key === 'lsct' || key === 'lsdk') && length >= 4) {
      section = extra.readUInt32BE(data);
    }
    p = data + length;
  }
  return { name, id, section };
}

/** Records (bottom first; a group is its end divider, its layers, then its header) as a tree. */
function layerTree(
  r: MediaReader,
  access: RandomAccess,
  records: readonly PsdRecord[],
): TreeLayer<PsdLayerData>[] {
  const frames: { divider: PsdRecord | undefined; children: TreeLayer<PsdLayerData>[] }[] = [
    { divider: undefined, children: [] },
  ];
  for (const record of records) {
    const uid = record.id === undefined ? undefined : String(record.id);
    if (record.section === 3) {
      frames.push({ divider: record, children: [] });
    } else if (record.section === 1 || record.section === 2) {
      const frame = frames.pop();
      if (!frame?.divider || frames.length === 0)
        throw r.fail(`group '${record.name}' has no end divider`);
      frames.at(-1)!.children.push({
        name: record.name,
        uid,
        group: true,
        children: frame.children,
        data: { access, records: [frame.divider, record] },
      });
    } else {
      frames.at(-1)!.children.push({
        name: record.name,
        uid,
        group: false,
        children: [],
        data: { access, records: [record] },
      });
    }
  }
  if (frames.length !== 1) throw r.fail('a group divider has no group header');
  return frames[0]!.children;
}
