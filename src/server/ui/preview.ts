/**
 * Previews of stored files for the web interface (docs/web-previews.md):
 * image views and thumbnails (sharp), a PSD's composite, video poster
 * frames and short clips and audio peaks (ffmpeg, WAV read directly), and
 * highlighted text. Each is made on first request and kept in a cache
 * folder by the stored object's ID, which names the bytes, so a cached
 * preview never goes stale. A preview that cannot or must not be made (a
 * decompression bomb, a file over the size limit, bytes that do not decode)
 * is a placeholder with a one-line reason, cached too.
 *
 * Limits are checked from what is cheap first: the size from the tree, then
 * the dimensions from the stored header (a chunk or two), and only then is
 * anything decoded. Content is never held whole in memory: a decoder reads
 * a temp file the content is streamed into.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { createRequire } from 'node:module';
import type { Sharp } from 'sharp';
import { detectFormat, type MediaFormat } from '../../media/detect.ts';
import { readMediaInfo } from '../../media/info/index.ts';
import type { RandomAccess } from '../../media/info/random-access.ts';
import { fsyncDirectory } from '../../storage/durable-file.ts';
import { wavPeaks } from './preview-audio.ts';
import { Deadline, PreviewRefused } from './preview-context.ts';
import { decodePsdComposite, locatePsdComposite } from './preview-psd.ts';

export interface PreviewSource {
  /** ID of the stored file object (blob or manifest): the cache key. */
  readonly id: string;
  /** The file's name (the format is detected from the bytes, with the name as a hint). */
  readonly name: string;
  readonly size: number;
  /** Positional reads that fetch only the chunks they touch. */
  access(): Promise<RandomAccess>;
  /** The whole content in order (a few chunks at a time). */
  stream(write: (data: Uint8Array) => Promise<void>): Promise<void>;
}

export type PreviewKind = 'thumb' | 'full' | 'poster' | 'clip' | 'peaks';

export type PreviewResult =
  | { readonly kind: 'file'; readonly path: string; readonly type: string; readonly size: number }
  | { readonly kind: 'placeholder'; readonly reason: string };

export interface PreviewPlan {
  readonly family: 'image' | 'video' | 'audio' | 'model' | 'text' | 'none';
  /** The previews that apply. */
  readonly kinds: readonly PreviewKind[];
  /** Why there is no preview, when that is known up front. */
  readonly refused?: string;
}

export interface PreviewOptions {
  readonly cacheDir: string;
  /** Largest image decoded (pixels); default 100 million. */
  readonly maxInputPixels?: number;
  /** Largest file previewed (bytes); default 2 GiB. */
  readonly maxSourceBytes?: number;
  /** Longest one preview may take to make; default 20 s. */
  readonly timeoutMs?: number;
  /** Previews made at once; default 2. */
  readonly concurrency?: number;
}

const IMAGE_FORMATS = new Set([
  'jpg',
  'png',
  'webp',
  'tif',
  'gif',
  'psd',
  'psb',
  'exr',
  'avif',
  'heic',
  'bmp',
]);
const VIDEO_FORMATS = new Set([
  'mp4',
  'm4v',
  'mov',
  'mkv',
  'webm',
  'avi',
  '3gp',
  'mxf',
  'mpg',
  'ts',
]);
const AUDIO_FORMATS = new Set(['wav', 'flac', 'mp3', 'ogg', 'opus', 'm4a', 'aac', 'aiff', 'wma']);
const MODEL_FORMATS = new Set(['glb', 'gltf']);
/** Text files larger than this are not highlighted. */
const TEXT_LIMIT = 1024 * 1024;
const SIDES: Record<'thumb' | 'full', number> = { thumb: 320, full: 2048 };
const CLIP_SECONDS = 4;

function formatSize(bytes: number): string {
  return bytes >= 1024 ** 3
    ? `${(bytes / 1024 ** 3).toFixed(1)} GiB`
    : `${(bytes / 1024 ** 2).toFixed(0)} MiB`;
}

let ffmpegPresent: boolean | undefined;
function hasFfmpeg(): boolean {
  ffmpegPresent ??= spawnSync('ffmpeg', ['-version'], { stdio: 'ignore' }).status === 0;
  return ffmpegPresent;
}

