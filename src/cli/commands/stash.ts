import type { Command } from 'commander';
import { MediaGitError } from '../../errors.ts';
import {
  stashApply,
  stashClear,
  stashDrop,
  stashList,
  stashDiff,
  stashPush,
} from '../../repo/stash.ts';
import type { Cli } from '../context.ts';
import { printJson } from '../context.ts';
import { detailFor, renderFiles } from './diff.ts';
import { printUnmergedRefusal } from '../unmerged-refusal.ts';

const usage = (message: string) => new MediaGitError('STASH_USAGE', message, { kind: 'usage' });

export function register(program: Command, cli: Cli): void {
  program
    .command('stash')
    .description('Set local changes aside, and bring them back')
    .argument('[subcommand]', 'push (default) | save | apply | pop | list | drop | clear | show')
    .argument('[args...]', 'a stash (stash@{n}), or the message for save')
    .option('-m, --message <msg>', 'describe the stash (push)')
    .option('-u, --include-untracked', 'also stash untracked files (push)')
    .option('--index', 'also restore what was staged (apply, pop)')
    .option('-q, --quiet', 'print nothing but errors')
    .option('--json', 'print the list as JSON (list)')
    .option('-p, --patch', 'show the stash as a patch (show)')
    .option('--stat', 'show a diffstat (show; the default)')
    .option('--name-status', 'show names and the kind of change (show)')
    .option('--name-only', 'show the names of changed files (show)')
    .action(
      async (
        subcommand: string | undefined,
        args: string[],
        opts: {
          message?: string;
          includeUntracked?: boolean;
          index?: boolean;
          quiet?: boolean;
          json?: boolean;
          patch?: boolean;
          stat?: boolean;
          nameStatus?: boolean;
          nameOnly?: boolean;
        },
      ) => {
        const repo = await cli.openRepo();
        const sub = subcommand ?? 'push';
        const one = (): string | undefined => {
          if (args.length > 1) throw usage(`too many arguments for stash ${sub}`);
          return args[0];
        };
        switch (sub) {
          case 'push':
          case 'save': {
            const message = sub === 'save' && args.length > 0 ? args.join(' ') : opts.message;
            if (sub === 'push' && args.length > 0)
              throw usage('stash push: pathspecs are not supported yet');
            const saved = await stashPush(repo, {
              message,
              includeUntracked: opts.includeUntracked,
              cwd: cli.cwd,
            }).catch((error: unknown) => printUnmergedRefusal(cli, error));
            if (!opts.quiet)
              cli.out(
                saved === undefined
                  ? 'No local changes to save'
                  : `Saved working directory and index state ${saved}`,
              );
            return;
          }
          case 'list': {
            const entries = await stashList(repo);
            if (opts.json) printJson(cli, entries);
            else if (entries.length > 0)
              cli.out(entries.map((e) => `${e.selector}: ${e.message}`).join('\n'));
            return;
          }
          case 'apply':
          case 'pop': {
            const rev = one();
            await stashApply(repo, { rev, index: opts.index }).catch((error: unknown) =>
              printUnmergedRefusal(cli, error, { pop: sub === 'pop' }),
            );
            if (sub === 'pop') {
              const dropped = await stashDrop(repo, rev);
              if (!opts.quiet) cli.out(`Dropped ${dropped.selector} (${dropped.id})`);
            }
            return;
          }
          case 'drop': {
            const dropped = await stashDrop(repo, one());
            if (!opts.quiet) cli.out(`Dropped ${dropped.selector} (${dropped.id})`);
            return;
          }
          case 'clear':
            await stashClear(repo);
            return;
          case 'show': {
            // Git's default is the diffstat; -p the patch.
            const flags = {
              stat: opts.stat === true || !(opts.patch || opts.nameStatus || opts.nameOnly),
              nameStatus: opts.nameStatus,
              nameOnly: opts.nameOnly,
            };
            const files = await stashDiff(
              repo,
              one() ?? 'stash@{0}',
              opts.patch ? 'patch' : detailFor(flags),
            );
            const lines = renderFiles(cli, files, opts.patch ? {} : flags);
            if (lines.length > 0) cli.out(lines.join('\n'));
            return;
          }
          default:
            throw usage(`unknown stash subcommand '${sub}'`);
        }
      },
    );
}
