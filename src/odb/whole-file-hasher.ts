/**
 * Runs the whole-file SHA-256 of a chunked file on a worker thread, fed with
 * ranges of shared buffers in file order (see hash-worker.ts for the protocol).
 */
import { Worker } from 'node:worker_threads';

const workerUrl = new URL(
  import.meta.url.endsWith('.ts') ? './hash-worker.ts' : './hash-worker.js',
  import.meta.url,
);

export class WholeFileHasher {
  #worker: Worker | undefined;
  #seq = 0;
  readonly #waiting = new Map<number, () => void>();
  #onDigest: ((digest: string) => void) | undefined;
  #failure: Error | undefined;

  #start(): Worker {
    if (this.#worker) return this.#worker;
    const worker = new Worker(workerUrl);
    worker.unref();
    worker.on('message', (message: { seq?: number; digest?: string }) => {
      if (message.digest !== undefined) {
        const done = this.#onDigest;
        this.#onDigest = undefined;
        done?.(message.digest);
      } else if (message.seq !== undefined) {
        const resolve = this.#waiting.get(message.seq);
        this.#waiting.delete(message.seq);
        resolve?.();
      }
    });
    worker.on('error', (error) => {
      this.#failure = error;
      for (const resolve of this.#waiting.values()) resolve();
      this.#waiting.clear();
    });
    this.#worker = worker;
    return worker;
  }

  /** Starts a new file over these buffers (their identity must not change during it). */
  begin(buffers: SharedArrayBuffer[]): void {
    this.#start().postMessage({ buffers });
  }

  /** Hashes buffers[buffer][start, end); resolves once the range may be overwritten. */
  update(buffer: number, start: number, end: number): Promise<void> {
    const seq = ++this.#seq;
    return new Promise((resolve) => {
      this.#waiting.set(seq, resolve);
      this.#start().postMessage({ seq, buffer, start, end });
    });
  }

  finish(): Promise<string> {
    return new Promise((resolve, reject) => {
      if (this.#failure) return reject(this.#failure);
      this.#onDigest = resolve;
      this.#start().postMessage({ finish: true });
    });
  }

  async close(): Promise<void> {
    const worker = this.#worker;
    this.#worker = undefined;
    if (worker) await worker.terminate();
  }
}
