/**
 * Metadata chunks both sides changed, merged field by field: bext (EBU Tech
 * 3285) by its fixed fields and coding history, LIST chunks (INFO tags, adtl
 * labels) by sub-chunk, cue points by id, iXML by top-level element. Each
 * function takes the three chunk bodies and returns the merged body, or the
 * parts both sides changed differently, or undefined when a body does not
 * have the chunk's structure (the caller then treats the chunk as one part).
 */
import { mergeKeyed, withOccurrence, type Keyed, type PartMerge } from './keyed.ts';

type Bodies = readonly [Buffer, Buffer, Buffer];
export type FieldMerge = PartMerge<Buffer> | undefined;

const sameBuffer = (a: Buffer, b: Buffer) => a.equals(b);

/** bext's fixed fields (byte ranges) ahead of the coding history. */
const BEXT_FIELDS: readonly [string, number, number][] = [
  ['Description', 0, 256],
  ['Originator', 256, 288],
  ['OriginatorReference', 288, 320],
  ['OriginationDate', 320, 330],
  ['OriginationTime', 330, 338],
  ['TimeReference', 338, 346],
  ['Version', 346, 348],
  ['UMID', 348, 412],
  ['LoudnessValue', 412, 414],
  ['LoudnessRange', 414, 416],
  ['MaxTruePeakLevel', 416, 418],
  ['MaxMomentaryLoudness', 418, 420],
  ['MaxShortTermLoudness', 420, 422],
  ['Reserved', 422, 602],
];
const BEXT_FIXED = 602;

function bextFields(body: Buffer): Keyed<Buffer>[] {
  const fields = BEXT_FIELDS.map(([key, start, end]) => ({
    key,
    value: body.subarray(start, end),
  }));
  fields.push({ key: 'CodingHistory', value: body.subarray(BEXT_FIXED) });
  return fields;
}

export function mergeBext(bodies: Bodies): FieldMerge {
  if (bodies.some((body) => body.length < BEXT_FIXED)) return undefined;
  const [b, o, t] = bodies.map(bextFields) as [Keyed<Buffer>[], Keyed<Buffer>[], Keyed<Buffer>[]];
  const result = mergeKeyed(b, o, t, { same: sameBuffer, name: (key) => `bext field '${key}'` });
  if (result.conflicts.length > 0) return { conflicts: result.conflicts };
  return { value: Buffer.concat(result.merged.map((field) => field.value)) };
}

/** A LIST body's sub-chunks keyed by id (and, in adtl, by the cue point they label). */
function listItems(body: Buffer, little: boolean): Keyed<Buffer>[] | undefined {
  const type = body.toString('latin1', 0, 4);
  const items: { key: string; value: Buffer }[] = [];
  for (let at = 4; at < body.length;) {
    if (at + 8 > body.length) return undefined;
    const id = body.toString('latin1', at, at + 4);
    const size = little ? body.readUInt32LE(at + 4) : body.readUInt32BE(at + 4);
    const end = at + 8 + size;
    if (end > body.length) return undefined;
    let key = `'${id}'`;
    if (type === 'adtl' && size >= 4) key = `cue ${body.readUInt32LE(at + 8)} '${id}'`;
    items.push({ key, value: body.subarray(at, Math.min(end + (size & 1), body.length)) });
    at = end + (size & 1);
  }
  return withOccurrence(items);
}

export function mergeList(bodies: Bodies, little: boolean): FieldMerge {
  const type = bodies[1].toString('latin1', 0, 4);
  if (bodies.some((body) => body.length < 4 || body.toString('latin1', 0, 4) !== type))
    return undefined;
  const [b, o, t] = bodies.map((body) => listItems(body, little));
  if (!b || !o || !t) return undefined;
  const label = type === 'INFO' ? 'INFO tag' : `LIST ${type} item`;
  const result = mergeKeyed(b, o, t, { same: sameBuffer, name: (key) => `${label} ${key}` });
  if (result.conflicts.length > 0) return { conflicts: result.conflicts };
  const items = result.merged.map((item) => {
    // A sub-chunk of odd size that ended the list without its pad byte gets one.
    const size = little ? item.value.readUInt32LE(4) : item.value.readUInt32BE(4);
    return item.value.length < 8 + size + (size & 1)
      ? Buffer.concat([item.value, Buffer.alloc(1)])
      : item.value;
  });
  return { value: Buffer.concat([Buffer.from(type, 'latin1'), ...items]) };
}

const CUE_POINT = 24;

