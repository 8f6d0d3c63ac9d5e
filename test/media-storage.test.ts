/**
 * Media-aware storage end to end, with real files made by ffmpeg and sharp:
 * a metadata-only re-mux of an MP4 stores only the changed container parts,
 * already-compressed files are never stored larger than they are, and
 * truncated or malformed containers are stored and restored byte-exact.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import sharp from 'sharp';
import { TempRepo } from './helpers.ts';

let repo: TempRepo;

function ffmpeg(...args: string[]): void {
  execFileSync('ffmpeg', ['-loglevel', 'error', '-y', ...args]);
}

async function repoBytes(): Promise<number> {
  let total = 0;
  for (const entry of await fs.readdir(repo.gitDir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) total += (await fs.stat(path.join(entry.parentPath, entry.name))).size;
  }
  return total;
}

async function commitAndMeasure(file: string): Promise<number> {
  const before = await repoBytes();
  await repo.ok(['add', file]);
  await repo.ok(['commit', '-q', '-m', `add ${file}`]);
  return (await repoBytes()) - before;
}

async function assertRoundTrip(file: string): Promise<void> {
  const shown = await repo.ok(['show', `HEAD:${file}`]);
  assert.ok(shown.stdout.equals(await fs.readFile(repo.path(file))), `${file} reads back exactly`);
}

before(async () => {
  repo = await TempRepo.create({ chunkThreshold: 256 * 1024 });
});

after(async () => {
  await repo.cleanup();
});

test('a metadata-only re-mux of an MP4 adds little more than the changed moov box', async () => {
  ffmpeg(
    ...[
      '-f',
      'lavfi',
      '-i',
      'testsrc2=size=320x240:rate=25',
      '-f',
      'lavfi',
      '-i',
      'sine=frequency=440',
    ],
    ...[
      '-t',
      '8',
      '-c:v',
      'libx264',
      '-preset',
      'ultrafast',
      '-b:v',
      '3M',
      '-c:a',
      'aac',
      '-shortest',
    ],
    repo.path('a.mp4'),
  );
  ffmpeg('-i', repo.path('a.mp4'), '-c', 'copy', '-metadata', 'title=x', repo.path('b.mp4'));
  const size = (await fs.stat(repo.path('b.mp4'))).size;
  assert.ok(size > 1024 * 1024, `fixture is ${size} bytes`);
  await commitAndMeasure('a.mp4');
  const grew = await commitAndMeasure('b.mp4');
  // The moov box (a few KiB here) plus one manifest, tree and commit; plain
  // FastCDC would re-store the chunk around every shifted boundary.
  assert.ok(grew < 64 * 1024, `re-mux grew the repository by ${grew} bytes of ${size}`);
  await assertRoundTrip('a.mp4');
  await assertRoundTrip('b.mp4');
});

test('already-compressed files are never stored larger than the input plus headers', async () => {
  const noise = Buffer.alloc(512 * 512 * 3);
  for (let i = 0; i < noise.length; i++) noise[i] = (i * 7919 + (i >> 9) * 104729) & 0xff;
  await sharp(noise, { raw: { width: 512, height: 512, channels: 3 } })
    .jpeg({ quality: 95 })
    .toFile(repo.path('photo.jpg'));
  ffmpeg(
    '-f',
    'lavfi',
    '-i',
    'anoisesrc=d=20',
    '-c:a',
    'libmp3lame',
    '-b:a',
    '192k',
    repo.path('take.mp3'),
  );
  for (const file of ['photo.jpg', 'take.mp3']) {
    const size = (await fs.stat(repo.path(file))).size;
    const grew = await commitAndMeasure(file);
    // 16-byte header per object, one manifest line per chunk, a tree and a commit.
    assert.ok(grew <= size + 4096, `${file}: ${size} bytes stored as ${grew}`);
    await assertRoundTrip(file);
  }
});

test('truncated and malformed containers are stored and restored byte-exact', async () => {
  const mp4 = await fs.readFile(repo.path('a.mp4'));
  await fs.writeFile(repo.path('cut.mp4'), mp4.subarray(0, Math.floor(mp4.length * 0.6)));
  ffmpeg('-f', 'lavfi', '-i', 'sine=frequency=300:duration=6', repo.path('tone.wav'));
  const wav = await fs.readFile(repo.path('tone.wav'));
  // RIFF and data sizes far past the end of the file.
  wav.writeUInt32LE(0x7ffffff0, 4);
  wav.writeUInt32LE(0x7fffff00, 40);
  await fs.writeFile(repo.path('bogus.wav'), wav);
  ffmpeg(
    '-f',
    'lavfi',
    '-i',
    'testsrc=size=160x120:rate=10',
    '-t',
    '30',
    '-c:v',
    'mpeg4',
    repo.path('clip.mkv'),
  );
  const mkv = await fs.readFile(repo.path('clip.mkv'));
  // An EBML element size of all ones in the middle of the file.
  mkv.fill(0xff, Math.floor(mkv.length / 2), Math.floor(mkv.length / 2) + 16);
  await fs.writeFile(repo.path('bogus.mkv'), mkv);
  for (const file of ['cut.mp4', 'bogus.wav', 'bogus.mkv']) {
    await commitAndMeasure(file);
    await assertRoundTrip(file);
  }
  await fs.rm(repo.path('cut.mp4'));
  await repo.ok(['checkout', 'HEAD', '--', 'cut.mp4']);
  assert.ok(
    (await fs.readFile(repo.path('cut.mp4'))).equals(mp4.subarray(0, Math.floor(mp4.length * 0.6))),
  );
});
