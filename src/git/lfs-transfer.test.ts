/**
 * The custom transfer protocol's conversation in `serveTransferAgent`, apart
 * from any server: init, per-object errors answered on the object (the agent
 * goes on), and a broken conversation ending the agent with an error.
 * Transfers to a real server are in test/lfs-server.test.ts.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { serveTransferAgent } from './lfs-transfer.ts';

/** Runs the agent over `lines`; returns the JSON messages it wrote and how it ended. */
async function converse(
  gitDir: string,
  lines: readonly string[],
): Promise<{ replies: Record<string, unknown>[]; error?: Error }> {
  const input = new PassThrough();
  const output = new PassThrough();
  const written: Buffer[] = [];
  output.on('data', (data: Buffer) => written.push(data));
  input.end(lines.map((line) => `${line}\n`).join(''));
  let error: Error | undefined;
  await serveTransferAgent(input, output, { gitDir }).catch((e: unknown) => {
    error = e as Error;
  });
  const replies = Buffer.concat(written)
    .toString('utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
  return { replies, ...(error ? { error } : {}) };
}

const OID = 'a'.repeat(64);

describe('lfs-transfer conversation', () => {
  let dir: string;
  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'mediagit-agent-'));
  });
  after(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('answers init with {} and each bad request with an error on that object, then goes on', async () => {
    const file = path.join(dir, 'small.bin');
    await fs.writeFile(file, 'hello');
    const { replies, error } = await converse(dir, [
      JSON.stringify({ event: 'init', operation: 'upload', concurrent: false }),
      // Not a SHA-256.
      JSON.stringify({ event: 'upload', oid: 'xyz', size: 5, path: file, action: { href: 'x' } }),
      // Another server's URL: not a MediaGit object URL.
      JSON.stringify({
        event: 'upload',
        oid: OID,
        size: 5,
        path: file,
        action: { href: `https://lfs.example.com/objects/${OID}` },
      }),
      // The file is not the size git-lfs says.
      JSON.stringify({
        event: 'upload',
        oid: OID,
        size: 6,
        path: file,
        action: { href: `http://127.0.0.1:9/r.git/info/lfs/objects/${OID}` },
      }),
      // No action at all (a server that did not pick this transfer).
      JSON.stringify({ event: 'upload', oid: OID, size: 5, path: file }),
      JSON.stringify({ event: 'terminate' }),
    ]);
    assert.equal(error, undefined);
    assert.deepEqual(replies[0], {});
    const completes = replies.slice(1);
    assert.equal(completes.length, 4);
    for (const reply of completes) {
      assert.equal(reply['event'], 'complete');
      const err = reply['error'] as { code: number; message: string };
      assert.equal(typeof err.code, 'number');
      assert.ok(err.message.length > 0);
    }
    assert.match((completes[0]!['error'] as { message: string }).message, /SHA-256/);
    assert.match((completes[1]!['error'] as { message: string }).message, /not a MediaGit/);
    assert.match((completes[2]!['error'] as { message: string }).message, /not the 6-byte file/);
    assert.match((completes[3]!['error'] as { message: string }).message, /no action/);
  });

  it('refuses an unknown operation at init, and ends on a line that is not JSON or a request before init', async () => {
    const unknown = await converse(dir, [
      JSON.stringify({ event: 'init', operation: 'sideways' }),
      JSON.stringify({ event: 'terminate' }),
    ]);
    assert.match(
      ((unknown.replies[0]!['error'] as { message: string }) ?? {}).message,
      /unknown operation/,
    );
    const garbage = await converse(dir, ['{"event": "init", "operation": "upload"}', 'not json']);
    assert.match(garbage.error?.message ?? '', /not a JSON line/);
    const early = await converse(dir, [
      JSON.stringify({ event: 'download', oid: OID, size: 1, action: { href: 'x' } }),
    ]);
    assert.match(early.error?.message ?? '', /before its init/);
  });
});
