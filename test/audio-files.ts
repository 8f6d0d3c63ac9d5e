/**
 * WAV and AIFF test material: files made by ffmpeg, and the few byte-level
 * edits the tests make to them (splicing sample ranges, adding chunks),
 * written here independently of the merge code so a test does not check the
 * strategy with its own parser. No project imports.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';

export interface RawChunk {
  readonly id: string;
  /** The chunk header's offset; the body starts 8 bytes later. */
  readonly at: number;
  readonly size: number;
}

/** Runs ffmpeg quietly, overwriting its output. */
export function ffmpeg(args: readonly string[]): void {
  execFileSync('ffmpeg', ['-v', 'error', '-nostdin', '-y', ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
}

/** A file to render from an ffmpeg lavfi source ("sine=…", "anoisesrc=…"), with output options. */
export interface Render {
  readonly file: string;
  readonly source: string;
  readonly args?: readonly string[];
}

/**
 * Renders files from lavfi sources in one ffmpeg run: a process start costs
 * more than these small files, and the test machine is busy. The extension
 * picks WAV or AIFF; `args` apply to that output only (-metadata, -c:a, -ac).
 */
export function renderAll(renders: readonly Render[]): void {
  const sources = [...new Set(renders.map((r) => r.source))];
  const args = sources.flatMap((source) => ['-f', 'lavfi', '-i', source]);
  for (const r of renders) {
    args.push(
      '-map',
      `${sources.indexOf(r.source)}:a`,
      '-fflags',
      '+bitexact',
      ...(r.args ?? []),
      r.file,
    );
  }
  ffmpeg(args);
}

function isWav(file: Buffer): boolean {
  return file.toString('latin1', 0, 4) === 'RIFF';
}

/** The top-level chunks of a RIFF or FORM file. */
export function chunksOf(file: Buffer): RawChunk[] {
  const little = isWav(file);
  const out: RawChunk[] = [];
  for (let at = 12; at + 8 <= file.length;) {
    const size = little ? file.readUInt32LE(at + 4) : file.readUInt32BE(at + 4);
    out.push({ id: file.toString('latin1', at, at + 4), at, size });
    at += 8 + size + (size & 1);
  }
  return out;
}

export function chunkBody(file: Buffer, id: string): Buffer | undefined {
  const chunk = chunksOf(file).find((c) => c.id === id);
  return chunk && file.subarray(chunk.at + 8, chunk.at + 8 + chunk.size);
}

/** The sample bytes: a WAV's data chunk, an AIFF's SSND after its offset field. */
export function samplesOf(file: Buffer): Buffer {
  if (isWav(file)) return chunkBody(file, 'data')!;
  const ssnd = chunkBody(file, 'SSND')!;
  return ssnd.subarray(8 + ssnd.readUInt32BE(0));
}

/** Bytes per frame, from the fmt or COMM chunk. */
export function frameBytesOf(file: Buffer): number {
  if (isWav(file)) return chunkBody(file, 'fmt ')!.readUInt16LE(12);
  const comm = chunkBody(file, 'COMM')!;
  return comm.readUInt16BE(0) * Math.ceil(comm.readUInt16BE(6) / 8);
}

/** Rebuilds a file from its chunks, with some bodies replaced and chunks added at the end. */
export function rebuild(
  file: Buffer,
  replace: Readonly<Record<string, Buffer>>,
  append: readonly { id: string; body: Buffer }[] = [],
): Buffer {
  const little = isWav(file);
  const parts: Buffer[] = [];
  const add = (id: string, body: Buffer) => {
    const head = Buffer.alloc(8);
    head.write(id, 0, 'latin1');
    if (little) head.writeUInt32LE(body.length, 4);
    else head.writeUInt32BE(body.length, 4);
    parts.push(head, body);
    if (body.length & 1) parts.push(Buffer.alloc(1));
  };
  for (const chunk of chunksOf(file)) {
    add(chunk.id, replace[chunk.id] ?? file.subarray(chunk.at + 8, chunk.at + 8 + chunk.size));
  }
  for (const { id, body } of append) add(id, body);
  const body = Buffer.concat(parts);
  const head = Buffer.from(file.subarray(0, 12));
  if (little) head.writeUInt32LE(body.length + 4, 4);
  else head.writeUInt32BE(body.length + 4, 4);
  return Buffer.concat([head, body]);
}

/** The file with new sample bytes (any whole number of frames), sizes and frame count fixed. */
export function withSamples(file: Buffer, samples: Buffer): Buffer {
  if (isWav(file)) return rebuild(file, { data: samples });
  const ssnd = chunkBody(file, 'SSND')!;
  const comm = Buffer.from(chunkBody(file, 'COMM')!);
  comm.writeUInt32BE(samples.length / frameBytesOf(file), 2);
  const prefix = ssnd.subarray(0, 8 + ssnd.readUInt32BE(0));
  return rebuild(file, { COMM: comm, SSND: Buffer.concat([prefix, samples]) });
}

/** `samples` with frames [at, at + count) replaced by `source`'s frames from `from`. */
export function splice(
  samples: Buffer,
  frameBytes: number,
  at: number,
  source: Buffer,
  from: number,
  count: number,
): Buffer {
  const out = Buffer.from(samples);
  source.copy(out, at * frameBytes, from * frameBytes, (from + count) * frameBytes);
  return out;
}

export function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** ffmpeg's full decode of a file to nowhere (`-f null -`): its exit code and everything it printed. */
export function ffmpegDecodeErrors(file: string): { status: number | null; stderr: string } {
  const run = spawnSync('ffmpeg', ['-v', 'error', '-nostdin', '-i', file, '-f', 'null', '-'], {
    encoding: 'utf8',
  });
  return { status: run.status, stderr: run.stderr };
}

/**
 * Several files decoded by one ffmpeg run to raw PCM of `format` ("s16le"):
 * its exit code, what it printed (errors only), and each file's samples.
 */
export function ffmpegDecode(
  files: readonly string[],
  format: string,
): { status: number | null; stderr: string; samples: Buffer[] } {
  const args = ['-v', 'error', '-nostdin', '-y', ...files.flatMap((file) => ['-i', file])];
  files.forEach((file, i) => args.push('-map', `${i}:a`, '-f', format, `${file}.raw`));
  const run = spawnSync('ffmpeg', args, { encoding: 'utf8' });
  return {
    status: run.status,
    stderr: run.stderr,
    samples: run.status === 0 ? files.map((file) => readFileSync(`${file}.raw`)) : [],
  };
}

/** The container tags ffprobe reads (INFO, bext, AIFF text chunks), lower-cased keys. */
export function ffprobeTags(file: string): Record<string, string> {
  const out = execFileSync(
    'ffprobe',
    ['-v', 'error', '-show_entries', 'format_tags', '-of', 'json', file],
    { encoding: 'utf8' },
  );
  const tags =
    (JSON.parse(out) as { format?: { tags?: Record<string, string> } }).format?.tags ?? {};
  return Object.fromEntries(Object.entries(tags).map(([k, v]) => [k.toLowerCase(), v]));
}

/** A cue chunk body: points as [id, sample position]. */
export function cueChunk(points: readonly [number, number][]): Buffer {
  const body = Buffer.alloc(4 + points.length * 24);
  body.writeUInt32LE(points.length, 0);
  points.forEach(([id, position], i) => {
    const at = 4 + i * 24;
    body.writeUInt32LE(id, at);
    body.writeUInt32LE(position, at + 4);
    body.write('data', at + 8, 'latin1');
    body.writeUInt32LE(position, at + 20);
  });
  return body;
}

/** A cue chunk's points as [id, sample position], in order. */
export function cuePoints(body: Buffer): [number, number][] {
  const count = body.readUInt32LE(0);
  return Array.from({ length: count }, (_, i) => [
    body.readUInt32LE(4 + i * 24),
    body.readUInt32LE(4 + i * 24 + 4),
  ]);
}

/** An iXML chunk body with these top-level elements. */
export function ixmlChunk(elements: Readonly<Record<string, string>>): Buffer {
  const inner = Object.entries(elements)
    .map(([name, value]) => `  <${name}>${value}</${name}>\n`)
    .join('');
  return Buffer.from(`<?xml version="1.0" encoding="UTF-8"?>\n<BWFXML>\n${inner}</BWFXML>\n`);
}
