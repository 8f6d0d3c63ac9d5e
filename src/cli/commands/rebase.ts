import type { Command } from 'commander';
import { MediaGitError } from '../../errors.ts';
import { rebase, rebaseAbort, rebaseContinue, rebaseSkip } from '../../repo/rebase.ts';
import type { Cli } from '../context.ts';
import { printUnmergedRefusal } from '../unmerged-refusal.ts';

export function register(program: Command, cli: Cli): void {
  program
    .command('rebase')
    .description("Replay the current branch's own commits on top of another commit")
    .argument('[upstream]', 'the commit to rebase onto (and whose commits are not replayed)')
    .option('--onto <newbase>', 'replay onto this commit instead of upstream')
    .option('-i, --interactive', 'edit the list of commits first ($MEDIAGIT_EDITOR or $EDITOR)')
    .option('--continue', 'go on after resolving a conflict (or an edit stop)')
    .option('--skip', 'drop the commit that stopped and go on')
    .option('--abort', 'give up and return to the branch as it was')
    .option('-q, --quiet', 'print nothing but errors')
    .action(
      async (
        upstream: string | undefined,
        opts: {
          onto?: string;
          interactive?: boolean;
          continue?: boolean;
          skip?: boolean;
          abort?: boolean;
          quiet?: boolean;
        },
      ) => {
        const repo = await cli.openRepo();
        const editor = cli.env['MEDIAGIT_EDITOR'] ?? cli.env['EDITOR'];
        const actions = [opts.continue, opts.skip, opts.abort].filter(Boolean).length;
        if (actions > 1 || (actions === 1 && upstream !== undefined)) {
          throw new MediaGitError(
            'REBASE_USAGE',
            '--continue, --skip and --abort take no other argument',
            {
              kind: 'usage',
            },
          );
        }
        if (opts.abort) return rebaseAbort(repo);
        const outcome = await (
          opts.continue
            ? rebaseContinue(repo, editor)
            : opts.skip
              ? rebaseSkip(repo, editor)
              : rebase(repo, {
                  upstream,
                  onto: opts.onto,
                  interactive: opts.interactive,
                  editor,
                })
        ).catch((error: unknown) => printUnmergedRefusal(cli, error));
        if (opts.quiet) return;
        if (outcome === 'up-to-date') cli.out('Current branch is up to date.');
        else if (outcome === 'rebased') cli.out('Successfully rebased and updated the branch.');
        else cli.out("Stopped for editing: amend, then 'mediagit rebase --continue'.");
      },
    );
}
