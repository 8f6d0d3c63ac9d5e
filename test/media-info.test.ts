/**
 * `media info` on real files made by ffmpeg (MP4, MOV, MKV, WAV, FLAC), sharp
 * (JPEG, PNG, WebP, TIFF), ag-psd (PSD) and @gltf-transform (GLB), read from
 * stored content (HEAD:<path>, :<path>) after the working files are deleted,
 * so nothing is checked out. Every reported field is compared with what
 * ffprobe, sharp().metadata(), ag-psd's reader or the generator's input says;
 * a large MP4 shows that only a sliver of the stored bytes is read.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { Document, NodeIO } from '@gltf-transform/core';
import { readPsd, writePsdBuffer, type Layer, type PixelData } from 'ag-psd';
import sharp, { type Sharp } from 'sharp';
// Sets ag-psd up to read and write layers as raw pixels.
import '../src/media/merge/layered/psd.ts';
import { pseudoRandomBytes, TempRepo } from './helpers.ts';

interface Stream {
  index: number;
  type: string;
  codec: string;
  codecTag?: string;
  width?: number;
  height?: number;
  frameRate?: number;
  frameCount?: number;
  sampleRate?: number;
  channels?: number;
  bitsPerSample?: number;
  durationSeconds?: number;
  language?: string;
}

interface Layer2 {
  name: string;
  kind: string;
  top: number;
  left: number;
  width?: number;
  height?: number;
  opacity: number;
  visible: boolean;
}

interface Info {
  path: string;
  source: string;
  revision?: string;
  size: number;
  format: string;
  mime: string;
  parsed: boolean;
  bytesRead: number;
  brand?: string;
  durationSeconds?: number;
  width?: number;
  height?: number;
  bitDepth?: number;
  channels?: number;
  colorSpace?: string;
  hasAlpha?: boolean;
  orientation?: number;
  chromaSubsampling?: string;
  progressive?: boolean;
  interlaced?: boolean;
  compression?: string;
  streams?: Stream[];
  layers?: Layer2[];
  scene?: Record<string, number | string>;
  tags?: Record<string, string>;
}

let repo: TempRepo;
/** Copies of every fixture outside the repository, for ffprobe and sharp to read. */
let originals: string;
/** What each fixture's generator was asked for, where no tool reads it back. */
const given = new Map<string, Record<string, unknown>>();

function ffmpeg(...args: string[]): void {
  execFileSync('ffmpeg', ['-loglevel', 'error', '-y', ...args]);
}

interface Probe {
  format: { duration?: string; tags?: Record<string, string> };
  streams: {
    codec_name: string;
    codec_type: string;
    width?: number;
    height?: number;
    avg_frame_rate?: string;
    nb_frames?: string;
    sample_rate?: string;
    channels?: number;
    bits_per_sample?: number;
    bits_per_raw_sample?: string;
    duration?: string;
    tags?: Record<string, string>;
  }[];
}

function ffprobe(file: string): Probe {
  const out = execFileSync('ffprobe', [
    '-v',
    'error',
    '-print_format',
    'json',
    '-show_format',
    '-show_streams',
    file,
  ]);
  return JSON.parse(out.toString('utf8')) as Probe;
}

const AV = ['clip.mp4', 'clip.mov', 'clip.mkv', 'clip.webm', 'tone.wav', 'tone.flac'];
const IMAGES = [
  'photo.jpg',
  'gray.jpg',
  'alpha.png',
  'gray16.png',
  'lossy.webp',
  'lossless.webp',
  'scan.tif',
];

