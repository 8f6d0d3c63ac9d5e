/** The server's Prometheus metrics (`GET /metrics`), one registry per server instance. */
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

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
    help: 'HTTP request latency by method and route',
    labelNames: ['method', 'route'] as const,
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
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
  }
}