type SharpModule = typeof import('sharp').default;
let sharpModule: Promise<SharpModule> | undefined;
/**
 * sharp, loaded on the first image preview: its native library costs the
 * server tens of MiB it need not hold until someone looks at an image.
 */
function loadSharp(): Promise<SharpModule> {
  sharpModule ??= import('sharp').then(({ default: sharp }) => {
    // The server makes previews now and then: no decoded-image cache kept between them.
    sharp.cache(false);
    return sharp;
  });
  return sharpModule;
}

/** The part of highlight.js used here (its own types pull in the DOM library). */
interface Highlighter {
  getLanguage(name: string): { readonly name?: string } | undefined;
  highlight(
    code: string,
    options: { language: string; ignoreIllegals?: boolean },
  ): { value: string };
}
let highlighter: Highlighter | undefined;
/** highlight.js, loaded on first use (its ~190 grammars cost start-up time a server need not pay). */
function hljs(): Highlighter {
  highlighter ??= createRequire(import.meta.url)('highlight.js') as Highlighter;
  return highlighter;
}

export class Previews {
  readonly #dir: string;
  readonly #maxPixels: number;
  readonly #maxBytes: number;
  readonly #timeoutMs: number;
  readonly #concurrency: number;
  #running = 0;
  readonly #waiting: (() => void)[] = [];
  readonly #inflight = new Map<string, Promise<PreviewResult>>();

  constructor(options: PreviewOptions) {
    this.#dir = options.cacheDir;
    this.#maxPixels = options.maxInputPixels ?? 100_000_000;
    this.#maxBytes = options.maxSourceBytes ?? 2 * 1024 ** 3;
    this.#timeoutMs = options.timeoutMs ?? 20_000;
    this.#concurrency = options.concurrency ?? 2;
  }

