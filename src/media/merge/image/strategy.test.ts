/**
 * The image merge on real files: made with sharp (pixels) and exiftool
 * (metadata) in a temp directory, merged by calling the strategy directly,
 * and read back with sharp (pixels, compared tile by tile) and exiftool
 * (metadata). The property test of the tile merge is tiles.property.test.ts.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import zlib from 'node:zlib';
import sharp from 'sharp';
import { detectFormat } from '../../detect.ts';
import { bufferAccess } from '../../info/random-access.ts';
import { writeMerged, type StrategyResult } from '../../merge-strategy.ts';
import { imageMergeStrategy } from './strategy.ts';

let dir = '';
let exif: ExifTool;

/**
 * One exiftool process for the whole file (`-stay_open`): Perl starts once,
 * so each edit or read costs milliseconds, not a second.
 */
class ExifTool {
  readonly #child: ChildProcessWithoutNullStreams;
  #output = '';
  #waiting: ((text: string) => void)[] = [];

  constructor() {
    this.#child = spawn('exiftool', ['-stay_open', 'True', '-@', '-']);
    this.#child.stdout.setEncoding('utf8');
    this.#child.stdout.on('data', (text: string) => {
      this.#output += text;
      for (
        let end = this.#output.indexOf('{ready}\n');
        end >= 0;
        end = this.#output.indexOf('{ready}\n')
      ) {
        const reply = this.#output.slice(0, end);
        this.#output = this.#output.slice(end + 8);
        this.#waiting.shift()?.(reply);
      }
    });
  }

  /** Runs one exiftool command line; its stdout. Commands run one at a time, in order. */
  run(args: readonly string[]): Promise<string> {
    return new Promise((resolve) => {
      this.#waiting.push(resolve);
      this.#child.stdin.write(`${[...args, '-execute'].join('\n')}\n`);
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.#child.once('exit', () => resolve());
      this.#child.stdin.end('-stay_open\nFalse\n');
    });
  }
}

before(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'mediagit-image-merge-'));
  exif = new ExifTool();
});
after(async () => {
  await exif.close();
  await fs.rm(dir, { recursive: true, force: true });
});

const SIZE = 128;

/** A deterministic test card: smooth gradients, so JPEG keeps it recognisable. */
function card(width = SIZE, height = SIZE, channels: 3 | 4 = 3): Buffer {
  const data = Buffer.alloc(width * height * channels);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const at = (y * width + x) * channels;
      data[at] = (x * 2) & 0xff;
      data[at + 1] = (y * 2) & 0xff;
      data[at + 2] = ((x + y) * 3) & 0xff;
      if (channels === 4) data[at + 3] = 255;
    }
  }
  return data;
}

/** Paints a rectangle one colour. */
function paint(
  raw: Buffer,
  [x0, y0, w, h]: [number, number, number, number],
  rgb: [number, number, number],
  width = SIZE,
  channels = 3,
): Buffer {
  const out = Buffer.from(raw);
  for (let y = y0; y < y0 + h; y++) {
    for (let x = x0; x < x0 + w; x++) {
      const at = (y * width + x) * channels;
      out[at] = rgb[0];
      out[at + 1] = rgb[1];
      out[at + 2] = rgb[2];
    }
  }
  return out;
}

function image(raw: Buffer, width = SIZE, height = SIZE, channels: 3 | 4 = 3) {
  return sharp(raw, { raw: { width, height, channels } });
}

/** Writes `bytes` to a file named by their digest. */
let writes = 0;

async function write(bytes: Buffer, ext: string): Promise<string> {
  const file = path.join(dir, `${createHash('sha1').update(bytes).digest('hex')}.${ext}`);
  // Written aside and renamed: two calls for the same bytes at once (the
  // edits in a Promise.all) must never copy a file the other is rewriting.
  const aside = path.join(dir, `writing-${writes++}`);
  await fs.writeFile(aside, bytes);
  await fs.rename(aside, file);
  return file;
}

let edits = 0;

