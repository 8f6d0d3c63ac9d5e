import type { Command } from 'commander';
import { isAncestor, mergeBases } from '../../repo/merge-base.ts';
import { resolveCommit } from '../../repo/revision.ts';
import type { Cli } from '../context.ts';
import { ExitRequest } from '../exit.ts';

export function register(program: Command, cli: Cli): void {
  program
    .command('merge-base')
    .description('Find the best common ancestor(s) of two commits')
    .argument('<commit>', 'one commit')
    .argument('<other>', 'the other commit')
    .option('-a, --all', 'print every best common ancestor, not just one')
    .option('--is-ancestor', 'exit 0 if the first commit is an ancestor of the second, else 1')
    .action(async (a: string, b: string, opts: { all?: boolean; isAncestor?: boolean }) => {
      const repo = await cli.openRepo();
      const one = await resolveCommit(repo, a);
      const other = await resolveCommit(repo, b);
      if (opts.isAncestor) {
        // Like Git: the answer is the exit code alone.
        if (!(await isAncestor(repo, one, other))) throw new ExitRequest(1);
        return;
      }
      const bases = await mergeBases(repo, one, other);
      if (bases.length === 0) throw new ExitRequest(1);
      for (const id of opts.all ? bases : bases.slice(0, 1)) cli.out(id);
    });
}
