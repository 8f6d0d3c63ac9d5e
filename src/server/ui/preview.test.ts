/**
 * The preview engine on real files made by real tools (sharp, ag-psd,
 * ffmpeg): what each preview shows, the limits it keeps, and its cache.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { writePsdBuffer } from 'ag-psd';
// Gives ag-psd its raw-pixel image data (no canvas in Node), which writing a PSD needs.
import '../../../test/layered-media.ts';
import sharp from 'sharp';
import { bufferAccess, type RandomAccess } from '../../media/info/random-access.ts';
import { Previews, type PreviewResult, type PreviewSource } from './preview.ts';

let seq = 0;
function source(name: string, bytes: Buffer): PreviewSource & { reads: number } {
  const id = `${String(++seq).padStart(4, '0')}${'ab'.repeat(30)}`;
  const counted = {
    id,
    name,
    size: bytes.length,
    reads: 0,
    access: async (): Promise<RandomAccess> => {
      const inner = bufferAccess(bytes);
      return {
        size: inner.size,
        read: (offset: number, length: number) => {
          counted.reads++;
          return inner.read(offset, length);
        },
      };
    },
    stream: async (write: (data: Uint8Array) => Promise<void>) => {
      counted.reads++;
      for (let at = 0; at < bytes.length; at += 1 << 20)
        await write(bytes.subarray(at, at + (1 << 20)));
    },
  };
  return counted;
}

function file(result: PreviewResult): string {
  assert.equal(result.kind, 'file', result.kind === 'placeholder' ? result.reason : '');
  return result.kind === 'file' ? result.path : '';
}

/** A solid image with a 10×10 red square at (x, y). */
function squareRaw(width: number, height: number, x: number, y: number): Buffer {
  const pixels = Buffer.alloc(width * height * 3);
  for (let i = 0; i < width * height; i++) pixels.set([30, 60, 200], i * 3);
  for (let dy = 0; dy < 10; dy++)
    for (let dx = 0; dx < 10; dx++) pixels.set([220, 20, 20], ((y + dy) * width + x + dx) * 3);
  return pixels;
}

