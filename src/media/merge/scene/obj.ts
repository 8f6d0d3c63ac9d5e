/**
 * Wavefront OBJ by `o`/`g` group, and its MTL library by `newmtl` block.
 * Design: docs/merge/scene.md.
 *
 * An OBJ's vertex numbers are global to the file, so a group is compared by
 * its content with every `f`/`l`/`p` reference resolved to the vertex lines
 * it names (negative, relative references included): a group is unchanged
 * when its faces name the same positions, texture coordinates and normals,
 * whatever their numbers. The merged file writes each group from the side it
 * comes from with its vertices renumbered for where they now stand; a vertex
 * another group declared is written again inside the group that uses it.
 */
import {
  readSides,
  readWhole,
  type MergeStrategy,
  type StrategyResult,
} from '../../merge-strategy.ts';
import type { MediaFormat } from '../../detect.ts';
import type { RandomAccess } from '../../info/random-access.ts';
import { mergeOrder, pick3, quoted } from './order.ts';

/** A part of a text file: its identity, its canonical content, and how to write it. */
interface Part {
  readonly key: string;
  readonly content: string;
  /** The part's lines for a merged file (OBJ: renumbered from 1 up at `start`). */
  write(start: Counts): { text: string; end: Counts };
}

type Counts = Readonly<Record<VertexKind, number>>;
type VertexKind = 'v' | 'vt' | 'vn';
const VERTEX_KINDS: readonly VertexKind[] = ['v', 'vt', 'vn'];

class Unmergeable extends Error {}

/** Statements that number vertices too (curves and surfaces): their files are declined. */
const FREE_FORM = new Set([
  'vp',
  'cstype',
  'curv',
  'curv2',
  'surf',
  'parm',
  'trim',
  'hole',
  'scrv',
  'sp',
]);

function decodeText(bytes: Uint8Array): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new Unmergeable('is not UTF-8 text');
  }
}

function lines(text: string): string[] {
  const out = text.split(/\r?\n/);
  if (out.at(-1) === '') out.pop();
  return out;
}

/** A vertex reference of a face: one index per kind (0 = none), absolute, 1-based. */
type Ref = Record<VertexKind, number>;

interface ObjLine {
  readonly text: string;
  /** For v/vt/vn lines: the kind and the vertex's global 1-based number. */
  readonly vertex?: { kind: VertexKind; index: number };
  /** For f/l/p lines: the keyword and the resolved references. */
  readonly element?: { keyword: string; refs: Ref[] };
}

interface ObjGroup {
  readonly key: string;
  readonly lines: ObjLine[];
}

