import { hash } from 'node:crypto';

/**
 * Definition of the gear table, fixed forever: entry i is the first four bytes of
 * SHA-256(GEAR_SEED + decimal(i)), read as a big-endian two's-complement int32. Changing
 * the seed or the rule changes every chunk boundary and loses dedup against all existing
 * repositories, so a new table needs a new chunker version, never an edit here.
 */
export const GEAR_SEED = 'mediagit-gear-v1:';

/** Recomputes the table from its definition; tests compare it with a golden digest. */
export function deriveGearTable(): Int32Array {
  const table = new Int32Array(256);
  for (let i = 0; i < 256; i++) {
    const digest = hash('sha256', GEAR_SEED + String(i), 'buffer');
    table[i] = digest.readInt32BE(0);
  }
  return table;
}

/** The gear table. Treat as read-only: the cut algorithm reads it on every byte. */
export const GEAR: Int32Array = deriveGearTable();
