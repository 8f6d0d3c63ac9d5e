import type { Command } from 'commander';
import { locateGitRepo } from '../../git/git-command.ts';
import { readOnlyAfterGit, writtenByCheckout } from '../../git/lockable-files.ts';
import type { Cli } from '../context.ts';

export function register(program: Command, cli: Cli): void {
  program
    .command('post-checkout')
    .description("Git's post-checkout hook: make the lockable files Git wrote read-only")
    .argument('<previous>', 'the commit checked out before (from Git)')
    .argument('<next>', 'the commit checked out now (from Git)')
    .argument('<flag>', '1 for a branch checkout, 0 for a file checkout (from Git)')
    .action(async (previous: string, next: string, flag: string) => {
      const { workTree } = await locateGitRepo(cli.cwd, cli.env);
      if (!workTree) return;
      const written = await writtenByCheckout(workTree, cli.env, previous, next, flag);
      await readOnlyAfterGit(workTree, cli.env, written);
    });
}
