// Importing a Git + Git LFS history (issue 21): a repository made here with git and git-lfs
// (by default 300 commits on 5 branches with merges into main, 50 LFS-tracked binaries of 1-50 MB,
// each commit a 4 KiB edit of one binary and a line of text), then, in the same run, with the
// device's own limits printed first:
//   G. `git clone <path>` + `git lfs fetch --all` in the clone: what a Git LFS user does to get
//      the whole history;
//   M. `mediagit init` + `mediagit import --lfs <path>`.
// Goals: M ≤ 1.5 × G; MediaGit's stored bytes ≤ 0.3 × `du` of the source's .git/lfs/objects.
// The import's result is checked first: as many commits as Git has, and the tip's files equal
// to Git's checkout.
//
// Before any figure counts, the import is checked against Git: every 10th commit and every branch
// tip file by file (mode and SHA-256), every commit's metadata.
//
// Run with `npm run bench:import [-- --commits N] [--files N] [--max-mb N] [--keep]`; not part
// of npm test. Scratch lives under bench-work/import (removed unless --keep).

import { execFileSync } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  benchEnv,
  configureRunner,
  deviceLimits,
  formatDeviceLimits,
  formatBytes,
  formatRatio,
  formatSeconds,
  freshDir,
  mediagit,
  MiB,
  must,
  numberOption,
  progress,
  sync,
  workRoot,
  sha256OfFile,
} from './lib.ts';
import { decodeCommit } from '../src/odb/commit.ts';
import { streamFileContent } from '../src/odb/file-store.ts';
import { ObjectStore } from '../src/odb/object-store.ts';
import { decodeTree } from '../src/odb/tree.ts';

const args = process.argv.slice(2);
const commits = numberOption(args, '--commits', 300);
const files = numberOption(args, '--files', 50);
const maxMb = numberOption(args, '--max-mb', 50);
const BRANCHES = 5;
const keep = args.includes('--keep');

const env = benchEnv({
  MEDIAGIT_AUTO_GC: '0',
  GIT_AUTHOR_NAME: 'Bench',
  GIT_AUTHOR_EMAIL: 'bench@example.com',
  GIT_COMMITTER_NAME: 'Bench',
  GIT_COMMITTER_EMAIL: 'bench@example.com',
});
configureRunner({ gnuTime: null, env });

