/**
 * A 1 GiB incompressible file through a real server, counting the bytes the
 * server received and sent (its /metrics):
 * - a push killed halfway, run again, sends at most 10% more than the file;
 * - after a 4 KiB insert in the middle, the next push sends at most 1% of it;
 * - a fetch killed halfway, run again, receives at most 10% more than the
 *   file, and the checkout is byte-identical.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import { BackendRepo } from '../src/protocol/backend-repo.ts';
import { verifyRepo } from '../src/protocol/verify.ts';
import { FsBackend } from '../src/storage/fs-backend.ts';
import { collect, pseudoRandomBytes, TempRepo, writePseudoRandomFile } from './helpers.ts';
import { createToken, useServerRoot, type ServerProcess } from './server.ts';

const SIZE = 1024 * 1024 * 1024;

describe('a 1 GiB file through a server', () => {
  const fixture = useServerRoot('large', ['proj']);
  let server: ServerProcess;
  let token: string;

  before(async () => {
    token = await createToken(fixture.root, 'big', 'proj', 'write');
    server = await fixture.serve();
  });

  async function fileDigest(file: string): Promise<string> {
    const hash = createHash('sha256');
    const handle = await fs.open(file, 'r');
    try {
      const buffer = Buffer.alloc(16 * 1024 * 1024);
      for (let at = 0; ;) {
        const { bytesRead } = await handle.read(buffer, 0, buffer.length, at);
        if (bytesRead === 0) break;
        hash.update(buffer.subarray(0, bytesRead));
        at += bytesRead;
      }
    } finally {
      await handle.close();
    }
    return hash.digest('hex');
  }

  /** Bytes a process has read so far (sockets and files), from /proc/<pid>/io. */
  async function readChars(pid: number): Promise<number> {
    const io = await fs.readFile(`/proc/${pid}/io`, 'utf8');
    return Number(/^rchar: (\d+)$/m.exec(io)![1]);
  }

  /** Bytes a process has written so far (sockets and files), from /proc/<pid>/io. */
  async function writtenChars(pid: number): Promise<number> {
    const io = await fs.readFile(`/proc/${pid}/io`, 'utf8');
    return Number(/^wchar: (\d+)$/m.exec(io)![1]);
  }

  /** Inserts `insert` at `at` in `file`, rewriting it through a temp file. */
  async function insertInto(file: string, at: number, insert: Buffer): Promise<void> {
    const tmp = `${file}.tmp`;
    const input = await fs.open(file, 'r');
    const output = await fs.open(tmp, 'w');
    try {
      const buffer = Buffer.alloc(32 * 1024 * 1024);
      let written = 0;
      for (let pos = 0; ;) {
        const { bytesRead } = await input.read(buffer, 0, buffer.length, pos);
        if (bytesRead === 0) break;
        let piece = buffer.subarray(0, bytesRead);
        if (pos <= at && at < pos + bytesRead) {
          piece = Buffer.concat([piece.subarray(0, at - pos), insert, piece.subarray(at - pos)]);
        }
        await output.write(piece, 0, piece.length, written);
        written += piece.length;
        pos += bytesRead;
      }
    } finally {
      await input.close();
      await output.close();
    }
    await fs.rename(tmp, file);
  }

  /** Kills `child` once `progress()` reaches `target`; resolves when it has exited. */
  async function killAt(
    child: ReturnType<TempRepo['spawn']>,
    progress: () => Promise<number>,
    target: number,
  ): Promise<number> {
    const done = collect(child);
    let reached = 0;
    while (child.exitCode === null) {
      reached = await progress();
      if (reached >= target) {
        child.kill('SIGKILL');
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    const result = await done;
    assert.equal(result.signal, 'SIGKILL', `finished before it was killed: ${result.stderr}`);
    return reached;
  }

  test('1 GiB: resumed push, 4 KiB insert, resumed fetch', { timeout: 600_000 }, async (t) => {
    const env = { MEDIAGIT_TOKEN: token };
    const a = fixture.track(await TempRepo.create()).withEnv(env);
    await writePseudoRandomFile(a.path('big.bin'), SIZE, 1, 'large');
    await a.ok(['add', 'big.bin']);
    await a.ok(['commit', '-q', '-m', 'v1']);
    await a.ok(['remote', 'add', 'origin', server.url('proj')]);

    // A push killed once the server holds about half of the chunks, then run again.
    const received0 = await server.metric('mediagit_http_bytes_received_total');
    const read0 = await readChars(server.child.pid!);
    const halfway = await killAt(
      a.spawn(['push', '-q', 'origin', 'main']),
      () => server.metric('mediagit_chunks_stored_total'),
      200,
    );
    assert.ok(halfway >= 200);
    const repo = new BackendRepo(new FsBackend(path.join(fixture.root, 'proj')));
    assert.equal(
      await repo.readRef('refs/heads/main'),
      undefined,
      'a killed push moved the branch',
    );
    await a.ok(['push', '-q', '-u', 'origin', 'main']);
    // Two measures of what the server took in: its counter of request bodies
    // that arrived whole (a lower bound: uploads cut off by the kill are not in
    // it) and every byte its process read (rchar: sockets and files, an upper
    // bound).
    const pushed = (await server.metric('mediagit_http_bytes_received_total')) - received0;
    const readByServer = (await readChars(server.child.pid!)) - read0;
    assert.ok(pushed >= SIZE, `sent ${pushed} bytes: fewer than the file holds`);
    assert.ok(
      readByServer <= SIZE * 1.1,
      `a resumed push made the server read ${readByServer} bytes for a ${SIZE}-byte file`,
    );
    t.diagnostic(
      `killed + resumed push: server read ${((readByServer / SIZE) * 100).toFixed(1)}% of the file`,
    );

    // 4 KiB inserted in the middle: at most 1% of the file travels.
    await insertInto(a.path('big.bin'), SIZE / 2 + 12345, pseudoRandomBytes(4096, 2, 'large'));
    await a.ok(['add', 'big.bin']);
    await a.ok(['commit', '-q', '-m', 'v2']);
    const before2 = await server.metric('mediagit_http_bytes_received_total');
    const edit = JSON.parse((await a.ok(['push', '--json'])).out) as { stats: { bytes: number } };
    const sent = (await server.metric('mediagit_http_bytes_received_total')) - before2;
    assert.ok(sent <= SIZE / 100, `a 4 KiB insert sent ${sent} bytes (over 1% of the file)`);
    t.diagnostic(
      `push after a 4 KiB insert: ${sent} bytes = ${((sent / SIZE) * 100).toFixed(2)}% of the file`,
    );
    assert.ok(edit.stats.bytes <= sent, `${edit.stats.bytes} > ${sent}`);
    assert.deepEqual((await verifyRepo(repo)).problems, []);

    // A fetch killed halfway, then run again, then checked out.
    const b = fixture.track(await TempRepo.create()).withEnv(env);
    await b.ok(['remote', 'add', 'origin', server.url('proj')]);
    // What the server wrote (wchar: bytes its sockets accepted; answers still
    // queued in the server when the client dies are not counted as sent).
    const sent0 = await writtenChars(server.child.pid!);
    await killAt(
      b.spawn(['fetch', '-q', 'origin']),
      async () => (await writtenChars(server.child.pid!)) - sent0,
      SIZE / 2,
    );
    await b.ok(['fetch', '-q', 'origin']);
    const fetched = (await writtenChars(server.child.pid!)) - sent0;
    t.diagnostic(
      `killed + resumed fetch: server sent ${((fetched / SIZE) * 100).toFixed(1)}% of the file`,
    );
    assert.ok(fetched <= SIZE * 1.1, `a resumed fetch received ${fetched} bytes`);
    await b.ok(['reset', '-q', '--hard', 'origin/main']);
    assert.equal(await fileDigest(b.path('big.bin')), await fileDigest(a.path('big.bin')));
  });
});
