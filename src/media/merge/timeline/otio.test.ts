/**
 * The OTIO strategy on timelines written here as OTIO serializes them
 * (tracks, clips with external references, a gap, a transition, 4-space
 * indent, rates written `24.0`): merges read back clip by clip, conflicts
 * name the clip, merged files validate against test/fixtures/otio.schema.json
 * (ajv), and 200 random non-overlapping edit pairs merge to the clip lists a
 * plain model of the edits predicts.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { Ajv } from 'ajv';
import fc from 'fast-check';
import type { MediaFormat } from '../../detect.ts';
import { bufferAccess } from '../../info/random-access.ts';
import { writeMerged, type MergedContent } from '../../merge-strategy.ts';
import { otioMergeStrategy, mergeTimelines } from './otio.ts';

const schema = JSON.parse(
  fs.readFileSync(new URL('../../../../test/fixtures/otio.schema.json', import.meta.url), 'utf8'),
) as object;
const validate = new Ajv({ allErrors: true }).compile(schema);

interface ClipSpec {
  readonly kind: 'clip';
  readonly name: string;
  readonly start: number;
  readonly duration: number;
  readonly note?: string;
}
interface GapSpec {
  readonly kind: 'gap';
  readonly duration: number;
}
interface TransitionSpec {
  readonly kind: 'transition';
  readonly name: string;
}
type ItemSpec = ClipSpec | GapSpec | TransitionSpec;
interface TrackSpec {
  readonly name: string;
  readonly kind: 'Video' | 'Audio';
  readonly items: readonly ItemSpec[];
}

const time = (value: number) => ({ OTIO_SCHEMA: 'RationalTime.1', rate: 24, value });
const range = (start: number, duration: number) => ({
  OTIO_SCHEMA: 'TimeRange.1',
  duration: time(duration),
  start_time: time(start),
});

function item(spec: ItemSpec): object {
  if (spec.kind === 'gap') {
    return {
      OTIO_SCHEMA: 'Gap.1',
      metadata: {},
      name: '',
      source_range: range(0, spec.duration),
      effects: [],
      markers: [],
      enabled: true,
    };
  }
  if (spec.kind === 'transition') {
    return {
      OTIO_SCHEMA: 'Transition.1',
      metadata: {},
      name: spec.name,
      in_offset: time(6),
      out_offset: time(6),
      transition_type: 'SMPTE_Dissolve',
    };
  }
  return {
    OTIO_SCHEMA: 'Clip.1',
    metadata: spec.note === undefined ? {} : { note: spec.note },
    name: spec.name,
    source_range: range(spec.start, spec.duration),
    effects: [],
    markers:
      spec.name === 'A'
        ? [
            {
              OTIO_SCHEMA: 'Marker.2',
              metadata: {},
              name: 'sync',
              color: 'RED',
              marked_range: range(spec.start, 0),
              comment: '',
            },
          ]
        : [],
    enabled: true,
    media_reference: {
      OTIO_SCHEMA: 'ExternalReference.1',
      metadata: {},
      name: '',
      available_range: range(0, 1000),
      available_image_bounds: null,
      target_url: `file:///media/${spec.name}.mov`,
    },
  };
}

/** A timeline as OTIO writes it: 4-space indent, float rates and values. */
function otio(tracks: readonly TrackSpec[], name = 'cut'): string {
  const timeline = {
    OTIO_SCHEMA: 'Timeline.1',
    metadata: {},
    name,
    global_start_time: time(86400),
    tracks: {
      OTIO_SCHEMA: 'Stack.1',
      metadata: {},
      name: 'tracks',
      source_range: null,
      effects: [],
      markers: [],
      enabled: true,
      children: tracks.map((track) => ({
        OTIO_SCHEMA: 'Track.1',
        metadata: {},
        name: track.name,
        source_range: null,
        effects: [],
        markers: [],
        enabled: true,
        children: track.items.map(item),
        kind: track.kind,
      })),
    },
  };
  return JSON.stringify(timeline, null, 4).replace(
    /"(rate|value)": (\d+)(,?)\n/g,
    '"$1": $2.0$3\n',
  );
}

