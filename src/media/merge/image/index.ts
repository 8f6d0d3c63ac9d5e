/**
 * Images: JPEG, PNG, WebP and TIFF merge metadata block by block and pixels
 * tile by tile (strategy.ts). Design: docs/merge/image.md.
 *
 * May import sharp and the media layer's merge contract; nothing above it.
 */
import type { MergeStrategy } from '../../merge-strategy.ts';
import { imageMergeStrategy } from './strategy.ts';

export const strategies: readonly MergeStrategy[] = [imageMergeStrategy];
