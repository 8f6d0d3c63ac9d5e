/**
 * Encryption at rest, the cryptographic core (issue 18; docs/encryption.md):
 * a repository master key wrapped by key slots (a passphrase through
 * Argon2id, or a key file), the subkeys derived from it, deterministic
 * authenticated encryption of object records and the secret gear table of
 * an encrypted repository's chunker.
 *
 * Not wired into the object store yet: `init --encrypt` refuses with a
 * clear error until every object path seals what it writes (docs/encryption.md
 * lists what remains).
 */
import {
  argon2,
  createCipheriv,
  createDecipheriv,
  createHmac,
  hkdfSync,
  randomBytes,
  timingSafeEqual,
} from 'node:crypto';
import { MediaGitError } from '../errors.ts';

export const MASTER_KEY_BYTES = 32;

/**
 * Argon2id parameters of a passphrase slot: RFC 9106's second recommended
 * option (64 MiB, 3 passes, 4 lanes), about 0.2 s on these machines. A
 * slot records its own, so they can be raised later without breaking old slots.
 */
export const DEFAULT_KDF: KdfParams = { memory: 65536, passes: 3, parallelism: 4 };

/** The least a slot may ask for: weaker parameters are refused when read (a tampered key file). */
const MIN_KDF: KdfParams = { memory: 8192, passes: 1, parallelism: 1 };
const MAX_KDF_MEMORY = 4 * 1024 * 1024; // KiB: 4 GiB

export interface KdfParams {
  /** KiB. */
  readonly memory: number;
  readonly passes: number;
  readonly parallelism: number;
}

export type SlotSecret =
  | { readonly kind: 'passphrase'; readonly passphrase: string }
  | { readonly kind: 'keyfile'; readonly key: Buffer };

export interface KeySlot {
  readonly id: string;
  readonly kind: 'passphrase' | 'keyfile';
  readonly created: string;
  /** Argon2id salt and parameters (passphrase slots). */
  readonly kdf?: KdfParams & { readonly salt: string };
  /** nonce ‖ AES-256-GCM(master key) ‖ tag, base64. */
  readonly wrapped: string;
}

/** What `.mediagit/keys.json` (and a server's copy) holds: nothing secret without a slot's secret. */
export interface KeyFile {
  readonly version: 1;
  /** A random ID binding slots and objects to this repository. */
  readonly repository: string;
  readonly slots: readonly KeySlot[];
}

function badKeyFile(reason: string): MediaGitError {
  return new MediaGitError('BAD_KEY_FILE', `the repository's key file is invalid: ${reason}`, {
    kind: 'corrupt',
    data: { reason },
  });
}

async function kek(secret: SlotSecret, kdf: KeySlot['kdf']): Promise<Buffer> {
  if (secret.kind === 'keyfile') {
    if (secret.key.length < 32) {
      throw new MediaGitError('BAD_KEY', 'a key file must hold at least 32 bytes', {
        kind: 'usage',
      });
    }
    // The file's bytes, whatever their length, to one AES-256 key.
    return Buffer.from(hkdfSync('sha256', secret.key, Buffer.alloc(0), 'mediagit keyfile v1', 32));
  }
  if (!kdf) throw badKeyFile('a passphrase slot without Argon2id parameters');
  return new Promise((resolve, reject) =>
    argon2(
      'argon2id',
      {
        message: Buffer.from(secret.passphrase, 'utf8'),
        nonce: Buffer.from(kdf.salt, 'base64'),
        memory: kdf.memory,
        passes: kdf.passes,
        parallelism: kdf.parallelism,
        tagLength: 32,
      },
      (error, key) => (error ? reject(error) : resolve(Buffer.from(key))),
    ),
  );
}

function checkKdf(kdf: KeySlot['kdf']): void {
  if (!kdf) return;
  const { memory, passes, parallelism, salt } = kdf;
  const ok =
    Number.isSafeInteger(memory) &&
    Number.isSafeInteger(passes) &&
    Number.isSafeInteger(parallelism) &&
    memory >= MIN_KDF.memory &&
    memory <= MAX_KDF_MEMORY &&
    passes >= MIN_KDF.passes &&
    passes <= 64 &&
    parallelism >= MIN_KDF.parallelism &&
    parallelism <= 64 &&
    memory >= 8 * parallelism &&
    typeof salt === 'string' &&
    Buffer.from(salt, 'base64').length >= 16;
  if (!ok) throw badKeyFile('Argon2id parameters out of bounds');
}

/** AAD of a slot's wrapping: the repository and the slot, so a slot cannot move. */
const slotAad = (repository: string, slot: string) =>
  Buffer.from(`mediagit key slot v1\0${repository}\0${slot}`);