/** Each track's items as a line: "A 0+48 note", "gap 24", "transition X". */
function itemsOf(text: string): Record<string, string[]> {
  const timeline = JSON.parse(text) as {
    tracks: { children: { name: string; children: Record<string, unknown>[] }[] };
  };
  const out: Record<string, string[]> = {};
  for (const track of timeline.tracks.children) {
    out[track.name] = track.children.map((child) => {
      const c = child as {
        OTIO_SCHEMA: string;
        name: string;
        metadata: { note?: string };
        source_range?: { start_time: { value: number }; duration: { value: number } };
      };
      if (c.OTIO_SCHEMA === 'Gap.1') return `gap ${c.source_range!.duration.value}`;
      if (c.OTIO_SCHEMA === 'Transition.1') return `transition ${c.name}`;
      const r = c.source_range!;
      return `${c.name} ${r.start_time.value}+${r.duration.value}${c.metadata.note ? ` ${c.metadata.note}` : ''}`;
    });
  }
  return out;
}

const clip = (name: string, start = 0, duration = 48, note?: string): ClipSpec =>
  note === undefined
    ? { kind: 'clip', name, start, duration }
    : { kind: 'clip', name, start, duration, note };

const FORMAT: MediaFormat = {
  format: 'otio',
  category: 'creative',
  alreadyCompressed: false,
  mime: 'application/json',
  detectedBy: 'extension',
};

async function run(base: string, ours: string, theirs: string) {
  const sides = {
    base: bufferAccess(Buffer.from(base)),
    ours: bufferAccess(Buffer.from(ours)),
    theirs: bufferAccess(Buffer.from(theirs)),
  };
  const result = await otioMergeStrategy.merge({ path: 'cut.otio', format: FORMAT, ...sides });
  if (!('merged' in result)) return result;
  const parts: Uint8Array[] = [];
  await writeMerged(result.merged as MergedContent, sides, async (data) => {
    parts.push(Buffer.from(data));
  });
  return { text: Buffer.concat(parts).toString('utf8') };
}

const BASE_TRACKS: TrackSpec[] = [
  {
    name: 'V1',
    kind: 'Video',
    items: [
      clip('A'),
      { kind: 'transition', name: 'dissolve' },
      clip('B'),
      clip('C'),
      clip('D'),
      clip('E'),
    ],
  },
  { name: 'A1', kind: 'Audio', items: [{ kind: 'gap', duration: 24 }, clip('M'), clip('N')] },
];
const withTrack = (index: number, items: ItemSpec[]): TrackSpec[] =>
  BASE_TRACKS.map((track, i) => (i === index ? { ...track, items } : track));

test('a trim, a clip added on another track and a move merge; the result validates', async () => {
  const base = otio(BASE_TRACKS);
  assert.ok(validate(JSON.parse(base)), JSON.stringify(validate.errors));
  // Ours trims B and moves E to follow A's transition; theirs adds Z to A1.
  const ours = otio(
    withTrack(0, [
      clip('A'),
      { kind: 'transition', name: 'dissolve' },
      clip('B', 12, 24),
      clip('C'),
      clip('D'),
    ]).map((t, i) =>
      i === 0 ? { ...t, items: [t.items[0]!, clip('E'), ...t.items.slice(1)] } : t,
    ),
  );
  const theirs = otio(
    withTrack(1, [{ kind: 'gap', duration: 24 }, clip('M'), clip('Z'), clip('N')]),
  );
  const result = await run(base, ours, theirs);
  assert.ok('text' in result, JSON.stringify(result));
  assert.deepEqual(itemsOf(result.text), {
    V1: ['A 0+48', 'E 0+48', 'transition dissolve', 'B 12+24', 'C 0+48', 'D 0+48'],
    A1: ['gap 24', 'M 0+48', 'Z 0+48', 'N 0+48'],
  });
  assert.ok(validate(JSON.parse(result.text)), JSON.stringify(validate.errors));
  // Written as OTIO writes: numbers as they were (24.0), 4-space indent, key order kept.
  assert.match(result.text, /\n {4}"OTIO_SCHEMA": "Timeline\.1",\n/);
  assert.match(result.text, /"rate": 24\.0,/);
  assert.equal(result.text.indexOf('"rate": 24,'), -1);
  // Deterministic, and the merge of ours with an unchanged theirs is ours byte for byte.
  assert.deepEqual(await run(base, ours, theirs), result);
  assert.deepEqual(await run(base, ours, base), { text: ours });
});

