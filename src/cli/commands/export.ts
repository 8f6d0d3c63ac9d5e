import type { Command } from 'commander';
import { MediaGitError } from '../../errors.ts';
import { DEFAULT_LFS_THRESHOLD, exportGit } from '../../git/export.ts';
import { printJson, type Cli } from '../context.ts';
import { progressReporter } from '../progress.ts';

interface ExportFlags {
  git?: string;
  lfsThreshold?: number;
  quiet?: boolean;
  json?: boolean;
}

/** `10m`, `512k`, `1g` or bytes. */
function size(value: string): number {
  const match = /^(\d+)([kmg]?)i?b?$/i.exec(value.trim());
  if (!match) {
    throw new MediaGitError(
      'EXPORT_USAGE',
      `error: not a size: ${value} (bytes, or a number with k, m or g)`,
      {
        kind: 'usage',
        data: { exitCode: 129 },
      },
    );
  }
  const unit = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[
    match[2]!.toLowerCase() as '' | 'k' | 'm' | 'g'
  ];
  return Number(match[1]) * unit;
}

export function register(program: Command, cli: Cli): void {
  program
    .command('export')
    .description(
      "Write this repository's history as a Git repository, large files as Git LFS pointers with their content in .git/lfs/objects (docs/migrate-from-git-lfs.md)",
    )
    .requiredOption('--git <dir>', 'the Git repository to make (a new or empty folder)')
    .option(
      '--lfs-threshold <size>',
      `files this large or larger become Git LFS pointers (default ${DEFAULT_LFS_THRESHOLD / 1024 / 1024}m)`,
      size,
    )
    .option('-q, --quiet', 'print nothing but errors')
    .option('--json', 'print the result as JSON')
    .action(async (opts: ExportFlags) => {
      const repo = await cli.openRepo();
      const progress = progressReporter(cli, 'Exporting commits', {
        quiet: opts.quiet === true || opts.json === true,
      });
      let result;
      try {
        result = await exportGit(repo, {
          target: opts.git!.startsWith('/') ? opts.git! : `${cli.cwd}/${opts.git!}`,
          lfsThreshold: opts.lfsThreshold,
          onProgress: (event) => progress.update({ bytes: event.done, total: event.total }),
        });
      } finally {
        progress.stop();
      }
      if (opts.json) printJson(cli, result);
      else if (!opts.quiet) {
        cli.out(
          `Exported ${result.commits} commits, ${result.lfsObjects} Git LFS objects, ${result.refs} refs to ${opts.git}`,
        );
      }
    });
}
