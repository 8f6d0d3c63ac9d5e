import type { Command } from 'commander';
import { MediaGitError } from '../../errors.ts';
import { checkoutPaths, interpretCheckoutArgs, switchTargetFor } from '../../repo/checkout.ts';
import { checkoutConflictSide } from '../../repo/merge.ts';
import { shortId } from '../../repo/revision.ts';
import { switchTo, type SwitchTarget } from '../../repo/switch.ts';
import type { Cli } from '../context.ts';
import { splitAtDoubleDash } from '../operands.ts';
import { progressReporter } from '../progress.ts';
import { printUnmergedRefusal } from '../unmerged-refusal.ts';
import { printSwitchResult } from './switch.ts';

export function register(program: Command, cli: Cli): void {
  program
    .command('checkout')
    .description('Switch branches or detach HEAD, or restore working tree files')
    .argument('[args...]', '<branch> | <commit> | [<commit>] [--] <paths>...')
    .option('-b <new-branch>', 'create a branch and switch to it')
    .option('-B <new-branch>', 'create or reset a branch and switch to it')
    .option('--detach', 'detach HEAD at the commit')
    .option('--orphan <new-branch>', 'start a new branch with no commits, keeping the files')
    .option('-f, --force', 'throw away local changes when switching')
    .option('--ours', 'for conflicted paths of a stopped merge: write our version')
    .option('--theirs', 'for conflicted paths of a stopped merge: write their version')
    .option('-q, --quiet', 'print nothing but errors')
    .action(
      async (
        args: string[],
        opts: {
          b?: string;
          B?: string;
          detach?: boolean;
          orphan?: string;
          force?: boolean;
          quiet?: boolean;
          ours?: boolean;
          theirs?: boolean;
        },
        command: Command,
      ) => {
        const { before, after } = splitAtDoubleDash(command, args);
        const repo = await cli.openRepo();
        if (opts.ours || opts.theirs) {
          const paths = [...before, ...(after ?? [])];
          if ((opts.ours && opts.theirs) || paths.length === 0) {
            throw new MediaGitError(
              'CHECKOUT_USAGE',
              '--ours/--theirs need paths, and only one of them',
              {
                kind: 'usage',
              },
            );
          }
          const written = await checkoutConflictSide(
            repo,
            opts.ours ? 'ours' : 'theirs',
            paths,
            cli.cwd,
          );
          const n = written.length;
          if (!opts.quiet) cli.err(`Updated ${n} path${n === 1 ? '' : 's'} from the index`);
          return;
        }
        const progress = progressReporter(cli, 'Updating files', { quiet: opts.quiet === true });
        try {
          let target: SwitchTarget | undefined;
          const created = opts.b ?? opts.B;
          if (created !== undefined || opts.orphan !== undefined || opts.detach) {
            if (after !== undefined && after.length > 0) {
              throw new MediaGitError(
                'CHECKOUT_USAGE',
                `Cannot update paths and switch to branch '${created ?? opts.orphan ?? 'HEAD'}' at the same time.`,
                { kind: 'usage' },
              );
            }
            if (before.length > 1) {
              throw new MediaGitError('CHECKOUT_USAGE', 'too many arguments', { kind: 'usage' });
            }
          }
          if (created !== undefined) {
            target = {
              kind: 'create',
              name: created,
              start: before[0],
              reset: opts.B !== undefined,
            };
          } else if (opts.orphan !== undefined) {
            if (before.length > 0) {
              throw new MediaGitError(
                'CHECKOUT_USAGE',
                '--orphan takes no start point here: check it out first, then use --orphan',
                { kind: 'usage' },
              );
            }
            target = { kind: 'orphan', name: opts.orphan, keepFiles: true };
          } else if (opts.detach) {
            target = { kind: 'detach', rev: before[0] ?? 'HEAD' };
          } else {
            const request = await interpretCheckoutArgs(repo, before, after);
            if (request.kind === 'none') return;
            if (request.kind === 'paths') {
              const result = await checkoutPaths(repo, {
                rev: request.rev,
                paths: request.paths,
                cwd: cli.cwd,
                onProgress: progress.update,
              });
              progress.stop();
              // Git reports the count only when paths were not marked by `--`.
              if (!opts.quiet && after === undefined) {
                const n = result.written.length;
                const from =
                  result.sourceTree === undefined ? 'the index' : shortId(result.sourceTree);
                cli.err(`Updated ${n} path${n === 1 ? '' : 's'} from ${from}`);
              }
              return;
            }
            target = request.target;
          }
          if (target.kind === 'branch' && target.name === '-') {
            target = await switchTargetFor(repo, '-');
          }
          const result = await switchTo(repo, target, {
            force: opts.force === true,
            stopped: 'checkout',
            reportLocalChanges: !opts.quiet,
            onProgress: progress.update,
          }).catch((error: unknown) => {
            progress.stop();
            return printUnmergedRefusal(cli, error);
          });
          progress.stop();
          if (!opts.quiet) {
            printSwitchResult(cli, result, {
              detachAdvice: !isFalse(repo.config('advice.detachedHead')) && !opts.detach,
              target,
            });
            // Git warns when the checkout ends a cherry-pick or revert (a merge silently).
            if (result.cancelled === 'cherry-pick')
              cli.err('warning: cancelling a cherry picking in progress');
            if (result.cancelled === 'revert') cli.err('warning: cancelling a revert in progress');
          }
        } finally {
          progress.stop();
        }
      },
    );
}

function isFalse(value: unknown): boolean {
  return value === false || (typeof value === 'string' && /^(false|no|off|0)$/i.test(value));
}
