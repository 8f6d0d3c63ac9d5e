import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { mergeText } from './text-merge.ts';

/** Git's own answer: `git merge-file -p` with the same labels. */
async function gitMergeFile(
  base: string,
  ours: string,
  theirs: string,
): Promise<{ text: string; conflicts: number }> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'mediagit-merge-file-'));
  try {
    await fs.writeFile(path.join(dir, 'base'), base);
    await fs.writeFile(path.join(dir, 'ours'), ours);
    await fs.writeFile(path.join(dir, 'theirs'), theirs);
    const result = spawnSync(
      'git',
      ['merge-file', '-p', '-L', 'HEAD', '-L', 'base', '-L', 'feature', 'ours', 'base', 'theirs'],
      { cwd: dir, encoding: 'utf8' },
    );
    assert.ok(result.status !== null && result.status >= 0, String(result.stderr));
    return { text: result.stdout, conflicts: result.status! };
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

const labels = { ours: 'HEAD', theirs: 'feature' };

const cases: [string, string, string, string][] = [
  ['one side changes', 'a\nb\nc\n', 'a\nB\nc\n', 'a\nb\nc\n'],
  ['both change different lines', 'a\nb\nc\nd\ne\n', 'A\nb\nc\nd\ne\n', 'a\nb\nc\nd\nE\n'],
  ['both change the same way', 'a\nb\nc\n', 'a\nX\nc\n', 'a\nX\nc\n'],
  ['conflict on one line', 'a\nb\nc\n', 'a\nours\nc\n', 'a\ntheirs\nc\n'],
  ['adjacent lines conflict', 'a\nb\nc\nd\n', 'a\nB\nc\nd\n', 'a\nb\nC\nd\n'],
  ['common lines trimmed', 'a\nb\nc\n', 'a\nx\ny\nz\nc\n', 'a\nx\nq\nz\nc\n'],
  ['insert at end on both', 'a\n', 'a\nours\n', 'a\ntheirs\n'],
  ['add/add from empty', '', 'one\ntwo\n', 'one\nthree\n'],
  ['deletion against edit', 'a\nb\nc\n', 'a\nc\n', 'a\nB\nc\n'],
];

for (const [name, base, ours, theirs] of cases) {
  test(`text merge matches git merge-file: ${name}`, async () => {
    const mine = mergeText(base, ours, theirs, labels);
    const git = await gitMergeFile(base, ours, theirs);
    assert.equal(mine.text, git.text);
    assert.equal(mine.conflicts, git.conflicts);
  });
}

test('text merge: one-sided and identical changes never conflict (property)', () => {
  const lines = fc.array(fc.constantFrom('a\n', 'b\n', 'c\n', 'd\n'), { maxLength: 12 });
  fc.assert(
    fc.property(lines, lines, (base, side) => {
      const b = base.join('');
      const s = side.join('');
      assert.deepEqual(mergeText(b, s, b, labels), { text: s, conflicts: 0 });
      assert.deepEqual(mergeText(b, b, s, labels), { text: s, conflicts: 0 });
      assert.deepEqual(mergeText(b, s, s, labels), { text: s, conflicts: 0 });
    }),
  );
});

/**
 * On random edits, MediaGit and Git agree on whether a merge is clean and, when
 * it is, on every byte. Inside a conflict Git sometimes splits or widens the
 * marked region differently (its "zealous" refinement re-diffs the two sides).
 * Where a text repeats lines, a diff can align them in several equally short
 * ways and Git's xdiff and jsdiff may choose differently, so one merge can be
 * clean and the other conflicted (e.g. base "a c c c", ours "c c c", theirs
 * "c a c c a"): both are valid merges. The random texts here therefore use
 * each line at most once, and a fixed seed keeps the run reproducible.
 */
test('text merge agrees with git merge-file on random edits (property)', async () => {
  const lines = fc.uniqueArray(fc.constantFrom('a\n', 'b\n', 'c\n', 'd\n', 'e\n', 'f\n', 'g\n'), {
    maxLength: 7,
  });
  await fc.assert(
    fc.asyncProperty(lines, lines, lines, async (base, ours, theirs) => {
      const [b, o, t] = [base.join(''), ours.join(''), theirs.join('')];
      const mine = mergeText(b, o, t, labels);
      const git = await gitMergeFile(b, o, t);
      const context = JSON.stringify({ b, o, t, mine, git });
      assert.equal(mine.conflicts > 0, git.conflicts > 0, context);
      if (git.conflicts === 0) assert.equal(mine.text, git.text, context);
    }),
    { numRuns: 60, seed: 20261125 },
  );
});
