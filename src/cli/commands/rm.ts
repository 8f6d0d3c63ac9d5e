import type { Command } from 'commander';
import { rm } from '../../repo/rm.ts';
import { outsideSparse } from '../../repo/sparse.ts';
import type { Cli } from '../context.ts';

export function register(program: Command, cli: Cli): void {
  program
    .command('rm')
    .description('Remove files from the working tree and the index')
    .argument('[pathspec...]', 'files (or, with -r, directories) to remove')
    .option('--cached', 'only remove from the index; keep the working files')
    .option('-r', 'allow recursive removal of directories')
    .option('-f, --force', 'remove even files with staged or local changes')
    .option('-n, --dry-run', 'only show what would be removed')
    .option('-q, --quiet', 'do not list removed files')
    .option('--ignore-unmatch', 'exit with success even if nothing matched')
    .option('--sparse', 'also paths outside the sparse-checkout patterns')
    .action(
      async (
        paths: string[],
        opts: {
          cached?: boolean;
          r?: boolean;
          force?: boolean;
          dryRun?: boolean;
          quiet?: boolean;
          ignoreUnmatch?: boolean;
          sparse?: boolean;
        },
      ) => {
        const repo = await cli.openRepo();
        const result = await rm(repo, {
          paths,
          cwd: cli.cwd,
          cached: opts.cached === true,
          recursive: opts.r === true,
          force: opts.force === true,
          dryRun: opts.dryRun === true,
          ignoreUnmatch: opts.ignoreUnmatch === true,
          sparse: opts.sparse === true,
        });
        if (!opts.quiet && result.removed.length > 0) {
          cli.out(result.removed.map((p) => `rm '${p}'`).join('\n'));
        }
        if (result.outside.length > 0) throw outsideSparse(result.outside);
      },
    );
}