function parseObj(text: string): Part[] {
  const vertices: Record<VertexKind, string[]> = { v: [], vt: [], vn: [] };
  const declaredIn: Record<VertexKind, ObjGroup[]> = { v: [], vt: [], vn: [] };
  const groups: ObjGroup[] = [{ key: '', lines: [] }];
  lines(text).forEach((raw, lineNo) => {
    const tokens = raw.trim().split(/\s+/);
    const keyword = tokens[0] ?? '';
    const group = groups.at(-1)!;
    if (keyword === 'v' || keyword === 'vt' || keyword === 'vn') {
      vertices[keyword].push(tokens.join(' '));
      declaredIn[keyword].push(group);
      group.lines.push({ text: raw, vertex: { kind: keyword, index: vertices[keyword].length } });
    } else if (keyword === 'f' || keyword === 'l' || keyword === 'p') {
      const refs = tokens.slice(1).map((token) => {
        const parts = token.split('/');
        if (parts.length > 3) throw new Unmergeable(`line ${lineNo + 1}: bad vertex '${token}'`);
        const ref: Ref = { v: 0, vt: 0, vn: 0 };
        VERTEX_KINDS.forEach((kind, i) => {
          const part = parts[i];
          if (part === undefined || part === '') {
            if (i === 0) throw new Unmergeable(`line ${lineNo + 1}: a vertex without a position`);
            return;
          }
          if (!/^-?\d+$/.test(part))
            throw new Unmergeable(`line ${lineNo + 1}: bad index '${part}'`);
          const n = Number(part);
          const count = vertices[kind].length;
          const index = n < 0 ? count + n + 1 : n;
          if (n === 0 || index < 1 || index > count) {
            throw new Unmergeable(`line ${lineNo + 1}: ${kind} index ${part} is out of range`);
          }
          ref[kind] = index;
        });
        return ref;
      });
      group.lines.push({ text: raw, element: { keyword, refs } });
    } else if (FREE_FORM.has(keyword)) {
      throw new Unmergeable(`line ${lineNo + 1}: free-form geometry ('${keyword}') is not merged`);
    } else if (keyword === 'o' || keyword === 'g') {
      groups.push({ key: tokens.join(' '), lines: [{ text: raw }] });
    } else {
      group.lines.push({ text: raw });
    }
  });
  if (groups[0]!.lines.length === 0) groups.shift();

  // Which groups use each vertex: one no group uses stays with the group that declares it.
  const used: Record<VertexKind, Set<number>> = { v: new Set(), vt: new Set(), vn: new Set() };
  for (const g of groups) {
    for (const line of g.lines) {
      for (const ref of line.element?.refs ?? []) {
        for (const kind of VERTEX_KINDS) if (ref[kind] > 0) used[kind].add(ref[kind]);
      }
    }
  }
  const vertexText = (kind: VertexKind, index: number) => vertices[kind][index - 1] ?? '';
  return groups.map((g): Part => {
    const mine = new Set<string>();
    for (const line of g.lines) {
      for (const ref of line.element?.refs ?? []) {
        for (const kind of VERTEX_KINDS) if (ref[kind] > 0) mine.add(`${kind}${ref[kind]}`);
      }
    }
    const keep = (line: ObjLine) =>
      line.vertex === undefined ||
      mine.has(`${line.vertex.kind}${line.vertex.index}`) ||
      !used[line.vertex.kind].has(line.vertex.index);
    // Content: the group's text with references as the vertex lines they name.
    const content = g.lines
      .filter((line) => line.vertex === undefined || !used[line.vertex.kind].has(line.vertex.index))
      .map((line) =>
        line.element
          ? `${line.element.keyword} ${line.element.refs
              .map((r) => VERTEX_KINDS.map((k) => (r[k] > 0 ? vertexText(k, r[k]) : '')).join('|'))
              .join(' ; ')}`
          : line.text.trim().split(/\s+/).join(' '),
      )
      .join('\n');
    return {
      key: g.key,
      content,
      write(start) {
        const at: Record<VertexKind, number> = { ...start };
        const out: string[] = [];
        const placed = new Map<string, number>();
        const place = (kind: VertexKind, index: number, text: string) => {
          at[kind] += 1;
          placed.set(`${kind}${index}`, at[kind]);
          out.push(text);
        };
        const [head, ...rest] = g.key === '' ? [undefined, ...g.lines] : g.lines;
        if (head) out.push(head.text);
        // Vertices this group uses that another group declared come first.
        const foreign = [...mine]
          .map((id) => /^(v|vt|vn)(\d+)$/.exec(id)!)
          .map((m) => ({ kind: m[1] as VertexKind, index: Number(m[2]) }))
          .filter(({ kind, index }) => declaredIn[kind][index - 1] !== g)
          .sort(
            (a, b) =>
              VERTEX_KINDS.indexOf(a.kind) - VERTEX_KINDS.indexOf(b.kind) || a.index - b.index,
          );
        for (const { kind, index } of foreign) place(kind, index, vertexText(kind, index));
        for (const line of rest) {
          if (!line) continue;
          if (line.vertex) {
            if (keep(line)) place(line.vertex.kind, line.vertex.index, line.text);
          } else if (line.element) {
            const refs = line.element.refs.map((r) =>
              VERTEX_KINDS.map((k) => (r[k] > 0 ? String(placed.get(`${k}${r[k]}`)) : ''))
                .join('/')
                .replace(/\/+$/, ''),
            );
            out.push([line.element.keyword, ...refs].join(' '));
          } else {
            out.push(line.text);
          }
        }
        return { text: out.map((l) => `${l}\n`).join(''), end: at };
      },
    };
  });
}

function parseMtl(text: string): Part[] {
  const blocks: { key: string; lines: string[] }[] = [{ key: '', lines: [] }];
  for (const raw of lines(text)) {
    const tokens = raw.trim().split(/\s+/);
    if (tokens[0] === 'newmtl') blocks.push({ key: tokens.slice(1).join(' '), lines: [] });
    blocks.at(-1)!.lines.push(raw);
  }
  if (blocks[0]!.lines.length === 0) blocks.shift();
  return blocks.map((b) => ({
    key: b.key,
    content: b.lines.map((l) => l.trim().split(/\s+/).join(' ')).join('\n'),
    write: (start) => ({ text: b.lines.map((l) => `${l}\n`).join(''), end: start }),
  }));
}

