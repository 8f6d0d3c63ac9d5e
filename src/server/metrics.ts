/**
 * The server's Prometheus metrics (`GET /metrics`), one registry per server
 * instance; every metric is listed in docs/observability.md. The exposition
 * passes `promtool check metrics` with no lint findings (a test runs it).
 */
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Request latency buckets (seconds): a 1 ms metadata read to a multi-minute pack upload. */
const HTTP_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];
/** Storage operation buckets (seconds): a local read under 1 ms to a cloud put past 10 s. */
const STORAGE_BUCKETS = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 30,
];

export class ServerMetrics {
  readonly registry = new Registry();
  readonly requests = new Counter({
    name: 'mediagit_http_requests_total',
    help: 'HTTP requests by method, route and status',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [this.registry],
  });
  readonly latency = new Histogram({
    name: 'mediagit_http_request_duration_seconds',
    help: 'HTTP request latency (until the answer is handed to the socket) by method, route and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: HTTP_BUCKETS,
    registers: [this.registry],
  });
  readonly bytesIn = new Counter({
    name: 'mediagit_http_bytes_received_total',
    help: 'Request body bytes received (bodies that arrived whole)',
    registers: [this.registry],
  });
  readonly bytesOut = new Counter({
    name: 'mediagit_http_bytes_sent_total',
    help: 'Response body bytes sent',
    registers: [this.registry],
  });
  readonly chunksStored = new Counter({
    name: 'mediagit_chunks_stored_total',
    help: 'Chunks uploaded and stored',
    registers: [this.registry],
  });
  readonly chunksDeduplicated = new Counter({
    name: 'mediagit_chunks_deduplicated_total',
    help: 'Chunks a client did not need to send (already stored), from chunks/check and uploads',
    registers: [this.registry],
  });
  readonly refUpdates = new Counter({
    name: 'mediagit_ref_updates_total',
    help: 'Ref updates by result',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly authFailures = new Counter({
    name: 'mediagit_auth_failures_total',
    help: 'Requests refused for missing or bad credentials or scopes',
    labelNames: ['status'] as const,
    registers: [this.registry],
  });
  readonly rateLimited = new Counter({
    name: 'mediagit_rate_limited_total',
    help: 'Requests refused with 429',
    labelNames: ['limit'] as const,
    registers: [this.registry],
  });
  /**
   * One storage operation of the interface (get, getRange, put, head, list,
   * delete, sign) on a repository's backend, retries inside it included;
   * failed operations are observed too.
   */
  readonly storageLatency = new Histogram({
    name: 'mediagit_storage_operation_duration_seconds',
    help: 'Storage backend operation latency by operation (failures included)',
    labelNames: ['operation'] as const,
    buckets: STORAGE_BUCKETS,
    registers: [this.registry],
  });
  /**
   * Failed storage operations by error code: STORAGE_NOT_FOUND and
   * STORAGE_PRECONDITION_FAILED are answers the server expects and acts on
   * (a missing object, a lost compare-and-swap); STORAGE_UNAVAILABLE,
   * STORAGE_ACCESS_DENIED, STORAGE_NO_BUCKET and STORAGE_FAILED are the
   * store failing.
   */
  readonly storageErrors = new Counter({
    name: 'mediagit_storage_operation_errors_total',
    help: 'Storage backend operations that failed, by operation and error code',
    labelNames: ['operation', 'code'] as const,
    registers: [this.registry],
  });
  /** Server-side gc runs by result (ok, failed); incremented by the gc code. */
  readonly gcRuns = new Counter({
    name: 'mediagit_gc_runs_total',
    help: 'Garbage collections of served repositories by result',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly gcBytesReclaimed = new Counter({
    name: 'mediagit_gc_bytes_reclaimed_total',
    help: 'Bytes of storage freed by garbage collections of served repositories',
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({
      register: this.registry,
      prefix: 'mediagit_',
      // The event-loop lag histogram samples every 100 ms, not prom-client's
      // 10 ms: its timer woke an idle server 100 times a second (measured
      // 3-5 ms of CPU per second idle, ~25 ms during a 1 GiB push); 150
      // samples per 15 s scrape still give its percentiles.
      eventLoopMonitoringPrecision: 100,
    });
    // prom-client's `*_total` gauges break Prometheus naming (`_total` is
    // for counters; promtool flags them): each is the sum over the `type`
    // label of the gauge of the same name without `_total`, kept.
    for (const name of ['active_handles', 'active_requests', 'active_resources']) {
      this.registry.removeSingleMetric(`mediagit_nodejs_${name}_total`);
    }
  }
}
