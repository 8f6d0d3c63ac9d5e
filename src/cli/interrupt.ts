/**
 * Ctrl-C, `kill`, a closed terminal (SIGINT, SIGTERM, SIGHUP) and a closed
 * output pipe during a command. By default the command's locks and temp files are removed, a
 * progress line is ended, and the process dies of the signal, as Git's do
 * (exit status 128 + the signal's number in a shell): `installInterrupts`.
 *
 * A command that can keep what it has done so far (clone: the chunks that
 * arrived) runs under `interruptible`: the first signal aborts its
 * AbortSignal and the command winds down; a second one ends the process at
 * once. Commands with handlers of their own (`serve`, the fsmonitor daemon)
 * keep theirs: the default steps aside when another listener is present.
 */
import os from 'node:os';
import { removeOwnLeftovers } from '../storage/leftovers.ts';
import { endProgressLine } from './progress.ts';

const INTERRUPTS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

export function installInterrupts(): void {
  for (const signal of INTERRUPTS) process.on(signal, onInterrupt);
  // A reader that stops reading (`mediagit log | head -1`): Git dies of
  // SIGPIPE, quietly (exit 141 in a shell). Node ignores SIGPIPE and reports
  // EPIPE on the stream instead; without a listener that is a stack trace.
  process.stdout.on('error', onOutputError);
}

function onOutputError(error: NodeJS.ErrnoException): void {
  if (error.code !== 'EPIPE') throw error;
  dieOf('SIGPIPE');
}

function onInterrupt(signal: NodeJS.Signals): void {
  if (process.listenerCount(signal) > 1) return;
  dieOf(signal);
}

/** Removes this process's leftovers and ends it with `signal`. */
export function dieOf(signal: NodeJS.Signals): never {
  endProgressLine();
  removeOwnLeftovers();
  for (const each of INTERRUPTS) process.removeAllListeners(each);
  process.kill(process.pid, signal);
  process.exit(128 + (os.constants.signals[signal] ?? 0));
}

/** An interruption of a command run under `interruptible`. */
export class Interrupted extends Error {
  readonly signal: NodeJS.Signals;

  constructor(signal: NodeJS.Signals) {
    super(`interrupted by ${signal}`);
    this.name = 'Interrupted';
    this.signal = signal;
  }
}

/**
 * Runs `work` with an AbortSignal that the first interrupting signal aborts
 * (its reason an `Interrupted`). When `work` then fails, `onInterrupted`
 * speaks and the process dies of the signal; a second signal ends it at once.
 */
export async function interruptible<T>(
  work: (signal: AbortSignal) => Promise<T>,
  onInterrupted: () => void,
): Promise<T> {
  const controller = new AbortController();
  let received: NodeJS.Signals | undefined;
  const listener = (signal: NodeJS.Signals): void => {
    if (received !== undefined) dieOf(signal);
    received = signal;
    controller.abort(new Interrupted(signal));
  };
  for (const signal of INTERRUPTS) process.on(signal, listener);
  try {
    return await work(controller.signal);
  } catch (error) {
    if (received === undefined) throw error;
    endProgressLine();
    onInterrupted();
    return dieOf(received);
  } finally {
    for (const signal of INTERRUPTS) process.off(signal, listener);
  }
}
