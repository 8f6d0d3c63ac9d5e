/**
 * The OpenRaster layer merge on ORAs made of sharp PNGs and a stack.xml:
 * edits to different layers merge (read back by pixel digests), the
 * composite is rebuilt (checked against sharp's own composite), conflicts
 * name the layer, malformed files are declined, and a property over random
 * edits; a few results are checked with `unzip -t`.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import fc from 'fast-check';
import sharp from 'sharp';
import { bufferAccess } from '../../info/random-access.ts';
import { oraMergeStrategy } from './ora.ts';
import {
  ORA_SIZE,
  layerPng,
  ora,
  readOra,
  runMerge,
  unzipAll,
  zipOf,
  type OraSpec,
} from '../../../../test/layered-media.ts';

const run = promisify(execFile);
const merge = (base: Buffer, ours: Buffer, theirs: Buffer) =>
  runMerge(oraMergeStrategy, 'art.ora', base, ours, theirs);

const sky: OraSpec = { name: 'Sky', seed: 1 };
const actor: OraSpec = { name: 'Actor', seed: 2, x: 3, y: 2 };
const title: OraSpec = { name: 'Title', seed: 3, x: 5, y: 6 };
const group = (children: OraSpec[], name = 'Text'): OraSpec => ({ name, children });

/** The composite sharp makes of visible, fully opaque-or-clear layers (top first). */
async function sharpComposite(layers: readonly OraSpec[]): Promise<Buffer> {
  const flat: OraSpec[] = [];
  const visit = (list: readonly OraSpec[]) => {
    for (const l of list)
      if (l.children) visit(l.children);
      else if (!l.hidden) flat.push(l);
  };
  visit(layers);
  const inputs = await Promise.all(
    flat
      .reverse()
      .map(async (l) => ({ input: await layerPng(l.seed ?? 0), left: l.x ?? 0, top: l.y ?? 0 })),
  );
  return sharp({
    create: {
      width: ORA_SIZE,
      height: ORA_SIZE,
      channels: 4,
      background: { r: 0, g: 0, b: 0, alpha: 0 },
    },
  })
    .composite(inputs)
    .raw()
    .toBuffer();
}

test('edits to different layers and groups merge; the composite is rebuilt', async () => {
  const base = await ora([group([title]), actor, sky]);
  const ours = await ora([group([{ ...title, seed: 30 }]), actor, { ...sky, seed: 10 }]);
  // Theirs hides the actor and adds a layer on top.
  const logo: OraSpec = { name: 'Logo', seed: 4, x: 1, y: 1 };
  const theirs = await ora([logo, group([title]), { ...actor, hidden: true }, sky]);
  const result = await merge(base, ours, theirs);
  assert.ok('bytes' in result, JSON.stringify(result));
  const want: OraSpec[] = [
    logo,
    group([{ ...title, seed: 30 }]),
    { ...actor, hidden: true },
    { ...sky, seed: 10 },
  ];
  assert.deepEqual(await readOra(result.bytes), await readOra(await ora(want)));
  const members = await unzipAll(result.bytes, 'ora');
  const composite = await sharp(members.get('mergedimage.png')!).ensureAlpha().raw().toBuffer();
  assert.ok(composite.equals(await sharpComposite(want)), 'mergedimage.png is the merged layers');
  const thumbnail = await sharp(members.get('Thumbnails/thumbnail.png')!).metadata();
  assert.deepEqual([thumbnail.width, thumbnail.height], [ORA_SIZE, ORA_SIZE]);
  const again = await merge(base, ours, theirs);
  assert.ok('bytes' in again && again.bytes.equals(result.bytes), 'deterministic');
});

test('layers both sides added under one member name keep both, renamed', async () => {
  const base = await ora([sky]);
  // Both save the new layer as data/layer0.png, with different pixels.
  const ours = await ora([{ name: 'Moon', seed: 7 }, sky]);
  const theirs = await ora([{ name: 'Sun', seed: 8 }, sky]);
  const result = await merge(base, ours, theirs);
  assert.ok('bytes' in result, JSON.stringify(result));
  const names = (await readOra(result.bytes)).map((l) => l.name);
  assert.deepEqual(names.sort(), ['Moon', 'Sky', 'Sun']);
  const layers = await readOra(result.bytes);
  const byName = new Map(layers.map((l) => [l.name, l.pixels]));
  const want = new Map(
    (
      await readOra(
        await ora([
          { name: 'Moon', seed: 7 },
          { name: 'Sun', seed: 8 },
        ]),
      )
    ).map((l) => [l.name, l.pixels]),
  );
  assert.equal(byName.get('Moon'), want.get('Moon'));
  assert.equal(byName.get('Sun'), want.get('Sun'));
});

