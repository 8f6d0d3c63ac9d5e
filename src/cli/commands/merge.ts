import type { Command } from 'commander';
import { MediaGitError } from '../../errors.ts';
import { merge } from '../../repo/merge.ts';
import { shortId } from '../../repo/revision.ts';
import type { Cli } from '../context.ts';
import { progressReporter } from '../progress.ts';

export function register(program: Command, cli: Cli): void {
  program
    .command('merge')
    .description('Join another commit into the current branch (fast-forward or three-way merge)')
    .argument('<commit>', 'the branch, tag or commit to merge')
    .option('--ff', 'fast-forward when possible (the default)')
    .option('--no-ff', 'always create a merge commit')
    .option('--ff-only', 'refuse unless the merge is a fast-forward')
    .option('-m, --message <msg>', 'the merge commit message')
    .option('-q, --quiet', 'print nothing but errors')
    .action(
      async (
        rev: string,
        opts: { ff?: boolean; ffOnly?: boolean; message?: string; quiet?: boolean },
      ) => {
        if (opts.ffOnly && opts.ff === false) {
          throw new MediaGitError('MERGE_USAGE', '--ff-only and --no-ff are incompatible', {
            kind: 'usage',
          });
        }
        const repo = await cli.openRepo();
        const progress = progressReporter(cli, 'Updating files');
        try {
          const result = await merge(repo, {
            rev,
            noFastForward: opts.ff === false,
            fastForwardOnly: opts.ffOnly === true,
            message: opts.message,
            onProgress: progress.update,
          });
          progress.stop();
          if (opts.quiet) return;
          if (result.outcome === 'up-to-date') cli.out('Already up to date.');
          else if (result.outcome === 'fast-forward') {
            if (result.from) cli.out(`Updating ${shortId(result.from)}..${shortId(result.to)}`);
            cli.out('Fast-forward');
          } else cli.out("Merge made by the 'ort' strategy.");
        } finally {
          progress.stop();
        }
      },
    );
}
