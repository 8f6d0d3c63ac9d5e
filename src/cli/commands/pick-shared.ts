/** `cherry-pick` and `revert` share their options and their --abort/--continue. */
import type { Command } from 'commander';
import { MediaGitError } from '../../errors.ts';
import { commit } from '../../repo/commit.ts';
import { abortMerge } from '../../repo/merge.ts';
import { readMergeState, refuseIfUnmerged } from '../../repo/merge-state.ts';
import { cherryPick, revert } from '../../repo/pick.ts';
import { Refs } from '../../repo/refs.ts';
import type { Repository } from '../../repo/repository.ts';
import { resolveCommit, shortId } from '../../repo/revision.ts';
import type { Cli } from '../context.ts';
import { progressReporter } from '../progress.ts';
import { addStrategyOption, mediaMergeAllowed } from '../strategy-options.ts';
import { printUnmergedRefusal } from '../unmerged-refusal.ts';

export function registerPick(program: Command, cli: Cli, verb: 'cherry-pick' | 'revert'): void {
  const command = program
    .command(verb)
    .description(
      verb === 'cherry-pick'
        ? 'Apply the change a commit introduced on top of HEAD'
        : 'Record a new commit that undoes the change a commit introduced',
    )
    .argument('[commit]', 'the commit')
    .option('-n, --no-commit', 'apply to the index and working tree without committing')
    .option('--no-edit', 'use the default message (the only mode: no editor is opened)')
    .option('--abort', `give up a ${verb} that stopped on conflicts`)
    .option('--continue', `conclude a ${verb} whose conflicts are resolved`)
    .option('-q, --quiet', 'print nothing but errors');
  addStrategyOption(command).action(
    async (
      rev: string | undefined,
      opts: {
        commit: boolean;
        abort?: boolean;
        continue?: boolean;
        quiet?: boolean;
        strategyOption?: string[];
      },
    ) => {
      const media = mediaMergeAllowed(opts.strategyOption);
      const repo = await cli.openRepo();
      await refuseWhileUnmerged(repo, verb, rev, opts).catch((error: unknown) =>
        printUnmergedRefusal(cli, error),
      );
      if (opts.abort || opts.continue) {
        const state = await readMergeState(repo);
        if (!state || state.operation === 'merge' || rev !== undefined) {
          throw new MediaGitError('NO_PICK', 'no cherry-pick or revert in progress', {
            kind: 'conflict',
          });
        }
        if (opts.abort) {
          await abortMerge(repo);
          return;
        }
        const result = await commit(repo, { cwd: cli.cwd });
        if (!opts.quiet)
          cli.out(`[${result.branch ?? 'detached HEAD'} ${shortId(result.id)}] ${result.subject}`);
        return;
      }
      if (rev === undefined) {
        throw new MediaGitError('PICK_USAGE', `${verb} needs a commit`, { kind: 'usage' });
      }
      const progress = progressReporter(cli, 'Updating files', { quiet: opts.quiet === true });
      try {
        const apply = verb === 'cherry-pick' ? cherryPick : revert;
        const result = await apply(repo, {
          rev,
          noCommit: !opts.commit,
          media,
          onProgress: progress.update,
        });
        progress.stop();
        if (!opts.quiet && result.id !== undefined) {
          const branch = (await new Refs(repo).head()).branch?.replace(/^refs\/heads\//, '');
          cli.out(`[${branch ?? 'detached HEAD'} ${shortId(result.id)}] ${result.subject}`);
        }
      } finally {
        progress.stop();
      }
    },
  );
}

/**
 * Git's refusal of `cherry-pick`/`revert` (and of their `--continue`, which is
 * a commit) while paths are unmerged, before anything else is done; pick.ts
 * and commit.ts refuse the same way underneath, so this only words it. A bad
 * revision is left to the action, which reports it first, as Git does.
 */
async function refuseWhileUnmerged(
  repo: Repository,
  verb: 'cherry-pick' | 'revert',
  rev: string | undefined,
  opts: { commit: boolean; abort?: boolean; continue?: boolean },
): Promise<void> {
  if (opts.abort) return;
  if (opts.continue) {
    const state = await readMergeState(repo);
    if (rev === undefined && state !== undefined && state.operation !== 'merge')
      await refuseIfUnmerged(repo, 'commit');
    return;
  }
  if (rev === undefined) return;
  try {
    await resolveCommit(repo, rev);
  } catch {
    return;
  }
  await refuseIfUnmerged(repo, opts.commit ? verb : `${verb} -n`);
}
