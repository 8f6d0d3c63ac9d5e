/**
 * Objects of an encrypted repository (docs/encryption.md): keyed IDs and
 * sealed payloads.
 *
 * A sealed record keeps the 16-byte header every record has (type, codec
 * `sealed`, raw size), so whatever handles records without decoding them
 * (packs, surveys, copies) works unchanged; its payload is the nonce, the
 * AES-256-GCM ciphertext of (the codec it was stored with ‖ that payload)
 * and the tag. The AAD is the object's ID and header: a payload moved under
 * another name, or a header edited, does not open.
 */
import { Codec } from '../compression/codec.ts';
import { corruptObject } from '../errors.ts';
import {
  deriveKeys,
  keyedId,
  open,
  seal,
  secretGearTable,
  type RepoKeys,
} from '../security/encryption.ts';
import { objectIdOf, type ObjectId } from './object-id.ts';

export class ObjectCipher {
  readonly #keys: RepoKeys;
  /** What a worker thread needs to make the same cipher (never leaves the process). */
  readonly material: { readonly master: Buffer; readonly repository: string };
  /** The chunker's secret gear table (chunking/fastcdc.ts). */
  readonly gearTable: Int32Array;

  constructor(master: Buffer, repository: string) {
    this.#keys = deriveKeys(master, repository);
    this.material = { master, repository };
    this.gearTable = secretGearTable(this.#keys);
  }

  /** The ID of an object of `type` with these bytes. */
  idOf(type: string, data: Uint8Array): ObjectId {
    return this.keyId(objectIdOf(type, data));
  }

  /** The keyed ID of content whose plain ID (odb/object-id.ts) is `plainId`. */
  keyId(plainId: ObjectId): ObjectId {
    return keyedId(this.#keys, Buffer.from(plainId, 'hex')).toString('hex');
  }

  /** A sealed payload's parts, for a record whose `header` says codec `sealed`. */
  sealPayload(
    id: ObjectId,
    header: Uint8Array,
    codec: Codec,
    payload: readonly Uint8Array[],
  ): Buffer[] {
    return seal(this.#keys, [Uint8Array.of(codec), ...payload], aadOf(id, header));
  }

  /** The codec and payload inside a sealed payload; OBJECT_CORRUPT naming `id` when it does not open. */
  openPayload(
    id: ObjectId,
    header: Uint8Array,
    sealed: Uint8Array,
    into?: Buffer,
  ): { codec: Codec; payload: Buffer } {
    const inner = open(this.#keys, sealed, aadOf(id, header), id, into);
    const codec = inner[0];
    if (codec === undefined || codec >= Codec.sealed) {
      throw corruptObject(id, `unknown codec ${String(codec)} inside its sealed payload`);
    }
    return { codec: codec as Codec, payload: inner.subarray(1) };
  }
}

function aadOf(id: ObjectId, header: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from(id, 'hex'), header]);
}
