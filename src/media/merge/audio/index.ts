/**
 * Audio: WAV and AIFF merge by sample range and metadata chunk (pcm.ts),
 * Reaper projects by track and item (rpp.ts). Design: docs/merge/audio.md.
 */
import type { MergeStrategy } from '../../merge-strategy.ts';
import { pcmMergeStrategy } from './pcm.ts';
import { rppMergeStrategy } from './rpp.ts';

export const strategies: readonly MergeStrategy[] = [pcmMergeStrategy, rppMergeStrategy];
