/**
 * An encrypted repository's key file (`keys.json` in its `.mediagit`
 * folder; docs/encryption.md): reading, writing and unlocking it.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { hasErrnoCode, MediaGitError } from '../errors.ts';
import { ObjectCipher } from '../odb/object-cipher.ts';
import { parseKeyFile, unlockSlot, type KeyFile, type SlotSecret } from '../security/encryption.ts';
import { LockFile, writeFileAtomic } from '../storage/durable-file.ts';

export const KEY_FILE = 'keys.json';

/**
 * What a caller answers when a repository asks for a key: a passphrase, a
 * key file's bytes, or a keyring slot's key. `keyFile` is the repository's
 * when unlocking (its keyring slots say what to look up).
 */
export type SecretSource = (purpose: SecretPurpose, keyFile?: KeyFile) => Promise<SlotSecret>;

/** Why a secret is asked for: to open a repository, or for a new key slot. */
export type SecretPurpose = 'unlock' | 'new';

export async function readKeyFile(gitDir: string): Promise<KeyFile> {
  let text: string;
  try {
    text = await fs.readFile(path.join(gitDir, KEY_FILE), 'utf8');
  } catch (error) {
    if (!hasErrnoCode(error, 'ENOENT')) throw error;
    throw new MediaGitError(
      'BAD_KEY_FILE',
      `the repository is encrypted, but its key file ${path.join(gitDir, KEY_FILE)} is missing`,
      { kind: 'corrupt' },
    );
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new MediaGitError('BAD_KEY_FILE', "the repository's key file is invalid: not JSON", {
      kind: 'corrupt',
    });
  }
  return parseKeyFile(value);
}

/**
 * Changes the key file under its lock (`keys.json.lock`, as Git locks its
 * config): read, changed by `change`, written in place with fsync and
 * rename. Two `key` commands at once cannot lose each other's slots; the
 * second is refused while the first holds the lock.
 */
export async function updateKeyFile(
  gitDir: string,
  change: (keyFile: KeyFile) => KeyFile | Promise<KeyFile>,
): Promise<KeyFile> {
  const file = path.join(gitDir, KEY_FILE);
  let lock: LockFile;
  try {
    lock = await LockFile.acquire(file);
  } catch (error) {
    if (hasErrnoCode(error, 'EEXIST')) {
      throw new MediaGitError(
        'KEYS_LOCKED',
        `cannot lock the key file: ${file}.lock exists; another mediagit process may be running (remove the file if it crashed)`,
        { kind: 'conflict' },
      );
    }
    throw error;
  }
  try {
    const changed = await change(await readKeyFile(gitDir));
    await lock.commit(Buffer.from(`${JSON.stringify(changed, null, 2)}\n`));
    return changed;
  } finally {
    await lock.release();
  }
}

/** Writes the key file of a repository being created (temp file, fsync, rename). */
export async function writeKeyFile(gitDir: string, keyFile: KeyFile): Promise<void> {
  await writeFileAtomic(
    path.join(gitDir, KEY_FILE),
    [Buffer.from(`${JSON.stringify(keyFile, null, 2)}\n`)],
    { tmpDir: path.join(gitDir, 'tmp') },
  );
}

/** The master key, unlocked with the secret `secrets` gives; WRONG_KEY or NEEDS_KEY otherwise. */
export async function unlockMaster(
  gitDir: string,
  secrets: SecretSource | undefined,
): Promise<{ master: Buffer; keyFile: KeyFile; slot: string }> {
  const keyFile = await readKeyFile(gitDir);
  if (secrets === undefined) throw needsKey();
  return { ...(await unlockSlot(keyFile, await secrets('unlock', keyFile))), keyFile };
}

/** The object cipher of an encrypted repository, unlocked. */
export async function openCipher(
  gitDir: string,
  secrets: SecretSource | undefined,
): Promise<ObjectCipher> {
  const { master, keyFile } = await unlockMaster(gitDir, secrets);
  return new ObjectCipher(master, keyFile.repository);
}

export function needsKey(): MediaGitError {
  return new MediaGitError(
    'NEEDS_KEY',
    'this repository is encrypted: give its passphrase on the terminal, in MEDIAGIT_PASSPHRASE or in a file named by MEDIAGIT_PASSPHRASE_FILE (or a key file in MEDIAGIT_KEY_FILE)',
    { kind: 'user', data: { exitCode: 128 } },
  );
}
