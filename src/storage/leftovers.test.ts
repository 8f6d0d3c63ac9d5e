import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { removeOwnLeftovers, trackPendingLock } from './leftovers.ts';

test('an interrupt removes the empty file of a lock being taken, never a holder’s lock', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mediagit-leftovers-'));
  try {
    // The open created the file, its answer had not arrived: empty, ours.
    const ours = path.join(dir, 'HEAD.lock');
    fs.writeFileSync(ours, '');
    trackPendingLock(ours);
    // The open failed (EEXIST), its answer had not arrived: the holder's line is there.
    const theirs = path.join(dir, 'index.lock');
    fs.writeFileSync(theirs, '4242 elsewhere\n');
    trackPendingLock(theirs);
    // A lock taken and released: nothing to do.
    const released = path.join(dir, 'refs.lock');
    fs.writeFileSync(released, '');
    trackPendingLock(released)();

    removeOwnLeftovers();

    assert.equal(fs.existsSync(ours), false);
    assert.equal(fs.readFileSync(theirs, 'utf8'), '4242 elsewhere\n');
    assert.equal(fs.existsSync(released), true);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
