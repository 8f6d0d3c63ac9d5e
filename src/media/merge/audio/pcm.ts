/**
 * WAV and AIFF merge: the sample frames and each metadata chunk are parts.
 *
 * Samples: when all three share one sample format, one streaming pass finds
 * the runs of frames each side changed against base; runs that do not overlap
 * merge, and the merged samples are pieces copied from the side that changed
 * each run (ours elsewhere). A length change on one side counts as a change
 * of every frame from the shorter length on, so the other side's edits must
 * lie before it; a length or format change on both sides is a conflict,
 * unless both made the same. A format change on one side takes that side's
 * audio whole, if the other left the samples alone.
 *
 * Metadata: chunks are matched by id (a LIST by its type) and occurrence; one
 * only one side changed takes that side's; one both changed merges field by
 * field where its structure is known (metadata.ts), else it is a conflict.
 * The merged file is written in ours' chunk order, its header and metadata
 * built in memory, its samples as pieces of the sides. Design:
 * docs/merge/audio.md.
 */
import type { MediaFormat } from '../../detect.ts';
import type { RandomAccess } from '../../info/random-access.ts';
import type {
  MergeInput,
  MergeStrategy,
  Side,
  SidePiece,
  StrategyResult,
} from '../../merge-strategy.ts';
import { describeFormat, NotAudio, readLayout, type AudioLayout, type Chunk } from './container.ts';
import { mergeKeyed, type Keyed, type PartMerge } from './keyed.ts';
import { fieldMergeFor } from './metadata.ts';
import {
  changedRanges,
  clusters,
  describeRange,
  digestBytes,
  overlaps,
  sameBytes,
  spanAt,
  type FrameRange,
} from './samples.ts';

/** Metadata chunks larger than this are compared whole, never merged field by field. */
const FIELD_MERGE_LIMIT = 16 * 1024 * 1024;

interface Version {
  readonly side: Side;
  readonly access: RandomAccess;
  readonly layout: AudioLayout;
}

/** The merged samples: whose format they have, how many frames, and where each run comes from. */
interface MergedAudio {
  readonly format: Version;
  readonly frames: number;
  readonly pieces: SidePiece[];
  readonly summary: string;
}

type Outcome<T> = T | { readonly conflict: string };

/**
 * Frames [start, end) of one version as pieces, cut where its stored chunks
 * end: the writer then copies views of single chunks, never joined copies.
 */
function piecesOf(version: Version, start: number, end: number): SidePiece[] {
  const pieces: SidePiece[] = [];
  const { layout, access, side } = version;
  let offset = layout.samplesAt + start * layout.frameBytes;
  for (let left = (end - start) * layout.frameBytes; left > 0;) {
    const length = spanAt(access, offset, left);
    pieces.push({ side, offset, length });
    offset += length;
    left -= length;
  }
  return pieces;
}

function whole(version: Version, summary: string): MergedAudio {
  const { layout } = version;
  return {
    format: version,
    frames: layout.frames,
    pieces: piecesOf(version, 0, layout.frames),
    summary,
  };
}

function sameAudio(a: Version, b: Version): Promise<boolean> {
  const [x, y] = [a.layout, b.layout];
  if (x.formatKey !== y.formatKey || x.frames !== y.frames) return Promise.resolve(false);
  return sameBytes(a.access, x.samplesAt, b.access, y.samplesAt, x.frames * x.frameBytes);
}

/** Changed runs closer than 10 ms are shown as one. */
const readableGap = (layout: AudioLayout) => Math.round(layout.sampleRate / 100);

const seconds = (layout: AudioLayout, frames = layout.frames) =>
  `${(frames / layout.sampleRate).toFixed(3)} s`;

