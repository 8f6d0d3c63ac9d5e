/**
 * A storage backend seen through the server's metrics: every operation of
 * the interface (storage/backend.ts) is timed into
 * `mediagit_storage_operation_duration_seconds{operation}` and every failure
 * counted in `mediagit_storage_operation_errors_total{operation,code}`.
 * `child` stores are metered too, so a repository's whole backend is.
 *
 * It is a Proxy, not a wrapper class, on purpose: code that recognises a
 * backend by its class (a repository on the file backend is written in
 * place by the Git LFS upload path, protocol/lfs-objects.ts) must keep
 * recognising it, and everything that is not an operation (`url`,
 * `capabilities`, `root`, …) passes through untouched. What such code
 * writes without the interface is not metered.
 */
import { MediaGitError } from '../errors.ts';
import type { StorageBackend } from '../storage/backend.ts';
import type { ServerMetrics } from './metrics.ts';

type Operation = 'get' | 'getRange' | 'put' | 'head' | 'delete' | 'sign';
const TIMED = new Set<PropertyKey>(['get', 'getRange', 'put', 'head', 'delete', 'sign']);

type StorageMetrics = Pick<ServerMetrics, 'storageLatency' | 'storageErrors'>;

/** The error code a failure is counted under (bounded: MediaGitError codes, else OTHER). */
function codeOf(error: unknown): string {
  return error instanceof MediaGitError ? error.code : 'OTHER';
}

/** `backend` with its operations timed and their failures counted. */
export function meteredBackend<T extends StorageBackend>(backend: T, metrics: StorageMetrics): T {
  const bound = new Map<PropertyKey, unknown>();
  const failed = (operation: string, error: unknown): void => {
    metrics.storageErrors.inc({ operation, code: codeOf(error) });
  };
  const timed = (operation: Operation, run: (...args: unknown[]) => Promise<unknown>) => {
    return async (...args: unknown[]): Promise<unknown> => {
      const stop = metrics.storageLatency.startTimer({ operation });
      try {
        return await run.apply(backend, args);
      } catch (error) {
        failed(operation, error);
        throw error;
      } finally {
        stop();
      }
    };
  };
  // A listing is one operation: the time spent waiting for its keys (not
  // the time its reader spends between them), observed once it ends.
  const list = async function* (prefix: string): AsyncIterable<string> {
    const iterator = backend.list(prefix)[Symbol.asyncIterator]();
    let waited = 0;
    let done = false;
    try {
      for (;;) {
        const started = process.hrtime.bigint();
        let next: IteratorResult<string>;
        try {
          next = await iterator.next();
        } catch (error) {
          failed('list', error);
          throw error;
        } finally {
          waited += Number(process.hrtime.bigint() - started) / 1e9;
        }
        if (next.done) {
          done = true;
          return;
        }
        yield next.value;
      }
    } finally {
      metrics.storageLatency.observe({ operation: 'list' }, waited);
      if (!done) await iterator.return?.();
    }
  };
  return new Proxy(backend, {
    get(target, property) {
      if (property === 'list') return list;
      if (property === 'child') {
        return (prefix: string) => meteredBackend(target.child(prefix), metrics);
      }
      const value: unknown = Reflect.get(target, property, target);
      if (typeof value !== 'function') return value;
      let fn = bound.get(property);
      if (fn === undefined) {
        fn = TIMED.has(property)
          ? timed(property as Operation, value as (...args: unknown[]) => Promise<unknown>)
          : (value as (...args: unknown[]) => unknown).bind(target);
        bound.set(property, fn);
      }
      return fn;
    },
  });
}
