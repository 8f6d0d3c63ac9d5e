/**
 * The combined diff against Git's own: random pairs of sides and results
 * are committed as a merge in a scratch Git repository, and `git show --cc`
 * is the reference. Where Git's two-way diff of a side aligns repeated lines
 * differently from text-diff.ts (both minimal), the comparison would test
 * the line diff, not the combining: those cases are counted and skipped.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { combinedDiffLines } from './combined-diff.ts';
import { lineChanges } from './text-diff.ts';

const WORDS = ['alpha', 'beta', 'int x;', '}', '{', 'foo()', 'bar', '', 'Zed', 'return'];

function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1103515245 + 12345) & 0x7fffffff;
    return state / 0x7fffffff;
  };
}

test('diff --cc matches git show --cc on random merges', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mediagit-cc-'));
  const env = { ...process.env, GIT_CONFIG_NOSYSTEM: '1', HOME: dir };
  const git = (...args: string[]): string =>
    execFileSync('git', args, { cwd: dir, encoding: 'utf8', env });
  const gitDiff = (a: string, b: string): string => {
    fs.writeFileSync(path.join(dir, 'a'), a);
    fs.writeFileSync(path.join(dir, 'b'), b);
    try {
      execFileSync('git', ['diff', '--no-index', '-U0', 'a', 'b'], { cwd: dir, env });
      return '';
    } catch (error) {
      const out = String((error as { stdout: Buffer }).stdout);
      return out
        .split('\n')
        .filter((l) => l.startsWith('@@'))
        .map((l) => l.split('@@')[1]!.trim())
        .join(' ');
    }
  };
  const ourDiff = (a: string, b: string): string => {
    const range = (start: number, n: number): string => (n === 1 ? `${start}` : `${start},${n}`);
    return lineChanges(a, b)
      .map(
        (c) =>
          `-${range(c.chg1 ? c.i1 + 1 : c.i1, c.chg1)} +${range(c.chg2 ? c.i2 + 1 : c.i2, c.chg2)}`,
      )
      .join(' ');
  };
  try {
    git('init', '-q', '-b', 'main');
    git('config', 'user.name', 'T');
    git('config', 'user.email', 't@example.com');
    const rnd = random(7);
    const pick = (): string => WORDS[Math.floor(rnd() * WORDS.length)]!;
    const mutate = (lines: string[]): string[] =>
      lines.flatMap((line) => {
        const r = rnd();
        const kept = r < 0.1 ? [] : r < 0.2 ? [pick()] : [line];
        return rnd() < 0.08 ? [...kept, `new ${Math.floor(rnd() * 3)}`] : kept;
      });
    const text = (lines: string[]): string => lines.map((l) => `${l}\n`).join('');
    let compared = 0;
    for (let round = 0; round < 50; round++) {
      const base = Array.from({ length: 5 + Math.floor(rnd() * 30) }, pick);
      const ours = text(mutate(base));
      const theirs = text(mutate(base));
      const result = text(mutate(rnd() < 0.5 ? ours.split('\n') : theirs.split('\n')).slice(0, -1));
      if ([ours, theirs].some((side) => gitDiff(side, result) !== ourDiff(side, result))) continue;
      const commit = (content: string, message: string): string => {
        fs.writeFileSync(path.join(dir, 'f'), content);
        git('add', 'f');
        git('commit', '-q', '--allow-empty', '-m', message);
        return git('rev-parse', 'HEAD').trim();
      };
      const first = commit(ours, 'ours');
      const second = commit(theirs, 'theirs');
      fs.writeFileSync(path.join(dir, 'f'), result);
      git('add', 'f');
      const merge = git(
        'commit-tree',
        git('write-tree').trim(),
        '-p',
        first,
        '-p',
        second,
        '-m',
        'm',
      );
      const shown = git('show', '--cc', '--format=', merge.trim()).split('\n');
      const at = shown.findIndex((l) => l.startsWith('@@@'));
      const expected = at < 0 ? [] : shown.slice(at, shown.at(-1) === '' ? -1 : undefined);
      assert.deepEqual(combinedDiffLines([ours, theirs], result), expected, `round ${round}`);
      compared++;
    }
    assert.ok(compared >= 25, `only ${compared} of 50 rounds compared`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
