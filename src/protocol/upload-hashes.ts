/**
 * The whole-file SHA-256 of a Git LFS object computed while its chunks
 * arrive, so binding it to its OID (`PUT manifests/<oid>`) need not read
 * the file back (docs/lfs-transfer-agent.md).
 *
 * git-lfs's `mediagit` agent uploads a file's new chunks in cloud packs, in
 * file order, one pack after another, each tagged `<oid>/<n>` (the
 * `x-mediagit-lfs-file` header). As the server verifies a tagged pack (each
 * record against its ID) it also feeds the records to that OID's SHA-256;
 * a pack that arrives before the one ahead of it waits its turn (a few
 * seconds at most), so uploads may overlap.
 * When the manifest comes, the hash is used only if the chunks hashed are
 * exactly the manifest's chunks in order (a new file whose every chunk came
 * in those packs); otherwise the file is read back and hashed as before. A
 * pack whose turn does not come, a failure, another server receiving some of the packs
 * (several servers on one bucket) or a session gone stale all end in that
 * fallback: the hash is an optimisation, never the only check.
 *
 * The hashing runs on a worker thread (sha256-worker.ts), not on the thread
 * that receives and verifies the packs (it took ~0.65 s of that thread per
 * GiB, while the agent waited for its next upload): records are copied into
 * 8 MiB buffers handed over to it and back (a copy costs a fraction of the
 * hash; a pack body in shared memory instead made receiving it ~3x slower,
 * as V8 copies into shared memory slowly).
 */
import type { Worker } from 'node:worker_threads';
import { isObjectId, type ObjectId } from '../odb/object-id.ts';

/** A pack's place in the upload of one LFS object. */
export interface PackOfFile {
  readonly oid: ObjectId;
  /** 0 for the file's first pack, then one more for each. */
  readonly seq: number;
}

/** Parses the `x-mediagit-lfs-file` header (`<oid>/<seq>`); undefined when absent or malformed. */
export function packOfFile(header: unknown): PackOfFile | undefined {
  if (typeof header !== 'string') return undefined;
  const match = /^([0-9a-f]{64})\/(\d{1,9})$/.exec(header);
  if (!match || !isObjectId(match[1]!)) return undefined;
  return { oid: match[1]!, seq: Number(match[2]) };
}

export function packOfFileHeader(file: PackOfFile): string {
  return `${file.oid}/${file.seq}`;
}

interface Session {
  /** The worker's number for this file's hash. */
  readonly hash: number;
  readonly ids: ObjectId[];
  next: number;
  broken: boolean;
  /** A pack being fed (the next may not start before it ends). */
  feeding: boolean;
  touched: number;
  /** Packs waiting for their turn. */
  readonly waiting: Set<() => void>;
}

/** Hashes feeding one pack's records into its file's SHA-256. */
export interface PackFeed {
  update(id: ObjectId, data: Uint8Array): void;
  /**
   * The pack was verified whole: the next one may follow. Resolves once its
   * bytes are hashed (so the hashing never lags far behind); never rejects.
   */
  done(): Promise<void>;
  /** The pack was refused: this file's hash is abandoned. */
  fail(): void;
}

/** Bytes handed to the hashing thread at once (a 48 MiB pack: six; a chunk is at most 8 MiB). */
const SPARE_BYTES = 8 * 1024 * 1024;
/** Buffers kept for reuse (the thread hashes faster than packs arrive: a few are ever out). */
const MAX_SPARES = 4;

const workerUrl = new URL(
  import.meta.url.endsWith('.ts') ? './sha256-worker.ts' : './sha256-worker.js',
  import.meta.url,
);

/**
 * The one hashing thread every repository of the process shares, started
 * when first needed. A failed thread fails no request: the hashes under way
 * are given up (their files are read back) and the next upload starts a new
 * thread.
 */
