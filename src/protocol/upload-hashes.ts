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
 */
import { createHash, type Hash } from 'node:crypto';
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
  readonly hash: Hash;
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
  /** The pack was verified whole: the next one may follow. */
  done(): void;
  /** The pack was refused: this file's hash is abandoned. */
  fail(): void;
}

/** Uploads hashed at once; the least recently used one goes first. */
const MAX_SESSIONS = 64;
/** A session untouched this long is dropped. */
const SESSION_TTL_MS = 30 * 60 * 1000;
/** How long a pack waits for the one ahead of it before its file's hash is given up. */
const TURN_WAIT_MS = 5_000;

export class UploadHashes {
  readonly #sessions = new Map<ObjectId, Session>();

  /**
   * The feed for a tagged pack about to be verified, once the packs ahead
   * of it are fed; undefined when it cannot be (its file's hash is given up).
   */
  async feed(file: PackOfFile): Promise<PackFeed | undefined> {
    const now = Date.now();
    for (const [oid, session] of this.#sessions) {
      if (now - session.touched > SESSION_TTL_MS) this.#sessions.delete(oid);
    }
    let session = this.#sessions.get(file.oid);
    // A pack of a file not yet seen (its first pack may arrive after its
    // second), or the first pack of a rerun upload: a fresh hash.
    const rerun = file.seq === 0 && session !== undefined && (session.next > 0 || session.broken);
    if (!session || rerun) {
      session = {
        hash: createHash('sha256'),
        ids: [],
        next: 0,
        broken: false,
        feeding: false,
        touched: now,
        waiting: new Set(),
      };
      this.#sessions.delete(file.oid);
      this.#sessions.set(file.oid, session);
      while (this.#sessions.size > MAX_SESSIONS) {
        this.#sessions.delete(this.#sessions.keys().next().value!);
      }
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
    return {
      update: (id, data) => {
        owner.hash.update(data);
        owner.ids.push(id);
      },
      done: () => {
        owner.feeding = false;
        owner.next++;
        wakeAll(owner);
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
  take(oid: ObjectId, chunkIds: readonly ObjectId[]): ObjectId | undefined {
    const session = this.#sessions.get(oid);
    this.#sessions.delete(oid);
    if (!session || session.broken || session.feeding) return undefined;
    if (session.ids.length !== chunkIds.length) return undefined;
    for (let i = 0; i < chunkIds.length; i++) if (session.ids[i] !== chunkIds[i]) return undefined;
    return session.hash.digest('hex');
  }
}

function wakeAll(session: Session): void {
  for (const wake of [...session.waiting]) wake();
}
