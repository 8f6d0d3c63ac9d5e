/**
 * WAV/AIFF merges on files made by ffmpeg: sample ranges spliced in from a
 * second ffmpeg sine, metadata written by ffmpeg (bext, INFO, AIFF text
 * chunks) or by hand (iXML, cue). Results are checked with the test's own
 * chunk walker (test/audio-files.ts) and, for a handful, decoded by ffmpeg.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import fc from 'fast-check';
import {
  chunkBody,
  cueChunk,
  cuePoints,
  ffmpegDecodeErrors,
  ffmpegDecode,
  ffprobeTags,
  ixmlChunk,
  rebuild,
  samplesOf,
  sha256,
  renderAll,
  splice,
  withSamples,
} from '../../../../test/audio-files.ts';
import { detectFormat } from '../../detect.ts';
import { bufferAccess, type RandomAccess } from '../../info/random-access.ts';
import { MediaReader } from '../../info/random-access.ts';
import { readWav } from '../../info/wav.ts';
import { writeMerged, type StrategyResult } from '../../merge-strategy.ts';
import { pcmMergeStrategy } from './pcm.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'mediagit-audio-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const RATE = 8000;
const SINE = `sine=frequency=440:sample_rate=${RATE}:duration=2`;
const NOISE = `anoisesrc=color=white:amplitude=0.5:seed=7:sample_rate=${RATE}:duration=2`;
const SMALL = `sine=frequency=300:sample_rate=${RATE}:duration=0.25`;
const STEREO = ['-ac', '2'];
const META = { description: 'Take one', originator: 'Recorder', title: 'Song', artist: 'Band' };
const metadata = (meta: Record<string, string>) =>
  Object.entries(meta).flatMap(([key, value]) => ['-metadata', `${key}=${value}`]);
/** Takes with bext and INFO written by ffmpeg around the same samples (iXML and cue are added by hand). */
const TAKES: Record<string, Record<string, string>> = {
  'meta-base': META,
  'meta-ours': { ...META, description: 'Take two', title: 'Song v2' },
  'meta-theirs': { ...META, originator: 'Field recorder', artist: 'The Band' },
  'desc-a': { ...META, description: 'A' },
  'desc-b': { ...META, description: 'B' },
  'title-a': { ...META, title: 'A' },
  'title-b': { ...META, title: 'B' },
};
const AIFF_SINE = `sine=frequency=440:sample_rate=${RATE}:duration=1`;
const AIFF_NOISE = `anoisesrc=color=white:amplitude=0.5:seed=3:sample_rate=${RATE}:duration=1`;

// Every input file, in one ffmpeg run.
renderAll([
  { file: path.join(dir, 'base.wav'), source: SINE, args: STEREO },
  { file: path.join(dir, 'other.wav'), source: NOISE, args: STEREO },
  {
    file: path.join(dir, 'resampled.wav'),
    source: `sine=frequency=440:sample_rate=16000:duration=2`,
    args: STEREO,
  },
  { file: path.join(dir, 'adpcm.wav'), source: SINE, args: ['-c:a', 'adpcm_ms'] },
  { file: path.join(dir, 'small.wav'), source: SMALL, args: [...STEREO, '-c:a', 'pcm_s24le'] },
  { file: path.join(dir, 'small2.wav'), source: SMALL },
  ...Object.entries(TAKES).map(([name, meta]) => ({
    file: path.join(dir, `${name}.wav`),
    source: SINE,
    args: [...STEREO, '-write_bext', '1', ...metadata(meta)],
  })),
  {
    file: path.join(dir, 'b.aiff'),
    source: AIFF_SINE,
    args: metadata({ title: 'Song', author: 'Band' }),
  },
  {
    file: path.join(dir, 'o.aiff'),
    source: AIFF_SINE,
    args: metadata({ title: 'Song v2', author: 'Band' }),
  },
  {
    file: path.join(dir, 't.aiff'),
    source: AIFF_SINE,
    args: metadata({ title: 'Song', author: 'The Band' }),
  },
  {
    file: path.join(dir, 't3.aiff'),
    source: AIFF_SINE,
    args: metadata({ title: 'Other', author: 'Band' }),
  },
  { file: path.join(dir, 'src.aiff'), source: AIFF_NOISE },
]);