async function wrap(
  repository: string,
  master: Buffer,
  secret: SlotSecret,
  kdfParams: KdfParams,
): Promise<KeySlot> {
  const id = randomBytes(8).toString('hex');
  const kdf =
    secret.kind === 'passphrase'
      ? { ...kdfParams, salt: randomBytes(16).toString('base64') }
      : undefined;
  const key = await kek(secret, kdf);
  const nonce = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(slotAad(repository, id));
  const sealed = Buffer.concat([nonce, cipher.update(master), cipher.final(), cipher.getAuthTag()]);
  return {
    id,
    kind: secret.kind,
    created: new Date().toISOString(),
    ...(kdf ? { kdf } : {}),
    wrapped: sealed.toString('base64'),
  };
}

/** A new master key and a key file with one slot for `secret`. */
export async function createKeyFile(
  secret: SlotSecret,
  kdf: KdfParams = DEFAULT_KDF,
): Promise<{ master: Buffer; keyFile: KeyFile }> {
  const master = randomBytes(MASTER_KEY_BYTES);
  const repository = randomBytes(16).toString('hex');
  const slot = await wrap(repository, master, secret, kdf);
  return { master, keyFile: { version: 1, repository, slots: [slot] } };
}

/** Checks a parsed key file's shape; BAD_KEY_FILE otherwise. */
export function parseKeyFile(value: unknown): KeyFile {
  const file = value as Partial<KeyFile> | null;
  if (typeof file !== 'object' || file === null) throw badKeyFile('not an object');
  if (file.version !== 1) throw badKeyFile(`unknown version ${String(file.version)}`);
  if (typeof file.repository !== 'string' || !/^[0-9a-f]{32}$/.test(file.repository)) {
    throw badKeyFile('no repository ID');
  }
  if (!Array.isArray(file.slots) || file.slots.length === 0) throw badKeyFile('no key slots');
  for (const slot of file.slots as Partial<KeySlot>[]) {
    if (
      typeof slot !== 'object' ||
      slot === null ||
      typeof slot.id !== 'string' ||
      !/^[0-9a-f]{16}$/.test(slot.id) ||
      (slot.kind !== 'passphrase' && slot.kind !== 'keyfile') ||
      typeof slot.wrapped !== 'string' ||
      Buffer.from(slot.wrapped, 'base64').length !== 12 + MASTER_KEY_BYTES + 16
    ) {
      throw badKeyFile('a malformed key slot');
    }
    if (slot.kind === 'passphrase') {
      if (!slot.kdf) throw badKeyFile('a passphrase slot without Argon2id parameters');
      checkKdf(slot.kdf);
    }
  }
  return file as KeyFile;
}

/**
 * The master key, from the first slot of the secret's kind that it opens.
 * WRONG_KEY (exit 128, one line) when none does: nothing tells a wrong
 * passphrase from a damaged slot, as with restic and borg.
 */
export async function unlock(keyFile: KeyFile, secret: SlotSecret): Promise<Buffer> {
  for (const slot of keyFile.slots) {
    if (slot.kind !== secret.kind) continue;
    const key = await kek(secret, slot.kdf);
    const sealed = Buffer.from(slot.wrapped, 'base64');
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, 12));
      decipher.setAAD(slotAad(keyFile.repository, slot.id));
      decipher.setAuthTag(sealed.subarray(12 + MASTER_KEY_BYTES));
      return Buffer.concat([
        decipher.update(sealed.subarray(12, 12 + MASTER_KEY_BYTES)),
        decipher.final(),
      ]);
    } catch {
      // not this slot
    }
  }
  const what = secret.kind === 'passphrase' ? 'passphrase' : 'key file';
  throw new MediaGitError('WRONG_KEY', `wrong ${what}: it opens no key slot of this repository`, {
    kind: 'user',
    data: { exitCode: 128 },
  });
}

/** The key file with one more slot for `secret` (the caller has unlocked `master`). */
export async function addSlot(
  keyFile: KeyFile,
  master: Buffer,
  secret: SlotSecret,
  kdf: KdfParams = DEFAULT_KDF,
): Promise<{ keyFile: KeyFile; slot: KeySlot }> {
  const slot = await wrap(keyFile.repository, master, secret, kdf);
  return { keyFile: { ...keyFile, slots: [...keyFile.slots, slot] }, slot };
}

/** The key file without slot `id`; the last slot cannot go (the data would be lost). */
export function removeSlot(keyFile: KeyFile, id: string): KeyFile {
  const slots = keyFile.slots.filter((slot) => slot.id !== id);
  if (slots.length === keyFile.slots.length) {
    throw new MediaGitError('NO_SUCH_KEY', `no key slot ${id}`, { kind: 'usage', data: { id } });
  }
  if (slots.length === 0) {
    throw new MediaGitError(
      'LAST_KEY',
      `key slot ${id} is the only one: removing it would make the repository unreadable`,
      { kind: 'usage', data: { id } },
    );
  }
  return { ...keyFile, slots };
}

/** A fast collision-resistant hash of a plaintext (the object store passes BLAKE3). */
export type Digest = (data: Uint8Array) => Uint8Array;

