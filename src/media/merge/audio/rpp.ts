/**
 * Reaper project (.rpp) merge by track and item. An .rpp is text made of
 * nested `<TAG …` … `>` blocks; the project, its tracks and their items are
 * merged part by part: a track is known by its GUID (`<TRACK {…}` or
 * TRACKID), an item by IGUID (else GUID), any other block (FX chains,
 * sources, envelopes, notes) by its tag and occurrence and taken whole, and a
 * property line by its first word (a MARKER by its number too) and
 * occurrence. Lines keep their text, so order and indentation are ours', with
 * theirs' new parts after the part they follow in theirs.
 */
import { readSides, type MergeStrategy, type StrategyResult } from '../../merge-strategy.ts';
import { mergeKeyed, withOccurrence, type Keyed, type PartMerge } from './keyed.ts';

interface RppLine {
  readonly kind: 'line';
  readonly text: string;
}

interface RppBlock {
  readonly kind: 'block';
  readonly tag: string;
  readonly open: string;
  readonly children: readonly Keyed<RppNode>[];
  readonly close: string;
}

type RppNode = RppLine | RppBlock;

interface RppDocument {
  readonly root: RppBlock;
  readonly eol: string;
  readonly finalNewline: boolean;
}

class NotRpp extends Error {}

const GUID = /^\{[0-9A-Fa-f-]+\}$/;
/** Blocks merged part by part; every other block is one part. */
const STRUCTURAL = new Set(['REAPER_PROJECT', 'TRACK', 'ITEM']);
/**
 * Where the view was when each side saved (edit cursor, zoom, selection): not
 * content, so when both sides moved it, ours is kept rather than a conflict.
 */
const VIEW_STATE = new Set([
  'CURSOR',
  'ZOOM',
  'VZOOM',
  'VZOOMEX',
  'SELECTION',
  'SELECTION2',
  'SEL',
]);

function words(text: string): string[] {
  return text.trim().split(/\s+/);
}

function propertyOf(block: RppBlock, name: string): string | undefined {
  for (const { value } of block.children) {
    if (value.kind !== 'line') continue;
    const [key, ...rest] = words(value.text);
    if (key === name) return rest.join(' ');
  }
  return undefined;
}

function identity(node: RppNode): string {
  if (node.kind === 'line') {
    const [first = '', second = ''] = words(node.text);
    return first === 'MARKER' ? `MARKER ${second}` : first;
  }
  if (node.tag === 'TRACK') {
    const guid = words(node.open)[1] ?? propertyOf(node, 'TRACKID');
    if (guid !== undefined && GUID.test(guid)) return `TRACK ${guid}`;
  }
  if (node.tag === 'ITEM') {
    const guid = propertyOf(node, 'IGUID') ?? propertyOf(node, 'GUID');
    if (guid !== undefined && GUID.test(guid)) return `ITEM ${guid}`;
  }
  return `<${node.tag}>`;
}

