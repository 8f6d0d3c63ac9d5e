/**
 * `key list | add | remove | rotate`: the key slots of an encrypted
 * repository (docs/encryption.md). Each needs a secret that opens the
 * repository (secrets.ts); `add` and `rotate` take the new slot's secret
 * from `--new-passphrase-file`, `--new-key-file` or the terminal.
 */
import type { Command } from 'commander';
import { MediaGitError } from '../../errors.ts';
import { readKeyFile, unlockMaster, updateKeyFile } from '../../repo/keys.ts';
import { Repository } from '../../repo/repository.ts';
import { addSlot, removeSlot, type KeySlot } from '../../security/encryption.ts';
import { printJson, type Cli } from '../context.ts';
import { secretSource, testKdf } from '../secrets.ts';

interface NewSecretOptions {
  readonly newPassphraseFile?: string;
  readonly newKeyFile?: string;
}

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
    .description('Add a key slot for a new passphrase or key file')
    .option('--new-passphrase-file <file>', "the new slot's passphrase, from a file")
    .option('--new-key-file <file>', 'the new slot is this key file (32 bytes or more)')
    .action(async (opts: NewSecretOptions) => {
      const { gitDir, master } = await unlocked(cli);
      const secret = await newSecret(cli, opts);
      let slot: KeySlot | undefined;
      await updateKeyFile(gitDir, async (keyFile) => {
        const added = await addSlot(keyFile, master, secret, testKdf(cli.env));
        slot = added.slot;
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
      await updateKeyFile(gitDir, (keyFile) => removeSlot(keyFile, id));
      cli.out(`removed key slot ${id}`);
    });
  key
    .command('rotate')
    .description(
      'Replace the slot that opens the repository with a new one (new salt and secret); the master key and objects stay',
    )
    .option('--new-passphrase-file <file>', "the new slot's passphrase, from a file")
    .option('--new-key-file <file>', 'the new slot is this key file (32 bytes or more)')
    .action(async (opts: NewSecretOptions) => {
      const { gitDir, master, slot } = await unlocked(cli);
      const secret = await newSecret(cli, opts);
      let added: KeySlot | undefined;
      // One write: the new slot is in the file before the old one is out.
      await updateKeyFile(gitDir, async (keyFile) => {
        const grown = await addSlot(keyFile, master, secret, testKdf(cli.env));
        added = grown.slot;
        return removeSlot(grown.keyFile, slot);
      });
      cli.out(`key slot ${slot} replaced by ${added!.id} (${added!.kind})`);
    });
}

async function unlocked(cli: Cli): Promise<{ gitDir: string; master: Buffer; slot: string }> {
  const gitDir = await encryptedGitDir(cli);
  const { master, slot } = await unlockMaster(gitDir, cli.repoContext.secrets);
  return { gitDir, master, slot };
}

/** The repository's folder, found without unlocking it (that would ask for the secret twice). */
async function encryptedGitDir(cli: Cli): Promise<string> {
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
  return repo.gitDir;
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

async function newSecret(cli: Cli, opts: NewSecretOptions) {
  if (opts.newPassphraseFile !== undefined && opts.newKeyFile !== undefined) {
    throw new MediaGitError(
      'USAGE',
      '--new-passphrase-file and --new-key-file exclude each other',
      {
        kind: 'usage',
      },
    );
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
