/**
 * Format detection on real files: made during the test by ffmpeg, sharp,
 * ag-psd, @gltf-transform/core and zip in a temp directory, plus small
 * hand-made samples (built to each format's spec) for formats no local tool
 * writes. A case whose tool is missing is skipped with the reason.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import { Document, NodeIO } from '@gltf-transform/core';
import { writePsdBuffer } from 'ag-psd';
import sharp from 'sharp';
import { DETECT_HEAD_BYTES, detectFormat, isTextFormat, type MediaFormat } from './detect.ts';
import { EXTENSIONS, FORMATS } from './formats.ts';

const run = promisify(execFile);

function onPath(tool: string): string | undefined {
  for (const dir of (process.env['PATH'] ?? '').split(path.delimiter)) {
    const full = path.join(dir, tool);
    if (fs.existsSync(full)) return full;
  }
  return undefined;
}

const FFMPEG = onPath('ffmpeg');
const ZIP = onPath('zip');

let dir = '';
before(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'mediagit-detect-'));
});
after(async () => {
  await fsp.rm(dir, { recursive: true, force: true });
});

// ---- makers ----

const VIDEO = ['-f', 'lavfi', '-i', 'testsrc=duration=1:size=64x64:rate=10'];
const AUDIO = ['-f', 'lavfi', '-i', 'sine=frequency=440:duration=0.5'];

/** Runs ffmpeg with `args` writing `file` in the temp dir; returns the file's bytes. */
async function ffmpeg(file: string, args: readonly string[]): Promise<Buffer> {
  const out = path.join(dir, `ffmpeg-${file}`);
  await run(FFMPEG!, ['-v', 'error', '-y', ...args, out]);
  return fsp.readFile(out);
}

/** Writes `files` into a fresh folder and zips them (in this order) with zip(1). */
async function zip(
  name: string,
  files: readonly [string, string | Uint8Array][],
  flags: readonly string[] = [],
): Promise<Buffer> {
  const work = await fsp.mkdtemp(path.join(dir, 'zip-'));
  for (const [file, content] of files) {
    await fsp.mkdir(path.dirname(path.join(work, file)), { recursive: true });
    await fsp.writeFile(path.join(work, file), content);
  }
  await run(ZIP!, ['-q', '-X', '-D', ...flags, name, ...files.map(([file]) => file)], {
    cwd: work,
  });
  return fsp.readFile(path.join(work, name));
}

const noiseImage = () =>
  sharp({
    create: {
      width: 48,
      height: 48,
      channels: 3,
      background: { r: 200, g: 30, b: 60 },
      noise: { type: 'gaussian', mean: 128, sigma: 30 },
    },
  });

function pixels(size: number) {
  const data = new Uint8ClampedArray(size * size * 4);
  for (let i = 0; i < data.length; i++) data[i] = (i * 7) & 0xff;
  return { width: size, height: size, data };
}

async function gltfDocument(): Promise<Document> {
  const doc = new Document();
  const buffer = doc.createBuffer();
  const position = doc
    .createAccessor()
    .setType('VEC3')
    .setArray(new Float32Array([0, 0, 0, 1, 0, 0, 0, 1, 0]))
    .setBuffer(buffer);
  const mesh = doc
    .createMesh('triangle')
    .addPrimitive(doc.createPrimitive().setAttribute('POSITION', position));
  doc.createScene('scene').addChild(doc.createNode('node').setMesh(mesh));
  return doc;
}

/** Bytes that match no signature and are not text. */
function opaque(length = 4096): Buffer {
  const out = Buffer.alloc(length);
  for (let i = 0; i < length; i++) out[i] = (i * 37 + 11) & 0xff;
  out[0] = 0x00;
  return out;
}

const ascii = (s: string): Buffer => Buffer.from(s, 'latin1');

function tarHeader(name: string, size: number): Buffer {
  const header = Buffer.alloc(512);
  header.write(name, 0, 'latin1');
  header.write('0000644\0', 100, 'latin1');
  header.write('0000000\0', 108, 'latin1');
  header.write('0000000\0', 116, 'latin1');
  header.write(`${size.toString(8).padStart(11, '0')}\0`, 124, 'latin1');
  header.write('14705221500\0', 136, 'latin1');
  header.write('        ', 148, 'latin1');
  header.write('0', 156, 'latin1');
  header.write('ustar\0', 257, 'latin1');
  header.write('00', 263, 'latin1');
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return header;
}

