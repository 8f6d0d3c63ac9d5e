/**
 * Moving objects in cloud packs (odb/cloud-pack.ts, docs/protocol.md):
 *
 * - `sendInPacks` (push): the objects the remote lacks go into packs of at
 *   most 48 MiB (a server accepts up to 64 MiB), filled in the order given (a file's chunks in file order,
 *   then metadata), so the same objects make the same packs again: a push
 *   interrupted and rerun finds the packs it already uploaded
 *   (`packs/begin` says they are present) and sends only the rest. Each
 *   pack goes straight to the store when the server hands out a signed
 *   request, else through the server; then one `packs/commit` makes them all
 *   visible, before any ref moves.
 * - `receiveFromPacks` (fetch, clone): the server says where each object is
 *   (`objects/locate`); neighbouring records of a pack are read with one
 *   ranged GET (gaps up to `COALESCE_GAP` bytes are read and dropped, ranges
 *   up to `MAX_RANGE` bytes), several in flight; every record is verified
 *   against its ID before anyone sees it.
 */
import { MediaGitError } from '../errors.ts';
import {
  CloudPackWriter,
  MAX_CLOUD_PACK_BYTES,
  planCloudPacks,
  type PlannedCloudPack,
} from '../odb/cloud-pack.ts';
import type { ObjectId } from '../odb/object-id.ts';
import { decodeRecord, type DecodedRecord, type RecordCheck } from '../odb/record.ts';
import type { LocatedPack, PackCommit, PackUploadPlan } from './service.ts';
import type { Transport } from './transport.ts';

/** Reads beyond this gap between two wanted records start a new range. */
export const COALESCE_GAP = 256 * 1024;
/** Longest ranged read (fits the transports' pooled body buffers). */
export const MAX_RANGE = 8 * 1024 * 1024;
/** Packs uploaded at once (each holds a pack-sized buffer). */
/**
 * Packs uploading while the next one fills: two buffers in all, so a push
 * stays under its memory goal (300 MiB peak RSS, bench:cloud; a second
 * upload in flight needs a third buffer and measured 335 MiB with 64 MiB
 * packs).
 */
const UPLOADS_IN_FLIGHT = 1;
/**
 * The size a push cuts its packs at: 48 MiB, below the 64 MiB a server
 * accepts, for memory (64 MiB packs peaked at 312 MiB RSS). A 1 GiB push is
 * 22 packs and an index: 25 PUTs counted at s3rver (limit: 32).
 */
const PUSH_PACK_BYTES = 48 * 1024 * 1024;

/**
 * Packs a git-lfs transfer agent uploads at once while the next fills (three
 * 48 MiB buffers in all): the server receives one pack while it hashes and
 * writes the one before. The server keeps one more pack body than this.
 */
export const AGENT_PACKS_IN_FLIGHT = 2;
/** Ranged pack reads in flight during a fetch or clone (up to 8 MiB each). */
const RANGE_READS_IN_FLIGHT = 4;

export interface SendStats {
  packs: number;
  /** Packs the remote already had (a resumed push). */
  packsPresent: number;
  objects: number;
  bytes: number;
  /** `packs/begin` requests made (one per `BEGIN_BATCH` planned packs, one per unplanned pack). */
  begins: number;
}

/** Planned packs asked about in one `packs/begin`. */
const BEGIN_BATCH = 32;
/** Record tables sent with `packs/commit` up to this many bytes in all; later packs by name. */
const COMMIT_TABLE_BYTES = 4 * 1024 * 1024;
/** A planned pack whose signed upload expires sooner than this is begun again. */
const SIGNED_MARGIN_MS = 10 * 60 * 1000;
/** Record sizes looked up at once while planning. */
const SIZE_LOOKUPS = 16;

/**
 * Uploads finished cloud packs (at most UPLOADS_IN_FLIGHT at once, while
 * the next one fills) and commits them all at the end: what `sendInPacks`
 * and `PackStream` share.
 */