async function makeFixtures(dir: string): Promise<void> {
  const at = (name: string): string => path.join(dir, name);
  ffmpeg(
    ...['-f', 'lavfi', '-i', 'testsrc=size=320x240:rate=25:duration=2'],
    ...['-f', 'lavfi', '-i', 'sine=frequency=440:duration=2:sample_rate=44100'],
    ...['-c:v', 'libx264', '-preset', 'ultrafast', '-c:a', 'aac', '-ac', '1'],
    ...['-metadata', 'title=Clip One', '-metadata:s:a:0', 'language=fra', at('clip.mp4')],
  );
  ffmpeg(
    ...['-f', 'lavfi', '-i', 'testsrc=size=160x120:rate=30000/1001:duration=1'],
    ...['-f', 'lavfi', '-i', 'sine=duration=1:sample_rate=48000'],
    ...['-c:v', 'libx264', '-preset', 'ultrafast', '-c:a', 'aac', '-ac', '2', at('clip.mov')],
  );
  ffmpeg(
    ...['-f', 'lavfi', '-i', 'testsrc=size=176x144:rate=24:duration=1'],
    ...['-f', 'lavfi', '-i', 'sine=duration=1:sample_rate=44100'],
    ...['-c:v', 'libx264', '-preset', 'ultrafast', '-c:a', 'flac', '-metadata', 'title=Matroska'],
    ...['-metadata:s:v:0', 'language=ger', at('clip.mkv')],
  );
  ffmpeg(
    ...['-f', 'lavfi', '-i', 'testsrc=size=128x96:rate=15:duration=1'],
    ...['-f', 'lavfi', '-i', 'sine=duration=1'],
    ...['-c:v', 'libvpx-vp9', '-deadline', 'realtime', '-c:a', 'libopus', at('clip.webm')],
  );
  ffmpeg(
    ...['-f', 'lavfi', '-i', 'sine=duration=1.5:sample_rate=22050', '-ac', '2'],
    ...['-c:a', 'pcm_s24le', '-metadata', 'title=Wave', at('tone.wav')],
  );
  ffmpeg(
    ...['-f', 'lavfi', '-i', 'sine=duration=1.25:sample_rate=32000'],
    ...[
      '-sample_fmt',
      's16',
      '-metadata',
      'title=Flac Tone',
      '-metadata',
      'artist=Test',
      at('tone.flac'),
    ],
  );

  const noise = (w: number, h: number, c: number, seed: number): Sharp =>
    sharp(pseudoRandomBytes(w * h * c, seed), { raw: { width: w, height: h, channels: c as 3 } });
  await noise(96, 64, 3, 1)
    .jpeg({ quality: 80, chromaSubsampling: '4:2:0' })
    .withMetadata({ orientation: 6 })
    .toFile(at('photo.jpg'));
  await noise(40, 30, 1, 2).jpeg({ progressive: true }).toFile(at('gray.jpg'));
  await noise(33, 17, 4, 3).png().toFile(at('alpha.png'));
  await noise(20, 10, 1, 4)
    .toColourspace('grey16')
    .png({ progressive: true })
    .toFile(at('gray16.png'));
  await noise(50, 40, 3, 5).webp({ quality: 70 }).toFile(at('lossy.webp'));
  given.set('lossy.webp', { compression: 'lossy' });
  await noise(24, 24, 4, 6).webp({ lossless: true }).toFile(at('lossless.webp'));
  given.set('lossless.webp', { compression: 'lossless' });
  await noise(64, 48, 3, 7).tiff({ compression: 'lzw' }).toFile(at('scan.tif'));
  given.set('scan.tif', { compression: 'lzw' });

  const pixels = (w: number, h: number, seed: number): PixelData => {
    const data = new Uint8ClampedArray(pseudoRandomBytes(w * h * 4, seed));
    return { width: w, height: h, data };
  };
  const children: Layer[] = [
    { name: 'Sky', top: 0, left: 0, imageData: pixels(48, 20, 10) },
    { name: 'Actör ✓', top: 5, left: 7, opacity: 0.5, imageData: pixels(10, 12, 11) },
    {
      name: 'Titles',
      opened: true,
      children: [{ name: 'Caption', top: 30, left: 2, hidden: true, imageData: pixels(20, 4, 12) }],
    },
  ];
  given.set('poster.psd', { children });
  await fs.writeFile(
    at('poster.psd'),
    writePsdBuffer({ width: 48, height: 40, imageData: pixels(48, 40, 13), children }),
  );

  await makeLayeredZips(dir);

  const doc = new Document();
  const buffer = doc.createBuffer();
  const position = doc
    .createAccessor()
    .setType('VEC3')
    .setArray(new Float32Array([0, 0, 0, 1, 0, 0, 0, 1, 0]))
    .setBuffer(buffer);
  const red = doc.createMaterial('red');
  const blue = doc.createMaterial('blue');
  const meshes = [red, blue].map((material, i) =>
    doc
      .createMesh(`m${i}`)
      .addPrimitive(doc.createPrimitive().setAttribute('POSITION', position).setMaterial(material)),
  );
  const nodes = [0, 1, 2, 3].map((i) => doc.createNode(`n${i}`).setMesh(meshes[i % 2]!));
  doc.createScene('main').addChild(nodes[0]!).addChild(nodes[1]!);
  doc.createScene('other').addChild(nodes[2]!).addChild(nodes[3]!);
  const times = doc
    .createAccessor()
    .setArray(new Float32Array([0, 1]))
    .setBuffer(buffer);
  const moves = doc
    .createAccessor()
    .setType('VEC3')
    .setArray(new Float32Array([0, 0, 0, 1, 1, 1]))
    .setBuffer(buffer);
  const sampler = doc.createAnimationSampler().setInput(times).setOutput(moves);
  doc
    .createAnimation('move')
    .addSampler(sampler)
    .addChannel(
      doc
        .createAnimationChannel()
        .setTargetNode(nodes[0]!)
        .setTargetPath('translation')
        .setSampler(sampler),
    );
  given.set('model.glb', {
    nodes: 4,
    meshes: 2,
    materials: 2,
    animations: 1,
    scenes: 2,
    textures: 0,
  });
  await fs.writeFile(at('model.glb'), await new NodeIO().writeBinary(doc));
}

