/**
 * Media-aware merges of audio through the real CLI, one repository holding a
 * WAV and a Reaper project (fewer CLI runs on a busy machine): branches that
 * changed different sample ranges and tags of the WAV, and adjacent property
 * lines of one Reaper track (a line-merge conflict), merge into a WAV ffmpeg
 * decodes with both changes and a project with both; then overlapping sample
 * edits and one property changed on both sides conflict, naming the range and
 * the property, with ours left in place.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import {
  ffmpegDecodeErrors,
  ffprobeTags,
  renderAll,
  samplesOf,
  sha256,
  splice,
  withSamples,
} from './audio-files.ts';
import { TempRepo } from './helpers.ts';

const FB = 4;
const RATE = 8000;

async function commit(
  repo: TempRepo,
  files: Record<string, string | Buffer>,
  message: string,
): Promise<void> {
  for (const [file, bytes] of Object.entries(files)) await writeFile(repo.path(file), bytes);
  await repo.ok(['commit', '-q', '-a', '-m', message]);
}

function project(volpan: string, mutesolo: string, position: string): string {
  return [
    '<REAPER_PROJECT 0.1 "7.11/linux-x86_64" 1700000000',
    '  TEMPO 120 4 4',
    '  <TRACK {00000001-1111-2222-3333-444455556666}',
    '    NAME "Drums"',
    `    VOLPAN ${volpan}`,
    `    MUTESOLO ${mutesolo}`,
    '    TRACKID {00000001-1111-2222-3333-444455556666}',
    '    <ITEM',
    `      POSITION ${position}`,
    '      LENGTH 4',
    '      IGUID {00000100-1111-2222-3333-444455556666}',
    '      NAME "kick.wav"',
    '    >',
    '  >',
    '>',
    '',
  ].join('\n');
}

test('WAV sample ranges and tags, Reaper track properties: merge through the CLI when different, conflict when the same', async () => {
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'mediagit-audio-cli-'));
  const repo = await TempRepo.create();
  try {
    const sine = `sine=frequency=440:sample_rate=${RATE}:duration=2`;
    const noise = `anoisesrc=color=white:amplitude=0.5:seed=9:sample_rate=${RATE}:duration=2`;
    const tags = (title: string, artist: string) => [
      '-ac',
      '2',
      '-metadata',
      `title=${title}`,
      '-metadata',
      `artist=${artist}`,
    ];
    renderAll([
      { file: path.join(tmp, 'base.wav'), source: sine, args: tags('Song', 'Band') },
      { file: path.join(tmp, 'ours.wav'), source: sine, args: tags('Song v2', 'Band') },
      { file: path.join(tmp, 'theirs.wav'), source: sine, args: tags('Song', 'The Band') },
      { file: path.join(tmp, 'noise.wav'), source: noise, args: ['-ac', '2'] },
    ]);
    const load = (name: string) => readFile(path.join(tmp, name));
    const base = await load('base.wav');
    const bs = samplesOf(base);
    const noiseSamples = samplesOf(await load('noise.wav'));
    const edit = (file: Buffer, at: number, count: number) =>
      withSamples(file, splice(bs, FB, at, noiseSamples, at, count));

    await writeFile(repo.path('take.wav'), base);
    await writeFile(repo.path('song.rpp'), project('1 0', '0 0 0', '0'));
    await repo.ok(['add', 'take.wav', 'song.rpp']);
    await repo.ok(['commit', '-q', '-m', 'take and song']);
    await repo.ok(['switch', '-q', '-c', 'theirs']);
    const theirs = edit(await load('theirs.wav'), 9000, 1000);
    const theirsSong = project('1 0', '1 0 0', '2');
    await commit(
      repo,
      { 'take.wav': theirs, 'song.rpp': theirsSong },
      'theirs: 1.125 s, artist; mute, move',
    );
    await repo.ok(['switch', '-q', 'main']);
    const ours = edit(await load('ours.wav'), 1000, 2000);
    await commit(
      repo,
      { 'take.wav': ours, 'song.rpp': project('0.5 0', '0 0 0', '0') },
      'ours: 0.125 s, title; quieter',
    );

    await repo.ok(['merge', '-q', '-m', 'merge theirs', 'theirs']);
    const mergedFile = repo.path('take.wav');
    assert.deepEqual(ffmpegDecodeErrors(mergedFile), { status: 0, stderr: '' });
    const merged = samplesOf(await readFile(mergedFile));
    const range = (s: Buffer, start: number, end: number) =>
      sha256(s.subarray(start * FB, end * FB));
    assert.equal(merged.length, bs.length);
    assert.equal(range(merged, 1000, 3000), range(samplesOf(ours), 1000, 3000));
    assert.equal(range(merged, 9000, 10000), range(samplesOf(theirs), 9000, 10000));
    assert.equal(range(merged, 0, 1000), range(bs, 0, 1000));
    assert.equal(range(merged, 3000, 9000), range(bs, 3000, 9000));
    assert.equal(range(merged, 10000, 16000), range(bs, 10000, 16000));
    const mergedTags = ffprobeTags(mergedFile);
    assert.equal(mergedTags.title, 'Song v2');
    assert.equal(mergedTags.artist, 'The Band');
    assert.equal(await readFile(repo.path('song.rpp'), 'utf8'), project('0.5 0', '1 0 0', '2'));
    assert.deepEqual((await repo.status()).unstaged, []);

    // Both change 1.250 s–1.500 s: a conflict naming the range; ours stays.
    await repo.ok(['switch', '-q', '-c', 'late']);
    const mergedBytes = await readFile(mergedFile);
    const late = withSamples(mergedBytes, splice(merged, FB, 10000, noiseSamples, 0, 4000));
    await commit(
      repo,
      { 'take.wav': late, 'song.rpp': project('2 0', '1 0 0', '2') },
      'late edit; louder',
    );
    await repo.ok(['switch', '-q', 'main']);
    const early = withSamples(mergedBytes, splice(merged, FB, 8000, noiseSamples, 5000, 4000));
    const oursSong = project('0.25 0', '1 0 0', '2');
    await commit(repo, { 'take.wav': early, 'song.rpp': oursSong }, 'early edit; quieter still');
    const result = await repo.fails(['merge', 'late'], 1);
    assert.match(
      result.stderr,
      /CONFLICT \(content\): Merge conflict in take\.wav \(pcm-audio: both sides changed samples 1\.250 s–1\.500 s \(frames 10000–11999\)\)/,
    );
    assert.match(
      result.stderr,
      /CONFLICT \(content\): Merge conflict in song\.rpp \(reaper-tracks: both sides changed track 'Drums' property VOLPAN\)/,
    );
    assert.ok((await readFile(mergedFile)).equals(early));
    assert.equal(await readFile(repo.path('song.rpp'), 'utf8'), oursSong);
    const status = JSON.parse((await repo.ok(['status', '--json'])).out) as {
      unmerged: { path: string; type: string }[];
    };
    assert.deepEqual(status.unmerged, [
      { path: 'song.rpp', type: 'ModifyModify' },
      { path: 'take.wav', type: 'ModifyModify' },
    ]);
  } finally {
    await repo.cleanup();
    await rm(tmp, { recursive: true, force: true });
  }
});
