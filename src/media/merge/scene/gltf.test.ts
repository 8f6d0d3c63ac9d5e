/**
 * The glTF scene merge on scenes made with glTF-Transform: merged files are
 * read back with glTF-Transform and compared, by name, with the scene both
 * edits should give, and checked with the Khronos validator.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import sharp from 'sharp';
import {
  buildGlb,
  buildGltf,
  summarize,
  validatorErrors,
  type SceneSpec,
  type Vec3,
  type Vec4,
} from '../../../../test/scene-fixtures.ts';
import { detectFormat } from '../../detect.ts';
import { bufferAccess } from '../../info/random-access.ts';
import { writeMerged, type StrategyResult } from '../../merge-strategy.ts';
import { gltfMergeStrategy } from './gltf.ts';

/** A copy of a record without one key. */
function without<T>(record: Readonly<Record<string, T>>, key: string): Record<string, T> {
  const copy = { ...record };
  delete copy[key];
  return copy;
}

type Ext = 'glb' | 'gltf';

async function merge(
  base: Buffer,
  ours: Buffer,
  theirs: Buffer,
  ext: Ext = 'glb',
): Promise<{ result: StrategyResult; bytes?: Buffer }> {
  const sides = {
    base: bufferAccess(base),
    ours: bufferAccess(ours),
    theirs: bufferAccess(theirs),
  };
  const result = await gltfMergeStrategy.merge({
    path: `robot.${ext}`,
    format: detectFormat(new Uint8Array(0), `robot.${ext}`),
    ...sides,
  });
  if (!('merged' in result)) return { result };
  const chunks: Uint8Array[] = [];
  await writeMerged(result.merged, sides, (data) => {
    chunks.push(Buffer.from(data));
    return Promise.resolve();
  });
  return { result, bytes: Buffer.concat(chunks) };
}

async function mergeSpecs(base: SceneSpec, ours: SceneSpec, theirs: SceneSpec, ext: Ext = 'glb') {
  const build = ext === 'glb' ? buildGlb : buildGltf;
  return merge(await build(base), await build(ours), await build(theirs), ext);
}

const BASE: SceneSpec = {
  nodes: {
    Arm: { translation: [0, 0, 0], material: 'Paint' },
    Leg: { translation: [1, 0, 0], material: 'Chrome' },
    Head: { translation: [0, 2, 0], material: 'Skin' },
  },
  materials: { Paint: [1, 0, 0, 1], Chrome: [0.5, 0.5, 0.5, 1], Skin: [1, 0.8, 0.6, 1] },
  animations: {
    Leg: [
      [1, 0, 0],
      [1, 1, 0],
    ],
  },
};

function moved(spec: SceneSpec, node: string, translation: Vec3): SceneSpec {
  const current = spec.nodes[node];
  assert.ok(current);
  return { ...spec, nodes: { ...spec.nodes, [node]: { ...current, translation } } };
}

function recoloured(spec: SceneSpec, material: string, colour: Vec4): SceneSpec {
  return { ...spec, materials: { ...spec.materials, [material]: colour } };
}

async function assertMergesTo(bytes: Buffer | undefined, want: SceneSpec, ext: Ext = 'glb') {
  assert.ok(bytes, 'merged');
  const build = ext === 'glb' ? buildGlb : buildGltf;
  assert.deepEqual(await summarize(bytes, ext), await summarize(await build(want), ext));
}

test('ours moves a node, theirs recolours a material: the GLB has both and validates', async () => {
  const ours = moved(BASE, 'Arm', [0, 3, 0]);
  const theirs = recoloured(BASE, 'Paint', [0, 1, 0, 1]);
  const { result, bytes } = await mergeSpecs(BASE, ours, theirs);
  assert.ok('merged' in result, JSON.stringify(result));
  assert.match(result.summary, /material 'Paint'/);
  await assertMergesTo(bytes, recoloured(ours, 'Paint', [0, 1, 0, 1]));
  assert.deepEqual(await validatorErrors(bytes!), []);
  const again = await mergeSpecs(BASE, ours, theirs);
  assert.ok(again.bytes?.equals(bytes!), 'the same inputs give the same bytes');
});

test('both sides change the same material differently: a conflict naming it', async () => {
  const { result } = await mergeSpecs(
    BASE,
    recoloured(BASE, 'Paint', [0, 1, 0, 1]),
    recoloured(BASE, 'Paint', [0, 0, 1, 1]),
  );
  assert.deepEqual(result, { conflict: "both sides changed material 'Paint' baseColorFactor" });
});