const load = (name: string) => readFileSync(path.join(dir, name));
/** 2 s of stereo 16-bit at 8 kHz: 16000 frames of 4 bytes. */
const base = load('base.wav');
const FB = 4;
const baseSamples = samplesOf(base);
const otherSamples = samplesOf(load('other.wav'));

async function run(
  b: Buffer,
  o: Buffer,
  t: Buffer,
  name = 'take.wav',
  /** Inputs read as if stored in chunks of this many bytes (reads then report where chunks end). */
  chunk?: number,
): Promise<{ result: StrategyResult; bytes?: Buffer }> {
  const access = (data: Buffer): RandomAccess =>
    chunk === undefined
      ? bufferAccess(data)
      : {
          ...bufferAccess(data),
          fetchSpan: (at) => (at >= data.length ? 0 : chunk - (at % chunk)),
        };
  const sides = { base: access(b), ours: access(o), theirs: access(t) };
  const result = await pcmMergeStrategy.merge({
    path: name,
    format: detectFormat(new Uint8Array(0), name),
    ...sides,
  });
  if (!('merged' in result)) return { result };
  const out: Uint8Array[] = [];
  await writeMerged(result.merged, sides, (data) => {
    out.push(Buffer.from(data));
    return Promise.resolve();
  });
  return { result, bytes: Buffer.concat(out) };
}

async function merged(
  b: Buffer,
  o: Buffer,
  t: Buffer,
  name?: string,
  chunk?: number,
): Promise<Buffer> {
  const { result, bytes } = await run(b, o, t, name, chunk);
  assert.ok(bytes, `expected a merge, got ${JSON.stringify(result)}`);
  return bytes;
}

async function conflict(b: Buffer, o: Buffer, t: Buffer, name?: string): Promise<string> {
  const { result } = await run(b, o, t, name);
  assert.ok(
    'conflict' in result,
    `expected a conflict, got ${JSON.stringify(result).slice(0, 300)}`,
  );
  return result.conflict;
}

function edited(samples: Buffer, ...edits: [at: number, from: number, count: number][]): Buffer {
  return edits.reduce(
    (s, [at, from, count]) => splice(s, FB, at, otherSamples, from, count),
    samples,
  );
}

/** The files decoded by one ffmpeg run, which must print no error. */
function decoded(files: readonly string[], format: string): Buffer[] {
  const { status, stderr, samples } = ffmpegDecode(files, format);
  assert.deepEqual({ status, stderr }, { status: 0, stderr: '' });
  return samples;
}

function save(name: string, bytes: Buffer): string {
  const file = path.join(dir, name);
  writeFileSync(file, bytes);
  return file;
}

test('sample edits in different ranges merge; each range hashes to the side that changed it; ffmpeg decodes it', async () => {
  const ours = withSamples(base, edited(baseSamples, [1000, 1000, 2000]));
  const theirs = withSamples(base, edited(baseSamples, [9000, 0, 500]));
  const bytes = await merged(base, ours, theirs);
  const samples = samplesOf(bytes);
  const range = (s: Buffer, start: number, end: number) => sha256(s.subarray(start * FB, end * FB));
  assert.equal(samples.length, baseSamples.length);
  assert.equal(range(samples, 1000, 3000), range(samplesOf(ours), 1000, 3000));
  assert.equal(range(samples, 9000, 9500), range(samplesOf(theirs), 9000, 9500));
  for (const [start, end] of [
    [0, 1000],
    [3000, 9000],
    [9500, 16000],
  ] as const) {
    assert.equal(range(samples, start, end), range(baseSamples, start, end));
  }
  assert.notEqual(range(samples, 1000, 3000), range(baseSamples, 1000, 3000));
  const file = save('merged.wav', bytes);
  assert.deepEqual(ffmpegDecodeErrors(file), { status: 0, stderr: '' });
  const expected = edited(baseSamples, [1000, 1000, 2000], [9000, 0, 500]);
  assert.ok(decoded([file], 's16le')[0]!.equals(expected));
  // Deterministic: the same inputs give the same bytes.
  assert.ok((await merged(base, ours, theirs)).equals(bytes));
});