test('both sides changing one clip differently is a conflict naming the clip and track', async () => {
  const base = otio(BASE_TRACKS);
  const ours = otio(
    withTrack(0, [
      clip('A'),
      { kind: 'transition', name: 'dissolve' },
      clip('B', 12, 24),
      clip('C'),
      clip('D'),
      clip('E'),
    ]),
  );
  const theirs = otio(
    withTrack(0, [
      clip('A'),
      { kind: 'transition', name: 'dissolve' },
      clip('B', 0, 30),
      clip('C'),
      clip('D'),
      clip('E'),
    ]),
  );
  assert.deepEqual(await run(base, ours, theirs), {
    conflict: "both sides changed clip 'B' in track 'V1'",
  });
  // One side changes a clip's metadata, the other deletes it.
  const noted = otio(
    withTrack(0, [
      clip('A'),
      { kind: 'transition', name: 'dissolve' },
      clip('B'),
      clip('C', 0, 48, 'grade'),
      clip('D'),
      clip('E'),
    ]),
  );
  const deleted = otio(
    withTrack(0, [
      clip('A'),
      { kind: 'transition', name: 'dissolve' },
      clip('B'),
      clip('D'),
      clip('E'),
    ]),
  );
  assert.deepEqual(await run(base, noted, deleted), {
    conflict: "both sides changed clip 'C' in track 'V1' (one side deleted it)",
  });
});

test('both sides inserting different clips at one spot is a conflict naming the spot', async () => {
  const base = otio(BASE_TRACKS);
  const ours = otio(withTrack(1, [{ kind: 'gap', duration: 24 }, clip('M'), clip('X'), clip('N')]));
  const theirs = otio(
    withTrack(1, [{ kind: 'gap', duration: 24 }, clip('M'), clip('Y'), clip('N')]),
  );
  assert.deepEqual(await run(base, ours, theirs), {
    conflict: "both sides inserted clip 'X', clip 'Y' after clip 'M' in track 'A1'",
  });
  // Moved to two different places.
  const movedOurs = otio(
    withTrack(0, [
      clip('E'),
      clip('A'),
      { kind: 'transition', name: 'dissolve' },
      clip('B'),
      clip('C'),
      clip('D'),
    ]),
  );
  const movedTheirs = otio(
    withTrack(0, [
      clip('A'),
      { kind: 'transition', name: 'dissolve' },
      clip('B'),
      clip('E'),
      clip('C'),
      clip('D'),
    ]),
  );
  const result = await run(base, movedOurs, movedTheirs);
  assert.ok('conflict' in result);
  assert.match(result.conflict, /both sides moved clip 'E' in track 'V1'/);
});

test('input that is not an OTIO timeline is declined', async () => {
  const base = otio(BASE_TRACKS);
  for (const bad of [
    '{"OTIO_SCHEMA": "Timeline.1", "tracks": ',
    '{"a": 1}',
    '\u00ff\u00fe',
    '{"OTIO_SCHEMA": "Timeline.1", "tracks": {"OTIO_SCHEMA": "Stack.1", "children": [{"OTIO_SCHEMA": "Clip.1"}]}}',
  ]) {
    const result = await run(base, bad, base);
    assert.ok('declined' in result, `${bad}: ${JSON.stringify(result)}`);
  }
  const latin1 = await otioMergeStrategy.merge({
    path: 'cut.otio',
    format: FORMAT,
    base: bufferAccess(Buffer.from(base)),
    ours: bufferAccess(Buffer.from([0xff, 0xfe, 0x7b])),
    theirs: bufferAccess(Buffer.from(base)),
  });
  assert.ok('declined' in latin1);
});

