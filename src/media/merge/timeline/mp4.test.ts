/**
 * The MP4/MOV tags strategy on files ffmpeg makes (`-f lavfi testsrc`): one
 * side retitled with `-c copy`, the other re-encoded; the merged file,
 * written from the strategy's pieces, probes (ffprobe) with the new title and
 * the re-encoded side's packets, with moov after mdat (ffmpeg's default) and
 * before it (`+faststart`, chunk offsets moved). Tags both sides changed, and
 * streams both changed, conflict; what is not an MP4 is declined.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import type { MediaFormat } from '../../detect.ts';
import { bufferAccess } from '../../info/random-access.ts';
import { writeMerged, type StrategyResult } from '../../merge-strategy.ts';
import { mp4MergeStrategy } from './mp4.ts';

let dir = '';
const file = (name: string) => path.join(dir, name);
const run = promisify(execFile);
const ffmpeg = (...args: string[]) => run('ffmpeg', ['-v', 'error', '-y', ...args]);

async function probe(
  name: string,
): Promise<{ tags: Record<string, string>; packets: string[]; streams: string }> {
  const { stdout } = await run('ffprobe', [
    '-v',
    'error',
    '-of',
    'json',
    '-show_data_hash',
    'sha256',
    '-show_packets',
    '-show_entries',
    'format_tags:stream=codec_name,width,height,nb_frames:packet=data_hash',
    file(name),
  ]);
  const json = JSON.parse(stdout) as {
    format: { tags?: Record<string, string> };
    packets: { data_hash: string }[];
    streams: object[];
  };
  return {
    tags: json.format.tags ?? {},
    packets: json.packets.map((p) => p.data_hash),
    streams: JSON.stringify(json.streams),
  };
}

/**
 * Makes base, a retitled copy and a re-encoded copy (and, with `more`, a
 * second retitle and re-encode), with moov where `flags` puts it.
 */
async function family(prefix: string, flags: string[], container = 'mp4', more = false) {
  const name = (n: string) => `${prefix}-${n}.${container}`;
  await ffmpeg(
    '-f',
    'lavfi',
    '-i',
    'testsrc=size=64x48:rate=10:duration=1',
    '-c:v',
    'libx264',
    '-preset',
    'ultrafast',
    '-g',
    '5',
    ...flags,
    file(name('base')),
  );
  const retitle = (title: string, out: string) =>
    ffmpeg(
      '-i',
      file(name('base')),
      '-c',
      'copy',
      '-metadata',
      `title=${title}`,
      ...flags,
      file(name(out)),
    );
  const reencode = (crf: string, out: string) =>
    ffmpeg(
      '-i',
      file(name('base')),
      '-c:v',
      'libx264',
      '-preset',
      'ultrafast',
      '-crf',
      crf,
      '-g',
      '5',
      ...flags,
      file(name(out)),
    );
  await Promise.all([
    retitle('Final cut', 'title'),
    reencode('40', 'reenc'),
    ...(more ? [retitle('Rough cut', 'title2'), reencode('45', 'reenc2')] : []),
  ]);
  return name;
}

const FORMAT: MediaFormat = {
  format: 'mp4',
  category: 'video',
  alreadyCompressed: true,
  mime: 'video/mp4',
  detectedBy: 'magic',
};

async function merge(
  base: Buffer,
  ours: Buffer,
  theirs: Buffer,
  out?: string,
): Promise<StrategyResult> {
  const sides = {
    base: bufferAccess(base),
    ours: bufferAccess(ours),
    theirs: bufferAccess(theirs),
  };
  const result = await mp4MergeStrategy.merge({ path: 'cut.mp4', format: FORMAT, ...sides });
  if ('merged' in result && out) {
    assert.ok(!(result.merged instanceof Uint8Array), 'a big-file strategy returns pieces');
    const parts: Buffer[] = [];
    await writeMerged(result.merged, sides, async (data) => {
      parts.push(Buffer.from(data));
    });
    fs.writeFileSync(file(out), Buffer.concat(parts));
  }
  return result;
}

const read = (name: string) => fs.readFileSync(file(name));

/** The MP4 files the conflict and property tests share with the first case. */
let shared: ReturnType<typeof family> | undefined;
const mp4Family = () => (shared ??= family('moov-after-mdat-MP4-', [], 'mp4', true));

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mediagit-mp4-merge-'));
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

