/** Deterministic test content, importable from any test (no project imports). */
import { createCipheriv, createHash } from 'node:crypto';

/**
 * `length` pseudo-random (incompressible) bytes determined by `seed` and
 * `label` (the AES-256-CTR keystream under SHA-256(`${label}-${seed}`)). Fixed
 * forever: golden vectors depend on it.
 */
export function pseudoRandomBytes(length: number, seed: number, label = 'mediagit-test'): Buffer {
  const key = createHash('sha256').update(`${label}-${seed}`).digest();
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  return Buffer.concat([cipher.update(Buffer.alloc(length)), cipher.final()]);
}
