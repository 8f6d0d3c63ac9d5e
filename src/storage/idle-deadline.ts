/**
 * An idle timeout for one store request: its signal aborts once `ms` pass
 * with no progress reported (`touch`). A large transfer that keeps moving is
 * never cut, however long it takes; one that stalls is, after `ms`. SDKs
 * whose own timeout covers the whole request (Azure's `tryTimeoutInMs`) get
 * this signal instead, re-armed from their progress callbacks.
 */
import { storageFailure } from './backend.ts';

/** How long a store request may go without progress (MEDIAGIT_STORAGE_TIMEOUT_MS overrides). */
export const STORE_IDLE_TIMEOUT_MS = 120_000;

export class IdleDeadline {
  readonly ms: number;
  readonly #controller = new AbortController();
  #timer: NodeJS.Timeout | undefined;

  constructor(ms: number) {
    this.ms = ms;
    this.touch();
  }

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** Whether the request was cut for want of progress. */
  get fired(): boolean {
    return this.#controller.signal.aborted;
  }

  /** Progress: the timeout starts again. */
  touch(): void {
    if (this.fired) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#controller.abort(), this.ms);
    this.#timer.unref();
  }

  /** The request is over: no timer stays behind. */
  done(): void {
    clearTimeout(this.#timer);
  }
}

/**
 * Runs one store request (of `key` on the backend at `url`) under an idle
 * deadline of `ms`; a request the deadline cut fails as STORAGE_UNAVAILABLE
 * (transient), so the retrying layer tries it again.
 */
export async function underIdleDeadline<T>(
  ms: number,
  url: string,
  key: string,
  request: (deadline: IdleDeadline) => Promise<T>,
): Promise<T> {
  const deadline = new IdleDeadline(ms);
  try {
    return await request(deadline);
  } catch (error) {
    if (!deadline.fired) throw error;
    throw storageFailure(
      'STORAGE_UNAVAILABLE',
      url,
      key,
      `no progress for ${deadline.ms} ms (idle timeout)`,
      error,
    );
  } finally {
    deadline.done();
  }
}
