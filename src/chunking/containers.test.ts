/**
 * Container-aware cut points: golden vectors on hand-built files, cuts on real files made
 * by ffmpeg and @gltf-transform/core checked against an independent reading of their
 * structure and against ffprobe's packet positions, fast-check fuzzing of every parser, and
 * the dedup of a metadata-only re-mux.
 *
 * The ffmpeg tests are skipped when ffmpeg/ffprobe are not installed. Replay a fuzzing
 * failure with MEDIAGIT_FC_SEED=<seed> (printed by fast-check).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { hash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { Buffer } from 'node:buffer';
import fc from 'fast-check';
import { Document, NodeIO } from '@gltf-transform/core';
import {
  CONTAINER_CUT_RULES,
  defaultMaxCuts,
  FIXED_CHUNK_SIZE,
  structuralCuts,
  structuralCutsStrict,
  type ChunkingStrategy,
  type PositionalReader,
} from './containers.ts';
import { chunkSizesForFile, findChunkLength, type ChunkSizes } from './fastcdc.ts';

const run = promisify(execFile);
const KiB = 1024;
const MiB = 1024 * KiB;
const fcSeed = process.env['MEDIAGIT_FC_SEED'];
const fcParams = fcSeed === undefined ? {} : { seed: Number(fcSeed) };
const STRATEGIES: ChunkingStrategy[] = ['mp4', 'ebml', 'riff', 'aiff', 'glb'];

// ---------------------------------------------------------------------------------------
// Readers

interface CountingReader extends PositionalReader {
  reads: number;
}

/** A reader over bytes in memory; `maxRead` caps each read to test short reads. */
function memoryReader(data: Uint8Array, maxRead = Infinity): CountingReader {
  return {
    size: data.length,
    reads: 0,
    async read(buffer, position) {
      this.reads++;
      const n = Math.max(0, Math.min(buffer.length, maxRead, data.length - position));
      buffer.set(data.subarray(position, position + n));
      return n;
    },
  };
}

/** A reader of a file of `size` bytes whose byte at offset o is `byteAt(o)` (not stored). */
function virtualReader(size: number, byteAt: (offset: number) => number): CountingReader {
  return {
    size,
    reads: 0,
    async read(buffer, position) {
      this.reads++;
      const n = Math.max(0, Math.min(buffer.length, size - position));
      for (let i = 0; i < n; i++) buffer[i] = byteAt(position + i);
      return n;
    },
  };
}

async function fileCuts(
  strategy: ChunkingStrategy,
  file: string,
): Promise<{ cuts: number[]; reads: number }> {
  const handle = await fs.open(file, 'r');
  try {
    const { size } = await handle.stat();
    let reads = 0;
    const reader: PositionalReader = {
      size,
      async read(buffer, position) {
        reads++;
        return (await handle.read(buffer, 0, buffer.length, position)).bytesRead;
      },
    };
    return { cuts: await structuralCutsStrict(strategy, reader), reads };
  } finally {
    await handle.close();
  }
}

function assertCutInvariants(cuts: readonly number[], size: number, maxCuts: number): void {
  assert.ok(cuts.length <= maxCuts, `${cuts.length} cuts, more than ${maxCuts}`);
  let last = 0;
  for (const cut of cuts) {
    assert.ok(Number.isSafeInteger(cut), `cut ${cut} is not an integer`);
    assert.ok(cut > last, `cut ${cut} after ${last}: not ascending`);
    assert.ok(cut < size, `cut ${cut} not inside a file of ${size} bytes`);
    last = cut;
  }
}

// ---------------------------------------------------------------------------------------
// Builders for hand-made files (golden vectors)

const ascii = (text: string): Buffer => Buffer.from(text, 'latin1');
const cat = (...parts: Uint8Array[]): Buffer => Buffer.concat(parts);
/** `n` filler bytes: arbitrary content the parsers must not look at. */
const filler = (n: number, value = 0x55): Buffer => Buffer.alloc(n, value);
const be32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};
const le32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
};
const le64 = (n: number): Buffer => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(n));
  return b;
};

function box(type: string, ...payload: Uint8Array[]): Buffer {
  const body = cat(...payload);
  return cat(be32(8 + body.length), ascii(type), body);
}

function box64(type: string, ...payload: Uint8Array[]): Buffer {
  const body = cat(...payload);
  const size = Buffer.alloc(8);
  size.writeBigUInt64BE(BigInt(16 + body.length));
  return cat(be32(1), ascii(type), size, body);
}

/** EBML size vint of the smallest length (1, 2 or 8 bytes), or an unknown size of `length` bytes. */
function vsize(n: number | { unknown: number }): Buffer {
  if (typeof n === 'object') {
    const b = Buffer.alloc(n.unknown, 0xff);
    b[0] = 0xff >> (n.unknown - 1);
    return b;
  }
  if (n < 127) return Buffer.from([0x80 | n]);
  if (n < 16383) return Buffer.from([0x40 | (n >> 8), n & 0xff]);
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  b[0] = 0x01;
  return b;
}

function el(id: number[], payload: Uint8Array, size?: number | { unknown: number }): Buffer {
  return cat(Buffer.from(id), vsize(size ?? payload.length), payload);
}

const ID = {
  ebml: [0x1a, 0x45, 0xdf, 0xa3],
  docType: [0x42, 0x82],
  segment: [0x18, 0x53, 0x80, 0x67],
  seekHead: [0x11, 0x4d, 0x9b, 0x74],
  void: [0xec],
  info: [0x15, 0x49, 0xa9, 0x66],
  tracks: [0x16, 0x54, 0xae, 0x6b],
  cluster: [0x1f, 0x43, 0xb6, 0x75],
  timestamp: [0xe7],
  simpleBlock: [0xa3],
  cues: [0x1c, 0x53, 0xbb, 0x6b],
};

function riffChunk(id: string, payload: Uint8Array, pad = true): Buffer {
  const padding = pad && payload.length % 2 === 1 ? Buffer.alloc(1) : Buffer.alloc(0);
  return cat(ascii(id), le32(payload.length), payload, padding);
}

function aiffChunk(id: string, payload: Uint8Array): Buffer {
  const padding = payload.length % 2 === 1 ? Buffer.alloc(1) : Buffer.alloc(0);
  return cat(ascii(id), be32(payload.length), payload, padding);
}

