/**
 * OpenRaster (ORA) and Krita (KRA): ZIP documents whose layer stack is an
 * XML index (ORA `stack.xml`, KRA `maindoc.xml`). Only the central directory
 * and that entry are read — plus, for ORA, the first bytes of each layer's
 * PNG for its size (its IHDR). Layers are reported bottom first, a group
 * after its content, as for PSD (without PSD's `group-end` records).
 */
import { readZipEntry, readZipEntryHead, zipEntries, type ZipEntry } from './zip.ts';
import type { MediaReader } from './random-access.ts';
import type { LayerInfo, MediaProperties } from './types.ts';

interface XmlElement {
  readonly name: string;
  readonly attributes: Record<string, string>;
  readonly children: XmlElement[];
}

/** A small XML reader for these indexes: elements and attributes; text, comments and PIs skipped. */
export function parseXml(text: string): XmlElement {
  const root: XmlElement = { name: '', attributes: {}, children: [] };
  const stack: XmlElement[] = [root];
  const tag =
    /<(\/?)([A-Za-z_][\w:.-]*)((?:\s+[\w:.-]+\s*=\s*(?:"[^"]*"|'[^']*'))*)\s*(\/?)>|<!--[\s\S]*?-->|<\?[\s\S]*?\?>|<!\[CDATA\[[\s\S]*?\]\]>|<![^>]*>/g;
  const attribute = /([\w:.-]+)\s*=\s*(?:"([^"]*)"|'([^']*)')/g;
  for (const match of text.matchAll(tag)) {
    const [, closing, name, attrs, selfClosing] = match;
    if (name === undefined) continue;
    if (closing) {
      if (stack.length > 1) stack.pop();
      continue;
    }
    const element: XmlElement = { name, attributes: {}, children: [] };
    for (const a of (attrs ?? '').matchAll(attribute))
      element.attributes[a[1]!] = decodeEntities(a[2] ?? a[3] ?? '');
    stack.at(-1)!.children.push(element);
    if (!selfClosing) stack.push(element);
  }
  return root;
}

function decodeEntities(text: string): string {
  return text.replace(/&(#x[0-9a-f]+|#\d+|amp|lt|gt|quot|apos);/gi, (_, entity: string) => {
    const lower = entity.toLowerCase();
    if (lower.startsWith('#x')) return String.fromCodePoint(parseInt(lower.slice(2), 16));
    if (lower.startsWith('#')) return String.fromCodePoint(Number(lower.slice(1)));
    return { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" }[lower]!;
  });
}

function find(element: XmlElement, name: string): XmlElement | undefined {
  for (const child of element.children) {
    if (child.name === name) return child;
    const found = find(child, name);
    if (found) return found;
  }
  return undefined;
}

const int = (value: string | undefined): number => Math.trunc(Number(value ?? 0)) || 0;

async function indexEntry(r: MediaReader, name: string): Promise<[ZipEntry[], XmlElement]> {
  const entries = await zipEntries(r);
  const entry = entries.find((e) => e.name === name);
  if (!entry) throw r.fail(`no '${name}' entry`);
  return [entries, parseXml((await readZipEntry(r, entry)).toString('utf8'))];
}

export async function readOra(r: MediaReader): Promise<MediaProperties> {
  const [entries, doc] = await indexEntry(r, 'stack.xml');
  const image = find(doc, 'image');
  const top = image && find(image, 'stack');
  if (!image || !top) throw r.fail("stack.xml has no 'image' or 'stack'");
  const layers: LayerInfo[] = [];
  const visit = async (stack: XmlElement): Promise<void> => {
    // ORA lists the top-most element first.
    for (const child of [...stack.children].reverse()) {
      const a = child.attributes;
      const common = {
        name: a['name'] ?? '',
        opacity: Math.round(Number(a['opacity'] ?? 1) * 100) / 100,
        visible: (a['visibility'] ?? 'visible') !== 'hidden',
      };
      if (child.name === 'stack') {
        await visit(child);
        layers.push({ ...common, kind: 'group', top: int(a['y']), left: int(a['x']) });
      } else if (child.name === 'layer') {
        const layer: { -readonly [K in keyof LayerInfo]: LayerInfo[K] } = {
          ...common,
          kind: 'layer',
          top: int(a['y']),
          left: int(a['x']),
        };
        const png = entries.find((e) => e.name === a['src']);
        const head = png ? await readZipEntryHead(r, png, 24) : Buffer.alloc(0);
        if (head.length >= 24 && head.toString('latin1', 12, 16) === 'IHDR') {
          layer.width = head.readUInt32BE(16);
          layer.height = head.readUInt32BE(20);
        }
        layers.push(layer);
      }
    }
  };
  await visit(top);
  return { width: int(image.attributes['w']), height: int(image.attributes['h']), layers };
}

/** Krita colour space ids (RGBA, RGBA16, GRAYA, CMYK, LABA, ...) → colour space and depth. */
function kritaColorSpace(id: string): [string, number | undefined] {
  const match = /^(RGBA|GRAYA?|CMYKA?|CMYK|LABA|XYZA|YCbCrAU?)(16|F16|F32|F64)?$/i.exec(id);
  if (!match) return [id.toLowerCase(), undefined];
  const family = match[1]!.toUpperCase();
  const space = family.startsWith('RGB')
    ? 'rgb'
    : family.startsWith('GRAY')
      ? 'gray'
      : family.startsWith('CMYK')
        ? 'cmyk'
        : family.startsWith('LAB')
          ? 'lab'
          : family.startsWith('XYZ')
            ? 'xyz'
            : 'ycbcr';
  const depth = match[2] === undefined ? 8 : Number(match[2].replace(/^F/i, ''));
  return [space, depth];
}

export async function readKra(r: MediaReader): Promise<MediaProperties> {
  const [, doc] = await indexEntry(r, 'maindoc.xml');
  const image = find(doc, 'IMAGE');
  if (!image) throw r.fail("maindoc.xml has no 'IMAGE'");
  const layers: LayerInfo[] = [];
  const visit = (list: XmlElement): void => {
    // Krita lists the top-most layer first.
    for (const child of [...list.children].reverse()) {
      if (child.name !== 'layer') continue;
      const a = child.attributes;
      const group = a['nodetype'] === 'grouplayer';
      const nested = child.children.find((c) => c.name === 'layers');
      if (group && nested) visit(nested);
      layers.push({
        name: a['name'] ?? '',
        kind: group ? 'group' : 'layer',
        top: int(a['y']),
        left: int(a['x']),
        opacity: Math.round((Number(a['opacity'] ?? 255) / 255) * 100) / 100,
        visible: a['visible'] !== '0',
      });
    }
  };
  const top = image.children.find((c) => c.name === 'layers');
  if (top) visit(top);
  const [colorSpace, bitDepth] = kritaColorSpace(image.attributes['colorspacename'] ?? '');
  const props: MediaProperties = {
    width: int(image.attributes['width']),
    height: int(image.attributes['height']),
    colorSpace,
    layers,
  };
  if (bitDepth !== undefined) props.bitDepth = bitDepth;
  return props;
}
