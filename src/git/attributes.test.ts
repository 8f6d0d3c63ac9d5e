import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { listTracked, track, untrack } from './attributes.ts';

describe('.gitattributes tracking', () => {
  test('track and untrack touch only the filter=mediagit lines', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'mediagit-attr-'));
    try {
      const original =
        '# team settings\n*.txt text eol=lf\n*.psd filter=lfs diff=lfs merge=lfs -text\n';
      await fs.writeFile(path.join(dir, '.gitattributes'), original);
      assert.deepEqual(await track(dir, ['*.mp4', 'raw footage/*.mov', '*.mp4']), [
        '*.mp4',
        'raw footage/*.mov',
      ]);
      assert.deepEqual(await track(dir, ['*.mp4']), []);
      const file = path.join(dir, '.gitattributes');
      assert.equal(
        await fs.readFile(file, 'utf8'),
        original +
          '*.mp4 filter=mediagit diff=mediagit merge=mediagit -text\n' +
          'raw[[:space:]]footage/*.mov filter=mediagit diff=mediagit merge=mediagit -text\n' +
          '.gitattributes !filter !diff !merge text\n',
      );
      // Tracking more keeps the exemption last (later lines win in .gitattributes).
      assert.deepEqual(await track(dir, ['.*']), ['.*']);
      assert.match(
        await fs.readFile(file, 'utf8'),
        /\n\.\*[^\n]*\n\.gitattributes !filter !diff !merge text\n$/,
      );
      await untrack(dir, ['.*']);
      await fs.mkdir(path.join(dir, 'sub'));
      await fs.writeFile(path.join(dir, 'sub', '.gitattributes'), '*.wav filter=mediagit -text\n');
      const gitDir = path.join(dir, '.git');
      await fs.mkdir(path.join(gitDir, 'info'), { recursive: true });
      await fs.writeFile(path.join(gitDir, 'info', 'attributes'), '*.exr filter=mediagit\n');
      assert.deepEqual(await listTracked(dir, gitDir), [
        { pattern: '*.mp4', source: '.gitattributes' },
        { pattern: 'raw footage/*.mov', source: '.gitattributes' },
        { pattern: '*.wav', source: path.join('sub', '.gitattributes') },
        { pattern: '*.exr', source: path.join('.git', 'info', 'attributes') },
      ]);
      assert.deepEqual(await untrack(dir, ['raw footage/*.mov', '*.psd', '*.txt']), [
        'raw footage/*.mov',
      ]);
      assert.equal(
        await fs.readFile(file, 'utf8'),
        original +
          '*.mp4 filter=mediagit diff=mediagit merge=mediagit -text\n' +
          '.gitattributes !filter !diff !merge text\n',
      );
      await assert.rejects(track(dir, ['!negated']), /not a usable pattern/);
      await assert.rejects(track(dir, ['a\nb']), /not a usable pattern/);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});
