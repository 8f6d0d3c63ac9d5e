/**
 * Media-aware merges of video timelines through the real CLI: an OTIO
 * timeline edited on two branches (a trim and a move on one, a clip added to
 * another track on the other) merges into one that validates against
 * test/fixtures/otio.schema.json and holds both; one clip trimmed on both
 * is a conflict naming it, leaving ours in place. An MP4 retitled on one
 * branch and re-encoded on the other merges into a file ffprobe reads with
 * the new title and the re-encoded packets.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';
import { Ajv } from 'ajv';
import { TempRepo } from './helpers.ts';

const run = promisify(execFile);
const validate = new Ajv({ allErrors: true }).compile(
  JSON.parse(
    await fs.readFile(new URL('fixtures/otio.schema.json', import.meta.url), 'utf8'),
  ) as object,
);

const time = (value: number) => ({ OTIO_SCHEMA: 'RationalTime.1', rate: 24, value });
const range = (start: number, duration: number) => ({
  OTIO_SCHEMA: 'TimeRange.1',
  duration: time(duration),
  start_time: time(start),
});
const fields = { metadata: {}, source_range: null, effects: [], markers: [], enabled: true };

/** A clip "name start+duration" of file:///media/name.mov, a gap "gap duration", a transition "~". */
function item(spec: string): object {
  if (spec === '~') {
    return {
      OTIO_SCHEMA: 'Transition.1',
      metadata: {},
      name: 'dissolve',
      in_offset: time(6),
      out_offset: time(6),
      transition_type: 'SMPTE_Dissolve',
    };
  }
  const [name, span] = spec.split(' ') as [string, string];
  const [start, duration] = span.split('+').map(Number) as [number, number];
  if (name === 'gap')
    return { OTIO_SCHEMA: 'Gap.1', ...fields, name: '', source_range: range(0, start) };
  return {
    OTIO_SCHEMA: 'Clip.1',
    ...fields,
    name,
    source_range: range(start, duration),
    media_reference: {
      OTIO_SCHEMA: 'ExternalReference.1',
      metadata: {},
      name: '',
      available_range: null,
      target_url: `file:///media/${name}.mov`,
    },
  };
}

function otio(tracks: Record<string, string[]>): string {
  const children = Object.entries(tracks).map(([name, items]) => ({
    OTIO_SCHEMA: 'Track.1',
    ...fields,
    name,
    children: items.map(item),
    kind: name.startsWith('V') ? 'Video' : 'Audio',
  }));
  const timeline = {
    OTIO_SCHEMA: 'Timeline.1',
    metadata: {},
    name: 'cut',
    global_start_time: null,
    tracks: { OTIO_SCHEMA: 'Stack.1', ...fields, name: 'tracks', children },
  };
  return JSON.stringify(timeline, null, 4).replace(
    /"(rate|value)": (\d+)(,?)\n/g,
    '"$1": $2.0$3\n',
  );
}

/** Each track's items read back: "A 0+48", "gap 24", "~". */
function itemsOf(text: string): Record<string, string[]> {
  type Item = {
    OTIO_SCHEMA: string;
    name: string;
    source_range: { start_time: { value: number }; duration: { value: number } };
  };
  const timeline = JSON.parse(text) as {
    tracks: { children: { name: string; children: Item[] }[] };
  };
  return Object.fromEntries(
    timeline.tracks.children.map((track) => [
      track.name,
      track.children.map((c) =>
        c.OTIO_SCHEMA === 'Transition.1'
          ? '~'
          : `${c.OTIO_SCHEMA === 'Gap.1' ? 'gap' : c.name} ${c.source_range.start_time.value}+${c.source_range.duration.value}`,
      ),
    ]),
  );
}

