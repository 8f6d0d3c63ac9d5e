import type { Command } from 'commander';
import { MediaGitError } from '../../errors.ts';
import { checkoutConflictSide } from '../../repo/merge.ts';
import { restore } from '../../repo/restore.ts';
import type { Cli } from '../context.ts';
import { progressReporter } from '../progress.ts';

export function register(program: Command, cli: Cli): void {
  // As in Git, the last of --ours and --theirs wins.
  let side: 'ours' | 'theirs' | undefined;
  program
    .command('restore')
    .on('option:ours', () => (side = 'ours'))
    .on('option:theirs', () => (side = 'theirs'))
    .description(
      'Restore working tree files (from the index) or index entries (--staged, from HEAD)',
    )
    .argument('[pathspec...]', 'files or directories to restore')
    .option('-s, --source <tree>', 'restore from this commit')
    .option('-S, --staged', 'restore the index')
    .option('-W, --worktree', 'restore the working tree (the default)')
    .option('--ours', 'for unmerged paths: write our version to the working tree')
    .option('--theirs', 'for unmerged paths: write their version to the working tree')
    .option('-q, --quiet', 'print nothing but errors')
    .action(
      async (
        paths: string[],
        opts: {
          source?: string;
          staged?: boolean;
          worktree?: boolean;
          quiet?: boolean;
          ours?: boolean;
          theirs?: boolean;
        },
      ) => {
        if (side !== undefined) {
          if (opts.staged) {
            throw new MediaGitError(
              'RESTORE_USAGE',
              "'--ours' or '--theirs' cannot be used with --staged",
              { kind: 'usage' },
            );
          }
          if (paths.length === 0) {
            throw new MediaGitError('NO_PATHS', 'you must specify path(s) to restore', {
              kind: 'usage',
            });
          }
          await checkoutConflictSide(await cli.openRepo(), side, paths, cli.cwd);
          return;
        }
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
