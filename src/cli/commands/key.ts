/**
 * `key list | add | remove | rotate`: the key slots of an encrypted
 * repository (docs/encryption.md). Each needs a secret that opens the
 * repository (secrets.ts); `add` and `rotate` take the new slot's secret
 * from `--new-passphrase-file`, `--new-key-file` or the terminal, or with
 * `--keyring` make a random key and keep it in the OS keyring (keyring.ts).
 */
import { randomBytes } from 'node:crypto';
import type { Command } from 'commander';
import { MediaGitError } from '../../errors.ts';
import { openTransport } from '../../protocol/open-transport.ts';
import { pushKeySlots } from '../../protocol/encrypted.ts';
import { readKeyFile, unlockMaster, updateKeyFile } from '../../repo/keys.ts';
import { findRemote } from '../../repo/remote.ts';
import { Repository } from '../../repo/repository.ts';
import {
  addSlot,
  removeSlot,
  type KeyFile,
  type KeySlot,
  type SlotSecret,
} from '../../security/encryption.ts';
import { printJson, type Cli } from '../context.ts';
import { transportOptions } from '../credentials.ts';
import { keyringAvailable, keyringClear } from '../keyring.ts';
import { keyringSlotAttributes, secretSource, storeKeyringSlotKey, testKdf } from '../secrets.ts';

interface NewSecretOptions {
  readonly newPassphraseFile?: string;
  readonly newKeyFile?: string;
  readonly keyring?: boolean;
}

const KEYRING_OPTION = [
  '--keyring',
  "the new slot's key is made at random and kept in the OS keyring (Secret Service), which then opens the repository without asking",
] as const;

export function register(program: Command, cli: Cli): void {
  const key = program
    .command('key')
    .description("Manage an encrypted repository's key slots (passphrases and key files)");
  key
    .command('list')
    .description('List the key slots')
    .option('--json', 'print them as JSON')
    .action(async (opts: { json?: boolean }) => {
      const { gitDir, slot } = await unlocked(cli);
      const slots = (await readKeyFile(gitDir)).slots.map((s) => describe(s, s.id === slot));
      if (opts.json) printJson(cli, slots);
      else {
        for (const s of slots) {
          const kdf = s.kdf
            ? ` argon2id m=${s.kdf.memory}KiB t=${s.kdf.passes} p=${s.kdf.parallelism}`
            : '';
          cli.out(`${s.current ? '*' : ' '} ${s.id} ${s.kind.padEnd(10)} ${s.created}${kdf}`);
        }
      }
    });
  key
    .command('add')
    .description('Add a key slot for a new passphrase, key file or OS keyring key')
    .option('--new-passphrase-file <file>', "the new slot's passphrase, from a file")
    .option('--new-key-file <file>', 'the new slot is this key file (32 bytes or more)')
    .option(...KEYRING_OPTION)
    .action(async (opts: NewSecretOptions) => {
      const { gitDir, master } = await unlocked(cli);
      const secret = await newSecret(cli, opts);
      let slot: KeySlot | undefined;
      await updateKeyFile(gitDir, async (keyFile) => {
        const added = await addSlot(keyFile, master, secret, testKdf(cli.env));
        slot = added.slot;
        keepInKeyring(cli, added.keyFile, added.slot, secret);
        return added.keyFile;
      });
      cli.out(`added key slot ${slot!.id} (${slot!.kind})`);
    });
  key
    .command('remove')
    .description('Remove a key slot (never the last one)')
    .argument('<id>', 'the slot, as `key list` shows it')
    .action(async (id: string) => {
      const { gitDir, slot } = await unlocked(cli);
      if (id === slot) {
        throw new MediaGitError(
          'CURRENT_KEY',
          `key slot ${id} is the one that opened the repository now: open it with another key to remove this one`,
          { kind: 'usage', data: { id } },
        );
      }
      const changed = await updateKeyFile(gitDir, (keyFile) => removeSlot(keyFile, id));
      forgetInKeyring(cli, changed.repository, [id]);
      cli.out(`removed key slot ${id}`);
    });
  key
    .command('rotate')
    .description(
      'Replace the slot that opens the repository with a new one (new salt and secret); the master key and objects stay',
    )
    .option('--new-passphrase-file <file>', "the new slot's passphrase, from a file")
    .option('--new-key-file <file>', 'the new slot is this key file (32 bytes or more)')
    .option(...KEYRING_OPTION)
    .action(async (opts: NewSecretOptions) => {
      const { gitDir, master, slot } = await unlocked(cli);
      const secret = await newSecret(cli, opts);
      let added: KeySlot | undefined;
      // One write: the new slot is in the file before the old one is out.
      const rotated = await updateKeyFile(gitDir, async (keyFile) => {
        const grown = await addSlot(keyFile, master, secret, testKdf(cli.env));
        added = grown.slot;
        keepInKeyring(cli, grown.keyFile, grown.slot, secret);
        return removeSlot(grown.keyFile, slot);
      });
      forgetInKeyring(cli, rotated.repository, [slot]);
      cli.out(`key slot ${slot} replaced by ${added!.id} (${added!.kind})`);
    });
  key
    .command('push')
    .description(
      "Publish the key slots to a remote, merged with the remote's (slots added on either side stay, removed ones go)",
    )
    .argument('[remote]', 'a remote name or URL', 'origin')
    .option('--json', 'print what changed as JSON')
    .action(async (name: string, opts: { json?: boolean }) => {
      const { repo, gitDir, slot } = await unlocked(cli);
      const url = (await findRemote(repo, name))?.url ?? name;
      const transport = await openTransport(url, await transportOptions(cli, url));
      try {
        const pushed = await pushKeySlots(gitDir, transport, slot);
        if (opts.json) return printJson(cli, { remote: name, ...pushed });
        if (pushed.fetched.length > 0) {
          cli.err(`took key slot(s) ${pushed.fetched.join(', ')} from ${name}`);
        }
        if (pushed.added.length === 0 && pushed.removed.length === 0) {
          cli.err('Everything up-to-date');
          return;
        }
        const parts = [
          ...(pushed.added.length > 0 ? [`added ${pushed.added.join(', ')}`] : []),
          ...(pushed.removed.length > 0 ? [`removed ${pushed.removed.join(', ')}`] : []),
        ];
        cli.err(`key slots on ${name}: ${parts.join('; ')}`);
      } finally {
        await transport.close();
      }
    });
}

