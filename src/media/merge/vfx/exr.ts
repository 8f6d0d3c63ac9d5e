/**
 * OpenEXR merge by part. A multi-part file (version flag 0x1000) is a list
 * of headers (one per part, each a list of attributes; `name`, `type` and
 * `chunkCount` are required), one offset table per part, and chunks, each
 * prefixed with its part's number. A part (identity: its `name`) is its
 * header's bytes and its chunks' bytes; a part one side changed takes that
 * side's version, one both changed differently is a conflict, one a side
 * added is kept and one a side deleted (and the other left alone) dropped.
 *
 * The merged file is written as pieces: the chosen headers, new offset
 * tables, and every chunk copied from its side behind its new part number;
 * nothing is decoded and the inputs are read in bounded pieces, so the
 * strategy takes files of any size. A single-part file is one part: only
 * one side may change it.
 */
import { createHash } from 'node:crypto';
import type { RandomAccess } from '../../info/random-access.ts';
import type {
  MergeInput,
  MergeStrategy,
  Side,
  SidePiece,
  StrategyResult,
} from '../../merge-strategy.ts';
import { mergeOrder } from './order.ts';

const MAGIC = 20000630;
const TILED = 0x200;
const LONG_NAMES = 0x400;
const NON_IMAGE = 0x800;
const MULTIPART = 0x1000;
/** The largest read the strategy makes at once. */
const SPAN = 1024 * 1024;
/** More chunks than this in one part is not a file we believe. */
const MAX_CHUNKS = 1 << 22;

export class ExrParseError extends Error {}

export interface ExrPart {
  readonly name: string;
  readonly type: string;
  /** The header's bytes, its terminating zero included. */
  readonly headerOffset: number;
  readonly headerLength: number;
  /** Each chunk: where it starts (at its part number) and its whole length. */
  readonly chunks: readonly { readonly offset: number; readonly length: number }[];
}

export interface ExrLayout {
  readonly flags: number;
  readonly multipart: boolean;
  /** The parts of a multi-part file; empty for a single-part one. */
  readonly parts: readonly ExrPart[];
}

/** Sequential reads through a RandomAccess, a window at a time. */
class Cursor {
  readonly #access: RandomAccess;
  #window = Buffer.alloc(0);
  #windowAt = 0;
  at: number;

  constructor(access: RandomAccess, at: number) {
    this.#access = access;
    this.at = at;
  }

