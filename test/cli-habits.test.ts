/**
 * Git habits (issue 15, point 6), each checked against real Git run on a
 * twin repository with the same commands and files.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { commitAll, Pair, repoMaker } from './git-twin.ts';

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
});