function safetensors(): Buffer {
  let json = JSON.stringify({
    __metadata__: { format: 'pt' },
    'encoder.weight': { dtype: 'F32', shape: [2, 2], data_offsets: [0, 16] },
  });
  json = json.padEnd(Math.ceil(json.length / 8) * 8, ' ');
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([
    length,
    ascii(json),
    Buffer.from(new Float32Array([1, -2, 0.5, 3]).buffer),
  ]);
}

function gguf(): Buffer {
  const key = ascii('general.architecture');
  const value = ascii('llama');
  const out = Buffer.alloc(4 + 4 + 8 + 8 + 8 + key.length + 4 + 8 + value.length);
  let at = out.write('GGUF', 0, 'latin1');
  at = out.writeUInt32LE(3, at);
  at = out.writeBigUInt64LE(0n, at); // tensors
  at = out.writeBigUInt64LE(1n, at); // metadata entries
  at = out.writeBigUInt64LE(BigInt(key.length), at);
  at += key.copy(out, at);
  at = out.writeUInt32LE(8, at); // GGUF_TYPE_STRING
  at = out.writeBigUInt64LE(BigInt(value.length), at);
  value.copy(out, at);
  return out;
}

const CSV = 'shot,frame,exposure,label\nSH010,1001,0.0417,ok\nSH010,1002,0.0417,"retake, soft"\n';
const PY =
  'from pathlib import Path\n\n\ndef frames(root):\n    return sorted(Path(root).glob("*.exr"))\n';
const RS = 'use std::path::Path;\n\npub fn frames(root: &Path) -> usize {\n    0\n}\n';
const JS =
  "import { readFile } from 'node:fs/promises';\n\nexport const load = (p) => readFile(p);\n";
const OBJ = '# triangle\nv 0 0 0\nv 1 0 0\nv 0 1 0\nvn 0 0 1\nf 1//1 2//1 3//1\n';
const USDA = '#usda 1.0\n(\n    defaultPrim = "World"\n)\n\ndef Xform "World"\n{\n}\n';

// ---- cases ----

type Expected = Partial<MediaFormat> & { readonly format: string };

interface Case {
  /** File name handed to detectFormat (and used for the fixture). */
  readonly name: string;
  readonly expect: Expected;
  /** Expected format when the same bytes come without a file name; default: `expect.format`. */
  readonly bare?: string;
  readonly tool?: 'ffmpeg' | 'zip';
  readonly make: () => Promise<Uint8Array> | Uint8Array;
}

const video = (container: MediaFormat['container']) =>
  ({ category: 'video', detectedBy: 'magic', alreadyCompressed: true, container }) as const;