interface ZipLayer {
  name: string;
  x: number;
  y: number;
  opacity: number;
  visible: boolean;
  /** ORA: the layer PNG's size. */
  size?: [number, number];
  children?: ZipLayer[];
}

/** The ORA and KRA canvas, as given to their XML. */
const CANVAS = { width: 40, height: 30 };

const ZIP_LAYERS: ZipLayer[] = [
  { name: 'Ink & <Lines>', x: 3, y: 4, opacity: 0.75, visible: true, size: [20, 10] },
  {
    name: 'Group \u00e9',
    x: 0,
    y: 0,
    opacity: 1,
    visible: false,
    children: [{ name: 'Inside', x: 1, y: 2, opacity: 0.5, visible: true, size: [5, 6] }],
  },
  { name: 'Background', x: 0, y: 0, opacity: 1, visible: true, size: [40, 30] },
];

const escapeXml = (text: string): string =>
  text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** Zips `files` with zip(1), `mimetype` first and stored, as ORA and KRA require. */
async function zipDocument(
  out: string,
  mimetype: string,
  files: Record<string, Buffer | string>,
): Promise<void> {
  const work = await fs.mkdtemp(`${out}-`);
  await fs.writeFile(path.join(work, 'mimetype'), mimetype);
  for (const [name, data] of Object.entries(files)) {
    await fs.mkdir(path.dirname(path.join(work, name)), { recursive: true });
    await fs.writeFile(path.join(work, name), data);
  }
  execFileSync('zip', ['-q', '-X', '-0', out, 'mimetype'], { cwd: work });
  execFileSync('zip', ['-q', '-X', '-r', '-9', out, ...Object.keys(files)], { cwd: work });
  await fs.rm(work, { recursive: true });
}