function riffForm(id: string, type: string, ...chunks: Uint8Array[]): Buffer {
  const body = cat(ascii(type), ...chunks);
  return cat(ascii(id), le32(body.length), body);
}

function glbFile(json: string, bin: Uint8Array | undefined): Buffer {
  const jsonBytes = ascii(json.padEnd(Math.ceil(json.length / 4) * 4, ' '));
  const chunks = [cat(le32(jsonBytes.length), ascii('JSON'), jsonBytes)];
  if (bin) chunks.push(cat(le32(bin.length), ascii('BIN\0'), bin));
  const body = cat(...chunks);
  return cat(ascii('glTF'), le32(2), le32(12 + body.length), body);
}

const golden = {
  // ftyp [0,32) free [32,40) mdat [40,1048) payload 48; moov [1048,1300): mvhd 1056, trak 1164, udta 1264
  mp4: cat(
    box('ftyp', ascii('isom'), be32(512), ascii('isomiso2avc1mp41')),
    box('free'),
    box('mdat', filler(1000)),
    box(
      'moov',
      box('mvhd', filler(100)),
      box('trak', box('tkhd', filler(84))),
      box('udta', box('meta', filler(20))),
    ),
  ),
  // ftyp [0,32); moov [32,9416): mvhd 40, trak 148 > mdia > minf > stbl: stsd 272 (small),
  // stsz [296,5304), stco [5304,9400) (exactly LARGE_BOX), stss 9400 (small); 64-bit mdat
  // [9416,9932) payload 9432; size-0 free [9932,9960)
  mp4FastStart: cat(
    box('ftyp', ascii('isom'), be32(512), ascii('isomiso2avc1mp41')),
    box(
      'moov',
      box('mvhd', filler(100)),
      box(
        'trak',
        box('tkhd', filler(84)),
        box(
          'mdia',
          box(
            'minf',
            box(
              'stbl',
              box('stsd', filler(16)),
              box('stsz', filler(5000)),
              box('stco', filler(4088)),
              box('stss', filler(8)),
            ),
          ),
        ),
      ),
    ),
    box64('mdat', filler(500)),
    be32(0),
    ascii('free'),
    filler(20),
  ),
  // EBML [0,12) Segment 12, payload 24; SeekHead 24, Void 49, Info 61, Tracks 96,
  // Clusters 141 and 251, Cues 463; 484 bytes
  ebml: (unknown: boolean): Buffer =>
    cat(
      el(ID.ebml, el(ID.docType, ascii('webm'))),
      cat(
        Buffer.from(ID.segment),
        unknown ? vsize({ unknown: 8 }) : Buffer.from([0x01, 0, 0, 0, 0, 0, 0x01, 0xcc]),
      ),
      el(ID.seekHead, filler(20)),
      el(ID.void, filler(10)),
      el(ID.info, filler(30)),
      el(ID.tracks, filler(40)),
      el(
        ID.cluster,
        cat(el(ID.timestamp, Buffer.of(0)), el(ID.simpleBlock, filler(100))),
        unknown ? { unknown: 1 } : undefined,
      ),
      el(
        ID.cluster,
        cat(el(ID.timestamp, Buffer.of(1)), el(ID.simpleBlock, filler(200))),
        unknown ? { unknown: 2 } : undefined,
      ),
      el(ID.cues, filler(16)),
    ),
  // RIFF WAVE: fmt 12, JUNK (odd, padded) 36, LIST 48, data 74 payload 82, ID3 tag after 1082
  wav: (pad: boolean): Buffer =>
    cat(
      riffForm(
        'RIFF',
        'WAVE',
        riffChunk('fmt ', filler(16)),
        riffChunk('JUNK', ascii('abc'), pad),
        riffChunk('LIST', cat(ascii('INFO'), riffChunk('INAM', ascii('hello')))),
        riffChunk('data', filler(1000)),
      ),
      ascii('ID3'),
      filler(7, 0),
    ),
  // RIFF AVI: hdrl 12, JUNK 74, LIST movi 102 payload 114, idx1 222; RIFF AVIX 262, movi 274, 286
  avi: cat(
    riffForm(
      'RIFF',
      'AVI ',
      riffChunk('LIST', cat(ascii('hdrl'), filler(50))),
      riffChunk('JUNK', filler(20)),
      riffChunk('LIST', cat(ascii('movi'), riffChunk('00dc', filler(100)))),
      riffChunk('idx1', filler(32)),
    ),
    riffForm('RIFF', 'AVIX', riffChunk('LIST', cat(ascii('movi'), filler(20)))),
  ),
  // RF64: ds64 12, fmt 48, data (size in ds64) 72 payload 80, trailing bytes at 580
  rf64: cat(
    ascii('RF64'),
    le32(0xffffffff),
    ascii('WAVE'),
    riffChunk('ds64', cat(le64(572), le64(500), le64(250), le32(0))),
    riffChunk('fmt ', filler(16)),
    ascii('data'),
    le32(0xffffffff),
    filler(500),
    ascii('tail'),
  ),
  // FORM AIFF: COMM 12, NAME (odd, padded) 38, SSND 52, sound data 52 + 16 + offset 8 = 76
  aiff: riffFormBE(
    'AIFF',
    aiffChunk('COMM', filler(18)),
    aiffChunk('NAME', ascii('hello')),
    aiffChunk('SSND', cat(be32(8), be32(0), filler(8, 0), filler(400))),
  ),
  // header [0,12), JSON [12,48), BIN [48,120) payload 56; appended bytes after 120
  glb: cat(glbFile('{"asset":{"version":"2.0"}}', filler(64)), filler(5)),
};

function riffFormBE(type: string, ...chunks: Uint8Array[]): Buffer {
  const body = cat(ascii(type), ...chunks);
  return cat(ascii('FORM'), be32(body.length), body);
}

async function memoryCuts(
  strategy: ChunkingStrategy,
  data: Uint8Array,
  options: { maxCuts?: number } = {},
): Promise<number[]> {
  return await structuralCutsStrict(strategy, memoryReader(data), options);
}

test('golden: constants', () => {
  assert.equal(CONTAINER_CUT_RULES, 'containers-v1');
  assert.equal(FIXED_CHUNK_SIZE, 1048576);
  assert.equal(defaultMaxCuts(0), 1024);
  assert.equal(defaultMaxCuts(300e6), 4577);
});

