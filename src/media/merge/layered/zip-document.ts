/**
 * OpenRaster and Krita merge by layer: both are ZIPs of an XML index of the
 * layer tree and one member (or a few) per layer. Each side's index is read
 * with its text spans (xml-spans.ts), the layer tree merges as for PSD
 * (layer-tree.ts), and the merged document is a new index spliced from the
 * sides' own text plus each chosen layer's members copied compressed from
 * its side (zip-writer.ts). A layer is unchanged when its attributes (less
 * the member name, which applications renumber on save) and its members'
 * content are equal. The index's other content (the document shell) and
 * members no layer names merge as whole parts; derived members (the
 * composite, thumbnails) are rebuilt by `derive` or kept from ours.
 */
import type { RandomAccess } from '../../info/random-access.ts';
import {
  readSides,
  readWhole,
  type MergeStrategy,
  type Side,
  type StrategyResult,
} from '../../merge-strategy.ts';
import {
  describeLayerChanges,
  mergeLayerTrees,
  type MergedLayer,
  type TreeLayer,
} from './layer-tree.ts';
import { around, escapeAttribute, parseXmlSpans, type XmlNode } from './xml-spans.ts';
import {
  memberContent,
  newMember,
  readZipMembers,
  renamed,
  sameMember,
  writeZip,
  type ZipMember,
} from './zip-writer.ts';

/** A layer's members: the attribute value naming them, and each member by its name's suffix. */
interface FileRef {
  readonly attribute: string;
  readonly value: string;
  readonly members: ReadonlyMap<string, ZipMember>;
  /** The member name for a value and suffix. */
  readonly nameOf: (value: string, suffix: string) => string;
}

export interface ZipLayerData {
  readonly attributes: Readonly<Record<string, string>>;
  /** What decides equality: its and its non-layer elements' attributes (less ignored ones). */
  readonly key: string;
  readonly files: readonly FileRef[];
  /** The layer's text before and after its child layers (all of it for a layer). */
  readonly before: string;
  readonly after: string;
}

export interface ZipDocument {
  readonly members: Map<string, ZipMember>;
  readonly text: string;
  readonly root: XmlNode;
  /** The index's text around the top layer list. */
  readonly shell: readonly [string, string];
  readonly layers: readonly TreeLayer<ZipLayerData>[];
  /** Member names the layers name. */
  readonly layerMembers: ReadonlySet<string>;
}

export interface ZipFormat {
  readonly name: string;
  readonly format: string;
  readonly mimetype: string;
  readonly index: string;
  /** Members derived from the layers or kept from ours whatever the sides did. */
  readonly derived: readonly string[];
  /** The element listing the top-level layers. */
  topList(root: XmlNode): XmlNode | undefined;
  /** Whether an element of a layer list is a layer, and a group's own list. */
  layerOf(element: XmlNode): { group: boolean; list: XmlNode | undefined } | undefined;
  /** The members an element (a layer, or a mask inside one) names. */
  fileRefs(element: XmlNode, root: XmlNode, members: ReadonlyMap<string, ZipMember>): FileRef[];
  /** Attributes that do not make a layer different (member names, selection). */
  readonly ignored: ReadonlySet<string>;
  readonly uid: string | undefined;
  readonly canvas: (root: XmlNode) => string;
  /** The derived members for a merged document, or undefined to keep ours'. */
  derive?(
    merged: readonly MergedLayer<ZipLayerData>[],
    root: XmlNode,
  ): Promise<ZipMember[] | undefined>;
}

class Unreadable extends Error {}