async function makeLayeredZips(dir: string): Promise<void> {
  const pngs: Record<string, Buffer> = {};
  let n = 0;
  const ora = async (layers: ZipLayer[]): Promise<string> => {
    let xml = '';
    for (const layer of layers) {
      const common = `name="${escapeXml(layer.name)}" x="${layer.x}" y="${layer.y}" opacity="${layer.opacity}" visibility="${layer.visible ? 'visible' : 'hidden'}"`;
      if (layer.children) {
        xml += `<stack ${common}>${await ora(layer.children)}</stack>`;
        continue;
      }
      const src = `data/layer${n++}.png`;
      const [w, h] = layer.size!;
      pngs[src] = await sharp(pseudoRandomBytes(w * h * 4, n), {
        raw: { width: w, height: h, channels: 4 },
      })
        .png()
        .toBuffer();
      xml += `<layer ${common} src="${src}"/>`;
    }
    return xml;
  };
  const stack = `<?xml version='1.0' encoding='UTF-8'?>\n<image version="0.0.3" w="${CANVAS.width}" h="${CANVAS.height}"><stack>${await ora(ZIP_LAYERS)}</stack></image>`;
  await zipDocument(path.join(dir, 'sketch.ora'), 'image/openraster', {
    'stack.xml': stack,
    ...pngs,
  });

  const kra = (layers: ZipLayer[]): string =>
    layers
      .map((layer) => {
        const common = `name="${escapeXml(layer.name)}" x="${layer.x}" y="${layer.y}" opacity="${Math.round(layer.opacity * 255)}" visible="${layer.visible ? 1 : 0}"`;
        return layer.children
          ? `<layer ${common} nodetype="grouplayer"><layers>${kra(layer.children)}</layers></layer>`
          : `<layer ${common} nodetype="paintlayer" filename="${escapeXml(layer.name)}"/>`;
      })
      .join('');
  const maindoc = `<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE DOC PUBLIC '-//KDE//DTD krita 2.0//EN' 'http://www.calligra.org/DTD/krita-2.0.dtd'>\n<DOC xmlns="http://www.calligra.org/DTD/krita" syntaxVersion="2"><IMAGE width="${CANVAS.width}" height="${CANVAS.height}" colorspacename="RGBA16" name="sketch" mime="application/x-kra"><layers>${kra(ZIP_LAYERS)}</layers></IMAGE></DOC>`;
  await zipDocument(path.join(dir, 'sketch.kra'), 'application/x-krita', {
    'maindoc.xml': maindoc,
  });
}

/** ZIP_LAYERS bottom first, each group after its content. */
function zipLayersInOrder(layers: ZipLayer[], withSize: boolean): Partial<Layer2>[] {
  const out: Partial<Layer2>[] = [];
  for (const layer of [...layers].reverse()) {
    if (layer.children) out.push(...zipLayersInOrder(layer.children, withSize));
    const want: Partial<Layer2> = {
      name: layer.name,
      kind: layer.children ? 'group' : 'layer',
      top: layer.y,
      left: layer.x,
      opacity: layer.opacity,
      visible: layer.visible,
    };
    if (withSize && layer.size) [want.width, want.height] = layer.size;
    out.push(want);
  }
  return out;
}

before(async () => {
  repo = await TempRepo.create();
  originals = path.join(repo.root, 'originals');
  await fs.mkdir(originals);
  await makeFixtures(originals);
  for (const name of await fs.readdir(originals))
    await fs.copyFile(path.join(originals, name), repo.path(name));
  await repo.ok(['add', '.']);
  await repo.ok(['commit', '-q', '-m', 'media']);
  // Stored content only from here on: nothing is checked out for `media info`.
  for (const name of await fs.readdir(originals)) await fs.rm(repo.path(name));
});

after(async () => {
  await repo?.cleanup();
});

async function info(spec: string): Promise<Info> {
  return JSON.parse((await repo.ok(['media', 'info', '--json', spec])).out) as Info;
}

/** ffprobe prints six decimals; ours are rounded to the microsecond too. */
function near(actual: number | undefined, expected: number, what: string, tolerance = 2e-6): void {
  assert.ok(
    actual !== undefined && Math.abs(actual - expected) <= tolerance,
    `${what}: ${actual} vs ${expected}`,
  );
}

function rational(text: string): number {
  const [n, d] = text.split('/').map(Number);
  return n! / d!;
}