test('golden: MP4 top-level boxes, mdat payload, moov children, sample tables', async () => {
  assert.equal(golden.mp4.length, 1300);
  assert.deepEqual(await memoryCuts('mp4', golden.mp4), [32, 40, 48, 1048, 1056, 1164, 1264]);
  assert.equal(golden.mp4FastStart.length, 9960);
  assert.deepEqual(
    await memoryCuts('mp4', golden.mp4FastStart),
    [32, 40, 148, 296, 5304, 9400, 9416, 9432, 9932],
  );
  // An stbl whose children do not tile it is one unit; the boxes around it still cut.
  const badStbl = Buffer.from(golden.mp4FastStart);
  badStbl.writeUInt32BE(5001, 296);
  assert.deepEqual(await memoryCuts('mp4', badStbl), [32, 40, 148, 9416, 9432, 9932]);
});

test('golden: MP4 truncated, and with bogus sizes', async () => {
  const mp4 = golden.mp4;
  // Cut inside moov: its children are not trusted, its start is.
  assert.deepEqual(await memoryCuts('mp4', mp4.subarray(0, 1100)), [32, 40, 48, 1048]);
  // Cut inside mdat: the payload start is still cut.
  assert.deepEqual(await memoryCuts('mp4', mp4.subarray(0, 500)), [32, 40, 48]);
  assert.deepEqual(await memoryCuts('mp4', mp4.subarray(0, 45)), [32, 40]);
  const bogus = (at: number, size: number): Buffer => {
    const copy = Buffer.from(mp4);
    copy.writeUInt32BE(size, at);
    return copy;
  };
  assert.deepEqual(await memoryCuts('mp4', bogus(40, 0xffffffff)), [32, 40, 48]);
  assert.deepEqual(await memoryCuts('mp4', bogus(40, 3)), [32, 40]);
  assert.deepEqual(await memoryCuts('mp4', bogus(0, 0)), []);
  // A moov child of size 0 (or not tiling moov): moov is one unit.
  assert.deepEqual(await memoryCuts('mp4', bogus(1164, 0)), [32, 40, 48, 1048]);
  assert.deepEqual(await memoryCuts('mp4', bogus(1164, 99)), [32, 40, 48, 1048]);
  const unprintable = Buffer.from(mp4);
  unprintable[1052] = 0x01;
  assert.deepEqual(await memoryCuts('mp4', unprintable), [32, 40, 48, 1048]);
});

test('golden: EBML with known and with unknown sizes', async () => {
  const known = golden.ebml(false);
  const unknown = golden.ebml(true);
  assert.equal(known.length, 484);
  assert.equal(unknown.length, 484);
  const expected = [12, 24, 49, 61, 96, 141, 251, 463];
  assert.deepEqual(await memoryCuts('ebml', known), expected);
  assert.deepEqual(await memoryCuts('ebml', unknown), expected);
  // Two chained live segments: the second starts where the first (unknown size) ends.
  assert.deepEqual(await memoryCuts('ebml', cat(unknown, unknown)), [
    ...expected,
    484,
    ...expected.map((c) => c + 484),
  ]);
});

test('golden: EBML truncated, and with bogus sizes', async () => {
  const known = golden.ebml(false);
  assert.deepEqual(
    await memoryCuts('ebml', known.subarray(0, 300)),
    [12, 24, 49, 61, 96, 141, 251],
  );
  const hugeTracks = Buffer.from(known);
  hugeTracks.set([0x01, 0x7f], 100); // Tracks' 1-byte size becomes an 8-byte vint: past the end
  assert.deepEqual(await memoryCuts('ebml', hugeTracks), [12, 24, 49, 61, 96]);
  const zeroSize = Buffer.from(known);
  zeroSize[100] = 0x00; // not a vint
  assert.deepEqual(await memoryCuts('ebml', zeroSize), [12, 24, 49, 61, 96]);
  const unknownInfo = Buffer.from(known);
  unknownInfo[65] = 0xff; // Info with an unknown size: not allowed
  assert.deepEqual(await memoryCuts('ebml', unknownInfo), [12, 24, 49, 61]);
  assert.deepEqual(await memoryCuts('ebml', known.subarray(12)), []); // no EBML header
});

test('golden: RIFF WAV, AVI (with AVIX), RF64', async () => {
  assert.equal(golden.wav(true).length, 1092);
  assert.deepEqual(await memoryCuts('riff', golden.wav(true)), [12, 36, 48, 74, 82, 1082]);
  // A writer that left out the pad byte after the odd chunk.
  assert.deepEqual(await memoryCuts('riff', golden.wav(false)), [12, 36, 47, 73, 81, 1081]);
  assert.equal(golden.avi.length, 306);
  assert.deepEqual(await memoryCuts('riff', golden.avi), [12, 74, 102, 114, 222, 262, 274, 286]);
  assert.equal(golden.rf64.length, 584);
  assert.deepEqual(await memoryCuts('riff', golden.rf64), [12, 48, 72, 80, 580]);
});

test('golden: RIFF truncated, and with sizes past the end', async () => {
  const wav = golden.wav(true);
  assert.deepEqual(await memoryCuts('riff', wav.subarray(0, 600)), [12, 36, 48, 74, 82]);
  const streamed = Buffer.from(wav); // what a writer to a pipe leaves: 0xffffffff sizes
  streamed.writeUInt32LE(0xffffffff, 4);
  streamed.writeUInt32LE(0xffffffff, 78);
  assert.deepEqual(await memoryCuts('riff', streamed), [12, 36, 48, 74, 82]);
  const zeroForm = Buffer.from(wav);
  zeroForm.writeUInt32LE(0, 4);
  assert.deepEqual(await memoryCuts('riff', zeroForm), [12, 36, 48, 74, 82]);
  const pastEnd = Buffer.from(wav);
  pastEnd.writeUInt32LE(5000, 52); // LIST past the end of the form
  assert.deepEqual(await memoryCuts('riff', pastEnd), [12, 36, 48]);
  const notRiff = Buffer.from(wav);
  notRiff.write('RIFX', 0, 'latin1');
  assert.deepEqual(await memoryCuts('riff', notRiff), []);
});

