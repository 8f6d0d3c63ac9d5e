/**
 * Git interop end to end with the real `git` and `git-lfs`: the MediaGit
 * filter registered by `mediagit install`, paths routed by `mediagit track`,
 * pointers that follow the Git LFS spec, checkouts through one
 * `filter-process`, and malformed pointers that never lose data.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pseudoRandomBytes } from './helpers.ts';
import { GitWorld } from './git-world.ts';

const sha256 = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');
const pointerText = (data: Uint8Array): string =>
  `version https://git-lfs.github.com/spec/v1\noid sha256:${sha256(data)}\nsize ${data.length}\n`;

describe('Git interop: the MediaGit filter in a Git repository', () => {
  let world: GitWorld;
  let repo: string;
  let video: Buffer;

  before(async () => {
    world = await GitWorld.create();
    repo = world.path('repo');
    await world.git(['init', '-q', repo], world.root);
    await world.mediagit(['install'], repo);
    // A real MP4, large enough to be stored as chunks (> 4 MiB).
    const mp4 = path.join(repo, 'clip.mp4');
    execFileSync('ffmpeg', [
      ...['-loglevel', 'error', '-y'],
      ...['-f', 'lavfi', '-i', 'testsrc2=duration=2:size=640x360:rate=25'],
      ...['-f', 'lavfi', '-i', 'anoisesrc=d=2:c=pink'],
      ...['-vf', 'noise=alls=60:allf=t', '-c:v', 'libx264', '-preset', 'ultrafast', '-qp', '20'],
      ...['-c:a', 'aac', '-shortest', mp4],
    ]);
    video = await fs.readFile(mp4);
  });
  after(async () => world.cleanup());

  it('install registers the filter in the global Git config; track writes .gitattributes', async () => {
    const config = await world.git(
      ['config', '--global', '--get-regexp', '^filter\\.mediagit\\.'],
      repo,
    );
    assert.equal(
      config.out,
      'filter.mediagit.clean mediagit filter clean -- %f\n' +
        'filter.mediagit.smudge mediagit filter smudge -- %f\n' +
        'filter.mediagit.process mediagit filter-process\n' +
        'filter.mediagit.required true\n',
    );
    assert.match(
      await fs.readFile(path.join(repo, '.git/hooks/pre-push'), 'utf8'),
      /mediagit pre-push/,
    );
    const tracked = await world.mediagit(['track', '*.mp4', 'my file.bin'], repo);
    assert.equal(tracked.out, 'Tracking "*.mp4"\nTracking "my file.bin"\n');
    const again = await world.mediagit(['track', '*.mp4'], repo);
    assert.equal(again.out, '"*.mp4" already supported\n');
    assert.equal(
      await fs.readFile(path.join(repo, '.gitattributes'), 'utf8'),
      '*.mp4 filter=mediagit diff=mediagit merge=mediagit -text\n' +
        'my[[:space:]]file.bin filter=mediagit diff=mediagit merge=mediagit -text\n' +
        '.gitattributes !filter !diff !merge text\n',
    );
    const list = await world.mediagit(['track', '--list', '--json'], repo);
    assert.deepEqual(JSON.parse(list.out), {
      patterns: [
        { pattern: '*.mp4', source: '.gitattributes' },
        { pattern: 'my file.bin', source: '.gitattributes' },
      ],
      minSize: 0,
    });
    // Git itself sees the attribute on both, the escaped space included.
    const attr = await world.git(
      ['check-attr', 'filter', 'clip.mp4', 'my file.bin', 'other.txt'],
      repo,
    );
    assert.equal(
      attr.out,
      'clip.mp4: filter: mediagit\nmy file.bin: filter: mediagit\nother.txt: filter: unspecified\n',
    );
    await world.mediagit(['untrack', 'my file.bin'], repo);
    assert.equal(
      await fs.readFile(path.join(repo, '.gitattributes'), 'utf8'),
      '*.mp4 filter=mediagit diff=mediagit merge=mediagit -text\n' +
        '.gitattributes !filter !diff !merge text\n',
    );
  });

  it('git add of a real MP4 commits a spec v1 pointer; git lfs reads it as its own', async () => {
    await world.git(['add', '.gitattributes', 'clip.mp4'], repo);
    await world.git(['commit', '-q', '-m', 'video'], repo);
    const blob = await world.git(['cat-file', '-p', 'HEAD:clip.mp4'], repo);
    assert.equal(blob.out, pointerText(video));
    assert.ok(video.length > 4 * 1024 * 1024, 'the MP4 is large enough to be chunked');
    // Stored as chunks + manifest in .git/mediagit, found by the OID.
    const oid = sha256(video);
    await fs.access(path.join(repo, '.git/mediagit/lfs', oid.slice(0, 2), oid.slice(2)));
    // git-lfs computes the same pointer for the same content and lists the file.
    const lfsPointer = await world.git(['lfs', 'pointer', '--file', 'clip.mp4'], repo);
    assert.equal(lfsPointer.out, pointerText(video));
    const check = await world.run('git', ['lfs', 'pointer', '--check', '--stdin'], repo, {
      input: blob.stdout,
    });
    assert.equal(check.code, 0, check.stderr);
    const listed = await world.git(['lfs', 'ls-files', '--long'], repo);
    assert.equal(listed.out, `${oid} * clip.mp4\n`);
    // The working file is untouched and status is clean (clean is idempotent).
    assert.deepEqual(await fs.readFile(path.join(repo, 'clip.mp4')), video);
    assert.equal((await world.git(['status', '--porcelain'], repo)).out, '');
  });

  it('git clone elsewhere checks out the exact bytes (content fetched from the origin repository)', async () => {
    const clone = world.path('clone1');
    await world.git(['clone', '-q', repo, clone], world.root);
    assert.deepEqual(await fs.readFile(path.join(clone, 'clip.mp4')), video);
    assert.equal((await world.git(['status', '--porcelain'], clone)).out, '');
  });

  it('200 tracked files check out through one filter-process, downloads delayed and parallel', async () => {
    const many = world.path('many');
    await world.git(['init', '-q', many], world.root);
    await world.mediagit(['track', '*.bin'], many);
    await fs.mkdir(path.join(many, 'assets'));
    const files = new Map<string, Buffer>();
    for (let i = 0; i < 200; i++) {
      const data = pseudoRandomBytes(1000 + i * 97, i + 1);
      const name = `assets/file-${String(i).padStart(3, '0')}.bin`;
      files.set(name, data);
      await fs.writeFile(path.join(many, name), data);
    }
    await world.git(['add', '.'], many);
    await world.git(['commit', '-q', '-m', 'many'], many);
    const clone = world.path('many-clone');
    const result = await world.git(['clone', '-q', many, clone], world.root, {
      env: { GIT_TRACE: '1', MEDIAGIT_TRACE: '1' },
    });
    const filterRuns = result.stderr
      .split('\n')
      .filter((line) => /run_command: .*mediagit filter/.test(line));
    assert.deepEqual(
      filterRuns.map((line) => line.replace(/^.*run_command: /, '')),
      ["'mediagit filter-process'"],
      'one long-running filter process, no per-file filter',
    );
    const summary =
      /mediagit filter-process: pid \d+: 0 cleaned, (\d+) smudged, (\d+) delayed/.exec(
        result.stderr,
      );
    assert.ok(summary, result.stderr.slice(-2000));
    assert.equal(Number(summary[1]), 200);
    assert.equal(Number(summary[2]), 200, 'every download was delayed (fetched in parallel)');
    for (const [name, data] of files) {
      assert.deepEqual(await fs.readFile(path.join(clone, name)), data, name);
    }
    assert.equal((await world.git(['status', '--porcelain'], clone)).out, '');
  });

  it('a file git-lfs committed smudges through MediaGit, and MediaGit cleans to the same pointer', async () => {
    const lfsRepo = world.path('lfs-repo');
    await world.git(['init', '-q', lfsRepo], world.root);
    await world.git(['lfs', 'install', '--local'], lfsRepo);
    await world.git(['lfs', 'track', '*.dat'], lfsRepo);
    const data = pseudoRandomBytes(300_000, 77);
    await fs.writeFile(path.join(lfsRepo, 'a.dat'), data);
    await world.git(['add', '.'], lfsRepo);
    await world.git(['commit', '-q', '-m', 'lfs'], lfsRepo);
    const pointer = (await world.git(['cat-file', '-p', 'HEAD:a.dat'], lfsRepo)).stdout;
    assert.equal(pointer.toString(), pointerText(data));
    const cleaned = await world.mediagit(['filter', 'clean', 'a.dat'], lfsRepo, { input: data });
    assert.deepEqual(cleaned.stdout, pointer);
    // The content is in git-lfs's store only; MediaGit's smudge finds it there.
    await fs.rm(path.join(lfsRepo, '.git/mediagit'), { recursive: true, force: true });
    const smudged = await world.mediagit(['filter', 'smudge', 'a.dat'], lfsRepo, {
      input: pointer,
    });
    assert.deepEqual(smudged.stdout, data);
  });

  it('malformed pointers pass through as content or fail with a clear message, never losing data', async () => {
    const odd = world.path('odd');
    await world.git(['init', '-q', odd], world.root);
    await world.mediagit(['track', '*.ptr'], odd);
    const real = Buffer.from('real content\n');
    const realOid = sha256(real);
    const cases = new Map<string, Buffer>([
      [
        'wrong-version.ptr',
        Buffer.from(`version https://git-lfs.github.com/spec/v2\noid sha256:${realOid}\nsize 13\n`),
      ],
      [
        'bad-oid.ptr',
        Buffer.from('version https://git-lfs.github.com/spec/v1\noid sha256:XYZ\nsize 13\n'),
      ],
      [
        'oversized.ptr',
        Buffer.from(
          `version https://git-lfs.github.com/spec/v1\noid sha256:${realOid}\nsize 13\nx-pad ${'a'.repeat(1100)}\n`,
        ),
      ],
      ['binary.ptr', pseudoRandomBytes(2000, 5)],
    ]);
    // Smudge of each (as content Git might hand over): written back unchanged.
    for (const [name, bytes] of cases) {
      const out = await world.mediagit(['filter', 'smudge', name], odd, { input: bytes });
      assert.deepEqual(out.stdout, bytes, name);
    }
    // Committed through the filter, each is stored as content and restored byte for byte.
    for (const [name, bytes] of cases) await fs.writeFile(path.join(odd, name), bytes);
    await world.git(['add', '.'], odd);
    await world.git(['commit', '-q', '-m', 'odd'], odd);
    for (const [name, bytes] of cases) {
      const blob = await world.git(['cat-file', '-p', `HEAD:${name}`], odd);
      assert.equal(blob.out, pointerText(bytes), `${name} is wrapped in a pointer`);
    }
    const clone = world.path('odd-clone');
    await world.git(['clone', '-q', odd, clone], world.root);
    for (const [name, bytes] of cases)
      assert.deepEqual(await fs.readFile(path.join(clone, name)), bytes, name);
    // A valid pointer whose size disagrees with the stored content: a clear error, exit 1.
    await world.mediagit(['filter', 'clean'], odd, { input: real });
    const wrongSize = await world.run('mediagit', ['filter', 'smudge'], odd, {
      input: `version https://git-lfs.github.com/spec/v1\noid sha256:${realOid}\nsize 99\n`,
    });
    assert.equal(wrongSize.code, 1);
    assert.match(wrongSize.stderr, /says 99 bytes but that content is 13 bytes/);
    assert.doesNotMatch(wrongSize.stderr, /at .*\.js:\d+/, 'no stack trace');
    // A pointer to content nobody has: a clear error naming the OID.
    const unknown = 'ab'.repeat(32);
    const missing = await world.run('mediagit', ['filter', 'smudge'], odd, {
      input: `version https://git-lfs.github.com/spec/v1\noid sha256:${unknown}\nsize 5\n`,
    });
    assert.equal(missing.code, 1);
    assert.match(
      missing.stderr,
      new RegExp(`content of ${unknown} \\(5 bytes\\) is not in this repository`),
    );
    // A pointer already cleaned passes through clean unchanged (no pointer of a pointer).
    const asPointer = Buffer.from(pointerText(real));
    const again = await world.mediagit(['filter', 'clean'], odd, { input: asPointer });
    assert.deepEqual(again.stdout, asPointer);
    // Unknown keys are kept: such a pointer cleans to itself and smudges to its content.
    const extended = Buffer.from(
      `version https://git-lfs.github.com/spec/v1\next-0-custom sha256:${'0'.repeat(64)}\noid sha256:${realOid}\nsize 13\n`,
    );
    const kept = await world.mediagit(['filter', 'clean'], odd, { input: extended });
    assert.deepEqual(kept.stdout, extended);
    const content = await world.mediagit(['filter', 'smudge'], odd, { input: extended });
    assert.deepEqual(content.stdout, real);
  });

  it('track --min-size keeps small files as ordinary Git content', async () => {
    const sized = world.path('sized');
    await world.git(['init', '-q', sized], world.root);
    const set = await world.mediagit(['track', '--min-size', '1MB'], sized);
    assert.match(set.out, /Files under 1000000 bytes stay ordinary Git content/);
    assert.equal(
      await fs.readFile(path.join(sized, '.gitattributes'), 'utf8'),
      '* filter=mediagit diff=mediagit merge=mediagit -text\n' +
        '.gitattributes !filter !diff !merge text\n',
    );
    // .gitattributes itself is never filtered, however broad the pattern.
    const self = await world.git(['check-attr', 'filter', '.gitattributes', 'x.txt'], sized);
    assert.equal(self.out, '.gitattributes: filter: unspecified\nx.txt: filter: mediagit\n');
    const small = pseudoRandomBytes(999_999, 41);
    const large = pseudoRandomBytes(1_000_000, 42);
    await fs.writeFile(path.join(sized, 'small.bin'), small);
    await fs.writeFile(path.join(sized, 'large.bin'), large);
    await fs.writeFile(path.join(sized, 'notes.txt'), 'plain text\n');
    await world.git(['add', '.'], sized);
    await world.git(['commit', '-q', '-m', 'sized'], sized);
    assert.deepEqual((await world.git(['cat-file', '-p', 'HEAD:small.bin'], sized)).stdout, small);
    assert.equal(
      (await world.git(['cat-file', '-p', 'HEAD:notes.txt'], sized)).out,
      'plain text\n',
    );
    assert.equal(
      (await world.git(['cat-file', '-p', 'HEAD:large.bin'], sized)).out,
      pointerText(large),
    );
    const listed = await world.mediagit(['track', '--list', '--json'], sized);
    assert.equal((JSON.parse(listed.out) as { minSize: number }).minSize, 1_000_000);
    const clone = world.path('sized-clone');
    await world.git(['clone', '-q', sized, clone], world.root);
    assert.deepEqual(await fs.readFile(path.join(clone, 'small.bin')), small);
    assert.deepEqual(await fs.readFile(path.join(clone, 'large.bin')), large);
    await assert.rejects(world.mediagit(['track', '--min-size', 'lots'], sized), /not a size/);
  });

  it('empty files, identical files and linked worktrees check out; identical content is fetched once', async () => {
    const edge = world.path('edge');
    await world.git(['init', '-q', edge], world.root);
    await world.mediagit(['track', '*.bin'], edge);
    const big = pseudoRandomBytes(3_000_000, 61);
    const files = new Map<string, Buffer>([
      ['empty.bin', Buffer.alloc(0)],
      ['a.bin', pseudoRandomBytes(2_000_000, 62)],
      ['dup1.bin', big],
      ['dup2.bin', big],
      ['dup3.bin', big],
    ]);
    for (const [name, data] of files) await fs.writeFile(path.join(edge, name), data);
    await world.git(['add', '.'], edge);
    await world.git(['commit', '-q', '-m', 'edge'], edge);
    assert.equal((await world.git(['cat-file', '-s', 'HEAD:empty.bin'], edge)).out, '0\n');
    // A linked worktree shares the repository's store (and its hooks).
    const tree = world.path('edge-worktree');
    await world.git(['worktree', 'add', '-q', tree], edge);
    for (const [name, data] of files)
      assert.deepEqual(await fs.readFile(path.join(tree, name)), data, name);
    await fs.access(path.join(edge, '.git', 'hooks', 'pre-push'));
    await assert.rejects(
      fs.access(path.join(edge, '.git', 'worktrees', 'edge-worktree', 'mediagit')),
    );
    const clone = world.path('edge-clone');
    const result = await world.git(['clone', '-q', edge, clone], world.root, {
      env: { MEDIAGIT_TRACE: '1' },
    });
    for (const [name, data] of files)
      assert.deepEqual(await fs.readFile(path.join(clone, name)), data, name);
    const summary = /(\d+) smudged, (\d+) delayed, (\d+) fetched/.exec(result.stderr);
    assert.ok(summary, result.stderr);
    assert.deepEqual(
      summary.slice(1).map(Number),
      [5, 4, 2],
      'five files, four to download, two contents',
    );
  });

  it('uninstall removes the filter config and the hook', async () => {
    await world.mediagit(['uninstall'], repo);
    const left = await world.run(
      'git',
      ['config', '--global', '--get-regexp', '^filter\\.mediagit\\.'],
      repo,
    );
    assert.equal(left.code, 1);
    await assert.rejects(fs.access(path.join(repo, '.git/hooks/pre-push')));
  });
});
