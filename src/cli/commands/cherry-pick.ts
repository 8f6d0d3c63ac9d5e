import type { Command } from 'commander';
import { readMergeState, refuseIfUnmerged } from '../../repo/merge-state.ts';
import { resolveCommit } from '../../repo/revision.ts';
import type { Cli } from '../context.ts';
import { printUnmergedRefusal } from './merge.ts';
import { registerPick } from './pick-shared.ts';

export function register(program: Command, cli: Cli): void {
  registerPick(program, cli, 'cherry-pick');
  refuseWhileUnmerged(program, cli, 'cherry-pick');
}

/**
 * Git's exact refusal of `cherry-pick`/`revert` (and of their `--continue`,
 * which is a commit) while paths are unmerged, printed before the shared
 * action of pick-shared.ts runs; pick.ts and commit.ts refuse the same way
 * underneath, so this only words it. A bad revision is left to the action,
 * which reports it first, as Git does.
 */
export function refuseWhileUnmerged(
  program: Command,
  cli: Cli,
  verb: 'cherry-pick' | 'revert',
): void {
  const command = program.commands.find((c) => c.name() === verb);
  command?.hook('preAction', async (_self, action) => {
    const opts = action.opts<{ commit?: boolean; abort?: boolean; continue?: boolean }>();
    const [rev] = action.args;
    if (opts.abort) return;
    const repo = await cli.openRepo();
    try {
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
      await refuseIfUnmerged(repo, opts.commit === false ? `${verb} -n` : verb);
    } catch (error) {
      printUnmergedRefusal(cli, error);
    }
  });
}