test('describe lists clips added, removed, changed and moved', async () => {
  const before = otio(BASE_TRACKS);
  const after = otio(
    withTrack(0, [
      clip('E'),
      clip('A'),
      { kind: 'transition', name: 'dissolve' },
      clip('B', 12, 24),
      clip('D'),
      clip('F'),
    ]),
  );
  const lines = await otioMergeStrategy.describe!(
    bufferAccess(Buffer.from(before)),
    bufferAccess(Buffer.from(after)),
    FORMAT,
  );
  assert.deepEqual(lines, [
    "track 'V1': clip 'C' removed",
    "track 'V1': clip 'E' moved",
    "track 'V1': clip 'B' changed",
    "track 'V1': clip 'F' added",
  ]);
});

// ---- property: random non-overlapping edits ----

type Role = 'keep' | 'trim' | 'note' | 'delete';
interface Plan {
  /** Per track, per base clip: who edits it (0 nobody, 1 ours, 2 theirs) and how. */
  readonly roles: readonly (readonly [0 | 1 | 2, Role])[][];
  /** Per track, per side: where the side inserts a new clip (index among kept clips, -1 start). */
  readonly inserts: readonly (readonly [number | null, number | null])[];
  /** Per track, per side: where the side moves its first edited clip. */
  readonly moves: readonly (readonly [number | null, number | null])[];
}

const SIZES = [5, 4];

const planArb: fc.Arbitrary<Plan> = fc.record({
  roles: fc.tuple(
    ...SIZES.map((n) =>
      fc.array(
        fc.tuple(
          fc.constantFrom<0 | 1 | 2>(0, 0, 1, 2),
          fc.constantFrom<Role>('keep', 'trim', 'note', 'delete'),
        ),
        { minLength: n, maxLength: n + 3 },
      ),
    ),
  ),
  inserts: fc.array(
    fc.tuple(
      fc.option(fc.integer({ min: -1, max: 8 })),
      fc.option(fc.integer({ min: -1, max: 8 })),
    ),
    { minLength: 2, maxLength: 2 },
  ),
  moves: fc.array(
    fc.tuple(fc.option(fc.integer({ min: 0, max: 8 })), fc.option(fc.integer({ min: 0, max: 8 }))),
    { minLength: 2, maxLength: 2 },
  ),
}) as fc.Arbitrary<Plan>;

