import type { Command } from 'commander';
import { uninstallFilter, uninstallLfsAgent } from '../../git/install.ts';
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
    .option('--lfs-agent', 'only remove the git-lfs transfer agent')
    .action(async (opts: { local?: boolean; global?: boolean; lfsAgent?: boolean }) => {
      const { scope, gitDir } = await installTarget(cli, opts);
      if (opts.lfsAgent) {
        const removed = await uninstallLfsAgent(cli.cwd, cli.env, scope);
        cli.out(
          removed
            ? `git-lfs transfer agent "mediagit" removed from the ${scope} Git config.`
            : `The git-lfs transfer agent was not in the ${scope} Git config.`,
        );
        return;
      }
      const result = await uninstallFilter(cli.cwd, cli.env, scope, gitDir);
      cli.out(
        result.removedConfig
          ? `MediaGit filter removed from the ${scope} Git config.`
          : `The MediaGit filter was not in the ${scope} Git config.`,
      );
      if (result.removedHook) cli.out('Removed the MediaGit hooks.');
    });
}
