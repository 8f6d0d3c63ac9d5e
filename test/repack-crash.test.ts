/**
 * Crash safety of `repack -a -d`: the real CLI is killed with SIGKILL at
 * random moments while it packs a repository whose every commit adds loose
 * objects (a 16 MiB chunked file and 100 small files change each time), so
 * kills land while objects are surveyed, copied, the pack and index are made
 * durable, loose files are deleted and old packs removed. After every kill:
 *
 * - every file of every commit reads back exactly through the library, and
 *   through `mediagit show <rev>:<path>` (the large file of every commit and a
 *   rotating sample of the rest; every path of HEAD at the end);
 * - no pack index is left without its pack, and listing objects succeeds;
 * - an uninterrupted `repack -a -d` then leaves one pack and no loose object
 *   (its duration sets the next kill's window; every other kill aims at the
 *   end of the run, where the pack is made durable and files are deleted).
 *
 * What each kill left shows where it landed: before the new pack was indexed,
 * after that but before every deletion, or after them all.
 *
 * The seed is printed as a diagnostic; set MEDIAGIT_CRASH_SEED to replay a run.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { test } from 'node:test';
import type { ObjectId } from '../src/odb/object-id.ts';
import { Repository } from '../src/repo/repository.ts';
import {
  collect,
  describeCommitFiles,
  expectedCommitFiles,
  objectFolders,
  objectsLayout,
  prng,
  pseudoRandomBytes,
  readCommitFiles,
  replaceTree,
  sha256,
  TempRepo,
  textBytes,
  type TreeItem,
} from './helpers.ts';

const MiB = 1024 * 1024;
const BIG = 'media/master.mov';
const BIG_SIZE = 16 * MiB;
const SMALL_FILES = 100;
/** Kills per run; MEDIAGIT_CRASH_ITERATIONS raises it for a longer search (CI time is shared). */
const ITERATIONS = Number(process.env['MEDIAGIT_CRASH_ITERATIONS'] ?? 2);

/** Loose object files, pack indexes and unindexed pack files in the repository. */
async function objectFiles(
  repo: TempRepo,
): Promise<{ loose: number; indexes: string[]; orphans: number }> {
  const { loose, pack: names } = await objectsLayout(repo.gitDir);
  const indexes = names.filter((n) => n.endsWith('.idx')).sort();
  const orphans = names.filter(
    (n) => n.endsWith('.pack') && !names.includes(n.replace(/\.pack$/, '.idx')),
  ).length;
  return { loose, indexes, orphans };
}

