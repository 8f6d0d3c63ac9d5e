/**
 * Where the CLI finds the secret of an encrypted repository
 * (docs/encryption.md), in restic's manner: a key file named by
 * MEDIAGIT_KEY_FILE, a passphrase file named by MEDIAGIT_PASSPHRASE_FILE,
 * the passphrase in MEDIAGIT_PASSPHRASE, then the OS keyring (when the
 * repository has a keyring slot whose key this machine's keyring holds),
 * or else asked on the terminal with echo off. Nothing here puts a secret
 * in process arguments, logs or error messages.
 */
import fs from 'node:fs/promises';
import { MediaGitError } from '../errors.ts';
import { needsKey, type SecretPurpose, type SecretSource } from '../repo/keys.ts';
import type { KdfParams, KeyFile, SlotSecret } from '../security/encryption.ts';
import { keyringAvailable, keyringLookup, keyringStore } from './keyring.ts';

/** A secret named on the command line (`--passphrase-file`, `--key-file`), which wins over the environment. */
export interface SecretFiles {
  readonly passphraseFile?: string | undefined;
  readonly keyFile?: string | undefined;
}

export function secretSource(env: NodeJS.ProcessEnv, files: SecretFiles = {}): SecretSource {
  // The secret that opens the repository is asked once per process (a paged
  // verb asks before its pager takes the terminal: main.ts).
  let unlocking: Promise<SlotSecret> | undefined;
  const find = findSecret(env, files);
  return (purpose, keyFile) => {
    if (purpose === 'new') return find(purpose);
    unlocking ??= find(purpose, keyFile);
    return unlocking;
  };
}

/** Whether the secret would be asked on the terminal: none is named on the command line or in the environment. */
export function secretFromTerminal(env: NodeJS.ProcessEnv): boolean {
  return (
    !env['MEDIAGIT_KEY_FILE'] &&
    !env['MEDIAGIT_PASSPHRASE_FILE'] &&
    !env['MEDIAGIT_PASSPHRASE'] &&
    process.stdin.isTTY === true &&
    process.stderr.isTTY === true
  );
}

function findSecret(env: NodeJS.ProcessEnv, files: SecretFiles): SecretSource {
  return async (purpose, keyFile) => {
    if (files.keyFile !== undefined) return readKeyFileSecret(files.keyFile);
    if (files.passphraseFile !== undefined) return readPassphraseFile(files.passphraseFile);
    if (env['MEDIAGIT_KEY_FILE']) return readKeyFileSecret(env['MEDIAGIT_KEY_FILE']);
    if (env['MEDIAGIT_PASSPHRASE_FILE']) return readPassphraseFile(env['MEDIAGIT_PASSPHRASE_FILE']);
    const given = env['MEDIAGIT_PASSPHRASE'];
    if (given !== undefined && given !== '') return { kind: 'passphrase', passphrase: given };
    const fromKeyring = keyFile === undefined ? undefined : keyringSecret(env, keyFile);
    if (fromKeyring !== undefined) return fromKeyring;
    if (process.stdin.isTTY === true && process.stderr.isTTY === true)
      return askOnTerminal(purpose);
    if (purpose === 'new') {
      throw new MediaGitError(
        'NEEDS_KEY',
        'a new key slot needs a secret: --passphrase-file, --key-file, MEDIAGIT_PASSPHRASE, MEDIAGIT_PASSPHRASE_FILE, MEDIAGIT_KEY_FILE, or a terminal to ask on; nothing was created',
        { kind: 'user', data: { exitCode: 128 } },
      );
    }
    throw needsKey();
  };
}

/** Where a keyring slot's key is kept: under its repository and slot. */
export const keyringSlotAttributes = (repository: string, slot: string) => ({
  service: 'mediagit-repository-key',
  repository,
  slot,
});

/**
 * Puts a keyring slot's key in the OS keyring, before the key file that
 * names the slot is written: KEYRING_FAILED (exit 128, `nothing` said of
 * what was left unchanged) when the keyring refuses.
 */
export function storeKeyringSlotKey(
  env: NodeJS.ProcessEnv,
  repository: string,
  slot: string,
  key: Buffer,
  nothing: string,
): void {
  const label = `MediaGit repository key ${repository} (slot ${slot})`;
  if (!keyringStore(env, label, keyringSlotAttributes(repository, slot), key.toString('base64'))) {
    throw new MediaGitError(
      'KEYRING_FAILED',
      `the OS keyring refused to store the key (is it locked?); ${nothing}`,
      { kind: 'user', data: { exitCode: 128 } },
    );
  }
}