test('golden: AIFF', async () => {
  const aiff = golden.aiff;
  assert.equal(aiff.length, 476);
  assert.deepEqual(await memoryCuts('aiff', aiff), [12, 38, 52, 76]);
  assert.deepEqual(
    await memoryCuts('aiff', cat(aiff, ascii('ID3'), filler(9))),
    [12, 38, 52, 76, 476],
  );
  assert.deepEqual(await memoryCuts('aiff', aiff.subarray(0, 70)), [12, 38, 52]);
  const bogusOffset = Buffer.from(aiff);
  bogusOffset.writeUInt32BE(0x7fffffff, 60);
  assert.deepEqual(await memoryCuts('aiff', bogusOffset), [12, 38, 52]);
});

test('golden: GLB', async () => {
  assert.equal(golden.glb.length, 125);
  assert.deepEqual(await memoryCuts('glb', golden.glb), [12, 48, 56, 120]);
  assert.deepEqual(await memoryCuts('glb', golden.glb.subarray(0, 100)), [12, 48, 56]);
  const jsonOnly = glbFile('{"asset":{"version":"2.0"}}', undefined);
  assert.deepEqual(await memoryCuts('glb', jsonOnly), [12]);
  const binFirst = Buffer.from(golden.glb);
  binFirst.write('BIN\0', 16, 'latin1');
  assert.deepEqual(await memoryCuts('glb', binFirst), [12]);
  const version1 = Buffer.from(golden.glb);
  version1.writeUInt32LE(1, 4);
  assert.deepEqual(await memoryCuts('glb', version1), []);
});

test('cdc and fixed have no structural cuts; the wrong strategy falls back to none', async () => {
  for (const strategy of ['cdc', 'fixed'] as const) {
    assert.deepEqual(await memoryCuts(strategy, golden.mp4), []);
  }
  for (const strategy of STRATEGIES) {
    assert.deepEqual(await memoryCuts(strategy, new Uint8Array(0)), [], strategy);
    assert.deepEqual(await memoryCuts(strategy, new Uint8Array(3 * KiB)), [], strategy);
  }
  assert.deepEqual(await memoryCuts('ebml', golden.mp4), []);
  assert.deepEqual(await memoryCuts('riff', golden.mp4), []);
  assert.deepEqual(await memoryCuts('glb', golden.wav(true)), []);
});

test('maxCuts keeps a prefix of the cuts; 0 gives none', async () => {
  const all = await memoryCuts('ebml', golden.ebml(true));
  for (let k = 0; k <= all.length; k++) {
    assert.deepEqual(await memoryCuts('ebml', golden.ebml(true), { maxCuts: k }), all.slice(0, k));
  }
});

test('short reads give the same cuts', async () => {
  for (const [strategy, data] of [
    ['mp4', golden.mp4],
    ['ebml', golden.ebml(true)],
    ['riff', golden.avi],
    ['aiff', golden.aiff],
    ['glb', golden.glb],
  ] as const) {
    const expected = await memoryCuts(strategy, data);
    for (const maxRead of [1, 3, 7]) {
      assert.deepEqual(await structuralCutsStrict(strategy, memoryReader(data, maxRead)), expected);
    }
  }
});

test('reader errors and aborts reject; invalid arguments are RangeErrors', async () => {
  const failure = new Error('disk on fire');
  const failing: PositionalReader = { size: 1000, read: () => Promise.reject(failure) };
  await assert.rejects(structuralCuts('mp4', failing), (error) => error === failure);
  const controller = new AbortController();
  controller.abort();
  await assert.rejects(
    structuralCuts('mp4', memoryReader(golden.mp4), { signal: controller.signal }),
    { name: 'AbortError' },
  );
  const aborting = new AbortController();
  const reader = memoryReader(golden.mp4);
  const slow: PositionalReader = {
    size: reader.size,
    read: async (buffer, position) => {
      aborting.abort();
      return await reader.read(buffer, position);
    },
  };
  await assert.rejects(structuralCuts('mp4', slow, { signal: aborting.signal }), {
    name: 'AbortError',
  });
  const data = memoryReader(golden.mp4);
  await assert.rejects(structuralCuts('mov' as ChunkingStrategy, data), RangeError);
  await assert.rejects(structuralCuts('mp4', { ...data, size: -1 }), RangeError);
  await assert.rejects(structuralCuts('mp4', { ...data, size: 1.5 }), RangeError);
  await assert.rejects(structuralCuts('mp4', data, { maxCuts: -1 }), RangeError);
  await assert.rejects(structuralCuts('mp4', data, { maxCuts: 2.5 }), RangeError);
});

test('bounded work on huge virtual files of tiny units', async () => {
  const GiB = 1024 * MiB;
  // 1 GiB of 8-byte `free` boxes: stops at the default maxCuts.
  const freeBox = [0, 0, 0, 8, 0x66, 0x72, 0x65, 0x65];
  const boxes = virtualReader(GiB, (o) => freeBox[o % 8]!);
  const t0 = performance.now();
  const cuts = await structuralCutsStrict('mp4', boxes);
  assert.equal(cuts.length, defaultMaxCuts(GiB));
  assertCutInvariants(cuts, GiB, defaultMaxCuts(GiB));
  // 64 MiB of 2-byte Void elements inside an unknown-size cluster: stops at the step budget.
  const header = cat(
    el(ID.ebml, el(ID.docType, ascii('webm'))),
    Buffer.from(ID.segment),
    vsize({ unknown: 8 }),
    Buffer.from(ID.cluster),
    vsize({ unknown: 1 }),
  );
  const voids = virtualReader(64 * MiB, (o) =>
    o < header.length ? header[o]! : (o - header.length) % 2 === 0 ? 0xec : 0x80,
  );
  assert.deepEqual(await structuralCutsStrict('ebml', voids), [12, 24]);
  const seconds = (performance.now() - t0) / 1000;
  assert.ok(seconds < 10, `took ${seconds} s`);
});

// ---------------------------------------------------------------------------------------
// Real files

// No skip when ffmpeg is missing: `npm test` installs it first (scripts/ensure-tools.ts).

interface Fixture {
  readonly name: string;
  readonly strategy: ChunkingStrategy;
  readonly file: string;
  data: Buffer;
}

let dir = '';
const fixtures: Fixture[] = [];