test('overlapping sample edits conflict, naming the range in seconds and frames', async () => {
  const ours = withSamples(base, edited(baseSamples, [8000, 0, 4000]));
  const theirs = withSamples(base, edited(baseSamples, [10000, 6000, 4000]));
  assert.equal(
    await conflict(base, ours, theirs),
    'both sides changed samples 1.250 s–1.500 s (frames 10000–11999)',
  );
  // The same edit on both sides is no conflict.
  const same = await merged(base, ours, withSamples(base, edited(baseSamples, [8000, 0, 4000])));
  assert.ok(samplesOf(same).equals(samplesOf(ours)));
});

test('audio appended on one side merges with edits inside the base length; other length changes conflict', async () => {
  const appended = withSamples(
    base,
    Buffer.concat([baseSamples, otherSamples.subarray(0, 4000 * FB)]),
  );
  const theirs = withSamples(base, edited(baseSamples, [100, 0, 500]));
  const bytes = await merged(base, appended, theirs);
  const expected = Buffer.concat([
    edited(baseSamples, [100, 0, 500]),
    otherSamples.subarray(0, 4000 * FB),
  ]);
  assert.ok(samplesOf(bytes).equals(expected));
  assert.ok(decoded([save('appended.wav', bytes)], 's16le')[0]!.equals(expected));
  // Symmetric: theirs appends, ours edits.
  assert.ok(samplesOf(await merged(base, theirs, appended)).equals(expected));

  const truncated = withSamples(base, baseSamples.subarray(0, 12000 * FB));
  const late = withSamples(base, edited(baseSamples, [15000, 0, 1000]));
  assert.equal(
    await conflict(base, truncated, late),
    'both sides changed samples 1.875 s–2.000 s (frames 15000–15999)',
  );
  assert.equal(
    await conflict(base, appended, truncated),
    'both sides changed the length (base 2.000 s, ours 2.500 s, theirs 1.500 s)',
  );
});

test('a format change merges only when the other side left the samples alone', async () => {
  const resampled = load('resampled.wav');
  const theirs = withSamples(base, edited(baseSamples, [100, 0, 500]));
  assert.match(
    await conflict(base, resampled, theirs),
    /^the sample format changed \(base 8000 Hz, 2 ch, 16-bit, ours 16000 Hz, 2 ch, 16-bit, theirs 8000 Hz, 2 ch, 16-bit\)/,
  );
  // Theirs only adds cue points: ours' new format, theirs' cue chunk.
  const cued = rebuild(base, {}, [{ id: 'cue ', body: cueChunk([[1, 500]]) }]);
  const bytes = await merged(base, resampled, cued);
  assert.ok(samplesOf(bytes).equals(samplesOf(resampled)));
  assert.deepEqual(cuePoints(chunkBody(bytes, 'cue ')!), [[1, 500]]);
  decoded([save('resampled-merged.wav', bytes)], 's16le');
});

/** A rendered take with an iXML chunk and a cue chunk added. */
function take(name: string, ixml: Record<string, string>, cues: [number, number][]): Buffer {
  return rebuild(load(`${name}.wav`), {}, [
    { id: 'iXML', body: ixmlChunk(ixml) },
    { id: 'cue ', body: cueChunk(cues) },
  ]);
}

const IXML = { PROJECT: 'Film', SCENE: '12A', TAKE: '3', NOTE: 'windy' };
const CUES: [number, number][] = [
  [1, 100],
  [2, 4000],
];

