/**
 * Runs the whole-file SHA-256 of a chunked file, and the BLAKE3 IDs of its
 * chunks, on a worker thread fed with ranges of shared buffers (see
 * hash-worker.ts for the protocol): the main thread only reads and cuts.
 */
import type { Worker } from 'node:worker_threads';

const workerUrl = new URL(
  import.meta.url.endsWith('.ts') ? './hash-worker.ts' : './hash-worker.js',
  import.meta.url,
);

export class WholeFileHasher {
  #worker: Worker | undefined;
  #seq = 0;
  readonly #waiting = new Map<
    number,
    { resolve: (ids: string[]) => void; reject: (error: Error) => void }
  >();
  #onDigest: ((digest: string) => void) | undefined;
  #failure: Error | undefined;

  #start(): Worker {
    if (this.#worker) return this.#worker;
    // Loaded when first needed: commands that store no big file skip it.
    const { Worker } = process.getBuiltinModule('node:worker_threads');
    const worker = new Worker(workerUrl);
    worker.unref();
    worker.on('message', (message: { seq?: number; digest?: string; ids?: string[] }) => {
      if (message.digest !== undefined) {
        const done = this.#onDigest;
        this.#onDigest = undefined;
        done?.(message.digest);
      } else if (message.seq !== undefined) {
        const waiter = this.#waiting.get(message.seq);
        this.#waiting.delete(message.seq);
        waiter?.resolve(message.ids ?? []);
      }
    });
    worker.on('error', (error) => {
      this.#failure = error;
      for (const waiter of this.#waiting.values()) waiter.reject(error);
      this.#waiting.clear();
    });
    this.#worker = worker;
    return worker;
  }

  /**
   * Starts a new file over these buffers, views of SharedArrayBuffers (they
   * must not change during it).
   */
  begin(buffers: readonly Uint8Array[]): void {
    const views = buffers.map((view) => {
      if (!(view.buffer instanceof SharedArrayBuffer)) {
        throw new TypeError('WholeFileHasher needs views of SharedArrayBuffers');
      }
      return { sab: view.buffer, offset: view.byteOffset, length: view.length };
    });
    this.#start().postMessage({ buffers: views });
  }

  /** Hashes buffers[buffer][start, end); resolves once the range may be overwritten. */
  async update(buffer: number, start: number, end: number): Promise<void> {
    await this.#request({ buffer, start, end });
  }

  /**
   * The chunk IDs (BLAKE3-256, hex) of buffers[buffer] ranges given as
   * start, length pairs, in order.
   */
  chunkIds(buffer: number, ranges: readonly number[]): Promise<string[]> {
    return this.#request({ buffer, ranges });
  }

  #request(body: object): Promise<string[]> {
    const seq = ++this.#seq;
    return new Promise((resolve, reject) => {
      if (this.#failure) return reject(this.#failure);
      this.#waiting.set(seq, { resolve, reject });
      this.#start().postMessage({ seq, ...body });
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
