/**
 * OpenEXR merge by part, called directly, on files made by ffmpeg (single
 * part) and exrmultipart (multi-part): parts changed on different sides
 * merge (read back by exrheader, each part separated by exrmultipart and
 * decoded by ffmpeg, compared with the side that changed it); a part both
 * changed is a conflict naming it; what is not an EXR is declined; and 200
 * random non-overlapping part changes merge to the expected parts, checked
 * in-process chunk by chunk.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import fc from 'fast-check';
import { bufferAccess, type RandomAccess } from '../../info/random-access.ts';
import type { MediaFormat } from '../../detect.ts';
import { writeMerged, type StrategyResult } from '../../merge-strategy.ts';
import { exrMergeStrategy, readExrLayout } from './exr.ts';

const run = promisify(execFile);
const EXR = { format: 'exr' } as MediaFormat;
const PARTS = ['beauty', 'depth', 'normals'] as const;

let dir = '';
/** Two versions of each of the three images (the second one's colour changed). */
const images: string[][] = [];
/** The multi-part file for each choice of versions: key '010' is beauty v0, depth v1, normals v0. */
const pool = new Map<string, Buffer>();

async function combine(files: readonly string[], names: readonly string[], out: string) {
  const inputs = files.map((file, i) => `${file}::${names[i]}`);
  await run('exrmultipart', ['-combine', '-i', ...inputs, '-o', out]);
  return fs.readFile(out);
}

before(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'mediagit-exr-'));
  const sources = [
    ['testsrc', 'color=c=blue'],
    ['color=c=gray', 'color=c=white'],
    ['rgbtestsrc', 'color=c=red'],
  ];
  const compressions = ['none', 'zip1', 'rle'];
  // One ffmpeg run writes all six images.
  const args = ['-v', 'error', '-y'];
  const outputs: string[] = [];
  sources.forEach((versions, part) => {
    images[part] = [];
    versions.forEach((source, v) => {
      const file = path.join(dir, `p${part}v${v}.exr`);
      images[part]![v] = file;
      args.push('-f', 'lavfi', '-i', `${source}${source.includes('=') ? ':' : '='}size=16x16`);
      outputs.push(
        ...['-map', String(part * 2 + v), '-frames:v', '1', '-pix_fmt', 'gbrpf32le'],
        '-c:v',
        'exr',
        '-compression',
        compressions[part] ?? 'none',
        file,
      );
    });
  });
  await run('ffmpeg', [...args, ...outputs]);
  const keys = ['000', '001', '010', '011', '100', '101', '110', '111'];
  await Promise.all(
    keys.map(async (key) => {
      const files = [...key].map((v, part) => images[part]?.[Number(v)] ?? '');
      pool.set(key, await combine(files, PARTS, path.join(dir, `m${key}.exr`)));
    }),
  );
});

