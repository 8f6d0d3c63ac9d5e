import type { Command } from 'commander';
import type { Cli } from '../context.ts';
import { init } from '../../repo/init.ts';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { getConfigValue, readConfigFile } from '../../config/config.ts';
import { MediaGitError } from '../../errors.ts';
import { BackendRepo } from '../../protocol/backend-repo.ts';
import { assertBranchName } from '../../repo/refs.ts';
import { isBackendUrl, openBackend } from '../../storage/open.ts';
import { storageSettings } from '../storage-settings.ts';
import { secretSource, testKdf } from '../secrets.ts';

async function defaultBranch(cli: Cli): Promise<string> {
  const configured = getConfigValue(
    await readConfigFile(cli.repoContext.globalConfigPath ?? ''),
    'init.defaultBranch',
  );
  return typeof configured === 'string' ? configured : 'main';
}

export function register(program: Command, cli: Cli): void {
  program
    .command('init')
    .description('Create an empty MediaGit repository or reinitialize an existing one')
    .argument(
      '[directory]',
      'where to create it (with --bare, also a storage URL: s3://, az://, gs://)',
      '.',
    )
    .option('--bare', 'create a bare repository (no working tree)')
    .option('-b, --initial-branch <name>', 'name of the first branch')
    .option('-q, --quiet', 'print nothing')
    .option('--encrypt', 'encrypt every object at rest (docs/encryption.md)')
    .option(
      '--passphrase-file <file>',
      "with --encrypt: the first key slot's passphrase, from a file",
    )
    .option(
      '--key-file <file>',
      'with --encrypt: the first key slot is this key file (32 bytes or more)',
    )
    .action(
      async (
        directory: string,
        opts: {
          bare?: boolean;
          initialBranch?: string;
          quiet?: boolean;
          encrypt?: boolean;
          passphraseFile?: string;
          keyFile?: string;
        },
      ) => {
        if (!opts.encrypt && (opts.passphraseFile !== undefined || opts.keyFile !== undefined)) {
          throw new MediaGitError('USAGE', '--passphrase-file and --key-file go with --encrypt', {
            kind: 'usage',
          });
        }
        if (opts.encrypt && isBackendUrl(directory) && !directory.startsWith('file://')) {
          throw new MediaGitError(
            'NOT_IMPLEMENTED',
            'init --bare --encrypt on a storage URL: encrypted server repositories are not implemented yet (docs/encryption.md); nothing was created',
            { kind: 'user', data: { exitCode: 128 } },
          );
        }
        if (isBackendUrl(directory) && !directory.startsWith('file://')) {
          if (!opts.bare) {
            throw new MediaGitError(
              'INIT_URL_NOT_BARE',
              `${directory} is a storage URL: only a bare repository can live there (use --bare)`,
              { kind: 'usage' },
            );
          }
          const backend = openBackend(directory, await storageSettings(cli.env));
          const branch = opts.initialBranch ?? (await defaultBranch(cli));
          assertBranchName(branch);
          const { created } = await BackendRepo.initialize(backend, branch);
          if (!opts.quiet) {
            const what = created ? 'Initialized empty' : 'Reinitialized existing';
            cli.out(`${what} MediaGit repository in ${backend.url}/`);
          }
          return;
        }
        const target = directory.startsWith('file://') ? fileURLToPath(directory) : directory;
        const result = await init(path.resolve(cli.cwd, target), {
          bare: opts.bare === true,
          initialBranch: opts.initialBranch,
          context: cli.repoContext,
          encrypt: opts.encrypt
            ? { secret: await secretSource(cli.env, opts)('new'), kdf: testKdf(cli.env) }
            : undefined,
        });
        if (!opts.quiet) {
          const what = result.reinitialized ? 'Reinitialized existing' : 'Initialized empty';
          cli.out(`${what} MediaGit repository in ${result.gitDir}/`);
        }
      },
    );
}
