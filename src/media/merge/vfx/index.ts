/**
 * VFX: Nuke scripts merge node by node and knob by knob (nk.ts over
 * nk-script.ts); OpenEXR multi-part files merge part by part (exr.ts).
 * Design: docs/merge/vfx.md.
 */
import type { MergeStrategy } from '../../merge-strategy.ts';
import { exrMergeStrategy } from './exr.ts';
import { nukeMergeStrategy } from './nk.ts';

export const strategies: readonly MergeStrategy[] = [nukeMergeStrategy, exrMergeStrategy];
