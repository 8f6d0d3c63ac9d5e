/** Layered images: PSD/PSB, OpenRaster and Krita merge layer by layer. */
import type { MergeStrategy } from '../../merge-strategy.ts';
import { psdMergeStrategy } from './psd.ts';

export const strategies: readonly MergeStrategy[] = [psdMergeStrategy];
