/**
 * `mediagit migrate <from> <to>`: copies a server root or one repository
 * from one storage backend to another (file, s3, az, gs), for a move between
 * disks and clouds.
 *
 * - Every key is copied as it is and verified at the target: the bytes read
 *   back from the target must hash (SHA-256) to what was read from the
 *   source. Nothing is re-encoded, so a migrated repository is byte for byte
 *   the same and serves identical clones.
 * - Resumable: a key already at the target is verified the same way (read
 *   in full at both ends) and not copied again, so a rerun after a kill
 *   sends only what is missing. What a kill loses is the uploads it cut
 *   off: at most `maxInFlightBytes` (32 MiB), or one key bigger than that (a
 *   cloud pack is at most 64 MiB; pushes cut them at 48 MiB), which then
 *   uploads alone. A key whose upload finished before the kill is only read
 *   again, never sent again.
 * - Uploading and verifying overlap: once a key's upload ends, the next
 *   one starts while the first is read back. The keys held in memory at
 *   once (being read, sent or read back) total at most `maxHeldBytes`.
 * - Order: objects and packs first, then pack indexes, then everything else
 *   (config, locks, LFS bindings, server state), then refs, then each
 *   repository's HEAD; each phase is copied and verified before the next
 *   starts, so at no instant does the target hold a ref to an object it
 *   lacks, or a HEAD (what marks a repository) before its refs.
 * - `deleteSource` deletes the source's keys only after every key was
 *   verified at the target, in the reverse order (HEAD first).
 * - The source should not change while it is migrated (stop the servers, or
 *   migrate again after switching them: a rerun copies what changed... only
 *   keys that are new; a ref that moved is found different and copied again).
 */
import { createHash } from 'node:crypto';
import { MediaGitError } from '../errors.ts';
import { isStorageCode, type StorageBackend } from '../storage/backend.ts';
import { eachLimited } from '../storage/concurrency.ts';

export interface MigrateProgress {
  readonly keys: number;
  /** Keys copied or found at the target, and verified. */
  readonly done: number;
  /** The bytes of the keys done. */
  readonly bytesDone: number;
  /** Bytes sent to the target by this run. */
  readonly bytesCopied: number;
  readonly totalBytes: number;
}

export interface MigrateOptions {
  readonly dryRun?: boolean;
  readonly deleteSource?: boolean;
  /** Keys handled at once. */
  readonly concurrency?: number;
  /** Bytes being uploaded at once: what a kill can lose (default 32 MiB; a bigger key uploads alone). */
  readonly maxInFlightBytes?: number;
  /**
   * Bytes of the keys being read, uploaded or read back at once (default
   * four times `maxInFlightBytes`). Memory use is up to twice this: a key at
   * both ends while it is compared.
   */
  readonly maxHeldBytes?: number;
  readonly signal?: AbortSignal | undefined;
  readonly onProgress?: ((progress: MigrateProgress) => void) | undefined;
}

export interface MigrateResult {
  readonly keys: number;
  readonly totalBytes: number;
  /** Keys copied by this run. */
  readonly copied: number;
  readonly bytesCopied: number;
  /** Keys already at the target, verified and left alone. */
  readonly alreadyThere: number;
  readonly deleted: number;
}

/** Scratch space: a server root's on local disk, a repository's temp files. */
const SKIPPED = /^(.*\/)?\.mediagit-server\/(tmp|tls)\/|(^|\/)tmp\/[^/]*\.tmp$/;

