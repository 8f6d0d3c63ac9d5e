/**
 * The PSD record-level merge on ~200 MB files (not part of npm test):
 * writes a 4096×4096 RGB PSD with three full-canvas raw layers (64 MiB
 * each), a version with the first layer repainted (ours) and one with the
 * last repainted (theirs); then times reading the three versions (`cat` to
 * /dev/null, and through RandomAccess in 8 MiB reads), and the merge (the
 * strategy plus writing the merged file) in a child process, whose peak RSS
 * it reports. Goals (issue 19): merge ≤ 3× the read, peak RSS < 500 MiB.
 *
 * It also runs the merge through a RandomAccess that reuses one buffer, to
 * show how much of the time is the reader's fresh buffers.
 *
 *   node bench/merge-psd.ts [--keep]
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { readPsd } from 'ag-psd';
import { handleAccess, type RandomAccess } from '../src/media/info/random-access.ts';
import { writeMerged } from '../src/media/merge-strategy.ts';
import { psdMergeStrategy, sameRange } from '../src/media/merge/layered/psd.ts';
import { readPsdFile } from '../src/media/merge/layered/psd-file.ts';
import { LAYERS, SIDE, writePsd } from './psd-fixture.ts';

const run = promisify(execFile);
/**
 * A RandomAccess that reads into one reused buffer (the contract lets a read
 * return a view callers must copy to keep): what handleAccess costs in fresh
 * buffers and page faults, against the merge's own work.
 */
function pooledAccess(handle: fs.FileHandle, size: number): RandomAccess {
  let buffer = Buffer.alloc(0);
  return {
    size,
    read: async (offset, length) => {
      const want = Math.max(0, Math.min(length, size - offset));
      if (buffer.length < want) buffer = Buffer.allocUnsafe(want);
      let done = 0;
      while (done < want) {
        const { bytesRead } = await handle.read(buffer, done, want - done, offset + done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
      return buffer.subarray(0, done);
    },
  };
}

type Reader = 'handle' | 'pooled';

async function open(
  file: string,
  reader: Reader = 'handle',
): Promise<{ access: RandomAccess; close: () => Promise<void> }> {
  const handle = await fs.open(file, 'r');
  const { size } = await handle.stat();
  const access = reader === 'pooled' ? pooledAccess(handle, size) : handleAccess(handle, size);
  return { access, close: () => handle.close() };
}

/** The child: merges base/ours/theirs into out; prints times and peak RSS as JSON. */
async function child([reader, base, ours, theirs, out]: string[]): Promise<void> {
  const started = performance.now();
  const sides = await Promise.all([base!, ours!, theirs!].map((f) => open(f, reader as Reader)));
  const input = { base: sides[0]!.access, ours: sides[1]!.access, theirs: sides[2]!.access };
  const result = await psdMergeStrategy.merge({
    path: 'big.psd',
    format: {
      format: 'psd',
      category: 'image',
      alreadyCompressed: false,
      mime: 'image/vnd.adobe.photoshop',
      detectedBy: 'magic',
    } as never,
    ...input,
  });
  const decided = performance.now();
  if (!('merged' in result)) throw new Error(JSON.stringify(result));
  const handle = await fs.open(out!, 'w');
  let at = 0;
  await writeMerged(result.merged, input, async (data) => {
    await handle.write(data, 0, data.length, at);
    at += data.length;
  });
  await handle.close();
  for (const s of sides) await s.close();
  const done = performance.now();
  console.log(
    JSON.stringify({
      decideMs: decided - started,
      writeMs: done - decided,
      totalMs: done - started,
      maxRssMiB: process.resourceUsage().maxRSS / 1024,
      summary: result.summary,
    }),
  );
}

async function main(): Promise<void> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'mediagit-bench-psd-'));
  const [base, ours, theirs, out] = ['base', 'ours', 'theirs', 'merged'].map((n) =>
    path.join(dir, `${n}.psd`),
  );
  try {
    await writePsd(base!, [1, 2, 3]);
    await writePsd(ours!, [11, 2, 3]);
    await writePsd(theirs!, [1, 2, 13]);
    const size = (await fs.stat(base!)).size;
    console.log(
      `PSD: ${(size / 1e6).toFixed(1)} MB each (${SIDE}x${SIDE}, ${LAYERS.length} raw layers)`,
    );

    const t = performance.now();
    await run('sh', ['-c', `cat "${base}" "${ours}" "${theirs}" > /dev/null`]);
    const catMs = performance.now() - t;
    const readAll = async (reader: Reader) => {
      const start = performance.now();
      for (const file of [base!, ours!, theirs!]) {
        const { access, close } = await open(file, reader);
        for (let at = 0; at < access.size; at += 8 << 20) await access.read(at, 8 << 20);
        await close();
      }
      return performance.now() - start;
    };
    const readMs = await readAll('handle');
    const pooledReadMs = await readAll('pooled');

    const self = fileURLToPath(import.meta.url);
    const mergeWith = async (reader: Reader) => {
      const args = [self, '--child', reader, base!, ours!, theirs!, out!];
      const { stdout } = await run(process.execPath, args, { maxBuffer: 1 << 20 });
      return JSON.parse(stdout) as {
        decideMs: number;
        writeMs: number;
        totalMs: number;
        maxRssMiB: number;
        summary: string;
      };
    };
    const pooled = await mergeWith('pooled');
    const merge = await mergeWith('handle');

    // The merged file: ag-psd reads its layers; their pixels are ours' first and theirs' last.
    const merged = await fs.readFile(out!);
    const doc = readPsd(merged, {
      skipLayerImageData: true,
      skipCompositeImageData: true,
      skipThumbnail: true,
    });
    const names = (doc.children ?? []).map((l) => l.name).join(', ');
    const opened = [await open(out!), await open(ours!), await open(theirs!)];
    const [m, o, th] = await Promise.all(opened.map((f) => readPsdFile(f.access)));
    const same = async (i: number, side: typeof o) =>
      sameRange(m!.access, m!.records[i]!.data, side!.access, side!.records[i]!.data);
    const ok = (await same(0, o)) && (await same(1, o)) && (await same(2, th));
    for (const f of opened) await f.close();

    const f = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
    console.log(
      `read three versions: cat ${f(catMs)}; RandomAccess ${f(readMs)} (reused buffer: ${f(pooledReadMs)})`,
    );
    console.log(
      `merge: ${f(merge.totalMs)} (decide ${f(merge.decideMs)}, write ${f(merge.writeMs)}) — ${merge.summary}`,
    );
    console.log(
      `ratio: ${(merge.totalMs / catMs).toFixed(2)}x cat, ${(merge.totalMs / readMs).toFixed(2)}x RandomAccess (goal ≤ 3x)`,
    );
    console.log(`merge peak RSS: ${merge.maxRssMiB.toFixed(0)} MiB (goal < 500 MiB)`);
    console.log(
      `with a reused-buffer RandomAccess: merge ${f(pooled.totalMs)} (decide ${f(pooled.decideMs)}, write ${f(pooled.writeMs)}), ${(pooled.totalMs / catMs).toFixed(2)}x cat, peak RSS ${pooled.maxRssMiB.toFixed(0)} MiB`,
    );
    console.log(
      `merged file: ${(merged.length / 1e6).toFixed(1)} MB; ag-psd reads layers [${names}]; pixels from ours/ours/theirs: ${ok}`,
    );
  } finally {
    if (!process.argv.includes('--keep')) await fs.rm(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--child') await child(process.argv.slice(3));
else await main();