// ffmpeg and ffprobe take most of the time: the cases run side by side.
describe('MP4/MOV tag merges', { concurrency: true }, () => {
  for (const [label, flags, container] of [
    ['moov after mdat (MP4)', [], 'mp4'],
    ['moov before mdat (+faststart, MP4)', ['-movflags', '+faststart'], 'mp4'],
    ['moov after mdat (MOV)', [], 'mov'],
  ] as const) {
    test(`a retitle merges with a re-encode: ${label}`, async () => {
      const name = await (container === 'mp4' && flags.length === 0
        ? mp4Family()
        : family(label.replace(/\W+/g, '-'), [...flags], container));
      // The stream side's mdat, byte for byte.
      const mdat = (bytes: Buffer) => {
        const at = bytes.indexOf('mdat');
        return bytes.subarray(at - 4, at - 4 + bytes.readUInt32BE(at - 4));
      };
      assert.ok(
        !mdat(read(name('reenc'))).equals(mdat(read(name('title')))),
        'the re-encode changed the stream',
      );
      const out = `${name('merged')}.${container}`;
      const result = await merge(read(name('base')), read(name('title')), read(name('reenc')), out);
      assert.ok('merged' in result, JSON.stringify(result));
      const [merged, reenc] = await Promise.all([
        probe(out),
        probe(name('reenc')),
        // Every frame decodes (where chunk offsets moved).
        flags.length > 0
          ? run('ffmpeg', ['-v', 'error', '-xerror', '-i', file(out), '-f', 'null', '-'])
          : undefined,
      ]);
      assert.equal(merged.tags.title, 'Final cut');
      assert.deepEqual(merged.packets, reenc.packets);
      assert.equal(merged.streams, reenc.streams);
      assert.ok(mdat(read(out)).equals(mdat(read(name('reenc')))));
      // The other way round, the same file.
      const swapped = `${name('merged')}-swapped.${container}`;
      assert.ok(
        'merged' in
          (await merge(read(name('base')), read(name('reenc')), read(name('title')), swapped)),
      );
      assert.ok(read(swapped).equals(read(out)));
      const described = await mp4MergeStrategy.describe!(
        bufferAccess(read(name('base'))),
        bufferAccess(read(name('title'))),
        FORMAT,
      );
      assert.deepEqual(described, ['streams unchanged', "tag 'title' (©nam) added"]);
    });
  }

  test('tags or streams both sides changed are conflicts; non-MP4 input is declined', async () => {
    const name = await mp4Family();
    assert.deepEqual(await merge(read(name('base')), read(name('title')), read(name('title2'))), {
      conflict: "both sides changed tag 'title' (©nam)",
    });
    assert.deepEqual(await merge(read(name('base')), read(name('reenc')), read(name('reenc2'))), {
      conflict: 'both sides changed the streams',
    });
    // The same retitle on both sides is no conflict.
    const same = await merge(read(name('base')), read(name('title')), read(name('title')));
    assert.ok('merged' in same);
    const truncated = read(name('title')).subarray(0, 5000);
    const result = await merge(read(name('base')), truncated, read(name('reenc')));
    assert.ok('declined' in result, JSON.stringify(result));
    const text = await merge(
      read(name('base')),
      Buffer.from('not a movie at all'),
      read(name('reenc')),
    );
    assert.ok('declined' in text);
  });

  test("200 random tag edits on both sides merge tag by tag around one side's streams", async () => {
    const name = await mp4Family();
    const files = { plain: read(name('base')), reencoded: read(name('reenc')) };
    const packets = await Promise.all([probe(name('base')), probe(name('reenc'))]);
    const probes: { file: string; tags: Record<string, string>; packets: string[] }[] = [];
    await fc.assert(
      fc.asyncProperty(tagPlanArb, fc.constantFrom<0 | 1 | 2>(0, 1, 2), async (plan, streams) => {
        const base = withTags(files.plain, plan.base);
        const ours = withTags(streams === 1 ? files.reencoded : files.plain, plan.ours);
        const theirs = withTags(streams === 2 ? files.reencoded : files.plain, plan.theirs);
        const out = `property-${probes.length}.mp4`;
        const result = await merge(base, ours, theirs, probes.length < 2 ? out : undefined);
        assert.ok('merged' in result, JSON.stringify(result));
        const sides = {
          base: bufferAccess(base),
          ours: bufferAccess(ours),
          theirs: bufferAccess(theirs),
        };
        const parts: Buffer[] = [];
        await writeMerged(result.merged, sides, async (data) => {
          parts.push(Buffer.from(data));
        });
        const merged = Buffer.concat(parts);
        assert.deepEqual(tagsIn(merged), plan.expected);
        const streamSide = streams === 0 ? files.plain : files.reencoded;
        assert.ok(mdatOf(merged).equals(mdatOf(streamSide)));
        if (probes.length < 2) {
          probes.push({
            file: out,
            tags: plan.expected,
            packets: packets[streams === 0 ? 0 : 1]!.packets,
          });
        }
      }),
      { numRuns: 200 },
    );
    // A few results read back with ffprobe: its tag names, the stream side's packets.
    for (const { file: out, tags, packets: want } of probes) {
      const shown = await probe(out);
      for (const [type, value] of Object.entries(tags)) {
        assert.equal(shown.tags[PROBE_NAMES[type]!], value, type);
      }
      assert.deepEqual(shown.packets, want);
    }
  });
});

