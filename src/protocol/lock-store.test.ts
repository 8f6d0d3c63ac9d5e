import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MemoryBackend } from '../storage/memory.ts';
import { BackendRepo } from './backend-repo.ts';
import { checkLockPath, LockStore } from './lock-store.ts';

describe('file locks', () => {
  test('a path is locked once; the holder is reported to others; unlock frees it', async () => {
    const locks = new LockStore(new BackendRepo(new MemoryBackend()));
    const first = await locks.create('art/hero.psd', 'alice');
    assert.equal(first.created, true);
    const second = await locks.create('art/hero.psd', 'bob');
    assert.equal(second.created, false);
    assert.deepEqual(second.lock, first.lock);
    await locks.create('a.glb', 'bob');
    assert.deepEqual(
      (await locks.list()).map((l) => [l.path, l.owner.name]),
      [
        ['a.glb', 'bob'],
        ['art/hero.psd', 'alice'],
      ],
    );
    assert.deepEqual(await locks.find(first.lock.id), first.lock);
    await locks.remove(first.lock);
    assert.equal(await locks.find(first.lock.id), undefined);
    const again = await locks.create('art/hero.psd', 'bob');
    assert.equal(again.created, true);
    assert.notEqual(again.lock.id, first.lock.id);
  });

  test('of 20 racing lock requests through two stores on one backend, exactly one wins', async () => {
    const backend = new MemoryBackend();
    const stores = [
      new LockStore(new BackendRepo(backend)),
      new LockStore(new BackendRepo(backend)),
    ];
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => stores[i % 2]!.create('scene.blend', `user${i}`)),
    );
    const winners = results.filter((r) => r.created);
    assert.equal(winners.length, 1);
    for (const r of results) assert.deepEqual(r.lock, winners[0]!.lock);
  });

  test('a stale unlock never releases a lock taken after it; relocking after a release races safely', async () => {
    const backend = new MemoryBackend();
    const locks = new LockStore(new BackendRepo(backend));
    const alice = (await locks.create('shot.exr', 'alice')).lock;
    assert.equal(await locks.remove(alice), true);
    const bob = (await locks.create('shot.exr', 'bob')).lock;
    // Alice's unlock arriving late (she read her lock before it was released).
    assert.equal(await locks.remove(alice), false);
    assert.deepEqual(await locks.list(), [bob]);
    assert.equal(await locks.remove(bob), true);
    const stores = [locks, new LockStore(new BackendRepo(backend))];
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => stores[i % 2]!.create('shot.exr', `user${i}`)),
    );
    assert.equal(results.filter((r) => r.created).length, 1);
    assert.equal((await locks.list()).length, 1);
  });

  test('lock paths are repository paths', () => {
    assert.equal(checkLockPath('a/b.psd'), 'a/b.psd');
    for (const bad of [
      '',
      '/etc/passwd',
      '../x',
      'a/../b',
      'a//b',
      'a/./b',
      'a\\b',
      'a\0b',
      7,
      undefined,
    ]) {
      assert.throws(() => checkLockPath(bad), /not a repository path/, String(bad));
    }
  });
});
