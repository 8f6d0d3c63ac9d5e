/**
 * Objects of an encrypted repository (docs/encryption.md): keyed IDs and
 * sealed payloads.
 *
 * A sealed record keeps the 16-byte header every record has (type, codec
 * `sealed`, raw size), so whatever handles records without decoding them
 * (packs, surveys, copies) works unchanged; its payload is the nonce, the
 * AES-256-GCM ciphertext of (the codec it was stored with ‖ that payload)
 * and the tag. The AAD is the object's ID and header: a payload moved under
 * another name, or a header edited, does not open. A commit, tree, manifest
 * or tag carries its links in front of the seal (object-links.ts), in the
 * AAD too.
 */
import { Codec } from '../compression/codec.ts';
import { corruptObject } from '../errors.ts';
import {
  deriveKeys,
  keyedId,
  open,
  openName,
  seal,
  sealName,
  secretGearTable,
  type RepoKeys,
} from '../security/encryption.ts';
import { decodeLinks, type Link } from './object-links.ts';
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

  /** A branch or tag name as the server sees it (security/encryption.ts, `sealName`). */
  sealName(name: string): string {
    return sealName(this.#keys, name);
  }

  /** The name `sealName` made `text` from; undefined when it is not one. */
  openName(text: string): string | undefined {
    return openName(this.#keys, text);
  }

  /** The keyed ID of content whose plain ID (odb/object-id.ts) is `plainId`. */
  keyId(plainId: ObjectId): ObjectId {
    return keyedId(this.#keys, Buffer.from(plainId, 'hex')).toString('hex');
  }

  /**
   * A sealed payload's parts, for a record whose `header` says codec
   * `sealed`; `links` (object-links.ts) go in front of the seal, in clear
   * and bound to it by the AAD, for a linking type.
   */
  sealPayload(
    id: ObjectId,
    header: Uint8Array,
    codec: Codec,
    payload: readonly Uint8Array[],
    links?: Buffer,
  ): Buffer[] {
    const sealed = seal(this.#keys, [Uint8Array.of(codec), ...payload], aadOf(id, header, links));
    return links === undefined ? sealed : [links, ...sealed];
  }

  /**
   * The codec and payload inside a sealed payload, and for a linking type
   * the link list in front of it; OBJECT_CORRUPT naming `id` when it does
   * not open.
   */
  openPayload(
    id: ObjectId,
    header: Uint8Array,
    sealed: Uint8Array,
    into?: Buffer,
    linking = false,
  ): { codec: Codec; payload: Buffer; links?: Link[] } {
    let links: Link[] | undefined;
    let listed: Uint8Array | undefined;
    if (linking) {
      const list = decodeLinks(id, sealed);
      links = list.links;
      listed = sealed.subarray(0, list.size);
      sealed = sealed.subarray(list.size);
    }
    const inner = open(this.#keys, sealed, aadOf(id, header, listed), id, into);
    const codec = inner[0];
    if (codec === undefined || codec >= Codec.sealed) {
      throw corruptObject(id, `unknown codec ${String(codec)} inside its sealed payload`);
    }
    return { codec: codec as Codec, payload: inner.subarray(1), ...(links ? { links } : {}) };
  }
}

function aadOf(id: ObjectId, header: Uint8Array, links?: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from(id, 'hex'), header, ...(links ? [links] : [])]);
}
