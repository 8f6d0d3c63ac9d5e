import type { Command } from 'commander';
import { MediaGitError } from '../../errors.ts';
import {
  coneFolders,
  readSparseSpec,
  updateSparse,
  type SparseSpec,
  type SparseUpdateResult,
} from '../../repo/sparse.ts';
import type { Repository } from '../../repo/repository.ts';
import { toRepoPath } from '../../repo/worktree.ts';
import { printJson, type Cli } from '../context.ts';

interface ModeOptions {
  cone?: boolean;
}

/** `mediagit sparse-checkout`: Git's verbs (docs/sparse-checkout.md). */
export function register(program: Command, cli: Cli): void {
  const command = program
    .command('sparse-checkout')
    .description('Check out only part of the tree (the index still holds every file)');

  const patternsOf = (repo: Repository, given: string[], cone: boolean): string[] =>
    cone
      ? coneFolders(
          given.map((g) => toRepoPath(repo.requireWorkTree('sparse-checkout'), cli.cwd, g)),
        )
      : given;

  command
    .command('set')
    .description('Check out only these folders (cone mode) or patterns (--no-cone)')
    .argument('[patterns...]', 'folders, or gitignore-style patterns with --no-cone')
    .option(
      '--cone',
      'folders: everything under them, and the files of the folders above (default)',
    )
    .option('--no-cone', 'gitignore-style patterns')
    .action(async (given: string[], opts: ModeOptions) => {
      const repo = await cli.openRepo();
      const current = await readSparseSpec(repo);
      const cone = opts.cone ?? current?.cone ?? true;
      report(cli, await updateSparse(repo, { cone, patterns: patternsOf(repo, given, cone) }));
    });

  command
    .command('add')
    .description('Add folders or patterns to the sparse checkout')
    .argument('<patterns...>', 'folders, or patterns in --no-cone mode')
    .action(async (given: string[]) => {
      const repo = await cli.openRepo();
      const current = await requireSparse(repo, 'no sparse-checkout to add to');
      const added = patternsOf(repo, given, current.cone);
      const patterns = current.cone
        ? coneFolders([...current.patterns, ...added])
        : [...current.patterns, ...added.filter((p) => !current.patterns.includes(p))];
      report(cli, await updateSparse(repo, { cone: current.cone, patterns }));
    });

  command
    .command('init')
    .description('Turn sparse checkout on with only the files at the top (as `set` with nothing)')
    .option('--cone', 'cone mode (default)')
    .option('--no-cone', 'pattern mode')
    .action(async (opts: ModeOptions) => {
      const repo = await cli.openRepo();
      const current = await readSparseSpec(repo);
      const spec: SparseSpec = current ?? { cone: opts.cone ?? true, patterns: [] };
      report(cli, await updateSparse(repo, spec));
    });

  command
    .command('list')
    .description('Show the folders (cone mode) or patterns')
    .option('--json', 'machine-readable output')
    .action(async (opts: { json?: boolean }) => {
      const repo = await cli.openRepo();
      const current = await requireSparse(repo, 'this worktree is not sparse');
      if (opts.json) printJson(cli, current);
      else for (const pattern of current.patterns) cli.out(pattern);
    });

  command
    .command('reapply')
    .description('Bring the working tree back in line with the patterns')
    .action(async () => {
      const repo = await cli.openRepo();
      const current = await requireSparse(
        repo,
        'must be in a sparse-checkout to reapply sparsity patterns',
      );
      report(cli, await updateSparse(repo, current));
    });

  command
    .command('disable')
    .description('Check out the whole tree again')
    .action(async () => {
      const repo = await cli.openRepo();
      report(cli, await updateSparse(repo, undefined));
    });
}

async function requireSparse(repo: Repository, message: string): Promise<SparseSpec> {
  const current = await readSparseSpec(repo);
  if (!current) throw new MediaGitError('NOT_SPARSE', message, { kind: 'usage' });
  return current;
}

/** Git's warning for files left outside the patterns because they hold changes. */
function report(cli: Cli, result: SparseUpdateResult): void {
  if (result.kept.length === 0) return;
  cli.err(
    'warning: The following paths are not up to date and were left despite sparse patterns:\n' +
      result.kept.map((p) => `\t${p}\n`).join('') +
      '\nAfter fixing the above paths, you may want to run `mediagit sparse-checkout reapply`.',
  );
}