/** Runs exiftool on a copy of `bytes` and returns the edited file. */
async function exiftool(bytes: Buffer, ext: string, args: string[]): Promise<Buffer> {
  const file = await write(bytes, ext);
  const edited = path.join(dir, `edited-${edits++}-${path.basename(file)}`);
  await fs.copyFile(file, edited);
  await exif.run(['-overwrite_original', ...args, edited]);
  const out = await fs.readFile(edited);
  await fs.rm(edited);
  return out;
}

/** One tag as exiftool reads it back. */
async function tag(bytes: Buffer, ext: string, name: string): Promise<string> {
  return (await exif.run(['-s3', `-${name}`, await write(bytes, ext)])).trim();
}

async function merge(
  ext: string,
  base: Buffer,
  ours: Buffer,
  theirs: Buffer,
): Promise<StrategyResult> {
  const sides = {
    base: bufferAccess(base),
    ours: bufferAccess(ours),
    theirs: bufferAccess(theirs),
  };
  const format = detectFormat(new Uint8Array(0), `a.${ext}`);
  assert.ok(imageMergeStrategy.accepts(format), `accepts .${ext}`);
  return imageMergeStrategy.merge({ path: `a.${ext}`, format, ...sides });
}

/** The merged file's bytes; fails the test on a conflict or a decline. */
async function merged(ext: string, base: Buffer, ours: Buffer, theirs: Buffer): Promise<Buffer> {
  const result = await merge(ext, base, ours, theirs);
  assert.ok('merged' in result, `expected a merge, got ${JSON.stringify(result)}`);
  const parts: Uint8Array[] = [];
  const sides = {
    base: bufferAccess(base),
    ours: bufferAccess(ours),
    theirs: bufferAccess(theirs),
  };
  await writeMerged(result.merged, sides, (data) => {
    parts.push(Buffer.from(data));
    return Promise.resolve();
  });
  return Buffer.concat(parts);
}

async function conflict(ext: string, base: Buffer, ours: Buffer, theirs: Buffer): Promise<string> {
  const result = await merge(ext, base, ours, theirs);
  assert.ok(
    'conflict' in result,
    `expected a conflict, got ${JSON.stringify(result).slice(0, 200)}`,
  );
  return result.conflict;
}

/** Each 64×64 tile's digest of decoded pixels, as "x,y" → hash. */
async function tileHashes(bytes: Buffer): Promise<string[]> {
  const { data, info } = await sharp(bytes).raw().toBuffer({ resolveWithObject: true });
  const out: string[] = [];
  for (let y = 0; y < info.height; y += 64) {
    for (let x = 0; x < info.width; x += 64) {
      const hash = createHash('sha256');
      for (let line = y; line < Math.min(y + 64, info.height); line++) {
        const row = line * info.width * info.channels;
        hash.update(
          data.subarray(
            row + x * info.channels,
            row + Math.min(x + 64, info.width) * info.channels,
          ),
        );
      }
      out.push(`${x},${y}:${hash.digest('hex').slice(0, 16)}`);
    }
  }
  return out;
}

/** The bytes from the first SOS marker to the end: the entropy-coded image. */
function scans(jpeg: Buffer): Buffer {
  for (let at = 2; at + 4 <= jpeg.length;) {
    assert.equal(jpeg[at], 0xff, `marker at ${at}`);
    if (jpeg[at + 1] === 0xda) return jpeg.subarray(at);
    at += 2 + jpeg.readUInt16BE(at + 2);
  }
  assert.fail('no SOS marker');
}

test('JPEG: EXIF changed on one side and pixels on the other splice; the scans stay byte-identical', async () => {
  const base = await exiftool(await image(card()).jpeg({ quality: 90 }).toBuffer(), 'jpg', [
    '-Artist=Alice',
    '-ImageDescription=base',
  ]);
  // Ours repaints a corner and keeps the base's EXIF, as a photo editor does.
  const repainted = await image(paint(card(), [0, 0, 40, 40], [250, 20, 20]))
    .jpeg({ quality: 90 })
    .toBuffer();
  const ours = await exiftool(repainted, 'jpg', [
    '-tagsFromFile',
    await write(base, 'jpg'),
    '-exif:all',
  ]);
  const theirs = await exiftool(base, 'jpg', ['-Artist=Bob']);
  assert.notDeepEqual(scans(ours), scans(base));
  assert.deepEqual(scans(theirs), scans(base));

  const result = await merged('jpg', base, ours, theirs);
  assert.ok(scans(result).equals(scans(ours)), 'the SOS..EOI bytes are ours, untouched');
  assert.equal(await tag(result, 'jpg', 'Artist'), 'Bob');
  assert.equal(await tag(result, 'jpg', 'ImageDescription'), 'base');
  assert.deepEqual(await tileHashes(result), await tileHashes(ours));
  // The other way round: the pixel side is theirs.
  const swapped = await merged('jpg', base, theirs, ours);
  assert.ok(scans(swapped).equals(scans(ours)));
  assert.ok(swapped.equals(result), 'a splice does not depend on which side is ours');
  assert.match(await exif.run(['-validate', '-warning', '-s3', await write(result, 'jpg')]), /^OK/);
});

