/**
 * An XML reader that remembers where each element lies in the text, so a
 * merge can rewrite an index (ORA `stack.xml`, Krita `maindoc.xml`) by
 * splicing the sides' own text: a layer is written as its side wrote it,
 * and only the lists of layers are rebuilt. Elements and attributes only;
 * text, comments, CDATA and processing instructions are kept as text.
 */

export interface XmlNode {
  readonly name: string;
  readonly attributes: Readonly<Record<string, string>>;
  readonly children: XmlNode[];
  /** Offset of `<`. */
  readonly start: number;
  /** Offset just after the start tag's `>`. */
  readonly openEnd: number;
  /** Offset of the closing tag's `<` (equals openEnd for `<x/>`). */
  closeStart: number;
  /** Offset just after the element. */
  end: number;
  readonly selfClosing: boolean;
}

/** Parses `text`; undefined when tags do not nest. */
export function parseXmlSpans(text: string): XmlNode | undefined {
  const root: XmlNode = {
    name: '',
    attributes: {},
    children: [],
    start: 0,
    openEnd: 0,
    closeStart: text.length,
    end: text.length,
    selfClosing: false,
  };
  const stack: XmlNode[] = [root];
  const tag =
    /<(\/?)([A-Za-z_][\w:.-]*)((?:\s+[\w:.-]+\s*=\s*(?:"[^"]*"|'[^']*'))*)\s*(\/?)>|<!--[\s\S]*?-->|<\?[\s\S]*?\?>|<!\[CDATA\[[\s\S]*?\]\]>|<![^>]*>/g;
  const attribute = /([\w:.-]+)\s*=\s*(?:"([^"]*)"|'([^']*)')/g;
  for (const match of text.matchAll(tag)) {
    const [whole, closing, name, attrs, selfClosing] = match;
    if (name === undefined) continue;
    const start = match.index;
    const end = start + whole.length;
    if (closing) {
      const open = stack.pop();
      if (!open || open === root || open.name !== name) return undefined;
      open.closeStart = start;
      open.end = end;
      continue;
    }
    const attributes: Record<string, string> = {};
    for (const a of (attrs ?? '').matchAll(attribute))
      attributes[a[1]!] = decodeEntities(a[2] ?? a[3] ?? '');
    const element: XmlNode = {
      name,
      attributes,
      children: [],
      start,
      openEnd: end,
      closeStart: end,
      end,
      selfClosing: Boolean(selfClosing),
    };
    stack.at(-1)!.children.push(element);
    if (!selfClosing) stack.push(element);
  }
  return stack.length === 1 ? root : undefined;
}

function decodeEntities(text: string): string {
  return text.replace(/&(#x[0-9a-f]+|#\d+|amp|lt|gt|quot|apos);/gi, (_, entity: string) => {
    const lower = entity.toLowerCase();
    if (lower.startsWith('#x')) return String.fromCodePoint(parseInt(lower.slice(2), 16));
    if (lower.startsWith('#')) return String.fromCodePoint(Number(lower.slice(1)));
    return { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" }[lower]!;
  });
}

export function escapeAttribute(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/"/g, '&quot;');
}

/** The first descendant named `name`, depth first. */
export function findElement(node: XmlNode, name: string): XmlNode | undefined {
  for (const child of node.children) {
    if (child.name === name) return child;
    const found = findElement(child, name);
    if (found) return found;
  }
  return undefined;
}

/**
 * An element's text with the content of `list` (one of its descendants)
 * cut out: the part before and after that content. A self-closing `list`
 * is opened, so content can go in.
 */
export function around(text: string, element: XmlNode, list: XmlNode): [string, string] {
  if (list.selfClosing) {
    const open = text.slice(list.start, list.end).replace(/\s*\/>$/, '>');
    return [
      text.slice(element.start, list.start) + open,
      `</${list.name}>` + text.slice(list.end, element.end),
    ];
  }
  return [text.slice(element.start, list.openEnd), text.slice(list.closeStart, element.end)];
}