function compareWithProbe(name: string, got: Info, probe: Probe): void {
  near(got.durationSeconds, Number(probe.format.duration), `${name} duration`);
  const streams = got.streams ?? [];
  assert.equal(streams.length, probe.streams.length, `${name}: stream count`);
  for (const [i, want] of probe.streams.entries()) {
    const s = streams[i]!;
    const what = `${name} stream ${i}`;
    assert.equal(s.index, i, what);
    assert.equal(s.type, want.codec_type, `${what} type`);
    assert.equal(s.codec, want.codec_name, `${what} codec`);
    assert.equal(s.width, want.width, `${what} width`);
    assert.equal(s.height, want.height, `${what} height`);
    if (want.codec_type === 'video')
      near(s.frameRate, rational(want.avg_frame_rate!), `${what} fps`, 1e-4);
    else assert.equal(s.frameRate, undefined, `${what} fps`);
    if (s.frameCount !== undefined)
      assert.equal(s.frameCount, Number(want.nb_frames), `${what} frames`);
    assert.equal(
      s.sampleRate,
      want.sample_rate === undefined ? undefined : Number(want.sample_rate),
      `${what} rate`,
    );
    assert.equal(s.channels, want.channels, `${what} channels`);
    const bits = want.bits_per_sample || Number(want.bits_per_raw_sample ?? 0) || undefined;
    if (want.codec_name.startsWith('pcm_') || want.codec_name === 'flac')
      assert.equal(s.bitsPerSample, bits, `${what} bits`);
    else assert.equal(s.bitsPerSample, undefined, `${what} bits`);
    if (s.durationSeconds !== undefined || want.duration !== undefined)
      near(s.durationSeconds, Number(want.duration), `${what} duration`);
    const language = want.tags?.['language'];
    assert.equal(s.language, language === 'und' ? undefined : language, `${what} language`);
  }
  const probeTags = Object.fromEntries(
    Object.entries(probe.format.tags ?? {}).map(([k, v]) => [k.toLowerCase(), v]),
  );
  for (const [key, value] of Object.entries(got.tags ?? {}))
    assert.equal(value, probeTags[key], `${name} tag ${key}`);
  // The tags the generator was given are all reported.
  for (const key of ['title', 'artist', 'encoder'])
    if (probeTags[key] !== undefined)
      assert.equal(got.tags?.[key], probeTags[key], `${name} tag ${key}`);
  if (probeTags['major_brand'] !== undefined)
    assert.equal(got.brand, probeTags['major_brand'].trim());
  const video = probe.streams.find((s) => s.codec_type === 'video');
  assert.equal(got.width, video?.width);
  assert.equal(got.height, video?.height);
}

test('audio and video: every field equals what ffprobe reports', async () => {
  for (const name of AV) {
    const got = await info(`HEAD:${name}`);
    assert.equal(got.source, 'revision');
    assert.equal(got.revision, 'HEAD');
    assert.equal(got.parsed, true, name);
    assert.equal(got.size, (await fs.stat(path.join(originals, name))).size);
    compareWithProbe(name, got, ffprobe(path.join(originals, name)));
  }
});

const DEPTHS: Record<string, number> = {
  uchar: 8,
  char: 8,
  ushort: 16,
  short: 16,
  uint: 32,
  float: 32,
};
const SPACES: Record<string, string> = {
  srgb: 'rgb',
  rgb16: 'rgb',
  'b-w': 'gray',
  grey16: 'gray',
  cmyk: 'cmyk',
};

test('images: every field equals what sharp().metadata() reports', async () => {
  for (const name of IMAGES) {
    const got = await info(`HEAD:${name}`);
    const want = await sharp(path.join(originals, name)).metadata();
    const what = (field: string): string => `${name} ${field}`;
    assert.equal(
      got.format,
      want.format === 'jpeg' ? 'jpg' : want.format === 'tiff' ? 'tif' : want.format,
      what('format'),
    );
    assert.equal(got.width, want.width, what('width'));
    assert.equal(got.height, want.height, what('height'));
    assert.equal(got.channels, want.channels, what('channels'));
    assert.equal(got.hasAlpha, want.hasAlpha, what('hasAlpha'));
    assert.equal(got.bitDepth, DEPTHS[want.depth!], what('bitDepth'));
    assert.equal(got.colorSpace, SPACES[want.space!], what('colorSpace'));
    assert.equal(got.orientation, want.orientation, what('orientation'));
    assert.equal(got.chromaSubsampling, want.chromaSubsampling, what('chromaSubsampling'));
    if (want.format === 'jpeg')
      assert.equal(got.progressive, want.isProgressive, what('progressive'));
    if (want.format === 'png') assert.equal(got.interlaced, want.isProgressive, what('interlaced'));
    assert.equal(got.compression, given.get(name)?.['compression'], what('compression'));
  }
});