test(
  'SIGKILL at random moments during repack -a -d never loses a committed byte',
  { timeout: 480_000 },
  async (t) => {
    const seed = Number(process.env['MEDIAGIT_CRASH_SEED'] ?? Math.floor(Math.random() * 1e9));
    t.diagnostic(`seed ${seed} (replay with MEDIAGIT_CRASH_SEED=${seed})`);
    const random = prng(seed);
    const repo = await TempRepo.create();
    try {
      const tree = new Map<string, TreeItem>();
      const commits = new Map<ObjectId, Record<string, string>>();
      const setState = (iteration: number): void => {
        // A new large file, or now and then a small edit of the last one.
        const previous = tree.get(BIG);
        let big: Buffer;
        if (iteration % 3 === 2 && previous?.type === 'file') {
          big = Buffer.from(previous.content);
          pseudoRandomBytes(64 * 1024, seed + 500 + iteration).copy(big, 3 * MiB);
        } else {
          big = pseudoRandomBytes(BIG_SIZE, seed + iteration);
        }
        tree.set(BIG, { type: 'file', content: big });
        for (let i = 0; i < SMALL_FILES; i++) {
          tree.set(`small/take ${String(i).padStart(3, '0')}.txt`, {
            type: 'file',
            content: Buffer.from(`take ${i} of iteration ${iteration}\n`),
          });
        }
        tree.set('notes/script.txt', {
          type: 'file',
          content: textBytes(30_000 + iteration, seed),
        });
        tree.set('tools/render.sh', {
          type: 'file',
          content: Buffer.from('#!/bin/sh\necho render\n'),
          executable: true,
        });
        tree.set('current', { type: 'symlink', target: BIG });
      };
      const commit = async (iteration: number): Promise<void> => {
        setState(iteration);
        await replaceTree(repo.dir, tree);
        await repo.ok(['add', '-A']);
        await repo.ok(['commit', '-q', '-m', `iteration ${iteration}`]);
        commits.set((await repo.head()).id!, expectedCommitFiles(tree));
      };

      const verify = async (label: string, showEverything: boolean): Promise<void> => {
        const packDir = path.join(repo.gitDir, 'objects', 'pack');
        const packFiles = await fs.readdir(packDir).catch(() => [] as string[]);
        for (const name of packFiles.filter((n) => n.endsWith('.idx'))) {
          assert.ok(
            packFiles.includes(name.replace(/\.idx$/, '.pack')),
            `${label}: ${name} has no pack`,
          );
        }
        const opened = await Repository.discover(repo.dir);
        let listed = 0;
        for await (const id of opened.objects.list()) if (id) listed++;
        assert.ok(listed > 0, `${label}: no objects listed`);
        const head = (await repo.head()).id;
        let round = 0;
        for (const [id, expected] of commits) {
          assert.deepEqual(
            describeCommitFiles(await readCommitFiles(repo.dir, id)),
            expected,
            `${label}: commit ${id}`,
          );
          const paths = Object.keys(expected).filter((p) => p !== 'current');
          const shown =
            showEverything && id === head
              ? paths
              : [BIG, paths[(round * 7 + Math.floor(random() * paths.length)) % paths.length]!];
          round++;
          for (const p of shown) {
            const result = await repo.ok(['show', `${id.slice(0, 12)}:${p}`]);
            assert.equal(
              `${expected[p]!.split(' ')[0]} ${sha256(result.stdout)}`,
              expected[p],
              `${label}: show ${id}:${p}`,
            );
          }
        }
      };

      // Start-up and an uninterrupted repack bound the kill delays.
      let started = performance.now();
      await repo.ok(['--version']);
      const startupMs = performance.now() - started;
      await commit(0);
      started = performance.now();
      await repo.ok(['repack', '-a', '-d', '-q']);
      let longest = performance.now() - started;
      await verify('after the first repack', false);
      t.diagnostic(
        `uninterrupted: start-up ${startupMs.toFixed(0)} ms, repack ${longest.toFixed(0)} ms`,
      );

      const phases = { before: 0, during: 0, after: 0 };
      const outcomes: string[] = [];
      let killed = 0;
      for (let i = 1; i <= ITERATIONS; i++) {
        const label = `iteration ${i}`;
        await commit(i);
        const before = await objectFiles(repo);
        // Each run does about what the last full one did (plus one commit);
        // every other kill aims at its end: fsyncs, the check, the deletions.
        const [from, to] =
          i % 2 === 0 ? [longest * 0.7, longest * 1.05] : [startupMs * 0.8, longest * 1.1];
        const delay = Math.round(from + random() * (to - from));
        const child = repo.spawn(['repack', '-a', '-d', '-q']);
        const finished = collect(child);
        const timer = setTimeout(() => child.kill('SIGKILL'), delay);
        const result = await finished;
        clearTimeout(timer);
        const wasKilled = result.signal === 'SIGKILL';
        if (wasKilled) killed++;
        else assert.equal(result.code, 0, `${label}: repack failed: ${result.stderr}`);
        // Where the kill landed, from what it left.
        const after = await objectFiles(repo);
        const newIndex = after.indexes.some((n) => !before.indexes.includes(n));
        const phase = !newIndex
          ? 'before'
          : after.loose > 0 || after.indexes.length > 1
            ? 'during'
            : 'after';
        phases[phase]++;
        outcomes.push(
          `${label}: ${wasKilled ? `killed at ${delay} ms` : `finished before ${delay} ms`}, ` +
            `${phase === 'before' ? 'before the new pack was indexed' : phase === 'during' ? 'after the new pack was indexed, before every deletion' : 'after all deletions'} ` +
            `(${after.loose} of ${before.loose} loose objects, ${after.indexes.length} indexes, ${after.orphans} unindexed packs)`,
        );
        await verify(`${label} after the kill`, i === ITERATIONS);

        // Recovery, timed: the next run's window.
        const started = performance.now();
        await repo.ok(['repack', '-a', '-d', '-q']);
        longest = performance.now() - started;
        const recovered = await objectFiles(repo);
        assert.equal(recovered.loose, 0, `${label}: loose objects left after recovery`);
        assert.equal(recovered.indexes.length, 1, `${label}: one pack after recovery`);
      }

      // Recovery: a full repack leaves one indexed pack and no loose objects.
      await repo.ok(['repack', '-a', '-d', '-q']);
      assert.deepEqual(await objectFolders(repo.gitDir), ['pack']);
      const packFiles = await fs.readdir(path.join(repo.gitDir, 'objects', 'pack'));
      assert.equal(packFiles.filter((n) => n.endsWith('.idx')).length, 1, packFiles.join(' '));
      await verify('after recovery', false);
      for (const line of outcomes) t.diagnostic(line);
      t.diagnostic(
        `${killed} of ${ITERATIONS} runs killed; kills landed ${phases.before} times before the new pack was indexed, ${phases.during} times after it was indexed but before every deletion, ${phases.after} times after all deletions`,
      );
      assert.ok(killed >= ITERATIONS / 3, `only ${killed} of ${ITERATIONS} runs were killed`);
    } finally {
      await repo.cleanup();
    }
  },
);
