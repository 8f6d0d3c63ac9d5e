/**
 * Branch protection with the real CLI: every verb that would delete a
 * protected branch or move it backwards is refused with one line and exit
 * 128, changing nothing; moving it forward still works.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import { test } from 'node:test';
import { TempRepo } from './helpers.ts';

async function refused(repo: TempRepo, args: string[]): Promise<void> {
  const result = await repo.fails(args, 128);
  const lines = result.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `${args.join(' ')}: ${result.stderr}`);
  assert.match(lines[0]!, /branch 'main' is protected/);
}

test('a protected branch refuses deletion and every rewrite, and still moves forward', async () => {
  const repo = await TempRepo.create();
  try {
    await fs.writeFile(repo.path('shot.txt'), 'take 1\n');
    await repo.ok(['add', 'shot.txt']);
    await repo.ok(['commit', '-q', '-m', 'take 1']);
    await fs.writeFile(repo.path('shot.txt'), 'take 2\n');
    await repo.ok(['commit', '-q', '-a', '-m', 'take 2']);
    await repo.ok(['branch', '--protect', 'main']);
    assert.match((await repo.ok(['config', '--list'])).out, /branch\.main\.protect=true/);
    const tip = (await repo.head()).id;

    await refused(repo, ['reset', '--hard', 'HEAD~1']);
    await refused(repo, ['reset', '--soft', 'HEAD~1']);
    await refused(repo, ['commit', '--amend', '-m', 'rewritten']);
    assert.equal((await repo.head()).id, tip);
    assert.equal(await fs.readFile(repo.path('shot.txt'), 'utf8'), 'take 2\n');

    await repo.ok(['switch', '-q', '-c', 'side']);
    await refused(repo, ['branch', '-D', 'main']);
    await refused(repo, ['branch', '-f', 'main', 'HEAD~1']);
    await repo.ok(['switch', '-q', 'main']);
    assert.equal((await repo.head()).id, tip);

    // Forward is fine: a new commit, a fast-forward merge.
    await fs.writeFile(repo.path('shot.txt'), 'take 3\n');
    await repo.ok(['commit', '-q', '-a', '-m', 'take 3']);
    await repo.ok(['switch', '-q', 'side']);
    await repo.ok(['merge', '-q', 'main']);

    // Rebasing main onto a branch that forked earlier would rewrite it.
    await repo.ok(['switch', '-q', '-c', 'fork', 'HEAD~2']);
    await fs.writeFile(repo.path('fork.txt'), 'fork\n');
    await repo.ok(['add', 'fork.txt']);
    await repo.ok(['commit', '-q', '-m', 'fork']);
    await repo.ok(['switch', '-q', 'main']);
    const mainTip = (await repo.head()).id;
    await refused(repo, ['rebase', 'fork']);
    assert.equal((await repo.head()).id, mainTip);
    assert.equal((await repo.head()).branch, 'refs/heads/main');

    await repo.ok(['branch', '--unprotect', 'main']);
    await repo.ok(['reset', '-q', '--hard', 'HEAD~1']);
    assert.equal(await fs.readFile(repo.path('shot.txt'), 'utf8'), 'take 2\n');
  } finally {
    await repo.cleanup();
  }
});