/** The key of the first keyring slot of `keyFile` that this machine's keyring holds. */
function keyringSecret(env: NodeJS.ProcessEnv, keyFile: KeyFile): SlotSecret | undefined {
  const slots = keyFile.slots.filter((slot) => slot.kind === 'keyring');
  if (slots.length === 0 || !keyringAvailable(env)) return undefined;
  for (const slot of slots) {
    const stored = keyringLookup(env, keyringSlotAttributes(keyFile.repository, slot.id));
    if (stored !== undefined) return { kind: 'keyring', key: Buffer.from(stored, 'base64') };
  }
  return undefined;
}

async function readKeyFileSecret(file: string): Promise<SlotSecret> {
  const key = await readSecretFile(file, 'key file');
  if (key.length < 32) {
    throw new MediaGitError('BAD_KEY', `key file ${file} must hold at least 32 bytes`, {
      kind: 'usage',
    });
  }
  return { kind: 'keyfile', key };
}

/** A passphrase file's first line (a trailing newline is not part of it). */
async function readPassphraseFile(file: string): Promise<SlotSecret> {
  const text = (await readSecretFile(file, 'passphrase file')).toString('utf8');
  const passphrase = text.split(/\r?\n/)[0] ?? '';
  if (passphrase === '') {
    throw new MediaGitError('EMPTY_PASSPHRASE', `passphrase file ${file} is empty`, {
      kind: 'usage',
    });
  }
  return { kind: 'passphrase', passphrase };
}

async function readSecretFile(file: string, what: string): Promise<Buffer> {
  try {
    return await fs.readFile(file);
  } catch (error) {
    throw new MediaGitError('NO_SECRET_FILE', `cannot read ${what} ${file}`, {
      kind: 'usage',
      cause: error,
    });
  }
}

async function askOnTerminal(purpose: SecretPurpose): Promise<SlotSecret> {
  if (purpose === 'unlock') {
    return { kind: 'passphrase', passphrase: await askHidden('Enter passphrase: ') };
  }
  const passphrase = await askHidden('Enter new passphrase: ');
  if (passphrase === '') {
    throw new MediaGitError('EMPTY_PASSPHRASE', 'an empty passphrase is refused', {
      kind: 'usage',
    });
  }
  if ((await askHidden('Repeat new passphrase: ')) !== passphrase) {
    throw new MediaGitError('PASSPHRASE_MISMATCH', 'the passphrases do not match', {
      kind: 'usage',
    });
  }
  return { kind: 'passphrase', passphrase };
}

/** One line from the terminal, not echoed; Ctrl-C interrupts. */
function askHidden(prompt: string): Promise<string> {
  const stdin = process.stdin;
  return new Promise((resolve, reject) => {
    let chars: string[] = [];
    const finish = (): void => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
      process.stderr.write('\n');
    };
    const onData = (data: Buffer): void => {
      for (const ch of data.toString('utf8')) {
        if (ch === '\r' || ch === '\n') {
          finish();
          resolve(chars.join(''));
          return;
        }
        if (ch === '\u0003' || ch === '\u0004') {
          finish();
          reject(
            new MediaGitError('INTERRUPTED', 'interrupted', {
              kind: 'user',
              data: { exitCode: 130 },
            }),
          );
          return;
        }
        if (ch === '\u007f' || ch === '\b') chars = chars.slice(0, -1);
        else chars.push(ch);
      }
    };
    process.stderr.write(prompt);
    stdin.setRawMode(true);
    stdin.resume();
    stdin.on('data', onData);
  });
}

/**
 * Argon2id parameters for new passphrase slots: the default (64 MiB, 3
 * passes), unless MEDIAGIT_TEST_KDF=fast asks for the smallest ones a key
 * file accepts, so that test suites do not spend 0.3 s per command. The
 * slot records them; a real repository should never use it.
 */
export function testKdf(env: NodeJS.ProcessEnv): KdfParams | undefined {
  return env['MEDIAGIT_TEST_KDF'] === 'fast'
    ? { memory: 8192, passes: 1, parallelism: 1 }
    : undefined;
}