test('both sides move the same node: a conflict naming its path', async () => {
  const { result } = await mergeSpecs(
    BASE,
    moved(BASE, 'Leg', [5, 0, 0]),
    moved(BASE, 'Leg', [6, 0, 0]),
  );
  assert.deepEqual(result, { conflict: "both sides changed node 'Robot/Leg' translation" });
});

test('the same change on both sides merges', async () => {
  const ours = recoloured(moved(BASE, 'Head', [0, 4, 0]), 'Skin', [0, 0, 0, 1]);
  const { bytes } = await mergeSpecs(BASE, ours, ours);
  await assertMergesTo(bytes, ours);
});

test('a node added on theirs is kept with its mesh and material; one deleted on ours is removed', async () => {
  const theirs: SceneSpec = {
    ...recoloured(BASE, 'Glass', [0, 0, 1, 0.5]),
    nodes: { ...BASE.nodes, Tail: { translation: [0, 0, -1], material: 'Glass', size: 2 } },
  };
  const rest = without(BASE.nodes, 'Head');
  const ours: SceneSpec = { ...BASE, nodes: rest };
  const { result, bytes } = await mergeSpecs(BASE, ours, theirs);
  assert.ok('merged' in result, JSON.stringify(result));
  const wantNodes = without(theirs.nodes, 'Head');
  await assertMergesTo(bytes, { ...theirs, nodes: wantNodes });
  assert.deepEqual(await validatorErrors(bytes!), []);
});

test('a part deleted on one side and changed on the other is a conflict', async () => {
  const rest = without(BASE.nodes, 'Head');
  const { result } = await mergeSpecs(
    BASE,
    { ...BASE, nodes: rest },
    moved(BASE, 'Head', [9, 9, 9]),
  );
  assert.deepEqual(result, { conflict: "ours deleted node 'Robot/Head', which theirs changed" });
});

test('an animation added on theirs targets the merged node; both change one animation: conflict', async () => {
  const ours = moved(BASE, 'Arm', [0, 0, 7]);
  const animations: Record<string, Vec3[]> = {
    ...BASE.animations,
    Head: [
      [0, 2, 0],
      [0, 3, 0],
    ],
  };
  const theirs: SceneSpec = { ...BASE, animations };
  const { bytes } = await mergeSpecs(BASE, ours, theirs);
  await assertMergesTo(bytes, { ...ours, animations });
  assert.deepEqual(await validatorErrors(bytes!), []);

  const { result } = await mergeSpecs(
    BASE,
    {
      ...BASE,
      animations: {
        Leg: [
          [1, 0, 0],
          [2, 0, 0],
        ],
      },
    },
    {
      ...BASE,
      animations: {
        Leg: [
          [1, 0, 0],
          [3, 0, 0],
        ],
      },
    },
  );
  assert.deepEqual(result, { conflict: "both sides changed animation 'Leg' channels" });
});

test('a texture changed on theirs and a material on ours merge; images compared by bytes', async () => {
  const png = (r: number) =>
    sharp({ create: { width: 2, height: 2, channels: 3, background: { r, g: 0, b: 0 } } })
      .png()
      .toBuffer();
  const base: SceneSpec = { ...BASE, texture: await png(10) };
  const ours = recoloured(base, 'Chrome', [0.1, 0.1, 0.1, 1]);
  const theirs: SceneSpec = { ...base, texture: await png(200) };
  const { bytes } = await mergeSpecs(base, ours, theirs);
  await assertMergesTo(bytes, { ...ours, texture: theirs.texture! });
  assert.deepEqual(await validatorErrors(bytes!), []);
  const { result } = await mergeSpecs(base, { ...base, texture: await png(99) }, theirs);
  assert.deepEqual(result, { conflict: "both sides changed texture 'skin' image" });
});

test('nodes whose names repeat are told apart by extras.mediagitId', async () => {
  const base: SceneSpec = { ...BASE, names: { Arm: 'Limb', Leg: 'Limb' } };
  const ours = moved(base, 'Arm', [0, 0, 1]);
  const theirs = moved(base, 'Leg', [0, 0, 2]);
  const { bytes } = await mergeSpecs(base, ours, theirs);
  await assertMergesTo(bytes, moved(ours, 'Leg', [0, 0, 2]));
  const { result } = await mergeSpecs(base, ours, moved(base, 'Arm', [0, 0, 3]));
  assert.deepEqual(result, { conflict: "both sides changed node 'Robot/{Arm}' translation" });
});

