/**
 * MP4/MOV: a change of tags on one side merges with a change of streams on
 * the other, without re-encoding and without holding the media in memory.
 *
 * A file is two parts. Its streams: every top-level box but `moov`, `free`
 * and `skip` (mdat's payload hashed through the RandomAccess input in
 * bounded reads), and `moov` without its tags, its chunk offsets taken
 * relative to the first mdat's payload so that moving mdat is no change.
 * Its tags: each child of `moov/udta` (QuickTime user data, `©nam`...), each
 * item of `moov/udta/meta/ilst` (iTunes-style tags, what ffmpeg writes for
 * MP4), the other children of `udta/meta`, and `moov/meta` (QuickTime
 * metadata) whole. Tags merge tag by tag; streams merge whole: one side's, or
 * a conflict when both changed them.
 *
 * The merged file is the stream side's file with a new `moov` (its own
 * children, with `udta` and `meta` rebuilt from the merged tags): pieces that
 * copy the stream side's bytes before and after moov around the new moov.
 * When moov precedes mdat, the chunk offsets (stco/co64) are moved by the
 * change in moov's size. Fragmented files (moof) are declined.
 */
import { createHash, type Hash } from 'node:crypto';
import type { RandomAccess } from '../../info/random-access.ts';
import type { MergeStrategy, Side, SidePiece, StrategyResult } from '../../merge-strategy.ts';

interface Box {
  readonly type: string;
  readonly start: number;
  readonly header: number;
  readonly end: number;
}

/** The largest `moov` read into memory. */
const MAX_MOOV = 64 * 1024 * 1024;
/** How much of mdat is hashed per read. */
const HASH_SPAN = 8 * 1024 * 1024;

class NotMp4 extends Error {}

function boxesIn(data: Buffer, start: number, end: number): Box[] {
  const out: Box[] = [];
  for (let at = start; at < end;) {
    if (at + 8 > end) throw new NotMp4(`a box header at byte ${at} runs past its parent`);
    let size = data.readUInt32BE(at);
    let header = 8;
    if (size === 1) {
      if (at + 16 > end) throw new NotMp4(`a box header at byte ${at} runs past its parent`);
      size = Number(data.readBigUInt64BE(at + 8));
      header = 16;
    } else if (size === 0) size = end - at;
    if (size < header || at + size > end) {
      throw new NotMp4(
        `box '${data.toString('latin1', at + 4, at + 8)}' at ${at} runs past its parent`,
      );
    }
    out.push({ type: data.toString('latin1', at + 4, at + 8), start: at, header, end: at + size });
    at += size;
  }
  return out;
}

async function topBoxes(access: RandomAccess): Promise<Box[]> {
  const out: Box[] = [];
  for (let at = 0; at < access.size;) {
    const head = await access.read(at, 16);
    if (head.length < 8) throw new NotMp4(`a box header at byte ${at} is cut short`);
    let size = head.readUInt32BE(0);
    let header = 8;
    if (size === 1) {
      if (head.length < 16) throw new NotMp4(`a box header at byte ${at} is cut short`);
      size = Number(head.readBigUInt64BE(8));
      header = 16;
    } else if (size === 0) size = access.size - at;
    const type = head.toString('latin1', 4, 8);
    if (!/^[\x20-\x7e\xa9]{4}$/.test(type)) throw new NotMp4(`no box at byte ${at}`);
    if (size < header || at + size > access.size) {
      throw new NotMp4(`box '${type}' at ${at} runs past the end of the file`);
    }
    out.push({ type, start: at, header, end: at + size });
    at += size;
  }
  return out;
}

const bytesOf = (data: Buffer, box: Box) => data.subarray(box.start, box.end);

function makeBox(type: string, ...parts: Buffer[]): Buffer {
  const head = Buffer.alloc(8);
  const length = 8 + parts.reduce((n, part) => n + part.length, 0);
  head.writeUInt32BE(length, 0);
  head.write(type, 4, 'latin1');
  return Buffer.concat([head, ...parts]);
}

/** Tag names ffprobe shows, for messages. */
const TAG_NAMES: Record<string, string> = {
  '©nam': 'title',
  '©ART': 'artist',
  '©alb': 'album',
  aART: 'album_artist',
  '©cmt': 'comment',
  '©day': 'date',
  '©too': 'encoder',
  '©gen': 'genre',
  '©wrt': 'composer',
  desc: 'description',
  ldes: 'synopsis',
  cprt: 'copyright',
};

