import type { Command } from 'commander';
import { MediaGitError } from '../../errors.ts';
import { mv } from '../../repo/mv.ts';
import type { Cli } from '../context.ts';

export function register(program: Command, cli: Cli): void {
  program
    .command('mv')
    .description('Move or rename a file or directory in the working tree and the index')
    .argument('[paths...]', '<source> <destination> | <source>... <directory>')
    .option('-f, --force', 'overwrite an existing destination file')
    .option('-k', 'skip sources that cannot be moved instead of failing')
    .option('-n, --dry-run', 'only show what would be moved')
    .option('-v, --verbose', 'list every move')
    .action(
      async (
        paths: string[],
        opts: { force?: boolean; k?: boolean; dryRun?: boolean; verbose?: boolean },
      ) => {
        if (paths.length < 2) {
          throw new MediaGitError(
            'MV_USAGE',
            'usage: mediagit mv [<options>] <source>... <destination>',
            { kind: 'usage', data: { exitCode: 129 } },
          );
        }
        const repo = await cli.openRepo();
        const result = await mv(repo, {
          sources: paths.slice(0, -1),
          destination: paths[paths.length - 1]!,
          cwd: cli.cwd,
          force: opts.force === true,
          skipErrors: opts.k === true,
          dryRun: opts.dryRun === true,
        });
        const lines: string[] = [];
        for (const move of result.moves) {
          if (opts.dryRun) lines.push(`Checking rename of '${move.from}' to '${move.to}'`);
          if (opts.dryRun || opts.verbose) lines.push(`Renaming ${move.from} to ${move.to}`);
        }
        if (lines.length > 0) cli.out(lines.join('\n'));
      },
    );
}
