/**
 * Layered images: PSD/PSB, OpenRaster and Krita merge layer by layer
 * (layer-tree.ts), each format reading and writing its own container.
 * Design: docs/merge/layered.md.
 */
import type { MergeStrategy } from '../../merge-strategy.ts';
import { kraMergeStrategy } from './kra.ts';
import { oraMergeStrategy } from './ora.ts';
import { psdMergeStrategy } from './psd.ts';

export const strategies: readonly MergeStrategy[] = [
  psdMergeStrategy,
  oraMergeStrategy,
  kraMergeStrategy,
];
