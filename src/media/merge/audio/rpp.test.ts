/**
 * Reaper project merges on projects written here in Reaper's own layout
 * (Reaper itself is not on the test machine): tracks and items matched by
 * GUID, properties merged line by line, conflicts naming the track, item and
 * property; every merged project is compared with the project the test
 * expects, written by the same generator from the combined edits.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { detectFormat } from '../../detect.ts';
import { bufferAccess } from '../../info/random-access.ts';
import type { StrategyResult } from '../../merge-strategy.ts';
import { parseRpp, rppMergeStrategy } from './rpp.ts';

interface Item {
  readonly iguid: string;
  readonly name: string;
  readonly position: string;
  readonly length: string;
}

interface Track {
  readonly guid: string;
  readonly name: string;
  readonly volpan: string;
  readonly mutesolo: string;
  readonly fx: string;
  readonly items: readonly Item[];
}

interface Project {
  readonly tempo: string;
  readonly tracks: readonly Track[];
}

const guid = (n: number) =>
  `{${n.toString(16).toUpperCase().padStart(8, '0')}-1111-2222-3333-444455556666}`;

function rpp(project: Project, eol = '\n'): string {
  const lines = [
    '<REAPER_PROJECT 0.1 "7.11/linux-x86_64" 1700000000',
    '  RIPPLE 0',
    `  TEMPO ${project.tempo}`,
    '  MARKER 1 4 "Verse" 0 0 1 B {00000000-0000-0000-0000-000000000001} 0',
    '  <NOTES 0 2',
    '    |Session notes',
    '  >',
  ];
  for (const track of project.tracks) {
    lines.push(
      `  <TRACK ${track.guid}`,
      `    NAME "${track.name}"`,
      '    PEAKCOL 16576',
      `    VOLPAN ${track.volpan}`,
      `    MUTESOLO ${track.mutesolo}`,
      `    TRACKID ${track.guid}`,
      '    <FXCHAIN',
      '      SHOW 0',
      '      <VST "VST: ReaEQ (Cockos)" reaeq.vst.so 0 "" 1919247729<56535472656571726561657100000000> ""',
      `        ${track.fx}`,
      '      >',
      '    >',
    );
    for (const item of track.items) {
      lines.push(
        '    <ITEM',
        `      POSITION ${item.position}`,
        `      LENGTH ${item.length}`,
        `      IGUID ${item.iguid}`,
        `      NAME "${item.name}"`,
        '      <SOURCE WAVE',
        `        FILE "${item.name}"`,
        '      >',
        '    >',
      );
    }
    lines.push('  >');
  }
  lines.push('>');
  return lines.join(eol) + eol;
}

const KICK: Item = { iguid: guid(0x100), name: 'kick.wav', position: '0', length: '4' };
const SNARE: Item = { iguid: guid(0x101), name: 'snare.wav', position: '4', length: '2' };
const DRUMS: Track = {
  guid: guid(1),
  name: 'Drums',
  volpan: '1 0 -1 -1 1',
  mutesolo: '0 0 0',
  fx: 'cmVlcu9e7f4AAAAAAgAAAAEAAAA=',
  items: [KICK, SNARE],
};
const BASS: Track = { ...DRUMS, guid: guid(2), name: 'Bass', items: [] };
const BASE: Project = { tempo: '120 4 4', tracks: [DRUMS, BASS] };

async function run(base: string, ours: string, theirs: string): Promise<StrategyResult> {
  return rppMergeStrategy.merge({
    path: 'song.rpp',
    format: detectFormat(new Uint8Array(0), 'song.rpp'),
    base: bufferAccess(Buffer.from(base)),
    ours: bufferAccess(Buffer.from(ours)),
    theirs: bufferAccess(Buffer.from(theirs)),
  });
}

async function merged(base: string, ours: string, theirs: string): Promise<string> {
  const result = await run(base, ours, theirs);
  assert.ok('merged' in result, JSON.stringify(result));
  assert.ok(result.merged instanceof Uint8Array);
  const text = Buffer.from(result.merged).toString('utf8');
  parseRpp(text); // reopens
  return text;
}

async function conflict(base: string, ours: string, theirs: string): Promise<string> {
  const result = await run(base, ours, theirs);
  assert.ok('conflict' in result, JSON.stringify(result).slice(0, 300));
  return result.conflict;
}

const withTrack = (project: Project, name: string, change: Partial<Track>): Project => ({
  ...project,
  tracks: project.tracks.map((t) => (t.name === name ? { ...t, ...change } : t)),
});

const withItem = (track: Track, iguid: string, change: Partial<Item>): Partial<Track> => ({
  items: track.items.map((i) => (i.iguid === iguid ? { ...i, ...change } : i)),
});

test('edits to different tracks, items and properties merge, keeping order and indentation', async () => {
  const KEYS: Track = { ...BASS, guid: guid(3), name: 'Keys' };
  const HAT: Item = { iguid: guid(0x102), name: 'hat.wav', position: '8', length: '1' };
  // Ours: Drums' volume, the kick's position, the tempo.
  const ours: Project = {
    ...withTrack(
      withTrack(BASE, 'Drums', { volpan: '0.5 0 -1 -1 1' }),
      'Drums',
      withItem({ ...DRUMS, volpan: '0.5 0 -1 -1 1' }, KICK.iguid, { position: '1' }),
    ),
    tempo: '96 4 4',
  };
  // Theirs: Drums' mute, the kick's length, a new item on Drums, Bass renamed, a new track.
  const theirs: Project = {
    ...BASE,
    tracks: [
      { ...DRUMS, mutesolo: '1 0 0', items: [{ ...KICK, length: '3' }, SNARE, HAT] },
      { ...BASS, name: 'Bass DI' },
      KEYS,
    ],
  };
  const expected: Project = {
    tempo: '96 4 4',
    tracks: [
      {
        ...DRUMS,
        volpan: '0.5 0 -1 -1 1',
        mutesolo: '1 0 0',
        items: [{ ...KICK, position: '1', length: '3' }, SNARE, HAT],
      },
      { ...BASS, name: 'Bass DI' },
      KEYS,
    ],
  };
  assert.equal(await merged(rpp(BASE), rpp(ours), rpp(theirs)), rpp(expected));
  // The same, sides swapped.
  assert.equal(await merged(rpp(BASE), rpp(theirs), rpp(ours)), rpp(expected));
  // CRLF projects stay CRLF.
  assert.equal(
    await merged(rpp(BASE, '\r\n'), rpp(ours, '\r\n'), rpp(theirs, '\r\n')),
    rpp(expected, '\r\n'),
  );
  // A track one side deleted and the other left alone is deleted.
  const noBass = { ...BASE, tracks: [DRUMS] };
  assert.equal(
    await merged(rpp(BASE), rpp(noBass), rpp(ours)),
    rpp({ ...ours, tracks: [ours.tracks[0]!] }),
  );
});

test('edits both sides made differently conflict, naming the track, item, property or block', async () => {
  const base = rpp(BASE);
  const cases: [RegExp | string, Project, Project][] = [
    [
      "both sides changed track 'Drums' property VOLPAN",
      withTrack(BASE, 'Drums', { volpan: '0.5 0 -1 -1 1' }),
      withTrack(BASE, 'Drums', { volpan: '0.7 0 -1 -1 1' }),
    ],
    [
      "both sides changed item 'kick.wav' (track 'Drums') property POSITION",
      withTrack(BASE, 'Drums', withItem(DRUMS, KICK.iguid, { position: '1' })),
      withTrack(BASE, 'Drums', withItem(DRUMS, KICK.iguid, { position: '2' })),
    ],
    [
      "both sides changed track 'Drums' block <FXCHAIN>",
      withTrack(BASE, 'Drums', { fx: 'AAAA' }),
      withTrack(BASE, 'Drums', { fx: 'BBBB' }),
    ],
    [
      'both sides changed project property TEMPO',
      { ...BASE, tempo: '90 4 4' },
      { ...BASE, tempo: '100 4 4' },
    ],
    [
      "both sides changed track 'Bass DI' (ours deleted it)",
      { ...BASE, tracks: [DRUMS] },
      withTrack(BASE, 'Bass', { name: 'Bass DI' }),
    ],
  ];
  for (const [message, ours, theirs] of cases) {
    assert.equal(await conflict(base, rpp(ours), rpp(theirs)), message);
  }
});

test('saving on both sides (header time) and moving the view (CURSOR, ZOOM, SEL) are no conflict', async () => {
  const saved = (text: string, time: number, cursor: string) =>
    text
      .replace(' 1700000000\n', ` ${time}\n`)
      .replace('  RIPPLE 0\n', `  RIPPLE 0\n  CURSOR ${cursor}\n  ZOOM 100 0 0\n`);
  const base = saved(rpp(BASE), 1700000000, '0');
  const ours = saved(rpp(withTrack(BASE, 'Drums', { volpan: '0.5 0 -1 -1 1' })), 1700000300, '4');
  const theirs = saved(rpp(withTrack(BASE, 'Bass', { mutesolo: '1 0 0' })), 1700000200, '8');
  const both = withTrack(withTrack(BASE, 'Drums', { volpan: '0.5 0 -1 -1 1' }), 'Bass', {
    mutesolo: '1 0 0',
  });
  assert.equal(await merged(base, ours, theirs), saved(rpp(both), 1700000300, '4'));
  assert.equal(await merged(base, theirs, ours), saved(rpp(both), 1700000300, '8'));
  // A different Reaper version on each side is still a conflict.
  const other = theirs.replace('"7.11/linux-x86_64"', '"7.20/linux-x86_64"');
  const newer = ours.replace('"7.11/linux-x86_64"', '"7.15/linux-x86_64"');
  assert.equal(await conflict(base, newer, other), 'both sides changed project header');
});

test('text that is not a Reaper project of nested blocks is declined', async () => {
  const base = rpp(BASE);
  const declined = async (other: string) => {
    const result = await run(base, other, base);
    assert.ok('declined' in result, JSON.stringify(result).slice(0, 200));
    return result.declined;
  };
  assert.match(await declined('hello\n'), /text outside the project at line 1/);
  assert.match(
    await declined(base.replace(/\n>\n$/, '\n')),
    /block <REAPER_PROJECT> is not closed/,
  );
  assert.match(await declined(`${base}>\n`), /'>' without a block/);
  assert.match(await declined('<OTHER_THING\n>\n'), /no <REAPER_PROJECT block/);
  const twice = rpp({ ...BASE, tracks: [DRUMS, { ...BASS, guid: DRUMS.guid }] });
  assert.match(await declined(twice), /TRACK \{00000001-.*\} appears twice/);
});

test('property: random edits to different tracks and items merge to the combined project', async () => {
  const tracks = [0, 1, 2, 3].map((n) => ({
    ...DRUMS,
    guid: guid(10 + n),
    name: `Track ${n}`,
    items: [0, 1].map((m) => ({
      ...KICK,
      iguid: guid(0x200 + n * 2 + m),
      name: `clip${n}${m}.wav`,
    })),
  }));
  const base: Project = { tempo: '120 4 4', tracks };
  type Edit = {
    track: number;
    field: 'volpan' | 'mutesolo' | 'fx' | 'name' | 'position' | 'length';
    item: number;
    value: number;
  };
  const edit = fc.record({
    track: fc.integer({ min: 0, max: 3 }),
    field: fc.constantFrom('volpan', 'mutesolo', 'fx', 'name', 'position', 'length'),
    item: fc.integer({ min: 0, max: 1 }),
    value: fc.integer({ min: 1, max: 999 }),
  }) as fc.Arbitrary<Edit>;
  const apply = (project: Project, edits: readonly Edit[]): Project =>
    edits.reduce<Project>(
      (p, e) => ({
        ...p,
        tracks: p.tracks.map((t, i) => {
          if (i !== e.track) return t;
          if (e.field === 'position' || e.field === 'length') {
            return {
              ...t,
              items: t.items.map((it, j) =>
                j === e.item ? { ...it, [e.field]: String(e.value) } : it,
              ),
            };
          }
          return { ...t, [e.field]: `${e.field}-${e.value}` };
        }),
      }),
      project,
    );
  // The part an edit touches: a track property, or an item property.
  const part = (e: Edit) =>
    e.field === 'position' || e.field === 'length'
      ? `${e.track}/${e.item}/${e.field}`
      : `${e.track}/${e.field}`;
  await fc.assert(
    fc.asyncProperty(
      fc.array(edit, { maxLength: 6 }),
      fc.array(edit, { maxLength: 6 }),
      async (a, b) => {
        const taken = new Set(a.map(part));
        const theirsEdits = b.filter((e) => !taken.has(part(e)));
        const ours = apply(base, a);
        const theirs = apply(base, theirsEdits);
        assert.equal(
          await merged(rpp(base), rpp(ours), rpp(theirs)),
          rpp(apply(ours, theirsEdits)),
        );
      },
    ),
    { numRuns: 200 },
  );
});