after(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

function file(key: string): Buffer {
  const bytes = pool.get(key);
  assert.ok(bytes, key);
  return bytes;
}

/** Counts the largest single read, to show the strategy reads in bounded pieces. */
let largestRead = 0;
function counted(data: Buffer): RandomAccess {
  const access = bufferAccess(data);
  return {
    size: access.size,
    read: (offset, length) => {
      largestRead = Math.max(largestRead, length);
      return access.read(offset, length);
    },
  };
}

async function merge(base: Buffer, ours: Buffer, theirs: Buffer): Promise<Buffer | StrategyResult> {
  const sides = { base: counted(base), ours: counted(ours), theirs: counted(theirs) };
  const result = await exrMergeStrategy.merge({ path: 'shot.exr', format: EXR, ...sides });
  if (!('merged' in result)) return result;
  assert.ok(!(result.merged instanceof Uint8Array), 'an EXR merge is written as pieces');
  const out: Buffer[] = [];
  await writeMerged(result.merged, sides, async (data) => {
    out.push(Buffer.from(data));
  });
  return Buffer.concat(out);
}

async function merged(base: Buffer, ours: Buffer, theirs: Buffer): Promise<Buffer> {
  const result = await merge(base, ours, theirs);
  if (!Buffer.isBuffer(result)) assert.fail(`not merged: ${JSON.stringify(result)}`);
  return result;
}

/** Each part's header bytes and chunk bytes (after the part number), by name. */
async function partsOf(bytes: Buffer): Promise<Map<string, { header: Buffer; chunks: Buffer[] }>> {
  const layout = await readExrLayout(bufferAccess(bytes));
  return new Map(
    layout.parts.map((part) => [
      part.name,
      {
        header: bytes.subarray(part.headerOffset, part.headerOffset + part.headerLength),
        chunks: part.chunks.map((c) => bytes.subarray(c.offset + 4, c.offset + c.length)),
      },
    ]),
  );
}

/** Each single-part file's pixels as ffmpeg decodes them, in one ffmpeg run. */
async function pixels(files: readonly string[]): Promise<Buffer[]> {
  const args = ['-v', 'error', '-y', ...files.flatMap((file) => ['-i', file])];
  const raws = files.map((_, i) => path.join(dir, `raw${i}.bin`));
  raws.forEach((raw, i) =>
    args.push('-map', String(i), '-f', 'rawvideo', '-pix_fmt', 'gbrpf32le', raw),
  );
  await run('ffmpeg', args);
  return Promise.all(raws.map((raw) => fs.readFile(raw)));
}

test('parts changed on different sides merge; OpenEXR reads every part as the side that changed it', async () => {
  largestRead = 0;
  const bytes = await merged(file('000'), file('100'), file('010'));
  assert.ok(largestRead <= 1024 * 1024, `largest read ${largestRead}`);
  const out = path.join(dir, 'merged.exr');
  await fs.writeFile(out, bytes);

  const { stdout: header } = await run('exrheader', [out]);
  assert.deepEqual(
    [...header.matchAll(/name \(type string\): "([^"]+)"/g)].map((m) => m[1]),
    [...PARTS],
  );
  const counts = [...header.matchAll(/chunkCount \(type int\): (\d+)/g)].map((m) => Number(m[1]));
  const expectedCounts = (await readExrLayout(bufferAccess(file('110')))).parts.map(
    (p) => p.chunks.length,
  );
  assert.deepEqual(counts, expectedCounts);

  await run('exrmultipart', ['-separate', '-i', out, '-o', path.join(dir, 'sep')]);
  const want = [images[0]?.[1], images[1]?.[1], images[2]?.[0]].map((f) => f ?? '');
  const separated = PARTS.map((_, i) => path.join(dir, `sep.${i + 1}.exr`));
  const decoded = await pixels([...separated, ...want]);
  for (const [i, part] of PARTS.entries()) {
    const [got, expected] = [decoded[i], decoded[i + PARTS.length]];
    assert.ok(got && expected && got.length === 16 * 16 * 3 * 4, part);
    assert.ok(got.equals(expected), `part ${part}`);
  }
  // Deterministic.
  assert.ok((await merged(file('000'), file('100'), file('010'))).equals(bytes));
});

test('a part both sides changed is a conflict naming it', async () => {
  const other = await combine(
    [images[0]?.[0] ?? '', images[2]?.[1] ?? '', images[2]?.[0] ?? ''],
    PARTS,
    path.join(dir, 'other.exr'),
  );
  assert.deepEqual(await merge(file('000'), file('010'), other), {
    conflict: "both sides changed part 'depth'",
  });
  // The same change on both sides is no conflict.
  assert.ok((await merged(file('000'), file('010'), file('010'))).equals(file('010')));
});

test('a part added on one side is kept beside a part the other side changed', async () => {
  const two = await combine(
    [images[0]?.[0] ?? '', images[1]?.[0] ?? ''],
    PARTS,
    path.join(dir, 'two.exr'),
  );
  const twoChanged = await combine(
    [images[0]?.[1] ?? '', images[1]?.[0] ?? ''],
    PARTS,
    path.join(dir, 'two-changed.exr'),
  );
  const parts = await partsOf(await merged(two, twoChanged, file('000')));
  assert.deepEqual([...parts.keys()], [...PARTS]);
  const fromOurs = (await partsOf(twoChanged)).get('beauty');
  const fromTheirs = (await partsOf(file('000'))).get('normals');
  assert.deepEqual(parts.get('beauty'), fromOurs);
  assert.deepEqual(parts.get('normals'), fromTheirs);
});

test('tiled, mipmapped parts (exrmaketiled) merge chunk by chunk too', async () => {
  const tiled = await Promise.all(
    [0, 1].map(async (v) => {
      const out = path.join(dir, `tiled${v}.exr`);
      await run('exrmaketiled', ['-m', '-t', '8', '8', images[0]?.[v] ?? '', out]);
      return out;
    }),
  );
  const [base, ours, theirs] = await Promise.all([
    combine([tiled[0] ?? '', images[1]?.[0] ?? ''], PARTS, path.join(dir, 'tb.exr')),
    combine([tiled[1] ?? '', images[1]?.[0] ?? ''], PARTS, path.join(dir, 'to.exr')),
    combine([tiled[0] ?? '', images[1]?.[1] ?? ''], PARTS, path.join(dir, 'tt.exr')),
  ]);
  const bytes = await merged(base, ours, theirs);
  const parts = await partsOf(bytes);
  assert.deepEqual(parts.get('beauty'), (await partsOf(ours)).get('beauty'));
  assert.deepEqual(parts.get('depth'), (await partsOf(theirs)).get('depth'));
  const out = path.join(dir, 'tiled-merged.exr');
  await fs.writeFile(out, bytes);
  const { stdout } = await run('exrheader', [out]);
  assert.match(stdout, /type \(type string\): "tiledimage"/);
  assert.match(stdout, /mip-map/);
});

test('a single-part file is one part: one side may change it, both may not', async () => {
  const [base, changed, other] = await Promise.all(
    [images[0]?.[0], images[0]?.[1], images[1]?.[0]].map((f) => fs.readFile(f ?? '')),
  );
  assert.ok(base && changed && other);
  assert.ok((await merged(base, base, changed)).equals(changed));
  assert.ok((await merged(base, changed, base)).equals(changed));
  assert.deepEqual(await merge(base, changed, other), {
    conflict: 'both sides changed the image (a single-part file is one part)',
  });
});

test('what is not an OpenEXR file this reads is declined', async () => {
  const good = file('000');
  const layout = await readExrLayout(bufferAccess(good));
  const wrongChunk = Buffer.from(good);
  const first = layout.parts[1]?.chunks[0];
  assert.ok(first);
  wrongChunk.writeInt32LE(7, first.offset); // a chunk claiming another part's number
  const cases: [string, Buffer][] = [
    ['truncated', good.subarray(0, good.length - 100)],
    ['no magic', Buffer.concat([Buffer.from('not an exr'), good])],
    ['short', good.subarray(0, 20)],
    ['wrong part number', wrongChunk],
  ];
  for (const [what, broken] of cases) {
    const result = await merge(good, broken, file('010'));
    assert.ok(!Buffer.isBuffer(result) && 'declined' in result, what);
  }
});

test('describe names the parts that changed', async () => {
  assert.deepEqual(
    await exrMergeStrategy.describe?.(bufferAccess(file('000')), bufferAccess(file('010')), EXR),
    ["part 'beauty' unchanged", "part 'depth' changed", "part 'normals' unchanged"],
  );
});

test('random part changes on the two sides merge to the expected parts (200 runs)', async () => {
  const layouts = new Map<string, Map<string, { header: Buffer; chunks: Buffer[] }>>();
  for (const key of pool.keys()) layouts.set(key, await partsOf(file(key)));
  // Two versions per part: a part both sides flip is the same change on both.
  const flip = (key: string, mask: number) =>
    [...key].map((v, i) => (mask & (1 << i) ? String(1 - Number(v)) : v)).join('');
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom(...pool.keys()),
      fc.integer({ min: 0, max: 7 }),
      fc.integer({ min: 0, max: 7 }),
      async (baseKey, oursMask, theirsMask) => {
        const [ours, theirs] = [flip(baseKey, oursMask), flip(baseKey, theirsMask)];
        const result = await merge(file(baseKey), file(ours), file(theirs));
        assert.ok(Buffer.isBuffer(result), JSON.stringify(result));
        assert.deepEqual(await partsOf(result), layouts.get(flip(baseKey, oursMask | theirsMask)));
      },
    ),
    { numRuns: 200 },
  );
});