async function unlocked(
  cli: Cli,
): Promise<{ repo: Repository; gitDir: string; master: Buffer; slot: string }> {
  const repo = await encryptedRepository(cli);
  const { master, slot } = await unlockMaster(repo.gitDir, cli.repoContext.secrets);
  return { repo, gitDir: repo.gitDir, master, slot };
}

/** The repository, opened without unlocking it (that would ask for the secret twice). */
async function encryptedRepository(cli: Cli): Promise<Repository> {
  const repo = await Repository.discover(cli.cwd, { ...cli.repoContext, locked: true });
  if (!repo.encrypted) {
    throw new MediaGitError(
      'NOT_ENCRYPTED',
      'this repository is not encrypted: it has no key slots',
      {
        kind: 'usage',
      },
    );
  }
  return repo;
}

function describe(slot: KeySlot, current: boolean) {
  return {
    id: slot.id,
    kind: slot.kind,
    created: slot.created,
    current,
    ...(slot.kdf
      ? {
          kdf: {
            memory: slot.kdf.memory,
            passes: slot.kdf.passes,
            parallelism: slot.kdf.parallelism,
          },
        }
      : {}),
  };
}

/** A keyring slot's key into the OS keyring, before the key file names the slot. */
function keepInKeyring(cli: Cli, keyFile: KeyFile, slot: KeySlot, secret: SlotSecret): void {
  if (secret.kind !== 'keyring') return;
  storeKeyringSlotKey(cli.env, keyFile.repository, slot.id, secret.key, 'no slot was added');
}

/** Removes the keys of slots no longer in the key file from this machine's keyring. */
function forgetInKeyring(cli: Cli, repository: string, slots: readonly string[]): void {
  if (!keyringAvailable(cli.env)) return;
  for (const slot of slots) keyringClear(cli.env, keyringSlotAttributes(repository, slot));
}

async function newSecret(cli: Cli, opts: NewSecretOptions): Promise<SlotSecret> {
  const given = [opts.newPassphraseFile, opts.newKeyFile, opts.keyring].filter(
    (option) => option !== undefined,
  );
  if (given.length > 1) {
    throw new MediaGitError(
      'USAGE',
      '--new-passphrase-file, --new-key-file and --keyring exclude each other',
      { kind: 'usage' },
    );
  }
  if (opts.keyring === true) {
    if (!keyringAvailable(cli.env)) {
      throw new MediaGitError(
        'NO_KEYRING',
        'no OS keyring: --keyring needs secret-tool (libsecret) and a Secret Service on the session bus (DBUS_SESSION_BUS_ADDRESS); no slot was added',
        { kind: 'user', data: { exitCode: 128 } },
      );
    }
    return { kind: 'keyring', key: randomBytes(32) };
  }
  if (
    opts.newPassphraseFile === undefined &&
    opts.newKeyFile === undefined &&
    process.stdin.isTTY !== true
  ) {
    throw new MediaGitError(
      'NEEDS_KEY',
      'the new slot needs a secret: --new-passphrase-file, --new-key-file, or a terminal to ask on',
      { kind: 'usage' },
    );
  }
  // The environment's secret opened the repository; the new one comes only from here.
  return secretSource(
    {},
    { passphraseFile: opts.newPassphraseFile, keyFile: opts.newKeyFile },
  )('new');
}
