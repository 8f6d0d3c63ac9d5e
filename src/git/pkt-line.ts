/**
 * Git's pkt-line framing (gitprotocol-common(5)), as the long-running filter
 * protocol uses it: each packet is four hex digits giving its length
 * (those four included) and then its payload; "0000" is a flush packet.
 * Payloads are at most 65516 bytes.
 */
import type { Readable, Writable } from 'node:stream';
import { MediaGitError } from '../errors.ts';

export const MAX_PKT_PAYLOAD = 65516;
const FLUSH = Buffer.from('0000');

export function pktError(message: string): MediaGitError {
  return new MediaGitError('GIT_PROTOCOL', `git filter protocol: ${message}`, { kind: 'user' });
}

/**
 * Reads packets from a stream; `null` is a flush packet, `undefined` the end
 * of input. A payload is a view that stays valid only until the next read:
 * packets are not copied unless one straddles two reads (a gigabyte of
 * content is 16,000 packets; a copy and an allocation each cost more than
 * the hashing).
 */
export class PktReader {
  readonly #iterator: AsyncIterator<Buffer>;
  /** Unread input: `#chunks[0]` from `#offset` on, then the others whole. */
  readonly #chunks: Buffer[] = [];
  #offset = 0;
  #available = 0;
  #ended = false;
  readonly #packet = Buffer.allocUnsafe(MAX_PKT_PAYLOAD + 4);

  constructor(input: Readable) {
    this.#iterator = input[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  }

  /** Waits until `n` bytes are buffered; false when the input ends first. */
  async #fill(n: number): Promise<boolean> {
    while (this.#available < n && !this.#ended) {
      const next = await this.#iterator.next();
      if (next.done) this.#ended = true;
      else if (next.value.length > 0) {
        this.#chunks.push(next.value);
        this.#available += next.value.length;
      }
    }
    return this.#available >= n;
  }

  /** The next `n` buffered bytes: a view of the input, or of `#packet` when they straddle reads. */
  #take(n: number): Buffer {
    this.#available -= n;
    const first = this.#chunks[0]!;
    if (first.length - this.#offset >= n) {
      const view = first.subarray(this.#offset, this.#offset + n);
      this.#offset += n;
      if (this.#offset === first.length) {
        this.#chunks.shift();
        this.#offset = 0;
      }
      return view;
    }
    let done = 0;
    while (done < n) {
      const chunk = this.#chunks[0]!;
      const count = Math.min(n - done, chunk.length - this.#offset);
      chunk.copy(this.#packet, done, this.#offset, this.#offset + count);
      done += count;
      this.#offset += count;
      if (this.#offset === chunk.length) {
        this.#chunks.shift();
        this.#offset = 0;
      }
    }
    return this.#packet.subarray(0, n);
  }

  async read(): Promise<Buffer | null | undefined> {
    if (!(await this.#fill(4))) {
      if (this.#available === 0) return undefined;
      throw pktError('input ended inside a packet header');
    }
    const header = this.#take(4).toString('latin1');
    if (!/^[0-9a-f]{4}$/.test(header))
      throw pktError(`bad packet header ${JSON.stringify(header)}`);
    const length = parseInt(header, 16);
    if (length === 0) return null;
    if (length < 4 || length - 4 > MAX_PKT_PAYLOAD) throw pktError(`bad packet length ${length}`);
    if (!(await this.#fill(length - 4))) throw pktError('input ended inside a packet');
    return this.#take(length - 4);
  }

  /** Text packets up to the next flush, each without its trailing LF. */
  async readList(): Promise<string[] | undefined> {
    const lines: string[] = [];
    for (;;) {
      const packet = await this.read();
      if (packet === undefined) {
        if (lines.length === 0) return undefined;
        throw pktError('input ended inside a list');
      }
      if (packet === null) return lines;
      const text = packet.toString('utf8');
      lines.push(text.endsWith('\n') ? text.slice(0, -1) : text);
    }
  }
}

/** Writes packets with back-pressure. */
export class PktWriter {
  readonly #output: Writable;

  constructor(output: Writable) {
    this.#output = output;
  }

  async #write(data: Buffer): Promise<void> {
    if (!this.#output.write(data)) {
      await new Promise<void>((resolve, reject) => {
        const onDrain = (): void => {
          this.#output.off('error', onError);
          resolve();
        };
        const onError = (error: Error): void => {
          this.#output.off('drain', onDrain);
          reject(error);
        };
        this.#output.once('drain', onDrain);
        this.#output.once('error', onError);
      });
    }
  }

  async flush(): Promise<void> {
    await this.#write(FLUSH);
  }

  /** Text packets ("key=value"), each ending with LF, then a flush. */
  async list(lines: readonly string[]): Promise<void> {
    const packets = lines.map((line) => frame(Buffer.from(`${line}\n`, 'utf8')));
    await this.#write(Buffer.concat([...packets, FLUSH]));
  }

  /** Content split into packets (no flush). */
  async content(data: Uint8Array): Promise<void> {
    for (let at = 0; at < data.length; at += MAX_PKT_PAYLOAD) {
      const piece = data.subarray(at, Math.min(data.length, at + MAX_PKT_PAYLOAD));
      await this.#write(frame(piece));
    }
  }
}

function frame(payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(payload.length + 4);
  out.write((payload.length + 4).toString(16).padStart(4, '0'), 0, 'latin1');
  out.set(payload, 4);
  return out;
}
