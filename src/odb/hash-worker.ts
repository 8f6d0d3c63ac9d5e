/**
 * Worker thread that computes one whole-file SHA-256 over ranges of shared
 * buffers while the main thread cuts and hashes chunks, so the second full
 * pass over the data runs on the second core.
 *
 * Protocol: `{ buffers }` once; then `{ seq, buffer, start, end }` in file
 * order, each answered with `{ seq }` once the range has been consumed (the
 * sender may then overwrite it); finally `{ finish: true }`, answered with
 * `{ digest }`.
 */
import { createHash, type Hash } from 'node:crypto';
import { parentPort } from 'node:worker_threads';

type Message =
  | { buffers: SharedArrayBuffer[] }
  | { seq: number; buffer: number; start: number; end: number }
  | { finish: true };

let views: Uint8Array[] = [];
let hasher: Hash = createHash('sha256');

parentPort?.on('message', (message: Message) => {
  if ('buffers' in message) {
    views = message.buffers.map((sab) => new Uint8Array(sab));
    hasher = createHash('sha256');
  } else if ('finish' in message) {
    parentPort?.postMessage({ digest: hasher.digest('hex') });
    hasher = createHash('sha256');
  } else {
    const view = views[message.buffer];
    if (view) hasher.update(view.subarray(message.start, message.end));
    parentPort?.postMessage({ seq: message.seq });
  }
});