test('JPEG: conflicting EXIF names the block; pixels both sides changed conflict as lossy', async () => {
  const base = await exiftool(await image(card()).jpeg().toBuffer(), 'jpg', ['-Artist=Alice']);
  const [ours, theirs] = await Promise.all([
    exiftool(base, 'jpg', ['-Artist=Bob']),
    exiftool(base, 'jpg', ['-Artist=Carol']),
  ]);
  assert.equal(await conflict('jpg', base, ours, theirs), 'both sides changed EXIF');

  const plain = await image(card()).jpeg().toBuffer();
  const left = await image(paint(card(), [0, 0, 8, 8], [0, 0, 0]))
    .jpeg()
    .toBuffer();
  const right = await image(paint(card(), [100, 100, 8, 8], [0, 0, 0]))
    .jpeg()
    .toBuffer();
  assert.match(
    await conflict('jpg', plain, left, right),
    /^both sides changed the pixels of a lossy JPEG/,
  );
});

test('PNG: tile edits on both sides merge with text chunks from each side', async () => {
  const raw = card();
  const base = await image(raw).png().toBuffer();
  const oursPixels = paint(raw, [10, 10, 20, 20], [255, 0, 0]);
  const theirsPixels = paint(raw, [70, 70, 30, 30], [0, 0, 255]);
  const ours = await exiftool(await image(oursPixels).png().toBuffer(), 'png', ['-PNG:Author=Ann']);
  const theirs = await exiftool(await image(theirsPixels).png().toBuffer(), 'png', [
    '-PNG:Title=Harbour',
  ]);

  const result = await merged('png', base, ours, theirs);
  const want = paint(oursPixels, [70, 70, 30, 30], [0, 0, 255]);
  assert.deepEqual(await tileHashes(result), await tileHashes(await image(want).png().toBuffer()));
  assert.equal(await tag(result, 'png', 'Author'), 'Ann');
  assert.equal(await tag(result, 'png', 'Title'), 'Harbour');
  assert.ok((await merged('png', base, ours, theirs)).equals(result), 'deterministic');
  assert.match(await exif.run(['-validate', '-warning', '-s3', await write(result, 'png')]), /^OK/);

  // A re-encode to the same pixels (other compression, other IDAT bytes) is no pixel change.
  const recompressed = await image(raw).png({ compressionLevel: 1 }).toBuffer();
  assert.ok(!idat(recompressed).equals(idat(base)));
  const taken = await merged('png', base, recompressed, await image(theirsPixels).png().toBuffer());
  assert.ok(
    taken.includes(idat(await image(theirsPixels).png().toBuffer())),
    "theirs' IDAT as it was",
  );

  // One side's metadata and the other's pixels: the pixel side's IDAT stays as it was.
  const titled = await exiftool(base, 'png', ['-PNG:Title=Harbour']);
  const spliced = await merged('png', base, await image(oursPixels).png().toBuffer(), titled);
  assert.equal(await tag(spliced, 'png', 'Title'), 'Harbour');
  assert.ok(spliced.includes(idat(await image(oursPixels).png().toBuffer())));
});

/** The first IDAT chunk, whole. */
function idat(png: Buffer): Buffer {
  const at = png.indexOf('IDAT') - 4;
  return png.subarray(at, at + 12 + png.readUInt32BE(at));
}

