/**
 * For this family's tests only: running a strategy on three in-memory files,
 * and building and reading back PSDs with ag-psd (raw pixels, no canvas).
 */
import { createHash } from 'node:crypto';
import { crc32, deflateRawSync } from 'node:zlib';
import sharp from 'sharp';
import { initializeCanvas, readPsd, writePsdBuffer, type Layer } from 'ag-psd';
import { detectFormat } from '../src/media/detect.ts';
import { parseXml } from '../src/media/info/layered-zip.ts';
import { MediaReader, bufferAccess } from '../src/media/info/random-access.ts';
import { readZipEntry, zipEntries } from '../src/media/info/zip.ts';
import {
  writeMerged,
  type MergeStrategy,
  type StrategyResult,
} from '../src/media/merge-strategy.ts';

// ag-psd makes image data through a canvas unless it is given a factory; Node has none.
initializeCanvas(
  () => {
    throw new Error('no canvas: PSD layers are read as raw pixels');
  },
  (width, height) =>
    ({
      width,
      height,
      data: new Uint8ClampedArray(width * height * 4),
      colorSpace: 'srgb',
    }) as unknown as ReturnType<NonNullable<Parameters<typeof initializeCanvas>[1]>>,
);

export type Outcome =
  | { readonly bytes: Buffer; readonly summary: string }
  | { readonly conflict: string }
  | { readonly declined: string };

/** Runs `strategy` on three files and writes the merged one out. */
export async function runMerge(
  strategy: MergeStrategy,
  file: string,
  base: Buffer,
  ours: Buffer,
  theirs: Buffer,
): Promise<Outcome> {
  const sides = {
    base: bufferAccess(base),
    ours: bufferAccess(ours),
    theirs: bufferAccess(theirs),
  };
  const result: StrategyResult = await strategy.merge({
    path: file,
    format: detectFormat(ours.subarray(0, 65536), file),
    ...sides,
  });
  if (!('merged' in result)) return result;
  const parts: Uint8Array[] = [];
  await writeMerged(result.merged, sides, (data) => {
    parts.push(Buffer.from(data));
    return Promise.resolve();
  });
  return { bytes: Buffer.concat(parts), summary: result.summary };
}

export const SIZE = 8;

/** A layer's pixels from a seed: different seeds, different pixels. */
export function pixels(seed: number, size = SIZE) {
  const data = new Uint8ClampedArray(size * size * 4);
  for (let i = 0; i < data.length; i++) data[i] = (i * 7 + seed * 31) & 0xff;
  return { width: size, height: size, data, colorSpace: 'srgb' as const };
}

/** A layer or group of a test document: pixels by seed, children for a group. */
export interface Spec {
  readonly name: string;
  readonly seed?: number;
  readonly hidden?: boolean;
  readonly opacity?: number;
  /** Written as the layer's `lyid`. */
  readonly id?: number;
  readonly children?: readonly Spec[];
}

/** A PSD of `layers`, listed top first (as a layers panel shows them). */
export function psd(layers: readonly Spec[], options: { psb?: boolean } = {}): Buffer {
  const toLayer = (spec: Spec): Layer => {
    const layer: Layer = {
      name: spec.name,
      hidden: spec.hidden ?? false,
      opacity: spec.opacity ?? 1,
    };
    if (spec.id !== undefined) layer.id = spec.id;
    if (spec.children) {
      layer.children = [...spec.children].reverse().map(toLayer);
      layer.opened = true;
    } else {
      layer.top = 0;
      layer.left = 0;
      layer.imageData = pixels(spec.seed ?? 0);
    }
    return layer;
  };
  return writePsdBuffer(
    {
      width: SIZE,
      height: SIZE,
      imageData: pixels(0),
      children: [...layers].reverse().map(toLayer),
    },
    { psb: options.psb ?? false },
  );
}

export interface ReadLayer {
  readonly name: string;
  readonly hidden: boolean;
  readonly opacity: number;
  readonly pixels?: string;
  readonly children?: ReadLayer[];
}