describe('timeline merges through the CLI', { concurrency: true }, () => {
  test('OTIO: edits to different clips and tracks merge; one clip trimmed on both conflicts', async () => {
    const repo = await TempRepo.create();
    try {
      const base = {
        V1: ['A 0+48', '~', 'B 0+48', 'C 0+48', 'D 0+48'],
        A1: ['gap 24+0', 'M 0+48'],
      };
      await fs.writeFile(repo.path('cut.otio'), otio(base));
      await repo.ok(['add', 'cut.otio']);
      await repo.ok(['commit', '-q', '-m', 'cut']);
      // Branches from the first cut: music adds N to A1, short trims C.
      await repo.ok(['switch', '-q', '-c', 'music']);
      await fs.writeFile(
        repo.path('cut.otio'),
        otio({ ...base, A1: ['gap 24+0', 'M 0+48', 'N 0+96'] }),
      );
      await repo.ok(['commit', '-q', '-a', '-m', 'music']);
      await repo.ok(['switch', '-q', '-c', 'short', 'main']);
      await fs.writeFile(
        repo.path('cut.otio'),
        otio({ ...base, V1: ['A 0+48', '~', 'B 0+48', 'C 0+20', 'D 0+48'] }),
      );
      await repo.ok(['commit', '-q', '-a', '-m', 'short C']);
      await repo.ok(['switch', '-q', 'main']);
      // Ours trims B and C, and moves D to the front.
      const ours = otio({ ...base, V1: ['D 0+48', 'A 0+48', '~', 'B 12+24', 'C 4+30'] });
      await fs.writeFile(repo.path('cut.otio'), ours);
      await repo.ok(['commit', '-q', '-a', '-m', 'trim and move']);

      await repo.ok(['merge', '-q', '-m', 'merge music', 'music']);
      const merged = await fs.readFile(repo.path('cut.otio'), 'utf8');
      assert.ok(validate(JSON.parse(merged)), JSON.stringify(validate.errors));
      assert.deepEqual(itemsOf(merged), {
        V1: ['D 0+48', 'A 0+48', '~', 'B 12+24', 'C 4+30'],
        A1: ['gap 0+24', 'M 0+48', 'N 0+96'],
      });

      // Both trimmed C, differently: a conflict naming the clip; ours stays.
      const result = await repo.fails(['merge', 'short'], 1);
      assert.match(
        result.stderr,
        /CONFLICT \(content\): Merge conflict in cut\.otio \(otio-timeline: both sides changed clip 'C' in track 'V1'\)/,
      );
      assert.equal(await fs.readFile(repo.path('cut.otio'), 'utf8'), merged);
      const status = JSON.parse((await repo.ok(['status', '--json'])).out) as {
        unmerged: { path: string; type: string }[];
      };
      assert.deepEqual(status.unmerged, [{ path: 'cut.otio', type: 'ModifyModify' }]);
    } finally {
      await repo.cleanup();
    }
  });

  test('MP4: a retitle merges with a re-encode', async () => {
    const repo = await TempRepo.create();
    const ffmpeg = (...args: string[]) => run('ffmpeg', ['-v', 'error', '-y', ...args]);
    const encode = (crf: string, out: string) =>
      ffmpeg(
        '-f',
        'lavfi',
        '-i',
        'testsrc=size=64x48:rate=10:duration=1',
        '-c:v',
        'libx264',
        '-preset',
        'ultrafast',
        '-crf',
        crf,
        '-g',
        '5',
        repo.path(out),
      );
    const probe = async (file: string) => {
      const { stdout } = await run('ffprobe', [
        '-v',
        'error',
        '-of',
        'json',
        '-show_data_hash',
        'sha256',
        '-show_packets',
        '-show_entries',
        'format_tags:packet=data_hash',
        file,
      ]);
      const json = JSON.parse(stdout) as {
        format: { tags?: { title?: string } };
        packets: { data_hash: string }[];
      };
      return { title: json.format.tags?.title, packets: json.packets.map((p) => p.data_hash) };
    };
    try {
      await Promise.all([encode('30', 'clip.mp4'), encode('45', 'reenc.mp4')]);
      await repo.ok(['add', 'clip.mp4']);
      await repo.ok(['commit', '-q', '-m', 'clip']);
      await repo.ok(['switch', '-q', '-c', 'grade']);
      await fs.rename(repo.path('reenc.mp4'), repo.path('clip.mp4'));
      await repo.ok(['commit', '-q', '-a', '-m', 're-encode']);
      const reencoded = await probe(repo.path('clip.mp4'));
      await repo.ok(['switch', '-q', 'main']);
      await ffmpeg(
        '-i',
        repo.path('clip.mp4'),
        '-c',
        'copy',
        '-metadata',
        'title=Final cut',
        repo.path('titled.mp4'),
      );
      await fs.rename(repo.path('titled.mp4'), repo.path('clip.mp4'));
      await repo.ok(['commit', '-q', '-a', '-m', 'title']);

      await repo.ok(['merge', '-q', '-m', 'merge grade', 'grade']);
      const merged = await probe(repo.path('clip.mp4'));
      assert.equal(merged.title, 'Final cut');
      assert.deepEqual(merged.packets, reencoded.packets);
    } finally {
      await repo.cleanup();
    }
  });
});
