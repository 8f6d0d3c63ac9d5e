import type { Command } from 'commander';
import { parsePathspecs } from '../../repo/pathspec.ts';
import { prefetch } from '../../repo/partial-clone.ts';
import { printJson, type Cli } from '../context.ts';
import { interruptible } from '../interrupt.ts';

export function register(program: Command, cli: Cli): void {
  program
    .command('prefetch')
    .description(
      "Fetch ahead the content a partial clone lacks for a commit's files (default HEAD)",
    )
    .argument('[pathspec...]', 'only these files or folders')
    .option('--rev <rev>', 'the commit whose files to fetch', 'HEAD')
    .option('--json', 'print the result as JSON')
    .option('-q, --quiet', 'print only errors')
    .action(async (paths: string[], opts: { rev: string; json?: boolean; quiet?: boolean }) => {
      const repo = await cli.openRepo();
      const workTree = repo.workTree ?? cli.cwd;
      const pathspecs = parsePathspecs(workTree, cli.cwd, paths);
      // Ctrl-C keeps the chunks that arrived: the same command fetches the rest.
      const result = await interruptible(
        (signal) => prefetch(repo, { rev: opts.rev, pathspecs, signal }),
        () => cli.err('Prefetch interrupted; what arrived is kept: run it again for the rest.'),
      );
      if (opts.json) {
        printJson(cli, result);
        return;
      }
      if (opts.quiet) return;
      if (!result.partial) cli.err('not a partial clone: all content is here');
      else if (result.files === 0) cli.err('nothing to fetch: the content of those files is here');
      else
        cli.err(
          `fetched ${result.objects} object${result.objects === 1 ? '' : 's'} for ${result.files} file${result.files === 1 ? '' : 's'}`,
        );
    });
}
