import type { Command } from 'commander';
import { importGit, isGitUrl } from '../../git/import.ts';
import { Refs } from '../../repo/refs.ts';
import { reset } from '../../repo/reset.ts';
import { printJson, type Cli } from '../context.ts';
import { progressReporter } from '../progress.ts';

interface ImportFlags {
  lfs?: boolean;
  branches?: string;
  quiet?: boolean;
  json?: boolean;
}

export function register(program: Command, cli: Cli): void {
  program
    .command('import')
    .description(
      "Convert a Git repository's history (branches, tags, merges; Git LFS content with --lfs) into this repository; rerun to import new commits (docs/migrate-from-git-lfs.md)",
    )
    .argument(
      '<git-repo>',
      'path of the Git repository (work tree or bare), or a URL to mirror (https://, ssh://, file://, host:path)',
    )
    .option(
      '--lfs',
      "replace Git LFS pointers by their content, from the repository's LFS store or its LFS server",
    )
    .option(
      '--branches <names>',
      'only these branches (comma-separated, * matches any run of characters)',
    )
    .option('-q, --quiet', 'print nothing but errors')
    .option('--json', 'print the result as JSON')
    .action(async (source: string, opts: ImportFlags) => {
      const repo = await cli.openRepo();
      const unborn = (await new Refs(repo).head()).id === undefined;
      const progress = progressReporter(cli, 'Importing commits', {
        quiet: opts.quiet === true || opts.json === true,
      });
      let result;
      try {
        result = await importGit(repo, {
          source: isGitUrl(source) || source.startsWith('/') ? source : `${cli.cwd}/${source}`,
          lfs: opts.lfs === true,
          branches: opts.branches
            ?.split(',')
            .map((name) => name.trim())
            .filter((name) => name !== ''),
          onProgress: (event) => progress.update({ bytes: event.done, total: event.total }),
          report:
            opts.quiet === true || opts.json === true
              ? undefined
              : (message) => cli.err(`import: ${message}`),
        });
      } finally {
        progress.stop();
      }
      const refs = new Refs(repo);
      // A new repository takes the Git repository's HEAD branch, as a clone does,
      // and its working tree gets that branch's files.
      if (unborn && (await refs.head()).id === undefined && result.head !== undefined) {
        await refs.setHeadBranch(result.head, `import: HEAD from ${source}`);
      }
      const head = await refs.head();
      if (unborn && head.id !== undefined && repo.workTree !== undefined) {
        await reset(repo, { mode: 'hard', cwd: cli.cwd });
      }
      if (opts.json) {
        printJson(cli, result);
        return;
      }
      if (opts.quiet) return;
      cli.out(
        `Imported ${result.imported} commit${result.imported === 1 ? '' : 's'}` +
          (result.skipped > 0 ? ` (${result.skipped} imported before)` : '') +
          (result.lfsObjects > 0 ? `, ${result.lfsObjects} Git LFS objects` : '') +
          `; ${Object.keys(result.refs).length} refs set`,
      );
      if (result.skippedSubmodules > 0) {
        cli.err(
          `warning: ${result.skippedSubmodules} submodule entries left out (MediaGit has no submodules)`,
        );
      }
    });
}
