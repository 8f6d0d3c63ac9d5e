import type { Command } from 'commander';
import { commit } from '../../repo/commit.ts';
import { shortId } from '../../repo/revision.ts';
import type { Cli } from '../context.ts';
import { progressReporter } from '../progress.ts';

export function register(program: Command, cli: Cli): void {
  program
    .command('commit')
    .description('Record changes to the repository')
    .option(
      '-m, --message <msg>',
      'commit message (repeat for paragraphs)',
      collect,
      [] as string[],
    )
    .option('-a, --all', 'stage modified and deleted tracked files first')
    .option('--amend', 'replace the tip of the current branch')
    .option('--allow-empty', 'allow a commit with the same tree as its parent')
    .option('-q, --quiet', 'print nothing on success')
    .action(
      async (opts: {
        message: string[];
        all?: boolean;
        amend?: boolean;
        allowEmpty?: boolean;
        quiet?: boolean;
      }) => {
        const repo = await cli.openRepo();
        const progress = progressReporter(cli, 'Adding', { quiet: opts.quiet === true });
        try {
          const result = await commit(repo, {
            message: opts.message.length > 0 ? opts.message.join('\n\n') : undefined,
            all: opts.all === true,
            amend: opts.amend === true,
            allowEmpty: opts.allowEmpty === true,
            cwd: cli.cwd,
            onProgress: progress.update,
          });
          progress.stop();
          if (!opts.quiet) {
            const where = result.branch?.replace(/^refs\/heads\//, '') ?? 'detached HEAD';
            const root = result.root ? ' (root-commit)' : '';
            cli.out(`[${where}${root} ${shortId(result.id)}] ${result.subject}`);
            cli.out(` ${result.filesChanged} file${result.filesChanged === 1 ? '' : 's'} changed`);
          }
        } finally {
          progress.stop();
        }
      },
    );
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}