function noise(length: number, seed: number): Buffer {
  const key = createHash('sha256').update(`bench-import-${seed}`).digest();
  return createCipheriv('aes-256-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(length));
}

const gitIn = (cwd: string) => (gitArgs: string[]) =>
  must(`git ${gitArgs.join(' ')}`, 'git', gitArgs, cwd);

function du(dir: string): number {
  let total = 0;
  const walk = (d: string) => {
    for (const entry of fs.readdirSync(d, { withFileTypes: true })) {
      const full = path.join(d, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.isFile()) total += fs.statSync(full).size;
    }
  };
  walk(dir);
  return total;
}

async function makeSource(src: string): Promise<void> {
  fs.mkdirSync(src, { recursive: true });
  const git = gitIn(src);
  await git(['init', '-q', '-b', 'main']);
  await git(['lfs', 'install', '--local']);
  await git(['lfs', 'track', '*.bin']);
  fs.mkdirSync(path.join(src, 'assets'));
  for (let i = 0; i < files; i++) {
    const mb = 1 + Math.round((i * (maxMb - 1)) / Math.max(1, files - 1));
    fs.writeFileSync(path.join(src, 'assets', `asset-${i}.bin`), noise(mb * MiB, i));
  }
  fs.writeFileSync(path.join(src, 'notes.txt'), 'notes\n');
  await git(['add', '.']);
  await git(['commit', '-q', '-m', 'Initial assets']);
  for (let b = 1; b < BRANCHES; b++) await git(['branch', `b${b}`]);
  const branchOf = (i: number) => (i % BRANCHES === 0 ? 'main' : `b${i % BRANCHES}`);
  // Commits in rounds: each branch in turn takes a run of commits (a checkout per run, not per
  // commit), then the side branches are merged into main; each branch edits its own files, so
  // merges never conflict.
  const rounds = 5;
  const perRun = Math.max(1, Math.floor(commits / (rounds * BRANCHES)));
  let c = 0;
  for (let round = 0; round < rounds && c < commits; round++) {
    for (let b = 0; b < BRANCHES && c < commits; b++) {
      const branch = b === 0 ? 'main' : `b${b}`;
      await git(['checkout', '-q', branch]);
      const owned = Array.from({ length: files }, (_, i) => i).filter(
        (i) => branchOf(i) === branch,
      );
      const runLength = round === rounds - 1 && b === BRANCHES - 1 ? commits - c : perRun;
      for (let k = 0; k < runLength && c < commits; k++, c++) {
        const file = owned[(round * perRun + k) % owned.length]!;
        const name = path.join('assets', `asset-${file}.bin`);
        const target = path.join(src, name);
        const size = fs.statSync(target).size;
        const fd = fs.openSync(target, 'r+');
        fs.writeSync(fd, noise(4096, 1000 + c), 0, 4096, (c * 7_919_993) % (size - 4096));
        fs.closeSync(fd);
        fs.appendFileSync(path.join(src, `${branch}.txt`), `commit ${c}\n`);
        await git(['add', name, `${branch}.txt`]);
        await git(['commit', '-q', '-m', `Edit asset ${file} (${c})`]);
        if (c % 50 === 49) progress(`  ${c + 1} commits`);
      }
    }
    await git(['checkout', '-q', 'main']);
    for (let b = 1; b < BRANCHES; b++)
      await git(['merge', '-q', '--no-ff', '-m', `Merge b${b} (round ${round})`, `b${b}`]);
  }
  await git(['checkout', '-q', 'main']);
}

/**
 * The import checked against Git (issue 21): at every 10th commit (topological order) and at
 * every branch tip, each file's mode and SHA-256 read from the MediaGit store equal Git's, with
 * LFS pointers replaced by their content from the source's LFS store; and every commit's
 * parents, author, committer, dates and message equal. File versions are hashed once each.
 */
async function verifyImport(src: string, mg: string): Promise<{ trees: number; commits: number }> {
  const text = (args: string[]) =>
    execFileSync('git', args, { cwd: src, encoding: 'utf8', maxBuffer: 256 * MiB });
  const map = new Map(
    fs
      .readFileSync(path.join(mg, '.mediagit', 'import', 'commits'), 'utf8')
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => l.split(' ') as [string, string]),
  );
  const order = text(['rev-list', '--topo-order', '--reverse', '--all']).trim().split('\n');
  const tips = text(['for-each-ref', '--format=%(objectname)', 'refs/heads']).trim().split('\n');
  const sample = new Set([...order.filter((_, i) => i % 10 === 0), ...tips]);
  const gitDir = path.join(src, '.git');
  const gitHashes = new Map<string, string>();
  const gitFiles = (commit: string): Map<string, string> => {
    const files = new Map<string, string>();
    for (const line of text(['ls-tree', '-r', '-z', commit]).split('\0')) {
      if (line === '') continue;
      const [meta, name] = line.split('\t') as [string, string];
      const [mode, , blob] = meta.split(' ') as [string, string, string];
      let sha = gitHashes.get(blob);
      if (sha === undefined) {
        const bytes = execFileSync('git', ['cat-file', 'blob', blob], {
          cwd: src,
          maxBuffer: 256 * MiB,
        });
        const oid =
          /^version https:\/\/git-lfs.github.com\/spec\/v1\noid sha256:([0-9a-f]{64})\n/.exec(
            bytes.subarray(0, 200).toString('latin1'),
          )?.[1];
        sha = oid
          ? sha256OfFile(path.join(gitDir, 'lfs', 'objects', oid.slice(0, 2), oid.slice(2, 4), oid))
          : createHash('sha256').update(bytes).digest('hex');
        gitHashes.set(blob, sha);
      }
      files.set(name, `${mode} ${sha}`);
    }
    return files;
  };
  const store = new ObjectStore(
    path.join(mg, '.mediagit', 'objects'),
    path.join(mg, '.mediagit', 'tmp'),
  );
  const mgHashes = new Map<string, string>();
  const mgFiles = async (id: string): Promise<Map<string, string>> => {
    const files = new Map<string, string>();
    const walk = async (tree: string, prefix: string): Promise<void> => {
      for (const entry of decodeTree(tree, await store.readTyped(tree, 'tree'))) {
        if (entry.kind === 'tree') {
          await walk(entry.id, `${prefix}${entry.name}/`);
          continue;
        }
        let sha = mgHashes.get(entry.id);
        if (sha === undefined) {
          const hash = createHash('sha256');
          await streamFileContent(store, entry.kind, entry.id, async (data) => {
            hash.update(data);
          });
          sha = hash.digest('hex');
          mgHashes.set(entry.id, sha);
        }
        files.set(`${prefix}${entry.name}`, `${entry.mode} ${sha}`);
      }
    };
    await walk(decodeCommit(id, await store.readTyped(id, 'commit')).tree, '');
    return files;
  };
  for (const gitId of sample) {
    const id = map.get(gitId);
    if (id === undefined) throw new Error(`Git commit ${gitId} was not imported`);
    const theirs = gitFiles(gitId);
    const mine = await mgFiles(id);
    for (const [name, value] of theirs) {
      if (mine.get(name) !== value) throw new Error(`${name} at Git commit ${gitId} differs`);
    }
    if (mine.size !== theirs.size) throw new Error(`Git commit ${gitId}: other files than Git's`);
  }
  // Metadata of every commit, through the CLI's JSON log.
  const log = JSON.parse((await mediagit(['log', '--json', '--all'], mg)).stdout) as {
    id: string;
    parents: string[];
    author: { name: string; email: string; time: number };
    committer: { name: string; email: string; time: number };
    message: string;
  }[];
  const back = new Map([...map].map(([gitId, id]) => [id, gitId]));
  const theirs = new Map(
    text(['log', '--all', '--format=%H%x00%P%x00%an%x00%ae%x00%at%x00%cn%x00%ce%x00%ct%x00%B%x01'])
      .split('\x01\n')
      .filter((t) => t !== '')
      .map((t) => [t.split('\0')[0]!, t.split('\0')]),
  );
  for (const entry of log) {
    const gitId = back.get(entry.id);
    const fields = gitId === undefined ? undefined : theirs.get(gitId);
    if (!fields) throw new Error(`MediaGit commit ${entry.id} maps to no Git commit`);
    const [, parents, an, ae, at, cn, ce, ct, body] = fields;
    const same =
      entry.parents.join(' ') ===
        parents!
          .split(' ')
          .filter((p) => p !== '')
          .map((p) => map.get(p))
          .join(' ') &&
      entry.author.name === an &&
      entry.author.email === ae &&
      entry.author.time === Number(at) &&
      entry.committer.name === cn &&
      entry.committer.email === ce &&
      entry.committer.time === Number(ct) &&
      entry.message.trimEnd() === body!.trimEnd();
    if (!same) throw new Error(`the metadata of Git commit ${gitId} differs after import`);
  }
  if (log.length !== order.length)
    throw new Error(`${log.length} commits in MediaGit, ${order.length} in Git`);
  return { trees: sample.size, commits: log.length };
}

