/**
 * Progress on long work: a single updating line on stderr, only when stderr
 * is a terminal and the work has run for a moment, so scripts and pipes see
 * nothing extra.
 */
import type { Cli } from './context.ts';

export interface ProgressReporter {
  update: (event: { bytes: number; total: number }) => void;
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
    update: ({ bytes, total }) => {
      if (!enabled || total <= 0) return;
      const now = Date.now();
      if (now - started < 500 || now - last < 100) return;
      last = now;
      shown = true;
      lineShown = true;
      process.stderr.write(`\r${progressLine(label, bytes, total, (now - started) / 1000)}\x1b[K`);
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
export function progressLine(label: string, bytes: number, total: number, seconds: number): string {
  const percent = Math.floor((bytes / total) * 100);
  const mib = (n: number): string => (n / 1048576).toFixed(n < 10 * 1048576 ? 1 : 0);
  let line = `${label}: ${percent}% (${mib(bytes)}/${mib(total)} MiB)`;
  if (seconds >= 1 && bytes > 0) {
    const rate = bytes / seconds;
    line += `, ${mib(rate)} MiB/s`;
    if (bytes < total) line += `, ${formatDuration((total - bytes) / rate)} left`;
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
