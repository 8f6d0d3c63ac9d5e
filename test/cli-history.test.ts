/**
 * End-to-end tests of `log`, `show` and `diff`: the real CLI binary on
 * temporary repositories. Where Git has the same idea, the same file
 * operations are done in a Git repository beside ours (with the same commit
 * times) and the outputs are compared, object IDs aside.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { encodeCommit, encodeTag, type Signature } from '../src/odb/commit.ts';
import { diff } from '../src/repo/diff.ts';
import { Refs } from '../src/repo/refs.ts';
import { Repository } from '../src/repo/repository.ts';
import { readCommit } from '../src/repo/tree-ops.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
const BIN = path.join(ROOT, 'bin', 'mediagit.js');
const TZ = 'Asia/Kolkata'; // +0530: offsets with minutes catch date-format slips

assert.ok(
  fs.existsSync(path.join(ROOT, 'dist', 'cli', 'main.js')),
  'run `npm run build` before these tests',
);

interface Run {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly bytes: Buffer;
}

function baseEnv(home: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, TZ, NO_COLOR: '1', HOME: home };
  delete env['COLUMNS'];
  return env;
}

function run(command: string, args: readonly string[], cwd: string, env: NodeJS.ProcessEnv): Run {
  const result = spawnSync(command, args, { cwd, env, maxBuffer: 256 * 1024 * 1024 });
  if (result.error) throw result.error;
  return {
    status: result.status,
    stdout: result.stdout.toString('utf8'),
    stderr: result.stderr.toString('utf8'),
    bytes: result.stdout,
  };
}

/** A MediaGit repository and a Git repository that receive the same file operations. */
class Twins {
  readonly root: string;
  readonly g: string;
  readonly m: string;
  readonly #mgEnv: NodeJS.ProcessEnv;
  readonly #gitEnv: NodeJS.ProcessEnv;