async function mergeSamples(
  base: Version,
  ours: Version,
  theirs: Version,
): Promise<Outcome<MergedAudio>> {
  const [lb, lo, lt] = [base.layout, ours.layout, theirs.layout];
  if (lo.formatKey !== lb.formatKey || lt.formatKey !== lb.formatKey) {
    if (await sameAudio(ours, theirs)) return whole(ours, 'samples as both sides changed them');
    if (await sameAudio(base, theirs)) return whole(ours, 'samples from ours');
    if (await sameAudio(base, ours)) return whole(theirs, 'samples from theirs');
    return {
      conflict:
        `the sample format changed (base ${describeFormat(lb)}, ours ${describeFormat(lo)}, ` +
        `theirs ${describeFormat(lt)}) and the other side changed samples`,
    };
  }
  const region = (v: Version) => ({
    access: v.access,
    at: v.layout.samplesAt,
    frames: v.layout.frames,
  });
  const [oursRuns, theirsRuns] = (await changedRanges(
    region(base),
    [region(ours), region(theirs)],
    lb.frameBytes,
  )) as [FrameRange[], FrameRange[]];
  const oursLength = lo.frames !== lb.frames;
  const theirsLength = lt.frames !== lb.frames;
  if (oursRuns.length === 0 && !oursLength) return whole(theirs, 'samples from theirs');
  if (theirsRuns.length === 0 && !theirsLength) return whole(ours, 'samples from ours');
  if (oursLength && theirsLength) {
    if (await sameAudio(ours, theirs)) return whole(ours, 'samples as both sides changed them');
    return {
      conflict: `both sides changed the length (base ${seconds(lb)}, ours ${seconds(lo)}, theirs ${seconds(lt)})`,
    };
  }
  // A length change is a change of every frame from the shorter length on.
  const tail = (layout: AudioLayout): FrameRange => ({
    start: Math.min(layout.frames, lb.frames),
    end: Math.max(layout.frames, lb.frames),
  });
  const oursChanged = oursLength ? [...oursRuns, tail(lo)] : oursRuns;
  const theirsChanged = theirsLength ? [...theirsRuns, tail(lt)] : theirsRuns;
  const common = Math.min(lb.frames, lo.frames, lt.frames);
  const overlapping: FrameRange[] = [];
  const sameEdit = new Set<FrameRange>();
  for (const [x, y] of overlaps(oursChanged, theirsChanged)) {
    const union = { start: Math.min(x.start, y.start), end: Math.max(x.end, y.end) };
    const fb = lb.frameBytes;
    if (
      union.end <= common &&
      (await sameBytes(
        ours.access,
        lo.samplesAt + union.start * fb,
        theirs.access,
        lt.samplesAt + union.start * fb,
        (union.end - union.start) * fb,
      ))
    ) {
      sameEdit.add(y);
      continue;
    }
    overlapping.push({ start: Math.max(x.start, y.start), end: Math.min(x.end, y.end) });
  }
  if (overlapping.length > 0) {
    const spans = clusters(overlapping, readableGap(lb));
    const more = spans.length > 1 ? ` and ${spans.length - 1} more range(s)` : '';
    return {
      conflict: `both sides changed samples ${describeRange(spans[0]!, lb.sampleRate)}${more}`,
    };
  }

  // Ours everywhere (it equals base outside its own runs), theirs over its runs.
  const frames = theirsLength ? lt.frames : lo.frames;
  const pieces: SidePiece[] = [];
  const take = (v: Version, start: number, end: number) => {
    if (end > start) for (const piece of piecesOf(v, start, end)) pieces.push(piece);
  };
  let at = 0;
  const fromTheirs = theirsChanged.filter((range) => !sameEdit.has(range));
  for (const range of fromTheirs) {
    const end = Math.min(range.end, frames);
    take(ours, at, range.start);
    take(theirs, range.start, end);
    at = Math.max(at, end);
  }
  take(ours, at, frames);
  return {
    format: ours,
    frames,
    pieces,
    summary: `samples merged (${oursChanged.length} range(s) from ours, ${fromTheirs.length} from theirs)`,
  };
}

/** A chunk's merged body: a run of one side, or bytes built here. */
type Body =
  | { readonly side: Side; readonly chunk: Chunk }
  | { readonly side?: undefined; readonly bytes: Buffer };

interface ChunkPart {
  readonly id: string;
  readonly body: Body;
  /** Equal digests mean equal bodies; the format and sample chunks are one part, merged above. */
  readonly digest: string;
}

async function chunkParts(version: Version): Promise<Keyed<ChunkPart>[]> {
  const { layout, access, side } = version;
  const parts: Keyed<ChunkPart>[] = [];
  for (const chunk of layout.chunks) {
    const audio = chunk === layout.formatChunk || chunk === layout.soundChunk;
    const digest = audio ? 'audio' : await digestBytes(access, chunk.body, chunk.size);
    parts.push({ key: chunk.key, value: { id: chunk.id, body: { side, chunk }, digest } });
  }
  return parts;
}

