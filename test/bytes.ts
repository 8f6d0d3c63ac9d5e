/** Deterministic test content, importable from any test (no project imports). */
import { createCipheriv, createHash } from 'node:crypto';
import { open } from 'node:fs/promises';

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

/**
 * Writes the same bytes as `pseudoRandomBytes(length, seed, label)` to
 * `file` in pieces, so a test can make a 1 GiB file without holding it.
 */
export async function writePseudoRandomFile(
  file: string,
  length: number,
  seed: number,
  label = 'mediagit-test',
): Promise<void> {
  const key = createHash('sha256').update(`${label}-${seed}`).digest();
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  const zeros = Buffer.alloc(Math.min(length, 32 * 1024 * 1024));
  const handle = await open(file, 'w');
  try {
    for (let done = 0; done < length;) {
      const piece = cipher.update(zeros.subarray(0, Math.min(zeros.length, length - done)));
      await handle.write(piece, 0, piece.length, done);
      done += piece.length;
    }
  } finally {
    await handle.close();
  }
}