test('bext fields, INFO tags, iXML elements and cue points merge one by one, with sample edits', async () => {
  const baseTake = take('meta-base', IXML, CUES);
  assert.ok(samplesOf(baseTake).equals(baseSamples));
  const ours = take('meta-ours', { ...IXML, SCENE: '12B' }, [
    [1, 100],
    [2, 4400],
  ]);
  const theirsMeta = take('meta-theirs', { ...IXML, TAKE: '4' }, [...CUES, [3, 12000]]);
  const theirs = withSamples(theirsMeta, edited(baseSamples, [5000, 0, 1000]));
  const bytes = await merged(baseTake, ours, theirs);
  const file = save('meta-merged.wav', bytes);
  assert.ok(decoded([file], 's16le')[0]!.equals(edited(baseSamples, [5000, 0, 1000])));
  const tags = ffprobeTags(file);
  // ffmpeg reads bext's Description as "comment" and its Originator as "encoded_by".
  assert.equal(tags.comment, 'Take two');
  assert.equal(tags.encoded_by, 'Field recorder');
  assert.equal(tags.title, 'Song v2');
  assert.equal(tags.artist, 'The Band');
  assert.equal(
    chunkBody(bytes, 'iXML')!.toString('utf8'),
    ixmlChunk({ ...IXML, SCENE: '12B', TAKE: '4' }).toString('utf8'),
  );
  assert.deepEqual(cuePoints(chunkBody(bytes, 'cue ')!), [
    [1, 100],
    [2, 4400],
    [3, 12000],
  ]);
});

test('metadata both sides changed differently conflicts, naming the field', async () => {
  const baseTake = take('meta-base', IXML, CUES);
  const cues = (position: number): [number, number][] => [
    [1, 100],
    [2, position],
  ];
  const pairs: [string, Parameters<typeof take>, Parameters<typeof take>][] = [
    ["both sides changed bext field 'Description'", ['desc-a', IXML, CUES], ['desc-b', IXML, CUES]],
    ["both sides changed INFO tag 'INAM'", ['title-a', IXML, CUES], ['title-b', IXML, CUES]],
    [
      "both sides changed iXML element 'SCENE'",
      ['meta-base', { ...IXML, SCENE: '1' }, CUES],
      ['meta-base', { ...IXML, SCENE: '2' }, CUES],
    ],
    ['both sides changed cue point 2', ['meta-base', IXML, cues(1)], ['meta-base', IXML, cues(2)]],
  ];
  for (const [message, o, t] of pairs) {
    assert.equal(await conflict(baseTake, take(...o), take(...t)), message);
  }
  // A chunk one side deleted and the other changed.
  const noCue = rebuild(load('meta-base.wav'), {}, [{ id: 'iXML', body: ixmlChunk(IXML) }]);
  assert.equal(
    await conflict(baseTake, noCue, take('meta-base', IXML, cues(5))),
    "both sides changed chunk 'cue ' (ours deleted it)",
  );
  // Deleted on one side, untouched on the other: deleted.
  assert.equal(chunkBody(await merged(baseTake, noCue, baseTake), 'cue '), undefined);
});

test('files that do not parse as PCM WAV/AIFF are declined with the reason', async () => {
  const declined = async (b: Buffer, o: Buffer, t: Buffer) => {
    const { result } = await run(b, o, t);
    assert.ok('declined' in result, JSON.stringify(result).slice(0, 200));
    return result.declined;
  };
  assert.match(
    await declined(base, base.subarray(0, base.length - 100), base),
    /^ours: the RIFF size says/,
  );
  assert.match(await declined(Buffer.from('not audio at all'), base, base), /^base: no RIFF WAVE/);
  const rf64 = Buffer.from(base);
  rf64.write('RF64', 0, 'latin1');
  assert.match(await declined(base, base, rf64), /^theirs: RF64/);
  const overlong = Buffer.from(base);
  const dataAt = overlong.indexOf('data', 12, 'latin1');
  overlong.writeUInt32LE(0x7fffffff, dataAt + 4);
  assert.match(
    await declined(base, overlong, base),
    /^ours: chunk 'data' at byte \d+ runs past the end/,
  );
  const adpcm = load('adpcm.wav');
  assert.match(await declined(adpcm, adpcm, adpcm), /^base: wave format 0x2 is not PCM/);
  assert.match(await declined(Buffer.alloc(0), base, base), /^base: shorter than/);
});

