/**
 * Git habits (issue 15, point 6), each checked against real Git run on a
 * twin repository with the same commands and files.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { commitAll, Pair, repoMaker } from './git-twin.ts';
import { Repository } from '../src/repo/repository.ts';
import { readCommit } from '../src/repo/tree-ops.ts';
import { spawn } from 'node:child_process';
import { collect, PROJECT_ROOT, spawnCli, type TempRepo } from './helpers.ts';

const newRepo = repoMaker();

test('odd file names are quoted in status (short and long) as Git quotes them', async () => {
  const pair = await Pair.create(newRepo);
  // Git's default (the twin turns it off for other tests).
  pair.g.run(['config', 'core.quotePath', 'true']);
  const names = [
    'a b.txt',
    'ctl\u0001.txt',
    'héllo wörld.txt',
    'new\nline.txt',
    'q"uote.txt',
    'plain.txt',
  ];
  for (const name of names) await pair.writeFile(name, 'one\n');
  await commitAll(pair, 'odd names');
  for (const name of names) await pair.writeFile(name, 'two\n');
  await pair.writeFile('untracked é.txt', 'new\n');
  const short = await pair.both(['status', '--short'], 0);
  assert.equal(short.m.out, short.g.out);
  const long = await pair.both(['status'], 0);
  const pathLines = (text: string): string[] =>
    text.split('\n').filter((line) => line.startsWith('\t'));
  assert.deepEqual(pathLines(long.m.out), pathLines(long.g.out));
  assert.equal(pathLines(long.m.out).length, names.length + 1);

  // The same names in diff --name-status / --name-only and log --stat,
  // with core.quotePath on (Git's default) and off.
  await commitAll(pair, 'second');
  const statPaths = (text: string): string[] =>
    text
      .split('\n')
      .filter((line) => line.includes(' | '))
      .map((line) => line.slice(0, line.indexOf(' | ')).trim());
  for (const quotePath of ['true', 'false']) {
    pair.g.run(['config', 'core.quotePath', quotePath]);
    await pair.m.ok(['config', 'core.quotePath', quotePath]);
    for (const args of [
      ['diff', '--name-status', 'HEAD~1', 'HEAD'],
      ['diff', '--name-only', 'HEAD~1'],
      ['status', '--short'],
    ]) {
      if (args[0] === 'status') await pair.writeFile('untracked é.txt', 'newer\n');
      const { m, g } = await pair.both(args, 0);
      assert.equal(m.out, g.out, `${args.join(' ')} with core.quotePath=${quotePath}`);
    }
    const stat = await pair.both(['log', '--stat', '-1'], 0);
    assert.deepEqual(statPaths(stat.m.out), statPaths(stat.g.out), `log --stat, ${quotePath}`);
    assert.equal(statPaths(stat.m.out).length, names.length + 1);
  }
  // Off: non-ASCII as it is, control characters still escaped.
  const off = await pair.m.ok(['diff', '--name-only', 'HEAD~1']);
  assert.match(off.out, /^héllo wörld\.txt$/m);
  assert.match(off.out, /^"new\\nline\.txt"$/m);
});

test('ahead/behind: status, status -sb, branch -v/-vv; branch -r/-a list remote-tracking branches', async () => {
  const repo = await newRepo();
  const bare = path.join(repo.root, 'origin.mediagit');
  await repo.ok(['init', '--bare', '-q', bare]);
  await fs.writeFile(repo.path('a.txt'), 'one\n');
  await repo.ok(['add', 'a.txt']);
  await repo.ok(['commit', '-q', '-m', 'one']);
  await repo.ok(['remote', 'add', 'origin', bare]);
  await repo.ok(['push', '-q', '-u', 'origin', 'main']);
  assert.match(
    (await repo.ok(['status'])).out,
    /^On branch main\nYour branch is up to date with 'origin\/main'\.\n/,
  );

  // log --decorate names remote-tracking branches, as Git does.
  assert.match(
    (await repo.ok(['log', '--oneline', '--decorate', '-1'])).out,
    /^[0-9a-f]{7} \(HEAD -> main, origin\/main\) one\n$/,
  );
  await fs.writeFile(repo.path('a.txt'), 'two\n');
  await repo.ok(['commit', '-q', '-a', '-m', 'two']);
  assert.match(
    (await repo.ok(['status'])).out,
    /^On branch main\nYour branch is ahead of 'origin\/main' by 1 commit\.\n {2}\(use "mediagit push" to publish your local commits\)\n/,
  );
  assert.equal((await repo.ok(['status', '-sb'])).out, '## main...origin/main [ahead 1]\n');
  assert.match((await repo.ok(['branch', '-v'])).out, /^\* main [0-9a-f]{7} \[ahead 1\] two\n$/);
  assert.match(
    (await repo.ok(['branch', '-vv'])).out,
    /^\* main [0-9a-f]{7} \[origin\/main: ahead 1\] two\n$/,
  );

  // Someone else pushes two commits; after a fetch the branches have diverged.
  const other = path.join(repo.root, 'other');
  await repo.ok(['clone', '-q', bare, other]);
  const inOther = repo.withEnv({});
  for (const n of ['three', 'four']) {
    await fs.writeFile(path.join(other, 'b.txt'), `${n}\n`);
    const run = (args: string[]) => collect(spawnCli(args, { cwd: other, env: inOther.env }));
    assert.equal((await run(['add', 'b.txt'])).code, 0);
    assert.equal((await run(['commit', '-q', '-m', n])).code, 0);
  }
  assert.equal((await collect(spawnCli(['push', '-q'], { cwd: other, env: inOther.env }))).code, 0);
  await repo.ok(['fetch', '-q']);
  assert.match(
    (await repo.ok(['status'])).out,
    /Your branch and 'origin\/main' have diverged,\nand have 1 and 2 different commits each, respectively\.\n/,
  );
  assert.equal(
    (await repo.ok(['status', '-sb'])).out,
    '## main...origin/main [ahead 1, behind 2]\n',
  );
  assert.equal((await repo.ok(['branch', '-r'])).out, '  origin/main\n');
  assert.equal((await repo.ok(['branch', '-a'])).out, '* main\n  remotes/origin/main\n');
  // Reset to the remote's tip: behind only, then level.
  await repo.ok(['reset', '-q', '--hard', 'HEAD~1']);
  assert.match(
    (await repo.ok(['status'])).out,
    /Your branch is behind 'origin\/main' by 2 commits, and can be fast-forwarded\./,
  );
});

test('add takes glob pathspecs as Git does (`*` crosses folders), removals included', async () => {
  const pair = await Pair.create(newRepo);
  for (const name of [
    'a.png',
    'b.txt',
    'stills/c.png',
    'stills/deep/d.png',
    'stills/e.txt',
    'other/f.png',
  ]) {
    await pair.writeFile(name, `${name}\n`);
  }
  await pair.both(['add', 'stills/*.png'], 0);
  const porcelain = async (): Promise<string> => {
    const { m, g } = await pair.both(['status', '--porcelain'], 0);
    assert.equal(m.out, g.out);
    return m.out;
  };
  assert.match(await porcelain(), /^A {2}stills\/c\.png\nA {2}stills\/deep\/d\.png\n/);
  await pair.both(['add', '*.png'], 0);
  assert.match(await porcelain(), /A {2}other\/f\.png/);
  await pair.both(['commit', '-q', '-m', 'pngs'], 0);
  await pair.remove('stills/c.png');
  await pair.writeFile('a.png', 'changed\n');
  await pair.both(['add', '*.png'], 0);
  assert.equal(await porcelain(), 'M  a.png\nD  stills/c.png\n?? b.txt\n?? stills/e.txt\n');
  await pair.both(['add', '*.jpg'], 128);
});

test('ls-files lists the index, -m/-d/-o the changed, deleted and untracked files, from a subfolder too, as Git does', async () => {
  const pair = await Pair.create(newRepo);
  pair.g.run(['config', 'core.quotePath', 'true']);
  for (const name of ['a.txt', 'dir/b.txt', 'dir/sub/c.txt', 'héllo.txt', 'z.bin']) {
    await pair.writeFile(name, `${name}\n`);
  }
  await commitAll(pair, 'files');
  await pair.writeFile('dir/b.txt', 'changed\n');
  await pair.remove('z.bin');
  await pair.writeFile('dir/new.txt', 'new\n');
  for (const args of [
    ['ls-files'],
    ['ls-files', '-m'],
    ['ls-files', '-d'],
    ['ls-files', '-o'],
    ['ls-files', 'dir'],
    ['ls-files', '*.txt'],
  ]) {
    const { m, g } = await pair.both(args, 0);
    assert.equal(m.out, g.out, args.join(' '));
  }
  const fromSub = await pair.m.run(['-C', 'dir', 'ls-files']);
  assert.equal(fromSub.out, 'b.txt\nsub/c.txt\n');
  const zero = await pair.m.run(['ls-files', '-z', 'héllo.txt']);
  assert.equal(zero.out, 'héllo.txt\0');
  const staged = await pair.m.run(['ls-files', '-s', 'a.txt']);
  assert.match(staged.out, /^100644 [0-9a-f]{64} 0\ta\.txt\n$/);
});

test('commit without -m opens the editor (GIT_EDITOR, then core.editor); comments go; an empty message aborts; --amend starts from the old message', async () => {
  const base = await newRepo();
  const noEditors = { MEDIAGIT_EDITOR: '', GIT_EDITOR: '', VISUAL: '', EDITOR: '', TERM: 'dumb' };
  const repo = base.withEnv(noEditors);
  await fs.writeFile(repo.path('a.txt'), 'one\n');
  await repo.ok(['add', 'a.txt']);
  // No editor anywhere and no -m: Git's refusal, nothing committed.
  const refused = await repo.fails(['commit'], 128);
  assert.match(refused.stderr, /Aborting commit due to empty commit message/);

  const writes = (text: string): string => `printf '${text}' >`;
  const withEditor = repo.withEnv({
    GIT_EDITOR: writes('subject from the editor\\n\\n# a comment\\nbody\\n'),
  });
  await withEditor.ok(['commit', '-q']);
  assert.equal(await headMessage(repo), 'subject from the editor\n\nbody\n');

  // core.editor in the repository's config, used when no variable names one.
  await repo.ok(['config', 'core.editor', writes('from core.editor\\n')]);
  await fs.writeFile(repo.path('a.txt'), 'two\n');
  await repo.ok(['commit', '-q', '-a']);
  assert.equal(await headMessage(repo), 'from core.editor\n');

  // Only comments saved: aborted, HEAD unchanged.
  const head = (await repo.head()).id;
  await fs.writeFile(repo.path('a.txt'), 'three\n');
  const aborted = await repo
    .withEnv({ GIT_EDITOR: writes('# nothing but a comment\\n') })
    .fails(['commit', '-a'], 128);
  assert.match(aborted.stderr, /Aborting commit due to empty commit message/);
  assert.equal((await repo.head()).id, head);

  // --amend: the editor starts from the previous message; ':' keeps it.
  // (Variables before core.editor, as in Git; VISUAL and EDITOR after it.)
  await repo.withEnv({ GIT_EDITOR: ':' }).ok(['commit', '-q', '-a', '--amend']);
  assert.equal(await headMessage(repo), 'from core.editor\n');
  assert.notEqual((await repo.head()).id, head);
});

async function headMessage(repo: TempRepo): Promise<string> {
  const opened = await Repository.discover(repo.dir);
  return (await readCommit(opened.objects, (await repo.head()).id!)).message;
}

test('clean: refuses without -n/-f; -n, -f, -d, -x, -X and pathspecs as in Git', async () => {
  const pair = await Pair.create(newRepo);
  await pair.writeFile('a.txt', 'tracked\n');
  await pair.writeFile('d/b.txt', 'tracked\n');
  await pair.writeFile('.gitignore', '*.log\n');
  await pair.writeFile('.mediagitignore', '*.log\n');
  await commitAll(pair, 'base');
  const untracked = async (): Promise<void> => {
    for (const name of ['u.txt', 'd/u.txt', 'newdir/x/n.txt', 'i.log', 'd/j.log']) {
      await pair.writeFile(name, 'junk\n');
    }
  };
  await untracked();
  await pair.both(['clean'], 128);
  for (const args of [
    ['clean', '-n'],
    ['clean', '-n', '-d'],
    ['clean', '-n', '-x'],
    ['clean', '-n', '-X'],
    ['clean', '-n', '-d', 'd'],
  ]) {
    const { m, g } = await pair.both(args, 0);
    // Each side's own ignore file is its own business.
    const mine = (text: string): string => text.replace(/\.(git|mediagit)ignore/g, 'IGNORE');
    assert.equal(mine(m.out), mine(g.out), args.join(' '));
  }
  const { m, g } = await pair.both(['clean', '-f', '-d', '-x'], 0);
  assert.equal(
    m.out.replace(/\.(git|mediagit)ignore/g, 'IGNORE'),
    g.out.replace(/\.(git|mediagit)ignore/g, 'IGNORE'),
  );
  await pair.assertSameWorkTrees('after clean -f -d -x');
});

test('log --format/--pretty, --author, --grep, --since/--until filter and print as Git does', async () => {
  const pair = await Pair.create(newRepo);
  for (const [i, message] of ['one', 'two\n\nwith a body\nof two lines', 'three'].entries()) {
    await pair.writeFile('f.txt', `${i}\n`);
    await pair.both(['add', 'f.txt'], 0);
    await pair.both(['commit', '-q', '-m', message], 0);
  }
  for (const args of [
    ['log', '--format=%s|%an|%ae'],
    ['log', '--pretty=format:%s%n%b'],
    ['log', '--pretty=tformat:[%s]'],
    ['log', '--format=%B'],
    ['log', '--author=Test Author', '--format=%s'],
    ['log', '--author=nobody', '--format=%s'],
    ['log', '--grep=t', '--format=%s'],
    ['log', '--since=2000-01-01', '--format=%s'],
    ['log', '--until=2000-01-01', '--format=%s'],
    ['log', '--after=yesterday', '-n', '2', '--format=%s %%'],
  ]) {
    const { m, g } = await pair.both(args, 0);
    assert.equal(m.out, g.out, args.join(' '));
  }
  const bad = await pair.m.run(['log', '--since=not a date']);
  assert.equal(bad.code, 128);
  assert.match(bad.stderr, /^fatal: cannot read the date 'not a date'/);
});

test('completion: the bash script completes verbs, options and branches; zsh and fish scripts cover every verb', async () => {
  const repo = await newRepo();
  await fs.writeFile(repo.path('a.txt'), 'a\n');
  await repo.ok(['add', 'a.txt']);
  await repo.ok(['commit', '-q', '-m', 'a']);
  await repo.ok(['branch', 'feature']);
  const script = path.join(repo.root, 'completion.bash');
  await fs.writeFile(script, (await repo.ok(['completion', 'bash'])).out);
  const complete = async (...words: string[]): Promise<string> => {
    const line = `source '${script}'; COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _mediagit; echo "\${COMPREPLY[*]}"`;
    const env = { ...repo.env, PATH: `${path.join(PROJECT_ROOT, 'bin')}:${process.env['PATH']}` };
    const result = await collect(spawn('bash', ['-c', line], { cwd: repo.dir, env }));
    assert.equal(result.code, 0, result.stderr);
    return result.out.trim();
  };
  assert.equal(await complete('mediagit', 'sta'), 'stash stats status');
  assert.equal(await complete('mediagit', 'log', '--onel'), '--oneline');
  assert.equal(await complete('mediagit', 'switch', 'fea'), 'feature');
  const zsh = (await repo.ok(['completion', 'zsh'])).out;
  assert.match(zsh, /^autoload -U \+X bashcompinit && bashcompinit\n/);
  const fish = (await repo.ok(['completion', 'fish'])).out;
  for (const verb of ['status', 'clone', 'ls-files', 'clean']) {
    assert.match(fish, new RegExp(`-n __fish_use_subcommand -a ${verb} `), verb);
  }
  assert.match(fish, /__fish_seen_subcommand_from log' -l oneline/);
  await repo.fails(['completion', 'tcsh'], 129);
});

test('tag --sort=refname, version:refname and reversed, as Git sorts them', async () => {
  const pair = await Pair.create(newRepo);
  await pair.writeFile('a.txt', 'a\n');
  await commitAll(pair, 'a');
  for (const name of ['v1.10', 'v1.2', 'v1.9', 'v2.0', 'v1.2.1']) await pair.both(['tag', name], 0);
  for (const key of ['refname', '-refname', 'version:refname', '-v:refname']) {
    const { m, g } = await pair.both(['tag', '-l', `--sort=${key}`], 0);
    assert.equal(m.out, g.out, key);
  }
  assert.equal((await pair.m.run(['tag', '--sort=creatordate'])).code, 129);
});

test('stash show: the diffstat by default, -p the patch, --name-status, as Git prints them', async () => {
  const pair = await Pair.create(newRepo);
  await pair.writeFile('a.txt', 'one\ntwo\nthree\n');
  await pair.writeFile('b.txt', 'bee\n');
  await commitAll(pair, 'base');
  await pair.writeFile('a.txt', 'one\n2\nthree\nfour\n');
  await pair.remove('b.txt');
  await pair.both(['stash', '-q'], 0);
  for (const args of [
    ['stash', 'show'],
    ['stash', 'show', '-p'],
    ['stash', 'show', '--name-status'],
    ['stash', 'show', '--stat', 'stash@{0}'],
  ]) {
    const { m, g } = await pair.both(args, 0);
    // Object IDs differ between the two (SHA-256 here, SHA-1 there).
    const ids = (text: string): string =>
      text.replace(/^index [0-9a-f]+\.\.[0-9a-f]+/gm, 'index X..Y');
    assert.equal(ids(m.out), ids(g.out), args.join(' '));
  }
});

test('during a conflict, show :1:path, :2:path and :3:path are the base, ours and theirs, as in Git', async () => {
  const pair = await Pair.create(newRepo);
  await pair.writeFile('a.txt', 'base\n');
  await pair.writeFile('gone.txt', 'base\n');
  await commitAll(pair, 'base');
  await pair.both(['branch', 'feature'], 0);
  await pair.writeFile('a.txt', 'ours\n');
  await pair.remove('gone.txt');
  await commitAll(pair, 'ours');
  await pair.both(['switch', '-q', 'feature'], 0);
  await pair.writeFile('a.txt', 'theirs\n');
  await pair.writeFile('gone.txt', 'theirs\n');
  await commitAll(pair, 'theirs');
  await pair.both(['switch', '-q', 'main'], 0);
  await pair.both(['merge', 'feature'], 1);
  for (const stage of ['1', '2', '3']) {
    const { m, g } = await pair.both(['show', `:${stage}:a.txt`], 0);
    assert.equal(m.out, g.out, `:${stage}:a.txt`);
  }
  assert.equal((await pair.m.ok(['show', ':3:gone.txt'])).out, 'theirs\n');
  const missing = await pair.both(['show', ':2:gone.txt'], 128);
  assert.match(missing.m.stderr, /path 'gone\.txt' is in the index, but not at stage 2/);
});

test('log, diff and show go through the pager on a terminal (PAGER, core.pager, --no-pager, cat), as Git does', async () => {
  const repo = await newRepo();
  await fs.writeFile(repo.path('a.txt'), 'one\n');
  await repo.ok(['add', 'a.txt']);
  await repo.ok(['commit', '-q', '-m', 'first']);
  /** Runs the CLI under a pseudo-terminal; returns what the terminal showed. */
  const onTerminal = async (args: string[], env: NodeJS.ProcessEnv = {}): Promise<string> => {
    const command = [process.execPath, path.join(PROJECT_ROOT, 'bin', 'mediagit.js'), ...args]
      .map((a) => `'${a}'`)
      .join(' ');
    const full = { ...repo.env, TERM: 'xterm', NO_COLOR: '1', PAGER: '', ...env };
    const result = await collect(
      spawn('script', ['-qec', command, '/dev/null'], { cwd: repo.dir, env: full }),
    );
    assert.equal(result.code, 0, result.out + result.stderr);
    return result.out.replace(/\r/g, '');
  };
  const marked = { PAGER: "sed 's/^/P: /'" };
  assert.match(await onTerminal(['log', '--oneline'], marked), /^P: [0-9a-f]{7} first\n$/);
  assert.match(await onTerminal(['show', '--stat', 'HEAD'], marked), /^P: commit /);
  await fs.writeFile(repo.path('a.txt'), 'two\n');
  assert.match(await onTerminal(['diff'], marked), /^P: diff --git a\/a\.txt b\/a\.txt\n/);
  assert.match(
    await onTerminal(['--no-pager', 'log', '--oneline'], marked),
    /^[0-9a-f]{7} first\n$/,
  );
  assert.match(await onTerminal(['log', '--oneline'], { PAGER: 'cat' }), /^[0-9a-f]{7} first\n$/);
  await repo.ok(['config', 'core.pager', "sed 's/^/C: /'"]);
  assert.match(await onTerminal(['log', '--oneline']), /^C: [0-9a-f]{7} first\n$/);
  // Not paged: JSON, and a file's bytes.
  assert.match(await onTerminal(['log', '--json'], marked), /^\[/);
  assert.equal(await onTerminal(['show', 'HEAD:a.txt'], marked), 'one\n');
});