const CASES: readonly Case[] = [
  // video, made by ffmpeg
  {
    name: 'clip.mp4',
    expect: { format: 'mp4', mime: 'video/mp4', ...video('mp4') },
    tool: 'ffmpeg',
    make: () => ffmpeg('a.mp4', [...VIDEO, '-c:v', 'libx264', '-pix_fmt', 'yuv420p']),
  },
  {
    name: 'clip.MOV',
    expect: { format: 'mov', mime: 'video/quicktime', ...video('mp4') },
    tool: 'ffmpeg',
    make: () => ffmpeg('a.mov', [...VIDEO, '-c:v', 'libx264', '-pix_fmt', 'yuv420p']),
  },
  {
    name: 'clip.mkv',
    expect: { format: 'mkv', ...video('ebml') },
    tool: 'ffmpeg',
    make: () => ffmpeg('a.mkv', [...VIDEO, '-c:v', 'libx264', '-pix_fmt', 'yuv420p']),
  },
  {
    name: 'clip.webm',
    expect: { format: 'webm', mime: 'video/webm', ...video('ebml') },
    tool: 'ffmpeg',
    make: () =>
      ffmpeg('a.webm', [...VIDEO, '-c:v', 'libvpx-vp9', '-deadline', 'realtime', '-cpu-used', '8']),
  },
  {
    name: 'clip.avi',
    expect: { format: 'avi', ...video('riff') },
    tool: 'ffmpeg',
    make: () => ffmpeg('a.avi', [...VIDEO, '-c:v', 'mpeg4']),
  },
  {
    name: 'clip.mxf',
    expect: { format: 'mxf', ...video(undefined) },
    tool: 'ffmpeg',
    make: () =>
      ffmpeg('a.mxf', [
        ...['-f', 'lavfi', '-i', 'testsrc=duration=0.2:size=64x64:rate=25'],
        ...['-c:v', 'mpeg2video', '-f', 'mxf'],
      ]),
  },
  {
    // ".ts" is TypeScript by extension; the sync bytes say MPEG transport stream.
    name: 'broadcast.ts',
    expect: { format: 'mpegts', ...video(undefined) },
    tool: 'ffmpeg',
    make: () => ffmpeg('a.ts', [...VIDEO, '-c:v', 'mpeg2video', '-f', 'mpegts']),
  },
  // audio, made by ffmpeg
  {
    name: 'tone.wav',
    expect: { format: 'wav', category: 'audio', container: 'riff', alreadyCompressed: false },
    tool: 'ffmpeg',
    make: () => ffmpeg('a.wav', [...AUDIO, '-c:a', 'pcm_s16le']),
  },
  {
    name: 'tone.aiff',
    expect: { format: 'aiff', category: 'audio', container: 'aiff', alreadyCompressed: false },
    tool: 'ffmpeg',
    make: () => ffmpeg('a.aiff', [...AUDIO, '-c:a', 'pcm_s16be']),
  },
  {
    name: 'tone.mp3',
    expect: { format: 'mp3', category: 'audio-compressed', alreadyCompressed: true },
    tool: 'ffmpeg',
    make: () => ffmpeg('a.mp3', [...AUDIO, '-c:a', 'libmp3lame']),
  },
  {
    // No ID3 tag and no Xing frame: only the MPEG frame sync identifies it.
    name: 'untagged-audio',
    expect: { format: 'mp3', detectedBy: 'magic' },
    tool: 'ffmpeg',
    make: () =>
      ffmpeg('untagged.mp3', [
        ...AUDIO,
        ...['-c:a', 'libmp3lame', '-id3v2_version', '0', '-write_xing', '0', '-f', 'mp3'],
      ]),
  },
  {
    name: 'tone.aac',
    expect: { format: 'aac', category: 'audio-compressed', detectedBy: 'magic' },
    tool: 'ffmpeg',
    make: () => ffmpeg('a.aac', [...AUDIO, '-c:a', 'aac', '-f', 'adts']),
  },
  {
    name: 'tone.m4a',
    expect: { format: 'm4a', category: 'audio-compressed', container: 'mp4' },
    tool: 'ffmpeg',
    make: () => ffmpeg('a.m4a', [...AUDIO, '-c:a', 'aac', '-f', 'ipod']),
  },
  {
    name: 'tone.flac',
    expect: { format: 'flac', category: 'audio-compressed', alreadyCompressed: true },
    tool: 'ffmpeg',
    make: () => ffmpeg('a.flac', [...AUDIO, '-c:a', 'flac']),
  },
  {
    name: 'tone.ogg',
    expect: { format: 'ogg', mime: 'audio/ogg', alreadyCompressed: true },
    tool: 'ffmpeg',
    make: () => ffmpeg('a.ogg', [...AUDIO, '-c:a', 'libvorbis']),
  },
  {
    // Ogg Opus under a .ogg name: the codec header decides.
    name: 'voice.ogg',
    expect: { format: 'opus', mime: 'audio/opus', detectedBy: 'magic' },
    tool: 'ffmpeg',
    make: () => ffmpeg('a.opus', [...AUDIO, '-c:a', 'libopus']),
  },
  {
    name: 'plate.exr',
    expect: { format: 'exr', category: 'image', alreadyCompressed: false },
    tool: 'ffmpeg',
    make: () =>
      ffmpeg('a.exr', [
        ...['-f', 'lavfi', '-i', 'testsrc=size=16x16', '-frames:v', '1'],
        ...['-c:v', 'exr', '-pix_fmt', 'gbrpf32le'],
      ]),
  },
  // images, made by sharp
  {
    name: 'photo.jpeg',
    expect: { format: 'jpg', mime: 'image/jpeg', category: 'image', alreadyCompressed: true },
    make: () => noiseImage().jpeg().toBuffer(),
  },
  {
    name: 'icon.png',
    expect: { format: 'png', category: 'image', alreadyCompressed: true },
    make: () => noiseImage().png().toBuffer(),
  },
  {
    name: 'frame.webp',
    expect: { format: 'webp', mime: 'image/webp', container: undefined },
    make: () => noiseImage().webp().toBuffer(),
  },
  {
    name: 'still.avif',
    expect: { format: 'avif', category: 'image', container: undefined, alreadyCompressed: true },
    make: () => noiseImage().avif().toBuffer(),
  },
  {
    name: 'loop.gif',
    expect: { format: 'gif', alreadyCompressed: true },
    make: () => noiseImage().gif().toBuffer(),
  },
  {
    name: 'scan.tiff',
    expect: { format: 'tif', category: 'image' },
    make: () => noiseImage().tiff().toBuffer(),
  },
  {
    // sharp's prebuilt libvips has no HEVC encoder and ffmpeg 5 no HEIF
    // muxer, so this is the ftyp box an iPhone HEIC starts with.
    name: 'IMG_0001.HEIC',
    expect: { format: 'heic', category: 'image', alreadyCompressed: true },
    make: () =>
      Buffer.concat([
        Buffer.from([0, 0, 0, 0x18]),
        ascii('ftypheic\0\0\0\0mif1heic'),
        Buffer.from([0, 0, 0, 0x22]),
        ascii('meta'),
        opaque(64),
      ]),
  },
  // layered and 3D, made by ag-psd and glTF-Transform
  {
    name: 'poster.psd',
    expect: { format: 'psd', category: 'layered', alreadyCompressed: false },
    make: () => writePsdBuffer({ width: 8, height: 8, imageData: pixels(8), children: [] }),
  },
  {
    name: 'billboard.psb',
    expect: { format: 'psb', category: 'layered' },
    make: () =>
      writePsdBuffer(
        { width: 8, height: 8, imageData: pixels(8), children: [{ name: 'Layer 1' }] },
        { psb: true },
      ),
  },
  {
    name: 'prop.glb',
    expect: { format: 'glb', category: '3d', container: 'glb', alreadyCompressed: false },
    make: async () => new NodeIO().writeBinary(await gltfDocument()),
  },
  {
    name: 'prop.gltf',
    expect: { format: 'gltf', category: '3d', detectedBy: 'extension' },
    bare: 'gltf',
    make: async () =>
      ascii(JSON.stringify((await new NodeIO().writeJSON(await gltfDocument())).json)),
  },
  // zip-based, made by zip(1)
  {
    name: 'bundle.zip',
    expect: { format: 'zip', category: 'archive', alreadyCompressed: true },
    tool: 'zip',
    make: () => zip('bundle.zip', [['notes.txt', CSV.repeat(50)]]),
  },
  {
    // OpenRaster's stored "mimetype" entry decides, whatever the name says.
    name: 'painting.zip',
    expect: { format: 'ora', category: 'layered', alreadyCompressed: true },
    tool: 'zip',
    make: () =>
      zip(
        'p.ora',
        [
          ['mimetype', 'image/openraster'],
          ['stack.xml', '<image w="8" h="8"><stack/></image>'],
        ],
        ['-0'],
      ),
  },
  {
    name: 'sketch.kra',
    expect: { format: 'kra', category: 'layered' },
    tool: 'zip',
    make: () =>
      zip(
        's.kra',
        [
          ['mimetype', 'application/x-krita'],
          ['maindoc.xml', '<DOC/>'],
        ],
        ['-0'],
      ),
  },
  {
    // USDZ: uncompressed zip whose first entry is the root layer.
    name: 'asset-package',
    expect: { format: 'usdz', category: 'usd', alreadyCompressed: true },
    tool: 'zip',
    make: () =>
      zip(
        'a.usdz',
        [
          ['scene.usdc', Buffer.concat([ascii('PXR-USDC'), opaque(88)])],
          ['textures/albedo.png', opaque(64)],
        ],
        ['-0'],
      ),
  },
  {
    name: 'screens.sketch',
    expect: { format: 'sketch', category: 'design', alreadyCompressed: true },
    bare: 'zip',
    tool: 'zip',
    make: () =>
      zip('s.sketch', [
        ['document.json', '{"pages":[]}'],
        ['meta.json', '{}'],
      ]),
  },
  {
    name: 'flow.xd',
    expect: { format: 'xd', category: 'design' },
    bare: 'zip',
    tool: 'zip',
    make: () => zip('f.xd', [['manifest', '{"name":"flow"}']]),
  },
  {
    // torch.save writes an uncompressed zip of <archive>/data.pkl, data/0, version...
    name: 'weights.bin',
    expect: { format: 'pt', category: 'ml', alreadyCompressed: false, detectedBy: 'magic' },
    tool: 'zip',
    make: () =>
      zip(
        'w.pt',
        [
          ['archive/data.pkl', Buffer.from([0x80, 0x02, 0x7d, 0x71, 0x00, 0x2e])],
          ['archive/byteorder', 'little'],
          ['archive/data/0', Buffer.from(new Float32Array([0.1, 0.2, 0.3, 0.4]).buffer)],
          ['archive/version', '3\n'],
        ],
        ['-0'],
      ),
  },
  {
    name: 'epoch=3.ckpt',
    expect: { format: 'ckpt', category: 'ml', detectedBy: 'magic' },
    bare: 'pt',
    tool: 'zip',
    make: () =>
      zip('e.ckpt', [['epoch=3/data.pkl', Buffer.from([0x80, 0x02, 0x4e, 0x2e])]], ['-0']),
  },
  // hand-made, following each format's spec: no local tool writes these
  {
    name: 'model.safetensors',
    expect: { format: 'safetensors', category: 'ml', alreadyCompressed: false },
    make: safetensors,
  },
  {
    name: 'llama.gguf',
    expect: { format: 'gguf', category: 'ml' },
    make: gguf,
  },
  {
    name: 'table.parquet',
    expect: { format: 'parquet', category: 'text', alreadyCompressed: true },
    make: () =>
      Buffer.concat([ascii('PAR1'), opaque(200), Buffer.from([200, 0, 0, 0]), ascii('PAR1')]),
  },
  {
    name: 'shot010.blend',
    expect: { format: 'blend', category: 'creative', alreadyCompressed: false },
    make: () =>
      Buffer.concat([ascii('BLENDER-v402REND'), Buffer.from([0x48, 0, 0, 0]), opaque(512)]),
  },
  {
    // Blender's "compress file" option: zstd around the whole .blend.
    name: 'shot010_compressed.blend',
    expect: { format: 'blend', category: 'creative', alreadyCompressed: true },
    bare: 'zst',
    make: () => zlib.zstdCompressSync(Buffer.concat([ascii('BLENDER-v402'), opaque(4096)])),
  },
  {
    name: 'stage.usd',
    expect: { format: 'usdc', category: 'usd', detectedBy: 'magic' },
    make: () =>
      Buffer.concat([ascii('PXR-USDC'), Buffer.from([0, 8, 0, 0, 0, 0, 0, 0]), opaque(256)]),
  },
  {
    name: 'layout.usd',
    expect: { format: 'usda', category: 'usd', detectedBy: 'magic' },
    make: () => ascii(USDA),
  },
  {
    name: 'sim.abc',
    expect: { format: 'abc', category: 'usd' },
    make: () => Buffer.concat([ascii('Ogawa'), Buffer.from([0xff, 0, 1]), opaque(256)]),
  },
  {
    name: 'rig.fbx',
    expect: { format: 'fbx', category: '3d', detectedBy: 'magic' },
    make: () =>
      Buffer.concat([
        ascii('Kaydara FBX Binary  \0'),
        Buffer.from([0x1a, 0, 0xe8, 0x1c, 0, 0]),
        opaque(),
      ]),
  },
  {
    name: 'backup.7z',
    expect: { format: '7z', category: 'archive', alreadyCompressed: true },
    make: () =>
      Buffer.concat([Buffer.from([0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c, 0, 4]), opaque(64)]),
  },
  {
    name: 'backup.rar',
    expect: { format: 'rar', category: 'archive' },
    make: () => Buffer.concat([ascii('Rar!\x1a\x07\x01\x00'), opaque(64)]),
  },
  {
    name: 'notes.csv.gz',
    expect: { format: 'gz', category: 'archive', alreadyCompressed: true },
    make: () => zlib.gzipSync(CSV.repeat(100)),
  },
  {
    // Premiere projects are gzip-compressed XML.
    name: 'edit.prproj',
    expect: { format: 'prproj', category: 'creative', alreadyCompressed: true },
    bare: 'gz',
    make: () => zlib.gzipSync('<?xml version="1.0"?><PremiereData Version="3"/>'),
  },
  {
    name: 'frames.tar',
    expect: { format: 'tar', category: 'archive', alreadyCompressed: false },
    make: () =>
      Buffer.concat([tarHeader('frames/0001.txt', CSV.length), ascii(CSV), Buffer.alloc(1024)]),
  },
  {
    name: 'brochure.pdf',
    expect: { format: 'pdf', category: 'design' },
    make: () => ascii('%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n'),
  },
  {
    name: 'logo.ai',
    expect: { format: 'ai', category: 'design', detectedBy: 'magic' },
    bare: 'pdf',
    make: () => ascii('%PDF-1.6\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n'),
  },
  // text, recognised by content when the name says nothing
  {
    name: 'shots.csv',
    expect: { format: 'csv', category: 'text', detectedBy: 'extension', mime: 'text/csv' },
    make: () => ascii(CSV),
  },
  { name: 'SHOTLIST', expect: { format: 'csv', detectedBy: 'content' }, make: () => ascii(CSV) },
  {
    name: 'settings',
    expect: { format: 'json', category: 'text', detectedBy: 'content' },
    make: () => ascii('{\n  "fps": 24,\n  "resolution": [1920, 1080]\n}\n'),
  },
  {
    name: 'timeline',
    expect: { format: 'xml', detectedBy: 'content' },
    make: () => ascii('<?xml version="1.0"?>\n<timeline><clip start="0"/></timeline>\n'),
  },
  { name: 'build', expect: { format: 'py', detectedBy: 'content' }, make: () => ascii(PY) },
  { name: 'lib', expect: { format: 'rs', detectedBy: 'content' }, make: () => ascii(RS) },
  { name: 'loader', expect: { format: 'js', detectedBy: 'content' }, make: () => ascii(JS) },
  {
    name: 'triangle',
    expect: { format: 'obj', category: '3d', detectedBy: 'content' },
    make: () => ascii(OBJ),
  },
  {
    name: 'part',
    expect: { format: 'stl', category: '3d', detectedBy: 'content' },
    make: () => ascii('solid part\n  facet normal 0 0 1\n    outer loop\n'),
  },
  {
    name: 'main.ts',
    expect: { format: 'ts', category: 'text', detectedBy: 'extension' },
    bare: 'js',
    make: () => ascii(JS),
  },
  // extension fallback, mismatches, nothing to go on
  {
    name: 'A001_C002.R3D',
    expect: { format: 'r3d', category: 'video', detectedBy: 'extension', alreadyCompressed: true },
    bare: 'unknown',
    make: () => opaque(),
  },
  {
    name: 'model.onnx',
    expect: { format: 'onnx', category: 'ml', detectedBy: 'extension' },
    bare: 'unknown',
    // ONNX is a protobuf ModelProto: ir_version, producer_name, ... then raw tensors.
    make: () => Buffer.concat([Buffer.from([0x08, 0x08, 0x12, 0x07]), ascii('pytorch'), opaque()]),
  },
  {
    name: 'scene.c4d',
    expect: { format: 'c4d', category: 'creative', detectedBy: 'extension' },
    bare: 'unknown',
    make: () => opaque(),
  },
  {
    name: 'mislabelled.jpg',
    expect: { format: 'png', mime: 'image/png', detectedBy: 'magic' },
    make: () => noiseImage().png().toBuffer(),
  },
  {
    // A signed binary extension on text is not believed.
    name: 'readme.png',
    expect: { format: 'txt', category: 'text', detectedBy: 'content' },
    make: () => ascii('This is not an image, just notes about one.\n'),
  },
  {
    name: 'mystery',
    expect: { format: 'unknown', category: 'unknown', detectedBy: 'none' },
    make: () => opaque(),
  },
  {
    name: 'empty.csv',
    expect: { format: 'csv', detectedBy: 'extension' },
    bare: 'unknown',
    make: () => new Uint8Array(0),
  },
];