test('PNG: overlapping edits name the tile; text both changed names the keyword; size changes conflict', async () => {
  const raw = card();
  const base = await image(raw).png().toBuffer();
  const ours = await image(paint(raw, [70, 10, 4, 4], [255, 0, 0]))
    .png()
    .toBuffer();
  const theirs = await image(paint(raw, [100, 50, 4, 4], [0, 255, 0]))
    .png()
    .toBuffer();
  assert.equal(
    await conflict('png', base, ours, theirs),
    'both sides changed tile (64,0)-(127,63)',
  );

  const titled = await exiftool(base, 'png', ['-PNG:Title=Old']);
  const [a, b] = await Promise.all([
    exiftool(titled, 'png', ['-PNG:Title=North']),
    exiftool(titled, 'png', ['-PNG:Title=South']),
  ]);
  assert.equal(await conflict('png', titled, a, b), "both sides changed text 'Title'");

  const bigger = await image(card(SIZE, SIZE + 64), SIZE, SIZE + 64)
    .png()
    .toBuffer();
  assert.match(
    await conflict('png', base, bigger, theirs),
    /^the canvas size changed \(128x128 to 128x192 on ours\)/,
  );
  const alpha = await image(card(SIZE, SIZE, 4), SIZE, SIZE, 4)
    .png()
    .toBuffer();
  assert.match(await conflict('png', base, ours, alpha), /^the colour format changed/);
});

