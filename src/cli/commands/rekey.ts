/**
 * `rekey --full`: re-encrypts an encrypted repository's whole history under
 * a new master key and repository ID (repo/rekey.ts; docs/encryption.md,
 * "Rekeying"). The new key file has one slot, for the secret that opened
 * the repository (a keyring slot gets a new keyring key); the other slots
 * must be added again. A rekey that was interrupted is finished by running
 * it again.
 */
import { randomBytes } from 'node:crypto';
import type { Command } from 'commander';
import { MediaGitError } from '../../errors.ts';
import { finishRekey, rekeyFull, rekeyInterrupted } from '../../repo/rekey.ts';
import { needsKey, unlockMaster } from '../../repo/keys.ts';
import { Repository } from '../../repo/repository.ts';
import type { KeyFile, SlotSecret } from '../../security/encryption.ts';
import { printJson, type Cli } from '../context.ts';
import { storeKeyringSlotKey, testKdf } from '../secrets.ts';

export function register(program: Command, cli: Cli): void {
  program
    .command('rekey')
    .description(
      'Re-encrypt the whole history under a new master key (a history rewrite: every object ID changes)',
    )
    .option(
      '--full',
      'required: re-encrypt every object (to change only a secret, use `key rotate`)',
    )
    .option('--json', 'print the result as JSON')
    .action(async (opts: { full?: boolean; json?: boolean }) => {
      if (opts.full !== true) {
        throw new MediaGitError(
          'USAGE',
          'rekey needs --full: it re-encrypts every object and changes every ID (to replace only a passphrase or key file, use `mediagit key rotate`)',
          { kind: 'usage' },
        );
      }
      const found = await Repository.discover(cli.cwd, {
        ...cli.repoContext,
        locked: true,
        finishingRekey: true,
      });
      const secrets = cli.repoContext.secrets;
      if (secrets === undefined) throw needsKey();
      if (rekeyInterrupted(found.gitDir)) {
        const result = await finishRekey(found.gitDir, secrets);
        if (opts.json) return printJson(cli, result);
        cli.err(`finished the interrupted rekey: repository ${result.repository}`);
        return;
      }
      if (!found.encrypted) {
        throw new MediaGitError(
          'REKEY_REFUSED',
          'rekey --full: this repository is not encrypted (`init --encrypt` makes one); nothing was changed',
          { kind: 'user', data: { exitCode: 128 } },
        );
      }
      const repo = await cli.openRepo();
      // The secret that opened the repository opens the new key file too; a
      // keyring slot gets a new key, kept in the keyring under the new IDs.
      const { slot: openedSlot } = await unlockMaster(repo.gitDir, secrets);
      const opened = await secrets('unlock');
      const secret: SlotSecret =
        opened.kind === 'keyring' ? { kind: 'keyring', key: randomBytes(32) } : opened;
      // A count of commits, on a terminal only (progress.ts counts bytes).
      const tty = process.stderr.isTTY === true && !cli.env['CI'];
      let shownAt = 0;
      const progress = (done: number, total: number): void => {
        if (!tty || (done < total && Date.now() - shownAt < 100)) return;
        shownAt = Date.now();
        process.stderr.write(`\rRe-encrypting commits: ${done}/${total}\x1b[K`);
      };
      const keyFileMade = async (keyFile: KeyFile): Promise<void> => {
        if (secret.kind !== 'keyring') return;
        const nothing = 'nothing was changed';
        storeKeyringSlotKey(cli.env, keyFile.repository, keyFile.slots[0]!.id, secret.key, nothing);
      };
      let result;
      try {
        result = await rekeyFull(repo, {
          secret,
          openedSlot,
          kdf: testKdf(cli.env),
          keyFileMade,
          onProgress: progress,
        });
      } finally {
        if (shownAt > 0) process.stderr.write('\r\x1b[K');
      }
      if (opts.json) return printJson(cli, result);
      cli.err(
        `re-encrypted ${result.commits} commit(s) and ${result.files} file version(s) under a new master key; ${result.refs} ref(s) rewritten`,
      );
      cli.err(`new repository ID ${result.repository}: every object ID changed`);
      if (result.dropped.length > 0) {
        cli.err(
          `removed ${result.dropped.length} remote-tracking ref(s): the remotes hold the old repository; push to a new, empty one`,
        );
      }
      if (result.slotsLeft.length > 0) {
        cli.err(
          `key slot(s) not carried over (their secrets are not known here): ${result.slotsLeft.join(', ')}; add them again with \`mediagit key add\``,
        );
      }
    });
}
