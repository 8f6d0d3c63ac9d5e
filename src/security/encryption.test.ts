import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { MediaGitError } from '../errors.ts';
import {
  addSlot,
  createKeyFile,
  DEFAULT_KDF,
  deriveKeys,
  keyedId,
  mergeKeyFiles,
  open,
  parseKeyFile,
  removeSlot,
  sameKeyFile,
  seal,
  SEAL_OVERHEAD,
  secretGearTable,
  unlock,
  type KdfParams,
} from './encryption.ts';

/** Small Argon2id parameters: the slot logic, not the cost, is under test here. */
const FAST: KdfParams = { memory: 8192, passes: 1, parallelism: 1 };
const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest();

function assertCode(error: unknown, code: string, message?: RegExp): true {
  assert.ok(error instanceof MediaGitError, String(error));
  assert.equal(error.code, code, error.message);
  if (message) assert.match(error.message, message);
  return true;
}

test('encryption: a passphrase slot opens with its passphrase only; wrong is one clear error, exit 128', async () => {
  const { master, keyFile } = await createKeyFile(
    { kind: 'passphrase', passphrase: 'correct horse' },
    FAST,
  );
  assert.equal(master.length, 32);
  const reread = parseKeyFile(JSON.parse(JSON.stringify(keyFile)));
  assert.deepEqual(
    await unlock(reread, { kind: 'passphrase', passphrase: 'correct horse' }),
    master,
  );
  await assert.rejects(unlock(reread, { kind: 'passphrase', passphrase: 'correct horsE' }), (e) => {
    assertCode(e, 'WRONG_KEY', /^wrong passphrase: it opens no key slot of this repository$/);
    assert.equal((e as MediaGitError).data['exitCode'], 128);
    return true;
  });
  // Nothing secret in the file: neither the master key nor the passphrase.
  const text = JSON.stringify(keyFile);
  assert.ok(!text.includes(master.toString('base64')) && !text.includes(master.toString('hex')));
  assert.ok(!text.includes('correct horse'));
});

test('encryption: the default Argon2id parameters (RFC 9106, 64 MiB) work and are recorded in the slot', async () => {
  const { master, keyFile } = await createKeyFile({ kind: 'passphrase', passphrase: 'pw' });
  assert.deepEqual(
    { ...keyFile.slots[0]!.kdf, salt: undefined },
    { ...DEFAULT_KDF, salt: undefined },
  );
  assert.deepEqual(await unlock(keyFile, { kind: 'passphrase', passphrase: 'pw' }), master);
});

test('encryption: key slots are added and removed; the last one cannot go; a slot cannot move between repositories', async () => {
  const file = randomBytes(64);
  const { master, keyFile } = await createKeyFile({ kind: 'passphrase', passphrase: 'one' }, FAST);
  const added = await addSlot(keyFile, master, { kind: 'keyfile', key: file }, FAST);
  const withTwo = await addSlot(
    added.keyFile,
    master,
    { kind: 'passphrase', passphrase: 'two' },
    FAST,
  );
  assert.equal(withTwo.keyFile.slots.length, 3);
  for (const secret of [
    { kind: 'passphrase', passphrase: 'one' },
    { kind: 'passphrase', passphrase: 'two' },
    { kind: 'keyfile', key: file },
  ] as const) {
    assert.deepEqual(await unlock(withTwo.keyFile, secret), master);
  }
  await assert.rejects(unlock(withTwo.keyFile, { kind: 'keyfile', key: randomBytes(64) }), (e) =>
    assertCode(e, 'WRONG_KEY', /wrong key file/),
  );
  await assert.rejects(unlock(keyFile, { kind: 'keyfile', key: randomBytes(8) }), (e) =>
    assertCode(e, 'WRONG_KEY'),
  );
  const removed = removeSlot(withTwo.keyFile, withTwo.slot.id);
  await assert.rejects(unlock(removed, { kind: 'passphrase', passphrase: 'two' }), (e) =>
    assertCode(e, 'WRONG_KEY'),
  );
  assert.deepEqual(await unlock(removed, { kind: 'passphrase', passphrase: 'one' }), master);
  assert.throws(
    () => removeSlot(keyFile, keyFile.slots[0]!.id),
    (e) => assertCode(e, 'LAST_KEY', /only one/),
  );
  assert.throws(
    () => removeSlot(keyFile, 'ffffffffffffffff'),
    (e) => assertCode(e, 'NO_SUCH_KEY'),
  );
  // A slot copied into another repository's key file opens nothing there.
  const other = await createKeyFile({ kind: 'passphrase', passphrase: 'x' }, FAST);
  const moved = { ...other.keyFile, slots: [...other.keyFile.slots, keyFile.slots[0]!] };
  await assert.rejects(unlock(moved, { kind: 'passphrase', passphrase: 'one' }), (e) =>
    assertCode(e, 'WRONG_KEY'),
  );
});