function keyed(nodes: RppNode[]): Keyed<RppNode>[] {
  const parts = withOccurrence(nodes.map((value) => ({ key: identity(value), value })));
  const guids = parts.filter((p) => /^(TRACK|ITEM) \{/.test(p.key) && p.key.includes('#'));
  if (guids.length > 0) throw new NotRpp(`${guids[0]!.key.split('#')[0]} appears twice`);
  return parts;
}

export function parseRpp(text: string): RppDocument {
  const eol = text.includes('\r\n') ? '\r\n' : '\n';
  const lines = text.split(/\r?\n/);
  const finalNewline = lines.at(-1) === '';
  if (finalNewline) lines.pop();
  const stack: { tag: string; open: string; nodes: RppNode[] }[] = [];
  let root: RppBlock | undefined;
  for (const [i, line] of lines.entries()) {
    const trimmed = line.trim();
    const top = stack.at(-1);
    if (trimmed.startsWith('<')) {
      if (!top && root) throw new NotRpp(`a second top-level block at line ${i + 1}`);
      stack.push({ tag: words(trimmed.slice(1))[0] ?? '', open: line, nodes: [] });
    } else if (trimmed === '>') {
      const done = stack.pop();
      if (!done) throw new NotRpp(`'>' without a block at line ${i + 1}`);
      const block: RppBlock = {
        kind: 'block',
        tag: done.tag,
        open: done.open,
        children: STRUCTURAL.has(done.tag)
          ? keyed(done.nodes)
          : done.nodes.map((value, n) => ({ key: String(n), value })),
        close: line,
      };
      const parent = stack.at(-1);
      if (parent) parent.nodes.push(block);
      else root = block;
    } else if (top) top.nodes.push({ kind: 'line', text: line });
    else if (trimmed !== '') throw new NotRpp(`text outside the project at line ${i + 1}`);
  }
  if (stack.length > 0) throw new NotRpp(`block <${stack.at(-1)!.tag}> is not closed`);
  if (!root || root.tag !== 'REAPER_PROJECT') throw new NotRpp('no <REAPER_PROJECT block');
  return { root, eol, finalNewline };
}

function render(node: RppNode, out: string[]): void {
  if (node.kind === 'line') {
    out.push(node.text);
    return;
  }
  out.push(node.open);
  for (const child of node.children) render(child.value, out);
  out.push(node.close);
}

function textOf(node: RppNode): string {
  const out: string[] = [];
  render(node, out);
  return out.join('\n');
}

function unquote(value: string): string {
  return value
    .replace(/^"(.*)"$/, '$1')
    .replace(/^'(.*)'$/, '$1')
    .replace(/^`(.*)`$/, '$1');
}

/** How a conflict names a block: "track 'Drums'", "item 'kick.wav' (track 'Drums')". */
function nameOf(block: RppBlock, context: string): string {
  const name = propertyOf(block, 'NAME');
  const shown =
    name !== undefined && name !== '' && name !== '""'
      ? `'${unquote(name)}'`
      : (words(block.open)[1] ?? '');
  if (block.tag === 'TRACK') return `track ${shown}`.trim();
  if (block.tag === 'ITEM') return `item ${shown}${context ? ` (${context})` : ''}`.trim();
  return `${context} block <${block.tag}>`.trim();
}

/**
 * Reaper writes the time of saving at the end of the project's first line:
 * both sides saving is not a change both made. The header merges as the rest
 * of the line does, with the later of the two times.
 */
function savedBoth(base: RppBlock, ours: RppBlock, theirs: RppBlock): string | undefined {
  if (ours.tag !== 'REAPER_PROJECT') return undefined;
  const split = (line: string) => {
    const match = /^(.*\s)(\d+)\s*$/.exec(line);
    return match ? { head: match[1]!, time: Number(match[2]) } : undefined;
  };
  const [b, o, t] = [split(base.open), split(ours.open), split(theirs.open)];
  if (!b || !o || !t) return undefined;
  const head =
    o.head === t.head || b.head === t.head ? o.head : b.head === o.head ? t.head : undefined;
  return head === undefined ? undefined : `${head}${Math.max(o.time, t.time)}`;
}

function mergeBlock(
  base: RppBlock,
  ours: RppBlock,
  theirs: RppBlock,
  self: string,
): PartMerge<RppNode> {
  const pick = (x: string, y: string, z: string) =>
    y === z || x === z ? y : x === y ? z : undefined;
  const open = pick(base.open, ours.open, theirs.open) ?? savedBoth(base, ours, theirs);
  const conflicts: string[] = open === undefined ? [`${self} header`] : [];
  const find = (key: string) =>
    [ours, theirs, base]
      .map((b) => b.children.find((c) => c.key === key)?.value)
      .find((n) => n !== undefined);
  const childName = (key: string): string => {
    const node = find(key);
    if (node?.kind === 'block') return nameOf(node, self === 'project' ? '' : self);
    return `${self} property ${key}`;
  };
  const result = mergeKeyed(base.children, ours.children, theirs.children, {
    same: (x, y) => textOf(x) === textOf(y),
    name: childName,
    both: (key, b, o, t) => {
      if (
        b.kind === 'block' &&
        o.kind === 'block' &&
        t.kind === 'block' &&
        STRUCTURAL.has(o.tag) &&
        b.tag === o.tag &&
        t.tag === o.tag
      ) {
        return mergeBlock(b, o, t, nameOf(o, self === 'project' ? '' : self));
      }
      if (o.kind === 'line' && VIEW_STATE.has(key.split('#')[0]!)) return { value: o };
      return { conflicts: [childName(key)] };
    },
  });
  conflicts.push(...result.conflicts);
  if (conflicts.length > 0 || open === undefined) return { conflicts };
  return { value: { ...ours, open, children: result.merged } };
}

export const rppMergeStrategy: MergeStrategy = {
  name: 'reaper-tracks',
  accepts: (format) => format.format === 'rpp',
  maxBytes: 64 * 1024 * 1024,
  async merge(input): Promise<StrategyResult> {
    const texts = (await readSides(input)).map((bytes) => bytes.toString('utf8'));
    let docs: RppDocument[];
    try {
      docs = texts.map(parseRpp);
    } catch (error) {
      if (error instanceof NotRpp)
        return { declined: `not a Reaper project this merge reads: ${error.message}` };
      throw error;
    }
    const [base, ours, theirs] = docs as [RppDocument, RppDocument, RppDocument];
    const result = mergeBlock(base.root, ours.root, theirs.root, 'project');
    if ('conflicts' in result)
      return { conflict: `both sides changed ${result.conflicts.join(', ')}` };
    const lines: string[] = [];
    render(result.value, lines);
    const text = lines.join(ours.eol) + (ours.finalNewline ? ours.eol : '');
    return {
      merged: Buffer.from(text, 'utf8'),
      summary: 'merged Reaper project by track and item',
    };
  },
};