  async bytes(length: number): Promise<Buffer> {
    if (this.at + length > this.#access.size)
      throw new ExrParseError(`truncated at byte ${this.at}`);
    const end = this.#windowAt + this.#window.length;
    if (this.at < this.#windowAt || this.at + length > end) {
      this.#windowAt = this.at;
      this.#window = Buffer.from(await this.#access.read(this.at, Math.max(length, 64 * 1024)));
    }
    const start = this.at - this.#windowAt;
    this.at += length;
    return this.#window.subarray(start, start + length);
  }

  async int32(): Promise<number> {
    return (await this.bytes(4)).readInt32LE(0);
  }

  /** A zero-terminated name of at most `max` bytes. */
  async text(max: number): Promise<string> {
    const start = this.at;
    const head = await this.bytes(Math.min(max + 1, this.#access.size - start));
    const zero = head.indexOf(0);
    if (zero < 0) throw new ExrParseError(`an unterminated name at byte ${start}`);
    this.at = start + zero + 1;
    return head.subarray(0, zero).toString('latin1');
  }
}

/** Reads one header: its attributes' values that the merge needs, and where it ends. */
async function readHeader(
  cursor: Cursor,
  longNames: boolean,
): Promise<{ empty: boolean; attributes: Map<string, Buffer> }> {
  const attributes = new Map<string, Buffer>();
  const max = longNames ? 255 : 31;
  for (;;) {
    const name = await cursor.text(max);
    if (name === '') return { empty: attributes.size === 0, attributes };
    const type = await cursor.text(max);
    const size = await cursor.int32();
    if (size < 0) throw new ExrParseError(`attribute '${name}' has a negative size`);
    if (name === 'name' || name === 'type' || name === 'chunkCount') {
      if (size > 4096) throw new ExrParseError(`attribute '${name}' is too long`);
      attributes.set(name, Buffer.from(await cursor.bytes(size)));
      if (name === 'chunkCount' && type !== 'int')
        throw new ExrParseError('chunkCount is not an int');
    } else {
      cursor.at += size;
    }
  }
}

/** The length of the chunk at `offset` of a part of `type`, checking its part number. */
async function chunkLength(
  access: RandomAccess,
  offset: number,
  type: string,
  part: number,
): Promise<number> {
  const head = Buffer.from(await access.read(offset, Math.min(44, access.size - offset)));
  if (head.length < 12 || head.readInt32LE(0) !== part) {
    throw new ExrParseError(`the chunk at ${offset} is not part ${part}'s`);
  }
  const deepSizes = (at: number): number => {
    if (head.length < at + 24) throw new ExrParseError(`truncated chunk at ${offset}`);
    const table = Number(head.readBigUInt64LE(at));
    const samples = Number(head.readBigUInt64LE(at + 8));
    return at + 24 + table + samples;
  };
  let length: number;
  if (type === 'scanlineimage') length = 12 + head.readInt32LE(8);
  else if (type === 'tiledimage') {
    if (head.length < 24) throw new ExrParseError(`truncated chunk at ${offset}`);
    length = 24 + head.readInt32LE(20);
  } else if (type === 'deepscanline') length = deepSizes(8);
  else if (type === 'deeptile') length = deepSizes(20);
  else throw new ExrParseError(`unknown part type '${type}'`);
  if (length < 12 || offset + length > access.size) {
    throw new ExrParseError(`the chunk at ${offset} runs past the end of the file`);
  }
  return length;
}

/** Reads an EXR file's structure; throws ExrParseError for what is not a valid one. */
export async function readExrLayout(access: RandomAccess): Promise<ExrLayout> {
  const cursor = new Cursor(access, 0);
  const head = await cursor.bytes(8);
  if (head.readInt32LE(0) !== MAGIC) throw new ExrParseError('no OpenEXR magic number');
  const version = head.readInt32LE(4);
  if ((version & 0xff) !== 2) throw new ExrParseError(`file format version ${version & 0xff}`);
  const flags = version & ~0xff;
  const multipart = (flags & MULTIPART) !== 0;
  const longNames = (flags & LONG_NAMES) !== 0;
  if (!multipart) {
    const { attributes } = await readHeader(cursor, longNames);
    if (attributes.size === 0 && cursor.at <= 9) throw new ExrParseError('an empty header');
    return { flags, multipart, parts: [] };
  }
  if (flags & TILED) throw new ExrParseError('the single-tile flag on a multi-part file');
  const headers: { offset: number; length: number; attributes: Map<string, Buffer> }[] = [];
  for (;;) {
    const offset = cursor.at;
    const { empty, attributes } = await readHeader(cursor, longNames);
    if (empty) break;
    headers.push({ offset, length: cursor.at - offset, attributes });
  }
  if (headers.length === 0) throw new ExrParseError('a multi-part file with no parts');
  const counts = headers.map(({ attributes }, index) => {
    const count = attributes.get('chunkCount')?.readInt32LE(0);
    if (count === undefined || count < 0 || count > MAX_CHUNKS) {
      throw new ExrParseError(`part ${index} has no valid chunkCount`);
    }
    return count;
  });
  const parts: ExrPart[] = [];
  const names = new Set<string>();
  for (const [index, header] of headers.entries()) {
    const name = header.attributes.get('name')?.toString('latin1').replace(/\0+$/, '');
    const type = header.attributes.get('type')?.toString('latin1').replace(/\0+$/, '');
    if (name === undefined || type === undefined) {
      throw new ExrParseError(`part ${index} has no name or type`);
    }
    if (names.has(name)) throw new ExrParseError(`two parts named '${name}'`);
    names.add(name);
    const count = counts[index] ?? 0;
    const chunks: { offset: number; length: number }[] = [];
    // The table a slice at a time: a part may have many chunks.
    for (let i = 0; i < count; i++) {
      const offset = Number((await cursor.bytes(8)).readBigUInt64LE(0));
      if (offset < 8 || offset >= access.size) {
        throw new ExrParseError(`part '${name}' has an incomplete offset table`);
      }
      chunks.push({ offset, length: 0 });
    }
    for (const chunk of chunks) chunk.length = await chunkLength(access, chunk.offset, type, index);
    parts.push({ name, type, headerOffset: header.offset, headerLength: header.length, chunks });
  }
  return { flags, multipart, parts };
}

/** A digest of `length` bytes at `offset`, read SPAN at a time. */
async function digestRange(
  access: RandomAccess,
  offset: number,
  length: number,
  hash = createHash('sha256'),
): Promise<ReturnType<typeof createHash>> {
  for (let at = 0; at < length;) {
    const data = await access.read(offset + at, Math.min(SPAN, length - at));
    if (data.length === 0) throw new ExrParseError(`short read at ${offset + at}`);
    hash.update(data);
    at += data.length;
  }
  return hash;
}

/** A part's digest: its header's bytes and its chunks' bytes after the part number. */
async function partDigest(access: RandomAccess, part: ExrPart): Promise<string> {
  const hash = await digestRange(access, part.headerOffset, part.headerLength);
  for (const chunk of part.chunks) {
    hash.update(`|${chunk.length}|`);
    await digestRange(access, chunk.offset + 4, chunk.length - 4, hash);
  }
  return hash.digest('hex');
}

async function fileDigest(access: RandomAccess): Promise<string> {
  return (await digestRange(access, 0, access.size)).digest('hex');
}

interface Chosen {
  readonly side: Side;
  readonly part: ExrPart;
  readonly flags: number;
}

/** The merged multi-part file as pieces: headers, offset tables, then each part's chunks. */
function writeParts(parts: readonly Chosen[]): (Uint8Array | SidePiece)[] {
  let flags = 2 | MULTIPART;
  for (const { flags: from, part } of parts) {
    flags |= from & LONG_NAMES;
    if (part.type.startsWith('deep')) flags |= NON_IMAGE;
  }
  const head = Buffer.alloc(8);
  head.writeInt32LE(MAGIC, 0);
  head.writeInt32LE(flags, 4);
  const pieces: (Uint8Array | SidePiece)[] = [head];
  let at = 8;
  for (const { side, part } of parts) {
    pieces.push({ side, offset: part.headerOffset, length: part.headerLength });
    at += part.headerLength;
  }
  pieces.push(Buffer.alloc(1));
  at += 1;
  const chunkTotal = parts.reduce((sum, { part }) => sum + part.chunks.length, 0);
  const tables = Buffer.alloc(chunkTotal * 8);
  pieces.push(tables);
  at += tables.length;
  let slot = 0;
  for (const [index, { side, part }] of parts.entries()) {
    for (const chunk of part.chunks) {
      tables.writeBigUInt64LE(BigInt(at), slot * 8);
      slot++;
      const number = Buffer.alloc(4);
      number.writeInt32LE(index, 0);
      pieces.push(number, { side, offset: chunk.offset + 4, length: chunk.length - 4 });
      at += chunk.length;
    }
  }
  return pieces;
}

class PartConflict extends Error {}

async function mergeExr(input: MergeInput): Promise<StrategyResult> {
  const layouts: Partial<Record<Side, ExrLayout>> = {};
  for (const side of ['base', 'ours', 'theirs'] as const) {
    try {
      layouts[side] = await readExrLayout(input[side]);
    } catch (error) {
      if (error instanceof ExrParseError) {
        return { declined: `${side} is not an OpenEXR file this merge reads (${error.message})` };
      }
      throw error;
    }
  }
  const [base, ours, theirs] = await Promise.all(
    [input.base, input.ours, input.theirs].map((access) => fileDigest(access)),
  );
  const whole = (side: Side): StrategyResult => ({
    merged: { pieces: [{ side, offset: 0, length: input[side].size }] },
    summary: `OpenEXR file from ${side}`,
  });
  if (ours === theirs || base === theirs) return whole('ours');
  if (base === ours) return whole('theirs');
  const [b, o, t] = [layouts.base, layouts.ours, layouts.theirs];
  if (!b?.multipart || !o?.multipart || !t?.multipart) {
    return { conflict: 'both sides changed the image (a single-part file is one part)' };
  }
  const digests = async (side: Side, layout: ExrLayout) =>
    new Map(
      await Promise.all(
        layout.parts.map(async (part) => [part.name, await partDigest(input[side], part)] as const),
      ),
    );
  const [bd, od, td] = [
    await digests('base', b),
    await digests('ours', o),
    await digests('theirs', t),
  ];
  const byName = (layout: ExrLayout) => new Map(layout.parts.map((part) => [part.name, part]));
  const [op, tp] = [byName(o), byName(t)];
  const chosen = new Map<string, Chosen>();
  try {
    for (const name of new Set([...od.keys(), ...td.keys(), ...bd.keys()])) {
      const [bv, ov, tv] = [bd.get(name), od.get(name), td.get(name)];
      let side: 'ours' | 'theirs' | undefined;
      if (ov === tv || bv === tv) side = ov === undefined ? undefined : 'ours';
      else if (bv === ov) side = tv === undefined ? undefined : 'theirs';
      else if (bv === undefined) throw new PartConflict(`both sides added part '${name}'`);
      else if (ov === undefined)
        throw new PartConflict(`ours deleted part '${name}' that theirs changed`);
      else if (tv === undefined)
        throw new PartConflict(`theirs deleted part '${name}' that ours changed`);
      else throw new PartConflict(`both sides changed part '${name}'`);
      const part = side === 'ours' ? op.get(name) : side === 'theirs' ? tp.get(name) : undefined;
      if (side && part) chosen.set(name, { side, part, flags: (side === 'ours' ? o : t).flags });
    }
  } catch (error) {
    if (error instanceof PartConflict) return { conflict: error.message };
    throw error;
  }
  if (chosen.size === 0) return { conflict: 'the merge deletes every part' };
  const order = mergeOrder(
    o.parts.map((part) => part.name),
    t.parts.map((part) => part.name),
    (name) => chosen.has(name),
  );
  const parts = order.map((name) => chosen.get(name) as Chosen);
  const fromTheirs = parts.filter((part) => part.side === 'theirs').map((part) => part.part.name);
  return {
    merged: { pieces: writeParts(parts) },
    summary: `merged OpenEXR parts (from theirs: ${fromTheirs.join(', ') || 'none'})`,
  };
}

async function describeExr(before: RandomAccess, after: RandomAccess): Promise<string[]> {
  let old: ExrLayout;
  let now: ExrLayout;
  try {
    [old, now] = [await readExrLayout(before), await readExrLayout(after)];
  } catch (error) {
    if (error instanceof ExrParseError)
      return [`not an OpenEXR file this reads (${error.message})`];
    throw error;
  }
  if (!old.multipart || !now.multipart) {
    return [
      (await fileDigest(before)) === (await fileDigest(after))
        ? 'image unchanged'
        : 'image changed',
    ];
  }
  const lines: string[] = [];
  const oldParts = new Map(old.parts.map((part) => [part.name, part]));
  for (const part of now.parts) {
    const previous = oldParts.get(part.name);
    if (!previous) lines.push(`part '${part.name}' added`);
    else {
      const same = (await partDigest(before, previous)) === (await partDigest(after, part));
      lines.push(`part '${part.name}' ${same ? 'unchanged' : 'changed'}`);
    }
  }
  for (const name of oldParts.keys()) {
    if (!now.parts.some((part) => part.name === name)) lines.push(`part '${name}' deleted`);
  }
  return lines;
}

export const exrMergeStrategy: MergeStrategy = {
  name: 'exr-parts',
  accepts: (format) => format.format === 'exr',
  maxBytes: Infinity,
  merge: mergeExr,
  describe: describeExr,
};
