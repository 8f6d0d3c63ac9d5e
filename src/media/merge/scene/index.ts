/**
 * 3D scenes: glTF/GLB merge by node, mesh, material, texture and animation;
 * OBJ by `o`/`g` group; MTL by `newmtl` block. Design: docs/merge/scene.md.
 */
import type { MergeStrategy } from '../../merge-strategy.ts';
import { gltfMergeStrategy } from './gltf.ts';
import { mtlMergeStrategy, objMergeStrategy } from './obj.ts';

export const strategies: readonly MergeStrategy[] = [
  gltfMergeStrategy,
  objMergeStrategy,
  mtlMergeStrategy,
];