  async #format(source: PreviewSource): Promise<MediaFormat> {
    const access = await source.access();
    return detectFormat(await access.read(0, Math.min(access.size, 4096)), source.name);
  }

  async plan(source: PreviewSource): Promise<PreviewPlan> {
    const format = await this.#format(source);
    const id = format.format;
    const family: PreviewPlan['family'] = IMAGE_FORMATS.has(id)
      ? 'image'
      : VIDEO_FORMATS.has(id)
        ? 'video'
        : AUDIO_FORMATS.has(id)
          ? 'audio'
          : MODEL_FORMATS.has(id)
            ? 'model'
            : format.category === 'text' && !format.alreadyCompressed
              ? 'text'
              : 'none';
    const kinds: PreviewKind[] =
      family === 'image'
        ? ['thumb', 'full']
        : family === 'video'
          ? ['poster', 'clip']
          : family === 'audio'
            ? ['peaks']
            : [];
    if (family === 'none' || family === 'text') return { family, kinds };
    if (source.size > this.#maxBytes && family !== 'model') {
      return {
        family,
        kinds,
        refused: `file is ${formatSize(source.size)}; previews are made for files up to ${formatSize(this.#maxBytes)}`,
      };
    }
    if (family === 'model' && source.size > this.#maxBytes) {
      return {
        family,
        kinds,
        refused: `model is ${formatSize(source.size)}; the 3D viewer loads models up to ${formatSize(this.#maxBytes)}`,
      };
    }
    if (
      (family === 'video' || (family === 'audio' && id !== 'wav') || id === 'exr') &&
      !hasFfmpeg()
    ) {
      return {
        family,
        kinds: [],
        refused: 'ffmpeg is not installed on the server; properties only',
      };
    }
    if (family === 'image') {
      const refused = await this.#pixelCheck(source, id);
      if (refused) return { family, kinds, refused };
    }
    return { family, kinds };
  }

  /** Why the image must not be decoded, from its header alone; undefined when it may. */
  async #pixelCheck(source: PreviewSource, format: string): Promise<string | undefined> {
    let width: number | undefined;
    let height: number | undefined;
    try {
      const info = await readMediaInfo(await source.access(), source.name);
      width = info.properties.width;
      height = info.properties.height;
    } catch (error) {
      return `the ${format.toUpperCase()} header does not parse (${error instanceof Error ? error.message : String(error)})`;
    }
    if (width === undefined || height === undefined) return undefined;
    const limit = this.#maxPixels;
    if (width * height > limit) {
      return `image is ${width} × ${height} (${((width * height) / 1e6).toFixed(0)} Mpx), above the ${(limit / 1e6).toFixed(0)} Mpx preview limit`;
    }
    return undefined;
  }

  #cachePath(kind: string, id: string, ext: string): string {
    return path.join(this.#dir, kind, id.slice(0, 2), `${id}.${ext}`);
  }

  async get(source: PreviewSource, kind: PreviewKind): Promise<PreviewResult> {
    const ext = { thumb: 'webp', full: 'webp', poster: 'jpg', clip: 'webm', peaks: 'json' }[kind];
    const type = {
      thumb: 'image/webp',
      full: 'image/webp',
      poster: 'image/jpeg',
      clip: 'video/webm',
      peaks: 'application/json',
    }[kind];
    return this.#cached(kind, source.id, ext, type, async () => {
      const plan = await this.plan(source);
      if (plan.refused) throw new PreviewRefused(plan.refused);
      if (!plan.kinds.includes(kind))
        throw new PreviewRefused(`no ${kind} preview for this kind of file`);
      switch (kind) {
        case 'thumb':
        case 'full':
          return (await this.#image(source, SIDES[kind]))
            .webp({ quality: kind === 'thumb' ? 75 : 85 })
            .toBuffer();
        case 'poster':
          return this.#withTemp(source, (file) => this.#poster(file));
        case 'clip':
          return this.#withTemp(source, (file) => this.#clip(file));
        case 'peaks':
          return Buffer.from(JSON.stringify(await this.#peaks(source)));
      }
    });
  }

  async difference(a: PreviewSource, b: PreviewSource): Promise<PreviewResult> {
    return this.#cached('difference', `${a.id}-${b.id}`, 'png', 'image/png', async () => {
      for (const side of [a, b]) {
        const plan = await this.plan(side);
        if (plan.refused) throw new PreviewRefused(plan.refused);
        if (plan.family !== 'image') throw new PreviewRefused('a difference is made of two images');
      }
      const before = await (
        await this.#image(a, SIDES.full)
      )
        .flatten({ background: '#000' })
        .removeAlpha()
        .raw()
        .toBuffer({ resolveWithObject: true });
      const after = await (
        await this.#image(b, SIDES.full)
      )
        .flatten({ background: '#000' })
        .removeAlpha()
        .resize(before.info.width, before.info.height, { fit: 'fill' })
        .raw()
        .toBuffer();
      const out = Buffer.allocUnsafe(before.data.length);
      for (let i = 0; i < out.length; i++) out[i] = Math.abs(before.data[i]! - after[i]!);
      const sharp = await loadSharp();
      return sharp(out, {
        raw: {
          width: before.info.width,
          height: before.info.height,
          channels: before.info.channels,
        },
      })
        .png()
        .toBuffer();
    });
  }

  async highlight(
    source: PreviewSource,
  ): Promise<{ html: string; language: string | undefined } | undefined> {
    if (source.size > TEXT_LIMIT) return undefined;
    const bytes = await (await source.access()).read(0, source.size);
    if (bytes.subarray(0, 8192).includes(0)) return undefined;
    const text = bytes.toString('utf8');
    const ext = source.name.includes('.')
      ? source.name.slice(source.name.lastIndexOf('.') + 1).toLowerCase()
      : '';
    const language = ext !== '' && hljs().getLanguage(ext) ? ext : undefined;
    const result = hljs().highlight(text, {
      language: language ?? 'plaintext',
      ignoreIllegals: true,
    });
    return { html: result.value, language: language && hljs().getLanguage(language)?.name };
  }

  /**
   * The cached preview, or makes it with `make` (one maker per key at a
   * time, at most `concurrency` makers at once), writes it crash-safe and
   * returns it. A refusal or a decoder's failure becomes a cached placeholder.
   */
  async #cached(
    kind: string,
    id: string,
    ext: string,
    type: string,
    make: () => Promise<Buffer>,
  ): Promise<PreviewResult> {
    const file = this.#cachePath(kind, id, ext);
    const none = this.#cachePath(kind, id, 'none.json');
    const found = await this.#lookup(file, none, type);
    if (found) return found;
    const key = `${kind}/${id}`;
    let pending = this.#inflight.get(key);
    if (!pending) {
      pending = this.#slot(async (): Promise<PreviewResult> => {
        const again = await this.#lookup(file, none, type);
        if (again) return again;
        let bytes: Buffer;
        try {
          bytes = await make();
        } catch (error) {
          const reason =
            error instanceof PreviewRefused
              ? error.message
              : `could not be decoded: ${oneLine(error)}`;
          if (isStorageFailure(error)) throw error;
          await this.#store(none, Buffer.from(JSON.stringify({ reason })));
          return { kind: 'placeholder', reason } satisfies PreviewResult;
        }
        await this.#store(file, bytes);
        return { kind: 'file', path: file, type, size: bytes.length } satisfies PreviewResult;
      }).finally(() => this.#inflight.delete(key));
      this.#inflight.set(key, pending);
    }
    return pending;
  }

  async #lookup(file: string, none: string, type: string): Promise<PreviewResult | undefined> {
    const stat = await fs.stat(file).catch(() => undefined);
    if (stat) return { kind: 'file', path: file, type, size: stat.size };
    const refused = await fs.readFile(none, 'utf8').catch(() => undefined);
    if (refused !== undefined) {
      try {
        return { kind: 'placeholder', reason: (JSON.parse(refused) as { reason: string }).reason };
      } catch {
        return undefined;
      }
    }
    return undefined;
  }

  /** Temp file, fsync, rename: a cache entry is whole or absent. */
  async #store(file: string, bytes: Buffer): Promise<void> {
    const dir = path.dirname(file);
    await fs.mkdir(dir, { recursive: true });
    const temp = path.join(dir, `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
    const handle = await fs.open(temp, 'w');
    try {
      await handle.writeFile(bytes);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.rename(temp, file);
    await fsyncDirectory(dir);
  }

  async #slot<T>(work: () => Promise<T>): Promise<T> {
    while (this.#running >= this.#concurrency)
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
    this.#running++;
    try {
      return await work();
    } finally {
      this.#running--;
      this.#waiting.shift()?.();
    }
  }

  /** Streams the content into a temp file in the cache folder, runs `use` on it, removes it. */
  async #withTemp<T>(source: PreviewSource, use: (file: string) => Promise<T>): Promise<T> {
    const dir = path.join(this.#dir, 'tmp');
    await fs.mkdir(dir, { recursive: true });
    const ext = source.name.includes('.')
      ? source.name.slice(source.name.lastIndexOf('.')).toLowerCase()
      : '';
    const file = path.join(
      dir,
      `${randomBytes(8).toString('hex')}${/^\.[a-z0-9]{1,5}$/.test(ext) ? ext : ''}`,
    );
    try {
      const handle = await fs.open(file, 'w');
      try {
        await source.stream(async (data) => {
          await handle.write(data);
        });
      } finally {
        await handle.close();
      }
      return await use(file);
    } finally {
      await fs.rm(file, { force: true });
    }
  }

  /** A sharp pipeline of the image, oriented and scaled to fit `side` × `side`. */
  async #image(source: PreviewSource, side: number): Promise<Sharp> {
    const sharp = await loadSharp();
    const format = (await this.#format(source)).format;
    const seconds = Math.max(1, Math.ceil(this.#timeoutMs / 1000));
    const fit = (image: Sharp) =>
      image
        .rotate()
        .resize(side, side, { fit: 'inside', withoutEnlargement: true })
        .timeout({ seconds });
    if (format === 'psd' || format === 'psb') {
      // Decoded a row at a time and box-averaged to the view's size: memory is that image.
      const access = await source.access();
      const located = await locatePsdComposite(access, this.#maxPixels);
      const image = await decodePsdComposite(access, located, side, new Deadline(this.#timeoutMs));
      const raw = { width: image.width, height: image.height, channels: 4 as const };
      // Encoded once so the pipeline below owns its input.
      const png = await sharp(image.data, { raw }).png({ compressionLevel: 1 }).toBuffer();
      return fit(sharp(png));
    }
    if (format === 'exr') {
      const png = await this.#withTemp(source, (file) =>
        this.#ffmpeg(['-i', file, '-frames:v', '1', '-f', 'image2pipe', '-c:v', 'png', '-']),
      );
      return fit(sharp(png));
    }
    // Decoded from a file: sharp reads what it needs (a TIFF strip by strip, a JPEG shrunk on load).
    const data = await this.#withTemp(source, async (file) =>
      fit(sharp(file, { limitInputPixels: this.#maxPixels, failOn: 'error', animated: false }))
        .png({ compressionLevel: 1 })
        .toBuffer(),
    );
    return sharp(data);
  }

  async #poster(file: string): Promise<Buffer> {
    const scale = "scale='min(640,iw)':-2";
    const frame = (at: number) =>
      this.#ffmpeg([
        '-ss',
        String(at),
        '-i',
        file,
        '-frames:v',
        '1',
        '-vf',
        scale,
        '-f',
        'image2pipe',
        '-c:v',
        'mjpeg',
        '-q:v',
        '4',
        '-',
      ]);
    const bytes = await frame(1);
    return bytes.length > 0 ? bytes : frame(0);
  }

  async #clip(file: string): Promise<Buffer> {
    return this.#ffmpeg([
      '-i',
      file,
      '-t',
      String(CLIP_SECONDS),
      '-an',
      '-vf',
      "scale='min(320,iw)':-2",
      '-c:v',
      'libvpx',
      '-deadline',
      'realtime',
      '-cpu-used',
      '8',
      '-b:v',
      '400k',
      '-f',
      'webm',
      '-',
    ]);
  }

  async #peaks(source: PreviewSource): Promise<object> {
    const format = (await this.#format(source)).format;
    if (format === 'wav') {
      const peaks = await wavPeaks(await source.access());
      if (peaks) return peaks;
    }
    // Any other audio: ffmpeg decodes it to 8 kHz samples of every channel, peaks made from those.
    const info = await readMediaInfo(await source.access(), source.name).catch(() => undefined);
    const stream = info?.properties.streams?.find((s) => s.type === 'audio');
    const channels = Math.max(1, Math.min(16, stream?.channels ?? 1));
    const rate = 8000;
    const samples = await this.#withTemp(source, (file) =>
      this.#ffmpeg([
        '-i',
        file,
        '-vn',
        '-ac',
        String(channels),
        '-ar',
        String(rate),
        '-f',
        's16le',
        '-c:a',
        'pcm_s16le',
        '-',
      ]),
    );
    const frames = Math.floor(samples.length / 2 / channels);
    const buckets = Math.max(1, Math.min(1500, frames));
    const peaks: [number, number][] = [];
    for (let b = 0; b < buckets; b++) {
      let low = 0;
      let high = 0;
      const end = Math.floor(((b + 1) * frames) / buckets) * channels;
      for (let i = Math.floor((b * frames) / buckets) * channels; i < end; i++) {
        const v = samples.readInt16LE(i * 2) / 32768;
        if (v < low) low = v;
        if (v > high) high = v;
      }
      peaks.push([round4(low), round4(high)]);
    }
    return { duration: frames / rate, sampleRate: stream?.sampleRate ?? rate, channels, peaks };
  }

  /** Runs ffmpeg to its standard output; killed at the time limit. */
  #ffmpeg(args: readonly string[]): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const child = spawn('ffmpeg', ['-v', 'error', '-nostdin', '-y', ...args], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const out: Buffer[] = [];
      let err = '';
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new PreviewRefused(`ffmpeg took longer than ${this.#timeoutMs / 1000} s`));
      }, this.#timeoutMs);
      child.stdout.on('data', (part: Buffer) => out.push(part));
      child.stderr.on('data', (part: Buffer) => {
        if (err.length < 4096) err += part.toString();
      });
      child.on('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
      child.on('close', (code) => {
        clearTimeout(timer);
        if (code === 0) resolve(Buffer.concat(out));
        else
          reject(
            new PreviewRefused(
              `ffmpeg could not decode it: ${err.trim().split('\n').at(-1) ?? `exit ${code}`}`,
            ),
          );
      });
    });
  }
}

function round4(value: number): number {
  return Math.round(value * 10_000) / 10_000;
}

function oneLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split('\n', 1)[0]!.slice(0, 200);
}

/** Storage errors (a missing or unreadable object) are the server's, not the file's: not cached. */
function isStorageFailure(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return (
    typeof code === 'string' &&
    (code.startsWith('STORAGE_') || code === 'OBJECT_MISSING' || code === 'OBJECT_CORRUPT')
  );
}