function cuePoints(body: Buffer): Keyed<Buffer>[] | undefined {
  if (body.length < 4) return undefined;
  const count = body.readUInt32LE(0);
  if (4 + count * CUE_POINT > body.length) return undefined;
  const points: Keyed<Buffer>[] = [];
  const ids = new Set<number>();
  for (let i = 0; i < count; i++) {
    const point = body.subarray(4 + i * CUE_POINT, 4 + (i + 1) * CUE_POINT);
    const id = point.readUInt32LE(0);
    if (ids.has(id)) return undefined;
    ids.add(id);
    points.push({ key: String(id), value: point });
  }
  return points;
}

export function mergeCue(bodies: Bodies): FieldMerge {
  const [b, o, t] = bodies.map(cuePoints);
  if (!b || !o || !t) return undefined;
  const result = mergeKeyed(b, o, t, { same: sameBuffer, name: (key) => `cue point ${key}` });
  if (result.conflicts.length > 0) return { conflicts: result.conflicts };
  const count = Buffer.alloc(4);
  count.writeUInt32LE(result.merged.length);
  return { value: Buffer.concat([count, ...result.merged.map((point) => point.value)]) };
}

interface XmlDocument {
  /** Up to and including the root's start tag. */
  readonly head: string;
  /** Each top-level element with the text ahead of it. */
  readonly elements: Keyed<{ readonly lead: string; readonly text: string }>[];
  /** From the whitespace before the root's end tag to the end. */
  readonly tail: string;
}

const TAG =
  /<!--[\s\S]*?-->|<!\[CDATA\[[\s\S]*?\]\]>|<\?[\s\S]*?\?>|<!DOCTYPE[^>]*>|<(\/?)([A-Za-z_][\w.:-]*)[^>]*?(\/?)>/g;

/** The top level of an iXML document, or undefined when it is not that simple a shape. */
export function parseXmlTopLevel(text: string): XmlDocument | undefined {
  TAG.lastIndex = 0;
  let match: RegExpExecArray | null;
  let root: string | undefined;
  let head = '';
  while ((match = TAG.exec(text))) {
    if (match[2] === undefined) continue;
    if (match[1] || match[3]) return undefined;
    root = match[2];
    head = text.slice(0, TAG.lastIndex);
    break;
  }
  if (root === undefined) return undefined;
  const parts: { key: string; value: { lead: string; text: string } }[] = [];
  let at = TAG.lastIndex;
  for (;;) {
    TAG.lastIndex = at;
    match = TAG.exec(text);
    if (!match) return undefined;
    const lead = text.slice(at, match.index);
    if (lead.trim() !== '') return undefined;
    if (match[2] === undefined) {
      parts.push({ key: '#comment', value: { lead, text: match[0] } });
      at = TAG.lastIndex;
      continue;
    }
    if (match[1]) {
      if (match[2] !== root) return undefined;
      return { head, elements: withOccurrence(parts), tail: text.slice(at) };
    }
    const name = match[2];
    const start = match.index;
    let depth = match[3] ? 0 : 1;
    while (depth > 0) {
      const inner = TAG.exec(text);
      if (!inner) return undefined;
      if (inner[2] === undefined) continue;
      if (inner[1]) depth--;
      else if (!inner[3]) depth++;
    }
    parts.push({ key: name, value: { lead, text: text.slice(start, TAG.lastIndex) } });
    at = TAG.lastIndex;
  }
}

export function mergeIxml(bodies: Bodies): FieldMerge {
  const docs = bodies.map((body) => parseXmlTopLevel(body.toString('utf8')));
  const [b, o, t] = docs;
  if (!b || !o || !t) return undefined;
  const pick = (x: string, y: string, z: string): string | undefined =>
    y === z || x === z ? y : x === y ? z : undefined;
  const head = pick(b.head, o.head, t.head);
  const tail = pick(b.tail, o.tail, t.tail);
  const result = mergeKeyed(b.elements, o.elements, t.elements, {
    same: (x, y) => x.text === y.text,
    name: (key) => `iXML element '${key}'`,
  });
  const conflicts = [...result.conflicts];
  if (head === undefined) conflicts.unshift('iXML root element');
  if (tail === undefined) conflicts.push('iXML text after the root element');
  if (conflicts.length > 0 || head === undefined || tail === undefined) return { conflicts };
  const text = head + result.merged.map((e) => e.value.lead + e.value.text).join('') + tail;
  return { value: Buffer.from(text, 'utf8') };
}

/** The field merge for a chunk, by its id; undefined for chunks merged only whole. */
export function fieldMergeFor(
  id: string,
  little: boolean,
): ((bodies: Bodies) => FieldMerge) | undefined {
  if (!little) return undefined;
  if (id === 'bext') return mergeBext;
  if (id === 'LIST') return (bodies) => mergeList(bodies, little);
  if (id === 'cue ') return mergeCue;
  if (id === 'iXML') return mergeIxml;
  return undefined;
}