const VIDEO = ['-f', 'lavfi', '-i', 'testsrc2=size=160x120:rate=15'];
const AUDIO = ['-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=22050'];
const H264_AAC = ['-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', '-c:a', 'aac'];
const FIXTURE_SPECS: { name: string; strategy: ChunkingStrategy; args: string[] }[] = [
  { name: 'a.mp4', strategy: 'mp4', args: [...VIDEO, ...AUDIO, '-t', '1.5', ...H264_AAC] },
  { name: 'a.mov', strategy: 'mp4', args: [...VIDEO, ...AUDIO, '-t', '1.5', ...H264_AAC] },
  { name: 'a.mkv', strategy: 'ebml', args: [...VIDEO, ...AUDIO, '-t', '1.5', ...H264_AAC] },
  {
    name: 'a.webm',
    strategy: 'ebml',
    args: [
      ...VIDEO,
      ...['-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000'],
      ...['-t', '1.5', '-c:v', 'libvpx', '-deadline', 'realtime', '-cpu-used', '8'],
      ...['-b:v', '200k', '-c:a', 'libopus'],
    ],
  },
  {
    name: 'a.wav',
    strategy: 'riff',
    args: [...AUDIO, '-t', '1.5', '-metadata', 'title=fixture', '-c:a', 'pcm_s16le'],
  },
  {
    name: 'a.avi',
    strategy: 'riff',
    args: [...VIDEO, ...AUDIO, '-t', '1.5', '-c:v', 'mjpeg', '-c:a', 'pcm_s16le'],
  },
  { name: 'a.aiff', strategy: 'aiff', args: [...AUDIO, '-t', '1.5', '-metadata', 'title=x'] },
];

async function ffmpeg(...args: string[]): Promise<void> {
  await run('ffmpeg', ['-v', 'error', '-y', ...args]);
}

async function makeGlb(): Promise<Uint8Array> {
  const document = new Document();
  const buffer = document.createBuffer();
  const positions = document
    .createAccessor()
    .setType('VEC3')
    .setArray(new Float32Array([0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1]))
    .setBuffer(buffer);
  const indices = document
    .createAccessor()
    .setType('SCALAR')
    .setArray(new Uint16Array([0, 1, 2, 0, 2, 3, 0, 3, 1]))
    .setBuffer(buffer);
  const material = document.createMaterial('paint').setBaseColorFactor([1, 0.5, 0.25, 1]);
  const primitive = document
    .createPrimitive()
    .setAttribute('POSITION', positions)
    .setIndices(indices)
    .setMaterial(material);
  const mesh = document.createMesh('tetra').addPrimitive(primitive);
  const node = document.createNode('node').setMesh(mesh);
  document.createScene('scene').addChild(node);
  return await new NodeIO().writeBinary(document);
}

before(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'mediagit-containers-'));
  const glbFile = path.join(dir, 'a.glb');
  await fs.writeFile(glbFile, await makeGlb());
  fixtures.push({ name: 'a.glb', strategy: 'glb', file: glbFile, data: Buffer.alloc(0) });
  await Promise.all(
    FIXTURE_SPECS.map(async ({ name, args }) => ffmpeg(...args, path.join(dir, name))),
  );
  for (const { name, strategy } of FIXTURE_SPECS) {
    fixtures.push({ name, strategy, file: path.join(dir, name), data: Buffer.alloc(0) });
  }
  for (const fixture of fixtures) fixture.data = await fs.readFile(fixture.file);
});

after(async () => {
  if (dir !== '') await fs.rm(dir, { recursive: true, force: true });
});

function fixture(name: string): Fixture {
  const found = fixtures.find((f) => f.name === name);
  assert.ok(found, `fixture ${name}`);
  return found;
}

/**
 * The expected cuts of a well-formed file, read independently of the parsers: synchronous,
 * whole-buffer, no validation (the fixtures are well-formed), following the rules in
 * containers.ts.
 */
function expectedCuts(strategy: ChunkingStrategy, d: Buffer): number[] {
  const cuts: number[] = [];
  const fourcc = (at: number): string => d.toString('latin1', at, at + 4);
  if (strategy === 'mp4') {
    for (let at = 0; at < d.length;) {
      let size = d.readUInt32BE(at);
      let header = 8;
      if (size === 1) [size, header] = [Number(d.readBigUInt64BE(at + 8)), 16];
      if (size === 0) size = d.length - at;
      cuts.push(at);
      if (fourcc(at + 4) === 'mdat') cuts.push(at + header);
      if (fourcc(at + 4) === 'moov') {
        const walk = (from: number, to: number, depth: number): void => {
          for (let c = from; c < to; c += d.readUInt32BE(c)) {
            const boxSize = d.readUInt32BE(c);
            if (depth === 0) cuts.push(c);
            if (['trak', 'mdia', 'minf', 'stbl'].includes(fourcc(c + 4))) {
              walk(c + 8, c + boxSize, depth + 1);
            } else if (depth > 0 && boxSize >= 4096) {
              cuts.push(c, c + boxSize);
            }
          }
        };
        walk(at + 8, at + size, 0);
      }
      at += size;
    }
  } else if (strategy === 'ebml') {
    const element = (at: number): { id: number; header: number; size: number | undefined } => {
      const idLength = Math.clz32(d[at]!) - 23;
      const sizeLength = Math.clz32(d[at + idLength]!) - 23;
      const id = d.readUIntBE(at, idLength);
      let size = d[at + idLength]! & (0xff >> sizeLength);
      for (let i = 1; i < sizeLength; i++) size = size * 256 + d[at + idLength + i]!;
      const unknown = size === 2 ** (7 * sizeLength) - 1;
      return { id, header: idLength + sizeLength, size: unknown ? undefined : size };
    };
    for (let at = 0; at < d.length;) {
      const top = element(at);
      cuts.push(at);
      if (top.id === 0x18538067) {
        cuts.push(at + top.header);
        const end = top.size === undefined ? d.length : at + top.header + top.size;
        for (let c = at + top.header; c < end;) {
          const child = element(c);
          cuts.push(c);
          c += child.header + child.size!;
        }
      }
      at += top.header + (top.size ?? d.length);
    }
  } else if (strategy === 'riff' || strategy === 'aiff') {
    const u32 = (at: number): number =>
      strategy === 'riff' ? d.readUInt32LE(at) : d.readUInt32BE(at);
    for (let at = 12; at < d.length;) {
      const size = u32(at + 4);
      cuts.push(at);
      if (fourcc(at) === 'data') cuts.push(at + 8);
      if (fourcc(at) === 'LIST' && fourcc(at + 8) === 'movi') cuts.push(at + 12);
      if (fourcc(at) === 'SSND') cuts.push(at + 16 + d.readUInt32BE(at + 8));
      at += 8 + size + (size % 2);
    }
  } else if (strategy === 'glb') {
    for (let at = 12; at < d.length; at += 8 + d.readUInt32LE(at)) {
      cuts.push(at);
      if (fourcc(at + 4) !== 'JSON') cuts.push(at + 8);
    }
  }
  return [...new Set(cuts)].filter((c) => c > 0 && c < d.length);
}

