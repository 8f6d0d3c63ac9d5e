/**
 * Ranged GETs whose bodies are read from the socket straight into the
 * caller's buffer: the pack reads of a fetch or clone (up to 8 MiB each, a
 * GiB in all). Node's HTTP client copies every body byte into a new 64 KiB
 * buffer and hands it to JavaScript, which copied it once more into the
 * pooled body; for a 1 GiB clone that was ~0.5 s of the main thread in
 * memcpy and page faults, and 100-170 MiB of garbage buffers at peak
 * (docs/design.md, "Reading pack ranges").
 *
 * The socket's `onread` option makes libuv (or TLS) read into memory of our
 * choosing: the response head into a small buffer, then the body into the
 * caller's buffer at its offset, never past the announced length. HTTP/1.1
 * only, one request per connection at a time, kept alive between requests.
 * Anything a range read does not expect (no Content-Length, chunked, a body
 * larger than the buffer) ends that connection; errors bodies are collected
 * whole when small, so the caller can quote them.
 */
import type net from 'node:net';
import type tls from 'node:tls';
import { tlsConnectOptions, type TlsClientOptions } from '../security/tls-client.ts';

/** Largest response head accepted. */
/** The code of the error for an answer that breaks HTTP or asks to be read past what was asked. */
export const BAD_ANSWER = 'EBADANSWER';
const HEAD_BYTES = 64 * 1024;
/** Largest error body kept for the caller's message. */
const ERROR_BODY_BYTES = 64 * 1024;

export interface RangeResponse {
  readonly status: number;
  /** Header names in lower case; repeated headers joined with ", ". */
  readonly headers: Record<string, string>;
  /**
   * The body: a view of the buffer `into` gave for a successful answer, or
   * a buffer of its own (an error's body, at most ERROR_BODY_BYTES; empty
   * when there was none or it could not be framed).
   */
  readonly body: Buffer;
  /** Whether `body` is a view of the buffer from `into`. */
  readonly intoBuffer: boolean;
}

export interface RangeGetOptions {
  /** Extra request headers (Range among them). */
  readonly headers: Readonly<Record<string, string>>;
  /** For a 2xx answer of `length` bytes: the buffer to read it into (at least that long). */
  readonly into: (length: number) => Buffer | undefined;
  /** Fails with ETIMEDOUT after this long without a byte. */
  readonly idleTimeoutMs: number;
  readonly signal?: AbortSignal | undefined;
}

interface Exchange {
  /** Head bytes received so far; -1 once the head is parsed. */
  head: number;
  status: number;
  headers: Record<string, string>;
  /** Where body bytes go, and how many are wanted and arrived. */
  body: Buffer | undefined;
  want: number;
  got: number;
  intoBuffer: boolean;
  /** The body's length is unknown (an error answered chunked): the connection ends after the head. */
  unframed: boolean;
  readonly into: RangeGetOptions['into'];
  resolve: (response: RangeResponse) => void;
  reject: (error: Error) => void;
  /** No byte of the response has arrived yet (a reused socket closing now is retried). */
  fresh: boolean;
  keepAlive: boolean;
}

/** One kept-alive connection and the exchange running on it, if any. */
class Connection {
  readonly origin: string;
  readonly socket: net.Socket;
  readonly #head = Buffer.allocUnsafe(HEAD_BYTES);
  #exchange: Exchange | undefined;
  /** Requests this connection has served (a retry is only safe on a reused one). */
  served = 0;

  constructor(url: URL, trust: TlsClientOptions, onClose: (c: Connection) => void) {
    this.origin = url.origin;
    const port = Number(url.port) || (url.protocol === 'https:' ? 443 : 80);
    const host = url.hostname.replace(/^\[|\]$/g, '');
    const onread = {
      buffer: (): Buffer => this.#nextBuffer(),
      callback: (n: number): boolean => this.#received(n),
    };
    this.socket =
      url.protocol === 'https:'
        ? // `onread` works for TLS sockets too (Node's tls.connect docs); the types omit it.
          process.getBuiltinModule('node:tls').connect({
            host,
            port,
            servername: process.getBuiltinModule('node:net').isIP(host) ? undefined : host,
            ALPNProtocols: ['http/1.1'],
            ...tlsConnectOptions(trust),
            onread,
          } as tls.ConnectionOptions)
        : // Loaded on first use, as http-transport.ts does with Node's HTTP stack.
          process.getBuiltinModule('node:net').connect({ host, port, onread });
    this.socket.setNoDelay(true);
    this.socket.on('timeout', () => {
      this.socket.destroy(
        Object.assign(new Error('no progress (idle timeout)'), { code: 'ETIMEDOUT' }),
      );
    });
    this.socket.on('error', (error) => this.#fail(error));
    this.socket.on('end', () => this.socket.destroy());
    this.socket.on('close', () => {
      this.#fail(
        Object.assign(new Error('the connection closed mid-response'), { code: 'ECONNRESET' }),
      );
      onClose(this);
    });
  }

