/**
 * `tag -v` (an annotated tag's whole chain checked: tag object, commit,
 * trees, files, manifests, chunks) and `remote show` / `remote prune`, each
 * checked against real Git on twin repositories where Git has the same idea.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { readManifest } from '../src/odb/file-read.ts';
import { Repository } from '../src/repo/repository.ts';
import { flattenCommit } from '../src/repo/tree-ops.ts';
import { pseudoRandomBytes } from './bytes.ts';
import { commitAll, Pair, repoMaker } from './git-twin.ts';

const newRepo = repoMaker();

/** Flips one byte of a stored object file; returns a function that puts it back. */
async function damage(file: string, offset: number): Promise<() => Promise<void>> {
  const original = await fs.readFile(file);
  const damaged = Buffer.from(original);
  damaged[offset] = damaged[offset]! ^ 0xff;
  await fs.chmod(file, 0o644);
  await fs.writeFile(file, damaged);
  return () => fs.writeFile(file, original);
}

test('tag -v: an annotated tag and its snapshot (commit, trees, files, chunks) are verified; lightweight, unknown and damaged tags fail as in Git; --json', async () => {
  const pair = await Pair.create(newRepo);
  await pair.m.ok(['config', 'core.chunkThreshold', '65536']);
  await pair.writeFile('notes.txt', 'release notes\n');
  // 5 MB: at least two chunks whatever the cut points (a chunk is at most 4 MiB).
  const big = pseudoRandomBytes(5_000_000, 7);
  for (const file of [pair.m.path('media/big.bin'), pair.g.path('media/big.bin')]) {
    await fs.mkdir(path.dirname(file), { recursive: true });
    await fs.writeFile(file, big);
  }
  await commitAll(pair, 'first release');
  await pair.both(['tag', '-a', 'v1', '-m', 'release one'], 0);
  await pair.both(['tag', 'v2'], 0);

  // The tag object as `git cat-file tag` prints it (Git then fails on the
  // missing signature, exit 1; MediaGit has none to check).
  const mask = (text: string): string =>
    text.replace(/^object [0-9a-f]+$/m, 'object <id>').replace(/ \d+ [+-]\d{4}$/m, ' <time>');
  const verified = await pair.m.ok(['tag', '-v', 'v1']);
  const git = pair.g.run(['tag', '-v', 'v1']);
  assert.equal(mask(verified.out), mask(git.out));
  assert.match(verified.out, /^object [0-9a-f]{64}\ntype commit\ntag v1\ntagger Test Author/);
  assert.match(
    verified.stderr,
    /^tag v1: verified \(6 objects, ([2-9]|\d\d+) chunks, 4\.7\d MiB\)\n$/,
  );

  // Lightweight and unknown tags: Git's messages and exit code, and Git goes
  // on to the next name.
  for (const args of [
    ['tag', '-v', 'v2'],
    ['tag', '-v', 'nope'],
    ['tag', '-v', 'v2', 'nope'],
  ]) {
    const { m, g } = await pair.both(args, 1);
    assert.equal(m.stderr, g.stderr, args.join(' '));
    assert.equal(m.out, '');
  }
  const json = JSON.parse((await pair.m.ok(['tag', '-v', '--json', 'v1'])).out) as {
    name: string;
    id: string;
    verified: boolean;
    type: string;
    chunks: number;
    problems: string[];
  }[];
  assert.equal(json.length, 1);
  assert.equal(json[0]!.verified, true);
  assert.equal(json[0]!.type, 'commit');
  assert.ok(json[0]!.chunks >= 2);
  assert.deepEqual(json[0]!.problems, []);

  // Damage: a chunk file, then a missing small file; each named, exit 1.
  const repo = await Repository.discover(pair.m.dir);
  const head = (await pair.m.head()).id!;
  const files = await flattenCommit(repo.objects, head);
  const manifest = await readManifest(repo.objects, files.get('media/big.bin')!.id);
  const chunk = manifest.chunks[1]!.id;
  const restoreChunk = await damage(repo.objects.pathOf(chunk), 5000);
  const bad = await pair.m.fails(['tag', '-v', 'v1'], 1);
  assert.match(bad.out, /^object [0-9a-f]{64}\ntype commit\n/);
  assert.match(bad.stderr, new RegExp(`^error: v1: object ${chunk} is corrupt: `));
  assert.doesNotMatch(bad.stderr, /verified/);
  const badJson = JSON.parse((await pair.m.fails(['tag', '-v', '--json', 'v1'], 1)).out) as {
    verified: boolean;
    problems: string[];
  }[];
  assert.equal(badJson[0]!.verified, false);
  assert.ok(badJson[0]!.problems.some((p) => p.includes(chunk)));
  await restoreChunk();

  const notes = files.get('notes.txt')!.id;
  const notesFile = repo.objects.pathOf(notes);
  const kept = path.join(pair.m.root, 'notes-object');
  await fs.rename(notesFile, kept);
  const missing = await pair.m.fails(['tag', '-v', 'v1'], 1);
  assert.match(missing.stderr, new RegExp(`object ${notes} is missing`));
  await fs.rename(kept, notesFile);

  // The tag object itself: nothing to print, the tag named.
  const tagId = json[0]!.id;
  const restoreTag = await damage(repo.objects.pathOf(tagId), 20);
  const badTag = await pair.m.fails(['tag', '-v', 'v1'], 1);
  assert.equal(badTag.out, '');
  assert.match(badTag.stderr, new RegExp(`^error: v1: object ${tagId} is corrupt`));
  await restoreTag();
  await pair.m.ok(['tag', '-v', 'v1']);
});