class PackSender {
  readonly stats: SendStats = { packs: 0, packsPresent: 0, objects: 0, bytes: 0, begins: 0 };
  readonly limit: number;
  readonly #transport: Transport;
  readonly #plans = new Map<string, PackUploadPlan>();
  readonly #free: Buffer[];
  readonly #committed: PackCommit[] = [];
  readonly #uploads = new Set<Promise<void>>();
  readonly #onSent: ((packBytes: number) => void) | undefined;
  readonly #inFlight: number;
  /** The LFS object whose packs these are, numbered in order (upload-hashes.ts). */
  readonly #file: ObjectId | undefined;
  #seq = 0;
  /** Whether the file's packs are still numbered (until one is found already stored). */
  #numbered = true;
  #tableBytes = 0;
  #failure: unknown;

  constructor(
    transport: Transport,
    limit: number,
    options: {
      onSent?: (packBytes: number) => void;
      inFlight?: number | undefined;
      file?: ObjectId | undefined;
      /** Free pack buffers to take from and give back to (kept by the caller for its next files). */
      buffers?: Buffer[] | undefined;
    } = {},
  ) {
    this.#transport = transport;
    this.#free = options.buffers ?? [];
    this.limit = limit;
    this.#onSent = options.onSent;
    this.#inFlight = options.inFlight ?? UPLOADS_IN_FLIGHT;
    this.#file = options.file;
  }

  /** A pack-sized buffer: one a finished upload gave back, else a new one. */
  buffer(): Buffer {
    const free = this.#free.pop();
    return free?.length === this.limit ? free : Buffer.allocUnsafeSlow(this.limit);
  }

  /** Gives back a buffer no pack was made in. */
  giveBack(buffer: Buffer): void {
    this.#free.push(buffer);
  }

  async begin(packs: readonly { name: string; size: number }[]): Promise<void> {
    this.stats.begins++;
    for (const plan of await this.#transport.beginPacks(packs)) this.#plans.set(plan.name, plan);
  }

  async #upload(
    pack: { name: string; bytes: Buffer },
    buffer: Buffer,
    seq: number | undefined,
  ): Promise<void> {
    try {
      // Unplanned, or planned so long ago that its signed upload is about to expire (a slow link).
      const planned = this.#plans.get(pack.name);
      const expires = planned?.upload ? Date.parse(planned.upload.expires) : Infinity;
      if (!planned || expires - Date.now() < SIGNED_MARGIN_MS) {
        await this.begin([{ name: pack.name, size: pack.bytes.length }]);
      }
      const plan = this.#plans.get(pack.name);
      this.#plans.delete(pack.name);
      if (plan?.present) this.stats.packsPresent++;
      else {
        const file =
          this.#file === undefined || seq === undefined ? undefined : { oid: this.#file, seq };
        await this.#transport.putPack(pack.name, pack.bytes, plan?.upload, file);
        this.stats.bytes += pack.bytes.length;
      }
      this.stats.packs++;
      this.#onSent?.(pack.bytes.length);
    } finally {
      this.#free.push(buffer);
    }
  }