  /** Open and between exchanges: may carry the next request. */
  get reusable(): boolean {
    return this.#exchange === undefined && !this.socket.destroyed;
  }

  send(request: string, exchange: Exchange, idleTimeoutMs: number): void {
    this.#exchange = exchange;
    this.socket.ref();
    this.socket.setTimeout(idleTimeoutMs);
    this.socket.write(request);
  }

  /** Where the next read lands: the body's unread part, else the head buffer. */
  #nextBuffer(): Buffer {
    const exchange = this.#exchange;
    if (exchange?.body && exchange.head < 0)
      return exchange.body.subarray(exchange.got, exchange.want);
    return this.#head.subarray(exchange && exchange.head > 0 ? exchange.head : 0);
  }

  /** `n` bytes arrived in the buffer #nextBuffer gave (so body bytes are already in place). */
  #received(n: number): boolean {
    const exchange = this.#exchange;
    if (!exchange) {
      // Bytes nobody asked for: this connection's framing is lost.
      this.socket.destroy();
      return false;
    }
    exchange.fresh = false;
    if (exchange.head >= 0) {
      exchange.head += n;
      const end = this.#head.indexOf('\r\n\r\n', Math.max(0, exchange.head - n - 3));
      if (end < 0 || end + 4 > exchange.head) {
        if (exchange.head >= HEAD_BYTES) this.#abort('the response head is too large');
        return true;
      }
      if (!this.#parseHead(exchange, this.#head.toString('latin1', 0, end))) return false;
      let extra = this.#head.subarray(end + 4, exchange.head);
      exchange.head = -1;
      if (exchange.unframed) extra = extra.subarray(0, 0);
      if (extra.length > exchange.want) return this.#abort('the response is longer than announced');
      extra.copy(exchange.body!, 0);
      exchange.got = extra.length;
    } else {
      exchange.got += n;
    }
    if (exchange.got === exchange.want) this.#complete(exchange);
    return true;
  }

  /** Reads the status and headers; decides where the body goes. */
  #parseHead(exchange: Exchange, text: string): boolean {
    const lines = text.split('\r\n');
    const status = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '');
    if (!status) return this.#abort('the answer is not HTTP/1.x');
    exchange.status = Number(status[1]);
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      if (colon <= 0) continue;
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      exchange.headers[name] =
        name in exchange.headers ? `${exchange.headers[name]}, ${value}` : value;
    }
    const connection = (exchange.headers['connection'] ?? '').toLowerCase();
    exchange.keepAlive = !connection.includes('close') && !lines[0]!.startsWith('HTTP/1.0');
    const lengthText = exchange.headers['content-length'];
    const length = lengthText !== undefined && /^\d+$/.test(lengthText) ? Number(lengthText) : NaN;
    const ok = exchange.status >= 200 && exchange.status < 300;
    if (!Number.isSafeInteger(length) || exchange.headers['transfer-encoding'] !== undefined) {
      if (ok) return this.#abort('a range answer without a Content-Length');
      // An error without a framed body: its status says enough.
      exchange.keepAlive = false;
      exchange.unframed = true;
      exchange.want = 0;
      exchange.body = Buffer.alloc(0);
      return true;
    }
    exchange.want = length;
    if (ok) {
      const into = exchange.into(length);
      if (!into || into.length < length) return this.#abort('the answer is larger than asked for');
      exchange.body = into;
      exchange.intoBuffer = true;
    } else if (length <= ERROR_BODY_BYTES) {
      exchange.body = Buffer.allocUnsafe(length);
    } else {
      // A large error body is not worth reading: answer with the status alone.
      exchange.keepAlive = false;
      exchange.unframed = true;
      exchange.want = 0;
      exchange.body = Buffer.alloc(0);
    }
    return true;
  }

  #complete(exchange: Exchange): void {
    this.#exchange = undefined;
    this.served++;
    const body = exchange.body!.subarray(0, exchange.want);
    if (exchange.keepAlive) {
      this.socket.setTimeout(0);
      this.socket.unref();
    } else this.socket.destroy();
    exchange.resolve({
      status: exchange.status,
      headers: exchange.headers,
      body,
      intoBuffer: exchange.intoBuffer,
    });
  }

  #abort(message: string): false {
    this.socket.destroy(Object.assign(new Error(message), { code: BAD_ANSWER }));
    return false;
  }

  #fail(error: Error): void {
    const exchange = this.#exchange;
    if (!exchange) return;
    this.#exchange = undefined;
    this.socket.destroy();
    exchange.reject(
      Object.assign(error, { reusedSocket: exchange.fresh && this.served > 0 }) as Error,
    );
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** Ranged GETs over kept-alive connections, at most `maxSockets` per origin. */
export class RangeClient {
  readonly #trust: TlsClientOptions;
  readonly #maxSockets: number;
  readonly #idle = new Map<string, Connection[]>();
  readonly #open = new Set<Connection>();
  #closed = false;