test('encryption: a key file with weakened or malformed slots is refused', async () => {
  const { keyFile } = await createKeyFile({ kind: 'passphrase', passphrase: 'p' }, FAST);
  const slot = keyFile.slots[0]!;
  const variants: unknown[] = [
    null,
    { ...keyFile, version: 2 },
    { ...keyFile, repository: 'x' },
    { ...keyFile, slots: [] },
    { ...keyFile, slots: [{ ...slot, kdf: { ...slot.kdf, memory: 64 } }] },
    { ...keyFile, slots: [{ ...slot, kdf: { ...slot.kdf, passes: 0 } }] },
    { ...keyFile, slots: [{ ...slot, kdf: { ...slot.kdf, salt: 'c2hvcnQ=' } }] },
    { ...keyFile, slots: [{ ...slot, kdf: undefined }] },
    { ...keyFile, slots: [{ ...slot, wrapped: 'AAAA' }] },
    { ...keyFile, slots: [{ ...slot, id: '../x' }] },
  ];
  for (const variant of variants) {
    assert.throws(
      () => parseKeyFile(variant),
      (e) => assertCode(e, 'BAD_KEY_FILE'),
    );
  }
});

test('encryption: each seal has its own nonce; another repository or another AAD does not open it', () => {
  const a = deriveKeys(randomBytes(32), 'a'.repeat(32));
  const b = deriveKeys(randomBytes(32), 'b'.repeat(32));
  const record = randomBytes(10_000);
  const aad = Buffer.from('chunk');
  const once = Buffer.concat(seal(a, [record.subarray(0, 3000), record.subarray(3000)], aad));
  const twice = Buffer.concat(seal(a, [record], aad));
  assert.notDeepEqual(twice, once, 'a fresh random nonce per seal');
  assert.equal(once.length, record.length + SEAL_OVERHEAD);
  assert.ok(once.indexOf(record.subarray(100, 132)) === -1, 'no plaintext in the sealed bytes');
  assert.deepEqual(open(a, once, aad, 'x'), record);
  assert.deepEqual(open(a, twice, aad, 'x'), record);
  // Another repository's key, or the record sealed under another AAD, fails.
  assert.throws(
    () => open(b, once, aad, 'x'),
    (e) => assertCode(e, 'OBJECT_CORRUPT', /authentication failed/),
  );
  assert.throws(
    () => open(a, once, Buffer.from('tree'), 'x'),
    (e) => assertCode(e, 'OBJECT_CORRUPT'),
  );
});

test('encryption: keyed IDs are stable within a repository and differ across repositories', () => {
  const master = randomBytes(32);
  const plain = sha256(Buffer.from('the same content'));
  const one = keyedId(deriveKeys(master, 'e'.repeat(32)), plain);
  assert.deepEqual(keyedId(deriveKeys(master, 'e'.repeat(32)), plain), one);
  assert.notDeepEqual(keyedId(deriveKeys(randomBytes(32), 'e'.repeat(32)), plain), one);
  assert.notDeepEqual(keyedId(deriveKeys(master, 'f'.repeat(32)), plain), one);
  assert.notDeepEqual(one, Buffer.from(plain));
  assert.equal(one.length, 32);
});