/** The layers as the generator was given them, in file order (bottom first, groups after their content). */
function expectedLayers(layers: readonly Layer[]): Partial<Layer2>[] {
  const out: Partial<Layer2>[] = [];
  for (const layer of layers) {
    if (layer.children) {
      out.push({ kind: 'group-end' });
      out.push(...expectedLayers(layer.children));
      out.push({ name: layer.name!, kind: 'group', visible: !layer.hidden });
      continue;
    }
    const image = layer.imageData!;
    out.push({
      name: layer.name!,
      kind: 'layer',
      top: layer.top!,
      left: layer.left!,
      width: image.width,
      height: image.height,
      opacity: layer.opacity ?? 1,
      visible: !layer.hidden,
    });
  }
  return out;
}

test('PSD: size, depth, colour mode from the header and every layer the generator made', async () => {
  const got = await info('HEAD:poster.psd');
  const header = readPsd(await fs.readFile(path.join(originals, 'poster.psd')), {
    skipLayerImageData: true,
    skipCompositeImageData: true,
    skipThumbnail: true,
  });
  assert.equal(got.width, header.width);
  assert.equal(got.height, header.height);
  assert.equal(got.channels, header.channels);
  assert.equal(got.bitDepth, header.bitsPerChannel);
  assert.equal(got.colorSpace, header.colorMode === 3 ? 'rgb' : `mode ${header.colorMode}`);
  const want = expectedLayers(given.get('poster.psd')!['children'] as Layer[]);
  assert.equal(got.layers?.length, want.length, JSON.stringify(got.layers));
  for (const [i, layer] of want.entries()) {
    const actual: Layer2 = got.layers![i]!;
    for (const [key, value] of Object.entries(layer))
      assert.equal(
        actual[key as keyof Layer2],
        value,
        `layer ${i} ${key}: ${JSON.stringify(actual)}`,
      );
  }
});

test('ORA and KRA: the layer stack the generator wrote, from the XML index alone', async () => {
  const ora = await info('HEAD:sketch.ora');
  assert.equal(ora.format, 'ora');
  assert.equal(ora.width, CANVAS.width);
  assert.equal(ora.height, CANVAS.height);
  assert.deepEqual(ora.layers, zipLayersInOrder(ZIP_LAYERS, true));
  const kra = await info('HEAD:sketch.kra');
  assert.equal(kra.format, 'kra');
  assert.equal(kra.width, CANVAS.width);
  assert.equal(kra.height, CANVAS.height);
  // colorspacename="RGBA16"
  assert.equal(kra.colorSpace, 'rgb');
  assert.equal(kra.bitDepth, 16);
  assert.deepEqual(kra.layers, zipLayersInOrder(ZIP_LAYERS, false));
});

test('GLB: the counts given to the generator and its name', async () => {
  const got = await info('HEAD:model.glb');
  const bytes = await fs.readFile(path.join(originals, 'model.glb'));
  const asset = (await new NodeIO().readBinary(bytes)).getRoot().getAsset();
  assert.deepEqual(got.scene, {
    ...given.get('model.glb'),
    generator: asset.generator,
    version: asset.version,
  });
});

test('the index and the working tree give the same answer as the commit', async () => {
  const stored = await info('HEAD:clip.mp4');
  const staged = await info(':clip.mp4');
  assert.equal(staged.source, 'index');
  await fs.copyFile(path.join(originals, 'clip.mp4'), repo.path('clip.mp4'));
  try {
    const working = await info('clip.mp4');
    assert.equal(working.source, 'worktree');
    const strip = ({
      source: _s,
      revision: _r,
      path: _p,
      ...rest
    }: Info): Omit<Info, 'source' | 'path'> => rest;
    assert.deepEqual(strip(staged), strip(stored));
    // The blob is read whole (it is one object); the working file only where the parser looks.
    assert.deepEqual({ ...strip(working), bytesRead: 0 }, { ...strip(stored), bytesRead: 0 });
    assert.ok(working.bytesRead < working.size / 4, `read ${working.bytesRead} of ${working.size}`);
    const human = (await repo.ok(['media', 'info', 'clip.mp4'])).out;
    assert.match(human, /^dimensions +320x240$/m);
    assert.match(human, /^stream 0 +video, h264, 320x240, 25 fps/m);
  } finally {
    await fs.rm(repo.path('clip.mp4'));
  }
});

