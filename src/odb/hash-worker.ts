/**
 * Worker thread that computes one whole-file SHA-256 over ranges of shared
 * buffers, and the BLAKE3 IDs of chunks in them, while the main thread reads
 * and cuts: both hashes run on the second core.
 *
 * Protocol: `{ buffers }` (each a SharedArrayBuffer, offset and length)
 * once per file; then `{ seq, buffer, start, end }` in file order, each
 * answered with `{ seq }` once the range has been consumed (the sender may
 * then overwrite it), and `{ seq, buffer, ranges }` (start, length pairs),
 * answered with `{ seq, ids }`; finally `{ finish: true }`, answered with
 * `{ digest }`.
 */
import { createHash, type Hash } from 'node:crypto';
import { parentPort } from 'node:worker_threads';
import { chunkIdOf } from './object-id.ts';

type Message =
  | { buffers: { sab: SharedArrayBuffer; offset: number; length: number }[] }
  | { seq: number; buffer: number; start: number; end: number }
  | { seq: number; buffer: number; ranges: number[] }
  | { finish: true };

let views: Uint8Array[] = [];
let hasher: Hash = createHash('sha256');

parentPort?.on('message', (message: Message) => {
  if ('buffers' in message) {
    views = message.buffers.map(({ sab, offset, length }) => new Uint8Array(sab, offset, length));
    hasher = createHash('sha256');
  } else if ('finish' in message) {
    parentPort?.postMessage({ digest: hasher.digest('hex') });
    hasher = createHash('sha256');
  } else if ('ranges' in message) {
    const view = views[message.buffer]!;
    const ids: string[] = [];
    const { ranges } = message;
    for (let i = 0; i < ranges.length; i += 2) {
      ids.push(chunkIdOf(view.subarray(ranges[i]!, ranges[i]! + ranges[i + 1]!)));
    }
    parentPort?.postMessage({ seq: message.seq, ids });
  } else {
    const view = views[message.buffer];
    if (view) hasher.update(view.subarray(message.start, message.end));
    parentPort?.postMessage({ seq: message.seq });
  }
});
