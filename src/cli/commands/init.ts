import type { Command } from 'commander';
import type { Cli } from '../context.ts';
import { init } from '../../repo/init.ts';
import path from 'node:path';

export function register(program: Command, cli: Cli): void {
  program
    .command('init')
    .description('Create an empty MediaGit repository or reinitialize an existing one')
    .argument('[directory]', 'where to create it', '.')
    .option('--bare', 'create a bare repository (no working tree)')
    .option('-b, --initial-branch <name>', 'name of the first branch')
    .option('-q, --quiet', 'print nothing')
    .action(
      async (
        directory: string,
        opts: { bare?: boolean; initialBranch?: string; quiet?: boolean },
      ) => {
        const result = await init(path.resolve(cli.cwd, directory), {
          bare: opts.bare === true,
          initialBranch: opts.initialBranch,
          context: cli.repoContext,
        });
        if (!opts.quiet) {
          const what = result.reinitialized ? 'Reinitialized existing' : 'Initialized empty';
          cli.out(`${what} MediaGit repository in ${result.gitDir}/`);
        }
      },
    );
}