/** A PSD read back by ag-psd: layers top first, pixels as a digest. */
export function readLayers(bytes: Buffer): ReadLayer[] {
  const doc = readPsd(bytes, {
    useImageData: true,
    skipCompositeImageData: true,
    skipThumbnail: true,
  });
  const toRead = (layer: Layer): ReadLayer => {
    const out: { -readonly [K in keyof ReadLayer]: ReadLayer[K] } = {
      name: layer.name ?? '',
      hidden: layer.hidden ?? false,
      opacity: Math.round((layer.opacity ?? 1) * 100) / 100,
    };
    if (layer.children) out.children = [...layer.children].reverse().map(toRead);
    else if (layer.imageData)
      out.pixels = createHash('sha256').update(layer.imageData.data).digest('hex').slice(0, 12);
    return out;
  };
  return [...(doc.children ?? [])].reverse().map(toRead);
}

/** Whether the PSD's version info says its composite is real. */
export function hasRealComposite(bytes: Buffer): boolean | undefined {
  const doc = readPsd(bytes, {
    skipLayerImageData: true,
    skipCompositeImageData: true,
    skipThumbnail: true,
  });
  return doc.imageResources?.versionInfo?.hasRealMergedData;
}

/** A ZIP of `[name, content, stored]` members, written here independently of zip-writer.ts. */
export function zipOf(members: readonly (readonly [string, Buffer, boolean?])[]): Buffer {
  const parts: Buffer[] = [];
  const directory: Buffer[] = [];
  let offset = 0;
  for (const [name, content, stored] of members) {
    const data = stored ? content : deflateRawSync(content);
    const nameBytes = Buffer.from(name);
    const crc = crc32(content);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(stored ? 0 : 8, 8);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(data.length, 18);
    local.writeUInt32LE(content.length, 22);
    local.writeUInt16LE(nameBytes.length, 26);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(20, 4);
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(stored ? 0 : 8, 10);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(data.length, 20);
    central.writeUInt32LE(content.length, 24);
    central.writeUInt16LE(nameBytes.length, 28);
    central.writeUInt32LE(offset, 42);
    parts.push(local, nameBytes, data);
    directory.push(central, nameBytes);
    offset += 30 + nameBytes.length + data.length;
  }
  const cd = Buffer.concat(directory);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(members.length, 8);
  end.writeUInt16LE(members.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...parts, cd, end]);
}

/** The members of a ZIP, read with the media info reader. */
export async function unzipAll(bytes: Buffer, format: string): Promise<Map<string, Buffer>> {
  const r = new MediaReader(bufferAccess(bytes), format);
  const out = new Map<string, Buffer>();
  for (const entry of await zipEntries(r)) out.set(entry.name, await readZipEntry(r, entry));
  return out;
}

export const ORA_SIZE = 12;
const pngCache = new Map<number, Promise<Buffer>>();

/** A PNG layer from a seed: an opaque block of seeded colours on transparency. */
export function layerPng(seed: number): Promise<Buffer> {
  let png = pngCache.get(seed);
  if (!png) {
    const w = 6 + (seed % 5);
    const h = 5 + (seed % 4);
    const data = Buffer.alloc(w * h * 4);
    for (let i = 0; i < w * h; i++) {
      const opaque = (i + seed) % 3 !== 0;
      data[i * 4] = (seed * 37 + i * 11) & 0xff;
      data[i * 4 + 1] = (seed * 91 + i * 5) & 0xff;
      data[i * 4 + 2] = (seed * 13 + i * 3) & 0xff;
      data[i * 4 + 3] = opaque ? 255 : 0;
    }
    png = sharp(data, { raw: { width: w, height: h, channels: 4 } })
      .png()
      .toBuffer();
    pngCache.set(seed, png);
  }
  return png;
}

export interface OraSpec {
  readonly name: string;
  readonly seed?: number;
  readonly hidden?: boolean;
  readonly opacity?: number;
  readonly x?: number;
  readonly y?: number;
  readonly children?: readonly OraSpec[];
}

