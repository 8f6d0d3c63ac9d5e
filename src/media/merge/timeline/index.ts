/**
 * Video timelines and containers: OpenTimelineIO merges by track and clip;
 * MP4/MOV merge a tags-only change with a stream change; EDL and FCPXML are
 * described for `diff` (their merge is the line merge). Design:
 * docs/merge/timeline.md.
 */
import type { MergeStrategy } from '../../merge-strategy.ts';
import { edlStrategy } from './edl.ts';
import { fcpxmlStrategy } from './fcpxml.ts';
import { mp4MergeStrategy } from './mp4.ts';
import { otioMergeStrategy } from './otio.ts';

export const strategies: readonly MergeStrategy[] = [
  otioMergeStrategy,
  mp4MergeStrategy,
  edlStrategy,
  fcpxmlStrategy,
];