test('encryption: a flipped byte anywhere in a sealed object fails authentication, naming it', () => {
  const keys = deriveKeys(randomBytes(32), 'c'.repeat(32));
  const sealed = Buffer.concat(seal(keys, [randomBytes(300)], Buffer.from('blob')));
  for (let at = 0; at < sealed.length; at++) {
    const damaged = Buffer.from(sealed);
    damaged[at]! ^= 1 << (at % 8);
    assert.throws(
      () => open(keys, damaged, Buffer.from('blob'), 'abc123'),
      (e) => assertCode(e, 'OBJECT_CORRUPT', /abc123.*authentication failed/),
      `byte ${at}`,
    );
  }
  for (const cut of [0, 10, 39, sealed.length - 1]) {
    assert.throws(
      () => open(keys, sealed.subarray(0, cut), Buffer.from('blob'), 'abc123'),
      (e) => assertCode(e, 'OBJECT_CORRUPT'),
    );
  }
});

test('encryption: the gear table is secret per repository and stable for one', () => {
  const master = randomBytes(32);
  const one = secretGearTable(deriveKeys(master, 'd'.repeat(32)));
  assert.deepEqual(secretGearTable(deriveKeys(master, 'd'.repeat(32))), one);
  const other = secretGearTable(deriveKeys(randomBytes(32), 'd'.repeat(32)));
  assert.equal(one.length, 256);
  assert.ok(one.some((v, i) => v !== other[i]));
  // Entries spread over the int32 range (a constant table would cut nowhere or everywhere).
  assert.equal(new Set(one).size, 256);
  assert.ok(one.some((v) => v < 0) && one.some((v) => v > 0));
});

test('encryption: two copies of a key file merge: slots added on either side stay, a slot removed on one is not brought back, keyring slots open', async () => {
  const { master, keyFile: base } = await createKeyFile(
    { kind: 'passphrase', passphrase: 'one' },
    FAST,
  );
  const ours = await addSlot(base, master, { kind: 'keyfile', key: randomBytes(64) }, FAST);
  const ringKey = randomBytes(32);
  const theirs = await addSlot(base, master, { kind: 'keyring', key: ringKey }, FAST);
  const merged = mergeKeyFiles(ours.keyFile, theirs.keyFile);
  assert.deepEqual(
    merged.slots.map((slot) => slot.id),
    [base.slots[0]!.id, ours.slot.id, theirs.slot.id],
  );
  assert.ok(sameKeyFile(merged, mergeKeyFiles(theirs.keyFile, ours.keyFile)));
  assert.ok(!sameKeyFile(merged, ours.keyFile));
  assert.deepEqual(await unlock(merged, { kind: 'keyring', key: ringKey }), master);
  await assert.rejects(unlock(merged, { kind: 'keyring', key: randomBytes(32) }), (e) =>
    assertCode(e, 'WRONG_KEY', /wrong keyring key/),
  );

  // Removed on our side: merging with their older copy does not bring it back.
  const removed = removeSlot(merged, ours.slot.id);
  assert.deepEqual(removed.retired, [ours.slot.id]);
  const again = mergeKeyFiles(removed, ours.keyFile);
  assert.ok(!again.slots.some((slot) => slot.id === ours.slot.id));
  assert.deepEqual(parseKeyFile(JSON.parse(JSON.stringify(again))), again);

  // Everything removed on one side or the other, or another repository: refused.
  const onlyBase = removeSlot(removeSlot(merged, theirs.slot.id), ours.slot.id);
  const otherSide = removeSlot(merged, base.slots[0]!.id);
  assert.throws(
    () => mergeKeyFiles(onlyBase, otherSide),
    (e) => assertCode(e, 'LAST_KEY'),
  );
  const { keyFile: stranger } = await createKeyFile({ kind: 'passphrase', passphrase: 'x' }, FAST);
  assert.throws(
    () => mergeKeyFiles(base, stranger),
    (e) => assertCode(e, 'OTHER_KEYS'),
  );
  assert.throws(
    () => parseKeyFile({ ...base, retired: ['../../etc'] }),
    (e) => assertCode(e, 'BAD_KEY_FILE', /removed slots/),
  );
});