interface Packet {
  pos: number;
  size: number;
}

async function ffprobePackets(file: string): Promise<Packet[]> {
  const { stdout } = await run('ffprobe', [
    ...['-v', 'error', '-show_entries', 'packet=pos,size', '-of', 'json', file],
  ]);
  const parsed = JSON.parse(stdout) as { packets: { pos?: string; size: string }[] };
  return parsed.packets
    .filter((p) => p.pos !== undefined)
    .map((p) => ({ pos: Number(p.pos), size: Number(p.size) }))
    .sort((a, b) => a.pos - b.pos);
}

/** The greatest cut at or before `offset`. */
function cutAtOrBefore(cuts: readonly number[], offset: number): number {
  return cuts.filter((c) => c <= offset).at(-1) ?? 0;
}

test('real files: cuts are the structure read independently, and few reads', async () => {
  for (const { name, strategy, file, data } of fixtures) {
    const { cuts, reads } = await fileCuts(strategy, file);
    assert.deepEqual(cuts, expectedCuts(strategy, data), name);
    assert.ok(cuts.length >= 3, `${name}: ${cuts.length} cuts`);
    assertCutInvariants(cuts, data.length, defaultMaxCuts(data.length));
    assert.ok(reads <= cuts.length + 4, `${name}: ${reads} reads for ${cuts.length} cuts`);
  }
});

test('real files: cuts never split a frame, and the media starts on a cut', async () => {
  // What must be right before (or at) the first frame's preceding cut, per container.
  const mediaStart: Record<string, (d: Buffer, cut: number) => boolean> = {
    'a.mp4': (d, c) => d.toString('latin1', c - 4, c) === 'mdat',
    'a.mov': (d, c) => d.toString('latin1', c - 4, c) === 'mdat',
    'a.mkv': (d, c) => d.readUInt32BE(c) === 0x1f43b675,
    'a.webm': (d, c) => d.readUInt32BE(c) === 0x1f43b675,
    'a.wav': (d, c) => d.toString('latin1', c - 8, c - 4) === 'data',
    'a.avi': (d, c) => d.toString('latin1', c - 4, c) === 'movi',
    'a.aiff': (d, c) => d.toString('latin1', c - 16, c - 12) === 'SSND', // offset 0
  };
  for (const { name, strategy, file, data } of fixtures.filter((f) => f.strategy !== 'glb')) {
    const { cuts } = await fileCuts(strategy, file);
    const packets = await ffprobePackets(file);
    assert.ok(packets.length > 5, `${name}: ${packets.length} packets`);
    for (const { pos, size } of packets) {
      const inside = cuts.filter((c) => c > pos && c < pos + size);
      assert.deepEqual(inside, [], `${name}: cut inside the frame at ${pos} (+${size})`);
    }
    const first = cutAtOrBefore(cuts, packets[0]!.pos);
    assert.ok(mediaStart[name]!(data, first), `${name}: media does not start at cut ${first}`);
  }
});

test('real files: unknown-size clusters cut like known sizes', async () => {
  const { data } = fixture('a.webm');
  const expected = await memoryCuts('ebml', data);
  const live = Buffer.from(data);
  const segment = expected[0]!;
  // Segment size and every cluster size become "unknown", keeping their vint lengths.
  const unknownSize = (at: number, idLength: number): void => {
    const sizeLength = Math.clz32(live[at + idLength]!) - 23;
    live.fill(0xff, at + idLength, at + idLength + sizeLength);
    live[at + idLength] = 0xff >> (sizeLength - 1);
  };
  unknownSize(segment, 4);
  let clusters = 0;
  for (const cut of expected) {
    if (live.readUInt32BE(cut) === 0x1f43b675) {
      unknownSize(cut, 4);
      clusters++;
    }
  }
  assert.ok(clusters >= 1);
  assert.deepEqual(await memoryCuts('ebml', live), expected);
});

// ---------------------------------------------------------------------------------------
// Fuzzing

const FUZZ_SIZES: ChunkSizes = { min: 1 * KiB, avg: 4 * KiB, max: 16 * KiB };
const REMUX_SIZES: ChunkSizes = { min: 16 * KiB, avg: 64 * KiB, max: 256 * KiB };

const SPECIAL_U32 = [0, 1, 2, 7, 8, 0x7f, 0x80, 0xffff, 0x7fffffff, 0x80000000, 0xffffffff];

type Mutation =
  | { kind: 'truncate'; at: number }
  | { kind: 'overwrite'; at: number; bytes: Uint8Array }
  | { kind: 'u32'; near: number; delta: number; value: number; bigEndian: boolean }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'delete'; at: number; length: number };

/** Positions are fractions of the file (or indexes into its cuts), so they fit any file. */
const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({
    kind: fc.constant('overwrite' as const),
    at: fc.nat(),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }),
  }),
  fc.record({
    kind: fc.constant('u32' as const),
    near: fc.nat(),
    delta: fc.integer({ min: -4, max: 16 }),
    value: fc.oneof(fc.constantFrom(...SPECIAL_U32), fc.nat({ max: 0xffffffff })),
    bigEndian: fc.boolean(),
  }),
  fc.record({
    kind: fc.constant('insert' as const),
    at: fc.nat(),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }),
  }),
  fc.record({
    kind: fc.constant('delete' as const),
    at: fc.nat(),
    length: fc.integer({ min: 1, max: 16 }),
  }),
);

