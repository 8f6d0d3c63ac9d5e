import type { Command } from 'commander';
import { commit } from '../../repo/commit.ts';
import { shortId } from '../../repo/revision.ts';
import type { Cli } from '../context.ts';
import { editorCommand, editText } from '../editor.ts';
import { progressReporter } from '../progress.ts';
import { printUnmergedRefusal } from '../unmerged-refusal.ts';

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
    .option('-e, --edit', 'edit the message in the editor, even with -m')
    .option('--no-edit', 'take the message as it is (with --amend: the previous one)')
    .option('-q, --quiet', 'print nothing on success')
    .action(
      async (opts: {
        message: string[];
        all?: boolean;
        amend?: boolean;
        allowEmpty?: boolean;
        edit?: boolean;
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
            // As Git: the editor opens when no message was given (and not
            // --no-edit), or with --edit.
            editMessage:
              opts.edit === true || (opts.edit === undefined && opts.message.length === 0)
                ? async (template) =>
                    // No editor (a script, no terminal): the default message
                    // (a merge's, an amended commit's) stands, or nothing does.
                    opts.edit !== true && editorCommand(cli, repo) === undefined
                      ? template
                      : editText(cli, repo, 'COMMIT_EDITMSG', template)
                : undefined,
            onProgress: progress.update,
          }).catch((error: unknown) => {
            progress.stop();
            return printUnmergedRefusal(cli, error);
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
