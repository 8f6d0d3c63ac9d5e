// The server gc drill (issue 16, "Server gc"), at full length: `npm run drill:server-gc`, or
// `node scripts/server-gc-drill.ts [--seconds <n>] [--clients <n>] [--store local|s3|az|gs]
//  [--file-bytes <n>] [--grace <seconds>]`.
//
// Four clients push in a loop for two minutes (their own branch, and side branches they delete
// again, from a pool of contents so pushes deduplicate against what gc just found unreachable)
// while gc runs on the server root every few seconds through `POST /admin/gc`. Afterwards every
// pushed branch must clone byte-identical and `fsck --root` be clean. Then every branch but one
// is deleted, gc runs twice (recording, then deleting after the grace window), and the stored
// bytes must be within 5% of a fresh repository holding only the surviving branch.
// Prints one line per step and exits 1 on the first failure.

import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { BackendRepo } from '../src/protocol/backend-repo.ts';
import { storageSettings } from '../src/cli/storage-settings.ts';
import type { StorageBackend } from '../src/storage/backend.ts';
import { openBackend } from '../src/storage/open.ts';
import { FsBackend } from '../src/storage/fs-backend.ts';
import { isolatedEnv, runCli, TempRepo } from '../test/helpers.ts';
import {
  adminGc,
  clonedFiles,
  pushesWhileGc,
  storedObjectBytes,
} from '../test/server-gc-scenario.ts';
import { ServerProcess, startEmulator } from '../test/server.ts';
import type { Emulator } from '../test/emulators/index.ts';

function option(name: string, fallback: string): string {
  const at = process.argv.indexOf(name);
  return at < 0 ? fallback : process.argv[at + 1]!;
}
const seconds = Number(option('--seconds', '120'));
const clients = Number(option('--clients', '4'));
const store = option('--store', 'local');
const fileBytes = Number(option('--file-bytes', String(2 * 1024 * 1024)));
const grace = Number(option('--grace', '3'));

const outer = await fs.mkdtemp(path.join(os.tmpdir(), 'mediagit-server-gc-drill-'));
const tracked: TempRepo[] = [];
const track = (repo: TempRepo): TempRepo => {
  tracked.push(repo);
  return repo;
};
let emulator: Emulator | undefined;
let server: ServerProcess | undefined;
try {
  let root = path.join(outer, 'root');
  let env: NodeJS.ProcessEnv = isolatedEnv(outer);
  if (store === 'local') await fs.mkdir(root);
  else {
    emulator = await startEmulator(store as 's3' | 'az' | 'gs');
    root = emulator.url('drill');
    env = { ...env, ...emulator.env };
  }
  const cli = async (args: string[]): Promise<string> => {
    const result = await runCli(args, { cwd: outer, env });
    assert.equal(result.code, 0, `mediagit ${args.join(' ')}: ${result.stderr}`);
    return result.out;
  };
  const repoPath = (name: string): string =>
    store === 'local' ? path.join(root, name) : `${root}/${name}`;
  await cli(['init', '--bare', '-q', repoPath('proj')]);
  await cli(['init', '--bare', '-q', repoPath('fresh')]);
  const token = async (user: string, scope: string): Promise<string> =>
    (
      await cli([
        'token',
        'create',
        '--root',
        root,
        '--user',
        user,
        '--repo',
        '*',
        '--scope',
        scope,
      ])
    ).trim();
  const writeKey = await token('alice', 'write');
  const adminKey = await token('root', 'admin');
  server = await ServerProcess.start(root, [], env);
  const backendOf = async (name: string): Promise<StorageBackend> =>
    store === 'local'
      ? new FsBackend(path.join(root, name))
      : openBackend(root, await storageSettings(env)).child(name);
  const clientEnv = { MEDIAGIT_TOKEN: writeKey };
  console.log(
    `drill: ${clients} clients pushing ${fileBytes} byte files for ${seconds} s on a ${store} root, gc every few seconds (grace ${grace} s)`,
  );
  const load = await pushesWhileGc({
    url: server.url('proj'),
    repo: 'proj',
    base: server.base,
    adminKey,
    env: clientEnv,
    clients,
    seconds,
    graceSeconds: grace,
    gcPauseMs: 1000,
    fileBytes,
    track,
    log: (line) => console.log(`  ${line}`),
  });
  const deleted = load.gcRuns.filter((r) => r.repo === 'proj');
  console.log(
    `load: ${load.pushes} pushes, ${deleted.length} gc runs deleting ${deleted.reduce((a, r) => a + r.deletedPacks, 0)} packs and ` +
      `${deleted.reduce((a, r) => a + r.deletedObjects, 0)} loose objects; ${load.gcRefusals.length} pushes refused by the fence and rerun`,
  );
  for (const { branch, files } of load.branches) {
    assert.deepEqual(await clonedFiles(server.url('proj'), branch, clientEnv, track), files);
  }
  console.log(`clones: ${load.branches.length} branches byte-identical`);
  const fsck = await runCli(['fsck', '--root', root, '--repo', 'proj'], { cwd: outer, env });
  assert.equal(fsck.code, 0, fsck.out + fsck.stderr);
  console.log(`fsck --root: ${fsck.out.trim()}`);

  const proj = await backendOf('proj');
  const repo = new BackendRepo(proj);
  const survivor = load.branches[0]!.branch;
  for (const { name } of await repo.listRefs()) {
    if (name === `refs/heads/${survivor}`) continue;
    const ref = await repo.readRef(name);
    assert.ok(await repo.casRef(name, ref!.etag, null));
  }
  const before = await storedObjectBytes(proj);
  assert.equal(
    (await adminGc(server.base, adminKey, { repo: 'proj', graceSeconds: grace })).status,
    200,
  );
  await new Promise((resolve) => setTimeout(resolve, (grace + 1) * 1000));
  const last = await adminGc(server.base, adminKey, { repo: 'proj', graceSeconds: grace });
  assert.equal(last.status, 200, last.message);
  const clone = track((await TempRepo.create({ init: false })).withEnv(clientEnv));
  await fs.rmdir(clone.dir);
  const cloned = await runCli(['clone', '-q', '-b', survivor, server.url('proj'), clone.dir], {
    cwd: clone.root,
    env: clone.env,
  });
  assert.equal(cloned.code, 0, cloned.stderr);
  await clone.ok(['push', '-q', server.url('fresh'), survivor]);
  const kept = await storedObjectBytes(proj);
  const fresh = await storedObjectBytes(await backendOf('fresh'));
  const off = (kept - fresh) / fresh;
  console.log(
    `after deleting every branch but ${survivor}: stored ${before} -> ${kept} bytes; a fresh repository of it ${fresh} (${(off * 100).toFixed(2)}%)`,
  );
  assert.ok(Math.abs(off) <= 0.05, 'stored bytes not within 5% of the fresh repository');
  const again = await runCli(['fsck', '--root', root, '--repo', 'proj'], { cwd: outer, env });
  assert.equal(again.code, 0, again.out + again.stderr);
  console.log('drill passed');
} catch (error) {
  console.error(`drill FAILED: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
} finally {
  await server?.stop();
  for (const repo of tracked) await repo.cleanup();
  await emulator?.stop();
  await fs.rm(outer, { recursive: true, force: true });
}
