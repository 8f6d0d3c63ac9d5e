import type { Command } from 'commander';
import { locateGitRepo } from '../../git/git-command.ts';
import { readOnlyAfterGit, writtenByMerge } from '../../git/lockable-files.ts';
import type { Cli } from '../context.ts';

export function register(program: Command, cli: Cli): void {
  program
    .command('post-merge')
    .description("Git's post-merge hook: make the lockable files the merge wrote read-only")
    .argument('[squash]', '1 for a squash merge (from Git)')
    .action(async () => {
      const { workTree } = await locateGitRepo(cli.cwd, cli.env);
      if (!workTree) return;
      await readOnlyAfterGit(workTree, cli.env, await writtenByMerge(workTree, cli.env));
    });
}
