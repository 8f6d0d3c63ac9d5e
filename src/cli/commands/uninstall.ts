import type { Command } from 'commander';
import { MediaGitError } from '../../errors.ts';
import { locateGitRepo } from '../../git/git-command.ts';
import { uninstallFilter } from '../../git/install.ts';
import type { Cli } from '../context.ts';

export function register(program: Command, cli: Cli): void {
  program
    .command('uninstall')
    .description(
      'Remove the MediaGit filter from Git config (and its pre-push hook from this repository)',
    )
    .option('--local', "from this repository's config")
    .option('--global', "from the user's global Git config (the default)")
    .action(async (opts: { local?: boolean; global?: boolean }) => {
      if (opts.local && opts.global) {
        throw new MediaGitError('INSTALL_USAGE', '--local and --global exclude each other', {
          kind: 'usage',
        });
      }
      const gitDir = await locateGitRepo(cli.cwd, cli.env).then(
        (found) => (found.workTree ? found.gitDir : undefined),
        () => undefined,
      );
      const scope = opts.local ? 'local' : 'global';
      const result = await uninstallFilter(cli.cwd, cli.env, scope, gitDir);
      cli.out(
        result.removedConfig
          ? `MediaGit filter removed from the ${scope} Git config.`
          : `The MediaGit filter was not in the ${scope} Git config.`,
      );
      if (result.removedHook) cli.out('Removed the pre-push hook.');
    });
}
