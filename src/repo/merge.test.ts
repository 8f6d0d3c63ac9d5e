import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mergeFiles } from './merge.ts';
import type { TreeFile } from './tree-ops.ts';

function files(entries: Record<string, string>): Map<string, TreeFile> {
  const out = new Map<string, TreeFile>();
  for (const [p, id] of Object.entries(entries)) {
    out.set(p, { path: p, mode: '100644', kind: 'blob', id: id.repeat(64).slice(0, 64), size: 1 });
  }
  return out;
}

test('the path-level three-way merge takes one-sided and agreeing changes, and names each conflict', () => {
  const base = files({
    same: 'a',
    ours: 'a',
    theirs: 'a',
    both: 'a',
    mm: 'a',
    dm: 'a',
    md: 'a',
    gone: 'a',
  });
  const ours = files({
    same: 'a',
    ours: 'b',
    theirs: 'a',
    both: 'c',
    mm: 'd',
    md: 'e',
    aa: '1',
    new1: '2',
  });
  const theirs = files({
    same: 'a',
    ours: 'a',
    theirs: 'f',
    both: 'c',
    mm: '9',
    dm: '8',
    aa: '7',
    new2: '3',
  });
  const { files: merged, conflicts } = mergeFiles(base, ours, theirs);
  const ids = Object.fromEntries([...merged].map(([p, f]) => [p, f.id[0]]));
  assert.deepEqual(ids, { both: 'c', new1: '2', new2: '3', ours: 'b', same: 'a', theirs: 'f' });
  assert.deepEqual(conflicts, [
    { path: 'aa', type: 'AddAdd' },
    { path: 'dm', type: 'DeleteModify' },
    { path: 'md', type: 'ModifyDelete' },
    { path: 'mm', type: 'ModifyModify' },
  ]);
});

test('a file on one side where the other side made a folder is a conflict', () => {
  const { conflicts } = mergeFiles(
    files({}),
    files({ plate: '1' }),
    files({ 'plate/v2.exr': '2' }),
  );
  assert.deepEqual(conflicts, [{ path: 'plate', type: 'AddAdd' }]);
});
