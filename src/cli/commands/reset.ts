import type { Command } from 'commander';
import { MediaGitError } from '../../errors.ts';
import { interpretResetArgs, reset, type ResetMode } from '../../repo/reset.ts';
import { shortId } from '../../repo/revision.ts';
import type { Cli } from '../context.ts';
import { splitAtDoubleDash } from '../operands.ts';
import { progressReporter } from '../progress.ts';
import { printLocalChanges } from './switch.ts';

export function register(program: Command, cli: Cli): void {
  program
    .command('reset')
    .description('Move HEAD to a commit, resetting the index (and with --hard the working tree)')
    .argument('[args...]', '[<commit>] | [<commit>] [--] <paths>...')
    .option('--soft', 'move HEAD only')
    .option('--mixed', 'move HEAD and reset the index (the default)')
    .option('--hard', 'move HEAD and reset the index and working tree')
    .option('-q, --quiet', 'print nothing but errors')
    .action(
      async (
        args: string[],
        opts: { soft?: boolean; mixed?: boolean; hard?: boolean; quiet?: boolean },
        command: Command,
      ) => {
        const modes = (['soft', 'mixed', 'hard'] as const).filter((m) => opts[m]);
        if (modes.length > 1) {
          throw new MediaGitError(
            'RESET_USAGE',
            `--${modes[0]} and --${modes[1]} are incompatible`,
            {
              kind: 'usage',
            },
          );
        }
        const mode: ResetMode = modes[0] ?? 'mixed';
        const { before, after } = splitAtDoubleDash(command, args);
        const repo = await cli.openRepo();
        const { rev, paths } = await interpretResetArgs(repo, cli.cwd, before, after);
        const progress = progressReporter(cli, 'Updating files', { quiet: opts.quiet === true });
        try {
          const result = await reset(repo, {
            mode,
            rev,
            paths,
            cwd: cli.cwd,
            reportUnstaged: !opts.quiet,
            onProgress: progress.update,
          });
          progress.stop();
          if (opts.quiet) return;
          if (mode === 'hard' && result.id !== undefined) {
            cli.out(`HEAD is now at ${shortId(result.id)} ${result.subject ?? ''}`);
          } else if (mode === 'mixed' && result.unstaged.length > 0) {
            cli.out('Unstaged changes after reset:');
            printLocalChanges(cli, result.unstaged);
          }
        } finally {
          progress.stop();
        }
      },
    );
}