/** Base, ours, theirs and the expected merged item lists for a plan. */
function scenario(plan: Plan) {
  const names = ['V1', 'A1'];
  const base: TrackSpec[] = [];
  const sides: TrackSpec[][] = [[], []];
  const expected: Record<string, string[]> = {};
  plan.roles.forEach((roles, t) => {
    const name = names[t]!;
    const clips = roles.map((_, i) => clip(`${name}c${i}`, i * 10));
    const lead: ItemSpec[] = t === 1 ? [{ kind: 'gap', duration: 24 }] : [];
    base.push({ name, kind: t === 0 ? 'Video' : 'Audio', items: [...lead, ...clips] });
    const edited = (c: ClipSpec, role: Role): ClipSpec | undefined =>
      role === 'delete'
        ? undefined
        : role === 'trim'
          ? clip(c.name, c.start + 2, c.duration - 5)
          : role === 'note'
            ? clip(c.name, c.start, c.duration, 'graded')
            : c;
    // Which clips nobody edits: the anchors inserts and moves use, each once.
    const kept = clips.map((c, i) => [c, i] as const).filter(([, i]) => roles[i]![0] === 0);
    const used = new Set<number>();
    const anchorOf = (choice: number | null): number | undefined => {
      if (choice === null || choice >= kept.length) return undefined;
      if (used.has(choice)) return undefined;
      used.add(choice);
      return choice;
    };
    const inserts = plan.inserts[t]!.map(anchorOf);
    const moveAnchors = plan.moves[t]!.map((choice) =>
      choice === null ? undefined : anchorOf(choice),
    );
    // Kept index (-1: the start) → the side that places a clip after it, and the clip.
    const after = new Map<number, { owner: 0 | 1; clip: ClipSpec }>();
    const movedClip: (number | undefined)[] = [undefined, undefined];
    for (const s of [0, 1] as const) {
      const anchor = moveAnchors[s];
      const mine = clips.findIndex((_, i) => roles[i]![0] === s + 1 && roles[i]![1] !== 'delete');
      if (anchor === undefined || anchor < 0 || mine < 0) {
        if (anchor !== undefined) used.delete(anchor);
        continue;
      }
      // A move past one neighbour is ambiguous (which of the two moved?): only longer ones.
      const side = clips.filter((_, i) => !(roles[i]![0] === s + 1 && roles[i]![1] === 'delete'));
      const oldAt = side.findIndex((c) => c.name === clips[mine]!.name);
      const withoutIt = side.filter((c) => c.name !== clips[mine]!.name);
      const newAt = withoutIt.findIndex((c) => c.name === kept[anchor]![0].name) + 1;
      if (Math.abs(oldAt - newAt) < 2) {
        used.delete(anchor);
        continue;
      }
      movedClip[s] = mine;
      after.set(anchor, { owner: s, clip: edited(clips[mine]!, roles[mine]![1])! });
    }
    inserts.forEach((anchor, s) => {
      if (anchor !== undefined) {
        after.set(anchor, { owner: s as 0 | 1, clip: clip(`${name}new${s}`, 100 + s) });
      }
    });
    // Each side's track, and the expected merge.
    for (const s of [0, 1] as const) {
      const items: ItemSpec[] = [...lead];
      const placeAfter = (anchor: number) => {
        const placed = after.get(anchor);
        if (placed?.owner === s) items.push(placed.clip);
      };
      placeAfter(-1);
      clips.forEach((c, i) => {
        const [who, role] = roles[i]!;
        if (movedClip[s] !== i) {
          const mine = who === s + 1 ? edited(c, role) : c;
          if (mine) items.push(mine);
        }
        const k = kept.findIndex(([, j]) => j === i);
        if (k >= 0) placeAfter(k);
      });
      sides[s]!.push({ ...base[t]!, items });
    }
    const want: string[] = lead.map(() => 'gap 24');
    const line = (c: ClipSpec) => `${c.name} ${c.start}+${c.duration}${c.note ? ` ${c.note}` : ''}`;
    const start = after.get(-1);
    if (start) want.push(line(start.clip));
    clips.forEach((c, i) => {
      const [, role] = roles[i]!;
      const now = edited(c, roles[i]![0] === 0 ? 'keep' : role);
      if (now && movedClip[0] !== i && movedClip[1] !== i) want.push(line(now));
      const k = kept.findIndex(([, j]) => j === i);
      const placed = k >= 0 ? after.get(k) : undefined;
      if (placed) want.push(line(placed.clip));
    });
    expected[name] = want;
  });
  return { base: otio(base), ours: otio(sides[0]!), theirs: otio(sides[1]!), expected };
}

test('200 random non-overlapping edit pairs merge to the clip lists the edits predict', () => {
  fc.assert(
    fc.property(planArb, (plan) => {
      const { base, ours, theirs, expected } = scenario(plan);
      const result = mergeTimelines(base, ours, theirs);
      assert.ok(typeof result !== 'string' && 'text' in result, JSON.stringify(result));
      assert.deepEqual(itemsOf(result.text), expected);
      assert.ok(validate(JSON.parse(result.text)), JSON.stringify(validate.errors));
      // Merging the other way round gives the same clip lists.
      const swapped = mergeTimelines(base, theirs, ours);
      assert.ok(typeof swapped !== 'string' && 'text' in swapped);
      assert.deepEqual(itemsOf(swapped.text), expected);
    }),
    { numRuns: 200 },
  );
});
