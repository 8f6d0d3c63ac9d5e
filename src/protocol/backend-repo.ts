/**
 * A bare repository seen through the storage interface (ARCHITECTURE.md §3):
 * what `mediagit serve` and local-path remotes read and write. Its keys are
 * the bare repository's own layout, so a bare repository made by
 * `mediagit init --bare` on a local disk is served as it is:
 *
 *   HEAD                    "ref: refs/heads/<branch>\n"
 *   config                  TOML (branch protection: branch.<name>.protect)
 *   refs/heads/<name>, refs/tags/<name>
 *                           "<id>\n"; an empty value is a deleted ref (a
 *                           tombstone, so that deleting is compare-and-swap too)
 *   objects/<2 hex>/<62 hex>
 *                           standalone object records (odb/record.ts)
 *
 * Every ref change is a conditional put (`ifMatch` the ETag read, or
 * `ifNoneMatch: '*'`), so two server processes on one store never lose an
 * update. Objects are verified before they are stored and are immutable.
 */
import { parse as parseToml } from 'smol-toml';
import { LRUCache } from 'lru-cache';
import { MediaGitError, missingObject } from '../errors.ts';
import type { StorageBackend } from '../storage/backend.ts';
import { HEADER_SIZE, decodeHeader, type ObjectTypeName } from '../odb/object-store.ts';
import { isObjectId, type ObjectId } from '../odb/object-id.ts';
import { decodeRecord, type DecodedRecord } from '../odb/record.ts';
import { isValidRefName } from '../repo/refs.ts';
import type { ObjectReader } from './reachability.ts';

export function objectKey(id: ObjectId): string {
  return `objects/${id.slice(0, 2)}/${id.slice(2)}`;
}

export interface RefValue {
  readonly id: ObjectId;
  readonly etag: string;
}

function isStorageError(error: unknown, code: string): boolean {
  return error instanceof MediaGitError && error.code === code;
}