// Fixtures are made in parallel once; each test awaits its own.
let fixtures: Map<string, Promise<Uint8Array>> | undefined;
function fixture(c: Case): Promise<Uint8Array> {
  fixtures ??= new Map(
    CASES.map((each) => {
      const made = Promise.resolve().then(each.make);
      made.catch(() => {}); // reported by the case's own test
      return [each.name, made];
    }),
  );
  return fixtures.get(c.name)!;
}

for (const c of CASES) {
  // No skip: `npm test` makes sure the tools are installed (scripts/ensure-tools.ts).
  test(`detects ${c.name} as ${c.expect.format}`, async () => {
    const bytes = await fixture(c);
    const head = bytes.subarray(0, DETECT_HEAD_BYTES);
    const found = detectFormat(head, c.name);
    const picked = Object.fromEntries(
      Object.keys(c.expect).map((key) => [key, found[key as keyof MediaFormat]]),
    );
    assert.deepEqual(picked, { ...c.expect }, JSON.stringify(found));
    assert.equal(
      found.mime,
      FORMATS[found.format as keyof typeof FORMATS]?.mime ?? 'application/octet-stream',
    );
    const bare = detectFormat(head, 'no-name');
    assert.equal(bare.format, c.bare ?? c.expect.format, 'without a file name');
  });
}