test('unnamed meshes are told apart by the node that places them', async () => {
  const base: SceneSpec = { ...BASE, unnamedMeshes: true };
  const grown = (spec: SceneSpec, size: number): SceneSpec => ({
    ...spec,
    nodes: { ...spec.nodes, Leg: { translation: [1, 0, 0], material: 'Chrome', size } },
  });
  const ours = moved(base, 'Arm', [0, 0, 1]);
  const { bytes } = await mergeSpecs(base, ours, grown(base, 3));
  await assertMergesTo(bytes, grown(ours, 3));
  const { result } = await mergeSpecs(base, grown(base, 2), grown(base, 3));
  assert.deepEqual(result, {
    conflict: "both sides changed mesh '(mesh of node 'Robot/Leg')' primitives",
  });
});

test('a node added on theirs keeps its place among the children; a deleted part still used conflicts', async () => {
  const theirs: SceneSpec = {
    ...BASE,
    nodes: {
      Arm: BASE.nodes.Arm!,
      Neck: { translation: [0, 1, 0], material: 'Skin' },
      Leg: BASE.nodes.Leg!,
      Head: BASE.nodes.Head!,
    },
  };
  const ours = moved(BASE, 'Head', [0, 5, 0]);
  const { bytes } = await mergeSpecs(BASE, ours, theirs);
  const merged = await summarize(bytes!);
  assert.deepEqual(merged.nodes.Robot?.children, ['Arm', 'Neck', 'Leg', 'Head']);
  await assertMergesTo(bytes, moved(theirs, 'Head', [0, 5, 0]));

  // Theirs stops using Chrome and deletes it; ours adds a foot made of Chrome.
  const noChrome: SceneSpec = {
    nodes: { ...BASE.nodes, Leg: { translation: [1, 0, 0], material: 'Paint' } },
    materials: without(BASE.materials, 'Chrome'),
  };
  const withFoot: SceneSpec = {
    ...BASE,
    nodes: { ...BASE.nodes, Foot: { translation: [1, -1, 0], material: 'Chrome' } },
  };
  const { result: clean } = await mergeSpecs(BASE, moved(BASE, 'Arm', [0, 0, 2]), noChrome);
  assert.ok('merged' in clean, 'Chrome goes with the mesh that used it');
  const { result } = await mergeSpecs(BASE, withFoot, noChrome);
  assert.deepEqual(result, {
    conflict: "one side deleted material 'Chrome', which mesh 'Foot-mesh' still uses",
  });
});