/** The phase a key is copied in (lower first). */
export function migratePhase(key: string): number {
  if (/(^|\/)HEAD$/.test(key)) return 4;
  if (/(^|\/)refs\//.test(key)) return 3;
  if (/(^|\/)objects\/(index|info)\//.test(key) || /(^|\/)objects\/pack\/[^/]+\.idx$/.test(key))
    return 1;
  if (/(^|\/)objects\//.test(key)) return 0;
  return 2;
}

function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

export async function migrate(
  source: StorageBackend,
  target: StorageBackend,
  options: MigrateOptions = {},
): Promise<MigrateResult> {
  if (source.url === target.url) {
    throw new MediaGitError(
      'MIGRATE_SAME',
      `source and target are the same store (${source.url})`,
      {
        kind: 'usage',
      },
    );
  }
  const keys: string[] = [];
  for await (const key of source.list('')) {
    if (!SKIPPED.test(key)) keys.push(key);
  }
  const present = new Set<string>();
  for await (const key of target.list('')) present.add(key);
  const sizes = new Map<string, number>();
  await eachLimited(keys, 16, async (key) => {
    const head = await source.head(key);
    if (head) sizes.set(key, head.size);
  });
  const live = keys.filter((key) => sizes.has(key)); // deleted since listed: nothing to copy
  const totalBytes = live.reduce((sum, key) => sum + sizes.get(key)!, 0);
  let done = 0;
  let bytesDone = 0;
  let copied = 0;
  let bytesCopied = 0;
  let alreadyThere = 0;
  const report = (): void =>
    options.onProgress?.({ keys: live.length, done, bytesDone, bytesCopied, totalBytes });
  if (options.dryRun) {
    for (const key of live) if (present.has(key)) alreadyThere++;
    return { keys: live.length, totalBytes, copied: 0, bytesCopied: 0, alreadyThere, deleted: 0 };
  }
  const maxInFlight = options.maxInFlightBytes ?? 32 * 1024 * 1024;
  const uploads = new ByteBudget(maxInFlight);
  const held = new ByteBudget(Math.max(maxInFlight, options.maxHeldBytes ?? 4 * maxInFlight));
  const phases = [0, 1, 2, 3, 4].map((phase) => live.filter((key) => migratePhase(key) === phase));
  for (const phase of phases) {
    await eachLimited(phase, options.concurrency ?? 8, async (key) => {
      options.signal?.throwIfAborted();
      const size = sizes.get(key)!;
      // Always `held` before `uploads`: one order, so no two keys wait on each other.
      const release = await held.take(size);
      try {
        const [data, there] = await Promise.all([
          source.get(key),
          present.has(key) ? hashAt(target, key) : undefined,
        ]);
        const digest = sha256(data);
        if (there === digest) {
          alreadyThere++;
        } else {
          const sent = await uploads.take(size);
          try {
            await target.put(key, data);
          } finally {
            sent();
          }
          bytesCopied += data.length;
          copied++;
          const written = await hashAt(target, key);
          if (written !== digest) {
            throw new MediaGitError(
              'MIGRATE_VERIFY',
              `${target.url}: key ${key} does not hold what was copied (read back ${written ?? 'nothing'})`,
              { kind: 'corrupt', data: { key } },
            );
          }
        }
      } finally {
        release();
      }
      done++;
      bytesDone += size;
      report();
    });
  }
  let deleted = 0;
  if (options.deleteSource) {
    for (const phase of [...phases].reverse()) {
      await eachLimited(phase, options.concurrency ?? 8, async (key) => {
        await source.delete(key);
        deleted++;
      });
    }
  }
  return { keys: live.length, totalBytes, copied, bytesCopied, alreadyThere, deleted };
}

/** The SHA-256 of what the target holds at `key`, or undefined. */
async function hashAt(backend: StorageBackend, key: string): Promise<string | undefined> {
  try {
    return sha256(await backend.get(key));
  } catch (error) {
    if (isStorageCode(error, 'STORAGE_NOT_FOUND')) return undefined;
    throw error;
  }
}

/** Bounds the bytes of the keys in some step at once; one key bigger than the budget runs alone. */
class ByteBudget {
  readonly #limit: number;
  #used = 0;
  readonly #waiting: (() => void)[] = [];

  constructor(limit: number) {
    this.#limit = limit;
  }

  async take(bytes: number): Promise<() => void> {
    const want = Math.min(bytes, this.#limit);
    while (this.#used > 0 && this.#used + want > this.#limit) {
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
    }
    this.#used += want;
    return () => {
      this.#used -= want;
      for (const wake of this.#waiting.splice(0)) wake();
    };
  }
}
