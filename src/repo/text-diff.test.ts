import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { diffText, hunkHeader, NO_NEWLINE, type Hunk } from './text-diff.ts';

/** The hunks `git diff --no-index` prints for two texts (everything from the first "@@"). */
async function gitHunks(oldText: string, newText: string, context = 3): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'mediagit-textdiff-'));
  try {
    await fs.writeFile(path.join(dir, 'old'), oldText);
    await fs.writeFile(path.join(dir, 'new'), newText);
    const result = spawnSync(
      'git',
      ['diff', '--no-index', '--no-color', `-U${context}`, 'old', 'new'],
      { cwd: dir, encoding: 'utf8', env: { ...process.env, GIT_CONFIG_NOSYSTEM: '1', HOME: dir } },
    );
    assert.ok(result.status === 0 || result.status === 1, result.stderr);
    const lines = result.stdout.split('\n');
    const first = lines.findIndex((l) => l.startsWith('@@'));
    return first < 0 ? '' : lines.slice(first).join('\n').replace(/\n$/, '');
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

function render(hunks: readonly Hunk[]): string {
  return hunks.flatMap((h) => [hunkHeader(h), ...h.lines]).join('\n');
}

/** Applies hunks to the old text; the result must be the new text. */
function apply(oldText: string, hunks: readonly Hunk[]): string {
  // Old lines keep their newline, so a last line without one stays without it.
  const old = oldText.split(/(?<=\n)/).filter((l) => l !== '');
  const out: string[] = [];
  let position = 0;
  for (const hunk of hunks) {
    const start = hunk.oldLines === 0 ? hunk.oldStart : hunk.oldStart - 1;
    out.push(...old.slice(position, start));
    position = start;
    let previous = '';
    for (const line of hunk.lines) {
      if (line === NO_NEWLINE) {
        // Marks the line before it: an added line loses the newline we gave it.
        if (previous === '+') out.push(out.pop()!.slice(0, -1));
        continue;
      }
      previous = line[0]!;
      if (line[0] === '+') {
        out.push(`${line.slice(1)}\n`);
        continue;
      }
      assert.equal(old[position]?.replace(/\n$/, ''), line.slice(1), 'line matches the old text');
      if (line[0] === ' ') out.push(old[position]!);
      position++;
    }
  }
  out.push(...old.slice(position));
  return out.join('');
}

const CASES: Record<string, [string, string]> = {
  'one changed line in the middle': [
    Array.from({ length: 20 }, (_, i) => `line ${i + 1}`).join('\n') + '\n',
    Array.from({ length: 20 }, (_, i) => (i === 9 ? 'changed' : `line ${i + 1}`)).join('\n') + '\n',
  ],
  'a function inserted between two (indent heuristic)': [
    'function a() {\n  return 1;\n}\n\nfunction c() {\n  return 3;\n}\n',
    'function a() {\n  return 1;\n}\n\nfunction b() {\n  return 2;\n}\n\nfunction c() {\n  return 3;\n}\n',
  ],
  'a nested block appended (slider alignment)': [
    'if (x) {\n  if (y) {\n    foo();\n  }\n}\n',
    'if (x) {\n  if (y) {\n    foo();\n  }\n  if (z) {\n    bar();\n  }\n}\n',
  ],
  'changes far apart make two hunks, each with a heading': [
    'def one():\n' +
      Array.from({ length: 12 }, (_, i) => `    a${i}`).join('\n') +
      '\ndef two():\n' +
      Array.from({ length: 12 }, (_, i) => `    b${i}`).join('\n') +
      '\n',
    'def one():\n' +
      Array.from({ length: 12 }, (_, i) => (i === 8 ? '    A8' : `    a${i}`)).join('\n') +
      '\ndef two():\n' +
      Array.from({ length: 12 }, (_, i) => (i === 9 ? '    B9' : `    b${i}`)).join('\n') +
      '\n',
  ],
  'a block duplicated (slid up to where Git puts it)': [
    'function g() {\n  return 2;\n}\nif (x) {\n  y();\n}\n\n  z();\n',
    'function g() {\n  return 2;\n}\nif (x) {\n  y();\n}\nif (x) {\n  y();\n}\n\n  z();\n',
  ],
  'a block inserted before a closing brace (indent heuristic)': [
    '}\n  z();\n',
    '}\nif (x) {\n  y();\n}\n  z();\n',
  ],
  'newline added at end of file': ['a\nb', 'a\nb\n'],
  'newline removed at end of file': ['a\nb\n', 'a\nc'],
  'everything deleted': ['a\nb\nc\n', ''],
  'created from nothing': ['', 'x\ny\n'],
  'blank lines and duplicates': ['a\n\nb\n\nc\n', 'a\n\nb\n\nb\n\nc\n'],
  'crlf lines': ['one\r\ntwo\r\nthree\r\n', 'one\r\n2\r\nthree\r\n'],
};

for (const [name, [oldText, newText]] of Object.entries(CASES)) {
  test(`text diff matches git diff: ${name}`, async () => {
    const ours = diffText(oldText, newText);
    assert.equal(render(ours.hunks), await gitHunks(oldText, newText));
    assert.equal(apply(oldText, ours.hunks), newText);
  });
}

test('text diff honours the context size like git -U', async () => {
  const [oldText, newText] = CASES['changes far apart make two hunks, each with a heading']!;
  for (const context of [0, 1, 10]) {
    assert.equal(
      render(diffText(oldText, newText, context).hunks),
      await gitHunks(oldText, newText, context),
    );
  }
});

test('text diff counts added and deleted lines', () => {
  const result = diffText('a\nb\nc\n', 'a\nB\nc\nd\n');
  assert.equal(result.added, 2);
  assert.equal(result.deleted, 1);
  assert.deepEqual(diffText('same\n', 'same\n').hunks, []);
});

test('applying the hunks to the old text always gives the new text', () => {
  const line = fc.constantFrom('a', 'b', 'c', '', '  x', '\ty', '}', 'if (a) {');
  const text = fc
    .tuple(fc.array(line, { maxLength: 40 }), fc.boolean())
    .map(([lines, newline]) =>
      lines.length === 0 ? '' : lines.join('\n') + (newline ? '\n' : ''),
    );
  fc.assert(
    fc.property(text, text, fc.integer({ min: 0, max: 5 }), (oldText, newText, context) => {
      const result = diffText(oldText, newText, context);
      assert.equal(apply(oldText, result.hunks), newText);
      for (const hunk of result.hunks) {
        const oldCount = hunk.lines.filter((l) => l[0] === ' ' || l[0] === '-').length;
        const newCount = hunk.lines.filter((l) => l[0] === ' ' || l[0] === '+').length;
        assert.equal(oldCount, hunk.oldLines);
        assert.equal(newCount, hunk.newLines);
      }
    }),
    { numRuns: 500 },
  );
});
