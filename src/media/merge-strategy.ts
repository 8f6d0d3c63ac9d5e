/**
 * Media-aware merges: when both sides changed a binary file, a strategy
 * chosen by the file's detected format may still combine them (different
 * layers of a PSD, different objects of a scene...) before the merge declares
 * a ModifyModify conflict. A strategy either returns the merged bytes or says
 * why it cannot, in one line that the conflict report shows.
 *
 * Strategies so far: PSD/PSB layers (psd-merge.ts). Images, video, audio, 3D
 * and VFX formats have none yet: their conflicts stay conflicts.
 */
import { psdMergeStrategy } from './psd-merge.ts';
import type { MediaFormat } from './detect.ts';

export type StrategyResult =
  { readonly merged: Uint8Array; readonly summary: string } | { readonly conflict: string };

export interface MergeStrategy {
  /** Shown in reports ("psd-layers"). */
  readonly name: string;
  /** Files larger than this are not loaded for a content merge. */
  readonly maxBytes: number;
  merge(base: Uint8Array, ours: Uint8Array, theirs: Uint8Array): Promise<StrategyResult>;
}

/** The strategy for a detected format, if there is one. */
export function mergeStrategyFor(format: MediaFormat): MergeStrategy | undefined {
  if (format.format === 'psd' || format.format === 'psb') return psdMergeStrategy;
  return undefined;
}
