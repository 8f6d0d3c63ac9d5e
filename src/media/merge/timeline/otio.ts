/**
 * OpenTimelineIO (`.otio`) merge by track and clip; design in
 * docs/merge/timeline.md.
 *
 * A track is known by its name (else by its kind and its place among the
 * tracks of that kind); a clip by its media (ExternalReference target_url,
 * else the reference's name, else the clip's name) and its source_range, and
 * when that exact pair is gone on a side, by its media alone if one clip of
 * that media went away and one came (a trim). Gaps and transitions have no
 * identity of their own: they are known by the item before them. The
 * timeline's, stack's and tracks' own fields merge field by field; a clip
 * merges whole (one side's version, or a conflict); tracks and clips merge
 * their order as sequence.ts explains, moves included.
 *
 * The result is the timeline's JSON written as OTIO writes it (4-space
 * indent), with every object's keys in the order a side had them and every
 * number as a side wrote it.
 */
import { readSides, type MergeStrategy, type StrategyResult } from '../../merge-strategy.ts';
import type { RandomAccess } from '../../info/random-access.ts';
import {
  canonical,
  isObject,
  parseJson,
  sameJson,
  writeJson,
  type JsonObject,
  type JsonValue,
} from './json.ts';
import {
  mergeSequence,
  movedKeys,
  SequenceTooLong,
  type Keyed,
  type PartOutcome,
  type SequenceResult,
} from './sequence.ts';

interface Timeline {
  readonly root: JsonObject;
  readonly stack: JsonObject;
  readonly tracks: readonly JsonObject[];
}

const schemaOf = (value: JsonObject): string =>
  typeof value.OTIO_SCHEMA === 'string' ? value.OTIO_SCHEMA : '';
const schemaName = (value: JsonObject): string => schemaOf(value).replace(/\.\d+$/, '');
const nameOf = (value: JsonObject): string => (typeof value.name === 'string' ? value.name : '');

/** The timeline, or why the text is not one this strategy reads. */
export function readTimeline(text: string): Timeline | string {
  let root: JsonValue;
  try {
    root = parseJson(text);
  } catch (error) {
    return `not JSON (${(error as Error).message})`;
  }
  if (!isObject(root) || !/^Timeline\.\d+$/.test(schemaOf(root))) return 'not an OTIO Timeline';
  const stack = root.tracks;
  if (!isObject(stack) || !/^Stack\.\d+$/.test(schemaOf(stack)) || !Array.isArray(stack.children)) {
    return "the timeline's tracks are not a Stack with children";
  }
  const tracks: JsonObject[] = [];
  for (const track of stack.children) {
    if (
      !isObject(track) ||
      !/^Track\.\d+$/.test(schemaOf(track)) ||
      !Array.isArray(track.children)
    ) {
      return 'a child of the top Stack is not a Track with children';
    }
    if (!track.children.every((item) => isObject(item) && schemaOf(item) !== '')) {
      return `track '${nameOf(track)}' holds an item without OTIO_SCHEMA`;
    }
    tracks.push(track);
  }
  return { root, stack, tracks };
}

function itemsOf(track: JsonObject): JsonObject[] {
  return (track.children as JsonValue[]).filter(isObject);
}

/** The clip's media: its active reference's target_url, else that reference's name. */
function mediaOf(clip: JsonObject): string | undefined {
  let reference = clip.media_reference;
  if (isObject(clip.media_references) && typeof clip.active_media_reference_key === 'string') {
    reference = clip.media_references[clip.active_media_reference_key];
  }
  if (isObject(reference)) {
    if (typeof reference.target_url === 'string' && reference.target_url !== '') {
      return reference.target_url;
    }
    if (nameOf(reference) !== '') return `reference '${nameOf(reference)}'`;
  }
  return nameOf(clip) !== '' ? `clip '${nameOf(clip)}'` : undefined;
}

/** Appends "#2", "#3"... to repeated keys, in order. */
function numbered(keys: readonly string[]): string[] {
  const seen = new Map<string, number>();
  return keys.map((key) => {
    const n = (seen.get(key) ?? 0) + 1;
    seen.set(key, n);
    return n === 1 ? key : `${key} #${n}`;
  });
}

/**
 * The track's items with their identities; `base` (when keying a side)
 * lets a clip whose source_range changed keep its base identity.
 */
