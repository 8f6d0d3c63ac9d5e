import type { Command } from 'commander';
import { clone, defaultCloneDir, resumesClone } from '../../protocol/clone.ts';
import { printJson, type Cli } from '../context.ts';
import { transportOptions } from '../credentials.ts';
import { interruptible } from '../interrupt.ts';
import { progressReporter } from '../progress.ts';
import { statsLine } from './transfer-format.ts';
import { parseFilter } from '../../repo/partial-clone.ts';

export function register(program: Command, cli: Cli): void {
  program
    .command('clone')
    .description('Copy a repository from a server or a path into a new folder')
    .argument('<url>', 'http(s) URL of a server repository, or a path / file:// URL')
    .argument('[dir]', 'the new folder (default: the last part of the URL)')
    .option('-b, --branch <name>', 'check out this branch instead of the remote HEAD')
    .option('--depth <n>', 'fetch only the last n commits of each branch', (v) => Number(v))
    .option(
      '--filter <spec>',
      'partial clone: blob:none (file content fetched when needed) or blob:limit=<size>',
    )
    .option('-n, --no-checkout', 'set HEAD but check out no files')
    .option('--bare', 'make a bare repository (branches copied as they are, nothing checked out)')
    .option('--sparse', 'check out only the files at the top (widen with sparse-checkout add)')
    .option('--json', 'print the result as JSON')
    .option('-q, --quiet', 'print only errors')
    .action(
      async (
        url: string,
        dir: string | undefined,
        opts: {
          branch?: string;
          depth?: number;
          bare?: boolean;
          sparse?: boolean;
          filter?: string;
          checkout: boolean;
          json?: boolean;
          quiet?: boolean;
        },
      ) => {
        // A sparse clone is also a partial one: content outside the patterns stays
        // on the server until the patterns widen (docs/sparse-checkout.md).
        const filter =
          opts.filter !== undefined
            ? parseFilter(opts.filter)
            : opts.sparse && opts.bare !== true
              ? parseFilter('blob:none')
              : undefined;
        const target = dir ?? defaultCloneDir(url);
        const bare = opts.bare === true;
        const resume = await resumesClone(url, target, { bare, cwd: cli.cwd });
        if (!opts.quiet && !opts.json) {
          cli.err(
            resume
              ? `Resuming the interrupted clone into '${target}'...`
              : `Cloning into '${target}'...`,
          );
        }
        const progress = progressReporter(cli, 'Receiving chunks', { quiet: opts.quiet === true });
        const transport = await transportOptions(cli, url);
        // Ctrl-C keeps what has arrived: the same command resumes (clone.ts).
        const result = await interruptible(
          async (signal) => {
            try {
              return await clone(url, target, {
                ...transport,
                signal,
                cwd: cli.cwd,
                branch: opts.branch,
                depth: opts.depth,
                bare,
                sparse: opts.sparse === true,
                filter,
                noCheckout: !opts.checkout,
                context: cli.repoContext,
                onProgress: (done, total) => progress.update({ bytes: done, total }),
              });
            } finally {
              progress.stop();
            }
          },
          () =>
            cli.err(
              `Clone interrupted; what arrived is kept in '${target}': run the same command again to resume it.`,
            ),
        );
        if (opts.json) {
          printJson(cli, {
            dir: result.dir,
            branch: result.branch ?? null,
            head: result.head ?? null,
            stats: result.fetch.stats,
          });
          return;
        }
        if (opts.quiet) return;
        if (result.branch === undefined)
          cli.err('warning: You appear to have cloned an empty repository.');
        cli.err(statsLine(result.fetch.stats, 'received'));
      },
    );
}