/** Pipes `frames` frames of noise into ffmpeg as MJPEG in MP4: about 1 MiB per frame. */
async function largeMp4(file: string, frames: number): Promise<void> {
  const child = spawn('ffmpeg', [
    ...['-loglevel', 'error', '-y', '-f', 'rawvideo', '-pix_fmt', 'gray'],
    ...['-s', '1024x1024', '-r', '25', '-i', 'pipe:0', '-c:v', 'mjpeg', '-q:v', '1', file],
  ]);
  const done = new Promise<number | null>((resolve) => child.on('close', resolve));
  for (let i = 0; i < frames; i++) {
    if (!child.stdin.write(pseudoRandomBytes(1024 * 1024, 100 + i)))
      await new Promise((resolve) => child.stdin.once('drain', resolve));
  }
  child.stdin.end();
  assert.equal(await done, 0);
}

test('a large MP4 (moov after mdat): bytesRead is under 1% of the file', async () => {
  const file = path.join(originals, 'big.mp4');
  await largeMp4(file, 96);
  await fs.copyFile(file, repo.path('big.mp4'));
  await repo.ok(['add', 'big.mp4']);
  await repo.ok(['commit', '-q', '-m', 'big']);
  await fs.rm(repo.path('big.mp4'));
  const got = await info('HEAD:big.mp4');
  const size = (await fs.stat(file)).size;
  assert.ok(size > 64 * 1024 * 1024, `fixture of ${size} bytes`);
  assert.equal(got.size, size);
  compareWithProbe('big.mp4', got, ffprobe(file));
  assert.ok(got.bytesRead > 0);
  assert.ok(got.bytesRead < size / 100, `read ${got.bytesRead} of ${size} bytes`);
});

test('corrupt media: one line, exit 1; a damaged stored chunk is caught; unknown formats are fine', async () => {
  const whole = await fs.readFile(path.join(originals, 'clip.mp4'));
  const moov = whole.indexOf('moov');
  // The file ends inside the movie header.
  await fs.writeFile(repo.path('cut.mp4'), whole.subarray(0, moov + 40));
  const cut = await repo.fails(['media', 'info', 'cut.mp4'], 1);
  assert.match(cut.stderr, /^error: cut\.mp4: not a valid MP4 file: .+\n$/);
  const png = await fs.readFile(path.join(originals, 'alpha.png'));
  await fs.writeFile(
    repo.path('bad.png'),
    Buffer.concat([png.subarray(0, 12), Buffer.from('JUNK')]),
  );
  const bad = await repo.fails(['media', 'info', '--json', 'bad.png'], 1);
  assert.match(bad.stderr, /^error: bad\.png: not a valid PNG file: .+\n$/);
  assert.equal(bad.out, '');

  await fs.writeFile(repo.path('data.bin'), pseudoRandomBytes(5000, 9));
  const unknown = JSON.parse((await repo.ok(['media', 'info', '--json', 'data.bin'])).out) as Info;
  assert.equal(unknown.format, 'unknown');
  assert.equal(unknown.parsed, false);
  assert.equal(unknown.size, 5000);
  for (const name of ['cut.mp4', 'bad.png', 'data.bin']) await fs.rm(repo.path(name));

  await repo.fails(['media', 'info', 'HEAD:nothing.mp4'], 128);
  await repo.fails(['media', 'info', 'missing.mp4'], 128);

  // Stored bytes are verified as read: a damaged object is reported, never parsed.
  const shown = JSON.parse((await repo.ok(['show', '--json', 'HEAD:tone.flac'])).out) as {
    id: string;
  };
  const object = path.join(repo.gitDir, 'objects', shown.id.slice(0, 2), shown.id.slice(2));
  const good = await fs.readFile(object);
  const damaged = Buffer.from(good);
  damaged[damaged.length - 1]! ^= 0xff;
  await fs.chmod(object, 0o644);
  await fs.writeFile(object, damaged);
  try {
    const corrupt = await repo.fails(['media', 'info', 'HEAD:tone.flac'], 128);
    assert.match(corrupt.stderr, new RegExp(`^fatal: object ${shown.id} is corrupt`));
  } finally {
    await fs.writeFile(object, good);
  }
});
