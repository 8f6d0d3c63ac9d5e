/**
 * The interrupt drill (issue 15): Ctrl-C typed into a real pseudo-terminal
 * (util-linux `script`, so the terminal's line discipline sends SIGINT to
 * the command's process group, as a user's Ctrl-C does) at random moments of
 * `add` of a large file, `checkout`, `push`, `fetch` and `clone`, the last
 * three against `mediagit serve` on loopback. After each interruption:
 *
 * - no lock and no temp file of the command remains (a clone's
 *   CLONE_IN_PROGRESS marker is how it resumes, and may stay);
 * - the next command, run as a user would, succeeds with no manual step;
 * - nothing committed is lost: every commit made keeps its file, and the
 *   last one is checked byte for byte after each recovery;
 * - a rerun clone fetches only what it lacked: the server's bytes sent for
 *   the interrupted clone and its rerun together stay ≤ 1.1× those of one
 *   uninterrupted clone.
 *
 * `npm run drill` runs it at full size (1 GiB, 10 interruptions each);
 * test/interrupt-drill.test.ts runs a small one in `npm test`.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { writePseudoRandomFile } from './bytes.ts';
import { CLI_PATH, runCli, TempRepo, type CliResult } from './helpers.ts';
import { createToken, ServerProcess } from './server.ts';

export const OPERATIONS = ['add', 'checkout', 'push', 'fetch', 'clone'] as const;
export type Operation = (typeof OPERATIONS)[number];

export interface DrillOptions {
  /** Size of the large file, in bytes. */
  readonly size: number;
  /** Interruptions per operation. */
  readonly rounds: number;
  readonly seed?: number;
  readonly log?: (line: string) => void;
  /**
   * The most an interrupted clone and its rerun may receive, over one clone
   * (default 1.1). What was in flight when Ctrl-C came (parallel reads of up
   * to ~32 MiB) is received again, a larger share of a small repository.
   */
  readonly cloneLimit?: number;
}

export interface OperationReport {
  readonly operation: Operation;
  /** Seconds an uninterrupted run took (the window Ctrl-C is typed in). */
  readonly fullSeconds: number;
  /** When Ctrl-C was typed, in seconds after the start, per round. */
  readonly moments: number[];
  /** Rounds the command was stopped by the Ctrl-C (the others had finished first). */
  interrupted: number;
}

export interface DrillReport {
  readonly size: number;
  readonly operations: OperationReport[];
  /** Bytes the server sent for one uninterrupted clone. */
  readonly cloneBytes: number;
  /** Per clone round: bytes sent for the interrupted clone and its rerun, over cloneBytes. */
  readonly cloneRatios: number[];
  readonly commits: number;
}

