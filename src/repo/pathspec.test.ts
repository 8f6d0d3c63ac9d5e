import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { globToRegExp, matchesPathspec, parsePathspecs } from './pathspec.ts';

describe('pathspecs', () => {
  it('name a file, or everything under a folder', () => {
    const [file, folder, root] = parsePathspecs('/w', '/w', ['a/b.txt', 'a', '.']);
    assert.ok(matchesPathspec(file!, 'a/b.txt'));
    assert.ok(!matchesPathspec(file!, 'a/b.txt.bak'));
    assert.ok(matchesPathspec(folder!, 'a/b.txt'));
    assert.ok(!matchesPathspec(folder!, 'ab/c'));
    assert.ok(matchesPathspec(root!, 'anything/at/all'));
  });

  it('are relative to the directory they were typed in', () => {
    const [spec] = parsePathspecs('/w', '/w/sub', ['x.txt']);
    assert.equal(spec!.path, 'sub/x.txt');
    assert.throws(() => parsePathspecs('/w', '/w', ['../outside']), /outside repository/);
  });

  it('match globs across folders, as Git does by default', () => {
    const [spec] = parsePathspecs('/w', '/w', ['*.psd']);
    assert.ok(matchesPathspec(spec!, 'art/deep/cover.psd'));
    assert.ok(!matchesPathspec(spec!, 'art/cover.psd.txt'));
  });
});

describe('globToRegExp', () => {
  const cases: [string, string, boolean][] = [
    ['v*', 'v1.0', true],
    ['v*', 'release/v1', false],
    ['v?', 'v1', true],
    ['v?', 'v10', false],
    ['v[0-9]', 'v7', true],
    ['v[!0-9]', 'v7', false],
    ['v[!0-9]', 'vx', true],
    ['a.b', 'axb', false],
    ['\\*', '*', true],
    ['\\*', 'x', false],
    ['[', '[', true],
    ['a+(b)', 'a+(b)', true],
  ];
  for (const [pattern, text, expected] of cases) {
    it(`${JSON.stringify(pattern)} ${expected ? 'matches' : 'does not match'} ${JSON.stringify(text)}`, () => {
      assert.equal(globToRegExp(pattern).test(text), expected);
    });
  }
});
