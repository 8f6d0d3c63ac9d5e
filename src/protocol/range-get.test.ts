import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { pseudoRandomBytes } from '../../test/bytes.ts';
import { selfSignedMaterial } from '../security/tls.ts';
import { RangeClient, type RangeGetOptions } from './range-get.ts';

const MiB = 1024 * 1024;
const data = pseudoRandomBytes(20 * MiB, 1, 'range-get');
let root: string;
let server: http.Server;
let base: string;
let connections = 0;

/** Answers `Range: bytes=a-b` of `data` with 206; /forbidden, /chunked-error, /chunked-ok as named. */
function handler(request: http.IncomingMessage, response: http.ServerResponse): void {
  if (request.url === '/forbidden') {
    // As S3 answers: a framed XML body.
    const body = '<Error><Code>AccessDenied</Code></Error>';
    response.writeHead(403, { 'content-type': 'application/xml', 'content-length': body.length });
    response.end(body);
    return;
  }
  if (request.url === '/chunked-error') {
    response.writeHead(500);
    response.write('partial ');
    response.end('error');
    return;
  }
  if (request.url === '/chunked-ok') {
    response.writeHead(206);
    response.end(data.subarray(0, 10));
    return;
  }
  const range = /^bytes=(\d+)-(\d+)$/.exec(String(request.headers['range']));
  if (!range || request.headers['x-check'] !== 'yes') {
    response.writeHead(416).end();
    return;
  }
  const body = data.subarray(Number(range[1]), Number(range[2]) + 1);
  response.writeHead(206, { 'content-length': body.length }).end(body);
}

before(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'mediagit-range-'));
  server = http.createServer(handler);
  server.on('connection', () => connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
});
after(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await fs.rm(root, { recursive: true, force: true });
});

function options(range: string, into: Buffer | undefined): RangeGetOptions {
  return {
    headers: { range, 'x-check': 'yes' },
    idleTimeoutMs: 5000,
    into: (length) => (into && into.length >= length ? into : undefined),
  };
}

test('ranges land in the caller’s buffer, byte-exact, over a few kept-alive connections', async () => {
  const client = new RangeClient({ maxSockets: 4 });
  const before = connections;
  try {
    let next = 0;
    const worker = async (): Promise<void> => {
      const into = Buffer.alloc(8 * MiB + 64);
      for (let i = next++; i < 48; i = next++) {
        const start = (i * 7919 * 4099) % (data.length - 8 * MiB);
        const length = i === 0 ? 1 : 1 + ((i * 104_729) % (8 * MiB));
        const answer = await client.get(
          new URL('/pack', base),
          options(`bytes=${start}-${start + length - 1}`, into),
        );
        assert.equal(answer.status, 206);
        assert.equal(answer.intoBuffer, true);
        assert.equal(answer.body.buffer, into.buffer, 'the body is a view of the given buffer');
        assert.ok(answer.body.equals(data.subarray(start, start + length)), `range ${i}`);
      }
    };
    await Promise.all([worker(), worker(), worker(), worker()]);
    assert.ok(connections - before <= 4, `${connections - before} connections for 48 requests`);
  } finally {
    client.close();
  }
});

test('error answers come back with their status and small body; bad framing is refused', async () => {
  const client = new RangeClient({ maxSockets: 4 });
  const into = Buffer.alloc(MiB);
  try {
    const forbidden = await client.get(new URL('/forbidden', base), options('bytes=0-9', into));
    assert.equal(forbidden.status, 403);
    assert.equal(forbidden.intoBuffer, false);
    assert.equal(forbidden.body.toString(), '<Error><Code>AccessDenied</Code></Error>');
    const chunked = await client.get(new URL('/chunked-error', base), options('bytes=0-9', into));
    assert.equal(chunked.status, 500);
    assert.equal(chunked.body.length, 0);
    await assert.rejects(client.get(new URL('/chunked-ok', base), options('bytes=0-9', into)), {
      code: 'EBADANSWER',
      message: /without a Content-Length/,
    });
    // Larger than the caller can take.
    await assert.rejects(
      client.get(new URL('/pack', base), options(`bytes=0-${MiB}`, into)),
      /larger than asked for/,
    );
    // The client still works after all of that.
    const ok = await client.get(new URL('/pack', base), options('bytes=5-14', into));
    assert.ok(ok.body.equals(data.subarray(5, 15)));
    await assert.rejects(
      client.get(new URL('/pack', base), {
        ...options('bytes=0-1', into),
        headers: { range: 'bytes=0-1\r\nx-injected: 1' },
      }),
      /bad header/,
    );
  } finally {
    client.close();
  }
});