interface Mp4 {
  readonly size: number;
  readonly top: readonly Box[];
  readonly moovBox: Box;
  readonly moov: Buffer;
  /** Tags by key ("ilst/©nam", "udta/©nam", "udta/meta/hdlr", "moov/meta"): each box's bytes. */
  readonly tags: Map<string, Buffer>;
  /** Everything but the tags, as a digest. */
  readonly streams: string;
  /** The first mdat's payload offset (chunk offsets are relative to it). */
  readonly mdatBody: number;
}

function numberedKeys(keys: readonly string[]): string[] {
  const seen = new Map<string, number>();
  return keys.map((key) => {
    const n = (seen.get(key) ?? 0) + 1;
    seen.set(key, n);
    return n === 1 ? key : `${key}#${n}`;
  });
}

function ilstKey(data: Buffer, item: Box): string {
  if (item.type !== '----') return `ilst/${item.type}`;
  const name = boxesIn(data, item.start + item.header, item.end).find((b) => b.type === 'name');
  return name ? `ilst/----:${data.toString('utf8', name.start + 12, name.end)}` : 'ilst/----';
}

/** The moov's tags, by key, in file order. */
function tagsOf(moov: Buffer): Map<string, Buffer> {
  const keys: string[] = [];
  const values: Buffer[] = [];
  const add = (key: string, value: Buffer) => {
    keys.push(key);
    values.push(value);
  };
  for (const child of boxesIn(moov, 8, moov.length)) {
    if (child.type === 'meta') add('moov/meta', bytesOf(moov, child));
    if (child.type !== 'udta') continue;
    for (const entry of boxesIn(moov, child.start + child.header, child.end)) {
      if (entry.type !== 'meta') {
        add(`udta/${entry.type}`, bytesOf(moov, entry));
        continue;
      }
      for (const part of boxesIn(moov, entry.start + entry.header + 4, entry.end)) {
        if (part.type !== 'ilst') {
          add(`udta/meta/${part.type}`, bytesOf(moov, part));
          continue;
        }
        for (const item of boxesIn(moov, part.start + part.header, part.end)) {
          add(ilstKey(moov, item), bytesOf(moov, item));
        }
      }
    }
  }
  const unique = numberedKeys(keys);
  return new Map(unique.map((key, i) => [key, values[i]!]));
}

const CONTAINERS = new Set(['trak', 'mdia', 'minf', 'stbl', 'edts', 'dinf']);

/** Calls `visit` with every stco/co64 box in moov (their entries are chunk offsets). */
function chunkOffsetBoxes(moov: Buffer, visit: (box: Box) => void): void {
  const walk = (start: number, end: number) => {
    for (const box of boxesIn(moov, start, end)) {
      if (CONTAINERS.has(box.type)) walk(box.start + box.header, box.end);
      else if (box.type === 'stco' || box.type === 'co64') visit(box);
    }
  };
  walk(8, moov.length);
}

/** Moves every chunk offset at or after `from` by `delta`; false if one no longer fits. */
function shiftChunkOffsets(moov: Buffer, from: number, delta: number): boolean {
  let fits = true;
  chunkOffsetBoxes(moov, (box) => {
    const at = box.start + box.header;
    if (box.end - at < 8) throw new NotMp4(`${box.type} is cut short`);
    const count = moov.readUInt32BE(at + 4);
    const wide = box.type === 'co64';
    if (at + 8 + count * (wide ? 8 : 4) > box.end) throw new NotMp4(`${box.type} is cut short`);
    for (let i = 0; i < count; i++) {
      const p = at + 8 + i * (wide ? 8 : 4);
      const offset = wide ? Number(moov.readBigUInt64BE(p)) : moov.readUInt32BE(p);
      if (offset < from) continue;
      const moved = offset + delta;
      if (moved < 0) fits = false;
      else if (wide) moov.writeBigUInt64BE(BigInt(moved), p);
      else if (moved > 0xffffffff) fits = false;
      else moov.writeUInt32BE(moved, p);
    }
  });
  return fits;
}

async function hashRange(access: RandomAccess, hash: Hash, start: number, end: number) {
  for (let at = start; at < end;) {
    const data = await access.read(at, Math.min(HASH_SPAN, end - at));
    if (data.length === 0) throw new NotMp4(`the file ends at byte ${at}`);
    hash.update(data);
    at += data.length;
  }
}