const scratch = freshDir(path.join(workRoot, 'import'));
try {
  console.log(formatDeviceLimits(deviceLimits(workRoot)));
  const src = path.join(scratch, 'src');
  progress(
    `making the source: ${commits} commits, ${files} LFS binaries of 1-${maxMb} MB, ${BRANCHES} branches`,
  );
  await makeSource(src);
  const lfsBytes = du(path.join(src, '.git', 'lfs', 'objects'));
  const gitCommits = (
    await must('rev-list', 'git', ['rev-list', '--all', '--count'], src)
  ).stdout.trim();
  progress(`  ${gitCommits} commits, ${formatBytes(lfsBytes)} of LFS objects`);

  await sync();
  progress('G: git clone + git lfs fetch --all');
  const clone = path.join(scratch, 'clone');
  const g1 = await must('git clone', 'git', ['clone', '-q', src, clone], scratch);
  const g2 = await must('git lfs fetch --all', 'git', ['lfs', 'fetch', '--all'], clone);
  const gSync = await sync();
  const gSeconds = g1.seconds + g2.seconds + gSync;

  progress('M: mediagit init + import --lfs');
  const mg = path.join(scratch, 'mg');
  fs.mkdirSync(mg);
  const m1 = await mediagit(['init', '-q'], mg);
  const m2 = await mediagit(['import', '--lfs', src], mg);
  const mSync = await sync();
  const mSeconds = m1.seconds + m2.seconds + mSync;

  // The result first: every commit imported, and the tip's files equal to Git's checkout.
  const mapped = fs
    .readFileSync(path.join(mg, '.mediagit', 'import', 'commits'), 'utf8')
    .trim()
    .split('\n').length;
  if (String(mapped) !== gitCommits) throw new Error(`imported ${mapped} commits of ${gitCommits}`);
  for (const name of fs.readdirSync(path.join(clone, 'assets'))) {
    const a = createHash('sha256')
      .update(fs.readFileSync(path.join(clone, 'assets', name)))
      .digest('hex');
    const b = createHash('sha256')
      .update(fs.readFileSync(path.join(mg, 'assets', name)))
      .digest('hex');
    if (a !== b) throw new Error(`assets/${name} differs from Git's checkout`);
  }
  progress('checking every 10th commit and every branch tip, file by file, and every commit');
  const checked = await verifyImport(src, mg);
  progress(`  ${checked.trees} trees byte-compared, ${checked.commits} commits' metadata equal`);
  const stored = du(path.join(mg, '.mediagit', 'objects'));
  const ratio = mSeconds / gSeconds;
  const storedRatio = stored / lfsBytes;
  console.log(
    `\n${gitCommits} commits, ${files} LFS binaries, ${formatBytes(lfsBytes)} in .git/lfs/objects`,
  );
  console.log(
    `  G  git clone + git lfs fetch --all   ${formatSeconds(gSeconds)}  (clone ${formatSeconds(g1.seconds)}, fetch ${formatSeconds(g2.seconds)}, sync ${formatSeconds(gSync)})`,
  );
  console.log(
    `  M  mediagit init + import --lfs      ${formatSeconds(mSeconds)}  (import ${formatSeconds(m2.seconds)}, sync ${formatSeconds(mSync)})`,
  );
  console.log(
    `  M / G                               ${formatRatio(ratio)}   goal ≤ 1.50x  ${ratio <= 1.5 ? '✓' : '✗'}`,
  );
  console.log(
    `  stored by MediaGit                  ${formatBytes(stored)} = ${(storedRatio * 100).toFixed(1)} % of the LFS objects   goal ≤ 30 %  ${storedRatio <= 0.3 ? '✓' : '✗'}`,
  );
  process.exitCode = ratio <= 1.5 && storedRatio <= 0.3 ? 0 : 1;
} finally {
  if (!keep) fs.rmSync(scratch, { recursive: true, force: true });
}