  /** Finishes a pack and uploads it while the next one fills (at most UPLOADS_IN_FLIGHT). */
  async flush(writer: CloudPackWriter, buffer: Buffer): Promise<void> {
    const pack = writer.finish();
    this.stats.objects += pack.entries.length;
    if (this.#tableBytes + pack.table.length <= COMMIT_TABLE_BYTES) {
      this.#tableBytes += pack.table.length;
      this.#committed.push({
        name: pack.name,
        size: pack.bytes.length,
        table: Buffer.from(pack.table),
      });
    } else this.#committed.push(pack.name);
    const seq = await this.#number(pack);
    const running = this.#upload(pack, buffer, seq).catch((error: unknown) => {
      this.#failure ??= error;
    });
    this.#uploads.add(running);
    void running.finally(() => this.#uploads.delete(running));
    while (this.#uploads.size > this.#inFlight) await Promise.race(this.#uploads);
    if (this.#failure !== undefined) throw this.#failure;
  }

  /**
   * The number of a file's pack for the server, which hashes the file's
   * packs in that order (upload-hashes.ts); undefined when not numbered. A
   * pack the server already has (a rerun) is not sent, so the numbering
   * stops there: a later pack numbered past it would wait on the server for
   * one that never comes (5 s), and the file is read back to hash it
   * instead. So the file's packs are begun in order, here, before upload.
   */
  async #number(pack: { name: string; bytes: Buffer }): Promise<number | undefined> {
    if (this.#file === undefined || !this.#numbered) return undefined;
    await this.begin([{ name: pack.name, size: pack.bytes.length }]);
    if (this.#plans.get(pack.name)?.present) {
      this.#numbered = false;
      return undefined;
    }
    return this.#seq++;
  }

  /** Waits for the uploads, then makes every pack visible with one `packs/commit`. */
  async commit(): Promise<SendStats> {
    await this.settle();
    if (this.#failure !== undefined) throw this.#failure;
    if (this.#committed.length > 0) await this.#transport.commitPacks(this.#committed);
    return this.stats;
  }

  /** Waits for uploads still running (after a failure: nothing is committed). */
  async settle(): Promise<void> {
    await Promise.all(this.#uploads);
  }
}

/** An object too large for any pack. */
function tooLarge(id: ObjectId, length: number): MediaGitError {
  return new MediaGitError(
    'OBJECT_TOO_LARGE',
    `object ${id} (${length} bytes) does not fit in a pack`,
    { kind: 'user', data: { id } },
  );
}

/**
 * Uploads `ids` (read with `readRecord`, each a standalone record, into the
 * start of `into` when it fits there) in cloud packs and commits them.
 *
 * With `recordSize` (a record's length before it is read, or undefined when
 * not known cheaply), the packs are planned first: their names are the
 * hashes of their record tables, so one `packs/begin` asks about 32 packs at
 * once, and `packs/commit` carries each pack's table, so the server
 * neither reads the packs back nor takes a request per pack
 * (docs/protocol.md). A record whose length turns out other than planned
 * only makes its pack unplanned: that pack is begun on its own.
 */
export async function sendInPacks(
  transport: Transport,
  ids: readonly ObjectId[],
  readRecord: (id: ObjectId, into: Buffer) => Promise<Buffer>,
  options: {
    readonly signal?: AbortSignal | undefined;
    /** Bytes sent (or found present) so far, of the records' total (from `recordSize`). */
    readonly onProgress?: ((done: number, total: number) => void) | undefined;
    readonly packBytes?: number;
    readonly recordSize?: ((id: ObjectId) => Promise<number | undefined>) | undefined;
  } = {},
): Promise<SendStats> {
  const limit = Math.min(options.packBytes ?? PUSH_PACK_BYTES, MAX_CLOUD_PACK_BYTES);
  if (ids.length === 0) return { packs: 0, packsPresent: 0, objects: 0, bytes: 0, begins: 0 };
  const { groups, totalBytes } = await planGroups(ids, limit, options.recordSize, options.signal);
  let doneBytes = 0;
  const sender = new PackSender(transport, limit, {
    onSent: (bytes) => {
      doneBytes += bytes;
      if (totalBytes > 0) options.onProgress?.(Math.min(doneBytes, totalBytes), totalBytes);
    },
  });
  try {
    let begun = 0;
    for (const [g, group] of groups.entries()) {
      if (group.plan && g >= begun) {
        const window = groups.slice(g, g + BEGIN_BATCH).flatMap((next) => next.plan ?? []);
        await sender.begin(window.map(({ name, size }) => ({ name, size })));
        begun = g + BEGIN_BATCH;
      }
      let buffer = sender.buffer();
      let writer = new CloudPackWriter(buffer);
      for (const id of group.ids) {
        options.signal?.throwIfAborted();
        // Read straight into the pack when the record fits (no buffer per record).
        const record = await readRecord(id, writer.spare(limit));
        if (!writer.fits(record.length, limit)) {
          if (writer.count === 0) throw tooLarge(id, record.length);
          await sender.flush(writer, buffer);
          buffer = sender.buffer();
          writer = new CloudPackWriter(buffer);
        }
        writer.add(id, record);
      }
      if (writer.count > 0) await sender.flush(writer, buffer);
      else sender.giveBack(buffer);
    }
  } catch (error) {
    await sender.settle();
    throw error;
  }
  return sender.commit();
}

/**
 * Records handed over one at a time as they are made (a file being chunked),
 * uploaded in cloud packs as each fills, and committed by `finish`: the
 * streaming counterpart of `sendInPacks`, for records that exist nowhere
 * else (git-lfs's transfer agent). Packs are not planned, so each is begun
 * on its own.
 */
export class PackStream {
  readonly #sender: PackSender;
  #buffer: Buffer | undefined;
  #writer: CloudPackWriter | undefined;
  #nextOrder = 0;
  readonly #turns = new Map<number, () => void>();
  #orderFailure: unknown;
  /** Appends run one at a time (a flush waits for an upload slot). */
  #tail: Promise<void> = Promise.resolve();

  constructor(
    transport: Transport,
    options: {
      readonly packBytes?: number;
      readonly inFlight?: number;
      /** The LFS object whose chunks these are, in file order: its packs are numbered for the server. */
      readonly file?: ObjectId;
      /**
       * Free pack buffers shared with the caller's next streams: a git-lfs
       * push of many files fills them all with the same few buffers (fresh
       * memory costs page faults: three 48 MiB buffers per file otherwise).
       */
      readonly buffers?: Buffer[];
    } = {},
  ) {
    const limit = Math.min(options.packBytes ?? PUSH_PACK_BYTES, MAX_CLOUD_PACK_BYTES);
    this.#sender = new PackSender(transport, limit, {
      inFlight: options.inFlight,
      file: options.file,
      buffers: options.buffers,
    });
  }

  get stats(): SendStats {
    return this.#sender.stats;
  }

  /** Adds a record given as parts (copied before this resolves). */
  add(id: ObjectId, parts: readonly Uint8Array[]): Promise<void> {
    const run = this.#tail.then(() => this.#add(id, parts));
    this.#tail = run.catch(() => undefined);
    return run;
  }

  async #add(id: ObjectId, parts: readonly Uint8Array[]): Promise<void> {
    const limit = this.#sender.limit;
    const length = parts.reduce((sum, part) => sum + part.length, 0);
    if (this.#writer && !this.#writer.fits(length, limit)) await this.#flush();
    if (!this.#writer) {
      this.#buffer = this.#sender.buffer();
      this.#writer = new CloudPackWriter(this.#buffer);
    }
    if (!this.#writer.fits(length, limit)) throw tooLarge(id, length);
    const into = this.#writer.spare(limit);
    let at = 0;
    for (const part of parts) {
      // Buffer#copy: a part may be a view of the chunker's SharedArrayBuffer,
      // from which TypedArray#set copies ~6x slower.
      Buffer.from(part.buffer, part.byteOffset, part.byteLength).copy(into, at);
      at += part.length;
    }
    this.#writer.add(id, into.subarray(0, length));
  }

  async #flush(): Promise<void> {
    const writer = this.#writer!;
    const buffer = this.#buffer!;
    this.#writer = undefined;
    this.#buffer = undefined;
    await this.#sender.flush(writer, buffer);
  }

  /**
   * Adds the record numbered `order` (0, 1, 2, ...) once those before it
   * are added: records made in parallel go into the packs in order.
   */
  async addInOrder(id: ObjectId, parts: readonly Uint8Array[], order: number): Promise<void> {
    while (order !== this.#nextOrder && this.#orderFailure === undefined) {
      await new Promise<void>((resolve) => this.#turns.set(order, resolve));
    }
    if (this.#orderFailure !== undefined) throw this.#orderFailure;
    try {
      await this.add(id, parts);
    } catch (error) {
      this.abortOrder(error);
      throw error;
    }
    this.#nextOrder++;
    const next = this.#turns.get(this.#nextOrder);
    this.#turns.delete(this.#nextOrder);
    next?.();
  }

  /** Fails every record waiting for its turn (one before it will never come). */
  abortOrder(error: unknown): void {
    this.#orderFailure ??= error;
    for (const wake of this.#turns.values()) wake();
    this.#turns.clear();
  }

  /** Uploads the last pack and commits them all. */
  async finish(): Promise<SendStats> {
    await this.#tail;
    if (this.#writer && this.#writer.count > 0) await this.#flush();
    return this.#sender.commit();
  }

  /** Waits for uploads still running; nothing is committed. */
  async abort(): Promise<void> {
    await this.#tail;
    await this.#sender.settle();
  }
}

/**
 * The packs to fill: records of known size planned into packs (in the order
 * given), then one unplanned run of those whose size is not known.
 */
async function planGroups(
  ids: readonly ObjectId[],
  limit: number,
  recordSize: ((id: ObjectId) => Promise<number | undefined>) | undefined,
  signal: AbortSignal | undefined,
): Promise<{
  groups: { ids: readonly ObjectId[]; plan?: PlannedCloudPack }[];
  totalBytes: number;
}> {
  if (!recordSize) return { groups: [{ ids }], totalBytes: 0 };
  const sizes = new Array<number | undefined>(ids.length);
  await inPool(
    [...ids.keys()],
    SIZE_LOOKUPS,
    async (i) => {
      sizes[i] = await recordSize(ids[i]!);
    },
    signal,
  );
  const known = ids.flatMap((id, i) => (sizes[i] === undefined ? [] : [{ id, length: sizes[i] }]));
  const unknown = ids.filter((_, i) => sizes[i] === undefined);
  const groups: { ids: readonly ObjectId[]; plan?: PlannedCloudPack }[] = planCloudPacks(
    known,
    limit,
  ).map((plan) => ({ ids: plan.entries.map((entry) => entry.id), plan }));
  if (unknown.length > 0) groups.push({ ids: unknown });
  return { groups, totalBytes: known.reduce((sum, entry) => sum + entry.length, 0) };
}

/** One object to read from a pack. */
interface Wanted {
  readonly id: ObjectId;
  readonly offset: number;
  readonly length: number;
}

/** Groups a pack's wanted records into ranged reads. */
export function coalesce(
  wanted: readonly Wanted[],
  gap = COALESCE_GAP,
  maxRange = MAX_RANGE,
): Wanted[][] {
  const sorted = [...wanted].sort((a, b) => a.offset - b.offset);
  const ranges: Wanted[][] = [];
  let current: Wanted[] = [];
  for (const item of sorted) {
    const first = current[0];
    const last = current.at(-1);
    if (
      first &&
      last &&
      item.offset - (last.offset + last.length) <= gap &&
      item.offset + item.length - first.offset <= maxRange
    ) {
      current.push(item);
    } else {
      if (current.length > 0) ranges.push(current);
      current = [item];
    }
  }
  if (current.length > 0) ranges.push(current);
  return ranges;
}

export interface ReceiveOptions {
  readonly signal?: AbortSignal | undefined;
  /** Gets each verified object; its bytes (`record`, and `object.data`) are valid during the call only. */
  readonly onObject: (id: ObjectId, record: Buffer, object: DecodedRecord) => Promise<void>;
  /** Objects stored loose on the remote are fetched one by one with this. */
  readonly fetchLoose: (id: ObjectId) => Promise<void>;
  /** The raw size an object must have, where the caller knows it (a chunk, from its manifest). */
  readonly sizeOf?: ((id: ObjectId) => number | undefined) | undefined;
  /** How records are checked (odb/record.ts): the receiving repository's cipher when encrypted. */
  readonly check?: RecordCheck;
}

/**
 * Downloads `ids` from wherever the remote keeps them; every record
 * verified. Ranges of a pack found gone (server gc deleted it after the
 * answer) are located again, once, naming the pack.
 */
export async function receiveFromPacks(
  transport: Transport,
  ids: readonly ObjectId[],
  options: ReceiveOptions,
  gone?: readonly string[],
): Promise<void> {
  if (ids.length === 0) return;
  const { packs, objects } = await transport.locate(ids, gone);
  const byPack = new Map<number, Wanted[]>();
  const loose: ObjectId[] = [];
  for (const object of objects) {
    if ('missing' in object) {
      throw new MediaGitError(
        'REMOTE_MISSING_OBJECT',
        `the remote does not have object ${object.id}`,
        {
          kind: 'user',
          data: { id: object.id, exitCode: 128 },
        },
      );
    }
    if ('loose' in object) loose.push(object.id);
    else {
      const list = byPack.get(object.pack) ?? [];
      list.push({ id: object.id, offset: object.offset, length: object.length });
      byPack.set(object.pack, list);
    }
  }
  const jobs: { pack: LocatedPack; range: Wanted[] }[] = [];
  for (const [p, wanted] of byPack) {
    const pack = packs[p];
    if (!pack)
      throw new MediaGitError('PROTOCOL_ERROR', 'objects/locate named a pack it did not list', {
        kind: 'user',
      });
    for (const range of coalesce(wanted)) jobs.push({ pack, range });
  }
  const retry: ObjectId[] = [];
  const gonePacks = new Set<string>();
  // An encrypted repository's records open into buffers kept for the whole
  // receive, one per range in flight: a fresh one costs a page fault per 4 KiB.
  const spare: Buffer[] = [];
  const readRange = async ({ pack, range }: { pack: LocatedPack; range: Wanted[] }) => {
    const start = range[0]!.offset;
    const end = range.at(-1)!.offset + range.at(-1)!.length;
    let bytes: Buffer;
    try {
      bytes = await transport.readPack(pack, start, end - start);
    } catch (error) {
      const isGone = error instanceof MediaGitError && error.data['status'] === 404;
      if (!isGone || gone !== undefined) throw error;
      gonePacks.add(pack.name);
      for (const item of range) retry.push(item.id);
      return;
    }
    let opened = options.check === undefined ? undefined : spare.pop();
    try {
      for (const item of range) {
        const record = bytes.subarray(item.offset - start, item.offset - start + item.length);
        if (options.check !== undefined && (opened?.length ?? 0) < item.length) {
          opened = Buffer.allocUnsafeSlow(Math.max(item.length, 4 * 1024 * 1024));
        }
        const object = await decodeRecord(
          item.id,
          record,
          options.sizeOf?.(item.id),
          options.check,
          opened,
        );
        await options.onObject(item.id, record, object);
      }
    } finally {
      if (opened !== undefined) spare.push(opened);
      transport.release(bytes);
    }
  };
  const parallelism = transport.parallelism;
  const settled = await Promise.allSettled([
    inPool(jobs, Math.min(RANGE_READS_IN_FLIGHT, parallelism), readRange, options.signal),
    inPool(loose, parallelism, options.fetchLoose, options.signal),
  ]);
  for (const outcome of settled) if (outcome.status === 'rejected') throw outcome.reason;
  if (retry.length > 0) await receiveFromPacks(transport, retry, options, [...gonePacks]);
}

/**
 * Runs `work` on every item, at most `width` at once; the first failure ends
 * it, but only once every item already started has settled: a command
 * interrupted here removes its temp files when this returns, and a write
 * still in flight then would leave one behind.
 */
async function inPool<T>(
  items: readonly T[],
  width: number,
  work: (item: T) => Promise<void>,
  signal: AbortSignal | undefined,
): Promise<void> {
  let next = 0;
  let failed = false;
  let failure: unknown;
  const worker = async (): Promise<void> => {
    try {
      for (let i = next++; i < items.length && !failed; i = next++) {
        signal?.throwIfAborted();
        await work(items[i]!);
      }
    } catch (error) {
      if (!failed) failure = error;
      failed = true;
    }
  };
  await Promise.all(Array.from({ length: Math.max(0, Math.min(width, items.length)) }, worker));
  if (failed) throw failure;
}