export class BackendRepo implements ObjectReader {
  readonly backend: StorageBackend;
  readonly #metadata = new LRUCache<ObjectId, DecodedRecord>({
    maxSize: 32 * 1024 * 1024,
    sizeCalculation: (value) => Math.max(1, value.data.length),
  });

  constructor(backend: StorageBackend) {
    this.backend = backend;
  }

  /** True when the store holds a repository (its HEAD exists). */
  async exists(): Promise<boolean> {
    return (await this.backend.head('HEAD').catch(() => undefined)) !== undefined;
  }

  async has(id: ObjectId): Promise<boolean> {
    if (!isObjectId(id)) return false;
    if (this.#metadata.has(id)) return true;
    return (await this.backend.head(objectKey(id))) !== undefined;
  }

  /** The object's type from its header, or undefined when it is not stored. */
  async typeOf(id: ObjectId): Promise<ObjectTypeName | undefined> {
    return (await this.header(id))?.type;
  }

  /** The object's header (type, codec, size), or undefined when it is not stored. */
  async header(id: ObjectId): Promise<ReturnType<typeof decodeHeader> | undefined> {
    if (!isObjectId(id)) return undefined;
    try {
      return decodeHeader(id, await this.backend.getRange(objectKey(id), 0, HEADER_SIZE));
    } catch (error) {
      if (isStorageError(error, 'STORAGE_NOT_FOUND')) return undefined;
      throw error;
    }
  }

  async getRecord(id: ObjectId): Promise<Buffer> {
    if (!isObjectId(id)) throw missingObject(id);
    try {
      const bytes = await this.backend.get(objectKey(id));
      return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    } catch (error) {
      if (isStorageError(error, 'STORAGE_NOT_FOUND')) throw missingObject(id);
      throw error;
    }
  }

  /** Reads and verifies an object (metadata is cached; chunks are not). */
  async read(id: ObjectId): Promise<DecodedRecord> {
    const cached = this.#metadata.get(id);
    if (cached) return cached;
    const object = await decodeRecord(id, await this.getRecord(id));
    if (object.type !== 'chunk' && object.type !== 'blob') this.#metadata.set(id, object);
    return object;
  }

  /**
   * Verifies a standalone record against `id` and stores it unless present.
   * `expected` restricts the type (a chunk upload must be a chunk). Returns
   * whether it was written.
   */
  async putRecord(
    id: ObjectId,
    record: Uint8Array,
    expected?: readonly ObjectTypeName[],
  ): Promise<boolean> {
    const object = await decodeRecord(id, record);
    if (expected && !expected.includes(object.type)) {
      throw new MediaGitError(
        'BAD_OBJECT_RECORD',
        `object ${id} was rejected: it is a ${object.type}, expected ${expected.join(' or ')}`,
        { kind: 'user', data: { id, type: object.type } },
      );
    }
    return this.putVerified(id, record);
  }

  /**
   * Stores a record the caller has already verified with `decodeRecord`
   * (a pack is verified whole before any of it is stored) unless present.
   */
  async putVerified(id: ObjectId, record: Uint8Array): Promise<boolean> {
    // No existence check first: clients upload only what chunks/check called
    // missing, and the conditional put refuses a duplicate anyway.
    try {
      await this.backend.put(objectKey(id), record, { ifNoneMatch: '*' });
      return true;
    } catch (error) {
      if (isStorageError(error, 'STORAGE_PRECONDITION_FAILED')) return false; // a racing upload
      throw error;
    }
  }

  async head(): Promise<string | undefined> {
    try {
      const text = Buffer.from(await this.backend.get('HEAD'))
        .toString('utf8')
        .trim();
      return text.startsWith('ref: ') ? text.slice(5) : undefined;
    } catch (error) {
      if (isStorageError(error, 'STORAGE_NOT_FOUND')) return undefined;
      throw error;
    }
  }

  /** A ref's value and ETag; a tombstone is reported with id undefined. */
  async readRef(name: string): Promise<{ id: ObjectId | undefined; etag: string } | undefined> {
    // The ETag first, then the bytes: if the ref changes in between, the bytes
    // are newer than the ETag and a compare-and-swap on it fails (safe); the
    // other order could act on old bytes with a current ETag.
    const head = await this.backend.head(name);
    if (head === undefined) return undefined;
    const etag = head.etag;
    let bytes: Uint8Array;
    try {
      bytes = await this.backend.get(name);
    } catch (error) {
      if (isStorageError(error, 'STORAGE_NOT_FOUND')) return undefined;
      throw error;
    }
    const text = Buffer.from(bytes).toString('utf8').trim();
    if (text === '') return { id: undefined, etag };
    if (!isObjectId(text)) {
      throw new MediaGitError('BAD_REF', `ref ${name} does not hold an object ID`, {
        kind: 'corrupt',
        data: { ref: name },
      });
    }
    return { id: text, etag };
  }

  /** Every branch and tag with its commit, sorted by name. */
  async listRefs(): Promise<{ name: string; id: ObjectId }[]> {
    const refs: { name: string; id: ObjectId }[] = [];
    for await (const key of this.backend.list('refs/')) {
      if (!isValidRefName(key)) continue;
      const value = await this.readRef(key);
      if (value?.id !== undefined) refs.push({ name: key, id: value.id });
    }
    return refs;
  }

  /**
   * Sets `name` to `id` (or deletes it, `id` null) if it still has the ETag
   * read before (`etag` undefined: if it does not exist). Returns false when
   * another writer got there first.
   */
  async casRef(name: string, etag: string | undefined, id: ObjectId | null): Promise<boolean> {
    const body = Buffer.from(id === null ? '' : `${id}\n`);
    try {
      await this.backend.put(
        name,
        body,
        etag === undefined ? { ifNoneMatch: '*' } : { ifMatch: etag },
      );
      return true;
    } catch (error) {
      if (isStorageError(error, 'STORAGE_PRECONDITION_FAILED')) return false;
      throw error;
    }
  }

  /** Whether `branch.<name>.protect` is set in the repository's config. */
  async isProtected(ref: string): Promise<boolean> {
    if (!ref.startsWith('refs/heads/')) return false;
    const branch = ref.slice('refs/heads/'.length);
    let table: Record<string, unknown>;
    try {
      table = parseToml(Buffer.from(await this.backend.get('config')).toString('utf8'));
    } catch (error) {
      if (isStorageError(error, 'STORAGE_NOT_FOUND')) return false;
      throw new MediaGitError(
        'CONFIG_INVALID',
        'the repository config on the server is not valid TOML',
        {
          kind: 'config',
          cause: error,
        },
      );
    }
    const branches = table['branch'];
    if (typeof branches !== 'object' || branches === null) return false;
    const entry = (branches as Record<string, unknown>)[branch];
    return (
      typeof entry === 'object' &&
      entry !== null &&
      (entry as { protect?: unknown }).protect === true
    );
  }
}
