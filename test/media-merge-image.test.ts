/**
 * Media-aware merge of images through the real CLI: a PNG whose two
 * branches edited different 64×64 tiles (and one its text metadata with
 * exiftool) merges into a file sharp decodes with both edits; edits to the
 * same tile are a ModifyModify conflict naming the tile. A JPEG whose EXIF
 * one branch changed (exiftool) and whose pixels the other re-encoded
 * (sharp) merges with the pixel branch's scans byte for byte.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { TempRepo } from './helpers.ts';

const run = promisify(execFile);
const SIZE = 128;

function card(): Buffer {
  const data = Buffer.alloc(SIZE * SIZE * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * 13 + (i >> 9)) & 0xff;
  return data;
}

function paint(
  raw: Buffer,
  [x0, y0, w, h]: [number, number, number, number],
  value: number,
): Buffer {
  const out = Buffer.from(raw);
  for (let y = y0; y < y0 + h; y++) out.fill(value, (y * SIZE + x0) * 3, (y * SIZE + x0 + w) * 3);
  return out;
}

const png = (raw: Buffer) =>
  sharp(raw, { raw: { width: SIZE, height: SIZE, channels: 3 } })
    .png()
    .toBuffer();

/** Each 64×64 tile's digest of decoded pixels. */
async function tileHashes(bytes: Buffer): Promise<string[]> {
  const { data, info } = await sharp(bytes).raw().toBuffer({ resolveWithObject: true });
  const out: string[] = [];
  for (let y = 0; y < info.height; y += 64) {
    for (let x = 0; x < info.width; x += 64) {
      const hash = createHash('sha256');
      for (let line = y; line < y + 64; line++) {
        const row = line * info.width * info.channels;
        hash.update(data.subarray(row + x * info.channels, row + (x + 64) * info.channels));
      }
      out.push(hash.digest('hex').slice(0, 16));
    }
  }
  return out;
}

async function unmerged(repo: TempRepo): Promise<{ path: string; type: string }[]> {
  return (
    JSON.parse((await repo.ok(['status', '--json'])).out) as {
      unmerged: { path: string; type: string }[];
    }
  ).unmerged;
}

// The two scenarios use separate repositories: run them side by side.
describe('image merges through the CLI', { concurrency: true }, () => {
  test('PNG edits to different tiles merge through the CLI; edits to one tile conflict naming it', async () => {
    const repo = await TempRepo.create();
    try {
      const file = repo.path('card.png');
      await fs.writeFile(file, await png(card()));
      await repo.ok(['add', 'card.png']);
      await repo.ok(['commit', '-q', '-m', 'card']);
      await repo.ok(['switch', '-q', '-c', 'retouch']);
      await fs.writeFile(file, await png(paint(card(), [80, 80, 20, 20], 255)));
      await run('exiftool', ['-q', '-overwrite_original', '-PNG:Title=Harbour', file]);
      await repo.ok(['commit', '-q', '-a', '-m', 'retouch and title']);
      await repo.ok(['switch', '-q', 'main']);
      await fs.writeFile(file, await png(paint(card(), [4, 4, 20, 20], 0)));
      await repo.ok(['commit', '-q', '-a', '-m', 'dark corner']);

      await repo.ok(['merge', '-q', '-m', 'merge retouch', 'retouch']);
      const merged = await fs.readFile(file);
      const want = await png(paint(paint(card(), [4, 4, 20, 20], 0), [80, 80, 20, 20], 255));
      assert.deepEqual(await tileHashes(merged), await tileHashes(want));
      assert.equal((await run('exiftool', ['-s3', '-Title', file])).stdout.trim(), 'Harbour');
      assert.deepEqual((await repo.status()).unstaged, []);

      // Both repaint the top-left tile: a conflict naming it; ours stays in place.
      await repo.ok(['switch', '-q', '-c', 'red']);
      await fs.writeFile(
        file,
        await png(paint(paint(card(), [4, 4, 20, 20], 0), [40, 40, 8, 8], 200)),
      );
      await repo.ok(['commit', '-q', '-a', '-m', 'red dot']);
      await repo.ok(['switch', '-q', 'main']);
      const ours = await png(paint(paint(card(), [4, 4, 20, 20], 0), [10, 50, 8, 8], 100));
      await fs.writeFile(file, ours);
      await repo.ok(['commit', '-q', '-a', '-m', 'grey dot']);
      const result = await repo.fails(['merge', 'red'], 1);
      assert.match(
        result.stderr,
        /CONFLICT \(content\): Merge conflict in card\.png \(image: both sides changed tile \(0,0\)-\(63,63\)\)/,
      );
      assert.ok((await fs.readFile(file)).equals(ours), 'the working file is ours, byte for byte');
      assert.deepEqual(await unmerged(repo), [{ path: 'card.png', type: 'ModifyModify' }]);
    } finally {
      await repo.cleanup();
    }
  });

  /** The bytes from the first SOS marker to the end. */
  function scans(jpeg: Buffer): Buffer {
    for (let at = 2; at + 4 <= jpeg.length; at += 2 + jpeg.readUInt16BE(at + 2)) {
      if (jpeg[at + 1] === 0xda) return jpeg.subarray(at);
    }
    assert.fail('no SOS marker');
  }

  test('JPEG: EXIF from one branch and pixels from the other merge without re-encoding', async () => {
    const repo = await TempRepo.create();
    try {
      const file = repo.path('photo.jpg');
      const jpeg = (raw: Buffer) =>
        sharp(raw, { raw: { width: SIZE, height: SIZE, channels: 3 } })
          .jpeg()
          .toBuffer();
      await fs.writeFile(file, await jpeg(card()));
      await repo.ok(['add', 'photo.jpg']);
      await repo.ok(['commit', '-q', '-m', 'photo']);
      await repo.ok(['switch', '-q', '-c', 'caption']);
      await run('exiftool', [
        '-q',
        '-overwrite_original',
        '-Artist=Bob',
        '-ImageDescription=Harbour',
        file,
      ]);
      await repo.ok(['commit', '-q', '-a', '-m', 'caption']);
      await repo.ok(['switch', '-q', 'main']);
      const ours = await jpeg(paint(card(), [0, 0, 64, 32], 30));
      await fs.writeFile(file, ours);
      await repo.ok(['commit', '-q', '-a', '-m', 'darker sky']);

      await repo.ok(['merge', '-q', '-m', 'merge caption', 'caption']);
      const merged = await fs.readFile(file);
      assert.ok(scans(merged).equals(scans(ours)), 'SOS..EOI bytes are ours');
      const { stdout } = await run('exiftool', ['-s3', '-Artist', '-ImageDescription', file]);
      assert.deepEqual(stdout.trim().split('\n'), ['Bob', 'Harbour']);
      assert.equal((await sharp(merged).metadata()).width, SIZE);
    } finally {
      await repo.cleanup();
    }
  });
});