/** Applies a mutation; `u32` writes a size-like value near a structural boundary. */
function mutate(data: Buffer, cuts: readonly number[], m: Mutation): Buffer {
  if (data.length === 0) return data;
  const at = 'at' in m ? m.at % data.length : 0;
  switch (m.kind) {
    case 'truncate':
      return data.subarray(0, at);
    case 'overwrite': {
      const copy = Buffer.from(data);
      copy.set(m.bytes.subarray(0, copy.length - at), at);
      return copy;
    }
    case 'u32': {
      const anchors = [0, ...cuts];
      const where = anchors[m.near % anchors.length]! + m.delta;
      if (where < 0 || where + 4 > data.length) return data;
      const copy = Buffer.from(data);
      if (m.bigEndian) copy.writeUInt32BE(m.value, where);
      else copy.writeUInt32LE(m.value, where);
      return copy;
    }
    case 'insert':
      return cat(data.subarray(0, at), m.bytes, data.subarray(at));
    case 'delete':
      return cat(data.subarray(0, at), data.subarray(at + m.length));
  }
}

async function assertTotal(strategy: ChunkingStrategy, data: Uint8Array, maxCuts?: number) {
  const limit = maxCuts ?? defaultMaxCuts(data.length);
  const reader = memoryReader(data);
  const cuts = await structuralCutsStrict(strategy, reader, { maxCuts: limit });
  assertCutInvariants(cuts, data.length, limit);
  const maxSteps = 4 * limit + Math.floor(data.length / 1024);
  assert.ok(reader.reads <= 3 * maxSteps + 8, `${reader.reads} reads`);
  return cuts;
}

test('fuzz: random bytes, alone and behind a valid signature', async () => {
  const signatures: Record<string, Buffer> = {
    mp4: box('ftyp', ascii('isom')),
    ebml: el(ID.ebml, el(ID.docType, ascii('webm'))),
    riff: cat(ascii('RIFF'), le32(100), ascii('WAVE')),
    aiff: cat(ascii('FORM'), be32(100), ascii('AIFF')),
    glb: cat(ascii('glTF'), le32(2), le32(100)),
  };
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom(...STRATEGIES),
      fc.boolean(),
      fc.uint8Array({ maxLength: 2048 }),
      fc.option(fc.integer({ min: 0, max: 40 }), { nil: undefined }),
      async (strategy, signed, bytes, maxCuts) => {
        const data = signed ? cat(signatures[strategy]!, bytes) : bytes;
        await assertTotal(strategy, data, maxCuts);
      },
    ),
    { numRuns: 1000, ...fcParams },
  );
});

test('fuzz: sequences of random, truncated and mis-sized units', async () => {
  // Structures that parse deep: real unit headers with random sizes and types.
  const unit = fc.record({
    size: fc.oneof(fc.constantFrom(...SPECIAL_U32), fc.nat({ max: 300 })),
    type: fc.constantFrom('mdat', 'moov', 'free', 'data', 'LIST', 'SSND', 'JSON', 'BIN\0', 'movi'),
    body: fc.uint8Array({ maxLength: 64 }),
  });
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom(...STRATEGIES),
      fc.array(unit, { maxLength: 12 }),
      fc.boolean(),
      async (strategy, units, bigEndian) => {
        const head =
          strategy === 'riff'
            ? cat(ascii('RIFF'), le32(0xffffffff), ascii('AVI '))
            : strategy === 'aiff'
              ? cat(ascii('FORM'), be32(5000), ascii('AIFF'))
              : strategy === 'glb'
                ? cat(ascii('glTF'), le32(2), le32(5000))
                : strategy === 'ebml'
                  ? cat(el(ID.ebml, filler(3)), Buffer.from(ID.segment), vsize({ unknown: 1 }))
                  : Buffer.alloc(0);
        const parts = units.map(({ size, type, body }) => {
          const sizeBytes = bigEndian ? be32(size) : le32(size);
          return strategy === 'glb'
            ? cat(sizeBytes, ascii(type), body)
            : strategy === 'ebml'
              ? cat(Buffer.from(ID.cluster), vsize(size % 200), body)
              : strategy === 'mp4'
                ? cat(sizeBytes, ascii(type), body)
                : cat(ascii(type), sizeBytes, body);
        });
        await assertTotal(strategy, cat(head, ...parts));
      },
    ),
    { numRuns: 1000, ...fcParams },
  );
});

test('fuzz: mutated and truncated real files', async () => {
  const cases = await Promise.all(
    [...fixtures, ...goldenFixtures()].map(async (f) => ({
      ...f,
      cuts: await memoryCuts(f.strategy, f.data),
    })),
  );
  await fc.assert(
    fc.asyncProperty(
      fc.nat({ max: cases.length - 1 }),
      fc.array(mutationArb, { minLength: 1, maxLength: 4 }),
      async (index, mutations) => {
        const { strategy, data, cuts } = cases[index]!;
        let mutated = data;
        for (const m of mutations) mutated = mutate(mutated, cuts, m);
        const mutatedCuts = await assertTotal(strategy, mutated);
        // Stored as the caller stores it and read back: byte-exact.
        const stored = new Map<string, Uint8Array>();
        let offset = 0;
        const ids = chunkFile(mutated, mutatedCuts, FUZZ_SIZES).map(({ id, length }) => {
          stored.set(id, mutated.subarray(offset, offset + length));
          offset += length;
          return id;
        });
        assert.ok(cat(...ids.map((id) => stored.get(id)!)).equals(mutated));
        // Whatever the content, any other strategy is total too.
        await assertTotal(STRATEGIES[index % STRATEGIES.length]!, mutated);
      },
    ),
    { numRuns: 2000, ...fcParams },
  );
});

function goldenFixtures(): Fixture[] {
  const of = (name: string, strategy: ChunkingStrategy, data: Buffer): Fixture => ({
    name,
    strategy,
    file: '',
    data,
  });
  return [
    of('golden.mp4', 'mp4', golden.mp4),
    of('golden-fast.mp4', 'mp4', golden.mp4FastStart),
    of('golden-live.webm', 'ebml', golden.ebml(true)),
    of('golden.wav', 'riff', golden.wav(true)),
    of('golden.avi', 'riff', golden.avi),
    of('golden.rf64', 'riff', golden.rf64),
    of('golden.aiff', 'aiff', golden.aiff),
    of('golden.glb', 'glb', golden.glb),
  ];
}

