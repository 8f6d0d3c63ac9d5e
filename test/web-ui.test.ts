/**
 * The web interface of `mediagit serve` (issue 20, docs/web-ui.md) in a real
 * browser: Debian's Chromium driven by playwright-core, one browser for the
 * whole file. A repository holding real media made by real tools (sharp,
 * ffmpeg, ag-psd, glTF-Transform) is pushed to a real server; the tests sign
 * in, browse, open every preview, use every image comparison mode, page
 * through history and download a file, and check the pages with axe-core.
 * Screenshots of every view go to test-artifacts/web-ui/.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { encodeCommit, decodeCommit, signatureAt } from '../src/odb/commit.ts';
import { encodeManifest } from '../src/odb/manifest.ts';
import { ObjectStore } from '../src/odb/object-store.ts';
import { decodeTree, encodeTree } from '../src/odb/tree.ts';
import { PROJECT_ROOT, TempRepo } from './helpers.ts';
import { psd } from './layered-media.ts';
import { buildGlb } from './scene-fixtures.ts';
import { createToken, useServerRoot, type ServerProcess } from './server.ts';

// What the functions run in the page see (this project's types have no DOM library).
/* eslint-disable @typescript-eslint/no-explicit-any */
declare const document: any;
type HTMLImageElement = {
  complete: boolean;
  naturalWidth: number;
  naturalHeight: number;
  src: string;
};
type HTMLCanvasElement = { width: number; height: number; getContext(kind: '2d'): any };
type HTMLElement = { style: Record<string, string> };
type HTMLFormElement = { action: string };
/* eslint-enable @typescript-eslint/no-explicit-any */

const ARTIFACTS = path.join(PROJECT_ROOT, 'test-artifacts', 'web-ui');
const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((file) => {
  try {
    readFileSync(file, { flag: 'r' });
    return true;
  } catch {
    return false;
  }
});
const AXE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/** A PNG of solid blue with a red 10×10 square at (x, y). */
async function squarePng(x: number, y: number): Promise<Buffer> {
  const width = 240;
  const height = 160;
  const pixels = Buffer.alloc(width * height * 3);
  for (let i = 0; i < width * height; i++) pixels.set([40, 80, 200], i * 3);
  for (let dy = 0; dy < 10; dy++) {
    for (let dx = 0; dx < 10; dx++) pixels.set([230, 20, 20], ((y + dy) * width + x + dx) * 3);
  }
  return sharp(pixels, { raw: { width, height, channels: 3 } })
    .png()
    .toBuffer();
}

/**
 * The header of a 50,000 × 50,000 PNG (a decompression bomb: 2.5 Gpx) with
 * one tiny IDAT; what a parser sees first is the claim of its size.
 */