/** The keys an encrypted repository derives from its master key (HKDF-SHA256, one label each). */
export interface RepoKeys {
  /** Hashes a plaintext for its synthetic IV. */
  readonly digest: Digest;
  /** Keys the per-object subkeys (HMAC-SHA256 of the synthetic IV). */
  readonly encryption: Buffer;
  /** Keys the synthetic IV (HMAC-SHA256 of the plaintext). */
  readonly siv: Buffer;
  /** Keys the chunker's gear table. */
  readonly gear: Buffer;
}

export function deriveKeys(master: Buffer, repository: string, digest: Digest): RepoKeys {
  if (master.length !== MASTER_KEY_BYTES) {
    throw new MediaGitError('BAD_KEY', 'a master key is 32 bytes', { kind: 'internal' });
  }
  const salt = Buffer.from(repository, 'utf8');
  const derive = (label: string) =>
    Buffer.from(hkdfSync('sha256', master, salt, `mediagit ${label} v1`, 32));
  return { digest, encryption: derive('encryption'), siv: derive('siv'), gear: derive('gear') };
}

/**
 * The chunker's gear table for an encrypted repository: 256 int32 values
 * from HMAC-SHA256(gear key, i). With a secret table, where the chunker
 * cuts (and so each chunk's length) reveals nothing a stranger could match
 * against known content (restic's per-repository chunker polynomial).
 */
export function secretGearTable(keys: RepoKeys): Int32Array {
  const table = new Int32Array(256);
  for (let i = 0; i < 256; i++) {
    table[i] = createHmac('sha256', keys.gear).update(String(i)).digest().readInt32BE(0);
  }
  return table;
}

const SIV_BYTES = 24;

/**
 * HMAC-SHA256 under the SIV key of the AAD, the length and a digest of the
 * plaintext (a fast hash: HMAC over the whole plaintext ran at 1.6 GB/s,
 * BLAKE3 at 7 GB/s here), cut to 24 bytes.
 */
function syntheticIv(keys: RepoKeys, plaintext: Uint8Array, aad: Uint8Array): Buffer {
  const length = Buffer.alloc(8);
  length.writeBigUInt64BE(BigInt(plaintext.length));
  return createHmac('sha256', keys.siv)
    .update(length)
    .update(aad)
    .update(keys.digest(plaintext))
    .digest()
    .subarray(0, SIV_BYTES);
}
const TAG_BYTES = 16;
const ZERO_NONCE = Buffer.alloc(12);

/**
 * Encrypts an object's record deterministically: the synthetic IV is an
 * HMAC of the plaintext (and `aad`), the AES-256-GCM key is an HMAC of the
 * IV, the nonce zero (each key encrypts one plaintext only). The same
 * record in the same repository seals to the same bytes, so the sealed
 * bytes' hash is a stable name a server can check without the key, and
 * dedup works; in another repository, everything differs. Output:
 * siv (24) ‖ ciphertext ‖ tag (16).
 */
export function seal(keys: RepoKeys, plaintext: Uint8Array, aad: Uint8Array): Buffer {
  const siv = syntheticIv(keys, plaintext, aad);
  const key = createHmac('sha256', keys.encryption).update(siv).digest();
  const cipher = createCipheriv('aes-256-gcm', key, ZERO_NONCE);
  cipher.setAAD(aad);
  return Buffer.concat([siv, cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
}

/**
 * Decrypts what `seal` made and checks it: the tag (nothing was changed)
 * and the synthetic IV (it is this plaintext's). OBJECT_CORRUPT naming
 * `what` otherwise: a flipped byte anywhere is an authentication failure.
 */
export function open(keys: RepoKeys, sealed: Uint8Array, aad: Uint8Array, what: string): Buffer {
  const failed = (reason: string) =>
    new MediaGitError('OBJECT_CORRUPT', `object ${what} is corrupt: ${reason}`, {
      kind: 'corrupt',
      data: { id: what, reason },
    });
  const bytes = Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength);
  if (bytes.length < SIV_BYTES + TAG_BYTES) throw failed('too short to be encrypted');
  const siv = bytes.subarray(0, SIV_BYTES);
  const key = createHmac('sha256', keys.encryption).update(siv).digest();
  let plaintext: Buffer;
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, ZERO_NONCE);
    decipher.setAAD(aad);
    decipher.setAuthTag(bytes.subarray(bytes.length - TAG_BYTES));
    plaintext = Buffer.concat([
      decipher.update(bytes.subarray(SIV_BYTES, bytes.length - TAG_BYTES)),
      decipher.final(),
    ]);
  } catch {
    throw failed('authentication failed (wrong key, or the bytes were changed)');
  }
  const expected = syntheticIv(keys, plaintext, aad);
  if (!timingSafeEqual(expected, siv)) throw failed('authentication failed (synthetic IV)');
  return plaintext;
}
