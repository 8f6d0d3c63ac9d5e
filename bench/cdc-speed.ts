// Throughput of findChunkLength over 1 GiB of random data, streamed logically through one
// reused 32 MiB buffer (fresh memory costs more than the CDC itself; PERFORMANCE-NOTES.md).
// Usage: node bench/cdc-speed.ts [file-size]   (picks the size tier; default 1 GiB -> 2 MiB avg)
import { randomFillSync } from 'node:crypto';
import { chunkSizesForFile, findChunkLength } from '../src/chunking/fastcdc.ts';

const BUFFER_BYTES = 32 * 1024 * 1024;
const TOTAL_BYTES = 1024 * 1024 * 1024;
const sizes = chunkSizesForFile(Number(process.argv[2] ?? TOTAL_BYTES));
const buf = randomFillSync(new Uint8Array(BUFFER_BYTES));

// No warm-up pass: a command chunks cold, so the first pass counts.
// Each pass chunks the whole buffer as if it were one input; a pass ends with a short chunk.
function pass(): number {
  let chunks = 0;
  for (let start = 0; start < BUFFER_BYTES; chunks++) {
    start += findChunkLength(buf, start, BUFFER_BYTES, sizes);
  }
  return chunks;
}


const passes = TOTAL_BYTES / BUFFER_BYTES;
let chunks = 0;
const t0 = process.hrtime.bigint();
for (let p = 0; p < passes; p++) chunks += pass();
const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
const bytes = passes * BUFFER_BYTES;

console.log(
  `cdc: ${(bytes / 2 ** 30).toFixed(2)} GiB in ${seconds.toFixed(3)} s = ${(bytes / seconds / 1e9).toFixed(2)} GB/s` +
    ` (avg ${sizes.avg / 2 ** 20} MiB tier, ${chunks} chunks, mean ${(bytes / chunks / 2 ** 20).toFixed(2)} MiB)`,
);
