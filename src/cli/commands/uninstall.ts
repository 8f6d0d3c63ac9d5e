import type { Command } from 'commander';
import { uninstallFilter } from '../../git/install.ts';
import type { Cli } from '../context.ts';
import { installTarget } from './install.ts';

export function register(program: Command, cli: Cli): void {
  program
    .command('uninstall')
    .description(
      'Remove the MediaGit filter from Git config (and its pre-push hook from this repository)',
    )
    .option('--local', "from this repository's config")
    .option('--global', "from the user's global Git config (the default)")
    .action(async (opts: { local?: boolean; global?: boolean }) => {
      const { scope, gitDir } = await installTarget(cli, opts);
      const result = await uninstallFilter(cli.cwd, cli.env, scope, gitDir);
      cli.out(
        result.removedConfig
          ? `MediaGit filter removed from the ${scope} Git config.`
          : `The MediaGit filter was not in the ${scope} Git config.`,
      );
      if (result.removedHook) cli.out('Removed the MediaGit hooks.');
    });
}