test('the extension table covers every format the issue names, case-insensitively', () => {
  const named =
    'mp4 mov avi mkv webm mxf r3d braw wav aiff mp3 aac ogg opus flac glb gltf fbx obj stl ' +
    'pdf ai fig sketch xd csv json xml parquet py rs js pt pth ckpt safetensors onnx gguf ' +
    'indd aep prproj drp nk blend c4d usd usda usdc usdz abc jpg png gif webp heic avif exr ' +
    'psd psb xcf kra ora zip 7z rar gz tar';
  for (const ext of named.split(' ')) {
    assert.ok(EXTENSIONS.has(ext), `.${ext} is missing`);
    assert.equal(detectFormat(new Uint8Array(0), `x.${ext.toUpperCase()}`).detectedBy, 'extension');
  }
  assert.ok(EXTENSIONS.size >= 100, `${EXTENSIONS.size} extensions`);
});

test('only the extension counts: dots in directories and leading dots do not', () => {
  assert.equal(detectFormat(new Uint8Array(0), 'renders.v2/shot').format, 'unknown');
  assert.equal(detectFormat(new Uint8Array(0), '.gitignore').format, 'unknown');
  assert.equal(detectFormat(new Uint8Array(0), 'C:\\proj\\cut.PRPROJ').format, 'prproj');
});

test('text that merely starts like a short signature stays text', () => {
  for (const line of [
    'ORC sightings, 2024\n',
    'PAR1 results\n',
    'OTTO was here\n',
    'BMW,3,red\n',
  ]) {
    assert.equal(detectFormat(ascii(line.repeat(3)), 'notes').category, 'text', line);
  }
  assert.equal(detectFormat(ascii('ID3 tags are metadata\n'), 'notes').format, 'txt');
});

test('isTextFormat: text formats of any category, not binary data formats', () => {
  const is = (bytes: string | Buffer, name: string) =>
    isTextFormat(detectFormat(typeof bytes === 'string' ? ascii(bytes) : bytes, name));
  assert.ok(is(CSV, 'a.csv'));
  assert.ok(is(USDA, 'a.usda'));
  assert.ok(is(OBJ, 'a.obj'));
  assert.ok(is('<svg xmlns="http://www.w3.org/2000/svg"/>', 'a.svg'));
  assert.ok(!is(Buffer.concat([ascii('PAR1'), opaque(64)]), 'a.parquet'));
  assert.ok(!is(opaque(), 'a.bin'));
});