/** An ORA of `layers` (top first); layer members numbered in stack order, as editors save them. */
export async function ora(
  layers: readonly OraSpec[],
  options: { composite?: string; width?: number; xres?: number } = {},
): Promise<Buffer> {
  const members: [string, Buffer, boolean?][] = [
    ['mimetype', Buffer.from('image/openraster'), true],
  ];
  let n = 0;
  const xml = async (list: readonly OraSpec[], indent: string): Promise<string> => {
    const lines: string[] = [];
    for (const spec of list) {
      const common = `name="${spec.name}" visibility="${spec.hidden ? 'hidden' : 'visible'}" opacity="${spec.opacity ?? 1}"`;
      if (spec.children) {
        lines.push(
          `${indent}<stack ${common}>`,
          await xml(spec.children, `${indent}  `),
          `${indent}</stack>`,
        );
      } else {
        const src = `data/layer${n++}.png`;
        members.push([src, await layerPng(spec.seed ?? 0)]);
        const op = options.composite ? ` composite-op="${options.composite}"` : '';
        lines.push(
          `${indent}<layer ${common} src="${src}" x="${spec.x ?? 0}" y="${spec.y ?? 0}"${op}/>`,
        );
      }
    }
    return lines.join('\n');
  };
  const body = await xml(layers, '  ');
  const stack = `<?xml version="1.0" encoding="UTF-8"?>\n<image version="0.0.3" w="${options.width ?? ORA_SIZE}" h="${ORA_SIZE}" xres="${options.xres ?? 72}">\n<stack>\n${body}\n</stack>\n</image>\n`;
  const placeholder = await layerPng(999);
  return zipOf([
    members[0]!,
    ['stack.xml', Buffer.from(stack)],
    ...members.slice(1),
    ['mergedimage.png', placeholder],
    ['Thumbnails/thumbnail.png', placeholder],
  ]);
}

export interface OraRead {
  readonly name: string;
  readonly hidden: boolean;
  readonly opacity: number;
  readonly x: number;
  readonly y: number;
  readonly pixels?: string;
  readonly children?: OraRead[];
}

/** Pixels of a PNG as a digest (sharp decodes it). */
export async function pixelHash(png: Buffer): Promise<string> {
  const { data, info } = await sharp(png).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  return createHash('sha256')
    .update(`${info.width}x${info.height}`)
    .update(data)
    .digest('hex')
    .slice(0, 12);
}

/** An ORA read back: stack.xml's tree with each layer's PNG pixels as a digest. */
export async function readOra(bytes: Buffer): Promise<OraRead[]> {
  const members = await unzipAll(bytes, 'ora');
  const doc = parseXml(members.get('stack.xml')!.toString('utf8'));
  const stack = doc.children
    .find((c) => c.name === 'image')!
    .children.find((c) => c.name === 'stack')!;
  type Element = typeof stack;
  const visit = async (list: Element): Promise<OraRead[]> => {
    const out: OraRead[] = [];
    for (const e of list.children) {
      const a = e.attributes;
      const common = {
        name: a['name'] ?? '',
        hidden: a['visibility'] === 'hidden',
        opacity: Number(a['opacity'] ?? 1),
        x: Number(a['x'] ?? 0),
        y: Number(a['y'] ?? 0),
      };
      if (e.name === 'stack') out.push({ ...common, children: await visit(e) });
      else out.push({ ...common, pixels: await pixelHash(members.get(a['src'] ?? '')!) });
    }
    return out;
  };
  return visit(stack);
}

export interface KraSpec {
  readonly name: string;
  readonly uuid: string;
  readonly seed?: number;
  readonly opacity?: number;
  readonly mask?: number;
  readonly children?: readonly KraSpec[];
}

const tiles = (seed: number) =>
  Buffer.concat([
    Buffer.from('VERSION 2\nTILEWIDTH 64\nTILEHEIGHT 64\nPIXELSIZE 4\nDATA 1\n0,0,LZF,64\n'),
    Buffer.from(Array.from({ length: 64 }, (_, i) => (seed * 29 + i * 7) & 0xff)),
  ]);