describe('previews', () => {
  let dir = '';
  let previews: Previews;
  const ffmpeg = (args: string[]) =>
    execFileSync('ffmpeg', ['-v', 'error', '-y', ...args], { cwd: dir });

  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'mediagit-previews-'));
    previews = new Previews({ cacheDir: path.join(dir, 'cache') });
  });
  after(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('images: thumbnails keep the aspect ratio within 320 px; views within 2048', async () => {
    for (const [name, bytes] of [
      [
        'wide.png',
        await sharp(squareRaw(900, 300, 5, 5), { raw: { width: 900, height: 300, channels: 3 } })
          .png()
          .toBuffer(),
      ],
      [
        'tall.jpg',
        await sharp(squareRaw(300, 600, 5, 5), { raw: { width: 300, height: 600, channels: 3 } })
          .jpeg()
          .toBuffer(),
      ],
      [
        'photo.webp',
        await sharp(squareRaw(400, 400, 5, 5), { raw: { width: 400, height: 400, channels: 3 } })
          .webp()
          .toBuffer(),
      ],
      [
        'scan.tif',
        await sharp(squareRaw(640, 480, 5, 5), { raw: { width: 640, height: 480, channels: 3 } })
          .tiff()
          .toBuffer(),
      ],
    ] as const) {
      const input = await sharp(bytes).metadata();
      const thumb = await sharp(file(await previews.get(source(name, bytes), 'thumb'))).metadata();
      assert.ok(
        Math.max(thumb.width!, thumb.height!) === 320,
        `${name}: ${thumb.width}×${thumb.height}`,
      );
      assert.ok(Math.abs(thumb.width! / thumb.height! - input.width! / input.height!) < 0.02, name);
      const full = await sharp(file(await previews.get(source(name, bytes), 'full'))).metadata();
      assert.deepEqual(
        [full.width, full.height],
        [input.width, input.height],
        `${name}: no enlargement`,
      );
    }
  });

  it("a PSD's composite, read without its layers", async () => {
    const size = 64;
    const composite = new Uint8ClampedArray(size * size * 4);
    for (let i = 0; i < size * size; i++) composite.set([10, 200, 90, 255], i * 4);
    const layer = new Uint8ClampedArray(size * size * 4).fill(255);
    const bytes = writePsdBuffer({
      width: size,
      height: size,
      imageData: { width: size, height: size, data: composite, colorSpace: 'srgb' } as never,
      children: [
        {
          name: 'White',
          top: 0,
          left: 0,
          imageData: { width: size, height: size, data: layer, colorSpace: 'srgb' } as never,
        },
      ],
    });
    const thumb = file(await previews.get(source('art.psd', bytes), 'thumb'));
    const { data } = await sharp(thumb).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    // The composite's colour, not the white layer's (WebP keeps it within a few levels).
    assert.ok(
      Math.abs(data[0]! - 10) < 8 && Math.abs(data[1]! - 200) < 8 && Math.abs(data[2]! - 90) < 8,
      [...data.subarray(0, 3)].join(','),
    );
  });

  it('EXR, decoded by ffmpeg', async () => {
    ffmpeg([
      '-f',
      'lavfi',
      '-i',
      'color=c=0x2080c0:s=96x64:d=1',
      '-frames:v',
      '1',
      '-c:v',
      'exr',
      '-pix_fmt',
      'gbrpf32le',
      'plate.exr',
    ]);
    const thumb = await sharp(
      file(
        await previews.get(
          source('plate.exr', await fs.readFile(path.join(dir, 'plate.exr'))),
          'thumb',
        ),
      ),
    ).metadata();
    assert.deepEqual([thumb.width, thumb.height], [96, 64]);
  });

  it('video: a poster frame and a short low-resolution WebM clip; audio peaks', async () => {
    ffmpeg([
      '-f',
      'lavfi',
      '-i',
      'testsrc=duration=6:size=640x360:rate=10',
      '-pix_fmt',
      'yuv420p',
      'v.mp4',
    ]);
    const video = await fs.readFile(path.join(dir, 'v.mp4'));
    const poster = await sharp(
      file(await previews.get(source('v.mp4', video), 'poster')),
    ).metadata();
    assert.deepEqual([poster.format, poster.width, poster.height], ['jpeg', 640, 360]);
    const clip = file(await previews.get(source('v.mp4', video), 'clip'));
    const probe = JSON.parse(
      execFileSync(
        'ffprobe',
        ['-v', 'error', '-show_streams', '-show_format', '-of', 'json', clip],
        { encoding: 'utf8' },
      ),
    ) as {
      streams: { codec_name: string; width: number }[];
      format: { duration: string; format_name: string };
    };
    assert.equal(probe.streams.length, 1, 'no sound');
    assert.equal(probe.streams[0]!.codec_name, 'vp8');
    assert.equal(probe.streams[0]!.width, 320);
    assert.ok(Number(probe.format.duration) <= 4.1, probe.format.duration);

    ffmpeg([
      '-f',
      'lavfi',
      '-i',
      'aevalsrc=0.5*sin(2*PI*440*t)|-0.25*sin(2*PI*220*t):s=48000:d=2',
      '-c:a',
      'pcm_s24le',
      's.wav',
    ]);
    ffmpeg(['-i', 's.wav', 's.flac']);
    for (const name of ['s.wav', 's.flac']) {
      const peaks = JSON.parse(
        await fs.readFile(
          file(await previews.get(source(name, await fs.readFile(path.join(dir, name))), 'peaks')),
          'utf8',
        ),
      ) as {
        duration: number;
        channels: number;
        peaks: [number, number][];
      };
      const high = Math.max(...peaks.peaks.map((p) => p[1]));
      const low = Math.min(...peaks.peaks.map((p) => p[0]));
      assert.ok(Math.abs(peaks.duration - 2) < 0.01, `${name} ${peaks.duration}`);
      assert.ok(
        Math.abs(high - 0.5) < 0.02 && Math.abs(low + 0.5) < 0.02,
        `${name} ${low}..${high}`,
      );
      assert.ok(peaks.peaks.length >= 1000 && peaks.peaks.length <= 2000);
      if (name === 's.wav') assert.equal(peaks.channels, 2);
    }
  });

  it('the difference of two images is black where they agree', async () => {
    const png = (x: number, y: number) =>
      sharp(squareRaw(200, 100, x, y), { raw: { width: 200, height: 100, channels: 3 } })
        .png()
        .toBuffer();
    const result = file(
      await previews.difference(
        source('a.png', await png(10, 10)),
        source('a.png', await png(150, 60)),
      ),
    );
    const { data, info } = await sharp(result).raw().toBuffer({ resolveWithObject: true });
    const at = (x: number, y: number) =>
      data[(y * info.width + x) * info.channels]! + data[(y * info.width + x) * info.channels + 1]!;
    assert.equal(at(100, 50), 0);
    assert.equal(at(0, 0), 0);
    assert.ok(at(15, 15) > 150 && at(155, 65) > 150);
  });

  it('a decompression bomb is refused from its header; a 6 GiB file from its size, unread', async () => {
    const header = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#000' } })
      .png()
      .toBuffer();
    // The same PNG claiming 50,000 × 50,000 (IHDR rewritten; its CRC is not what a parser needs first).
    const bomb = Buffer.from(header);
    bomb.writeUInt32BE(50_000, 16);
    bomb.writeUInt32BE(50_000, 20);
    const started = Date.now();
    const refused = await previews.get(source('bomb.png', bomb), 'full');
    assert.equal(refused.kind, 'placeholder');
    assert.match(refused.kind === 'placeholder' ? refused.reason : '', /50000 × 50000/);
    assert.ok(Date.now() - started < 1000, `${Date.now() - started} ms`);
    const huge: PreviewSource & { reads: number } = {
      ...source('huge.mp4', Buffer.alloc(0)),
      size: 6 * 1024 ** 3,
    };
    const answer = await previews.get(huge, 'poster');
    assert.equal(answer.kind, 'placeholder');
    assert.match(answer.kind === 'placeholder' ? answer.reason : '', /6\.0 GiB/);
    assert.equal(huge.reads <= 1, true, 'at most the format head was read');
  });

  it('a second request is served from the cache, not made again; a corrupt file gets a reason', async () => {
    const bytes = await sharp({
      create: { width: 50, height: 40, channels: 3, background: '#123456' },
    })
      .png()
      .toBuffer();
    const input = source('c.png', bytes);
    const first = file(await previews.get(input, 'thumb'));
    const stat = await fs.stat(first);
    const reads = input.reads;
    const second = file(await previews.get(input, 'thumb'));
    assert.equal(second, first);
    assert.equal(input.reads, reads, 'nothing read again');
    assert.equal((await fs.stat(second)).mtimeMs, stat.mtimeMs);
    const corrupt = source(
      'broken.png',
      Buffer.concat([bytes.subarray(0, 40), Buffer.alloc(100, 7)]),
    );
    const result = await previews.get(corrupt, 'thumb');
    assert.equal(result.kind, 'placeholder');
  });

  it('text is highlighted with its markup escaped', async () => {
    const code = Buffer.from('const page = "<script>alert(1)</script>";\n// <b>bold</b>\n');
    const result = await previews.highlight(source('x.ts', code));
    assert.ok(result);
    assert.equal(result.language, 'TypeScript');
    assert.ok(!result.html.includes('<script>') && result.html.includes('&lt;script&gt;'));
    assert.match(result.html, /class="hljs-keyword">const</);
    assert.equal(await previews.highlight(source('bin.txt', Buffer.from([1, 0, 2, 3]))), undefined);
  });
});