function readDocument(format: ZipFormat, members: Map<string, ZipMember>): ZipDocument {
  const mimetype = members.get('mimetype');
  if (!mimetype || memberContent(mimetype).toString('latin1').trim() !== format.mimetype)
    throw new Unreadable(`no '${format.mimetype}' mimetype member`);
  const indexMember = members.get(format.index);
  if (!indexMember) throw new Unreadable(`no '${format.index}'`);
  const text = memberContent(indexMember).toString('utf8');
  const root = parseXmlSpans(text);
  const top = root && format.topList(root);
  if (!root || !top) throw new Unreadable(`'${format.index}' does not parse`);
  const layerMembers = new Set<string>();

  const layersIn = (list: XmlNode): TreeLayer<ZipLayerData>[] => {
    const out: TreeLayer<ZipLayerData>[] = [];
    for (const element of list.children) {
      const kind = format.layerOf(element);
      if (!kind) continue;
      const [before, after] =
        kind.group && kind.list
          ? around(text, element, kind.list)
          : [text.slice(element.start, element.end), ''];
      // The layer's own content as structure: its element and the non-layer elements
      // inside it (masks), each with its attributes less the ignored ones (member
      // names, renumbered on save); child layers are parts of their own.
      const refs: FileRef[] = [];
      const own = (node: XmlNode): unknown => {
        refs.push(...format.fileRefs(node, root, members));
        const attributes = Object.entries(node.attributes)
          .filter(([k]) => !format.ignored.has(k))
          .sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0));
        const children = node.children
          .filter((c) => c !== kind.list && !format.layerOf(c))
          .map(own);
        return [node.name, attributes, children];
      };
      const key = JSON.stringify(own(element));
      for (const ref of refs) for (const m of ref.members.values()) layerMembers.add(m.name);
      out.push({
        name: element.attributes['name'] ?? '',
        uid: format.uid === undefined ? undefined : element.attributes[format.uid],
        group: kind.group,
        children: kind.group && kind.list ? layersIn(kind.list) : [],
        data: {
          attributes: element.attributes,
          key,
          files: refs,
          before,
          after,
        },
      });
    }
    return out;
  };
  return {
    members,
    text,
    root,
    shell: around(text, root, top),
    layers: layersIn(top),
    layerMembers,
  };
}

function sameLayer(a: ZipLayerData, b: ZipLayerData): Promise<boolean> {
  if (a.key !== b.key || a.files.length !== b.files.length) return Promise.resolve(false);
  for (const [i, x] of a.files.entries()) {
    const y = b.files[i]!;
    if (x.members.size !== y.members.size) return Promise.resolve(false);
    for (const [suffix, m] of x.members)
      if (!sameMember(m, y.members.get(suffix))) return Promise.resolve(false);
  }
  return Promise.resolve(true);
}

/** Writes the merged layers' index text and assigns their members names no other layer uses. */
function writeLayers(
  merged: readonly MergedLayer<ZipLayerData>[],
  used: Set<string>,
  out: ZipMember[],
): string {
  const parts: string[] = [];
  for (const m of merged) {
    let { before } = m.layer.data;
    for (const ref of m.layer.data.files) {
      let value = ref.value;
      // A name is taken when any member it would name is, even one this layer lacks
      // (a Krita group names a file it does not have).
      const suffixes = ['', ...ref.members.keys()];
      const taken = (v: string) => suffixes.some((s) => used.has(ref.nameOf(v, s)));
      for (let n = 2; taken(value); n++) value = ref.value.replace(/(\.[^./]*)?$/, `-${n}$1`);
      for (const suffix of suffixes) used.add(ref.nameOf(value, suffix));
      for (const [suffix, member] of ref.members)
        out.push(renamed(member, ref.nameOf(value, suffix)));
      if (value !== ref.value) {
        const old = `${ref.attribute}="${escapeAttribute(ref.value)}"`;
        before = before.replace(old, `${ref.attribute}="${escapeAttribute(value)}"`);
      }
    }
    const children = m.children.length > 0 ? `\n${writeLayers(m.children, used, out)}\n` : '';
    parts.push(before + children + m.layer.data.after);
  }
  return parts.join('\n');
}

/** The largest document read whole. */
const MAX_BYTES = 256 * 1024 * 1024;