export function keyItems(
  items: readonly JsonObject[],
  base?: readonly Keyed<JsonObject>[],
): Keyed<JsonObject>[] {
  const raw = items.map((item) => {
    const name = schemaName(item);
    if (name === 'Clip') {
      return `clip ${mediaOf(item) ?? '?'} @ ${canonical(item.source_range)}`;
    }
    if (name === 'Gap' || name === 'Transition' || nameOf(item) === '') return '';
    return `${name} '${nameOf(item)}'`;
  });
  const keys = numbered(raw).map((key, i) => (raw[i] === '' ? '' : key));
  if (base) {
    // A trim: the one clip of a media that left base, matched to the one that came.
    const mediaKey = (key: string) => key.replace(/ @ .*$/, '');
    const baseKeys = new Set(base.map((item) => item.key));
    const sideKeys = new Set(keys);
    const gone = new Map<string, string[]>();
    for (const { key } of base) {
      if (key.startsWith('clip ') && !sideKeys.has(key)) {
        gone.set(mediaKey(key), [...(gone.get(mediaKey(key)) ?? []), key]);
      }
    }
    const came = new Map<string, number[]>();
    keys.forEach((key, i) => {
      if (key.startsWith('clip ') && !baseKeys.has(key)) {
        came.set(mediaKey(key), [...(came.get(mediaKey(key)) ?? []), i]);
      }
    });
    for (const [media, indexes] of came) {
      const left = gone.get(media);
      if (indexes.length === 1 && left?.length === 1) keys[indexes[0]!] = left[0]!;
    }
  }
  // Gaps, transitions and unnamed items: known by the item before them.
  const labels: string[] = [];
  for (let i = 0; i < items.length; i++) {
    const item = items[i]!;
    const name = schemaName(item);
    if (keys[i] === '') {
      const before = i === 0 ? 'start' : keys[i - 1]!;
      keys[i] = `${name} after ${before}`;
      const lowered = name.toLowerCase();
      labels.push(i === 0 ? `${lowered} at the start` : `${lowered} after ${labels[i - 1]!}`);
    } else if (name === 'Clip') {
      labels.push(`clip '${nameOf(item) !== '' ? nameOf(item) : (mediaOf(item) ?? '?')}'`);
    } else labels.push(`${name.toLowerCase()} '${nameOf(item)}'`);
  }
  const unique = numbered(keys);
  return items.map((value, i) => ({ key: unique[i]!, label: labels[i]!, value }));
}

/** Tracks known by name when it is unique, else by kind and place among that kind. */
export function keyTracks(tracks: readonly JsonObject[]): Keyed<JsonObject>[] {
  const names = tracks.map(nameOf);
  const counts = new Map<string, number>();
  return tracks.map((value, i) => {
    const kind = typeof value.kind === 'string' ? value.kind : 'Track';
    const n = (counts.get(kind) ?? 0) + 1;
    counts.set(kind, n);
    const name = names[i]!;
    if (name !== '' && names.indexOf(name) === names.lastIndexOf(name)) {
      return { key: `track '${name}'`, label: `track '${name}'`, value };
    }
    return { key: `${kind} track ${n}`, label: `${kind} track ${n}`, value };
  });
}

/** One part merged whole: one side's version, deleted, or a conflict. */
function wholePart(
  b: Keyed<JsonObject> | undefined,
  o: Keyed<JsonObject> | undefined,
  t: Keyed<JsonObject> | undefined,
  where: string,
): PartOutcome<JsonObject> {
  const label = (o ?? t ?? b)!.label;
  const [bv, ov, tv] = [b?.value, o?.value, t?.value];
  if (ov && tv) {
    if (sameJson(ov, tv) || (bv && sameJson(bv, tv))) return { value: ov };
    if (bv && sameJson(bv, ov)) return { value: tv };
    return { conflict: `both sides changed ${label}${where}` };
  }
  const kept = ov ?? tv;
  if (!bv) return { value: kept! };
  if (!kept) return { deleted: true };
  if (sameJson(bv, kept)) return { deleted: true };
  return { conflict: `both sides changed ${label}${where} (one side deleted it)` };
}

/**
 * An object's own fields merged field by field, `children` aside: keys in
 * ours' order, then theirs' new ones; the `children` slot keeps its place
 * for the caller to fill.
 */
function mergeFields(
  b: JsonObject,
  o: JsonObject,
  t: JsonObject,
  children: string,
  label: string,
  conflicts: string[],
): JsonObject {
  const out: JsonObject = {};
  const keys = [...new Set([...Object.keys(o), ...Object.keys(t)])];
  for (const key of keys) {
    if (key === children) {
      out[key] = [];
      continue;
    }
    const [bv, ov, tv] = [b[key], o[key], t[key]];
    let value: JsonValue | undefined;
    if (sameJson(ov, tv) || sameJson(bv, tv)) value = ov;
    else if (sameJson(bv, ov)) value = tv;
    else {
      conflicts.push(`both sides changed ${key} of ${label}`);
      continue;
    }
    if (value !== undefined) out[key] = value;
  }
  return out;
}

function mergeTrack(
  b: Keyed<JsonObject> | undefined,
  o: Keyed<JsonObject> | undefined,
  t: Keyed<JsonObject> | undefined,
): PartOutcome<JsonObject> {
  if (!b || !o || !t) return wholePart(b, o, t, '');
  const conflicts: string[] = [];
  const track = mergeFields(b.value, o.value, t.value, 'children', o.label, conflicts);
  const baseItems = keyItems(itemsOf(b.value));
  const result = mergeSequence(
    baseItems,
    keyItems(itemsOf(o.value), baseItems),
    keyItems(itemsOf(t.value), baseItems),
    (bi, oi, ti) => wholePart(bi, oi, ti, ` in ${o.label}`),
    o.label,
  );
  if ('conflicts' in result) conflicts.push(...result.conflicts);
  else track.children = result.items.map((item) => item.value);
  return conflicts.length > 0 ? { conflict: conflicts.join('; ') } : { value: track };
}

