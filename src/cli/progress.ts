/**
 * Progress on long work: a single updating line on stderr, only when stderr
 * is a terminal and the work has run for a moment, so scripts and pipes see
 * nothing extra.
 */
import type { Cli } from './context.ts';

/**
 * Bytes moved, and (when the work is not only bytes, such as writing many
 * small files) the share of the whole work done, `work` out of `totalWork`,
 * which then sets the percentage and the time left.
 */
export interface ProgressEvent {
  readonly bytes: number;
  readonly total: number;
  readonly work?: number;
  readonly totalWork?: number;
}

export interface ProgressReporter {
  update: (event: ProgressEvent) => void;
  stop: () => void;
}

/** Whether a progress line is on screen (one at a time: they all use stderr). */
let lineShown = false;

/** Ends a progress line on screen with a newline (an interrupted command's last words). */
export function endProgressLine(): void {
  if (lineShown) process.stderr.write('\n');
  lineShown = false;
}

export function progressReporter(
  cli: Cli,
  label: string,
  options: { quiet?: boolean } = {},
): ProgressReporter {
  const enabled = process.stderr.isTTY === true && !cli.env['CI'] && options.quiet !== true;
  const started = Date.now();
  let shown = false;
  let last = 0;
  return {
    update: (event) => {
      if (!enabled || (event.totalWork ?? event.total) <= 0) return;
      const now = Date.now();
      if (now - started < 500 || now - last < 100) return;
      last = now;
      shown = true;
      lineShown = true;
      process.stderr.write(`\r${progressLine(label, event, (now - started) / 1000)}\x1b[K`);
    },
    stop: () => {
      if (shown) process.stderr.write('\r\x1b[K');
      if (shown) lineShown = false;
      shown = false;
    },
  };
}

/**
 * `Receiving chunks: 42% (430/1024 MiB), 112 MiB/s, 5 s left`: the rate and
 * the estimate appear once a second of work has been measured.
 */
export function progressLine(label: string, event: ProgressEvent, seconds: number): string {
  const { bytes, total } = event;
  const work = event.work ?? bytes;
  const totalWork = event.totalWork ?? total;
  const percent = Math.floor((work / totalWork) * 100);
  const mib = (n: number): string => (n / 1048576).toFixed(n < 10 * 1048576 ? 1 : 0);
  let line = `${label}: ${percent}% (${mib(bytes)}/${mib(total)} MiB)`;
  if (seconds >= 1 && work > 0) {
    line += `, ${mib(bytes / seconds)} MiB/s`;
    if (work < totalWork) line += `, ${formatDuration((totalWork - work) / (work / seconds))} left`;
  }
  return line;
}

function formatDuration(seconds: number): string {
  const s = Math.ceil(seconds);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, '0')} min`;
}