test('AIFF: sample edits and text chunks merge, ffmpeg decodes the result; overlaps conflict', async () => {
  const b = load('b.aiff');
  const src = samplesOf(load('src.aiff'));
  const bs = samplesOf(b);
  const fb = 2;
  const o = withSamples(load('o.aiff'), splice(bs, fb, 1000, src, 0, 1000));
  const t = withSamples(load('t.aiff'), splice(bs, fb, 5000, src, 3000, 1000));
  const bytes = await merged(b, o, t, 'take.aiff');
  const expected = splice(splice(bs, fb, 1000, src, 0, 1000), fb, 5000, src, 3000, 1000);
  assert.ok(samplesOf(bytes).equals(expected));
  const file = save('merged.aiff', bytes);
  assert.deepEqual(ffmpegDecodeErrors(file), { status: 0, stderr: '' });
  const [got, want] = decoded([file, save('expected.aiff', withSamples(b, expected))], 's16le');
  assert.ok(got!.equals(want!));
  const tags = ffprobeTags(file);
  assert.equal(tags.title, 'Song v2');
  assert.equal(tags.artist ?? tags.author, 'The Band');

  const t2 = withSamples(b, splice(bs, fb, 1500, src, 100, 1000));
  assert.equal(
    await conflict(b, o, t2, 'take.aiff'),
    'both sides changed samples 0.188 s–0.250 s (frames 1500–1999)',
  );
  const t3 = load('t3.aiff');
  assert.equal(await conflict(b, o, t3, 'take.aiff'), "both sides changed chunk 'NAME'");
});

test('describe names the changed sample ranges and chunks', async () => {
  const ours = rebuild(withSamples(base, edited(baseSamples, [8000, 0, 4000])), {}, [
    { id: 'cue ', body: cueChunk([[1, 5]]) },
  ]);
  const lines = await pcmMergeStrategy.describe!(
    bufferAccess(base),
    bufferAccess(ours),
    detectFormat(new Uint8Array(0), 'a.wav'),
  );
  assert.deepEqual(lines, [
    'samples changed in 1 range(s): 1.000 s–1.500 s (frames 8000–11999)',
    "chunk 'cue ' added",
  ]);
});

