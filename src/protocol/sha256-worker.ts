/**
 * Worker thread for the server's upload hashes (upload-hashes.ts): the
 * whole-file SHA-256 of each LFS object whose chunks arrive in packs, off
 * the thread that receives and verifies them.
 *
 * Protocol, per session (a number): `{ session, bytes, length }` hashes the
 * first `length` bytes of an ArrayBuffer handed over, and hands it back
 * (`{ spare }`) for the next; `{ sync }` is answered with `{ sync }` once
 * everything sent before it is hashed; `{ session, digest: true }` with
 * `{ session, digest }`, and `{ session, drop: true }` forgets the session.
 */
import { createHash, type Hash } from 'node:crypto';
import { parentPort } from 'node:worker_threads';

type Message =
  | { session: number; bytes: ArrayBuffer; length: number }
  | { sync: number }
  | { session: number; digest: true }
  | { session: number; drop: true };

const hashes = new Map<number, Hash>();

function hashOf(session: number): Hash {
  let hash = hashes.get(session);
  if (!hash) {
    hash = createHash('sha256');
    hashes.set(session, hash);
  }
  return hash;
}

parentPort?.on('message', (message: Message) => {
  if ('sync' in message) {
    parentPort?.postMessage({ sync: message.sync });
  } else if ('bytes' in message) {
    hashOf(message.session).update(new Uint8Array(message.bytes, 0, message.length));
    parentPort?.postMessage({ spare: message.bytes }, [message.bytes]);
  } else if ('digest' in message) {
    const digest = hashOf(message.session).digest('hex');
    hashes.delete(message.session);
    parentPort?.postMessage({ session: message.session, digest });
  } else {
    hashes.delete(message.session);
  }
});