test('diff during a conflict shows Git combined diff (diff --cc), Unmerged path and U lines, as Git does', async () => {
  const pair = await Pair.create(newRepo);
  const lines = (...changes: [number, string][]): string => {
    const out = [
      'intro',
      'one',
      'two',
      'three',
      'four',
      'five',
      'six',
      'seven',
      'eight',
      'nine',
      'ten',
      'eleven',
      'twelve',
    ];
    for (const [at, text] of changes) out[at] = text;
    return out.map((l) => `${l}\n`).join('');
  };
  await pair.writeFile('f.txt', lines());
  await pair.writeFile('gone.txt', 'a\nb\n');
  await pair.writeFile('plain.txt', 'x\n');
  await pair.writeFile('b.bin', '\0\u0001base');
  await commitAll(pair, 'base');
  await pair.both(['switch', '-q', '-c', 'side'], 0);
  await pair.writeFile('f.txt', lines([2, 'TWO side'], [11, 'ELEVEN side']));
  await pair.remove('gone.txt');
  await pair.writeFile('b.bin', '\0\u0002side');
  await commitAll(pair, 'side');
  await pair.both(['switch', '-q', 'main'], 0);
  await pair.writeFile('f.txt', lines([2, 'TWO main'], [5, 'FIVE main']));
  await pair.writeFile('gone.txt', 'a\nB\n');
  await pair.writeFile('b.bin', '\0\u0003main');
  await commitAll(pair, 'main');
  await pair.both(['merge', 'side'], 1);
  await pair.writeFile('plain.txt', 'x changed\n');
  const masked = (text: string): string =>
    text.replace(/^index [0-9a-f]{7}(,[0-9a-f]{7})?\.\.[0-9a-f]{7}/gm, 'index …');
  const shown = await pair.both(['diff'], 0);
  assert.equal(masked(shown.m.out), masked(shown.g.out));
  assert.match(shown.m.out, /^diff --cc f\.txt\n/m);
  assert.match(shown.m.out, /^@@@ -\d+,\d+ -\d+,\d+ \+\d+,\d+ @@@/m);
  assert.match(shown.m.out, /^Binary files differ$/m);
  assert.match(shown.m.out, /^\* Unmerged path gone\.txt$/m);
  for (const args of [
    ['diff', '--name-status'],
    ['diff', '--name-only'],
    ['diff', 'f.txt'],
  ]) {
    const { m, g } = await pair.both(args, 0);
    assert.equal(masked(m.out), masked(g.out), args.join(' '));
  }
  // Resolved in the file but not yet added: still a combined diff, now against the resolution.
  await pair.writeFile('f.txt', lines([2, 'TWO both'], [5, 'FIVE main'], [11, 'ELEVEN side']));
  const resolved = await pair.both(['diff', 'f.txt'], 0);
  assert.equal(masked(resolved.m.out), masked(resolved.g.out));
  assert.match(resolved.m.out, /^- TWO main$/m);
  assert.match(resolved.m.out, /^\+\+TWO both$/m);
});