test('PNG: a decompression bomb is too large to merge', async () => {
  const base = await image(card()).png().toBuffer();
  const ours = await image(paint(card(), [0, 0, 4, 4], [1, 2, 3]))
    .png()
    .toBuffer();
  const bomb = Buffer.from(
    await image(paint(card(), [90, 90, 4, 4], [1, 2, 3]))
      .png()
      .toBuffer(),
  );
  bomb.writeUInt32BE(60000, 16);
  bomb.writeUInt32BE(60000, 20);
  bomb.writeUInt32BE(zlib.crc32(bomb.subarray(12, 29)), 29);
  assert.match(await conflict('png', base, ours, bomb), /^too large to merge \(60000x60000 pixels/);
});

test('malformed files are declined, not guessed at', async () => {
  const png = await image(card()).png().toBuffer();
  const jpeg = await image(card()).jpeg().toBuffer();
  const cases: [string, Buffer, Buffer][] = [
    ['png', png, Buffer.from('not a png at all')],
    ['png', png, png.subarray(0, 60)],
    ['jpg', jpeg, jpeg.subarray(0, 30)],
    ['jpg', jpeg, Buffer.concat([jpeg.subarray(0, 2), Buffer.from([0x12, 0x34])])],
    ['webp', png, png],
    ['tif', png, png],
  ];
  for (const [ext, good, bad] of cases) {
    const result = await merge(ext, good, bad, good);
    assert.ok('declined' in result, `${ext}: ${JSON.stringify(result).slice(0, 120)}`);
  }
});

test('WebP: lossy pixels from one side and EXIF from the other keep the VP8X flags right', async () => {
  const base = await image(card()).webp({ quality: 80 }).toBuffer();
  const ours = await image(paint(card(), [0, 0, 30, 30], [255, 255, 0]))
    .webp({ quality: 80 })
    .toBuffer();
  const theirs = await exiftool(base, 'webp', ['-Artist=Webster']);
  const result = await merged('webp', base, ours, theirs);
  assert.equal(await tag(result, 'webp', 'Artist'), 'Webster');
  assert.equal(result.readUInt32LE(4), result.length - 8, 'RIFF size');
  assert.equal(result.toString('latin1', 12, 16), 'VP8X');
  assert.equal(result[20]! & 0x08, 0x08, 'EXIF flag');
  const vp8 = ours.subarray(12);
  assert.ok(result.includes(vp8), 'the VP8 chunk is ours, byte for byte');
  assert.deepEqual(await tileHashes(result), await tileHashes(ours));
  const validation = await exif.run(['-validate', '-warning', '-s3', await write(result, 'webp')]);
  assert.match(validation, /^OK/);
});

test('WebP lossless and TIFF: tile edits on both sides merge and decode with sharp', async () => {
  const raw = card();
  const oursPixels = paint(raw, [5, 70, 10, 10], [9, 9, 9]);
  const theirsPixels = paint(raw, [90, 5, 10, 10], [200, 100, 0]);
  const want = await tileHashes(
    await image(paint(oursPixels, [90, 5, 10, 10], [200, 100, 0]))
      .png()
      .toBuffer(),
  );
  const webp = (r: Buffer) => image(r).webp({ lossless: true }).toBuffer();
  const webpMerged = await merged(
    'webp',
    await webp(raw),
    await webp(oursPixels),
    await webp(theirsPixels),
  );
  assert.deepEqual(await tileHashes(webpMerged), want);

  const tiff = (r: Buffer) => image(r).tiff({ compression: 'lzw' }).toBuffer();
  const tiffMerged = await merged(
    'tif',
    await tiff(raw),
    await tiff(oursPixels),
    await tiff(theirsPixels),
  );
  assert.equal((await sharp(tiffMerged).metadata()).format, 'tiff');
  assert.deepEqual(await tileHashes(tiffMerged), want);
});

test('TIFF: tags changed on one side and pixels on the other conflict, saying why', async () => {
  const tiff = (r: Buffer) => image(r).tiff({ compression: 'deflate' }).toBuffer();
  const base = await tiff(card());
  const ours = await tiff(paint(card(), [0, 0, 8, 8], [0, 0, 0]));
  const theirs = await exiftool(base, 'tif', ['-Artist=Tiffany']);
  assert.equal(
    await conflict('tif', base, ours, theirs),
    'theirs changed the TIFF tag Artist and ours the pixels (TIFF metadata is not spliced)',
  );
  const [a, b] = await Promise.all([
    exiftool(base, 'tif', ['-Artist=One']),
    exiftool(base, 'tif', ['-Artist=Two']),
  ]);
  assert.equal(await conflict('tif', base, a, b), 'both sides changed tag Artist');
});

test('describe: a metadata-only change, a re-save, and a real edit', async () => {
  const describe = imageMergeStrategy.describe!;
  const jpg = detectFormat(new Uint8Array(0), 'a.jpg');
  const base = await image(card()).jpeg({ quality: 90 }).toBuffer();
  const tagged = await exiftool(base, 'jpg', ['-Artist=Dee']);
  assert.deepEqual(await describe(bufferAccess(base), bufferAccess(tagged), jpg), [
    'pixels unchanged',
    'EXIF added',
  ]);
  const resaved = await image(card()).jpeg({ quality: 70 }).toBuffer();
  const [resave] = await describe(bufferAccess(base), bufferAccess(resaved), jpg);
  assert.match(resave ?? '', /^visually identical \(a re-save/);
  const edited = await image(paint(card(), [0, 0, 128, 64], [0, 0, 0]))
    .jpeg({ quality: 90 })
    .toBuffer();
  const [edit] = await describe(bufferAccess(base), bufferAccess(edited), jpg);
  assert.match(edit ?? '', /^pixels changed in \d+ of 4 tiles$/);
});

test('PNG with an ICC profile: the tile merge keeps the stored pixels and the profile', async () => {
  const p3 = (raw: Buffer) => image(raw).withIccProfile('p3').png().toBuffer();
  const stored = async (bytes: Buffer) => sharp(bytes).keepIccProfile().raw().toBuffer();
  const [base, ours, theirs] = await Promise.all([
    p3(card()),
    p3(paint(card(), [0, 0, 10, 10], [10, 200, 30])),
    p3(paint(card(), [100, 100, 10, 10], [200, 10, 30])),
  ]);
  const result = await merged('png', base, ours, theirs);
  // Expected: ours' stored pixels with theirs' stored bottom-right tile.
  const [o, t] = [await stored(ours), await stored(theirs)];
  const want = Buffer.from(o);
  for (let y = 64; y < SIZE; y++)
    t.copy(want, (y * SIZE + 64) * 3, (y * SIZE + 64) * 3, (y + 1) * SIZE * 3);
  assert.ok((await stored(result)).equals(want), 'stored pixels, not colour-converted ones');
  assert.deepEqual((await sharp(result).metadata()).icc, (await sharp(base).metadata()).icc);
});