test("a non-normal blend mode keeps ours' composite", async () => {
  const base = await ora([actor, sky], { composite: 'svg:multiply' });
  const ours = await ora([{ ...actor, seed: 20 }, sky], { composite: 'svg:multiply' });
  const theirs = await ora([actor, { ...sky, seed: 10 }], { composite: 'svg:multiply' });
  const result = await merge(base, ours, theirs);
  assert.ok('bytes' in result);
  const [merged, kept] = [await unzipAll(result.bytes, 'ora'), await unzipAll(ours, 'ora')];
  assert.ok(merged.get('mergedimage.png')!.equals(kept.get('mergedimage.png')!));
});

test('conflicts name the layer, the group path, the order, the canvas', async () => {
  const base = await ora([group([title]), actor, sky]);
  const both = await merge(
    base,
    await ora([group([title]), actor, { ...sky, seed: 5 }]),
    await ora([group([title]), actor, { ...sky, opacity: 0.5 }]),
  );
  assert.deepEqual(both, { conflict: "both sides changed layer 'Sky'" });
  const nested = await merge(
    base,
    await ora([group([{ ...title, seed: 5 }]), actor, sky]),
    await ora([group([{ ...title, seed: 6 }]), actor, sky]),
  );
  assert.deepEqual(nested, { conflict: "both sides changed layer 'Text/Title'" });
  const order = await merge(
    base,
    await ora([actor, group([title]), sky]),
    await ora([sky, group([title]), actor]),
  );
  assert.deepEqual(order, { conflict: 'both sides changed the layer order' });
  const canvas = await merge(
    base,
    await ora([group([title]), actor, sky], { width: 20 }),
    await ora([group([title]), actor, sky], { width: 24 }),
  );
  assert.deepEqual(canvas, { conflict: 'the canvas size changed' });
  // One side's document change (resolution) with the other's layer edit merges.
  const shell = await merge(
    base,
    await ora([group([title]), actor, sky], { xres: 300 }),
    await ora([group([title]), actor, { ...sky, seed: 5 }]),
  );
  assert.ok('bytes' in shell, JSON.stringify(shell));
  const index = (await unzipAll(shell.bytes, 'ora')).get('stack.xml')!.toString();
  assert.match(index, /xres="300"/);
  assert.deepEqual(
    await readOra(shell.bytes),
    await readOra(await ora([group([title]), actor, { ...sky, seed: 5 }])),
  );
});

test('describe names changed, added and deleted layers and groups', async () => {
  const before = bufferAccess(await ora([group([title]), actor, sky]));
  const after = bufferAccess(
    await ora([{ name: 'Logo', seed: 4 }, group([{ ...title, seed: 9 }]), sky]),
  );
  const lines = await oraMergeStrategy.describe!(before, after, { format: 'ora' } as never);
  assert.deepEqual(lines.sort(), [
    "layer 'Actor' deleted",
    "layer 'Logo' added",
    "layer 'Text/Title' changed",
  ]);
});

test('malformed input is declined', async () => {
  const base = await ora([actor, sky]);
  const noStack = zipOf([['mimetype', Buffer.from('image/openraster'), true]]);
  const wrongType = zipOf([
    ['mimetype', Buffer.from('application/x-krita'), true],
    ['stack.xml', Buffer.from('<image/>')],
  ]);
  const missingLayer = zipOf([
    ['mimetype', Buffer.from('image/openraster'), true],
    [
      'stack.xml',
      Buffer.from(
        '<image w="4" h="4"><stack><layer name="x" src="data/nope.png"/></stack></image>',
      ),
    ],
  ]);
  for (const bad of [
    Buffer.from('PK garbage'),
    base.subarray(0, base.length - 30),
    noStack,
    wrongType,
    missingLayer,
  ]) {
    const result = await merge(base, bad, base);
    assert.ok('declined' in result, JSON.stringify(result));
  }
});

