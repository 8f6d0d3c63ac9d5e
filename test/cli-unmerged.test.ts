/**
 * While a cherry-pick or a merge is stopped on a conflict (a path unmerged),
 * the verbs that would record, move or set aside the index refuse exactly as
 * Git does: same exit code, same words (git -> mediagit), nothing written, and
 * the conflict state still there afterwards in both (the unmerged path in
 * `status`, the *_HEAD file, the markers in the file). Each scenario is set up
 * once in a MediaGit repository and a Git twin; the refusals run one after the
 * other on that state (each must leave it as it was), and a last command that
 * Git lets through (`checkout -f`, `commit -a`) ends it the same way in both.
 */
import assert from 'node:assert/strict';
import { hash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { commitAll, Pair, repoMaker, snapshot } from './git-twin.ts';

const newRepo = repoMaker();

/** How much of the two outputs must agree. */
type Compare =
  /** stdout and stderr, line for line. */
  | 'all'
  /** stdout, and stderr's first line (the rest names commands MediaGit does not have). */
  | 'first-line'
  /** stdout and stderr with object IDs masked (Git's are SHA-1, MediaGit's SHA-256). */
  | 'masked-ids';

interface Refusal {
  readonly args: readonly string[];
  readonly code: number;
  readonly compare?: Compare;
}

/** Git's words, as MediaGit says them. */
function asMediagit(text: string): string {
  return text.replace(/\bgit\b/g, 'mediagit');
}

function maskIds(text: string): string {
  return text.replace(/\b[0-9a-f]{40}(?:[0-9a-f]{24})?\b/g, '<id>');
}

type Operation = 'cherry-pick' | 'merge' | 'rebase';

/** The file that says the operation is in progress, on each side. */
const IN_PROGRESS: Record<Operation, { readonly m: string; readonly g: string }> = {
  'cherry-pick': { m: 'CHERRY_PICK_HEAD', g: 'CHERRY_PICK_HEAD' },
  merge: { m: 'MERGE_HEAD', g: 'MERGE_HEAD' },
  // Git keeps REBASE_HEAD; MediaGit its todo list (the step itself is a cherry-pick).
  rebase: { m: 'REBASE_STATE', g: 'REBASE_HEAD' },
};

/**
 * f.txt conflicts between main and other (other also adds h.txt), a stash
 * waits, one file is untracked; then `operation` stops on f.txt: main picks
 * other's commit, main merges other, or main's commit is replayed onto other.
 */
async function stopped(operation: Operation): Promise<Pair> {
  const pair = await Pair.create(newRepo);
  await pair.writeFile('f.txt', 'base\n');
  await pair.writeFile('g.txt', 'keep\n');
  await commitAll(pair, 'base');
  await pair.both(['switch', '-q', '-c', 'other'], 0);
  await pair.writeFile('f.txt', 'theirs\n');
  await commitAll(pair, 'theirs');
  await pair.writeFile('h.txt', 'only on other\n');
  await commitAll(pair, 'h');
  await pair.both(['switch', '-q', 'main'], 0);
  await pair.writeFile('f.txt', 'ours\n');
  await commitAll(pair, 'ours');
  await pair.writeFile('g.txt', 'keep\nstashed\n');
  await pair.both(['stash', '-q'], 0);
  await pair.writeFile('untracked.txt', 'untracked\n');
  if (operation === 'cherry-pick') await pair.both(['cherry-pick', 'other~1'], 1);
  else if (operation === 'merge') await pair.both(['merge', 'other'], 1);
  else await pair.both(['rebase', 'other'], 1);
  return pair;
}

/** Every file of the repository folder but the objects, with its bytes' hash. */
async function repositoryFiles(gitDir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const entry of await fs.readdir(gitDir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    const full = path.join(entry.parentPath, entry.name);
    const rel = path.relative(gitDir, full);
    if (rel.startsWith('objects') || rel.startsWith('tmp')) continue;
    out[rel] = hash('sha256', await fs.readFile(full), 'hex');
  }
  return out;
}

interface ConflictState {
  /** `status --porcelain` of each side. */
  readonly status: { readonly m: string; readonly g: string };
  /** f.txt with its markers, each side. */
  readonly marked: { readonly m: string; readonly g: string };
  /** Every file of .mediagit but the objects, and the working tree: what MediaGit must not write. */
  readonly mediagit: { readonly repository: Record<string, string>; readonly tree: object };
}

/** Asserts the conflict is there in both (status, *_HEAD, markers) and records it. */
async function conflictState(
  pair: Pair,
  operation: Operation,
  label: string,
): Promise<ConflictState> {
  const status = await pair.both(['status', '--porcelain'], 0);
  assert.match(status.m.out, /^UU f\.txt$/m, `${label}: mediagit status`);
  assert.equal(status.m.out, status.g.out, `${label}: status`);
  await fs.access(path.join(pair.m.gitDir, IN_PROGRESS[operation].m));
  await fs.access(path.join(pair.g.dir, '.git', IN_PROGRESS[operation].g));
  const marked = {
    m: await fs.readFile(pair.m.path('f.txt'), 'utf8'),
    g: await fs.readFile(pair.g.path('f.txt'), 'utf8'),
  };
  for (const text of [marked.m, marked.g])
    assert.match(text, /^<<<<<<< HEAD\n(ours|theirs)\n=======\n(ours|theirs)\n>>>>>>> /, label);
  return {
    status: { m: status.m.out, g: status.g.out },
    marked,
    mediagit: {
      repository: await repositoryFiles(pair.m.gitDir),
      tree: await snapshot(pair.m.dir),
    },
  };
}

/**
 * Runs `refusal` in both and compares: exit code, output; then the conflict
 * state must be exactly `stopped`: MediaGit wrote nothing in its repository
 * folder or working tree (so its status is unchanged too: it is checked at
 * the end of the scenario), and Git's status, *_HEAD and markers are as they were.
 */
async function assertRefusedAsGit(
  pair: Pair,
  refusal: Refusal,
  operation: Operation,
  stopped: ConflictState,
): Promise<void> {
  const label = refusal.args.join(' ');
  const m = await pair.m.run(refusal.args);
  const g = pair.g.run(refusal.args);
  const context = `${label}\nmediagit (${m.code}):\n${m.out}${m.stderr}\ngit (${g.code}):\n${g.out}${g.stderr}`;
  assert.equal(g.code, refusal.code, `git's exit code: ${context}`);
  assert.equal(m.code, g.code, `exit codes differ: ${context}`);
  const mask = refusal.compare === 'masked-ids' ? maskIds : (text: string) => text;
  assert.equal(mask(m.out), mask(asMediagit(g.out)), `stdout differs: ${context}`);
  const gitErr = mask(asMediagit(g.stderr));
  if (refusal.compare === 'first-line') {
    assert.equal(m.stderr.split('\n')[0], gitErr.split('\n')[0], `stderr differs: ${context}`);
  } else {
    assert.equal(mask(m.stderr), gitErr, `stderr differs: ${context}`);
  }

  assert.deepEqual(
    await repositoryFiles(pair.m.gitDir),
    stopped.mediagit.repository,
    `${label}: .mediagit changed`,
  );
  assert.deepEqual(await snapshot(pair.m.dir), stopped.mediagit.tree, `${label}: working tree`);
  assert.equal(pair.g.run(['status', '--porcelain']).out, stopped.status.g, `${label}: git status`);
  await fs.access(path.join(pair.g.dir, '.git', IN_PROGRESS[operation].g));
  assert.equal(await fs.readFile(pair.g.path('f.txt'), 'utf8'), stopped.marked.g, label);
}

/** What both a stopped cherry-pick and a stopped merge refuse. */
const REFUSED: readonly Refusal[] = [
  { args: ['stash', 'push'], code: 1 },
  { args: ['stash', 'push', '--include-untracked'], code: 1 },
  { args: ['stash'], code: 1 },
  { args: ['stash', 'apply'], code: 1 },
  { args: ['stash', 'pop'], code: 1 },
  { args: ['commit', '-m', 'x'], code: 128 },
  { args: ['commit', '--amend', '-m', 'x'], code: 128 },
  { args: ['switch', 'other'], code: 128, compare: 'first-line' },
  { args: ['switch', 'main'], code: 128, compare: 'first-line' },
  { args: ['switch', '-c', 'newb'], code: 128, compare: 'first-line' },
  { args: ['switch', '--detach', 'HEAD~1'], code: 128, compare: 'first-line' },
  { args: ['checkout', 'other'], code: 1 },
  { args: ['checkout', 'HEAD~1'], code: 1 },
  { args: ['checkout', '-b', 'newb', 'HEAD'], code: 1 },
  { args: ['rebase', 'other'], code: 1 },
  { args: ['cherry-pick', 'other'], code: 128 },
  { args: ['cherry-pick', '-n', 'other'], code: 128, compare: 'masked-ids' },
  { args: ['revert', 'other'], code: 128 },
  { args: ['merge', 'other'], code: 128 },
  // The index holds no one version of an unmerged path to restore from.
  { args: ['restore', 'f.txt'], code: 1 },
  { args: ['restore', '.'], code: 1 },
  { args: ['checkout', '--', 'f.txt'], code: 1 },
  { args: ['checkout', 'f.txt'], code: 1 },
  // Refused before anything is fetched.
  { args: ['pull', '.', 'other'], code: 128 },
];

test('a cherry-pick stopped on a conflict: every verb refuses as git does, and checkout -f ends it', async () => {
  const pair = await stopped('cherry-pick');
  const state = await conflictState(pair, 'cherry-pick', 'stopped');
  for (const refusal of [
    ...REFUSED,
    { args: ['cherry-pick', '--continue'], code: 128 },
    // Git's merge --abort/--continue are for a merge only.
    { args: ['merge', '--abort'], code: 128 },
    { args: ['merge', '--continue'], code: 128 },
  ]) {
    await assertRefusedAsGit(pair, refusal, 'cherry-pick', state);
  }
  assert.deepEqual(await conflictState(pair, 'cherry-pick', 'after'), state);

  // A forced checkout throws the conflict away and ends the cherry-pick, with Git's warning.
  const forced = await pair.both(['checkout', '-f', 'other'], 0);
  assert.equal(forced.m.stderr, forced.g.stderr);
  assert.match(forced.m.stderr, /warning: cancelling a cherry picking in progress/);
  await fs.access(path.join(pair.m.gitDir, 'CHERRY_PICK_HEAD')).then(
    () => assert.fail('CHERRY_PICK_HEAD is still there'),
    () => undefined,
  );
  const status = await pair.both(['status', '--porcelain'], 0);
  assert.equal(status.m.out, '?? untracked.txt\n');
  assert.equal(status.m.out, status.g.out);
  await pair.assertSameWorkTrees('after checkout -f');
});

test('a merge stopped on a conflict: every verb refuses as git does, and commit -a concludes it', async () => {
  const pair = await stopped('merge');
  const refusals: Refusal[] = [
    ...REFUSED,
    { args: ['merge', '--continue'], code: 128 },
    { args: ['rebase', '--continue'], code: 128, compare: 'first-line' },
  ];
  const state = await conflictState(pair, 'merge', 'stopped');
  for (const refusal of refusals) await assertRefusedAsGit(pair, refusal, 'merge', state);
  assert.deepEqual(await conflictState(pair, 'merge', 'after'), state);

  // `commit -a` stages the file as it is, markers and all, and concludes the merge in both.
  await pair.both(['commit', '-q', '-a', '-m', 'x'], 0);
  await fs.access(path.join(pair.m.gitDir, 'MERGE_HEAD')).then(
    () => assert.fail('MERGE_HEAD is still there'),
    () => undefined,
  );
  const status = await pair.both(['status', '--porcelain'], 0);
  assert.equal(status.m.out, '?? untracked.txt\n');
  assert.equal(status.m.out, status.g.out);
  const parents = await pair.both(['log', '-n', '1', '--format=%p'], 0);
  assert.equal(parents.m.out.trim().split(' ').length, 2, 'a merge commit');
  await pair.assertSameWorkTrees('after commit -a');
});

test('a rebase stopped on a conflict: the same refusals, worded for a rebase; --abort ends it', async () => {
  const pair = await stopped('rebase');
  const state = await conflictState(pair, 'rebase', 'stopped');
  const refusals: Refusal[] = [
    { args: ['stash'], code: 1 },
    { args: ['stash', 'pop'], code: 1 },
    { args: ['commit', '-m', 'x'], code: 128 },
    // A rebase, not the cherry-pick MediaGit makes of its step.
    { args: ['switch', 'main'], code: 128, compare: 'first-line' },
    { args: ['checkout', 'main'], code: 1 },
    { args: ['rebase', '--continue'], code: 1 },
    { args: ['merge', 'main'], code: 128 },
    { args: ['cherry-pick', 'main'], code: 128 },
  ];
  for (const refusal of refusals) await assertRefusedAsGit(pair, refusal, 'rebase', state);
  assert.deepEqual(await conflictState(pair, 'rebase', 'after'), state);

  await pair.both(['rebase', '--abort'], 0);
  const status = await pair.both(['status', '--porcelain'], 0);
  assert.equal(status.m.out, '?? untracked.txt\n');
  assert.equal(status.m.out, status.g.out);
  assert.equal((await pair.m.head()).branch, 'refs/heads/main');
  await pair.assertSameWorkTrees('after rebase --abort');
});

test('unmerged paths: --ours/--theirs write a side, a source other than the index is allowed, restoring the index resolves', async () => {
  for (const resolve of [
    ['restore', '--staged', 'f.txt'],
    ['checkout', 'HEAD', '--', 'f.txt'],
  ]) {
    const pair = await stopped('merge');
    const steps: Refusal[] = [
      { args: ['restore', '--ours', 'f.txt'], code: 0 },
      { args: ['restore', '--theirs', 'f.txt'], code: 0 },
      { args: ['restore', '--theirs', '--ours', 'f.txt'], code: 0 },
      { args: ['checkout', '--theirs', 'f.txt'], code: 0 },
      { args: ['checkout', '--ours', 'f.txt', 'g.txt'], code: 0 },
      { args: ['restore', '--staged', '--ours', 'f.txt'], code: 128 },
      { args: ['restore', '--source=other', 'f.txt'], code: 0 },
      { args: resolve, code: 0 },
      { args: ['restore', 'f.txt'], code: 0 },
      { args: ['commit', '-q', '-m', 'merged'], code: 0 },
    ];
    for (const step of steps) {
      const label = step.args.join(' ');
      const ran = await pair.both(step.args, step.code);
      assert.equal(ran.m.stderr, asMediagit(ran.g.stderr), `${label}: stderr`);
      const status = await pair.both(['status', '--porcelain'], 0);
      assert.equal(status.m.out, status.g.out, `${label}: status`);
      await pair.assertSameWorkTrees(label);
    }
    await fs.access(path.join(pair.m.gitDir, 'MERGE_HEAD')).then(
      () => assert.fail('MERGE_HEAD is still there'),
      () => undefined,
    );
  }
});