class HashThread {
  static #current: HashThread | undefined;
  static #sessions = 0;
  readonly #worker: Worker;
  #syncs = 0;
  /** Answers (syncs, digests) the thread still owes. */
  #owed = 0;
  /** Buffers the thread has hashed and handed back, for the next records. */
  readonly #spares: ArrayBuffer[] = [];
  /** The buffer being filled with a session's records, not yet sent. */
  #open: { session: number; bytes: ArrayBuffer; length: number } | undefined;
  readonly #synced = new Map<number, () => void>();
  readonly #digests = new Map<number, (digest: string | undefined) => void>();
  failed = false;

  static get(): HashThread {
    if (!HashThread.#current || HashThread.#current.failed) HashThread.#current = new HashThread();
    return HashThread.#current;
  }

  static newSession(): number {
    return ++HashThread.#sessions;
  }

  private constructor() {
    const { Worker } = process.getBuiltinModule('node:worker_threads');
    this.#worker = new Worker(workerUrl);
    type Answer = { sync?: number; session?: number; digest?: string; spare?: ArrayBuffer };
    this.#worker.on('message', (message: Answer) => {
      if (message.spare !== undefined) {
        if (this.#spares.length < MAX_SPARES) this.#spares.push(message.spare);
      } else if (message.sync !== undefined) {
        this.#synced.get(message.sync)?.();
        this.#synced.delete(message.sync);
      } else if (message.session !== undefined) {
        this.#digests.get(message.session)?.(message.digest);
        this.#digests.delete(message.session);
      }
    });
    this.#worker.on('error', () => this.#fail());
    this.#worker.on('exit', () => this.#fail());
    // After the listeners (adding one refers the thread again): an idle
    // hashing thread does not keep the process alive; one with answers
    // still owed does (#wait).
    this.#worker.unref();
  }

  /** Keeps the process alive until `answer` settles (the thread owes it). */
  #wait<T>(answer: Promise<T>): Promise<T> {
    if (this.#owed++ === 0) this.#worker.ref();
    return answer.finally(() => {
      if (--this.#owed === 0) this.#worker.unref();
    });
  }

  #fail(): void {
    this.failed = true;
    for (const resolve of this.#synced.values()) resolve();
    this.#synced.clear();
    for (const resolve of this.#digests.values()) resolve(undefined);
    this.#digests.clear();
  }

  /**
   * Hands `data` to the thread: copied into the buffer being filled (one the
   * thread gave back: a memory copy costs a fraction of hashing), which goes
   * over once full or when an answer is asked for, and comes back hashed.
   */
  update(session: number, data: Uint8Array): void {
    if (this.failed) return;
    const open = this.#open;
    if (
      open &&
      (open.session !== session || open.length + data.byteLength > open.bytes.byteLength)
    ) {
      this.#send();
    }
    if (!this.#open) {
      let bytes = this.#spares.pop();
      if (bytes === undefined || bytes.byteLength < data.byteLength) {
        bytes = new ArrayBuffer(Math.max(SPARE_BYTES, data.byteLength));
      }
      this.#open = { session, bytes, length: 0 };
    }
    const filling = this.#open;
    new Uint8Array(filling.bytes, filling.length).set(data);
    filling.length += data.byteLength;
  }

  /** Sends the buffer being filled. */
  #send(): void {
    const open = this.#open;
    this.#open = undefined;
    if (!open || open.length === 0) return;
    this.#worker.postMessage(open, [open.bytes]);
  }

  /** Resolves once everything sent so far is hashed (at once if the thread failed). */
  sync(): Promise<void> {
    if (this.failed) return Promise.resolve();
    this.#send();
    const sync = ++this.#syncs;
    return this.#wait(
      new Promise<void>((resolve) => {
        this.#synced.set(sync, resolve);
        this.#worker.postMessage({ sync });
      }),
    );
  }

  /** The session's SHA-256 (the session ends); undefined if the thread failed. */
  digest(session: number): Promise<string | undefined> {
    if (this.failed) return Promise.resolve(undefined);
    this.#send();
    return this.#wait(
      new Promise<string | undefined>((resolve) => {
        this.#digests.set(session, resolve);
        this.#worker.postMessage({ session, digest: true });
      }),
    );
  }

  drop(session: number): void {
    if (this.failed) return;
    this.#send();
    this.#worker.postMessage({ session, drop: true });
  }
}

