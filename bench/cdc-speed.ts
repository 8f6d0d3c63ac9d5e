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

// threadCpuUsage needs Node 23.9; the project's floor is 22.15.
const cpuMicros = (): number =>
  typeof process.threadCpuUsage === 'function'
    ? process.threadCpuUsage().user
    : process.cpuUsage().user;

const passes = TOTAL_BYTES / BUFFER_BYTES;
let chunks = 0;
const t0 = process.hrtime.bigint();
const cpu0 = cpuMicros();
for (let p = 0; p < passes; p++) chunks += pass();
const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
const cpuSeconds = (cpuMicros() - cpu0) / 1e6;
const bytes = passes * BUFFER_BYTES;

const gbps = (s: number) => (bytes / s / 1e9).toFixed(2);
// CPU time of this thread, because other work on a 2-core machine distorts wall time.
console.log(
  `cdc: ${bytes / 2 ** 30} GiB in ${seconds.toFixed(3)} s = ${gbps(seconds)} GB/s wall,` +
    ` ${gbps(cpuSeconds)} GB/s per CPU second` +
    ` (avg ${sizes.avg / 2 ** 20} MiB tier, ${chunks} chunks, mean ${(bytes / chunks / 2 ** 20).toFixed(2)} MiB)`,
);