/** A command line run under a pseudo-terminal, with Ctrl-C typed after `ctrlCAfter` ms. */
async function onTerminal(
  args: readonly string[],
  cwd: string,
  env: NodeJS.ProcessEnv,
  ctrlCAfter?: number,
): Promise<{ code: number | null; out: string; seconds: number }> {
  const quote = (word: string): string => `'${word.replace(/'/g, `'\\''`)}'`;
  const command = [process.execPath, CLI_PATH, ...args].map(quote).join(' ');
  const started = performance.now();
  // CI unset: progress lines are drawn, and must end cleanly when interrupted.
  const child = spawn('script', ['-qec', command, '/dev/null'], {
    cwd,
    env: { ...env, CI: '', TERM: 'xterm' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  // The terminal's input stays open until the command ends (script stops at its end).
  child.stdin!.on('error', () => undefined);
  const timer =
    ctrlCAfter === undefined ? undefined : setTimeout(() => child.stdin!.write('\x03'), ctrlCAfter);
  const output: Buffer[] = [];
  child.stdout!.on('data', (data: Buffer) => output.push(data));
  child.stderr!.on('data', (data: Buffer) => output.push(data));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (exitCode) => resolve(exitCode));
  });
  clearTimeout(timer);
  child.stdin!.end();
  const out = Buffer.concat(output).toString('utf8');
  return { code, out, seconds: (performance.now() - started) / 1000 };
}

/** Locks and temp files a command left in a repository (and its work tree). */
export async function leftovers(workTree: string | undefined, gitDir: string): Promise<string[]> {
  const found: string[] = [];
  const walk = async (dir: string, rel: string, inGitDir: boolean): Promise<void> => {
    const entries = await fs.readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const entry of entries) {
      const child = rel === '' ? entry.name : `${rel}/${entry.name}`;
      if (!inGitDir && entry.name === '.mediagit') continue;
      if (entry.name.endsWith('.lock')) found.push(child);
      else if (entry.name.startsWith('.mediagit-')) found.push(child);
      else if (inGitDir && rel === '' && entry.name === 'tmp') {
        for (const name of await fs.readdir(path.join(dir, 'tmp')).catch(() => [])) {
          found.push(`tmp/${name}`);
        }
      } else if (entry.isDirectory()) await walk(path.join(dir, entry.name), child, inGitDir);
    }
  };
  await walk(gitDir, '', true);
  if (workTree !== undefined) await walk(workTree, '', false);
  return found;
}

async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const part of createReadStream(file)) hash.update(part as Buffer);
  return hash.digest('hex');
}

function random(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return state / 2 ** 32;
  };
}

export async function runDrill(options: DrillOptions): Promise<DrillReport> {
  const log = options.log ?? (() => undefined);
  const rnd = random(options.seed ?? 20261204);
  const home = await TempRepo.create();
  const serverRoot = path.join(home.root, 'server');
  await fs.mkdir(serverRoot);
  const key = await createToken(serverRoot, 'drill', '*', 'write');
  const env = { ...home.env, MEDIAGIT_TOKEN: key };
  const cli = async (args: readonly string[], cwd: string): Promise<CliResult> => {
    const result = await runCli(args, { cwd, env });
    assert.equal(result.code, 0, `mediagit ${args.join(' ')}: ${result.stderr}`);
    return result;
  };
  await cli(['init', '--bare', '-q', path.join(serverRoot, 'proj')], home.root);
  const server = await ServerProcess.start(serverRoot, [], env);
  const reports: OperationReport[] = [];
  const report = (operation: Operation, fullSeconds: number): OperationReport => {
    const made: OperationReport = { operation, fullSeconds, moments: [], interrupted: 0 };
    reports.push(made);
    return made;
  };
  /** Runs `args` on a terminal with Ctrl-C at a random moment of a run of `full` seconds. */
  const interrupt = async (
    made: OperationReport,
    args: readonly string[],
    cwd: string,
  ): Promise<{ code: number | null; out: string }> => {
    const moment = made.fullSeconds * (0.05 + 0.9 * rnd());
    made.moments.push(Number(moment.toFixed(2)));
    const result = await onTerminal(args, cwd, env, moment * 1000);
    // Stopped by the signal (script reports 128 + SIGINT) or finished first (0).
    assert.ok(
      result.code === 130 || result.code === 0,
      `${args.join(' ')} after ${moment.toFixed(2)} s: exit ${result.code}\n${result.out}`,
    );
    assert.doesNotMatch(result.out, /\n\s+at .*\(.*:\d+:\d+\)/, `a stack trace:\n${result.out}`);
    if (result.code === 130) made.interrupted++;
    return result;
  };
  const clean = async (workTree: string | undefined, gitDir: string, what: string) => {
    const left = (await leftovers(workTree, gitDir)).filter((n) => n !== 'CLONE_IN_PROGRESS');
    assert.deepEqual(left, [], `${what}: left behind`);
  };

  try {
    const work = home.dir;
    const big = path.join(work, 'big.bin');
    const gitDir = path.join(work, '.mediagit');
    await writePseudoRandomFile(big, options.size, options.seed ?? 5);
    const commits: { id: string; sha256: string }[] = [];
    const commitBig = async (message: string): Promise<void> => {
      await cli(['commit', '-q', '-m', message], work);
      const id = (await cli(['log', '-1', '--format=%H'], work)).out.trim();
      commits.push({ id, sha256: await sha256File(big) });
    };

    // add: each round changes 64 KiB at a random place, so add has work to do.
    const started = performance.now();
    await cli(['add', 'big.bin'], work);
    const adding = report('add', (performance.now() - started) / 1000);
    await commitBig('first version');
    await cli(['branch', 'first'], work);
    for (let round = 0; round < options.rounds; round++) {
      const handle = await fs.open(big, 'r+');
      const patch = Buffer.alloc(64 * 1024, round + 1);
      await handle.write(patch, 0, patch.length, Math.floor(rnd() * (options.size - patch.length)));
      await handle.close();
      await interrupt(adding, ['add', 'big.bin'], work);
      await clean(work, gitDir, `add, round ${round}`);
      await cli(['add', 'big.bin'], work);
      await commitBig(`version ${round + 2}`);
      assert.equal((await cli(['status', '--porcelain'], work)).out, '', `status, round ${round}`);
    }
    log(`add: ${adding.interrupted}/${options.rounds} interrupted`);

    // checkout: back and forth between the first and the last version.
    const last = commits.at(-1)!;
    const timing = await onTerminal(['switch', 'first'], work, env);
    assert.equal(timing.code, 0, timing.out);
    await cli(['switch', '-q', 'main'], work);
    const checking = report('checkout', timing.seconds);
    for (let round = 0; round < options.rounds; round++) {
      const target = round % 2 === 0 ? 'first' : 'main';
      await interrupt(checking, ['switch', target], work);
      await clean(work, gitDir, `checkout, round ${round}`);
      await cli(['switch', '-q', target], work);
      assert.equal((await cli(['status', '--porcelain'], work)).out, '', `status after ${target}`);
      const expected = target === 'first' ? commits[0]!.sha256 : last.sha256;
      assert.equal(await sha256File(big), expected, `big.bin after switch ${target}`);
    }
    if (options.rounds % 2 === 1) await cli(['switch', '-q', 'main'], work);
    log(`checkout: ${checking.interrupted}/${options.rounds} interrupted`);

    // push: each round to a repository of its own, so every round sends everything.
    const remoteHead = async (repo: string): Promise<string | undefined> => {
      const answer = await fetch(`${server.url(repo)}/info/refs`, {
        headers: { authorization: `Bearer ${key}` },
      });
      return ((await answer.json()) as { refs: Record<string, string> }).refs['refs/heads/main'];
    };
    const firstPush = await onTerminal(['push', server.url('proj'), 'main'], work, env);
    assert.equal(firstPush.code, 0, firstPush.out);
    const pushing = report('push', firstPush.seconds);
    for (let round = 0; round < options.rounds; round++) {
      const name = `push${round}`;
      await cli(['init', '--bare', '-q', path.join(serverRoot, name)], home.root);
      await interrupt(pushing, ['push', server.url(name), 'main'], work);
      await clean(work, gitDir, `push, round ${round}`);
      await cli(['push', '-q', server.url(name), 'main'], work);
      assert.equal(await remoteHead(name), last.id, `${name} holds main`);
    }
    log(`push: ${pushing.interrupted}/${options.rounds} interrupted`);

    // fetch: each round into a new repository that has none of it.
    const fetchTiming = await TempRepo.create();
    const fetchInto = async (repo: TempRepo): Promise<void> => {
      await cli(['remote', 'add', 'origin', server.url('proj')], repo.dir);
    };
    await fetchInto(fetchTiming);
    const firstFetch = await onTerminal(['fetch', 'origin'], fetchTiming.dir, env);
    assert.equal(firstFetch.code, 0, firstFetch.out);
    await fetchTiming.cleanup();
    const fetching = report('fetch', firstFetch.seconds);
    for (let round = 0; round < options.rounds; round++) {
      const repo = await TempRepo.create();
      try {
        await fetchInto(repo);
        await interrupt(fetching, ['fetch', 'origin'], repo.dir);
        await clean(repo.dir, repo.gitDir, `fetch, round ${round}`);
        await cli(['fetch', '-q', 'origin'], repo.dir);
        const fetched = (await cli(['log', '-1', '--format=%H', 'origin/main'], repo.dir)).out;
        assert.equal(fetched.trim(), last.id, 'origin/main after the fetch');
        if (round === options.rounds - 1) {
          await cli(['switch', '-q', '-c', 'main', 'origin/main'], repo.dir);
          assert.equal(await sha256File(repo.path('big.bin')), last.sha256, 'fetched big.bin');
        }
      } finally {
        await repo.cleanup();
      }
    }
    log(`fetch: ${fetching.interrupted}/${options.rounds} interrupted`);

    // clone: interrupted, then the same command again.
    const sent = (): Promise<number> => server.metric('mediagit_http_bytes_sent_total');
    const before = await sent();
    const fullClone = await onTerminal(['clone', server.url('proj'), 'clone-full'], home.root, env);
    assert.equal(fullClone.code, 0, fullClone.out);
    const cloneBytes = (await sent()) - before;
    await fs.rm(path.join(home.root, 'clone-full'), { recursive: true, force: true });
    const cloning = report('clone', fullClone.seconds);
    const cloneRatios: number[] = [];
    for (let round = 0; round < options.rounds; round++) {
      const target = path.join(home.root, `clone${round}`);
      const args = ['clone', server.url('proj'), target];
      const start = await sent();
      const first = await interrupt(cloning, args, home.root);
      // A signal that lands once the clone has finished its work (its marker
      // removed, the process on its way out) stops a complete clone, as
      // Git's does: nothing to resume, and the checks below see it whole.
      // Any other interrupted clone is resumed, or was removed whole.
      const marker = path.join(target, '.mediagit', 'CLONE_IN_PROGRESS');
      const resumable = await fs.stat(marker).then(
        () => true,
        () => false,
      );
      const removed = await fs.stat(target).then(
        () => false,
        () => true,
      );
      if (first.code === 130 && (resumable || removed)) {
        await clean(target, path.join(target, '.mediagit'), `clone, round ${round}`);
        const again = await onTerminal(args, home.root, env);
        assert.equal(again.code, 0, `the rerun clone: ${again.out}`);
      }
      cloneRatios.push(((await sent()) - start) / cloneBytes);
      assert.ok(
        cloneRatios.at(-1)! <= (options.cloneLimit ?? 1.1),
        `clone round ${round}: ${cloneRatios.at(-1)!.toFixed(2)}x the bytes of one clone`,
      );
      assert.equal(await sha256File(path.join(target, 'big.bin')), last.sha256, 'cloned big.bin');
      assert.equal((await cli(['status', '--porcelain'], target)).out, '');
      await clean(target, path.join(target, '.mediagit'), `clone ${round} after its rerun`);
      const log = (await cli(['log', '--format=%H'], target)).out.trim().split('\n');
      assert.deepEqual(
        log.reverse(),
        commits.map((c) => c.id),
        'every commit was cloned',
      );
      await fs.rm(target, { recursive: true, force: true });
    }
    log(`clone: ${cloning.interrupted}/${options.rounds} interrupted`);

    // Nothing committed was lost: every push sent the whole history from
    // this repository, every clone received every commit, and the first and
    // last versions were checked byte for byte after each recovery.
    return {
      size: options.size,
      operations: reports,
      cloneBytes,
      cloneRatios,
      commits: commits.length,
    };
  } finally {
    await server.stop();
    if (process.env['MEDIAGIT_DRILL_KEEP']) log(`kept ${home.root}`);
    else await home.cleanup();
  }
}