type Edit = 'none' | 'pixels' | 'hide' | 'opacity' | 'move' | 'delete';
const names = ['A', 'B', 'C', 'D', 'E', 'F'];
const leaf = (name: string): OraSpec => ({
  name,
  seed: names.indexOf(name) + 1,
  x: names.indexOf(name),
});
const baseSpec: OraSpec[] = [
  leaf('A'),
  leaf('B'),
  group(['C', 'D'].map(leaf), 'G'),
  leaf('E'),
  leaf('F'),
];

/** Base, ours, theirs and the expected merge for non-overlapping edits (one side may reorder). */
function scenario(
  edits: readonly [boolean, Edit][],
  reorderer: string,
  shuffle: readonly number[],
) {
  const apply = (layers: readonly OraSpec[], side: boolean): OraSpec[] =>
    layers.flatMap((spec) => {
      if (spec.children) return [{ ...spec, children: apply(spec.children, side) }];
      const i = names.indexOf(spec.name);
      const [onOurs, kind] = edits[i]!;
      if (onOurs !== side || kind === 'none') return [spec];
      if (kind === 'delete') return [];
      if (kind === 'pixels') return [{ ...spec, seed: 100 + i }];
      if (kind === 'hide') return [{ ...spec, hidden: true }];
      if (kind === 'move') return [{ ...spec, x: 7, y: 4 }];
      return [{ ...spec, opacity: 0.5 }];
    });
  const reorder = (layers: OraSpec[]): OraSpec[] => {
    const out = [...layers];
    for (const [k, n] of shuffle.entries()) {
      const [i, j] = [k % out.length, n % out.length];
      [out[i], out[j]] = [out[j]!, out[i]!];
    }
    return out;
  };
  return {
    ours: apply(reorderer === 'ours' ? reorder(baseSpec) : baseSpec, true),
    theirs: apply(reorderer === 'theirs' ? reorder(baseSpec) : baseSpec, false),
    want: apply(apply(reorderer === 'none' ? baseSpec : reorder(baseSpec), true), false),
  };
}

const scenarios = fc.tuple(
  fc.array(
    fc.tuple(
      fc.boolean(),
      fc.constantFrom<Edit>('none', 'pixels', 'hide', 'opacity', 'move', 'delete'),
    ),
    {
      minLength: names.length,
      maxLength: names.length,
    },
  ),
  fc.constantFrom('ours', 'theirs', 'none'),
  fc.array(fc.nat(), { minLength: 4, maxLength: 4 }),
);

test('property: random non-overlapping layer edits merge to the expected ORA', async () => {
  const base = await ora(baseSpec);
  await fc.assert(
    fc.asyncProperty(scenarios, async ([edits, reorderer, shuffle]) => {
      const s = scenario(edits, reorderer, shuffle);
      const result = await merge(base, await ora(s.ours), await ora(s.theirs));
      assert.ok('bytes' in result, JSON.stringify(result));
      assert.deepEqual(await readOra(result.bytes), await readOra(await ora(s.want)));
    }),
    { numRuns: 200 },
  );
});

test('a few merged ORAs pass unzip -t, mimetype first and stored', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'ora-merge-'));
  try {
    const base = await ora(baseSpec);
    const samples = fc.sample(scenarios, { numRuns: 4, seed: 19 });
    for (const [i, [edits, reorderer, shuffle]] of samples.entries()) {
      const s = scenario(edits, reorderer, shuffle);
      const result = await merge(base, await ora(s.ours), await ora(s.theirs));
      assert.ok('bytes' in result);
      const file = path.join(dir, `merged-${i}.ora`);
      await fs.writeFile(file, result.bytes);
      const tested = await run('unzip', ['-t', file]);
      assert.match(tested.stdout, /No errors detected/);
      const listing = await run('unzip', ['-Zv', file]);
      const first = listing.stdout.split(/^Central directory entry #\d+:/m)[1] ?? '';
      assert.match(first, /^\s*mimetype\s*$/m);
      assert.match(first, /compression method:\s+none \(stored\)/);
      assert.equal(result.bytes.toString('latin1', 30, 38), 'mimetype');
    }
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});
