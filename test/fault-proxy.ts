/**
 * A fault-injecting HTTP proxy on loopback, for tests of what clients and
 * servers do when the network or a store misbehaves. It forwards each
 * request to `target` and, per the rule that matches the request, may:
 *
 * - `drop-after-answer`: forward the request, let the upstream answer, then
 *   close the client's connection without passing the answer on (the client
 *   cannot know the request was applied: the case retries must survive);
 * - `status`: answer 500/503 itself without forwarding;
 * - `hang`: read the request and never answer (a timeout);
 * - `reset`: close the connection at once, nothing forwarded;
 * - `trickle`: forward both bodies `bytes` at a time, one piece every
 *   `intervalMs` (a slow link that keeps moving).
 *
 * Rules match a method and a path pattern and fire on every `every`-th
 * matching request (1: each), at most `times` times.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FaultRule {
  readonly method?: string;
  readonly path?: RegExp;
  readonly fault: 'drop-after-answer' | 'status' | 'hang' | 'reset' | 'trickle';
  readonly status?: number;
  /** For `trickle`: bytes per piece (64 KiB) and the pause between pieces (200 ms). */
  readonly bytes?: number;
  readonly intervalMs?: number;
  readonly every?: number;
  readonly times?: number;
}

export interface ProxyLog {
  readonly method: string;
  readonly path: string;
  readonly fault: string | undefined;
  readonly status: number | undefined;
}

export class FaultProxy {
  readonly server: http.Server;
  readonly target: URL;
  readonly log: ProxyLog[] = [];
  rules: FaultRule[];
  readonly #seen = new Map<FaultRule, number>();
  readonly #fired = new Map<FaultRule, number>();
  readonly #agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  readonly #hanging = new Set<http.ServerResponse>();

  /** Pass the client's Host header on (signed requests sign it), else name the target. */
  readonly keepHost: boolean;

  private constructor(target: string, rules: FaultRule[], keepHost: boolean) {
    this.target = new URL(target);
    this.rules = rules;
    this.keepHost = keepHost;
    this.server = http.createServer((req, res) => this.#handle(req, res));
    this.server.keepAliveTimeout = 30_000;
  }

  static async start(
    target: string,
    rules: FaultRule[] = [],
    options: { keepHost?: boolean } = {},
  ): Promise<FaultProxy> {
    const proxy = new FaultProxy(target, rules, options.keepHost ?? false);
    await new Promise<void>((resolve) => proxy.server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  get url(): string {
    const { port } = this.server.address() as AddressInfo;
    return `http://127.0.0.1:${port}`;
  }

  /** How many times each kind of fault fired. */
  fired(fault: FaultRule['fault']): number {
    return this.log.filter((entry) => entry.fault === fault).length;
  }

  #ruleFor(req: http.IncomingMessage): FaultRule | undefined {
    for (const rule of this.rules) {
      if (rule.method && rule.method !== req.method) continue;
      if (rule.path && !rule.path.test(req.url ?? '')) continue;
      const seen = (this.#seen.get(rule) ?? 0) + 1;
      this.#seen.set(rule, seen);
      const fired = this.#fired.get(rule) ?? 0;
      if (seen % (rule.every ?? 1) !== 0 || fired >= (rule.times ?? Infinity)) continue;
      this.#fired.set(rule, fired + 1);
      return rule;
    }
    return undefined;
  }

  #handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const rule = this.#ruleFor(req);
    const entry = { method: req.method ?? '', path: req.url ?? '', fault: rule?.fault };
    if (rule?.fault === 'reset') {
      this.log.push({ ...entry, status: undefined });
      req.socket.destroy();
      return;
    }
    if (rule?.fault === 'status') {
      req.resume();
      req.on('end', () => {
        this.log.push({ ...entry, status: rule.status ?? 503 });
        res.writeHead(rule.status ?? 503, { 'content-type': 'text/plain', connection: 'close' });
        res.end('injected fault');
      });
      return;
    }
    if (rule?.fault === 'hang') {
      req.resume();
      this.log.push({ ...entry, status: undefined });
      this.#hanging.add(res);
      return;
    }
    const headers = this.keepHost ? req.headers : { ...req.headers, host: this.target.host };
    const upstream = http.request(
      {
        host: this.target.hostname,
        port: this.target.port,
        method: req.method,
        path: req.url,
        headers,
        agent: this.#agent,
      },
      (answer) => {
        if (rule?.fault === 'drop-after-answer') {
          // The upstream has answered (and so applied the request): read it
          // all, then hang up on the client without a byte of it.
          answer.resume();
          answer.on('end', () => {
            this.log.push({ ...entry, status: answer.statusCode });
            req.socket.destroy();
          });
          return;
        }
        this.log.push({ ...entry, status: answer.statusCode });
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        if (rule?.fault === 'trickle') void trickle(answer, res, rule);
        else answer.pipe(res);
      },
    );
    upstream.on('error', () => req.socket.destroy());
    if (rule?.fault === 'trickle') void trickle(req, upstream, rule);
    else req.pipe(upstream);
  }

  async stop(): Promise<void> {
    for (const res of this.#hanging) res.socket?.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.#agent.destroy();
  }
}

/** Copies `from` to `to` a piece at a time with a pause after each piece. */
async function trickle(
  from: NodeJS.ReadableStream,
  to: NodeJS.WritableStream,
  rule: FaultRule,
): Promise<void> {
  const size = rule.bytes ?? 64 * 1024;
  const pause = rule.intervalMs ?? 200;
  try {
    for await (const part of from as AsyncIterable<Buffer>) {
      for (let at = 0; at < part.length; at += size) {
        to.write(part.subarray(at, at + size));
        await new Promise((resolve) => setTimeout(resolve, pause));
      }
    }
    to.end();
  } catch {
    (to as unknown as { destroy?: () => void }).destroy?.();
  }
}