/** Deterministic filler bytes for an edit (xorshift), so a property run is reproducible. */
function noise(length: number, seed: number): Buffer {
  const out = Buffer.alloc(length);
  let x = seed | 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

test('property: random non-overlapping sample edits (and one side changing the length) merge to the expected samples', async () => {
  // 2000 frames of stereo 24-bit: 6-byte frames, so frame alignment matters.
  const small = load('small.wav');
  const bs = samplesOf(small);
  const fb = 6;
  const frames = bs.length / fb;
  assert.equal(frames, 2000);
  const checkedByFfmpeg: [Buffer, Buffer][] = [];
  const segment = fc.record({
    owner: fc.constantFrom('ours', 'theirs', 'none'),
    seed: fc.integer(),
  });
  await fc.assert(
    fc.asyncProperty(
      fc.uniqueArray(fc.integer({ min: 0, max: frames }), { minLength: 2, maxLength: 12 }),
      fc.array(segment, { minLength: 11, maxLength: 11 }),
      fc.oneof(
        fc.constant({ kind: 'none' as const }),
        fc.record({
          kind: fc.constant('append' as const),
          frames: fc.integer({ min: 1, max: 300 }),
          seed: fc.integer(),
        }),
        fc.record({
          kind: fc.constant('truncate' as const),
          frames: fc.integer({ min: 1, max: frames - 1 }),
        }),
      ),
      fc.boolean(),
      fc.option(fc.integer({ min: 100, max: 5000 }), { nil: undefined }),
      async (cuts, owners, length, swap, chunk) => {
        const points = [...cuts].sort((a, b) => a - b);
        const edits: { owner: string; start: number; end: number; bytes: Buffer }[] = [];
        for (let i = 0; i + 1 < points.length; i++) {
          const { owner, seed } = owners[i]!;
          const [start, end] = [points[i]!, points[i + 1]!];
          if (owner !== 'none')
            edits.push({ owner, start, end, bytes: noise((end - start) * fb, seed) });
        }
        // The side changing the length ("ours" before any swap) keeps theirs' edits before its cut.
        const cut = length.kind === 'truncate' ? length.frames : frames;
        const usable = edits.filter((e) => e.owner === 'ours' || e.end <= cut);
        const apply = (owner?: string) => {
          const out = Buffer.from(bs);
          for (const e of usable)
            if (owner === undefined || e.owner === owner) e.bytes.copy(out, e.start * fb);
          return out;
        };
        const resize = (samples: Buffer) =>
          length.kind === 'append'
            ? Buffer.concat([samples, noise(length.frames * fb, length.seed)])
            : length.kind === 'truncate'
              ? samples.subarray(0, cut * fb)
              : samples;
        const ours = withSamples(small, resize(apply('ours')));
        const theirs = withSamples(small, apply('theirs'));
        const expected = resize(apply());
        const bytes = swap
          ? await merged(small, theirs, ours, 'take.wav', chunk)
          : await merged(small, ours, theirs, 'take.wav', chunk);
        assert.ok(samplesOf(bytes).equals(expected));
        const info = await readWav(new MediaReader(bufferAccess(bytes), 'wav'));
        assert.equal(info.durationSeconds, expected.length / fb / RATE);
        assert.equal(info.bitDepth, 24);
        if (checkedByFfmpeg.length < 5 && usable.length >= 2)
          checkedByFfmpeg.push([bytes, expected]);
      },
    ),
    { numRuns: 200 },
  );
  // A handful of the merged files, decoded by ffmpeg itself.
  assert.equal(checkedByFfmpeg.length, 5);
  const files = checkedByFfmpeg.map(([bytes], i) => save(`property-${i}.wav`, bytes));
  decoded(files, 's24le').forEach((samples, i) =>
    assert.ok(samples.equals(checkedByFfmpeg[i]![1])),
  );
});

test('property: overlapping different edits always conflict, naming their overlap', async () => {
  const small = load('small2.wav');
  const bs = samplesOf(small);
  const fb = 2;
  const frames = bs.length / fb;
  const range = fc
    .tuple(fc.integer({ min: 0, max: frames - 1 }), fc.integer({ min: 1, max: 400 }))
    .map(([start, n]) => ({ start, end: Math.min(frames, start + n) }));
  await fc.assert(
    fc.asyncProperty(range, range, fc.integer(), async (a, b, seed) => {
      fc.pre(a.start < b.end && b.start < a.end);
      const fill = (r: { start: number; end: number }, s: number) => {
        const out = Buffer.from(bs);
        // Every sample differs from base: the changed runs are exactly the ranges.
        for (let f = r.start; f < r.end; f++)
          out.writeInt16LE(((out.readInt16LE(f * fb) + 1 + (s & 0xff)) << 16) >> 16, f * fb);
        return out;
      };
      const ours = withSamples(small, fill(a, seed));
      const theirs = withSamples(small, fill(b, seed + 1));
      const start = Math.max(a.start, b.start);
      const end = Math.min(a.end, b.end);
      const message = await conflict(small, ours, theirs);
      assert.match(
        message,
        new RegExp(`^both sides changed samples .* \\(frames ${start}–${end - 1}\\)`),
      );
    }),
    { numRuns: 100 },
  );
});