/** A raw TCP server answering every request with `answer` (then doing what `after` says). */
async function rawServer(
  answer: (socket: net.Socket) => void,
): Promise<{ url: string; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const raw = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.once('data', () => answer(socket));
  });
  await new Promise<void>((resolve) => raw.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(raw.address() as net.AddressInfo).port}/`,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => raw.close(resolve));
    },
  };
}

test('a body longer than announced, cut short, or never sent fails with the transient codes', async () => {
  const client = new RangeClient({ maxSockets: 4 });
  const into = Buffer.alloc(MiB);
  const longer = await rawServer((s) =>
    s.write('HTTP/1.1 206 Partial Content\r\ncontent-length: 5\r\n\r\nhelloEXTRA'),
  );
  const cut = await rawServer((s) => {
    s.write('HTTP/1.1 206 Partial Content\r\ncontent-length: 1000\r\n\r\n0123456789');
    setTimeout(() => s.destroy(), 50);
  });
  const silent = await rawServer(() => undefined);
  try {
    await assert.rejects(client.get(new URL(longer.url), options('bytes=0-4', into)), {
      code: 'EBADANSWER',
    });
    await assert.rejects(client.get(new URL(cut.url), options('bytes=0-999', into)), {
      code: 'ECONNRESET',
    });
    const started = performance.now();
    await assert.rejects(
      client.get(new URL(silent.url), { ...options('bytes=0-9', into), idleTimeoutMs: 200 }),
      { code: 'ETIMEDOUT' },
    );
    assert.ok(performance.now() - started < 2000);
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    await assert.rejects(
      client.get(new URL(silent.url), { ...options('bytes=0-9', into), signal: controller.signal }),
      { name: 'AbortError' },
    );
  } finally {
    client.close();
    await Promise.all([longer.close(), cut.close(), silent.close()]);
  }
});

test('a kept-alive connection the server closed while idle is replaced, not reported', async () => {
  const short = http.createServer(handler);
  short.keepAliveTimeout = 50;
  await new Promise<void>((resolve) => short.listen(0, '127.0.0.1', resolve));
  const url = new URL(`http://127.0.0.1:${(short.address() as net.AddressInfo).port}/pack`);
  const client = new RangeClient({ maxSockets: 4 });
  const into = Buffer.alloc(MiB);
  try {
    for (let i = 0; i < 3; i++) {
      const answer = await client.get(url, options('bytes=100-199', into));
      assert.ok(answer.body.equals(data.subarray(100, 200)));
      await new Promise((resolve) => setTimeout(resolve, 150));
    }
  } finally {
    client.close();
    short.closeAllConnections();
    await new Promise((resolve) => short.close(resolve));
  }
});

test('HTTPS: trusted through a CA, refused without it', async () => {
  const material = await selfSignedMaterial(path.join(root, 'tls'));
  const secure = https.createServer({ key: material.key, cert: material.cert }, handler);
  await new Promise<void>((resolve) => secure.listen(0, '127.0.0.1', resolve));
  const url = new URL(`https://localhost:${(secure.address() as net.AddressInfo).port}/pack`);
  const trusting = new RangeClient({ maxSockets: 2, ca: material.cert });
  const plain = new RangeClient({ maxSockets: 2 });
  const into = Buffer.alloc(8 * MiB);
  try {
    const answer = await trusting.get(url, options(`bytes=3-${8 * MiB + 2}`, into));
    assert.equal(answer.status, 206);
    assert.ok(answer.body.equals(data.subarray(3, 8 * MiB + 3)));
    await assert.rejects(plain.get(url, options('bytes=0-9', into)), /self[- ]signed|certificate/i);
  } finally {
    trusting.close();
    plain.close();
    secure.closeAllConnections();
    await new Promise((resolve) => secure.close(resolve));
  }
});