async function bodyBytes(body: Body, sides: Record<Side, Version>): Promise<Buffer> {
  if (body.side === undefined) return body.bytes;
  const data = await sides[body.side].access.read(body.chunk.body, body.chunk.size);
  if (data.length !== body.chunk.size) throw new Error(`short read of chunk '${body.chunk.id}'`);
  return Buffer.from(data);
}

async function mergeChunks(
  sides: Record<Side, Version>,
): Promise<Outcome<{ chunks: Keyed<ChunkPart>[]; fromTheirs: string[] }>> {
  const little = sides.ours.layout.kind === 'wav';
  const [b, o, t] = await Promise.all([
    chunkParts(sides.base),
    chunkParts(sides.ours),
    chunkParts(sides.theirs),
  ]);
  // Field merges need the bodies in memory: read those first, then merge synchronously.
  const loaded = new Map<string, [Buffer, Buffer, Buffer]>();
  const find = (parts: Keyed<ChunkPart>[], key: string) => parts.find((p) => p.key === key)?.value;
  for (const { key, value } of o) {
    const [bv, tv] = [find(b, key), find(t, key)];
    if (!bv || !tv || !fieldMergeFor(value.id, little)) continue;
    if (bv.digest === value.digest || bv.digest === tv.digest || value.digest === tv.digest)
      continue;
    const bodies = [bv.body, value.body, tv.body];
    if (bodies.some((body) => body.side !== undefined && body.chunk.size > FIELD_MERGE_LIMIT))
      continue;
    loaded.set(key, [
      await bodyBytes(bv.body, sides),
      await bodyBytes(value.body, sides),
      await bodyBytes(tv.body, sides),
    ]);
  }
  const result = mergeKeyed(b, o, t, {
    same: (x, y) => x.digest === y.digest,
    name: (key) => `chunk '${key}'`,
    both: (key, _bv, ov): PartMerge<ChunkPart> => {
      const bodies = loaded.get(key);
      const merge = fieldMergeFor(ov.id, little);
      const merged = bodies && merge?.(bodies);
      if (!merged) return { conflicts: [`chunk '${key}'`] };
      if ('conflicts' in merged) return merged;
      return { value: { id: ov.id, body: { bytes: merged.value }, digest: `merged ${key}` } };
    },
  });
  if (result.conflicts.length > 0)
    return { conflict: `both sides changed ${result.conflicts.join(', ')}` };
  return { chunks: result.merged, fromTheirs: result.fromTheirs };
}

function header(id: string, size: number, little: boolean): Buffer {
  const out = Buffer.alloc(8);
  out.write(id, 0, 4, 'latin1');
  if (little) out.writeUInt32LE(size, 4);
  else out.writeUInt32BE(size, 4);
  return out;
}

async function layoutsOf(
  input: Pick<MergeInput, Side>,
): Promise<Record<Side, Version> | { readonly declined: string }> {
  const sides = {} as Record<Side, Version>;
  for (const side of ['base', 'ours', 'theirs'] as const) {
    try {
      sides[side] = { side, access: input[side], layout: await readLayout(input[side]) };
    } catch (error) {
      if (error instanceof NotAudio) return { declined: `${side}: ${error.message}` };
      throw error;
    }
  }
  if (new Set(Object.values(sides).map((v) => v.layout.kind)).size !== 1) {
    return { declined: 'the sides are not all WAV or all AIFF' };
  }
  return sides;
}

