import type { Command } from 'commander';
import { MediaGitError } from '../../errors.ts';
import { merge } from '../../repo/merge.ts';
import { refuseIfUnmerged } from '../../repo/merge-state.ts';
import { rebase } from '../../repo/rebase.ts';
import { Refs } from '../../repo/refs.ts';
import { readUpstream } from '../../repo/remote.ts';
import { shortId } from '../../repo/revision.ts';
import type { Cli } from '../context.ts';
import { addStrategyOption, mediaMergeAllowed } from '../strategy-options.ts';
import { progressReporter } from '../progress.ts';
import { reportFetch, runFetch } from './fetch.ts';
import { printUnmergedRefusal } from '../unmerged-refusal.ts';

export function register(program: Command, cli: Cli): void {
  const command = program
    .command('pull')
    .description('Fetch the upstream branch and integrate it (merge, or --rebase)')
    .argument('[remote]', 'remote name (default: the branch upstream remote)')
    .argument('[branch]', 'remote branch (default: the branch upstream)')
    .option('-r, --rebase', 'rebase the current branch onto the upstream instead of merging')
    .option('--ff-only', 'refuse unless the upstream is a fast-forward')
    .option('-q, --quiet', 'print only errors');
  addStrategyOption(command).action(
    async (
      remoteArg: string | undefined,
      branchArg: string | undefined,
      opts: { rebase?: boolean; ffOnly?: boolean; quiet?: boolean; strategyOption?: string[] },
    ) => {
      const media = mediaMergeAllowed(opts.strategyOption);
      const repo = await cli.openRepo();
      // Git refuses before it fetches anything.
      await refuseIfUnmerged(repo, 'pull').catch((error: unknown) =>
        printUnmergedRefusal(cli, error),
      );
      const head = await new Refs(repo).head();
      const current = head.branch?.slice('refs/heads/'.length);
      const upstream = current ? await readUpstream(repo, current) : undefined;
      const remote = remoteArg ?? upstream?.remote;
      const remoteBranch = branchArg
        ? `refs/heads/${branchArg}`
        : remoteArg === undefined || remoteArg === upstream?.remote
          ? upstream?.merge
          : undefined;
      if (remote === undefined || remoteBranch === undefined) {
        throw new MediaGitError(
          'NO_UPSTREAM',
          'There is no tracking information for the current branch: ' +
            '`mediagit pull <remote> <branch>`, or `mediagit branch -u <remote>/<branch>` first',
          { kind: 'usage' },
        );
      }
      const fetched = await runFetch(cli, repo, remote, {});
      if (!opts.quiet) reportFetch(cli, fetched);
      const target = fetched.refs[remoteBranch];
      if (target === undefined) {
        throw new MediaGitError('NO_REMOTE_BRANCH', `no such ref was fetched: ${remoteBranch}`, {
          kind: 'user',
        });
      }
      const progress = progressReporter(cli, 'Updating files', { quiet: opts.quiet === true });
      try {
        if (opts.rebase) {
          const outcome = await rebase(repo, { upstream: target });
          if (!opts.quiet) {
            cli.out(
              outcome === 'up-to-date'
                ? 'Current branch is up to date.'
                : 'Successfully rebased and updated the branch.',
            );
          }
          return;
        }
        const result = await merge(repo, {
          rev: target,
          fastForwardOnly: opts.ffOnly === true,
          media,
          message: `Merge branch '${remoteBranch.slice('refs/heads/'.length)}' of ${fetched.url}`,
          onProgress: progress.update,
        });
        if (opts.quiet) return;
        if (result.outcome === 'up-to-date') cli.out('Already up to date.');
        else if (result.outcome === 'fast-forward') {
          if (result.from) cli.out(`Updating ${shortId(result.from)}..${shortId(result.to)}`);
          cli.out('Fast-forward');
        } else cli.out("Merge made by the 'mediagit' strategy.");
      } finally {
        progress.stop();
      }
    },
  );
}
