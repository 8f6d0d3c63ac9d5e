import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { AuditLog, redactSecrets, type AuditEvent } from './audit.ts';

const dirs: string[] = [];
after(async () => {
  for (const dir of dirs) await fs.rm(dir, { recursive: true, force: true });
});

async function freshFile(): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'mediagit-audit-'));
  dirs.push(dir);
  return path.join(dir, 'state', 'logs', 'audit.log');
}

async function readLines(file: string): Promise<Record<string, unknown>[]> {
  const text = await fs.readFile(file, 'utf8');
  assert.ok(text.endsWith('\n'));
  return text
    .slice(0, -1)
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

const API_KEY = 'mgk_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
const JWT =
  'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSIsInNjb3BlIjoid3JpdGUifQ.4Hb0kBpVdB8E1n2M5Xe6dEw0nK0Cz8YtqWw3tq9Uf1Q';

test('audit: each event is one JSON line with a time, in a 0600 file in a 0700 folder', async () => {
  const file = await freshFile();
  const log = new AuditLog(file);
  const event: AuditEvent = {
    action: 'push',
    outcome: 'ok',
    user: 'alice',
    keyId: '0123456789abcdef',
    repo: 'films',
    ip: '127.0.0.1',
    refs: [{ ref: 'refs/heads/main', old: null, new: 'a'.repeat(64), result: 'ok' }],
  };
  const before = Date.now();
  await log.append(event);
  await log.append({ action: 'fetch', outcome: 'denied', reason: 'scope read < write' });
  await log.close();
  const lines = await readLines(file);
  assert.equal(lines.length, 2);
  const [first, second] = lines;
  assert.ok(first && second);
  assert.deepEqual(Object.keys(first)[0], 'time');
  const time = Date.parse(String(first['time']));
  assert.ok(time >= before - 1000 && time <= Date.now() + 1000);
  assert.equal(new Date(time).toISOString(), first['time']);
  assert.deepEqual({ ...first, time: undefined }, { time: undefined, ...event });
  assert.equal(second['outcome'], 'denied');
  assert.equal((await fs.stat(file)).mode & 0o777, 0o600);
  assert.equal((await fs.stat(path.dirname(file))).mode & 0o777, 0o700);
  // Append-only: a new instance adds to the file rather than replacing it.
  const again = new AuditLog(file);
  await again.append({ action: 'token.create', outcome: 'ok' });
  await again.close();
  assert.equal((await readLines(file)).length, 3);
});

test('audit: concurrent appends, in one process and across processes, never interleave', async () => {
  const file = await freshFile();
  const log = new AuditLog(file);
  // Long lines make a torn or interleaved write visible as invalid JSON.
  const big = 'x'.repeat(20_000);
  const inProcess = Array.from({ length: 200 }, (_, i) =>
    log.append({ action: `a${i}`, outcome: 'ok', reason: `${i}:${big}` }),
  );
  const script = `
    import { AuditLog } from ${JSON.stringify(new URL('./audit.ts', import.meta.url).href)};
    const log = new AuditLog(process.argv[1]);
    const big = 'y'.repeat(20000);
    await Promise.all(Array.from({ length: 50 }, (_, i) =>
      log.append({ action: 'p' + process.argv[2] + '-' + i, outcome: 'ok', reason: big })));
    await log.close();
  `;
  const children = [0, 1].map(
    (n) =>
      new Promise<number | null>((resolve, reject) => {
        const child = spawn(
          process.execPath,
          ['--input-type=module', '-e', script, file, String(n)],
          {
            stdio: ['ignore', 'ignore', 'inherit'],
          },
        );
        child.on('error', reject);
        child.on('close', resolve);
      }),
  );
  await Promise.all(inProcess);
  assert.deepEqual(await Promise.all(children), [0, 0]);
  await log.close();
  const lines = await readLines(file);
  assert.equal(lines.length, 300);
  // In-process appends land in call order.
  const ours = lines.filter((l) => String(l['action']).startsWith('a')).map((l) => l['action']);
  assert.deepEqual(
    ours,
    Array.from({ length: 200 }, (_, i) => `a${i}`),
  );
  for (const n of [0, 1]) {
    assert.equal(lines.filter((l) => String(l['action']).startsWith(`p${n}-`)).length, 50);
  }
});

test('audit: secrets are redacted at any depth before writing', async () => {
  const file = await freshFile();
  const log = new AuditLog(file);
  const event = {
    action: 'auth',
    outcome: 'denied',
    user: API_KEY,
    reason: `bad header Authorization: Bearer ${JWT}`,
    ip: `Bearer something-opaque`,
    repo: 'films',
    refs: [{ ref: 'refs/heads/main', old: null, new: JWT, result: 'ok' }],
    extra: { nested: [{ deep: `key was ${API_KEY}!` }, 'plain', 7, null, true] },
  } as unknown as AuditEvent;
  await log.append(event);
  await log.close();
  const text = await fs.readFile(file, 'utf8');
  assert.ok(!text.includes('mgk_0123456789abcdef'), text);
  assert.ok(!text.includes('eyJ'), text);
  assert.ok(!text.includes('Bearer'), text);
  const [line] = await readLines(file);
  assert.deepEqual(
    { ...line, time: undefined },
    {
      time: undefined,
      action: 'auth',
      outcome: 'denied',
      user: '[redacted]',
      reason: '[redacted]',
      ip: '[redacted]',
      repo: 'films',
      refs: [{ ref: 'refs/heads/main', old: null, new: '[redacted]', result: 'ok' }],
      extra: { nested: [{ deep: '[redacted]' }, 'plain', 7, null, true] },
    },
  );
  // Ordinary values are left alone, including ids and hex object ids.
  const plain = {
    a: 'refs/heads/main',
    b: '0123456789abcdef',
    c: 'f'.repeat(64),
    d: 'mgk_',
    e: 'a.b.c',
  };
  assert.deepEqual(redactSecrets(plain), plain);
});

test('audit: a failed append rejects without blocking later ones', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'mediagit-audit-'));
  dirs.push(dir);
  // The log's folder is a file: opening fails until it is replaced by a folder.
  const blocker = path.join(dir, 'logs');
  await fs.writeFile(blocker, '');
  const log = new AuditLog(path.join(blocker, 'audit.log'));
  await assert.rejects(log.append({ action: 'x', outcome: 'ok' }));
  await fs.rm(blocker);
  await log.append({ action: 'y', outcome: 'ok' });
  await log.close();
  const lines = await readLines(path.join(blocker, 'audit.log'));
  assert.deepEqual(
    lines.map((l) => l['action']),
    ['y'],
  );
});