export type TimelineMerge =
  { readonly text: string; readonly summary: string } | { readonly conflict: string };

/** Merges three OTIO timelines' texts; a string when one does not read. */
export function mergeTimelines(base: string, ours: string, theirs: string): TimelineMerge | string {
  const b = readTimeline(base);
  if (typeof b === 'string') return `base: ${b}`;
  const o = readTimeline(ours);
  if (typeof o === 'string') return `ours: ${o}`;
  const t = readTimeline(theirs);
  if (typeof t === 'string') return `theirs: ${t}`;
  const conflicts: string[] = [];
  const root = mergeFields(b.root, o.root, t.root, 'tracks', 'the timeline', conflicts);
  const stack = mergeFields(b.stack, o.stack, t.stack, 'children', 'the top stack', conflicts);
  root.tracks = stack;
  let result: SequenceResult<JsonObject>;
  try {
    result = mergeSequence(
      keyTracks(b.tracks),
      keyTracks(o.tracks),
      keyTracks(t.tracks),
      mergeTrack,
      'the timeline',
    );
  } catch (error) {
    if (error instanceof SequenceTooLong)
      return `too many items to detect moves (${error.message})`;
    throw error;
  }
  if ('conflicts' in result) conflicts.push(...result.conflicts);
  if (conflicts.length > 0 || 'conflicts' in result) return { conflict: conflicts.join('; ') };
  stack.children = result.items.map((track) => track.value);
  const newline = ours.endsWith('\n') ? '\n' : '';
  const text = writeJson(root) + newline;
  const clips = result.items.reduce((n, track) => n + itemsOf(track.value).length, 0);
  return {
    text,
    summary: `merged OTIO timeline by track and clip (${result.items.length} tracks, ${clips} items)`,
  };
}

/** What changed between two timelines, a line per track and clip. */
export function describeTimelines(before: string, after: string): string[] {
  const [b, a] = [readTimeline(before), readTimeline(after)];
  if (typeof b === 'string' || typeof a === 'string') return [];
  const lines: string[] = [];
  const field = (x: JsonObject, y: JsonObject, skip: string, label: string) => {
    for (const key of new Set([...Object.keys(x), ...Object.keys(y)])) {
      if (key !== skip && !sameJson(x[key], y[key])) lines.push(`${label} ${key} changed`);
    }
  };
  field(b.root, a.root, 'tracks', 'timeline');
  const [bt, at] = [keyTracks(b.tracks), keyTracks(a.tracks)];
  const atMap = new Map(at.map((track) => [track.key, track]));
  for (const track of bt) if (!atMap.has(track.key)) lines.push(`${track.label} removed`);
  for (const track of at) {
    const old = bt.find((x) => x.key === track.key);
    if (!old) {
      lines.push(`${track.label} added`);
      continue;
    }
    field(old.value, track.value, 'children', track.label);
    const bi = keyItems(itemsOf(old.value));
    const ai = keyItems(itemsOf(track.value), bi);
    const aiMap = new Map(ai.map((item) => [item.key, item]));
    const biMap = new Map(bi.map((item) => [item.key, item]));
    const moved = movedKeys(
      bi.map((x) => x.key),
      ai.map((x) => x.key),
    );
    for (const item of bi)
      if (!aiMap.has(item.key)) lines.push(`${track.label}: ${item.label} removed`);
    for (const item of ai) {
      const was = biMap.get(item.key);
      if (!was) lines.push(`${track.label}: ${item.label} added`);
      else {
        const changes: string[] = [];
        if (!sameJson(was.value, item.value)) changes.push('changed');
        if (moved.has(item.key)) changes.push('moved');
        if (changes.length > 0)
          lines.push(`${track.label}: ${item.label} ${changes.join(' and ')}`);
      }
    }
  }
  return lines;
}

const decoder = new TextDecoder('utf-8', { fatal: true });

async function textOf(access: RandomAccess): Promise<string | undefined> {
  try {
    return decoder.decode(await access.read(0, access.size));
  } catch {
    return undefined;
  }
}

export const otioMergeStrategy: MergeStrategy = {
  name: 'otio-timeline',
  accepts: (format) => format.format === 'otio',
  maxBytes: 64 * 1024 * 1024,
  async merge(input): Promise<StrategyResult> {
    const texts = (await readSides(input)).map((bytes) => {
      try {
        return decoder.decode(bytes);
      } catch {
        return undefined;
      }
    });
    const [base, ours, theirs] = texts;
    if (base === undefined || ours === undefined || theirs === undefined) {
      return { declined: 'a side is not UTF-8 text' };
    }
    const result = mergeTimelines(base, ours, theirs);
    if (typeof result === 'string') return { declined: result };
    if ('conflict' in result) return result;
    return { merged: Buffer.from(result.text), summary: result.summary };
  },
  async describe(before, after) {
    const [b, a] = [await textOf(before), await textOf(after)];
    if (b === undefined || a === undefined) return [];
    return describeTimelines(b, a);
  },
};