test('.gltf with embedded buffers merges to embedded .gltf JSON that validates', async () => {
  const ours = moved(BASE, 'Arm', [0, 3, 0]);
  const theirs = recoloured(BASE, 'Paint', [0, 1, 0, 1]);
  const { bytes } = await mergeSpecs(BASE, ours, theirs, 'gltf');
  await assertMergesTo(bytes, recoloured(ours, 'Paint', [0, 1, 0, 1]), 'gltf');
  assert.match(bytes!.toString('utf8'), /"uri": "data:application\/octet-stream;base64,/);
  assert.deepEqual(await validatorErrors(bytes!, 'gltf'), []);
});

test('unreadable sides, external buffers and unsupported variants are declined', async () => {
  const good = await buildGlb(BASE);
  const truncated = good.subarray(0, 40);
  for (const bad of [Buffer.from('not a glb at all'), truncated]) {
    const { result } = await merge(good, bad, good);
    assert.ok('declined' in result, JSON.stringify(result));
  }
  const json = JSON.parse((await buildGltf(BASE)).toString('utf8')) as {
    buffers: { uri: string }[];
  };
  json.buffers[0]!.uri = 'robot.bin';
  const external = Buffer.from(JSON.stringify(json));
  const { result } = await merge(external, external, external, 'gltf');
  assert.deepEqual(result, {
    declined: "base references the external file 'robot.bin', which a merge of one file cannot see",
  });
  const { result: notJson } = await merge(
    Buffer.from('{'),
    Buffer.from('{'),
    Buffer.from('{'),
    'gltf',
  );
  assert.ok('declined' in notJson);
});

test('describe lists parts added, removed and changed', async () => {
  const theirs: SceneSpec = {
    ...recoloured(BASE, 'Paint', [0, 0, 0, 1]),
    nodes: {
      Arm: BASE.nodes.Arm!,
      Leg: BASE.nodes.Leg!,
      Tail: { translation: [0, 0, 0], material: 'Paint' },
    },
  };
  const lines = await gltfMergeStrategy.describe!(
    bufferAccess(await buildGlb(BASE)),
    bufferAccess(await buildGlb(theirs)),
    detectFormat(new Uint8Array(0), 'robot.glb'),
  );
  assert.deepEqual(lines.sort(), [
    "material 'Paint' changed: baseColorFactor",
    "mesh 'Head-mesh' removed",
    "mesh 'Tail-mesh' added",
    "node 'Robot/Head' removed",
    "node 'Robot/Tail' added",
  ]);
});

const NODE_NAMES = ['Arm', 'Leg', 'Head', 'Tail', 'Wing'] as const;
const MATERIAL_NAMES = ['Paint', 'Chrome', 'Skin'] as const;

test('property: random disjoint moves, recolours, deletions and an addition merge to both (200 runs)', async () => {
  const base: SceneSpec = {
    nodes: Object.fromEntries(
      NODE_NAMES.map((n, i) => [
        n,
        { translation: [i, 0, 0] as Vec3, material: MATERIAL_NAMES[i % 3]! },
      ]),
    ),
    materials: Object.fromEntries(MATERIAL_NAMES.map((m, i) => [m, [i / 3, 0.5, 0.5, 1] as Vec4])),
  };
  const baseGlb = await buildGlb(base);
  const side = fc.constantFrom<'ours' | 'theirs' | 'none'>('ours', 'theirs', 'none');
  const nodeEdit = fc.constantFrom('ours', 'theirs', 'none', 'delete-ours', 'delete-theirs');
  const coordinate = fc.integer({ min: -50, max: 50 });
  const edit = fc.record({
    nodes: fc.tuple(
      ...NODE_NAMES.map(() => fc.tuple(nodeEdit, fc.tuple(coordinate, coordinate, coordinate))),
    ),
    materials: fc.tuple(
      ...MATERIAL_NAMES.map(() => fc.tuple(side, fc.integer({ min: 0, max: 100 }))),
    ),
    added: fc.tuple(side, fc.constantFrom(...MATERIAL_NAMES)),
  });
  let runs = 0;
  await fc.assert(
    fc.asyncProperty(edit, async ({ nodes, materials, added: [adder, material] }) => {
      let [ours, theirs, want] = [base, base, base];
      const drop = (spec: SceneSpec, name: string): SceneSpec => ({
        ...spec,
        nodes: without(spec.nodes, name),
      });
      nodes.forEach(([who, t], i) => {
        const name = NODE_NAMES[i]!;
        if (who === 'ours') ours = moved(ours, name, t);
        if (who === 'theirs') theirs = moved(theirs, name, t);
        if (who === 'delete-ours') ours = drop(ours, name);
        if (who === 'delete-theirs') theirs = drop(theirs, name);
        if (who === 'ours' || who === 'theirs') want = moved(want, name, t);
        if (who.startsWith('delete')) want = drop(want, name);
      });
      materials.forEach(([who, red], i) => {
        const name = MATERIAL_NAMES[i]!;
        const colour: Vec4 = [red / 100, 0, 0, 1];
        if (who === 'none') return;
        if (who === 'ours') ours = recoloured(ours, name, colour);
        else theirs = recoloured(theirs, name, colour);
        want = recoloured(want, name, colour);
      });
      if (adder !== 'none') {
        const grow = (spec: SceneSpec): SceneSpec => ({
          ...spec,
          nodes: { ...spec.nodes, Fin: { translation: [0, 0, 9], material, size: 2 } },
        });
        if (adder === 'ours') ours = grow(ours);
        else theirs = grow(theirs);
        want = grow(want);
      }
      const { result, bytes } = await merge(baseGlb, await buildGlb(ours), await buildGlb(theirs));
      assert.ok('merged' in result, JSON.stringify(result));
      await assertMergesTo(bytes, want);
      // The validator takes tens of milliseconds a file: it checks every 20th result.
      if (runs++ % 20 === 0) assert.deepEqual(await validatorErrors(bytes!), []);
    }),
    { numRuns: 200 },
  );
});
