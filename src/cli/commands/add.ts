import type { Command } from 'commander';
import { add } from '../../repo/add.ts';
import type { Cli } from '../context.ts';
import { progressReporter } from '../progress.ts';

export function register(program: Command, cli: Cli): void {
  program
    .command('add')
    .description('Add file contents to the index (large files are chunked and deduplicated)')
    .argument('[pathspec...]', 'files or directories to add')
    .option('-A, --all', 'add, modify and remove index entries to match the whole working tree')
    .option('-u, --update', 'stage modified and deleted tracked files only')
    .option('-n, --dry-run', 'show what would be added without storing anything')
    .option('--no-chunking', 'store large files whole instead of as chunks')
    .option('--no-delta', 'never store new objects as deltas against similar earlier ones')
    .option('-v, --verbose', 'list every added file')
    .option('--sparse', 'also add untracked files outside the sparse-checkout patterns')
    .action(
      async (
        paths: string[],
        opts: {
          all?: boolean;
          update?: boolean;
          dryRun?: boolean;
          chunking: boolean;
          delta: boolean;
          verbose?: boolean;
          sparse?: boolean;
        },
      ) => {
        const repo = await cli.openRepo();
        const progress = progressReporter(cli, 'Adding');
        try {
          const result = await add(repo, {
            paths,
            all: opts.all === true,
            update: opts.update === true,
            dryRun: opts.dryRun === true,
            noChunking: !opts.chunking,
            noDelta: !opts.delta,
            cwd: cli.cwd,
            sparse: opts.sparse === true,
            onProgress: progress.update,
          });
          progress.stop();
          if (opts.dryRun || opts.verbose) {
            for (const p of result.added) cli.out(`add '${p}'`);
            for (const p of result.removed) cli.out(`remove '${p}'`);
          }
        } finally {
          progress.stop();
        }
      },
    );
}