  constructor(root: string) {
    this.root = root;
    this.g = path.join(root, 'g');
    this.m = path.join(root, 'm');
    fs.mkdirSync(this.g);
    fs.mkdirSync(this.m);
    this.#mgEnv = {
      ...baseEnv(root),
      MEDIAGIT_AUTHOR_NAME: 'A U Thor',
      MEDIAGIT_AUTHOR_EMAIL: 'author@example.com',
      MEDIAGIT_CONFIG_GLOBAL: path.join(root, 'global.toml'),
    };
    this.#gitEnv = {
      ...baseEnv(root),
      GIT_CONFIG_NOSYSTEM: '1',
      GIT_CONFIG_GLOBAL: path.join(root, 'gitconfig'),
      GIT_AUTHOR_NAME: 'A U Thor',
      GIT_AUTHOR_EMAIL: 'author@example.com',
      GIT_COMMITTER_NAME: 'A U Thor',
      GIT_COMMITTER_EMAIL: 'author@example.com',
    };
    this.ok(this.mg('init', '-q'));
    this.ok(this.git('init', '-q', '-b', 'main'));
  }

  static async create(t: TestContext): Promise<Twins> {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'mediagit-history-'));
    t.after(() => fs.rmSync(root, { recursive: true, force: true }));
    return new Twins(root);
  }

  mg(...args: string[]): Run {
    return run(process.execPath, [BIN, ...args], this.m, this.#mgEnv);
  }

  mgIn(cwd: string, ...args: string[]): Run {
    return run(process.execPath, [BIN, ...args], cwd, this.#mgEnv);
  }

  git(...args: string[]): Run {
    return run(
      'git',
      ['-c', 'core.quotePath=true', '-c', 'color.ui=never', ...args],
      this.g,
      this.#gitEnv,
    );
  }

  ok(result: Run): Run {
    assert.equal(result.status, 0, `command failed: ${result.stderr}`);
    return result;
  }

  write(rel: string, content: string | Uint8Array, mode = 0o644): void {
    for (const dir of [this.g, this.m]) {
      const full = path.join(dir, rel);
      fs.mkdirSync(path.dirname(full), { recursive: true });
      fs.writeFileSync(full, content);
      fs.chmodSync(full, mode);
    }
  }

  remove(rel: string): void {
    for (const dir of [this.g, this.m]) fs.rmSync(path.join(dir, rel));
  }

  symlink(target: string, rel: string): void {
    for (const dir of [this.g, this.m]) fs.symlinkSync(target, path.join(dir, rel));
  }

  chmod(rel: string, mode: number): void {
    for (const dir of [this.g, this.m]) fs.chmodSync(path.join(dir, rel), mode);
  }

  move(from: string, to: string): void {
    for (const dir of [this.g, this.m]) {
      fs.mkdirSync(path.dirname(path.join(dir, to)), { recursive: true });
      fs.renameSync(path.join(dir, from), path.join(dir, to));
    }
  }

  stage(): void {
    this.ok(this.mg('add', '-A'));
    this.ok(this.git('add', '-A'));
  }

  /** Commits everything in both, the Git commit dated exactly as ours. */
  commit(message: string): void {
    this.stage();
    this.ok(this.mg('commit', '-q', '-m', message));
    const [entry] = JSON.parse(this.ok(this.mg('log', '-1', '--json')).stdout) as {
      author: Signature;
    }[];
    const date = `@${entry!.author.time} ${tzText(entry!.author.tzOffset)}`;
    const env = { ...this.#gitEnv, GIT_AUTHOR_DATE: date, GIT_COMMITTER_DATE: date };
    const result = run('git', ['commit', '-q', '-m', message], this.g, env);
    assert.equal(result.status, 0, result.stderr);
  }
}

function tzText(offset: number): string {
  const abs = Math.abs(offset);
  const two = (n: number): string => String(n).padStart(2, '0');
  return `${offset < 0 ? '-' : '+'}${two(Math.floor(abs / 60))}${two(abs % 60)}`;
}

/** Hides what legitimately differs from Git: object IDs (SHA-256 vs SHA-1). */
function normalize(text: string): string {
  return text
    .replace(/^index [0-9a-f]+\.\.[0-9a-f]+/gm, 'index X..Y')
    .replace(/^commit [0-9a-f]{40,64}/gm, 'commit X')
    .replace(/^[0-9a-f]{7} /gm, 'ABBREV ')
    .replace(/^Merge: .*$/gm, 'Merge: X');
}

/** Our one-line binary summaries, which Git does not print. */
function withoutSummaries(text: string): string {
  // The size line, and the format's own account under it (docs/media-merge.md).
  return text.replace(/^# .*: \d+ -> \d+ bytes \(.*\)\n(# {3}.*\n)*/gm, '');
}

/** The same small tree in both repositories: text, empty, symlink, executable, binary, odd names. */
function populate(twins: Twins): void {
  twins.write('a.txt', 'one\ntwo\n');
  twins.write('nonl.txt', 'x');
  twins.write('empty.txt', '');
  twins.symlink('a.txt', 'link');
  twins.write('run.sh', '#!/bin/sh\necho hi\n', 0o755);
  twins.write('b.bin', Buffer.from([0, 1, 2, 3, 0, 5]));
  twins.write('dir sp/ü.txt', 'é\n');
  twins.write('nums.txt', Array.from({ length: 50 }, (_, i) => `${i + 1}`).join('\n') + '\n');
}

function changeEverything(twins: Twins): void {
  twins.chmod('run.sh', 0o644);
  twins.write('nonl.txt', 'x\ny');
  twins.remove('empty.txt');
  twins.remove('link');
  twins.write('link', 'target\n');
  twins.write(
    'nums.txt',
    Array.from({ length: 50 }, (_, i) => i + 1)
      .filter((n) => n !== 25)
      .map((n) => (n === 10 ? 'ten' : n === 40 ? 'forty' : `${n}`))
      .join('\n') + '\n',
  );
  twins.write('a.txt', 'one\n2\nthree\n');
}

const FORMATS = [[], ['--stat'], ['--numstat'], ['--name-status'], ['--name-only']];

function assertSameDiff(twins: Twins, args: string[], formats = FORMATS): void {
  for (const format of formats) {
    const ours = twins.mg('diff', ...format, ...args);
    const theirs = twins.git('diff', ...format, ...args);
    assert.equal(ours.status, 0, ours.stderr);
    assert.equal(
      normalize(withoutSummaries(ours.stdout)),
      normalize(theirs.stdout),
      `diff ${[...format, ...args].join(' ')}`,
    );
  }
}

test('log and show on an unborn branch fail as in git', async (t) => {
  const twins = await Twins.create(t);
  for (const verb of ['log', 'show']) {
    const result = twins.mg(verb);
    assert.equal(result.status, 128);
    assert.equal(
      result.stderr,
      "fatal: your current branch 'main' does not have any commits yet\n",
    );
  }
});

test('diff matches git diff: working tree, --cached, <rev>, <rev> <rev>, a..b and paths', async (t) => {
  const twins = await Twins.create(t);
  populate(twins);
  twins.commit('first');
  changeEverything(twins);
  assertSameDiff(twins, []);
  assertSameDiff(twins, ['HEAD']);
  twins.stage();
  twins.move('b.bin', 'moved.bin');
  twins.write('dir sp/new file.txt', 'new\n');
  twins.stage();
  assertSameDiff(twins, ['--cached']);
  assertSameDiff(twins, ['--staged', '--', 'dir sp']);
  twins.commit('second');
  assertSameDiff(twins, ['HEAD~1', 'HEAD']);
  assertSameDiff(twins, ['HEAD~1..HEAD']);
  assertSameDiff(twins, ['HEAD', 'HEAD~1', '--', 'nums.txt', 'link']);
  assertSameDiff(twins, ['HEAD~1', 'HEAD', '--', '*.txt']);
  // (Git's -U implies a patch even with --stat, so it is compared as a patch only.)
  assertSameDiff(twins, ['-U1', 'HEAD~1', 'HEAD'], [[]]);
  assertSameDiff(twins, ['--unified=0', 'HEAD~1', 'HEAD'], [[]]);
  assertSameDiff(twins, ['--no-renames', 'HEAD~1', 'HEAD']);
  // A path given without "--" works when it exists, as in git.
  assert.equal(twins.mg('diff', 'HEAD~1', 'nums.txt', '--name-only').stdout, 'nums.txt\n');
});

test('diff --exit-code and --quiet report differences with status 1', async (t) => {
  const twins = await Twins.create(t);
  twins.write('a.txt', 'a\n');
  twins.commit('first');
  assert.equal(twins.mg('diff', '--exit-code').status, 0);
  assert.equal(twins.mg('diff', '--quiet').status, 0);
  twins.write('a.txt', 'b\n');
  const quiet = twins.mg('diff', '--quiet');
  assert.deepEqual([quiet.status, quiet.stdout], [1, '']);
  const exit = twins.mg('diff', '--exit-code', '--name-only');
  assert.deepEqual([exit.status, exit.stdout], [1, 'a.txt\n']);
  assert.equal(twins.mg('diff', '--name-only').status, 0);
});

test('binary changes show git’s line plus size and detected type', async (t) => {
  const twins = await Twins.create(t);
  const png = (extra: number): Buffer =>
    Buffer.concat([
      Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13]),
      randomBytes(extra),
    ]);
  twins.write('img.png', png(100));
  twins.write(
    'clip.mp4',
    Buffer.concat([Buffer.from('\0\0\0\x18ftypisom\0\0\0\0'), randomBytes(64)]),
  );
  twins.commit('images');
  twins.write('img.png', png(300));
  twins.remove('clip.mp4');
  const patch = twins.mg('diff').stdout.split('\n');
  assert.ok(patch.includes('Binary files a/img.png and b/img.png differ'), patch.join('\n'));
  assert.ok(patch.includes('# img.png: 112 -> 312 bytes (image/png)'), patch.join('\n'));
  assert.ok(patch.includes('Binary files a/clip.mp4 and /dev/null differ'), patch.join('\n'));
  assert.ok(patch.includes('# clip.mp4: 80 -> 0 bytes (video/mp4)'), patch.join('\n'));
  assertSameDiff(twins, []);
});

test('an unchanged working tree is diffed without reading file contents', async (t) => {
  const twins = await Twins.create(t);
  for (let i = 0; i < 20; i++) twins.write(`f${i}.txt`, `file ${i}\n`);
  // Old mtimes, so no entry is "racy" against the index written just after.
  const past = new Date(Date.now() - 60_000);
  for (let i = 0; i < 20; i++) fs.utimesSync(path.join(twins.m, `f${i}.txt`), past, past);
  twins.commit('files');
  const repo = await Repository.discover(twins.m);
  const clean = await diff(repo, { cwd: twins.m, detail: 'patch' });
  assert.deepEqual(clean, { files: [], contentReads: 0, unmerged: [] });
  // Touched but identical: one read to prove it unchanged, and no change reported.
  const later = new Date(Date.now() - 30_000);
  fs.utimesSync(path.join(twins.m, 'f3.txt'), later, later);
  const touched = await diff(repo, { cwd: twins.m, detail: 'patch' });
  assert.deepEqual(touched, { files: [], contentReads: 1, unmerged: [] });
  fs.writeFileSync(path.join(twins.m, 'f4.txt'), 'changed\n');
  const changed = await diff(repo, { cwd: twins.m, detail: 'names' });
  assert.deepEqual(
    changed.files.map((f) => [f.status, f.path]),
    [['M', 'f4.txt']],
  );
});

test('log prints git’s default, --oneline and --stat formats', async (t) => {
  const twins = await Twins.create(t);
  populate(twins);
  twins.commit('first');
  changeEverything(twins);
  twins.commit('second\n\nA body paragraph\nwith two lines.\n\n\n');
  twins.move('b.bin', 'bin/moved.bin');
  twins.write('dir sp/new file.txt', 'new\n');
  twins.commit('third: rename and add');
  for (const args of [
    [],
    ['--oneline'],
    ['--stat'],
    ['--oneline', '--stat'],
    ['--name-status'],
    ['-p'],
  ]) {
    const ours = twins.mg('log', ...args);
    const theirs = twins.git('log', ...args);
    assert.equal(ours.status, 0, ours.stderr);
    assert.equal(
      normalize(withoutSummaries(ours.stdout)),
      normalize(theirs.stdout),
      `log ${args.join(' ')}`,
    );
  }
  // Path-limited history keeps only the commits that touched the path.
  for (const p of ['nums.txt', 'dir sp', 'bin', '*.bin']) {
    assert.equal(
      normalize(twins.mg('log', '--oneline', '--', p).stdout),
      normalize(twins.git('log', '--oneline', '--', p).stdout),
      `log -- ${p}`,
    );
  }
});

test('log limits, JSON and unknown revisions', async (t) => {
  const twins = await Twins.create(t);
  for (const n of [1, 2, 3, 4]) {
    twins.write('n.txt', `${n}\n`);
    twins.commit(`commit ${n}`);
  }
  const subjects = (r: Run): string[] =>
    r.stdout
      .trim()
      .split('\n')
      .map((l) => l.slice(8));
  assert.deepEqual(subjects(twins.mg('log', '--oneline')), [
    'commit 4',
    'commit 3',
    'commit 2',
    'commit 1',
  ]);
  assert.deepEqual(subjects(twins.mg('log', '--oneline', '-n', '2')), ['commit 4', 'commit 3']);
  assert.deepEqual(subjects(twins.mg('log', '--oneline', '-3')), [
    'commit 4',
    'commit 3',
    'commit 2',
  ]);
  assert.deepEqual(subjects(twins.mg('log', '--oneline', '--max-count', '1', 'HEAD~2')), [
    'commit 2',
  ]);
  assert.deepEqual(subjects(twins.mg('log', '--oneline', 'HEAD~3..HEAD~1')), [
    'commit 3',
    'commit 2',
  ]);
  const json = JSON.parse(twins.ok(twins.mg('log', '--json', '--stat', '-2')).stdout) as {
    id: string;
    parents: string[];
    tree: string;
    author: Signature;
    committer: Signature;
    message: string;
    files: { status: string; path: string; added: number; deleted: number }[];
  }[];
  assert.equal(json.length, 2);
  assert.match(json[0]!.id, /^[0-9a-f]{64}$/);
  assert.deepEqual(json[0]!.parents, [json[1]!.id]);
  assert.equal(json[0]!.message, 'commit 4\n');
  assert.deepEqual(
    { name: json[0]!.author.name, email: json[0]!.author.email, tz: json[0]!.author.tzOffset },
    { name: 'A U Thor', email: 'author@example.com', tz: 330 },
  );
  assert.deepEqual(
    json[0]!.files.map((f) => [f.status, f.path, f.added, f.deleted]),
    [['M', 'n.txt', 1, 1]],
  );
  const unknown = twins.mg('log', 'nope');
  assert.equal(unknown.status, 128);
  assert.match(unknown.stderr, /^fatal: ambiguous argument 'nope': unknown revision/);
  assert.equal(twins.mg('show', 'nope').status, 128);
  assert.equal(twins.mg('diff', 'nope').status, 128);
  assert.equal(twins.mg('log', '--no-such-flag').status, 129);
});

test('log walks every parent in date order, each commit once, and decorates refs', async (t) => {
  const twins = await Twins.create(t);
  twins.write('a.txt', 'a\n');
  twins.commit('root');
  const repo = await Repository.discover(twins.m);
  const refs = new Refs(repo);
  const root = (await refs.head()).id!;
  const tree = (await readCommit(repo.objects, root)).tree;
  const at = (time: number): Signature => ({ name: 'A', email: 'a@x', time, tzOffset: 0 });
  const make = async (message: string, parents: string[], time: number): Promise<string> =>
    (
      await repo.objects.write(
        'commit',
        encodeCommit({
          tree,
          parents,
          author: at(time),
          committer: at(time),
          message: `${message}\n`,
        }),
      )
    ).id;
  const base = 2_000_000_000;
  const a = await make('a', [root], base + 200);
  const side1 = await make('side 1', [a], base + 300);
  const b = await make('b', [a], base + 400);
  const side2 = await make('side 2', [side1], base + 500);
  const merge = await make('merge', [b, side2], base + 600);
  await refs.update('refs/heads/main', merge, { message: 'test' });
  await refs.update('refs/heads/side', side2, { message: 'test' });
  const tag = await repo.objects.write(
    'tag',
    encodeTag({ object: b, type: 'commit', tag: 'v1', tagger: at(base + 700), message: 'v1\n' }),
  );
  await refs.update('refs/tags/v1', tag.id, { message: 'test' });
  await refs.update('refs/tags/light', a, { message: 'test' });
  const oneline = twins.ok(twins.mg('log', '--oneline', '--decorate')).stdout;
  assert.equal(
    oneline.replace(/^[0-9a-f]{7}/gm, 'X'),
    [
      'X (HEAD -> main) merge',
      'X (side) side 2',
      'X (tag: v1) b',
      'X side 1',
      'X (tag: light) a',
      'X root',
      '',
    ].join('\n'),
  );
  const full = twins.mg('log', '-1').stdout.split('\n');
  assert.equal(full[1], `Merge: ${b.slice(0, 7)} ${side2.slice(0, 7)}`);
  assert.equal(twins.mg('log', '--oneline', 'side').stdout.split('\n').length - 1, 4);
});

test('show prints a commit with its patch, and an annotated tag before it, as git does', async (t) => {
  const twins = await Twins.create(t);
  populate(twins);
  twins.commit('first');
  changeEverything(twins);
  twins.commit('second');
  for (const args of [[], ['HEAD~1'], ['--stat'], ['--name-status', 'HEAD'], ['-s']]) {
    const ours = twins.mg('show', ...args);
    assert.equal(ours.status, 0, ours.stderr);
    assert.equal(
      normalize(withoutSummaries(ours.stdout)),
      normalize(twins.git('show', ...args).stdout),
      `show ${args.join(' ')}`,
    );
  }
  // An annotated tag with the same tagger and time in both.
  const repo = await Repository.discover(twins.m);
  const head = (await new Refs(repo).head()).id!;
  const tagger: Signature = {
    name: 'Tag Ger',
    email: 'tagger@example.com',
    time: 1_700_000_000,
    tzOffset: -420,
  };
  const tag = await repo.objects.write(
    'tag',
    encodeTag({
      object: head,
      type: 'commit',
      tag: 'v1.0',
      tagger,
      message: 'Release 1.0\n\nNotes.\n',
    }),
  );
  await new Refs(repo).update('refs/tags/v1.0', tag.id, { message: 'test' });
  const tagEnv = {
    GIT_COMMITTER_NAME: 'Tag Ger',
    GIT_COMMITTER_EMAIL: 'tagger@example.com',
    GIT_COMMITTER_DATE: '@1700000000 -0700',
  };
  const tagged = spawnSync('git', ['tag', '-a', 'v1.0', '-m', 'Release 1.0\n\nNotes.'], {
    cwd: twins.g,
    env: { ...baseEnv(twins.root), GIT_CONFIG_NOSYSTEM: '1', ...tagEnv },
  });
  assert.equal(tagged.status, 0, tagged.stderr.toString());
  assert.equal(
    normalize(withoutSummaries(twins.mg('show', 'v1.0', '--stat').stdout)),
    normalize(twins.git('show', 'v1.0', '--stat').stdout),
  );
  const json = JSON.parse(twins.mg('show', 'v1.0', '--json').stdout) as {
    id: string;
    tags: { name: string }[];
  };
  assert.equal(json.id, head);
  assert.deepEqual(
    json.tags.map((x) => x.name),
    ['v1.0'],
  );
});

test('show <rev>:<path> writes the exact bytes of a chunked file, streamed to a pipe', async (t) => {
  const twins = await Twins.create(t);
  const big = randomBytes(6 * 1024 * 1024 + 12345);
  fs.writeFileSync(path.join(twins.m, 'big.bin'), big);
  fs.writeFileSync(path.join(twins.m, 'small.txt'), 'small\n');
  twins.ok(twins.mg('add', '-A'));
  twins.ok(twins.mg('commit', '-q', '-m', 'big'));
  const meta = JSON.parse(twins.ok(twins.mg('show', 'HEAD:big.bin', '--json')).stdout) as {
    kind: string;
    size: number;
  };
  assert.deepEqual([meta.kind, meta.size], ['manifest', big.length]);
  const shown = twins.ok(twins.mg('show', 'HEAD:big.bin'));
  assert.equal(shown.bytes.length, big.length);
  assert.equal(
    createHash('sha256').update(shown.bytes).digest('hex'),
    createHash('sha256').update(big).digest('hex'),
  );
  assert.equal(twins.ok(twins.mg('show', 'HEAD:small.txt')).stdout, 'small\n');
  // Changing the working file leaves the committed bytes alone.
  fs.writeFileSync(path.join(twins.m, 'big.bin'), 'replaced');
  assert.ok(twins.ok(twins.mg('show', 'HEAD:big.bin')).bytes.equals(big));
  // Paths relative to the current directory with "./".
  fs.mkdirSync(path.join(twins.m, 'sub'));
  assert.equal(
    twins.ok(twins.mgIn(path.join(twins.m, 'sub'), 'show', 'HEAD:../small.txt')).stdout,
    'small\n',
  );
  // A reader that stops early ends the stream quietly, as a SIGPIPE'd git would.
  const piped = spawnSync(
    'bash',
    [
      '-c',
      '"$0" "$1" show HEAD:big.bin | head -c 10 > /dev/null; echo "${PIPESTATUS[0]}"',
      process.execPath,
      BIN,
    ],
    {
      cwd: twins.m,
      env: { ...baseEnv(twins.root), MEDIAGIT_CONFIG_GLOBAL: path.join(twins.root, 'g.toml') },
    },
  );
  assert.equal(piped.stdout.toString().trim(), '141');
  assert.equal(piped.stderr.toString(), '');
});

test('show <rev>:<path> fails clearly when the path is not in that commit', async (t) => {
  const twins = await Twins.create(t);
  twins.write('a.txt', 'a\n');
  twins.write('dir/b.txt', 'b\n');
  twins.commit('first');
  twins.write('untracked.txt', 'u\n');
  for (const spec of ['HEAD:nope.txt', 'HEAD:untracked.txt', 'HEAD:a.txt/x']) {
    const ours = twins.mg('show', spec);
    const theirs = twins.git('show', spec);
    assert.equal(ours.status, 128, spec);
    assert.equal(ours.stderr, theirs.stderr, spec);
  }
  assert.equal(
    twins.mg('show', 'HEAD:nope.txt').stderr,
    "fatal: path 'nope.txt' does not exist in 'HEAD'\n",
  );
  for (const spec of ['HEAD:dir', 'HEAD:', ':a.txt', 'HEAD:dir/b.txt']) {
    assert.equal(twins.mg('show', spec).stdout, twins.git('show', spec).stdout, spec);
  }
});