async function readMp4(access: RandomAccess): Promise<Mp4> {
  const top = await topBoxes(access);
  const moovs = top.filter((box) => box.type === 'moov');
  if (moovs.length !== 1) throw new NotMp4(`${moovs.length} moov boxes`);
  if (top.some((box) => box.type === 'moof')) throw new NotMp4('a fragmented file (moof)');
  const moovBox = moovs[0]!;
  if (moovBox.end - moovBox.start > MAX_MOOV) throw new NotMp4('moov is larger than 64 MiB');
  let moov: Buffer = Buffer.from(await access.read(moovBox.start, moovBox.end - moovBox.start));
  if (moovBox.header === 16) {
    // The same box with a 32-bit size, so the rest reads one way.
    moov = makeBox('moov', moov.subarray(16));
  }
  const mdat = top.find((box) => box.type === 'mdat');
  const mdatBody = mdat ? mdat.start + mdat.header : 0;
  const tags = tagsOf(moov);

  const hash = createHash('sha256');
  for (const box of top) {
    if (box.type === 'moov' || box.type === 'free' || box.type === 'skip') continue;
    hash.update(`${box.type}:${box.end - box.start - box.header}:`);
    await hashRange(access, hash, box.start + box.header, box.end);
  }
  const streamsOnly = Buffer.concat(
    boxesIn(moov, 8, moov.length)
      .filter((box) => box.type !== 'udta' && box.type !== 'meta')
      .map((box) => bytesOf(moov, box)),
  );
  const normalized = makeBox('moov', Buffer.from(streamsOnly));
  shiftChunkOffsets(normalized, 0, -mdatBody);
  hash.update('moov:');
  hash.update(normalized);
  return { size: access.size, top, moovBox, moov, tags, streams: hash.digest('hex'), mdatBody };
}

