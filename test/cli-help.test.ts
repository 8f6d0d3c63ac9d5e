/**
 * The top-level help, a bare `mediagit` and an unknown verb's suggestion
 * list the verbs from src/cli/commands/summary.ts instead of loading every
 * verb: the summary must be what the verbs themselves say, and the help the
 * binary prints must be the one the full command tree gives.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createCli } from '../src/cli/context.ts';
import { commandLoaders } from '../src/cli/commands/index.ts';
import { VERB_SUMMARY } from '../src/cli/commands/summary.ts';
import { buildProgram, summarizeVerbs } from '../src/cli/main.ts';
import { runCli, TempRepo } from './helpers.ts';

test('the verb summary is what the verbs say (else run node scripts/verb-summary.ts)', async () => {
  assert.deepEqual(
    await summarizeVerbs(createCli({ ...process.env, NO_COLOR: '1' })),
    VERB_SUMMARY,
  );
  assert.deepEqual(
    VERB_SUMMARY.map((verb) => verb.name),
    Object.keys(commandLoaders),
    'every loadable verb is listed, in order',
  );
});

test('--help, -h, help and a bare mediagit print the full tree’s help; a typo gets suggestions', async () => {
  const repo = await TempRepo.create();
  try {
    const env = { ...repo.env, NO_COLOR: '1' };
    const full = (await buildProgram(createCli(env, repo.dir))).helpInformation();
    for (const args of [['--help'], ['-h'], ['help']]) {
      const result = await runCli(args, { cwd: repo.dir, env });
      assert.equal(result.code, 0, `${args.join(' ')}: ${result.stderr}`);
      assert.equal(result.out, full, args.join(' '));
    }
    const bare = await runCli([], { cwd: repo.dir, env });
    assert.equal(bare.code, 1, 'a bare mediagit exits 1, as a bare git does');
    assert.equal(bare.out, full);
    const typo = await runCli(['stauts'], { cwd: repo.dir, env });
    assert.equal(typo.code, 129);
    assert.match(typo.stderr, /unknown command 'stauts'\n\(Did you mean one of stats, status\?\)/);
    // Names every object has are not verbs.
    const odd = await runCli(['constructor'], { cwd: repo.dir, env });
    assert.equal(odd.code, 129, odd.stderr);
    assert.match(odd.stderr, /unknown command 'constructor'/);
    const log = await runCli(['help', 'log'], { cwd: repo.dir, env });
    assert.equal(log.code, 0, log.stderr);
    assert.match(log.out, /^Usage: mediagit log \[options\] \[revisions\.\.\.\]/);
  } finally {
    await repo.cleanup();
  }
});
