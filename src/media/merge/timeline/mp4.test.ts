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
): Promise<{ title: string | undefined; packets: string[]; streams: string }> {
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
    format: { tags?: { title?: string } };
    packets: { data_hash: string }[];
    streams: object[];
  };
  return {
    title: json.format.tags?.title,
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
      const name = await family(label.replace(/\W+/g, '-'), [...flags], container);
      const [reenc, retitled] = await Promise.all([probe(name('reenc')), probe(name('title'))]);
      assert.notDeepEqual(reenc.packets, retitled.packets, 'the re-encode changed the stream');
      for (const [ours, theirs] of [
        ['title', 'reenc'],
        ['reenc', 'title'],
      ] as const) {
        const out = `${name('merged')}-${ours}.${container}`;
        const result = await merge(read(name('base')), read(name(ours)), read(name(theirs)), out);
        assert.ok('merged' in result, JSON.stringify(result));
        const [merged] = await Promise.all([
          probe(out),
          // Every frame decodes.
          run('ffmpeg', ['-v', 'error', '-xerror', '-i', file(out), '-f', 'null', '-']),
        ]);
        assert.equal(merged.title, 'Final cut');
        assert.deepEqual(merged.packets, reenc.packets);
        assert.equal(merged.streams, reenc.streams);
        // The stream side's mdat, byte for byte.
        const mdat = (bytes: Buffer) => {
          const at = bytes.indexOf('mdat');
          return bytes.subarray(at - 4, at - 4 + bytes.readUInt32BE(at - 4));
        };
        assert.ok(mdat(read(out)).equals(mdat(read(name('reenc')))));
      }
      const described = await mp4MergeStrategy.describe!(
        bufferAccess(read(name('base'))),
        bufferAccess(read(name('title'))),
        FORMAT,
      );
      assert.deepEqual(described, ['streams unchanged', "tag 'title' (©nam) added"]);
    });
  }

  test('tags or streams both sides changed are conflicts; non-MP4 input is declined', async () => {
    const name = await family('conflicts', [], 'mp4', true);
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
});
