import type { Command } from 'commander';
import { MediaGitError } from '../../errors.ts';
import { listTracked, track } from '../../git/attributes.ts';
import { locateGitRepo } from '../../git/git-command.ts';
import { installHook } from '../../git/install.ts';
import { printJson, type Cli } from '../context.ts';

export function register(program: Command, cli: Cli): void {
  program
    .command('track')
    .description(
      'Route paths matching patterns through the MediaGit filter (.gitattributes); no pattern: list them',
    )
    .argument('[pattern...]', 'gitattributes patterns, such as "*.mp4"')
    .option('-l, --list', 'list the tracked patterns')
    .option('--json', 'with --list: machine-readable output')
    .action(async (patterns: string[], opts: { list?: boolean; json?: boolean }) => {
      const { gitDir, workTree } = await locateGitRepo(cli.cwd, cli.env);
      if (!workTree) {
        throw new MediaGitError(
          'BARE_REPO',
          'track needs a work tree (this is a bare repository)',
          { kind: 'usage' },
        );
      }
      if (opts.list || patterns.length === 0) {
        const tracked = await listTracked(workTree, gitDir);
        if (opts.json) return printJson(cli, { patterns: tracked });
        cli.out('Listing tracked patterns');
        for (const { pattern, source } of tracked) cli.out(`    ${pattern} (${source})`);
        return;
      }
      const added = new Set(await track(workTree, patterns));
      await installHook(gitDir);
      for (const pattern of patterns) {
        cli.out(added.has(pattern) ? `Tracking "${pattern}"` : `"${pattern}" already supported`);
      }
    });
}