interface TextFormat {
  readonly name: string;
  readonly partName: string;
  parse(text: string): Part[];
}

const OBJ: TextFormat = { name: 'OBJ', partName: 'group', parse: parseObj };
const MTL: TextFormat = { name: 'MTL', partName: 'material', parse: parseMtl };

function display(format: TextFormat, key: string): string {
  if (key === '') return `the lines before the first ${format.partName}`;
  const name = format === OBJ ? key.replace(/^[og] /, '') : key;
  return `${format.partName} '${name}'`;
}

function parseParts(format: TextFormat, bytes: Uint8Array): Map<string, Part> {
  const parts = format.parse(decodeText(bytes));
  const byKey = new Map<string, Part>();
  for (const part of parts) {
    if (byKey.has(part.key)) throw new Unmergeable(`repeats ${display(format, part.key)}`);
    byKey.set(part.key, part);
  }
  return byKey;
}

function mergeText(
  format: TextFormat,
  sides: [Uint8Array, Uint8Array, Uint8Array],
): StrategyResult {
  const parsed: Map<string, Part>[] = [];
  for (const [i, bytes] of sides.entries()) {
    try {
      parsed.push(parseParts(format, bytes));
    } catch (error) {
      if (!(error instanceof Unmergeable)) throw error;
      return { declined: `${['base', 'ours', 'theirs'][i]} ${error.message}` };
    }
  }
  const [b, o, t] = parsed as [Map<string, Part>, Map<string, Part>, Map<string, Part>];
  const kept = new Map<string, Part>();
  const conflicts: string[] = [];
  const fromTheirs: string[] = [];
  for (const key of new Set([...o.keys(), ...t.keys()])) {
    const [bp, op, tp] = [b.get(key), o.get(key), t.get(key)];
    const choice = pick3(bp?.content, op?.content, tp?.content);
    if (choice === 'conflict') {
      conflicts.push(
        op && tp
          ? `both sides changed ${display(format, key)}`
          : `${op ? 'theirs' : 'ours'} deleted ${display(format, key)}, which ${op ? 'ours' : 'theirs'} changed`,
      );
    } else if (choice === 'theirs') {
      if (tp) kept.set(key, tp);
      fromTheirs.push(key);
    } else if (op) {
      kept.set(key, op);
    }
  }
  if (conflicts.length > 0) {
    return { conflict: conflicts.join('; ') };
  }
  const order = mergeOrder([...b.keys()], [...o.keys()], [...t.keys()], new Set(kept.keys()));
  if (!order) return { conflict: `both sides reordered the ${format.partName}s` };
  let at: Counts = { v: 0, vt: 0, vn: 0 };
  let text = '';
  for (const key of order) {
    const written = kept.get(key)!.write(at);
    text += written.text;
    at = written.end;
  }
  const names = fromTheirs.map((k) => (k === '' ? '(header)' : k.replace(/^[og] /, '')));
  return {
    merged: Buffer.from(text, 'utf8'),
    summary: `merged ${format.name} ${format.partName}s (from theirs: ${names.length > 0 ? quoted(names) : 'nothing'})`,
  };
}

async function describeText(
  format: TextFormat,
  before: RandomAccess,
  after: RandomAccess,
): Promise<string[]> {
  let a: Map<string, Part>;
  let b: Map<string, Part>;
  try {
    a = parseParts(format, await readWhole(before));
    b = parseParts(format, await readWhole(after));
  } catch (error) {
    if (!(error instanceof Unmergeable)) throw error;
    return [`not compared by ${format.partName}: ${error.message}`];
  }
  const out: string[] = [];
  for (const [key, part] of a) {
    const other = b.get(key);
    if (!other) out.push(`${display(format, key)} removed`);
    else if (other.content !== part.content) out.push(`${display(format, key)} changed`);
  }
  for (const key of b.keys()) if (!a.has(key)) out.push(`${display(format, key)} added`);
  return out.length > 0 ? out : [`${format.partName}s unchanged`];
}

function textStrategy(name: string, format: TextFormat, id: string): MergeStrategy {
  return {
    name,
    accepts: (f: MediaFormat) => f.format === id,
    maxBytes: 256 * 1024 * 1024,
    async merge(input) {
      return mergeText(format, await readSides(input));
    },
    describe: (before, after) => describeText(format, before, after),
  };
}

export const objMergeStrategy = textStrategy('obj-groups', OBJ, 'obj');
export const mtlMergeStrategy = textStrategy('mtl-materials', MTL, 'mtl');
