/**
 * The reading half of `fsck --full`: every stored copy of every object is
 * read once and verified on worker threads (fsck-worker.ts), one per core.
 *
 * The work is cut into jobs of neighbouring records: a pack is read front to
 * back in runs of up to `RUN_BYTES` (sequential reads are what a disk does
 * fastest), loose objects a batch of files at a time. Each worker keeps two
 * jobs in flight, so one job's read runs while the other's bytes are hashed.
 * The workers are started before the jobs are known (`Verifiers`), so that
 * their start-up runs while the main thread lists the objects.
 */
import os from 'node:os';
import type { Worker } from 'node:worker_threads';
import type { ObjectId } from '../odb/object-id.ts';
import type { ObjectTypeName } from '../odb/object-store.ts';

/** One record inside a segment: `offset` from the segment's start; length -1: to its end. */
export interface VerifyRecord {
  readonly id: ObjectId;
  readonly offset: number;
  readonly length: number;
}

/** A range of one file (length -1: the whole file) and the records in it. */
export interface VerifySegment {
  readonly file: string;
  readonly start: number;
  readonly length: number;
  readonly records: readonly VerifyRecord[];
}

export interface VerifyJob {
  readonly segments: readonly VerifySegment[];
  /** Bytes the job reads, for progress. */
  readonly bytes: number;
}

export interface VerifyResult {
  readonly id: ObjectId;
  readonly ok: boolean;
  /** From the header, when it decoded. */
  readonly type?: ObjectTypeName;
  readonly rawSize?: number;
  /** A delta's bases and chain depth. */
  readonly bases?: readonly ObjectId[];
  readonly depth?: number;
  readonly reason?: string;
  /** The record's stored length (header + payload). */
  readonly stored?: number;
  /** When the content does not match the ID: the ID it does match. */
  readonly actualId?: ObjectId;
  /** The verified content of a commit, tree, tag or manifest. */
  readonly data?: Uint8Array;
}

/**
 * Pack records are grouped into runs of up to this many bytes (a larger
 * record is a run alone). A run is one job; the worker reads it in pieces
 * of `READ_PIECE` (fsck-worker.ts), so the run's size only sets how much
 * work one message carries.
 */
export const RUN_BYTES = 32 * 1024 * 1024;
/** Loose objects per job. */
export const LOOSE_PER_JOB = 16;
const IN_FLIGHT_PER_WORKER = 2;
/** More workers than this only add start-up cost: reading and hashing are memory-bound. */
const MAX_WORKERS = 4;

const workerUrl = new URL(
  import.meta.url.endsWith('.ts') ? './fsck-worker.ts' : './fsck-worker.js',
  import.meta.url,
);

/**
 * The worker threads of one check: one per core (at most MAX_WORKERS),
 * started at construction. `run` hands them jobs; `close` ends them.
 */
export class Verifiers {
  readonly #workers: Worker[] = [];
  #seq = 0;
  #closing = false;
  /** Why a worker died (it takes no more jobs). */
  #failure: Error | undefined;
  #onFailure: ((error: Error) => void) | undefined;
  #onMessage:
    | ((
        worker: Worker,
        message: { seq: number; results?: VerifyResult[]; failure?: string },
      ) => void)
    | undefined;

  constructor(options: {
    readonly objectsDir: string;
    readonly tmpDir: string;
    /** An encrypted repository's key material (ObjectCipher.material). */
    readonly cipher?: { readonly master: Buffer; readonly repository: string } | undefined;
  }) {
    const { Worker } = process.getBuiltinModule('node:worker_threads');
    const count = Math.max(1, Math.min(MAX_WORKERS, os.availableParallelism()));
    for (let w = 0; w < count; w++) {
      const worker = new Worker(workerUrl);
      this.#workers.push(worker);
      const died = (error: Error): void => {
        this.#failure ??= error;
        this.#onFailure?.(error);
      };
      worker.on('error', died);
      worker.on('exit', (code) => {
        if (!this.#closing) died(new Error(`fsck worker stopped (exit code ${code})`));
      });
      worker.on('message', (message: { seq: number; results?: VerifyResult[]; failure?: string }) =>
        this.#onMessage?.(worker, message),
      );
      worker.postMessage({
        objectsDir: options.objectsDir,
        tmpDir: options.tmpDir,
        cipher: options.cipher,
      });
    }
  }

  /**
   * Runs `jobs` and hands each job's results to `onResults` (in completion
   * order). Resolves when all are done; rejects on the first failure of a
   * worker (a record that fails verification is a result, not a failure).
   * One run at a time.
   */
  async run(
    jobs: readonly VerifyJob[],
    options: {
      readonly signal?: AbortSignal | undefined;
      readonly onResults: (job: VerifyJob, results: readonly VerifyResult[]) => void;
    },
  ): Promise<void> {
    if (jobs.length === 0) return;
    if (this.#failure) throw this.#failure;
    let next = 0;
    try {
      await new Promise<void>((resolve, reject) => {
        let outstanding = 0;
        let failed = false;
        const pending = new Map<number, VerifyJob>();
        const fail = (error: unknown): void => {
          if (failed) return;
          failed = true;
          reject(error instanceof Error ? error : new Error(String(error)));
        };
        const feed = (worker: Worker): void => {
          if (failed) return;
          if (options.signal?.aborted) return fail(options.signal.reason);
          const job = jobs[next];
          if (job === undefined) {
            if (outstanding === 0) resolve();
            return;
          }
          next++;
          outstanding++;
          const id = ++this.#seq;
          pending.set(id, job);
          worker.postMessage({ seq: id, job });
        };
        this.#onFailure = fail;
        this.#onMessage = (worker, message) => {
          const job = pending.get(message.seq);
          pending.delete(message.seq);
          outstanding--;
          if (message.failure !== undefined || !job) return fail(new Error(message.failure));
          try {
            options.onResults(job, message.results ?? []);
          } catch (error) {
            return fail(error);
          }
          feed(worker);
          if (next >= jobs.length && outstanding === 0) resolve();
        };
        for (let i = 0; i < IN_FLIGHT_PER_WORKER; i++) {
          for (const worker of this.#workers) feed(worker);
        }
      });
    } finally {
      this.#onFailure = undefined;
      this.#onMessage = undefined;
    }
  }

  async close(): Promise<void> {
    this.#closing = true;
    const workers = this.#workers.splice(0);
    await Promise.all(workers.map((worker) => worker.terminate()));
  }
}
