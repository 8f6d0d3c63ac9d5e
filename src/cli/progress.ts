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

export function progressReporter(cli: Cli, label: string): ProgressReporter {
  const enabled = process.stderr.isTTY === true && !cli.env['CI'];
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
      const percent = Math.floor((bytes / total) * 100);
      const mb = (n: number): string => (n / 1048576).toFixed(0);
      process.stderr.write(`\r${label}: ${percent}% (${mb(bytes)}/${mb(total)} MiB)`);
    },
    stop: () => {
      if (shown) process.stderr.write('\r\x1b[K');
      if (shown) lineShown = false;
      shown = false;
    },
  };
}
