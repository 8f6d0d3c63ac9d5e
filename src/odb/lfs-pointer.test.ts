import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import fc from 'fast-check';
import { formatPointer, MAX_POINTER_BYTES, parsePointer } from './lfs-pointer.ts';
import { pseudoRandomBytes } from '../../test/bytes.ts';

let dir: string;
before(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'mediagit-lfs-pointer-'));
  execFileSync('git', ['init', '-q', dir]);
});
after(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

/** What the real `git lfs pointer --check` says of `text`: valid (exit 0) or not (exit 1). */
async function gitLfsAccepts(text: string): Promise<boolean> {
  const file = path.join(dir, 'pointer');
  await fs.writeFile(file, text);
  const result = spawnSync('git', ['lfs', 'pointer', '--check', `--file=${file}`], { cwd: dir });
  assert.ok(result.status === 0 || result.status === 1, result.stderr.toString());
  return result.status === 0;
}

test('formatPointer writes what `git lfs pointer` writes, byte for byte', async () => {
  for (const [i, size] of [0, 5, 1000, 300 * 1024].entries()) {
    const content = pseudoRandomBytes(size, i, 'lfs');
    const file = path.join(dir, `content-${i}`);
    await fs.writeFile(file, content);
    const expected = execFileSync('git', ['lfs', 'pointer', `--file=${file}`], {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'ignore'],
    }).toString();
    const oid = createHash('sha256').update(content).digest('hex');
    assert.equal(formatPointer({ oid, size, extra: [] }), expected);
    // git lfs writes an empty file's pointer empty, and --check calls that no pointer.
    if (size > 0) assert.ok(await gitLfsAccepts(expected));
    assert.deepEqual(parsePointer(Buffer.from(expected)), {
      ok: true,
      pointer: { oid, size, extra: [] },
    });
  }
});

test('parsePointer agrees with `git lfs pointer --check`, except on unknown keys', async () => {
  const oid = createHash('sha256').update('hello').digest('hex');
  const v1 = 'version https://git-lfs.github.com/spec/v1';
  const cases: [string, string, boolean][] = [
    ['canonical', `${v1}\noid sha256:${oid}\nsize 5\n`, true],
    [
      'legacy version URL',
      `version https://hawser.github.com/spec/v1\noid sha256:${oid}\nsize 5\n`,
      true,
    ],
    ['no final newline', `${v1}\noid sha256:${oid}\nsize 5`, true],
    ['CRLF', `${v1}\r\noid sha256:${oid}\r\nsize 5\r\n`, true],
    ['size with a leading zero', `${v1}\noid sha256:${oid}\nsize 05\n`, true],
    [
      'wrong version line',
      `version https://git-lfs.github.com/spec/v2\noid sha256:${oid}\nsize 5\n`,
      false,
    ],
    ['uppercase OID', `${v1}\noid sha256:${oid.toUpperCase()}\nsize 5\n`, false],
    ['short OID', `${v1}\noid sha256:${oid.slice(1)}\nsize 5\n`, false],
    ['md5 OID', `${v1}\noid md5:5d41402abc4b2a76b9719d911017c592\nsize 5\n`, false],
    ['negative size', `${v1}\noid sha256:${oid}\nsize -1\n`, false],
    ['unsorted keys', `${v1}\nsize 5\noid sha256:${oid}\n`, false],
    ['no size', `${v1}\noid sha256:${oid}\n`, false],
    ['version not first', `oid sha256:${oid}\n${v1}\nsize 5\n`, false],
    // A repeated key: which of the two would a reader believe?
    ['two oid lines', `${v1}\noid sha256:${oid}\noid sha256:${oid}\nsize 5\n`, false],
    ['two size lines', `${v1}\noid sha256:${oid}\nsize 5\nsize 5\n`, false],
    ['two size lines that differ', `${v1}\noid sha256:${oid}\nsize 5\nsize 6\n`, false],
  ];
  for (const [label, text, valid] of cases) {
    const parsed = parsePointer(Buffer.from(text));
    assert.equal(parsed.ok, valid, `${label}: ${parsed.ok ? 'accepted' : parsed.reason}`);
    if (parsed.ok) assert.deepEqual(parsed.pointer, { oid, size: 5, extra: [] }, label);
    assert.equal(await gitLfsAccepts(text), valid, `git lfs disagrees on: ${label}`);
  }
  // Unknown keys: kept by MediaGit (the issue asks for it), refused by git lfs --check.
  const extra = `${v1}\nfoo bar baz\noid sha256:${oid}\nsize 5\nzz top\n`;
  const parsed = parsePointer(Buffer.from(extra));
  assert.ok(parsed.ok);
  assert.deepEqual(parsed.pointer.extra, [
    ['foo', 'bar baz'],
    ['zz', 'top'],
  ]);
  assert.equal(formatPointer(parsed.pointer), extra);
  assert.equal(await gitLfsAccepts(extra), false);
});

test('an oversized pointer is not a pointer; formatting refuses to write one', () => {
  const oid = 'a'.repeat(64);
  const long = formatPointer({ oid, size: 1, extra: [] }).replace(
    'size 1\n',
    `size 1\nzz ${'x'.repeat(MAX_POINTER_BYTES)}\n`,
  );
  const parsed = parsePointer(Buffer.from(long));
  assert.equal(parsed.ok, false);
  assert.match(parsed.ok ? '' : parsed.reason, /larger than 1024/);
  assert.throws(
    () => formatPointer({ oid, size: 1, extra: [['zz', 'x'.repeat(1024)]] }),
    RangeError,
  );
  assert.throws(() => formatPointer({ oid: 'A'.repeat(64), size: 1, extra: [] }), RangeError);
  assert.throws(() => formatPointer({ oid, size: -1, extra: [] }), RangeError);
  assert.throws(() => formatPointer({ oid, size: 1, extra: [['Bad', 'x']] }), RangeError);
  assert.throws(() => formatPointer({ oid, size: 1, extra: [['ok', 'a\nb']] }), RangeError);
});

test('parsePointer never throws, and what it accepts formats back to a pointer it accepts', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 1200 }), (bytes) => {
      const parsed = parsePointer(bytes);
      if (parsed.ok)
        assert.deepEqual(parsePointer(Buffer.from(formatPointer(parsed.pointer))), parsed);
    }),
    { numRuns: 500 },
  );
  const keys = fc
    .stringMatching(/^[a-z0-9.-]{1,8}$/)
    .filter((k) => !['version', 'oid', 'size'].includes(k));
  fc.assert(
    fc.property(
      fc.stringMatching(/^[0-9a-f]{64}$/),
      fc.nat(),
      fc.uniqueArray(fc.tuple(keys, fc.stringMatching(/^[ -~]{0,20}$/)), {
        selector: ([k]) => k,
        maxLength: 4,
      }),
      (oid, size, extra) => {
        const sorted = [...extra].sort(([a], [b]) => (a < b ? -1 : 1));
        const text = formatPointer({ oid, size, extra: sorted });
        assert.deepEqual(parsePointer(Buffer.from(text)), {
          ok: true,
          pointer: { oid, size, extra: sorted },
        });
      },
    ),
    { numRuns: 300 },
  );
});
