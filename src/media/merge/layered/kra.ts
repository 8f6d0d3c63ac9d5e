/**
 * Krita (`.kra`): `maindoc.xml` lists layers as `<layer name= uuid=
 * filename= nodetype=…>` inside `<IMAGE><layers>`, top first, a group
 * (`nodetype="grouplayer"`) holding its own `<layers>`; a layer's data is
 * `<image name>/layers/<filename>` and its companions (`<filename>.icc`,
 * `.defaultpixel`), masks inside a layer name their own files. Identity is
 * the `uuid` first. The composite (`mergedimage.png`), `preview.png` and
 * `documentinfo.xml` (editing times) are kept from ours: Krita rebuilds the
 * composite from the layers on load, and this merge does not render Krita's
 * blend modes and filters.
 */
import { findElement, type XmlNode } from './xml-spans.ts';
import { zipDocumentStrategy } from './zip-document.ts';

const imageOf = (root: XmlNode): XmlNode | undefined => findElement(root, 'IMAGE');

export const kraMergeStrategy = zipDocumentStrategy({
  name: 'kra-layers',
  format: 'kra',
  mimetype: 'application/x-krita',
  index: 'maindoc.xml',
  derived: ['mergedimage.png', 'preview.png', 'documentinfo.xml'],
  topList: (root) => imageOf(root)?.children.find((c) => c.name === 'layers'),
  layerOf: (element) =>
    element.name === 'layer'
      ? {
          group: element.attributes['nodetype'] === 'grouplayer',
          list: element.children.find((c) => c.name === 'layers'),
        }
      : undefined,
  fileRefs: (element, root, members) => {
    const filename = element.attributes['filename'];
    const image = imageOf(root)?.attributes['name'];
    if (filename === undefined || image === undefined) return [];
    const prefix = `${image}/layers/${filename}`;
    const found = new Map<
      string,
      typeof members extends ReadonlyMap<string, infer M> ? M : never
    >();
    for (const [name, member] of members) {
      if (name === prefix || name.startsWith(`${prefix}.`))
        found.set(name.slice(prefix.length), member);
    }
    return [
      {
        attribute: 'filename',
        value: filename,
        members: found,
        nameOf: (value, suffix) => `${image}/layers/${value}${suffix}`,
      },
    ];
  },
  ignored: new Set(['filename', 'selected']),
  uid: 'uuid',
  canvas: (root) => `${imageOf(root)?.attributes['width']}x${imageOf(root)?.attributes['height']}`,
});