/** A twin pair with two commits: a file, then a change to it and a new file. */
async function twoCommits(secondMessage: string): Promise<Pair> {
  const pair = await Pair.create(newRepo);
  await pair.writeFile('a.txt', 'one\n');
  await commitAll(pair, 'first');
  await pair.writeFile('a.txt', 'one\ntwo\n');
  await pair.writeFile('b.txt', 'new\n');
  await commitAll(pair, secondMessage);
  return pair;
}

/** Asserts each command prints what Git prints, commit and object IDs aside. */
async function sameOutputs(pair: Pair, commands: readonly string[][]): Promise<void> {
  const masked = (text: string): string => text.replace(/\b[0-9a-f]{7,64}\b/g, 'ID');
  for (const args of commands) {
    const { m, g } = await pair.both(args, 0);
    assert.equal(masked(m.out), masked(g.out), args.join(' '));
  }
}

test('show --format/--pretty, --oneline and -s lay out the header and the changes as Git does', async () => {
  const pair = await twoCommits('second\n\nwith a body');
  await sameOutputs(pair, [
    ['show', '--format=%s'],
    ['show', '--pretty=format:%s by %an'],
    ['show', '--oneline'],
    ['show', '-s', '--format=%h %s'],
    ['show', '-s', '--oneline'],
    ['show', '--stat', '--format=%s'],
    ['show', '--format=', '--stat'],
    ['show', '--name-status', '--pretty=tformat:%B'],
    ['show', '-s', '--format=format:%s'],
  ]);
});

test('log --format with --stat, --name-only and -p lays out the changes under each header as Git does', async () => {
  const pair = await twoCommits('second');
  await sameOutputs(pair, [
    ['log', '--format=%s', '--stat'],
    ['log', '--format=', '--stat'],
    ['log', '--format=format:%s', '--stat'],
    ['log', '--pretty=tformat:%an %s', '--name-only'],
    ['log', '--format=%s', '--name-status'],
    ['log', '--format=%s', '-p'],
  ]);
});
