import type { Command } from 'commander';
import { restore } from '../../repo/restore.ts';
import type { Cli } from '../context.ts';
import { progressReporter } from '../progress.ts';

export function register(program: Command, cli: Cli): void {
  program
    .command('restore')
    .description(
      'Restore working tree files (from the index) or index entries (--staged, from HEAD)',
    )
    .argument('[pathspec...]', 'files or directories to restore')
    .option('-s, --source <tree>', 'restore from this commit')
    .option('-S, --staged', 'restore the index')
    .option('-W, --worktree', 'restore the working tree (the default)')
    .option('-q, --quiet', 'print nothing but errors')
    .action(
      async (
        paths: string[],
        opts: { source?: string; staged?: boolean; worktree?: boolean; quiet?: boolean },
      ) => {
        const repo = await cli.openRepo();
        const progress = progressReporter(cli, 'Restoring', { quiet: opts.quiet === true });
        try {
          await restore(repo, {
            paths,
            cwd: cli.cwd,
            source: opts.source,
            staged: opts.staged === true,
            worktree: opts.worktree === true,
            onProgress: progress.update,
          });
        } finally {
          progress.stop();
        }
      },
    );
}
