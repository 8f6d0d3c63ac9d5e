// Makes the process-wide pace of direct writes slow, as a slow disk would: real windows of
// direct-write time at half the slow threshold, as many in a row as it takes (the warm-up
// windows of a process, not judged, then SLOW_WINDOWS judged ones).
import {
  directWritePace,
  PACE_WINDOW,
  SLOW_DIRECT_MBPS,
  SLOW_WINDOWS,
  WARMUP_WINDOWS,
} from '../src/storage/direct-io.ts';

export async function slowDirectWrites(): Promise<void> {
  for (let i = 0; i < WARMUP_WINDOWS + SLOW_WINDOWS && !directWritePace.slow; i++) {
    directWritePace.started();
    await new Promise((resolve) =>
      setTimeout(resolve, (PACE_WINDOW / (SLOW_DIRECT_MBPS * 1e6)) * 2000),
    );
    directWritePace.finished(PACE_WINDOW);
  }
  if (!directWritePace.slow) throw new Error('direct writes did not turn slow');
}
