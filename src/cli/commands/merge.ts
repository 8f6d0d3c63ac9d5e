import type { Command } from 'commander';
import { MediaGitError } from '../../errors.ts';
import { commit } from '../../repo/commit.ts';
import { abortMerge, merge } from '../../repo/merge.ts';
import {
  readMergeState,
  type ConflictRecord,
  type UnmergedRefusal,
} from '../../repo/merge-state.ts';
import { shortId } from '../../repo/revision.ts';
import type { Cli } from '../context.ts';
import { ExitRequest, EXIT_FATAL } from '../exit.ts';
import { progressReporter } from '../progress.ts';
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

const RESOLVE_HINT = [
  "hint: Fix them up in the work tree, and then use 'mediagit add/rm <file>'",
  'hint: as appropriate to mark resolution and make a commit.',
];

/**
 * Prints Git's exact refusal for an UNMERGED_PATHS error (merge-state.ts:
 * what goes to stdout, what to stderr) and stops with Git's exit code; any
 * other error is rethrown. `pop` adds the line stash pop prints. Paths are
 * printed from the repository root, unquoted, as Git's index refresh does.
 */
export function printUnmergedRefusal(
  cli: Cli,
  error: unknown,
  options: { pop?: boolean } = {},
): never {
  if (!(error instanceof MediaGitError) || error.code !== 'UNMERGED_PATHS') throw error;
  const verb = error.data['verb'] as UnmergedRefusal;
  const paths = error.data['paths'] as string[];
  const needsMerge = paths.map((p) => `${p}: needs merge`);
  switch (verb) {
    case 'commit':
      cli.out(paths.map((p) => `U\t${p}`).join('\n'));
      cli.err(
        [
          `error: ${error.message}`,
          ...RESOLVE_HINT,
          'fatal: Exiting because of an unresolved conflict.',
        ].join('\n'),
      );
      throw new ExitRequest(EXIT_FATAL);
    case 'merge':
    case 'pull':
      cli.err(
        [
          `error: ${error.message}`,
          ...RESOLVE_HINT,
          'fatal: Exiting because of an unresolved conflict.',
        ].join('\n'),
      );
      throw new ExitRequest(EXIT_FATAL);
    case 'cherry-pick':
    case 'revert':
      cli.err([`error: ${error.message}`, ...RESOLVE_HINT, `fatal: ${verb} failed`].join('\n'));
      throw new ExitRequest(EXIT_FATAL);
    case 'cherry-pick -n':
    case 'revert -n': {
      // Git names each unmerged stage (base, ours, theirs) by its object ID.
      const stages = (error.data['conflicts'] as ConflictRecord[]).flatMap((c) =>
        [c.base, c.ours, c.theirs].flatMap((v) => (v ? [`${c.path}: unmerged (${v.id})`] : [])),
      );
      cli.err(
        [...stages, `error: ${error.message}`, `fatal: ${verb.replace(' -n', '')} failed`].join(
          '\n',
        ),
      );
      throw new ExitRequest(EXIT_FATAL);
    }
    case 'stash':
      cli.out(
        [
          ...needsMerge,
          ...(options.pop ? ['The stash entry is kept in case you need it again.'] : []),
        ].join('\n'),
      );
      throw new ExitRequest(1);
    case 'checkout':
      cli.out(needsMerge.join('\n'));
      cli.err(`error: ${error.message}`);
      throw new ExitRequest(1);
    case 'rebase':
      cli.out(needsMerge.join('\n'));
      cli.err(
        [
          `error: ${error.message}`,
          'error: additionally, your index contains uncommitted changes.',
          'error: Please commit or stash them.',
        ].join('\n'),
      );
      throw new ExitRequest(1);
    case 'rebase --continue':
      cli.out(
        [
          ...needsMerge,
          'You must edit all merge conflicts and then',
          'mark them as resolved using mediagit add',
        ].join('\n'),
      );
      throw new ExitRequest(1);
  }
}
