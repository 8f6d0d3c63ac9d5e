import assert from 'node:assert/strict';
import { PassThrough, Readable } from 'node:stream';
import { describe, test } from 'node:test';
import { MAX_PKT_PAYLOAD, PktReader, PktWriter } from './pkt-line.ts';

async function written(write: (writer: PktWriter) => Promise<void>): Promise<Buffer> {
  const sink = new PassThrough();
  const parts: Buffer[] = [];
  sink.on('data', (part: Buffer) => parts.push(part));
  await write(new PktWriter(sink));
  sink.end();
  await new Promise((resolve) => sink.on('end', resolve));
  return Buffer.concat(parts);
}

/** A stream delivering `bytes` in pieces of `step` bytes (packets split across reads). */
const pieces = (bytes: Buffer, step: number): Readable =>
  Readable.from(
    Array.from({ length: Math.ceil(bytes.length / step) }, (_, i) =>
      bytes.subarray(i * step, (i + 1) * step),
    ),
  );

describe('pkt-line', () => {
  test('writes the framing Git documents', async () => {
    const bytes = await written(async (w) => {
      await w.list(['git-filter-server', 'version=2']);
      await w.content(Buffer.from('hi'));
      await w.flush();
    });
    assert.equal(bytes.toString('latin1'), '0016git-filter-server\n000eversion=2\n00000006hi0000');
  });

  test('content over one packet is split at 65516 bytes and read back whole, whatever the read sizes', async () => {
    const content = Buffer.alloc(MAX_PKT_PAYLOAD * 2 + 10, 7);
    for (let i = 0; i < content.length; i++) content[i] = (i * 31) & 0xff;
    const bytes = await written(async (w) => {
      await w.content(content);
      await w.flush();
      await w.list(['status=success']);
    });
    for (const step of [5, 4096, 70_000]) {
      const reader = new PktReader(pieces(bytes, step));
      const packets: Buffer[] = [];
      for (let p = await reader.read(); p !== null; p = await reader.read())
        packets.push(Buffer.from(p!));
      assert.deepEqual(
        packets.map((p) => p.length),
        [MAX_PKT_PAYLOAD, MAX_PKT_PAYLOAD, 10],
      );
      assert.deepEqual(Buffer.concat(packets), content);
      assert.deepEqual(await reader.readList(), ['status=success']);
      assert.equal(await reader.read(), undefined, `end of input (step ${step})`);
    }
  });

  test('malformed input is a clear protocol error', async () => {
    for (const [input, message] of [
      ['zz12abcd', /bad packet header/],
      ['0003', /bad packet length 3/],
      ['fff1', /bad packet length 65521/],
      ['0009abc', /input ended inside a packet/],
      ['00', /inside a packet header/],
    ] as const) {
      const reader = new PktReader(Readable.from([Buffer.from(input, 'latin1')]));
      await assert.rejects(reader.read(), (error: Error) => {
        assert.match(error.message, message);
        return true;
      });
    }
    const list = new PktReader(Readable.from([Buffer.from('0008abc\n', 'latin1')]));
    await assert.rejects(list.readList(), /input ended inside a list/);
  });
});