function bombPng(): Buffer {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (bytes: Buffer) => {
    let c = 0xffffffff;
    for (const b of bytes) c = crcTable[(c ^ b) & 0xff]! ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const out = Buffer.alloc(8 + data.length + 4);
    out.writeUInt32BE(data.length, 0);
    body.copy(out, 4);
    out.writeUInt32BE(crc(body), 8 + data.length);
    return out;
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(50_000, 0);
  ihdr.writeUInt32BE(50_000, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', Buffer.from([0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01])),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/**
 * Commits `huge.mp4`, 6 GiB of zeros, on top of HEAD without reading 6 GiB:
 * the objects `mediagit add` makes for that file (checked against a real
 * add once: 768 references to one 8 MiB zero chunk, the chunker below, and
 * the SHA-256 of 6 GiB of zeros), written straight into the store.
 */
async function commitHugeFile(repo: TempRepo): Promise<void> {
  const gitDir = path.join(repo.dir, '.mediagit');
  const store = new ObjectStore(path.join(gitDir, 'objects'), path.join(gitDir, 'tmp'));
  const chunk = Buffer.alloc(8 * 1024 * 1024);
  const chunkId = (await store.write('chunk', chunk)).id;
  const size = 6 * 1024 ** 3;
  const manifest = encodeManifest({
    size,
    sha256: '5c32c2b28999325bc5ad39d6530bcb46fbdf1f86375a991b7269764c50b0d109',
    chunker: 'fastcdc-v1 1048576 2097152 8388608 containers-v1-mp4',
    chunks: Array.from({ length: size / chunk.length }, () => ({
      id: chunkId,
      length: chunk.length,
    })),
  });
  const manifestId = (await store.write('manifest', manifest)).id;
  const head = (await repo.ok(['log', '-1', '--format=format:%H'])).out.trim();
  const parent = decodeCommit(head, await store.readTyped(head, 'commit'));
  const entries = decodeTree(parent.tree, await store.readTyped(parent.tree, 'tree'));
  const tree = encodeTree([
    ...entries,
    { name: 'huge.mp4', mode: '100644', kind: 'manifest', id: manifestId, size },
  ]);
  const treeId = (await store.write('tree', tree)).id;
  const who = signatureAt('Test Author', 'test@example.com', new Date());
  const commit = encodeCommit({
    tree: treeId,
    parents: [head],
    author: who,
    committer: who,
    message: 'Add a 6 GiB video\n',
  });
  const commitId = (await store.write('commit', commit)).id;
  await store.flush();
  await repo.ok(['reset', '--soft', commitId]);
}

/** The server's peak resident memory so far (VmHWM), in MiB. */
async function peakRssMiB(server: ServerProcess): Promise<number> {
  // bin/mediagit.js runs the CLI in this process: its pid is the server's.
  const status = await fs.readFile(`/proc/${server.child.pid}/status`, 'utf8');
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)![1]) / 1024;
}

describe(
  'web interface in a real browser',
  { skip: CHROMIUM === undefined && 'no chromium' },
  () => {
    const fixture = useServerRoot('web-ui', ['studio', 'other']);
    let server: ServerProcess;
    let browser: Browser;
    let context: BrowserContext;
    let page: Page;
    let adminKey = '';
    let readKey = '';
    const files = new Map<string, Buffer>();
    const dialogs: string[] = [];
    const scriptErrors: string[] = [];
    const hostileName = '<img src=x onerror=alert(1)>.png';
    const hostileMessage = 'Fix <script>alert("xss")</script> & <img src=x onerror=alert(2)>';

    /** A screenshot of the view; `fullPage` false for WebGL, which a stitched capture garbles. */
    const shot = async (name: string, fullPage = true) => {
      await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage });
    };

    /** axe-core on the current page: no serious or critical violation. */
    const checkAccessible = async (label: string) => {
      await page.evaluate(AXE);
      const result = await page.evaluate(async () => {
        const axe = (
          globalThis as unknown as {
            axe: {
              run: (o: object) => Promise<{
                violations: {
                  id: string;
                  impact: string | null;
                  help: string;
                  nodes: { target: unknown }[];
                }[];
              }>;
            };
          }
        ).axe;
        const run = await axe.run({ resultTypes: ['violations'] });
        return run.violations.map((v) => ({
          id: v.id,
          impact: v.impact,
          help: v.help,
          targets: v.nodes.map((n) => n.target),
        }));
      });
      const bad = result.filter((v) => v.impact === 'serious' || v.impact === 'critical');
      assert.deepEqual(bad, [], `${label}: ${JSON.stringify(bad, null, 1)}`);
    };

    const goto = async (url: string) => {
      const response = await page.goto(`${server.base}${url}`);
      assert.ok(response, url);
      return response;
    };

    before(async () => {
      await fs.mkdir(ARTIFACTS, { recursive: true });
      adminKey = await createToken(fixture.root, 'ada', '*', 'admin');
      readKey = await createToken(fixture.root, 'rey', 'studio', 'read');
      const repo = fixture.track(await TempRepo.create()).withEnv({ MEDIAGIT_TOKEN: adminKey });
      const work = repo.dir;
      const media = path.join(work, 'media');
      await fs.mkdir(media, { recursive: true });
      // Real files made by real tools.
      files.set('media/square.png', await squarePng(20, 20));
      files.set(
        'media/photo.jpg',
        await sharp({ create: { width: 400, height: 300, channels: 3, background: '#c08040' } })
          .jpeg({ quality: 85 })
          .toBuffer(),
      );
      files.set(
        'media/layers.psd',
        psd([
          { name: 'Background', seed: 1 },
          { name: 'Ink', seed: 2 },
        ]),
      );
      files.set(
        'media/robot.glb',
        Buffer.from(
          await buildGlb({
            nodes: {
              Body: { translation: [0, 0, 0], material: 'Paint' },
              Head: { translation: [0, 1.5, 0], material: 'Skin' },
            },
            materials: { Paint: [0.8, 0.1, 0.1, 1], Skin: [0.9, 0.8, 0.7, 1] },
          }),
        ),
      );
      files.set(hostileName, await squarePng(100, 100));
      files.set('bomb.png', bombPng());
      files.set(
        'notes/readme.md',
        Buffer.from('# Studio notes\n\n<script>alert(3)</script> is text here.\n'),
      );
      for (const [name, bytes] of files) {
        await fs.mkdir(path.dirname(path.join(work, name)), { recursive: true });
        await fs.writeFile(path.join(work, name), bytes);
      }
      const ffmpeg = (args: string[]) =>
        execFileSync('ffmpeg', ['-v', 'error', '-y', ...args], { cwd: work });
      ffmpeg([
        '-f',
        'lavfi',
        '-i',
        'testsrc=duration=3:size=320x240:rate=15',
        '-pix_fmt',
        'yuv420p',
        'media/clip.mp4',
      ]);
      // A 440 Hz sine at half of full scale, 2 s.
      ffmpeg([
        '-f',
        'lavfi',
        '-i',
        'aevalsrc=0.5*sin(2*PI*440*t):s=22050:d=2',
        '-c:a',
        'pcm_s16le',
        'media/tone.wav',
      ]);
      files.set('media/clip.mp4', await fs.readFile(path.join(media, 'clip.mp4')));
      files.set('media/tone.wav', await fs.readFile(path.join(media, 'tone.wav')));
      await repo.ok(['add', '.']);
      await repo.ok(['commit', '-q', '-m', 'Add the studio media']);
      // A second version of the PNG and a few more commits to page through.
      await fs.writeFile(path.join(work, 'media/square.png'), await squarePng(150, 90));
      files.set('media/square.png@2', await fs.readFile(path.join(work, 'media/square.png')));
      // ... and of the WAV: the same tone at a quarter of full scale.
      ffmpeg([
        '-f',
        'lavfi',
        '-i',
        'aevalsrc=0.25*sin(2*PI*440*t):s=22050:d=2',
        '-c:a',
        'pcm_s16le',
        'media/tone.wav',
      ]);
      await repo.ok(['commit', '-q', '-a', '-m', 'Move the square']);
      for (let i = 1; i <= 4; i++) {
        await fs.writeFile(path.join(work, 'notes', `log-${i}.txt`), `entry ${i}\n`);
        await repo.ok(['add', '.']);
        await repo.ok(['commit', '-q', '-m', i === 2 ? hostileMessage : `Log entry ${i}`]);
      }
      await commitHugeFile(repo);
      server = await fixture.serve();
      await repo.ok(['remote', 'add', 'origin', server.url('studio')]);
      await repo.ok(['push', '-q', 'origin', 'main']);
      browser = await chromium.launch({
        executablePath: CHROMIUM!,
        args: ['--no-sandbox', '--disable-gpu', '--use-gl=swiftshader'],
      });
      context = await browser.newContext({
        viewport: { width: 1280, height: 900 },
        acceptDownloads: true,
      });
      page = await context.newPage();
      page.on('dialog', (dialog) => {
        dialogs.push(dialog.message());
        void dialog.dismiss();
      });
      page.on('pageerror', (error) => scriptErrors.push(error.message));
    });

    after(async () => {
      await browser?.close();
    });

    it('signs in with an API key; a wrong key is refused; pages need a session', async () => {
      let response = await goto('/');
      assert.match(page.url(), /\/-\/signin\?next=%2F$/);
      assert.equal(response.status(), 200);
      await checkAccessible('sign-in');
      await shot('01-sign-in');
      await page.fill('#key', 'mgk_0000000000000000_wrongwrongwrongwrongwrongwrongwrongwrongwro');
      await page.click('button[type=submit]');
      assert.match((await page.textContent('.error')) ?? '', /not valid/);
      await shot('02-sign-in-refused');
      await page.fill('#key', adminKey);
      await Promise.all([page.waitForURL(`${server.base}/`), page.click('button[type=submit]')]);
      const cookies = await context.cookies();
      const session = cookies.find((c) => c.name === 'mediagit_session');
      assert.ok(session, 'a session cookie');
      assert.equal(session.httpOnly, true);
      assert.equal(session.sameSite, 'Strict');
      response = await goto('/');
      assert.equal(response.status(), 200);
      assert.deepEqual(
        await page.$$eval('tbody tr td:first-child a', (links) => links.map((a) => a.textContent)),
        ['other', 'studio'],
      );
      await checkAccessible('repositories');
      await shot('03-repositories');
    });

    it('browses branches, the tree and a folder', async () => {
      await goto('/');
      await Promise.all([page.waitForURL(/\/-\/r\/studio$/), page.click('text=studio')]);
      const names = await page.$$eval('tbody tr td:first-child a', (links) =>
        links.map((a) => a.textContent),
      );
      assert.ok(
        names.includes('media/') && names.includes('notes/') && names.includes('huge.mp4'),
        names.join(','),
      );
      await checkAccessible('tree');
      await shot('04-tree');
      await page.click('text=media/');
      await page.waitForURL(/\/tree\/HEAD\/media$/);
      const inMedia = await page.$$eval('tbody tr td:first-child a', (links) =>
        links.map((a) => a.textContent),
      );
      for (const name of [
        'clip.mp4',
        'layers.psd',
        'photo.jpg',
        'robot.glb',
        'square.png',
        'tone.wav',
      ]) {
        assert.ok(inMedia.includes(name), `${name} in ${inMedia.join(',')}`);
      }
      await checkAccessible('folder');
      await shot('05-tree-media');
      await goto('/-/r/studio/refs');
      assert.match((await page.textContent('main')) ?? '', /main\s*default/);
      await checkAccessible('refs');
      await shot('06-refs');
    });

    it('previews every kind of media', async () => {
      const open = async (file: string) => {
        await goto(`/-/r/studio/blob/main/${file}`);
        assert.equal(await page.textContent('h1 [aria-current=page]'), file.split('/').at(-1));
      };
      const imageLoaded = async (selector: string) => {
        await page.waitForFunction(
          (s) => {
            const img = document.querySelector(s) as HTMLImageElement | null;
            return img !== null && img.complete && img.naturalWidth > 0;
          },
          selector,
          { timeout: 30_000 },
        );
        return page.$eval(selector, (img) => [
          (img as HTMLImageElement).naturalWidth,
          (img as HTMLImageElement).naturalHeight,
        ]);
      };
      for (const [file, width, height] of [
        ['media/square.png', 240, 160],
        ['media/photo.jpg', 400, 300],
        ['media/layers.psd', 8, 8],
      ] as const) {
        await open(file);
        assert.deepEqual(await imageLoaded('.preview img'), [width, height], file);
        await checkAccessible(file);
        await shot(`07-file-${path.basename(file).replace('.', '-')}`);
      }
      // Video: poster frame and a short low-resolution clip the browser plays.
      await open('media/clip.mp4');
      await page.waitForFunction(
        () => {
          const video = document.querySelector('video');
          return video !== null && video.readyState >= 2 && video.videoWidth > 0;
        },
        undefined,
        { timeout: 60_000 },
      );
      const video = await page.$eval('video', (v) => ({
        width: v.videoWidth,
        duration: v.duration,
      }));
      assert.ok(video.width > 0 && video.width <= 320, JSON.stringify(video));
      assert.ok(video.duration > 0 && video.duration <= 4.1, JSON.stringify(video));
      assert.match((await page.textContent('.props')) ?? '', /h264/);
      await checkAccessible('video');
      await shot('08-file-video');
      // Audio: a waveform drawn from the server's peaks.
      await open('media/tone.wav');
      await page.waitForFunction(
        () =>
          /s, 1 channels/.test(
            document.querySelector('canvas.waveform')?.getAttribute('aria-label') ?? '',
          ),
        undefined,
        { timeout: 30_000 },
      );
      const drawn = await page.$eval('canvas.waveform', (canvas) => {
        const c = canvas as HTMLCanvasElement;
        const data = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
        // Rows the wave reaches at its widest: main holds the tone at a quarter of full scale (its second version), which spans rows 3/8 to 5/8.
        let top = c.height;
        let bottom = 0;
        for (let y = 0; y < c.height; y++) {
          for (let x = 0; x < c.width; x += 7) {
            const i = (y * c.width + x) * 4;
            if (data[i + 2]! > 150 && data[i]! < 60) {
              top = Math.min(top, y);
              bottom = Math.max(bottom, y);
            }
          }
        }
        return { top, bottom, height: c.height };
      });
      assert.ok(
        Math.abs(drawn.top - drawn.height * 0.375) <= 4 &&
          Math.abs(drawn.bottom - drawn.height * 0.625) <= 4,
        JSON.stringify(drawn),
      );
      await checkAccessible('audio');
      await shot('09-file-audio');
      // glTF binary: the 3D viewer loads the model.
      await open('media/robot.glb');
      await page.waitForFunction(
        () =>
          (document.querySelector('model-viewer') as unknown as { loaded?: boolean } | null)
            ?.loaded === true,
        undefined,
        { timeout: 60_000 },
      );
      await page.waitForTimeout(500);
      await checkAccessible('model');
      await shot('10-file-glb', false);
      // Text with highlighting; its markup stays text.
      await open('notes/readme.md');
      assert.match(
        (await page.textContent('pre.code')) ?? '',
        /<script>alert\(3\)<\/script> is text here/,
      );
      await checkAccessible('text');
      await shot('11-file-text');
    });

    it('compares two versions of a PNG in 2-up, swipe, onion skin and difference', async () => {
      await goto('/-/r/studio/blob/main/media/square.png');
      await Promise.all([
        page.waitForURL(/\/compare\?/),
        page.click('form[action$="/compare"] button'),
      ]);
      const loaded = () =>
        page.waitForFunction(
          () =>
            (
              [
                ...document.querySelectorAll('[data-compare] section:not([hidden]) img'),
              ] as HTMLImageElement[]
            ).every((img) => img.complete && img.naturalWidth > 0),
          undefined,
          { timeout: 30_000 },
        );
      await loaded();
      assert.equal(await page.locator('section[data-mode=two-up]').isVisible(), true);
      await checkAccessible('compare 2-up');
      await shot('12-compare-2up');
      await page.check('input[value=swipe]');
      await loaded();
      await page.locator('#swipe-at').fill('30');
      assert.equal(
        await page.$eval('section[data-mode=swipe] .over', (e) => (e as HTMLElement).style.width),
        '30%',
      );
      assert.equal(await page.locator('section[data-mode=two-up]').isVisible(), false);
      await shot('13-compare-swipe');
      await page.check('input[value=onion]');
      await loaded();
      await page.locator('#onion-at').fill('75');
      assert.equal(
        await page.$eval('section[data-mode=onion] .over', (e) => (e as HTMLElement).style.opacity),
        '0.75',
      );
      await shot('14-compare-onion');
      await page.check('input[value=difference]');
      await loaded();
      await shot('15-compare-difference');
      // The difference image is black where equal and bright at both squares' places.
      const src = await page.$eval(
        'section[data-mode=difference] img',
        (img) => (img as HTMLImageElement).src,
      );
      const response = await context.request.get(src);
      assert.equal(response.status(), 200);
      const { data, info } = await sharp(await response.body())
        .removeAlpha()
        .raw()
        .toBuffer({ resolveWithObject: true });
      const at = (x: number, y: number) => {
        const i =
          (Math.round((y * info.height) / 160) * info.width + Math.round((x * info.width) / 240)) *
          info.channels;
        return data[i]! + data[i + 1]! + data[i + 2]!;
      };
      assert.ok(at(5, 5) < 30 && at(200, 20) < 30, 'equal pixels are black');
      assert.ok(at(25, 25) > 150 && at(155, 95) > 150, 'changed pixels are bright');
      assert.match((await page.textContent('main')) ?? '', /Metadata side by side/);
    });

    it('compares two versions of a WAV as two waveforms on a shared zoom', async () => {
      await goto('/-/r/studio/blob/main/media/tone.wav');
      await Promise.all([
        page.waitForURL(/\/compare\?/),
        page.click('form[action$="/compare"] button'),
      ]);
      const drawn = () =>
        page.$$eval('canvas.waveform', (canvases) =>
          canvases.map((canvas) => {
            const c = canvas as HTMLCanvasElement;
            const data = c.getContext('2d').getImageData(0, 0, c.width, c.height)
              .data as Uint8ClampedArray;
            let top = c.height;
            for (let y = 0; y < c.height; y++) {
              for (let x = 0; x < c.width; x += 5) {
                const i = (y * c.width + x) * 4;
                if (data[i + 2]! > 150 && data[i]! < 60) top = Math.min(top, y);
              }
            }
            // A fingerprint of the drawing, to tell a redraw at another zoom.
            let sum = 0;
            for (let i = 0; i < data.length; i += 97) sum = (sum * 31 + data[i]!) % 1_000_003;
            return { top, sum };
          }),
        );
      await page.waitForFunction(
        () =>
          [...document.querySelectorAll('canvas.waveform')].every(
            (c: { getAttribute(n: string): string | null }) =>
              / s, /.test(c.getAttribute('aria-label') ?? ''),
          ),
        undefined,
        { timeout: 30_000 },
      );
      const before = await drawn();
      assert.equal(before.length, 2);
      // Before (the newer file is "after"): half of full scale reaches a quarter of the height
      // from the top (row 30 of 120); a quarter of full scale, three eighths (row 45).
      assert.ok(
        Math.abs(before[0]!.top - 30) <= 4 && Math.abs(before[1]!.top - 45) <= 4,
        JSON.stringify(before),
      );
      await page.locator('#zoom').fill('16');
      await page.locator('#scroll').fill('500');
      const zoomed = await drawn();
      assert.notEqual(zoomed[0]!.sum, before[0]!.sum, 'the first waveform was redrawn');
      assert.notEqual(zoomed[1]!.sum, before[1]!.sum, 'the second waveform was redrawn');
      assert.match((await page.textContent('main')) ?? '', /Metadata side by side/);
      await checkAccessible('compare audio');
      await shot('16-compare-audio');
    });

    it('pages through history, filters by path, shows a commit', async () => {
      await goto('/-/r/studio/commits/main?per_page=3');
      const first = await page.$$eval('tbody tr td:first-child a', (a) =>
        a.map((x) => x.textContent),
      );
      assert.deepEqual(first, ['Add a 6 GiB video', 'Log entry 4', 'Log entry 3']);
      await checkAccessible('history');
      await shot('16-history');
      await page.click('a[rel=next]');
      const second = await page.$$eval('tbody tr td:first-child a', (a) =>
        a.map((x) => x.textContent),
      );
      assert.deepEqual(second, [hostileMessage, 'Log entry 1', 'Move the square']);
      await page.click('a[rel=next]');
      assert.deepEqual(
        await page.$$eval('tbody tr td:first-child a', (a) => a.map((x) => x.textContent)),
        ['Add the studio media'],
      );
      assert.equal(await page.$('a[rel=next]'), null);
      await page.click('a[rel=prev]');
      assert.deepEqual(
        await page.$$eval('tbody tr td:first-child a', (a) => a.map((x) => x.textContent)),
        second,
      );
      await page.fill('#path-filter', 'media/square.png');
      await page.click('form[role=search] button');
      assert.deepEqual(
        await page.$$eval('tbody tr td:first-child a', (a) => a.map((x) => x.textContent)),
        ['Move the square', 'Add the studio media'],
      );
      await page.click('text=Move the square');
      assert.match((await page.textContent('main')) ?? '', /2 files\s+changed/);
      assert.match((await page.textContent('main')) ?? '', /media\/square\.png/);
      await checkAccessible('commit');
      await shot('17-commit');
    });

    it('downloads a file with its exact bytes', async () => {
      await goto('/-/r/studio/blob/main/media/photo.jpg');
      const [download] = await Promise.all([
        page.waitForEvent('download'),
        page.click('a.button[download]'),
      ]);
      const saved = path.join(fixture.outer, 'downloaded.jpg');
      await download.saveAs(saved);
      const want = createHash('sha256').update(files.get('media/photo.jpg')!).digest('hex');
      assert.equal(
        createHash('sha256')
          .update(await fs.readFile(saved))
          .digest('hex'),
        want,
      );
      assert.equal(download.suggestedFilename(), 'photo.jpg');
    });

    it('renders a hostile file name and commit message inert', async () => {
      await goto(`/-/r/studio/commits/main?per_page=50`);
      assert.ok(((await page.textContent('main')) ?? '').includes(hostileMessage));
      await goto('/-/r/studio/tree/main');
      assert.ok(((await page.textContent('main')) ?? '').includes(hostileName));
      await page.click(`a:has-text("onerror")`);
      await page.waitForSelector('.preview img');
      assert.ok(((await page.textContent('h1')) ?? '').includes(hostileName));
      await shot('18-hostile-name');
      const commits = await page.request.get(`${server.base}/-/r/studio/commits/main`);
      assert.ok(!(await commits.text()).includes('<script>alert'), 'no raw script in the page');
      await page.waitForTimeout(300);
      assert.deepEqual(dialogs, [], 'no dialog opened');
      assert.deepEqual(scriptErrors, [], 'no script error');
    });

    it('locks panel, activity and storage pages; unlocking needs the CSRF token', async () => {
      // Alice-style lock through the Git LFS locks API.
      const lock = await fetch(`${server.base}/studio.git/info/lfs/locks`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${readKey.replace(/^/, '')}`,
          'content-type': 'application/vnd.git-lfs+json',
        },
        body: JSON.stringify({ path: 'media/layers.psd' }),
      });
      assert.equal(lock.status, 403, 'a read key cannot lock');
      const made = await fetch(`${server.base}/studio.git/info/lfs/locks`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${adminKey}`,
          'content-type': 'application/vnd.git-lfs+json',
        },
        body: JSON.stringify({ path: 'media/layers.psd' }),
      });
      assert.equal(made.status, 201);
      await goto('/-/r/studio/locks');
      assert.match((await page.textContent('tbody')) ?? '', /media\/layers\.psd\s*ada/);
      await checkAccessible('locks');
      await shot('19-locks');
      // A POST without the token is refused, and the lock stays.
      const action = await page.$eval(
        'form[action$="/unlock"]',
        (f) => (f as HTMLFormElement).action,
      );
      const forged = await page.request.post(action, { form: { csrf: 'forged' }, maxRedirects: 0 });
      assert.equal(forged.status(), 403);
      const bare = await page.request.post(action, { form: {}, maxRedirects: 0 });
      assert.equal(bare.status(), 403);
      await goto('/-/r/studio/locks');
      assert.match((await page.textContent('tbody')) ?? '', /layers\.psd/);
      await page.click('button[aria-label="Unlock media/layers.psd"]');
      await page.waitForURL(/done=/);
      assert.match((await page.textContent('main')) ?? '', /Unlocked media\/layers\.psd/);
      assert.match((await page.textContent('main')) ?? '', /No file is locked/);
      await goto('/-/r/studio/activity');
      const activity = (await page.textContent('tbody')) ?? '';
      assert.match(activity, /unlock/);
      assert.match(activity, /ref-update/);
      assert.match(activity, /refs\/heads\/main/);
      await checkAccessible('activity');
      await shot('20-activity');
      await goto('/-/r/studio/stats');
      assert.match((await page.textContent('main')) ?? '', /Commits\s*7/);
      await checkAccessible('stats');
      await shot('21-stats');
    });

    it('a decompression bomb and a 6 GiB file get a placeholder fast, the server stays small', async () => {
      for (const [file, reason] of [
        ['bomb.png', /50000/],
        ['huge.mp4', /6(\.0)? GiB|too large|large/i],
      ] as const) {
        const started = Date.now();
        await goto(`/-/r/studio/blob/main/${file}`);
        assert.match((await page.textContent('.placeholder')) ?? '', reason, file);
        await shot(`22-placeholder-${file.replace('.', '-')}`);
        assert.ok(Date.now() - started < 5_000, `${file} page took ${Date.now() - started} ms`);
      }
      // The preview URLs themselves answer with a placeholder, quickly.
      for (const [file, kind] of [
        ['bomb.png', 'thumb'],
        ['bomb.png', 'full'],
        ['huge.mp4', 'poster'],
        ['huge.mp4', 'clip'],
      ] as const) {
        const view = await page.request.get(`${server.base}/-/r/studio/blob/main/${file}`);
        const id = /data-object="([0-9a-f]{64})"/.exec(await view.text())![1]!;
        const started = Date.now();
        const preview = await page.request.get(
          `${server.base}/-/r/studio/preview/${kind}/${id}/${file}`,
        );
        assert.equal(preview.status(), 422, `${file} ${kind}`);
        assert.equal(preview.headers()['x-mediagit-preview'], 'placeholder');
        assert.ok(Date.now() - started < 5_000, `${file} ${kind} took ${Date.now() - started} ms`);
      }
      const peak = await peakRssMiB(server);
      assert.ok(peak < 300, `server peak RSS ${peak.toFixed(0)} MiB`);
    });

    it('works with JavaScript off, by keyboard, and at a tablet width', async () => {
      const cookies = await context.cookies();
      const plain = await browser.newContext({ javaScriptEnabled: false });
      try {
        await plain.addCookies(cookies);
        const tab = await plain.newPage();
        await tab.goto(`${server.base}/-/r/studio`);
        await Promise.all([tab.waitForURL(/\/tree\/HEAD\/media$/), tab.click('text=media/')]);
        await Promise.all([
          tab.waitForURL(/\/blob\/HEAD\/media\/photo\.jpg$/),
          tab.click('text=photo.jpg'),
        ]);
        assert.equal(
          await tab.$eval('.preview img', (img) => (img as HTMLImageElement).naturalWidth),
          400,
        );
        await tab.selectOption('#rev', 'main');
        await Promise.all([
          tab.waitForURL(/\/blob\/main\/media\/photo\.jpg$/),
          tab.click('form[action$="/go"] button'),
        ]);
        await tab.goto(`${server.base}/-/r/studio/commits/main?per_page=3`);
        await Promise.all([tab.waitForURL(/page=2/), tab.click('a[rel=next]')]);
        await tab.goto(`${server.base}/-/r/studio/blob/main/media/square.png`);
        await Promise.all([
          tab.waitForURL(/\/compare\?/),
          tab.click('form[action$="/compare"] button'),
        ]);
        assert.equal(await tab.locator('section[data-mode=two-up]').isVisible(), true);
        assert.equal(await tab.locator('section[data-mode=difference]').isVisible(), true);
        await tab
          .waitForFunction(() =>
            [...document.querySelectorAll('section:not([hidden]) img')].every(
              (img: HTMLImageElement) => img.complete && img.naturalWidth > 0,
            ),
          )
          .catch(() => undefined);
        await tab.screenshot({
          path: path.join(ARTIFACTS, '23-no-javascript.png'),
          fullPage: true,
        });
      } finally {
        await plain.close();
      }
      // Keyboard: the first Tab reaches the skip link, which moves focus to the content.
      await goto('/-/r/studio');
      await page.keyboard.press('Tab');
      assert.equal(
        await page.evaluate(() => document.activeElement?.textContent),
        'Skip to content',
      );
      await page.keyboard.press('Enter');
      assert.equal(await page.evaluate(() => document.activeElement?.id), 'main');
      // A tablet: every page reflows without sideways scrolling.
      const tablet = await browser.newContext({
        viewport: { width: 768, height: 1024 },
        isMobile: true,
        hasTouch: true,
      });
      try {
        await tablet.addCookies(cookies);
        const tab = await tablet.newPage();
        for (const [name, url] of [
          ['tree', '/-/r/studio/tree/main/media'],
          ['history', '/-/r/studio/commits/main'],
          ['file', '/-/r/studio/blob/main/media/square.png'],
        ] as const) {
          await tab.goto(`${server.base}${url}`);
          const overflow = await tab.evaluate(
            () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
          );
          assert.ok(overflow <= 0, `${name} scrolls sideways by ${overflow} px on a tablet`);
          await tab.screenshot({
            path: path.join(ARTIFACTS, `24-tablet-${name}.png`),
            fullPage: true,
          });
        }
      } finally {
        await tablet.close();
      }
    });

    it('under TLS the cookie is Secure; --allow-anonymous-read opens the pages; --no-ui turns them off', async () => {
      const tls = await fixture.serve(['--tls-self-signed']);
      const secure = await browser.newContext({ ignoreHTTPSErrors: true });
      try {
        const form = await secure.request.get(`${tls.base}/-/signin`);
        assert.match(form.headers()['set-cookie'] ?? '', /; Secure/);
        const token = /name="csrf" value="([^"]+)"/.exec(await form.text())![1]!;
        const signed = await secure.request.post(`${tls.base}/-/signin`, {
          form: { csrf: token, key: readKey, next: '/' },
          maxRedirects: 0,
        });
        assert.equal(signed.status(), 303);
        const cookie = signed
          .headersArray()
          .find(
            (h) => h.name.toLowerCase() === 'set-cookie' && h.value.startsWith('mediagit_session='),
          );
        assert.match(cookie?.value ?? '', /HttpOnly; SameSite=Strict; Max-Age=\d+; Secure/);
      } finally {
        await secure.close();
        await tls.stop();
      }
      const open = await fixture.serve(['--allow-anonymous-read']);
      try {
        const anonymous = await fetch(`${open.base}/-/r/studio/commits/main`, {
          redirect: 'manual',
        });
        assert.equal(anonymous.status, 200);
        assert.match(await anonymous.text(), /Add a 6 GiB video/);
        const unlock = await fetch(`${open.base}/-/r/studio/locks/x/unlock`, {
          method: 'POST',
          redirect: 'manual',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: 'csrf=x',
        });
        assert.equal(unlock.status, 401, 'writes still need a key');
      } finally {
        await open.stop();
      }
      const api = await fixture.serve(['--no-ui']);
      try {
        assert.equal((await fetch(`${api.base}/`, { redirect: 'manual' })).status, 404);
        assert.equal((await fetch(`${api.base}/-/signin`, { redirect: 'manual' })).status, 404);
        assert.equal((await fetch(`${api.base}/healthz`)).status, 200);
      } finally {
        await api.stop();
      }
    });

    it('every page and asset needs a session; a read key sees only its repository', async () => {
      const anonymous = await browser.newContext();
      try {
        for (const url of [
          '/',
          '/-/r/studio',
          '/-/r/studio/commits/main',
          '/-/r/studio/blob/main/media/square.png',
          '/-/r/studio/raw/main/media/square.png',
          '/-/assets/ui.js',
          '/-/assets/ui.css',
          '/-/r/studio/locks',
          '/-/r/studio/stats',
        ]) {
          const response = await anonymous.request.get(`${server.base}${url}`, { maxRedirects: 0 });
          assert.equal(response.status(), 303, url);
          assert.match(response.headers()['location'] ?? '', /^\/-\/signin\?next=/, url);
        }
        const post = await anonymous.request.post(`${server.base}/-/r/studio/locks/x/unlock`, {
          form: { csrf: 'x' },
          maxRedirects: 0,
        });
        assert.equal(post.status(), 401);
        const reader = await anonymous.newPage();
        await reader.goto(`${server.base}/-/signin`);
        await reader.fill('#key', readKey);
        await Promise.all([
          reader.waitForURL(`${server.base}/`),
          reader.click('button[type=submit]'),
        ]);
        assert.deepEqual(
          await reader.$$eval('tbody tr td:first-child a', (links) =>
            links.map((a) => a.textContent),
          ),
          ['studio'],
        );
        const other = await reader.goto(`${server.base}/-/r/other`);
        assert.equal(other?.status(), 403);
        assert.equal(await reader.$('button[aria-label^="Unlock"]'), null);
      } finally {
        await anonymous.close();
      }
    });
  },
);
