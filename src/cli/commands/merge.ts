import type { Command } from 'commander';
import { MediaGitError } from '../../errors.ts';
import { commit } from '../../repo/commit.ts';
import { abortMerge, merge } from '../../repo/merge.ts';
import { readMergeState } from '../../repo/merge-state.ts';
import { shortId } from '../../repo/revision.ts';
import type { Cli } from '../context.ts';
import { progressReporter } from '../progress.ts';
import { printUnmergedRefusal } from '../unmerged-refusal.ts';
import { addStrategyOption, mediaMergeAllowed } from '../strategy-options.ts';

export function register(program: Command, cli: Cli): void {
  const command = program
    .command('merge')
    .description('Join another commit into the current branch (fast-forward or three-way merge)')
    .argument('[commits...]', 'the branches, tags or commits to merge (several: an octopus merge)')
    .option('--ff', 'fast-forward when possible (the default)')
    .option('--no-ff', 'always create a merge commit')
    .option('--ff-only', 'refuse unless the merge is a fast-forward')
    .option('-m, --message <msg>', 'the merge commit message')
    .option('--abort', 'give up a merge that stopped on conflicts, back to where it started')
    .option('--continue', 'conclude a merge whose conflicts are resolved (commits it)')
    .option('-q, --quiet', 'print nothing but errors')
    .option('--no-edit', 'take the merge message as it is (MediaGit never opens an editor for it)');
  addStrategyOption(command).action(
    async (
      revs: string[],
      opts: {
        ff?: boolean;
        ffOnly?: boolean;
        message?: string;
        quiet?: boolean;
        abort?: boolean;
        continue?: boolean;
        strategyOption?: string[];
      },
    ) => {
      const media = mediaMergeAllowed(opts.strategyOption);
      if (opts.abort || opts.continue) {
        if (revs.length > 0 || (opts.abort && opts.continue)) {
          throw new MediaGitError('MERGE_USAGE', '--abort and --continue take no commit', {
            kind: 'usage',
          });
        }
        const repo = await cli.openRepo();
        // Only a merge: a stopped cherry-pick, revert or rebase has its own
        // --abort and --continue, and Git's merge says so.
        const merging = (await readMergeState(repo))?.operation === 'merge';
        if (opts.abort) {
          if (!merging) {
            throw new MediaGitError(
              'NO_MERGE',
              'There is no merge to abort (MERGE_HEAD missing).',
              { kind: 'conflict' },
            );
          }
          await abortMerge(repo);
          return;
        }
        if (!merging) {
          throw new MediaGitError(
            'NO_MERGE',
            'There is no merge in progress (MERGE_HEAD missing).',
            {
              kind: 'conflict',
            },
          );
        }
        const result = await commit(repo, { cwd: cli.cwd, message: opts.message }).catch(
          (error: unknown) => printUnmergedRefusal(cli, error),
        );
        if (!opts.quiet)
          cli.out(`[${result.branch ?? 'detached HEAD'} ${shortId(result.id)}] ${result.subject}`);
        return;
      }
      const [rev, ...more] = revs;
      if (rev === undefined) {
        throw new MediaGitError('MERGE_USAGE', 'merge needs a commit to merge', {
          kind: 'usage',
        });
      }
      if (opts.ffOnly && opts.ff === false) {
        throw new MediaGitError('MERGE_USAGE', '--ff-only and --no-ff are incompatible', {
          kind: 'usage',
        });
      }
      const repo = await cli.openRepo();
      const progress = progressReporter(cli, 'Updating files', { quiet: opts.quiet === true });
      try {
        const result = await merge(repo, {
          rev,
          more,
          noFastForward: opts.ff === false,
          fastForwardOnly: opts.ffOnly === true,
          message: opts.message,
          media,
          onProgress: progress.update,
        }).catch((error: unknown) => {
          progress.stop();
          return printUnmergedRefusal(cli, error);
        });
        progress.stop();
        if (opts.quiet) return;
        if (result.outcome === 'up-to-date') cli.out('Already up to date.');
        else if (result.outcome === 'fast-forward') {
          if (result.from) cli.out(`Updating ${shortId(result.from)}..${shortId(result.to)}`);
          cli.out('Fast-forward');
        } else cli.out(`Merge made by the '${more.length > 0 ? 'octopus' : 'mediagit'}' strategy.`);
      } finally {
        progress.stop();
      }
    },
  );
}
