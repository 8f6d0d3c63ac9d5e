/**
 * Fixed-window request counters (per API key, per client IP, per IP for
 * failed logins). A window is one minute; a caller over its limit is told
 * how many seconds remain (the 429's Retry-After). Memory is bounded: the
 * counters of past windows are dropped as a new window starts.
 */
export class RateLimiter {
  readonly limit: number;
  readonly windowMs: number;
  #window = 0;
  #counts = new Map<string, number>();

  constructor(limitPerWindow: number, windowMs = 60_000) {
    this.limit = limitPerWindow;
    this.windowMs = windowMs;
  }

  /** Counts one request for `key`; returns seconds to wait when over the limit, else 0. */
  take(key: string, now = Date.now()): number {
    const window = Math.floor(now / this.windowMs);
    if (window !== this.#window) {
      this.#window = window;
      this.#counts = new Map();
    }
    const count = (this.#counts.get(key) ?? 0) + 1;
    this.#counts.set(key, count);
    if (count <= this.limit) return 0;
    return Math.max(1, Math.ceil(((window + 1) * this.windowMs - now) / 1000));
  }
}