/** A KRA of `layers` (top first); data members numbered in document order, as Krita saves them. */
export function kra(layers: readonly KraSpec[], documentInfo = 'v1'): Buffer {
  const members: [string, Buffer, boolean?][] = [];
  let n = 1;
  const xml = (list: readonly KraSpec[]): string =>
    list
      .map((l) => {
        const file = `layer${++n}`;
        const common = `name="${l.name}" uuid="${l.uuid}" filename="${file}" opacity="${l.opacity ?? 255}" visible="1" x="0" y="0" compositeop="normal" colorspacename="RGBA" locked="0"`;
        if (l.children)
          return `<layer ${common} nodetype="grouplayer" passthrough="0" collapsed="0">\n<layers>\n${xml(l.children)}\n</layers>\n</layer>`;
        members.push([`Doc/layers/${file}`, tiles(l.seed ?? 0)]);
        members.push([`Doc/layers/${file}.defaultpixel`, Buffer.alloc(4)]);
        let masks = '';
        if (l.mask !== undefined) {
          const maskFile = `mask${++n}`;
          members.push([`Doc/layers/${maskFile}.pixelselection`, tiles(1000 + l.mask)]);
          masks = `\n<masks>\n<mask name="Transparency Mask" uuid="{m-${l.uuid}}" filename="${maskFile}" nodetype="transparencymask" visible="1"/>\n</masks>\n`;
        }
        return masks
          ? `<layer ${common} nodetype="paintlayer">${masks}</layer>`
          : `<layer ${common} nodetype="paintlayer"/>`;
      })
      .join('\n');
  const maindoc = `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE DOC PUBLIC '-//KDE//DTD krita 2.0//EN' 'http://www.calligra.org/DTD/krita-2.0.dtd'>
<DOC xmlns="http://www.calligra.org/DTD/krita" syntaxVersion="2.0" editor="Krita" kritaVersion="5.2.2">
 <IMAGE name="Doc" width="64" height="64" mime="application/x-kra" colorspacename="RGBA" x-res="300" y-res="300">
  <layers>
${xml(layers)}
  </layers>
  <ProjectionBackgroundColor ColorData="AAAAAA=="/>
 </IMAGE>
</DOC>
`;
  return zipOf([
    ['mimetype', Buffer.from('application/x-krita'), true],
    ['maindoc.xml', Buffer.from(maindoc)],
    ['documentinfo.xml', Buffer.from(`<document-info>${documentInfo}</document-info>`)],
    ...members,
    ['mergedimage.png', Buffer.from(`composite ${documentInfo}`)],
    ['preview.png', Buffer.from(`preview ${documentInfo}`)],
  ]);
}

export interface KraRead {
  name: string;
  uuid: string;
  opacity: string;
  data: string;
  children?: KraRead[];
}

/** A KRA read back: maindoc.xml's layers with each layer's members (by suffix) and masks digested. */
export async function readKra(bytes: Buffer): Promise<KraRead[]> {
  const members = await unzipAll(bytes, 'kra');
  const doc = parseXml(members.get('maindoc.xml')!.toString('utf8'));
  const image = doc.children[0]!.children.find((c) => c.name === 'IMAGE')!;
  type Element = typeof image;
  const filesOf = (filename: string) => {
    const prefix = `Doc/layers/${filename}`;
    const hash = createHash('sha256');
    for (const [name, content] of [...members].sort(([a], [b]) => (a < b ? -1 : 1)))
      if (name === prefix || name.startsWith(`${prefix}.`))
        hash.update(name.slice(prefix.length)).update(content);
    return hash.digest('hex').slice(0, 12);
  };
  const visit = (list: Element): KraRead[] =>
    list.children
      .filter((e) => e.name === 'layer')
      .map((e) => {
        const a = e.attributes;
        const masks = e.children.find((c) => c.name === 'masks')?.children ?? [];
        const data = [
          filesOf(a['filename']!),
          ...masks.map((m) => filesOf(m.attributes['filename']!)),
        ].join('+');
        const out: KraRead = { name: a['name']!, uuid: a['uuid']!, opacity: a['opacity']!, data };
        const nested = e.children.find((c) => c.name === 'layers');
        if (nested) out.children = visit(nested);
        return out;
      });
  return visit(image.children.find((c) => c.name === 'layers')!);
}