function tagLabel(key: string): string {
  const type = key.replace(/^(ilst|udta|udta\/meta)\//, '').replace(/#\d+$/, '');
  const name = TAG_NAMES[type];
  if (key === 'moov/meta') return "tags 'moov/meta' (QuickTime metadata)";
  return name ? `tag '${name}' (${type})` : `tag '${type}'`;
}

const same = (a: Buffer | undefined, b: Buffer | undefined) =>
  a === undefined ? b === undefined : b !== undefined && a.equals(b);

/** The three sides' tags merged tag by tag, or the tags both changed. */
function mergeTags(
  b: Map<string, Buffer>,
  o: Map<string, Buffer>,
  t: Map<string, Buffer>,
): Map<string, Buffer> | string[] {
  const out = new Map<string, Buffer>();
  const conflicts: string[] = [];
  for (const key of new Set([...o.keys(), ...t.keys(), ...b.keys()])) {
    const [bv, ov, tv] = [b.get(key), o.get(key), t.get(key)];
    let value: Buffer | undefined;
    if (same(ov, tv) || same(bv, tv)) value = ov;
    else if (same(bv, ov)) value = tv;
    else {
      conflicts.push(tagLabel(key));
      continue;
    }
    if (value) out.set(key, value);
  }
  return conflicts.length > 0 ? conflicts : out;
}

/**
 * The stream side's moov with its tags replaced by `tags`: udta (and its
 * meta and ilst) rebuilt in the stream side's order, tags it lacks appended
 * in their container; undefined when a tag's container is missing there.
 */
function rebuildMoov(moov: Buffer, tags: Map<string, Buffer>): Buffer | undefined {
  const placed = new Set<string>();
  const take = (key: string): Buffer[] => {
    placed.add(key);
    const value = tags.get(key);
    return value ? [value] : [];
  };
  const rest = (prefix: RegExp) =>
    [...tags.keys()].filter((key) => prefix.test(key) && !placed.has(key)).flatMap(take);
  const ownTags = tagsOf(moov);
  const ownKeys = [...ownTags.keys()];
  const children: Buffer[] = [];
  let udtaSeen = false;
  let keyAt = 0;
  const nextKey = () => ownKeys[keyAt++]!;
  for (const child of boxesIn(moov, 8, moov.length)) {
    if (child.type === 'meta') {
      children.push(...take(nextKey()));
      continue;
    }
    if (child.type !== 'udta') {
      children.push(bytesOf(moov, child));
      continue;
    }
    udtaSeen = true;
    const entries: Buffer[] = [];
    for (const entry of boxesIn(moov, child.start + child.header, child.end)) {
      if (entry.type !== 'meta') {
        entries.push(...take(nextKey()));
        continue;
      }
      const parts: Buffer[] = [
        moov.subarray(entry.start + entry.header, entry.start + entry.header + 4),
      ];
      for (const part of boxesIn(moov, entry.start + entry.header + 4, entry.end)) {
        if (part.type !== 'ilst') {
          parts.push(...take(nextKey()));
          continue;
        }
        const items: Buffer[] = [];
        const count = boxesIn(moov, part.start + part.header, part.end).length;
        for (let i = 0; i < count; i++) items.push(...take(nextKey()));
        items.push(...rest(/^ilst\//));
        parts.push(makeBox('ilst', ...items));
      }
      parts.push(...rest(/^udta\/meta\//));
      entries.push(makeBox('meta', ...parts));
    }
    entries.push(...rest(/^udta\/(?!meta\/)/));
    children.push(makeBox('udta', ...entries));
  }
  if (!udtaSeen) {
    const entries = rest(/^udta\/(?!meta\/)/);
    if (entries.length > 0) children.push(makeBox('udta', ...entries));
  }
  if (!placed.has('moov/meta') && tags.has('moov/meta')) children.push(...take('moov/meta'));
  if ([...tags.keys()].some((key) => !placed.has(key))) return undefined;
  return makeBox('moov', ...children);
}

const SIDES: readonly Side[] = ['base', 'ours', 'theirs'];

export const mp4MergeStrategy: MergeStrategy = {
  name: 'mp4-tags',
  accepts: (format) =>
    format.format === 'mp4' || format.format === 'mov' || format.format === 'm4v',
  maxBytes: Infinity,
  async merge(input): Promise<StrategyResult> {
    const files: Mp4[] = [];
    for (const side of SIDES) {
      try {
        files.push(await readMp4(input[side]));
      } catch (error) {
        if (error instanceof NotMp4) return { declined: `${side}: ${error.message}` };
        throw error;
      }
    }
    const [b, o, t] = files as [Mp4, Mp4, Mp4];
    let streamSide: Side;
    if (o.streams === t.streams || t.streams === b.streams) streamSide = 'ours';
    else if (o.streams === b.streams) streamSide = 'theirs';
    else return { conflict: 'both sides changed the streams' };
    const tags = mergeTags(b.tags, o.tags, t.tags);
    if (Array.isArray(tags)) return { conflict: `both sides changed ${tags.join(', ')}` };
    const from = streamSide === 'ours' ? o : t;
    const tagSide = streamSide === 'ours' ? 'theirs' : 'ours';
    const sameTags =
      tags.size === from.tags.size &&
      [...tags].every(([key, value]) => same(from.tags.get(key), value));
    if (sameTags) {
      return {
        merged: { pieces: [{ side: streamSide, offset: 0, length: from.size }] },
        summary: `streams and tags from ${streamSide}`,
      };
    }
    const moov = rebuildMoov(from.moov, tags);
    if (!moov)
      return { conflict: `the tags cannot be placed in ${streamSide}'s moov (no udta/meta/ilst)` };
    const delta = moov.length - (from.moovBox.end - from.moovBox.start);
    if (from.moovBox.end <= from.mdatBody && !shiftChunkOffsets(moov, from.moovBox.end, delta)) {
      return { conflict: 'the merged tags push a chunk offset past 4 GiB (stco)' };
    }
    const pieces: (Uint8Array | SidePiece)[] = [
      { side: streamSide, offset: 0, length: from.moovBox.start },
      moov,
      { side: streamSide, offset: from.moovBox.end, length: from.size - from.moovBox.end },
    ];
    return {
      merged: { pieces: pieces.filter((piece) => piece.length > 0) },
      summary: `streams from ${streamSide}, tags merged with ${tagSide}'s`,
    };
  },
  async describe(before, after) {
    let b: Mp4;
    let a: Mp4;
    try {
      [b, a] = [await readMp4(before), await readMp4(after)];
    } catch (error) {
      if (error instanceof NotMp4) return [];
      throw error;
    }
    const lines = [b.streams === a.streams ? 'streams unchanged' : 'streams changed'];
    for (const key of new Set([...b.tags.keys(), ...a.tags.keys()])) {
      const [x, y] = [b.tags.get(key), a.tags.get(key)];
      if (!x) lines.push(`${tagLabel(key)} added`);
      else if (!y) lines.push(`${tagLabel(key)} removed`);
      else if (!x.equals(y)) lines.push(`${tagLabel(key)} changed`);
    }
    if (lines.length === 1) lines.push('tags unchanged');
    return lines;
  },
};