test('remote show (tracked, new, stale; pull and push states), -n, prune [-n] and an unknown remote, as Git prints them; --json', async () => {
  const pair = await Pair.create(newRepo);
  const gitRemote = path.join(pair.m.root, 'origin.git');
  const mediaRemote = path.join(pair.m.root, 'origin.mediagit');
  pair.g.run(['init', '-q', '--bare', '-b', 'main', gitRemote]);
  await pair.m.ok(['init', '--bare', '-q', mediaRemote]);
  pair.g.run(['remote', 'add', 'origin', gitRemote]);
  await pair.m.ok(['remote', 'add', 'origin', mediaRemote]);
  /** Output with each side's remote URL masked and Git's verbs in mediagit's words. */
  const same = async (args: string[], code = 0): Promise<string> => {
    const { m, g } = await pair.both(args, code);
    const masked = m.out.replaceAll(mediaRemote, '<url>');
    const gitMasked = g.out.replaceAll(gitRemote, '<url>').replaceAll("'git ", "'mediagit ");
    assert.equal(masked, gitMasked, args.join(' '));
    return masked;
  };

  await pair.writeFile('a.txt', 'one\n');
  await commitAll(pair, 'one');
  await pair.both(['push', '-q', '-u', 'origin', 'main'], 0);
  await pair.both(['branch', 'feat'], 0);
  await pair.both(['push', '-q', 'origin', 'feat'], 0);
  assert.equal(
    await same(['remote', 'show', 'origin']),
    [
      '* remote origin',
      '  Fetch URL: <url>',
      '  Push  URL: <url>',
      '  HEAD branch: main',
      '  Remote branches:',
      '    feat tracked',
      '    main tracked',
      "  Local branch configured for 'mediagit pull':",
      '    main merges with remote main',
      "  Local refs configured for 'mediagit push':",
      '    feat pushes to feat (up to date)',
      '    main pushes to main (up to date)',
      '',
    ].join('\n'),
  );

  // Someone else adds a branch, deletes feat and moves main.
  const others = { m: path.join(pair.m.root, 'm-other'), g: path.join(pair.m.root, 'g-other') };
  assert.equal(pair.g.run(['clone', '-q', gitRemote, others.g]).code, 0);
  await pair.m.ok(['clone', '-q', mediaRemote, others.m]);
  /** Runs `args` in both other clones; each must succeed. */
  const both = async (args: string[]): Promise<void> => {
    const m = await pair.m.run(['-C', others.m, ...args]);
    const g = pair.g.run(['-C', others.g, ...args]);
    assert.equal(m.code, 0, `mediagit ${args.join(' ')}: ${m.stderr}`);
    assert.equal(g.code, 0, `git ${args.join(' ')}: ${g.stderr}`);
  };
  const write = async (name: string, text: string): Promise<void> => {
    await fs.writeFile(path.join(others.m, name), text);
    await fs.writeFile(path.join(others.g, name), text);
  };
  await both(['switch', '-q', '-c', 'newb']);
  await write('n.txt', 'n\n');
  await both(['add', 'n.txt']);
  await both(['commit', '-q', '-m', 'n']);
  await both(['push', '-q', 'origin', 'newb']);
  await both(['push', '-q', 'origin', '--delete', 'feat']);
  await both(['switch', '-q', 'main']);
  await write('b.txt', 'b\n');
  await both(['add', 'b.txt']);
  await both(['commit', '-q', '-m', 'two']);
  await both(['push', '-q', 'origin', 'main']);

  // Here: side is pushed then moved on (fast-forwardable); main gains a
  // commit while the remote's main has one this side has not fetched.
  await pair.both(['branch', 'side'], 0);
  await pair.both(['push', '-q', '-u', 'origin', 'side'], 0);
  await pair.writeFile('c.txt', 'c\n');
  await commitAll(pair, 'three');
  await pair.both(['switch', '-q', 'side'], 0);
  await pair.writeFile('s.txt', 's\n');
  await commitAll(pair, 's');
  await pair.both(['switch', '-q', 'main'], 0);
  assert.equal(
    await same(['remote', 'show', 'origin']),
    [
      '* remote origin',
      '  Fetch URL: <url>',
      '  Push  URL: <url>',
      '  HEAD branch: main',
      '  Remote branches:',
      '    main                     tracked',
      '    newb                     new (next fetch will store in remotes/origin)',
      "    refs/remotes/origin/feat stale (use 'mediagit remote prune' to remove)",
      '    side                     tracked',
      "  Local branches configured for 'mediagit pull':",
      '    main merges with remote main',
      '    side merges with remote side',
      "  Local refs configured for 'mediagit push':",
      '    main pushes to main (local out of date)',
      '    side pushes to side (fast-forwardable)',
      '',
    ].join('\n'),
  );
  const notQueried = await same(['remote', 'show', '-n', 'origin']);
  assert.match(
    notQueried,
    /HEAD branch: \(not queried\)\n {2}Remote branches: \(status not queried\)\n {4}feat\n {4}main\n {4}side\n/,
  );
  assert.match(notQueried, /\(matching\) pushes to \(matching\)\n$/);

  const shown = JSON.parse((await pair.m.ok(['remote', 'show', 'origin', '--json'])).out) as {
    name: string;
    head: string;
    branches: { name: string; state: string }[];
    push: { branch: string; status: string }[];
  }[];
  assert.equal(shown[0]!.head, 'main');
  assert.deepEqual(
    shown[0]!.branches.map((b) => `${b.name} ${b.state}`),
    ['main tracked', 'newb new', 'refs/remotes/origin/feat stale', 'side tracked'],
  );
  assert.deepEqual(
    shown[0]!.push.map((p) => `${p.branch} ${p.status}`),
    ['main local out of date', 'side fast-forwardable'],
  );

  // prune: -n reports, then it deletes; only the stale ref goes.
  assert.equal(
    await same(['remote', 'prune', '-n', 'origin']),
    'Pruning origin\nURL: <url>\n * [would prune] origin/feat\n',
  );
  await fs.access(path.join(pair.m.gitDir, 'refs', 'remotes', 'origin', 'feat'));
  assert.equal(
    await same(['remote', 'prune', 'origin']),
    'Pruning origin\nURL: <url>\n * [pruned] origin/feat\n',
  );
  assert.equal((await pair.m.ok(['branch', '-r'])).out, '  origin/main\n  origin/side\n');
  const pruned = JSON.parse((await pair.m.ok(['remote', 'prune', '--json', 'origin'])).out) as {
    pruned: unknown[];
  }[];
  assert.deepEqual(pruned[0]!.pruned, []);

  // After a fetch: newb tracked, and a local newb is up to date with it.
  await pair.both(['fetch', '-q', 'origin'], 0);
  await pair.both(['switch', '-q', 'newb'], 0);
  await pair.both(['switch', '-q', 'main'], 0);
  assert.match(
    await same(['remote', 'show', 'origin']),
    / {4}newb tracked\n[^]*newb pushes to newb \(up to date\)\n/,
  );

  // An unknown remote: Git's exit code and message (a name that is no
  // remote is taken as a URL, and there is nothing there); -n shows it.
  const { m, g } = await pair.both(['remote', 'show', 'nope'], 128);
  assert.match(g.stderr, /^fatal: 'nope' does not appear to be a git repository\n/);
  assert.match(m.stderr, /^fatal: 'nope' does not appear to be a mediagit repository/);
  await same(['remote', 'show', '-n', 'nope']);
  await pair.both(['remote', 'prune', 'nope'], 128);
});