  constructor(options: TlsClientOptions & { maxSockets: number }) {
    this.#trust = tlsConnectOptions(options);
    this.#maxSockets = options.maxSockets;
  }

  /** GETs `url` with `options.headers`; the body of a 2xx answer lands in `options.into`. */
  async get(url: URL, options: RangeGetOptions): Promise<RangeResponse> {
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new Error(`cannot GET ${url.protocol} URLs`);
    }
    const host = url.port ? `${url.hostname}:${url.port}` : url.hostname;
    const lines = [`GET ${url.pathname}${url.search} HTTP/1.1`, `host: ${host}`];
    for (const [name, value] of Object.entries(options.headers)) {
      if (/[\r\n:]/.test(name) || /[\r\n]/.test(value)) throw new Error(`bad header ${name}`);
      lines.push(`${name}: ${value}`);
    }
    const request = `${lines.join('\r\n')}\r\n\r\n`;
    for (;;) {
      options.signal?.throwIfAborted();
      const connection = this.#take(url);
      try {
        return await this.#exchange(connection, request, options);
      } catch (error) {
        // A kept-alive connection the other end had closed: try a new one, once per such.
        if ((error as { reusedSocket?: boolean }).reusedSocket === true) continue;
        throw error;
      }
    }
  }

  #exchange(
    connection: Connection,
    request: string,
    options: RangeGetOptions,
  ): Promise<RangeResponse> {
    return new Promise<RangeResponse>((resolve, reject) => {
      const signal = options.signal;
      const onAbort = (): void => connection.destroy();
      signal?.addEventListener('abort', onAbort, { once: true });
      const done = (): void => {
        signal?.removeEventListener('abort', onAbort);
        if (connection.reusable) this.#release(connection);
      };
      connection.send(
        request,
        {
          head: 0,
          status: 0,
          headers: {},
          body: undefined,
          want: 0,
          got: 0,
          intoBuffer: false,
          unframed: false,
          into: options.into,
          fresh: true,
          keepAlive: true,
          resolve: (response) => {
            done();
            resolve(response);
          },
          reject: (error) => {
            done();
            reject(signal?.aborted ? signal.reason : error);
          },
        },
        options.idleTimeoutMs,
      );
    });
  }

  #take(url: URL): Connection {
    if (this.#closed) throw new Error('the range client is closed');
    const origin = url.origin;
    const idle = this.#idle.get(origin);
    while (idle && idle.length > 0) {
      const connection = idle.pop()!;
      if (connection.reusable) return connection;
    }
    const connection = new Connection(url, this.#trust, (closed) => {
      this.#open.delete(closed);
      const list = this.#idle.get(origin);
      const at = list?.indexOf(closed) ?? -1;
      if (at >= 0) list!.splice(at, 1);
    });
    this.#open.add(connection);
    return connection;
  }

  #release(connection: Connection): void {
    const list = this.#idle.get(connection.origin) ?? [];
    if (this.#closed || list.length >= this.#maxSockets) {
      connection.destroy();
      return;
    }
    list.push(connection);
    this.#idle.set(connection.origin, list);
  }

  close(): void {
    this.#closed = true;
    for (const connection of this.#open) connection.destroy();
    this.#open.clear();
    this.#idle.clear();
  }
}
