import type { Command } from 'commander';
import { MediaGitError } from '../../errors.ts';
import { untrack } from '../../git/attributes.ts';
import { locateGitRepo } from '../../git/git-command.ts';
import { removeLockable } from '../../repo/lockable.ts';
import type { Cli } from '../context.ts';

export function register(program: Command, cli: Cli): void {
  program
    .command('untrack')
    .description('Stop routing patterns through the MediaGit filter (.gitattributes)')
    .argument('<pattern...>', 'patterns given to `mediagit track`')
    .action(async (patterns: string[]) => {
      // A MediaGit repository: the patterns are lockable ones (track --lockable).
      const repo = await cli.openRepo().catch(() => undefined);
      if (repo) {
        const removed = new Set(await removeLockable(repo, patterns));
        for (const pattern of patterns) {
          if (removed.has(pattern)) cli.out(`Untracking "${pattern}"`);
          else cli.err(`warning: "${pattern}" was not lockable`);
        }
        return;
      }
      const { workTree } = await locateGitRepo(cli.cwd, cli.env);
      if (!workTree) {
        throw new MediaGitError(
          'BARE_REPO',
          'untrack needs a work tree (this is a bare repository)',
          { kind: 'usage' },
        );
      }
      const removed = new Set(await untrack(workTree, patterns));
      for (const pattern of patterns) {
        if (removed.has(pattern)) cli.out(`Untracking "${pattern}"`);
        else cli.err(`warning: "${pattern}" was not tracked`);
      }
    });
}
