/**
 * OpenRaster (`.ora`): `stack.xml` lists layers (`<layer src=… x= y=
 * opacity= visibility= composite-op=>`) and groups (`<stack>`) top first;
 * each layer is a PNG member. After a merge the composite
 * (`mergedimage.png`) and `Thumbnails/thumbnail.png` are rebuilt from the
 * merged layers when every visible layer and group blends normally
 * (`svg:src-over`, with opacity; groups isolated, as the spec says); with
 * any other blend mode ours' are kept, as this merge does not render them.
 */
import sharp from 'sharp';
import type { MergedLayer } from './layer-tree.ts';
import type { XmlNode } from './xml-spans.ts';
import { memberContent, newMember, type ZipMember } from './zip-writer.ts';
import { zipDocumentStrategy, type ZipLayerData } from './zip-document.ts';

const SRC_OVER = 'svg:src-over';
const THUMBNAIL = 256;

const number = (value: string | undefined, fallback: number): number => {
  const n = Number(value);
  return value === undefined || !Number.isFinite(n) ? fallback : n;
};

/** Straight-alpha RGBA (8 bits) over premultiplied float RGBA, at (left, top), scaled by opacity. */
function over(
  canvas: Float32Array,
  width: number,
  height: number,
  src: { data: Uint8Array | Float32Array; width: number; height: number; premultiplied: boolean },
  left: number,
  top: number,
  opacity: number,
): void {
  for (let y = Math.max(0, top); y < Math.min(height, top + src.height); y++) {
    for (let x = Math.max(0, left); x < Math.min(width, left + src.width); x++) {
      const s = ((y - top) * src.width + (x - left)) * 4;
      const d = (y * width + x) * 4;
      const scale = src.premultiplied ? 1 : 1 / 255;
      const a = src.data[s + 3]! * scale * opacity;
      const k = src.premultiplied ? opacity : a / 255;
      for (let c = 0; c < 3; c++) canvas[d + c] = src.data[s + c]! * k + canvas[d + c]! * (1 - a);
      canvas[d + 3] = a + canvas[d + 3]! * (1 - a);
    }
  }
}

/** Renders a stack (top first) onto a new premultiplied canvas; undefined for a blend mode not rendered. */
async function render(
  layers: readonly MergedLayer<ZipLayerData>[],
  width: number,
  height: number,
): Promise<Float32Array | undefined> {
  const canvas = new Float32Array(width * height * 4);
  for (const m of [...layers].reverse()) {
    const a = m.layer.data.attributes;
    if ((a['composite-op'] ?? SRC_OVER) !== SRC_OVER) return undefined;
    if (a['visibility'] === 'hidden') continue;
    const opacity = Math.min(1, Math.max(0, number(a['opacity'], 1)));
    if (m.layer.group) {
      const inner = await render(m.children, width, height);
      if (!inner) return undefined;
      over(
        canvas,
        width,
        height,
        { data: inner, width, height, premultiplied: true },
        0,
        0,
        opacity,
      );
      continue;
    }
    const member = m.layer.data.files[0]?.members.get('');
    if (!member) continue;
    const { data, info } = await sharp(memberContent(member))
      .toColourspace('srgb')
      .ensureAlpha()
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    const image = { data, width: info.width, height: info.height, premultiplied: false };
    over(
      canvas,
      width,
      height,
      image,
      Math.trunc(number(a['x'], 0)),
      Math.trunc(number(a['y'], 0)),
      opacity,
    );
  }
  return canvas;
}

async function derive(
  merged: readonly MergedLayer<ZipLayerData>[],
  root: XmlNode,
): Promise<ZipMember[] | undefined> {
  const image = root.children.find((c) => c.name === 'image');
  const width = Math.trunc(number(image?.attributes['w'], 0));
  const height = Math.trunc(number(image?.attributes['h'], 0));
  if (width <= 0 || height <= 0 || width * height > 64 * 1024 * 1024) return undefined;
  let canvas: Float32Array | undefined;
  try {
    canvas = await render(merged, width, height);
  } catch {
    return undefined; // a layer PNG sharp cannot read: keep ours' composite
  }
  if (!canvas) return undefined;
  const rgba = Buffer.alloc(width * height * 4);
  for (let p = 0; p < rgba.length; p += 4) {
    const alpha = canvas[p + 3]!;
    for (let c = 0; c < 3; c++)
      rgba[p + c] = alpha > 0 ? Math.round(Math.min(255, (canvas[p + c]! / alpha) * 255)) : 0;
    rgba[p + 3] = Math.round(alpha * 255);
  }
  const raw = { raw: { width, height, channels: 4 as const } };
  const png = await sharp(rgba, raw).png().toBuffer();
  const thumbnail = await sharp(png)
    .resize(THUMBNAIL, THUMBNAIL, { fit: 'inside', withoutEnlargement: true })
    .png()
    .toBuffer();
  return [newMember('mergedimage.png', png), newMember('Thumbnails/thumbnail.png', thumbnail)];
}

export const oraMergeStrategy = zipDocumentStrategy({
  name: 'ora-layers',
  format: 'ora',
  mimetype: 'image/openraster',
  index: 'stack.xml',
  derived: ['mergedimage.png', 'Thumbnails/thumbnail.png'],
  topList: (root) =>
    root.children.find((c) => c.name === 'image')?.children.find((c) => c.name === 'stack'),
  layerOf: (element) =>
    element.name === 'stack'
      ? { group: true, list: element }
      : element.name === 'layer'
        ? { group: false, list: undefined }
        : undefined,
  fileRefs: (element, _root, members) => {
    const src = element.name === 'layer' ? element.attributes['src'] : undefined;
    if (src === undefined) return [];
    const member = members.get(src);
    if (!member)
      throw new Error(`layer '${element.attributes['name'] ?? ''}' names a missing '${src}'`);
    return [
      { attribute: 'src', value: src, members: new Map([['', member]]), nameOf: (v, s) => v + s },
    ];
  },
  ignored: new Set(['src', 'selected']),
  uid: undefined,
  canvas: (root) => {
    const image = root.children.find((c) => c.name === 'image');
    return `${image?.attributes['w']}x${image?.attributes['h']}`;
  },
  derive,
});