async function merge(input: MergeInput): Promise<StrategyResult> {
  const sides = await layoutsOf(input);
  if ('declined' in sides) return sides;
  const audio = await mergeSamples(sides.base, sides.ours, sides.theirs);
  if ('conflict' in audio) return audio;
  const metadata = await mergeChunks(sides);
  if ('conflict' in metadata) return metadata;

  const { layout } = audio.format;
  const little = layout.kind === 'wav';
  const sampleBytes = audio.frames * layout.frameBytes;
  const pieces: (Buffer | SidePiece)[] = [];
  let total = 4;
  for (const { value: part } of metadata.chunks) {
    let size: number;
    const parts: (Buffer | SidePiece)[] = [];
    if (part.digest === 'audio' && part.id === layout.formatChunk.id) {
      const body = Buffer.from(layout.formatBytes);
      if (!little) body.writeUInt32BE(audio.frames, 2);
      parts.push(body);
      size = body.length;
    } else if (part.digest === 'audio') {
      const prefix = layout.samplesAt - layout.soundChunk.body;
      if (prefix > 0)
        parts.push(
          await bodyBytes(
            { side: audio.format.side, chunk: { ...layout.soundChunk, size: prefix } },
            sides,
          ),
        );
      parts.push(...audio.pieces);
      size = prefix + sampleBytes;
    } else if (part.body.side === undefined) {
      parts.push(part.body.bytes);
      size = part.body.bytes.length;
    } else {
      const { side, chunk } = part.body;
      parts.push({ side, offset: chunk.body, length: chunk.size });
      size = chunk.size;
    }
    pieces.push(header(part.id, size, little), ...parts);
    if (size & 1) pieces.push(Buffer.alloc(1));
    total += 8 + size + (size & 1);
  }
  if (total > 0xffffffff)
    return { conflict: 'the merged file would pass the 4 GiB a RIFF/FORM size can hold' };
  const head = Buffer.alloc(12);
  head.write(little ? 'RIFF' : 'FORM', 0, 'latin1');
  if (little) head.writeUInt32LE(total, 4);
  else head.writeUInt32BE(total, 4);
  head.write(layout.form, 8, 'latin1');
  const fromTheirs =
    metadata.fromTheirs.length > 0 ? metadata.fromTheirs.map((k) => `'${k}'`).join(', ') : 'none';
  return {
    merged: { pieces: [head, ...pieces] },
    summary: `${audio.summary}; metadata chunks from theirs: ${fromTheirs}`,
  };
}

async function describe(
  before: RandomAccess,
  after: RandomAccess,
  _format: MediaFormat,
): Promise<string[]> {
  let a: AudioLayout;
  let b: AudioLayout;
  try {
    [a, b] = [await readLayout(before), await readLayout(after)];
  } catch (error) {
    if (error instanceof NotAudio) return [];
    throw error;
  }
  const lines: string[] = [];
  if (a.formatKey !== b.formatKey)
    lines.push(`format changed: ${describeFormat(a)} → ${describeFormat(b)}`);
  else {
    if (a.frames !== b.frames) lines.push(`length changed: ${seconds(a)} → ${seconds(b)}`);
    const region = (access: RandomAccess, l: AudioLayout) => ({
      access,
      at: l.samplesAt,
      frames: l.frames,
    });
    const [changed] = (await changedRanges(
      region(before, a),
      [region(after, b)],
      a.frameBytes,
    )) as [FrameRange[]];
    const runs = clusters(changed, readableGap(a));
    if (runs.length === 0)
      lines.push(a.frames === b.frames ? 'samples unchanged' : 'common samples unchanged');
    else {
      const shown = runs.slice(0, 3).map((range) => describeRange(range, a.sampleRate));
      lines.push(
        `samples changed in ${runs.length} range(s): ${shown.join(', ')}${runs.length > 3 ? ', …' : ''}`,
      );
    }
  }
  const digests = async (access: RandomAccess, layout: AudioLayout) => {
    const out = new Map<string, string>();
    for (const chunk of layout.chunks) {
      if (chunk === layout.formatChunk || chunk === layout.soundChunk) continue;
      out.set(chunk.key, await digestBytes(access, chunk.body, chunk.size));
    }
    return out;
  };
  const [da, db] = [await digests(before, a), await digests(after, b)];
  const changed: string[] = [];
  for (const [key, digest] of da) {
    if (!db.has(key)) changed.push(`chunk '${key}' removed`);
    else if (db.get(key) !== digest) changed.push(`chunk '${key}' changed`);
  }
  for (const key of db.keys()) if (!da.has(key)) changed.push(`chunk '${key}' added`);
  lines.push(changed.length > 0 ? changed.join('; ') : 'metadata unchanged');
  return lines;
}

export const pcmMergeStrategy: MergeStrategy = {
  name: 'pcm-audio',
  accepts: (format) => ['wav', 'aiff', 'aifc'].includes(format.format),
  maxBytes: Infinity,
  merge,
  describe,
};