// ---- tags built and read here, independently of mp4.ts ----

const TAGS = ['©nam', '©ART', '©cmt', '©day', '©alb', '©gen'] as const;
const PROBE_NAMES: Record<string, string> = {
  '©nam': 'title',
  '©ART': 'artist',
  '©cmt': 'comment',
  '©day': 'date',
  '©alb': 'album',
  '©gen': 'genre',
};

function box(type: string, ...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  const head = Buffer.alloc(8);
  head.writeUInt32BE(8 + body.length);
  head.write(type, 4, 'latin1');
  return Buffer.concat([head, body]);
}

/** [type, start, end] of each box in data[start, end). */
function walk(data: Buffer, start: number, end: number): [string, number, number][] {
  const out: [string, number, number][] = [];
  for (let at = start; at < end; at += data.readUInt32BE(at)) {
    out.push([data.toString('latin1', at + 4, at + 8), at, at + data.readUInt32BE(at)]);
  }
  return out;
}

/** The file (moov last, as ffmpeg writes it) with its udta replaced by these ilst tags. */
function withTags(file: Buffer, tags: Record<string, string>): Buffer {
  const [, moovStart, moovEnd] = walk(file, 0, file.length).find(([type]) => type === 'moov')!;
  const hdlr = Buffer.concat([Buffer.alloc(8), Buffer.from('mdirappl', 'latin1'), Buffer.alloc(9)]);
  const items = TAGS.filter((type) => tags[type] !== undefined).map((type) =>
    box(type, box('data', Buffer.from([0, 0, 0, 1, 0, 0, 0, 0]), Buffer.from(tags[type]!))),
  );
  const udta = box('udta', box('meta', Buffer.alloc(4), box('hdlr', hdlr), box('ilst', ...items)));
  const children = walk(file, moovStart + 8, moovEnd)
    .filter(([type]) => type !== 'udta')
    .map(([, start, end]) => file.subarray(start, end));
  return Buffer.concat([file.subarray(0, moovStart), box('moov', ...children, udta)]);
}

function tagsIn(file: Buffer): Record<string, string> {
  const find = (start: number, end: number, type: string) =>
    walk(file, start, end).find(([t]) => t === type)!;
  const [, moovStart, moovEnd] = find(0, file.length, 'moov');
  const [, udtaStart, udtaEnd] = find(moovStart + 8, moovEnd, 'udta');
  const [, metaStart, metaEnd] = find(udtaStart + 8, udtaEnd, 'meta');
  const [, ilstStart, ilstEnd] = find(metaStart + 12, metaEnd, 'ilst');
  const out: Record<string, string> = {};
  for (const [type, start, end] of walk(file, ilstStart + 8, ilstEnd)) {
    out[type] = file.toString('utf8', start + 24, end);
  }
  return out;
}

function mdatOf(file: Buffer): Buffer {
  const [, start, end] = walk(file, 0, file.length).find(([type]) => type === 'mdat')!;
  return file.subarray(start, end);
}

interface TagPlan {
  readonly base: Record<string, string>;
  readonly ours: Record<string, string>;
  readonly theirs: Record<string, string>;
  readonly expected: Record<string, string>;
}

/** Each tag: absent or valued in base; left alone, or set or removed by one side only. */
const tagPlanArb: fc.Arbitrary<TagPlan> = fc
  .tuple(
    ...TAGS.map(() =>
      fc.tuple(
        fc.option(fc.string({ minLength: 1, maxLength: 12, unit: 'grapheme-ascii' })),
        fc.constantFrom<0 | 1 | 2>(0, 1, 2),
        fc.option(fc.string({ minLength: 1, maxLength: 12, unit: 'grapheme-ascii' })),
      ),
    ),
  )
  .map((choices) => {
    const plan = { base: {}, ours: {}, theirs: {}, expected: {} } as {
      [K in keyof TagPlan]: Record<string, string>;
    };
    choices.forEach(([before, editor, now], i) => {
      const type = TAGS[i]!;
      const set = (target: Record<string, string>, value: string | null) => {
        if (value !== null) target[type] = value;
      };
      set(plan.base, before);
      set(plan.ours, editor === 1 ? now : before);
      set(plan.theirs, editor === 2 ? now : before);
      set(plan.expected, editor === 0 ? before : now);
    });
    return plan;
  });