export function zipDocumentStrategy(format: ZipFormat): MergeStrategy {
  return {
    name: format.name,
    accepts: (f) => f.format === format.format,
    maxBytes: MAX_BYTES,
    async describe(before, after): Promise<string[]> {
      if (Math.max(before.size, after.size) > MAX_BYTES) return [];
      try {
        const read = async (access: RandomAccess) =>
          readDocument(format, await readZipMembers(await readWhole(access), format.format));
        const [a, b] = [await read(before), await read(after)];
        return describeLayerChanges(a.layers, b.layers, sameLayer);
      } catch {
        return [];
      }
    },
    async merge(input): Promise<StrategyResult> {
      const bytes = await readSides(input);
      const docs: Partial<Record<Side, ZipDocument>> = {};
      for (const [i, side] of (['base', 'ours', 'theirs'] as const).entries()) {
        try {
          docs[side] = readDocument(format, await readZipMembers(bytes[i]!, format.format));
        } catch (error) {
          return {
            declined: `${side} is not a ${format.format.toUpperCase()} this strategy reads (${(error as Error).message})`,
          };
        }
      }
      const { base, ours, theirs } = docs as Record<Side, ZipDocument>;

      // The document shell (the index less its layers) as one part.
      const shell = (d: ZipDocument) => d.shell.join('\u0000');
      let shellSide: Side;
      if (shell(base) === shell(theirs) || shell(ours) === shell(theirs)) shellSide = 'ours';
      else if (shell(base) === shell(ours)) shellSide = 'theirs';
      else if (format.canvas(ours.root) !== format.canvas(theirs.root))
        return { conflict: 'the canvas size changed' };
      else return { conflict: 'both sides changed the document properties' };

      const tree = await mergeLayerTrees(
        { base: base.layers, ours: ours.layers, theirs: theirs.layers },
        { same: sameLayer, uidFirst: format.uid !== undefined },
      );
      if ('conflict' in tree || 'declined' in tree) return tree;

      // Members no layer names (other than the index and derived ones) merge whole.
      const own = new Set(['mimetype', format.index, ...format.derived]);
      const others = new Set<string>();
      for (const d of [base, ours, theirs])
        for (const name of d.members.keys())
          if (
            !own.has(name) &&
            !base.layerMembers.has(name) &&
            !ours.layerMembers.has(name) &&
            !theirs.layerMembers.has(name)
          )
            others.add(name);
      const kept: ZipMember[] = [];
      const conflicts: string[] = [];
      for (const name of [...others].sort()) {
        const [b, o, t] = [
          base.members.get(name),
          ours.members.get(name),
          theirs.members.get(name),
        ];
        let take: ZipMember | undefined;
        if (sameMember(o, t) || sameMember(b, t)) take = o;
        else if (sameMember(b, o)) take = t;
        else {
          conflicts.push(`'${name}'`);
          continue;
        }
        if (take) kept.push(take);
      }
      if (conflicts.length > 0) return { conflict: `both sides changed ${conflicts.join(', ')}` };

      const used = new Set<string>([...own, ...kept.map((m) => m.name)]);
      const layerFiles: ZipMember[] = [];
      const layersText = writeLayers(tree.layers, used, layerFiles);
      const [head, tail] = docs[shellSide]!.shell;
      const index = `${head}\n${layersText}\n${tail}`;
      const shellRoot = docs[shellSide]!.root;

      let derived: ZipMember[] | undefined;
      if (!tree.isOurs && format.derive) derived = await format.derive(tree.layers, shellRoot);
      derived ??= format.derived.flatMap((name) => {
        const m = ours.members.get(name);
        return m ? [m] : [];
      });
      const members = [
        newMember('mimetype', Buffer.from(format.mimetype, 'latin1'), true),
        newMember(format.index, Buffer.from(index, 'utf8')),
        ...layerFiles,
        ...kept,
        ...derived,
      ];
      if (members.length > 0xffff)
        return { declined: 'more members than a ZIP without ZIP64 holds' };
      const from = tree.fromTheirs.map((p) => `'${p}'`).join(', ');
      return {
        merged: writeZip(members),
        summary: [
          from ? `layers ${from} from theirs` : 'no layer from theirs',
          tree.orderFromTheirs ? "theirs' layer order" : undefined,
          shellSide === 'theirs' ? "theirs' document properties" : undefined,
        ]
          .filter(Boolean)
          .join('; '),
      };
    },
  };
}
