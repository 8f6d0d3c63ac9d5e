/**
 * Server gc under load, shared by test/server-gc.test.ts (a short run) and
 * scripts/server-gc-drill.ts (issue 16's two minutes): clients push in a
 * loop — their own branch, and side branches they delete again, built from
 * a small pool of contents so pushes keep deduplicating against objects gc
 * has just found unreachable — while gc runs on the server every few
 * seconds through the admin endpoint with a grace window of seconds.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { ServerGcResult } from '../src/protocol/server-gc.ts';
import type { StorageBackend } from '../src/storage/backend.ts';
import { pseudoRandomBytes, runCli, TempRepo, type CliResult } from './helpers.ts';

const KiB = 1024;

/** Bytes of everything stored under a repository's `objects/` (packs, indexes, loose). */
export async function storedObjectBytes(backend: StorageBackend): Promise<number> {
  let total = 0;
  for await (const key of backend.list('objects/')) {
    total += (await backend.head(key))?.size ?? 0;
  }
  return total;
}

/** `POST /admin/gc` as `key`; the repositories' results, or the HTTP status when refused. */
export async function adminGc(
  base: string,
  key: string,
  body: { repo?: string; graceSeconds?: number; dryRun?: boolean },
): Promise<{ status: number; results: ServerGcResult[]; message?: string }> {
  const response = await fetch(`${base}/admin/gc`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const answer = (await response.json()) as { repositories?: ServerGcResult[]; message?: string };
  return {
    status: response.status,
    results: answer.repositories ?? [],
    ...(answer.message ? { message: answer.message } : {}),
  };
}

export interface LoadOptions {
  /** The repository URL clients push to, and its name. */
  readonly url: string;
  readonly repo: string;
  /** The server's base URL (for the admin endpoint). */
  readonly base: string;
  readonly adminKey: string;
  /** Environment of the clients (their write key). */
  readonly env: NodeJS.ProcessEnv;
  readonly clients: number;
  readonly seconds: number;
  /**
   * Keep pushing past `seconds`, up to this many seconds in all, until a gc
   * run has deleted a pack: the sweep must have run while clients pushed.
   */
  readonly untilSweptSeconds?: number;
  readonly graceSeconds: number;
  /** Pause between the end of one gc run and the start of the next. */
  readonly gcPauseMs: number;
  /** Size of each pooled content. */
  readonly fileBytes: number;
  readonly track: (repo: TempRepo) => TempRepo;
  readonly log?: (line: string) => void;
}

export interface LoadResult {
  /** Per client: its branch and the files its last successful push holds (path -> SHA-256). */
  readonly branches: { branch: string; files: Record<string, string> }[];
  readonly pushes: number;
  /** Pushes refused because gc was deleting an object they reach (rerun and succeeded). */
  readonly gcRefusals: string[];
  readonly gcRuns: ServerGcResult[];
}

const POOL = 6;

function contentOf(k: number, bytes: number): Buffer {
  return pseudoRandomBytes(bytes, k % POOL, 'server-gc-pool');
}

function sha(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** A refusal that says gc removed or is removing an object the push reaches. */
export function isGcRefusal(result: CliResult): boolean {
  return /being removed by gc|not on the server|has not been uploaded|is missing/.test(
    result.stderr,
  );
}

export async function pushesWhileGc(options: LoadOptions): Promise<LoadResult> {
  const log = options.log ?? (() => {});
  const deadline = Date.now() + options.seconds * 1000;
  const sweptDeadline = Date.now() + (options.untilSweptSeconds ?? options.seconds) * 1000;
  let swept = false;
  const pushing = (): boolean => Date.now() < deadline || (!swept && Date.now() < sweptDeadline);
  const gcRefusals: string[] = [];
  const gcRuns: ServerGcResult[] = [];
  let pushes = 0;

  const pushOk = async (repo: TempRepo, args: string[]): Promise<void> => {
    for (let attempt = 1; ; attempt++) {
      const result = await runCli(['push', ...args], { cwd: repo.dir, env: repo.env });
      if (result.code === 0) {
        pushes++;
        return;
      }
      assert.ok(
        isGcRefusal(result) && attempt < 4,
        `push ${args.join(' ')} failed (attempt ${attempt}): ${result.stderr}`,
      );
      gcRefusals.push(result.stderr.trim());
      log(`gc refusal, rerunning: ${result.stderr.trim().split('\n').at(-1)}`);
    }
  };

  const client = async (i: number): Promise<{ branch: string; files: Record<string, string> }> => {
    const repo = options.track(
      (await TempRepo.create({ chunkThreshold: 256 * KiB })).withEnv(options.env),
    );
    await repo.ok(['remote', 'add', 'origin', options.url]);
    const branch = `client-${i}`;
    await repo.ok(['switch', '-q', '-c', branch]);
    let files: Record<string, string> = {};
    for (let n = 0; n === 0 || pushing(); n++) {
      const data = contentOf(i + n, options.fileBytes);
      const note = Buffer.from(`client ${i} iteration ${n}\n`);
      await fs.writeFile(repo.path('data.bin'), data);
      await fs.writeFile(repo.path('note.txt'), note);
      await repo.ok(['add', '-A']);
      await repo.ok(['commit', '-q', '-m', `client ${i} #${n}`]);
      await pushOk(repo, ['-q', 'origin', branch]);
      files = { 'data.bin': sha(data), 'note.txt': sha(note) };
      if (n % 2 === 1) {
        // A side branch with other pooled content, pushed and deleted again:
        // garbage for gc, and content later pushes deduplicate against.
        const side = `side-${i}`;
        await repo.ok(['switch', '-q', '-c', side]);
        await fs.writeFile(repo.path('side.bin'), contentOf(i + n + 3, options.fileBytes));
        await repo.ok(['add', '-A']);
        await repo.ok(['commit', '-q', '-m', `side ${i} #${n}`]);
        await pushOk(repo, ['-q', 'origin', side]);
        await pushOk(repo, ['-q', 'origin', '--delete', side]);
        await repo.ok(['switch', '-q', branch]);
        await repo.ok(['branch', '-D', side]);
      }
    }
    return { branch, files };
  };

  let stop = false;
  const gcLoop = (async () => {
    while (!stop) {
      const answer = await adminGc(options.base, options.adminKey, {
        graceSeconds: options.graceSeconds,
      });
      if (answer.status === 200) {
        gcRuns.push(...answer.results);
        const r = answer.results.find((result) => result.repo === options.repo);
        if (r && r.deletedPacks > 0) swept = true;
        if (r) {
          log(
            `gc: deleted ${r.deletedObjects} loose, ${r.deletedPacks} packs; ` +
              `${r.pendingPacks} packs pending; ${r.rescued} rescued`,
          );
        }
      } else {
        assert.equal(answer.status, 409, answer.message); // another run still holds the lease
      }
      await new Promise((resolve) => setTimeout(resolve, options.gcPauseMs));
    }
  })();
  let branches;
  try {
    branches = await Promise.all(Array.from({ length: options.clients }, (_, i) => client(i)));
  } finally {
    stop = true;
    await gcLoop;
  }
  return { branches, pushes, gcRefusals, gcRuns };
}

/** Clones `branch` of `url` and returns its files' SHA-256 (beside `.mediagit`). */
export async function clonedFiles(
  url: string,
  branch: string,
  env: NodeJS.ProcessEnv,
  track: (repo: TempRepo) => TempRepo,
): Promise<Record<string, string>> {
  const peer = track((await TempRepo.create({ init: false })).withEnv(env));
  await fs.rmdir(peer.dir);
  const result = await runCli(['clone', '-q', '-b', branch, url, peer.dir], {
    cwd: peer.root,
    env: peer.env,
  });
  assert.equal(result.code, 0, result.stderr);
  const files: Record<string, string> = {};
  for (const name of await fs.readdir(peer.dir)) {
    if (name === '.mediagit') continue;
    files[name] = sha(await fs.readFile(path.join(peer.dir, name)));
  }
  return files;
}