/** Uploads hashed at once; the least recently used one goes first. */
const MAX_SESSIONS = 64;
/** A session untouched this long is dropped. */
const SESSION_TTL_MS = 30 * 60 * 1000;
/** How long a pack waits for the one ahead of it before its file's hash is given up. */
const TURN_WAIT_MS = 5_000;

export class UploadHashes {
  readonly #sessions = new Map<ObjectId, Session>();
  /** The thread this object's sessions hash on (a new one after a failure ends them). */
  #thread: HashThread | undefined;

  #drop(oid: ObjectId): void {
    const session = this.#sessions.get(oid);
    if (!session) return;
    this.#sessions.delete(oid);
    this.#thread?.drop(session.hash);
  }

  /**
   * The feed for a tagged pack about to be verified, once the packs ahead
   * of it are fed; undefined when it cannot be (its file's hash is given up).
   */
  async feed(file: PackOfFile): Promise<PackFeed | undefined> {
    const now = Date.now();
    if (this.#thread?.failed) {
      // The hashes under way are lost with their thread.
      for (const session of this.#sessions.values()) session.broken = true;
    }
    for (const [oid, session] of this.#sessions) {
      if (now - session.touched > SESSION_TTL_MS) this.#drop(oid);
    }
    let session = this.#sessions.get(file.oid);
    // A pack of a file not yet seen (its first pack may arrive after its
    // second), or the first pack of a rerun upload: a fresh hash.
    const rerun = file.seq === 0 && session !== undefined && (session.next > 0 || session.broken);
    if (!session || rerun) {
      this.#drop(file.oid);
      this.#thread = HashThread.get();
      session = {
        hash: HashThread.newSession(),
        ids: [],
        next: 0,
        broken: false,
        feeding: false,
        touched: now,
        waiting: new Set(),
      };
      this.#sessions.set(file.oid, session);
      while (this.#sessions.size > MAX_SESSIONS) this.#drop(this.#sessions.keys().next().value!);
    }
    if (!session || session.broken) return undefined;
    if (file.seq < session.next) return undefined; // a retried pack, hashed already
    const deadline = now + TURN_WAIT_MS;
    while ((file.seq > session.next || session.feeding) && !session.broken) {
      const left = deadline - Date.now();
      if (left <= 0) {
        // The pack ahead never came (lost, or sent to another server).
        session.broken = true;
        wakeAll(session);
        return undefined;
      }
      await new Promise<void>((resolve) => {
        const wake = (): void => {
          clearTimeout(timer);
          session.waiting.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, left);
        session.waiting.add(wake);
      });
    }
    if (session.broken || file.seq !== session.next) return undefined;
    session.feeding = true;
    session.touched = Date.now();
    const owner = session;
    const thread = this.#thread!;
    return {
      update: (id, data) => {
        thread.update(owner.hash, data);
        owner.ids.push(id);
      },
      done: () => {
        owner.feeding = false;
        owner.next++;
        wakeAll(owner);
        return thread.sync();
      },
      fail: () => {
        owner.feeding = false;
        owner.broken = true;
        wakeAll(owner);
      },
    };
  }

  /**
   * The SHA-256 of the chunks hashed for `oid` when they are exactly
   * `chunkIds`, in order; undefined otherwise. The session ends either way.
   */
  async take(oid: ObjectId, chunkIds: readonly ObjectId[]): Promise<ObjectId | undefined> {
    const session = this.#sessions.get(oid);
    const thread = this.#thread;
    if (!session || !thread) return undefined;
    this.#sessions.delete(oid);
    const exact =
      !session.broken &&
      !session.feeding &&
      session.ids.length === chunkIds.length &&
      session.ids.every((id, i) => id === chunkIds[i]);
    if (!exact) {
      thread.drop(session.hash);
      return undefined;
    }
    return thread.digest(session.hash);
  }
}

function wakeAll(session: Session): void {
  for (const wake of [...session.waiting]) wake();
}
