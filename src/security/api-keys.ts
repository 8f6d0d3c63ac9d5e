/**
 * API keys for the HTTP server: their format, their scopes, and how their
 * secrets are stored.
 *
 * A key reads `mgk_<id>_<secret>`: `id` is 16 lowercase hex characters (64
 * random bits) naming the key in the token registry, so a lookup never
 * compares secrets; `secret` is 32 random bytes in unpadded base64url (43
 * characters). Only a hash of the secret is ever stored; the key itself is
 * shown once, when it is created.
 *
 * New keys store the SHA-256 of the secret (as GitHub and GitLab store their
 * tokens): the secret is 256 random bits, so no password-hashing work factor
 * makes guessing it from a stolen hash any harder than it already is, while
 * that work factor cost the server ~100 ms of CPU and 19 MiB per cold
 * verification (every command of every client exchanges its key once), and
 * let anyone who knows a key id make the server run it at will.
 *
 * Keys created before that keep their Argon2id hashes (OWASP's minimum: 19
 * MiB, 2 passes, 1 lane, 16-byte salt, 32-byte tag, parameters stored beside
 * each hash) and still verify; the token store caches their verifications.
 * docs/design.md, "Auth".
 */
import { argon2, createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export const SCOPES = ['read', 'write', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

export function isScope(value: unknown): value is Scope {
  return typeof value === 'string' && (SCOPES as readonly string[]).includes(value);
}

/** Whether a key granted `granted` may do what needs `needed` (admin ⊇ write ⊇ read). */
export function scopeAllows(granted: Scope, needed: Scope): boolean {
  return SCOPES.indexOf(granted) >= SCOPES.indexOf(needed);
}

export const API_KEY_PREFIX = 'mgk_';
const KEY_PATTERN = /^mgk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;

export interface ApiKey {
  readonly key: string;
  readonly id: string;
  readonly secret: string;
}

export function generateApiKey(): ApiKey {
  const id = randomBytes(8).toString('hex');
  const secret = randomBytes(32).toString('base64url');
  return { key: `${API_KEY_PREFIX}${id}_${secret}`, id, secret };
}

/**
 * Splits a key into id and secret, or returns undefined when it is not
 * exactly the format `generateApiKey` produces (including a canonical
 * base64url secret, so no two spellings name the same bytes).
 */
export function parseApiKey(key: string): { id: string; secret: string } | undefined {
  if (typeof key !== 'string') return undefined;
  const match = KEY_PATTERN.exec(key);
  if (!match) return undefined;
  const [, id, secret] = match;
  if (id === undefined || secret === undefined) return undefined;
  if (Buffer.from(secret, 'base64url').toString('base64url') !== secret) return undefined;
  return { id, secret };
}

/** A stored hash of a key's secret; plain JSON. */
export type SecretHash = Sha256SecretHash | Argon2SecretHash;

/** The SHA-256 of the secret (keys made since 2026-12-04). */
export interface Sha256SecretHash {
  readonly algorithm: 'sha256';
  /** Base64 of the 32-byte digest. */
  readonly hash: string;
}

/** An Argon2id hash with the parameters that produced it (older keys). */
export interface Argon2SecretHash {
  readonly algorithm: 'argon2id';
  /** Memory cost in KiB. */
  readonly memory: number;
  readonly passes: number;
  readonly parallelism: number;
  /** Base64. */
  readonly salt: string;
  /** Base64; its length is the tag length. */
  readonly hash: string;
}

export const ARGON2_PARAMETERS = {
  memory: 19_456,
  passes: 2,
  parallelism: 1,
  tagLength: 32,
  saltLength: 16,
} as const;

// Bounds a stored record must respect before we spend memory and time on it:
// a tampered tokens.json must not make verification allocate gigabytes.
const MAX_MEMORY_KIB = 1 << 20;
const MAX_PASSES = 64;
const MAX_PARALLELISM = 64;

/** How a new key's secret is stored. */
export function hashSecret(secret: string): Promise<Sha256SecretHash> {
  return Promise.resolve({ algorithm: 'sha256', hash: sha256(secret).toString('base64') });
}

function sha256(secret: string): Buffer {
  return createHash('sha256').update(secret, 'utf8').digest();
}

/** An Argon2id hash, as keys made before SHA-256 hashes were stored (tests, migration). */
export async function hashSecretArgon2(secret: string): Promise<Argon2SecretHash> {
  const { memory, passes, parallelism, tagLength, saltLength } = ARGON2_PARAMETERS;
  const salt = randomBytes(saltLength);
  const tag = await runArgon2(secret, salt, { memory, passes, parallelism, tagLength });
  return {
    algorithm: 'argon2id',
    memory,
    passes,
    parallelism,
    salt: salt.toString('base64'),
    hash: tag.toString('base64'),
  };
}

/**
 * Whether `secret` hashes to `stored`, recomputed with the stored parameters
 * and compared in constant time. A malformed record yields false, never a
 * throw, so a damaged registry entry denies access rather than crashing.
 */
export async function verifySecret(secret: string, stored: SecretHash): Promise<boolean> {
  if (typeof secret !== 'string' || !isSecretHash(stored)) return false;
  if (stored.algorithm === 'sha256') {
    return timingSafeEqual(sha256(secret), Buffer.from(stored.hash, 'base64'));
  }
  const salt = Buffer.from(stored.salt, 'base64');
  const expected = Buffer.from(stored.hash, 'base64');
  let actual: Buffer;
  try {
    actual = await runArgon2(secret, salt, {
      memory: stored.memory,
      passes: stored.passes,
      parallelism: stored.parallelism,
      tagLength: expected.length,
    });
  } catch {
    return false;
  }
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

/** Whether `value` is a well-formed `SecretHash` within the bounds we accept. */
export function isSecretHash(value: unknown): value is SecretHash {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  if (v['algorithm'] === 'sha256') return decodeCanonicalBase64(v['hash'])?.length === 32;
  if (v['algorithm'] !== 'argon2id') return false;
  const parallelism = v['parallelism'];
  if (!isIntegerIn(parallelism, 1, MAX_PARALLELISM)) return false;
  if (!isIntegerIn(v['memory'], 8 * parallelism, MAX_MEMORY_KIB)) return false;
  if (!isIntegerIn(v['passes'], 1, MAX_PASSES)) return false;
  const salt = decodeCanonicalBase64(v['salt']);
  const hash = decodeCanonicalBase64(v['hash']);
  return salt !== undefined && salt.length >= 8 && hash !== undefined && hash.length >= 16;
}

function isIntegerIn(value: unknown, min: number, max: number): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max;
}

function decodeCanonicalBase64(value: unknown): Buffer | undefined {
  if (typeof value !== 'string') return undefined;
  const bytes = Buffer.from(value, 'base64');
  return bytes.toString('base64') === value ? bytes : undefined;
}

function runArgon2(
  secret: string,
  salt: Buffer,
  p: { memory: number; passes: number; parallelism: number; tagLength: number },
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    argon2('argon2id', { message: secret, nonce: salt, ...p }, (error, key) => {
      if (error) reject(error);
      else resolve(key);
    });
  });
}
