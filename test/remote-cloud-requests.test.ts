/**
 * Requests a push costs the store, counted at the S3 emulator: a new 1 GiB
 * incompressible file goes up in at most 32 PUTs (cloud packs of 64 MiB and
 * one index), and after a 4 KiB insert in its middle the next push sends at
 * most 1% of the file in at most 8 PUTs.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import { before, describe, test } from 'node:test';
import { pseudoRandomBytes, TempRepo, writePseudoRandomFile } from './helpers.ts';
import { useCloudRoot, type ServerProcess } from './server.ts';

const GiB = 1024 * 1024 * 1024;

describe('requests to the store for a 1 GiB push', () => {
  const fixture = useCloudRoot('s3', 'counted', ['proj']);
  let server: ServerProcess;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    server = await fixture.serve();
    env = { MEDIAGIT_TOKEN: await fixture.createToken('alice', 'proj', 'write') };
  });

  test(
    '1 GiB new: at most 32 PUTs; after a 4 KiB insert: at most 1% and 8 PUTs',
    { timeout: 600_000 },
    async (t) => {
      const a = fixture.track((await TempRepo.create()).withEnv(env));
      await writePseudoRandomFile(a.path('film.bin'), GiB, 11, 'requests');
      await a.ok(['add', 'film.bin']);
      await a.ok(['commit', '-q', '-m', 'v1']);
      await a.ok(['remote', 'add', 'origin', server.url('proj')]);
      await fixture.emulator.resetStats();
      let started = Date.now();
      await a.ok(['push', '-u', 'origin', 'main']);
      const firstSeconds = (Date.now() - started) / 1000;
      const first = await fixture.emulator.stats();
      t.diagnostic(`push of 1 GiB: ${JSON.stringify(first)}`);
      assert.ok((first['PUT'] ?? 0) <= 32, `${first['PUT']} PUTs`);
      assert.ok((first['bytesIn'] ?? 0) >= GiB, 'the file went to the store');
      // The server's own reads: listings, ref, config, the pack's metadata (15 on
      // 2026-12-04), server gc's GET of gc/deleting.json (the fence) before the
      // pack commit and the ref update (19 on 2026-12-05), and whether the
      // repository is encrypted (a HEAD of keys.json, once per server process and
      // repository: 20 on 2026-12-06). Server gc's HEAD of gc/pending.json every few
      // seconds is counted apart: how many depends on how long the push takes.
      const reads = (stats: Record<string, number>): number =>
        (stats['GET'] ?? 0) +
        (stats['HEAD'] ?? 0) -
        (stats['HEAD gc/pending.json'] ?? 0) -
        (stats['GET gc/pending.json'] ?? 0);
      const polls = (stats: Record<string, number>, seconds: number): void => {
        const count = (stats['HEAD gc/pending.json'] ?? 0) + (stats['GET gc/pending.json'] ?? 0);
        assert.ok(count <= 2 + seconds / 2, `${count} looks at gc/pending.json in ${seconds} s`);
      };
      assert.ok(reads(first) <= 20, `${reads(first)} GETs and HEADs`);
      polls(first, firstSeconds);

      // 4 KiB inserted at 512 MiB (streamed: the file is not read into memory).
      const handle = await fs.open(a.path('film.bin'), 'r');
      const out = await fs.open(a.path('film.new'), 'w');
      const buffer = Buffer.alloc(32 * 1024 * 1024);
      let written = 0;
      for (let at = 0; at < GiB; at += buffer.length) {
        const { bytesRead } = await handle.read(buffer, 0, buffer.length, at);
        await out.write(buffer, 0, bytesRead, written);
        written += bytesRead;
        if (at + bytesRead === GiB / 2) {
          const insert = pseudoRandomBytes(4096, 12);
          await out.write(insert, 0, insert.length, written);
          written += insert.length;
        }
      }
      await handle.close();
      await out.close();
      await fs.rename(a.path('film.new'), a.path('film.bin'));
      await a.ok(['commit', '-q', '-a', '-m', 'v2']);
      await fixture.emulator.resetStats();
      started = Date.now();
      await a.ok(['push']);
      const secondSeconds = (Date.now() - started) / 1000;
      const second = await fixture.emulator.stats();
      t.diagnostic(`push after a 4 KiB insert: ${JSON.stringify(second)}`);
      assert.ok((second['PUT'] ?? 0) <= 8, `${second['PUT']} PUTs`);
      assert.ok((second['bytesIn'] ?? 0) <= GiB / 100, `${second['bytesIn']} bytes`);
      // 16 on 2026-12-04; with server gc's fence reads, and without its polls, 20 on 2026-12-06.
      assert.ok(reads(second) <= 20, `${reads(second)} GETs and HEADs`);
      polls(second, secondSeconds);
    },
  );
});