test('fuzz: maxCuts gives a prefix of the full cut list', async () => {
  const cases = [...fixtures, ...goldenFixtures()];
  await fc.assert(
    fc.asyncProperty(
      fc.nat({ max: cases.length - 1 }),
      fc.nat({ max: 50 }),
      async (index, maxCuts) => {
        const { strategy, data } = cases[index]!;
        const all = await memoryCuts(strategy, data);
        const limited = await assertTotal(strategy, data, maxCuts);
        assert.deepEqual(limited, all.slice(0, limited.length));
        assert.ok(limited.length === Math.min(maxCuts, all.length));
      },
    ),
    { numRuns: 300, ...fcParams },
  );
});

// ---------------------------------------------------------------------------------------
// Dedup of a metadata-only re-mux

/**
 * Chunks a file the way the caller does: a chunk ends at every structural cut, FastCDC
 * runs between cuts. Returns the SHA-256 and length of every chunk.
 */
function chunkFile(
  data: Uint8Array,
  cuts: readonly number[],
  sizes: ChunkSizes,
): { id: string; length: number }[] {
  const chunks: { id: string; length: number }[] = [];
  const bounds = [...cuts, data.length];
  let start = 0;
  for (const end of bounds) {
    while (start < end) {
      const length = findChunkLength(data, start, end, sizes);
      chunks.push({ id: hash('sha256', data.subarray(start, start + length)), length });
      start += length;
    }
  }
  return chunks;
}

/** Bytes of `b` in chunks that `a` does not have. */
function unsharedBytes(
  a: Uint8Array,
  aCuts: readonly number[],
  b: Uint8Array,
  bCuts: readonly number[],
  sizes: ChunkSizes,
): number {
  const have = new Set(chunkFile(a, aCuts, sizes).map((c) => c.id));
  return chunkFile(b, bCuts, sizes)
    .filter((c) => !have.has(c.id))
    .reduce((sum, c) => sum + c.length, 0);
}

test('metadata-only re-mux: only the changed boxes are new', async (t) => {
  // As in the issue: `a` is what the encoder wrote, `b` is `ffmpeg -i a -c copy -metadata
  // title=x b` (with the same muxer flags).
  const cases: { label: string; strategy: ChunkingStrategy; ext: string; flags: string[] }[] = [
    { label: 'mp4 (moov at the end)', strategy: 'mp4', ext: 'mp4', flags: [] },
    { label: 'mp4 (faststart)', strategy: 'mp4', ext: 'mp4', flags: ['-movflags', '+faststart'] },
    { label: 'mkv', strategy: 'ebml', ext: 'mkv', flags: [] },
  ];
  for (const [index, { label, strategy, ext, flags }] of cases.entries()) {
    const a = path.join(dir, `remux-${index}-a.${ext}`);
    const b = path.join(dir, `remux-${index}-b.${ext}`);
    await ffmpeg(
      ...['-f', 'lavfi', '-i', 'testsrc2=size=160x120:rate=25'],
      ...['-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=44100'],
      ...['-t', '30', ...H264_AAC, '-b:v', '300k', ...flags, a],
    );
    await ffmpeg('-i', a, '-c', 'copy', ...flags, '-metadata', 'title=x', b);
    const [aData, bData] = await Promise.all([fs.readFile(a), fs.readFile(b)]);
    const aCuts = (await fileCuts(strategy, a)).cuts;
    const bCuts = (await fileCuts(strategy, b)).cuts;
    assert.deepEqual(aCuts, expectedCuts(strategy, aData), label);
    assert.deepEqual(bCuts, expectedCuts(strategy, bData), label);
    const structural = unsharedBytes(aData, aCuts, bData, bCuts, REMUX_SIZES);
    const plain = unsharedBytes(aData, [], bData, [], REMUX_SIZES);
    // What the edit may touch: for MP4 the moov box, for Matroska everything but the
    // clusters (SeekHead, Info, Tracks, Tags, Cues).
    const metadata =
      strategy === 'mp4' ? moovBytes(bData) : bData.length - clusterBytes(bData, bCuts);
    t.diagnostic(
      `${label}: ${bData.length} bytes, ${bCuts.length} cuts; new bytes with cuts ${structural}, ` +
        `plain FastCDC ${plain}; metadata ${metadata}`,
    );
    assert.ok(structural <= metadata, `${label}: ${structural} new bytes, metadata ${metadata}`);
    assert.ok(structural < plain, `${label}: ${structural} >= plain ${plain}`);
    if (index === 0) {
      // Only the moov header and udta change: the trak tables stay shared.
      assert.ok(structural < 1024, `${label}: ${structural} new bytes`);
    }
  }
});

function moovBytes(d: Buffer): number {
  for (let at = 0; at < d.length; at += d.readUInt32BE(at)) {
    if (d.toString('latin1', at + 4, at + 8) === 'moov') return d.readUInt32BE(at);
  }
  return 0;
}

function clusterBytes(d: Buffer, cuts: readonly number[]): number {
  const bounds = [...cuts, d.length];
  let total = 0;
  for (let i = 0; i < cuts.length; i++) {
    if (d.readUInt32BE(cuts[i]!) === 0x1f43b675) total += bounds[i + 1]! - cuts[i]!;
  }
  return total;
}

test('GLB: a JSON-only edit keeps the BIN payload chunks', async () => {
  const a = fixture('a.glb').data;
  const document = await new NodeIO().readBinary(a);
  document.getRoot().listNodes()[0]!.setName('renamed node with a longer name');
  const b = Buffer.from(await new NodeIO().writeBinary(document));
  const sizes: ChunkSizes = { min: 8, avg: 16, max: 64 };
  const binStart = (d: Buffer) => 12 + 8 + d.readUInt32LE(12) + 8;
  assert.deepEqual(
    a.subarray(binStart(a)),
    b.subarray(binStart(b)),
    'gltf-transform rewrote the buffer',
  );
  const unshared = unsharedBytes(
    a,
    await memoryCuts('glb', a),
    b,
    await memoryCuts('glb', b),
    sizes,
  );
  assert.ok(unshared <= binStart(b), `${unshared} new bytes, JSON ends at ${binStart(b)}`);
});

test('the real size tier on a fixture: cuts plus CDC cover the file', async () => {
  for (const { strategy, data } of fixtures) {
    const cuts = await memoryCuts(strategy, data);
    const chunks = chunkFile(data, cuts, chunkSizesForFile(data.length));
    assert.equal(
      chunks.reduce((sum, c) => sum + c.length, 0),
      data.length,
    );
    assert.ok(chunks.length >= cuts.length + 1);
  }
});
