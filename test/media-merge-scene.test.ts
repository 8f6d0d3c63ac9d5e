/**
 * Media-aware merge of a GLB scene through the real CLI: edits to different
 * parts on two branches (a node moved, a material recoloured) merge into one
 * file that glTF-Transform reads back with both and the Khronos validator
 * passes; edits to the same material are a ModifyModify conflict naming it.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import { test } from 'node:test';
import { TempRepo } from './helpers.ts';
import { buildGlb, summarize, validatorErrors, type SceneSpec } from './scene-fixtures.ts';

const BASE: SceneSpec = {
  nodes: {
    Arm: { translation: [0, 0, 0], material: 'Paint' },
    Leg: { translation: [1, 0, 0], material: 'Chrome' },
  },
  materials: { Paint: [1, 0, 0, 1], Chrome: [0.5, 0.5, 0.5, 1] },
};

const moved: SceneSpec = {
  ...BASE,
  nodes: { ...BASE.nodes, Arm: { translation: [0, 3, 0], material: 'Paint' } },
};
const recolour = (spec: SceneSpec, colour: [number, number, number, number]): SceneSpec => ({
  ...spec,
  materials: { ...spec.materials, Paint: colour },
});

test('GLB edits to different parts merge through the CLI; edits to one material conflict', async () => {
  const repo = await TempRepo.create();
  try {
    await fs.writeFile(repo.path('robot.glb'), await buildGlb(BASE));
    await repo.ok(['add', 'robot.glb']);
    await repo.ok(['commit', '-q', '-m', 'robot']);
    await repo.ok(['switch', '-q', '-c', 'paint']);
    await fs.writeFile(repo.path('robot.glb'), await buildGlb(recolour(BASE, [0, 1, 0, 1])));
    await repo.ok(['commit', '-q', '-a', '-m', 'green paint']);
    await repo.ok(['switch', '-q', 'main']);
    await fs.writeFile(repo.path('robot.glb'), await buildGlb(moved));
    await repo.ok(['commit', '-q', '-a', '-m', 'raise arm']);

    await repo.ok(['merge', '-q', '-m', 'merge paint', 'paint']);
    const merged = await fs.readFile(repo.path('robot.glb'));
    assert.deepEqual(
      await summarize(merged),
      await summarize(await buildGlb(recolour(moved, [0, 1, 0, 1]))),
    );
    assert.deepEqual(await validatorErrors(merged), []);

    // Both recolour the paint: a conflict naming the material; ours stays in place.
    await repo.ok(['switch', '-q', '-c', 'blue']);
    await fs.writeFile(repo.path('robot.glb'), await buildGlb(recolour(moved, [0, 0, 1, 1])));
    await repo.ok(['commit', '-q', '-a', '-m', 'blue paint']);
    await repo.ok(['switch', '-q', 'main']);
    const ours = await buildGlb(recolour(moved, [1, 1, 0, 1]));
    await fs.writeFile(repo.path('robot.glb'), ours);
    await repo.ok(['commit', '-q', '-a', '-m', 'yellow paint']);
    const result = await repo.fails(['merge', 'blue'], 1);
    assert.match(
      result.stderr,
      /CONFLICT \(content\): Merge conflict in robot\.glb \(gltf-scene: both sides changed material 'Paint' baseColorFactor\)/,
    );
    const status = JSON.parse((await repo.ok(['status', '--json'])).out) as {
      unmerged: { path: string; type: string }[];
    };
    assert.deepEqual(status.unmerged, [{ path: 'robot.glb', type: 'ModifyModify' }]);
    assert.ok((await fs.readFile(repo.path('robot.glb'))).equals(ours));
  } finally {
    await repo.cleanup();
  }
});
