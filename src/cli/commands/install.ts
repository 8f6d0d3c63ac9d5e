import type { Command } from 'commander';
import { MediaGitError } from '../../errors.ts';
import { locateGitRepo } from '../../git/git-command.ts';
import { installFilter, installLfsAgent, type ConfigScope } from '../../git/install.ts';
import type { Cli } from '../context.ts';

/** The Git config scope `--local`/`--global` ask for, and the repository's git dir when in one. */
export async function installTarget(
  cli: Cli,
  opts: { local?: boolean; global?: boolean },
): Promise<{ scope: ConfigScope; gitDir: string | undefined }> {
  if (opts.local && opts.global) {
    throw new MediaGitError('INSTALL_USAGE', '--local and --global exclude each other', {
      kind: 'usage',
    });
  }
  const gitDir = await locateGitRepo(cli.cwd, cli.env).then(
    (found) => (found.workTree ? found.gitDir : undefined),
    () => undefined,
  );
  return { scope: opts.local ? 'local' : 'global', gitDir };
}

export function register(program: Command, cli: Cli): void {
  program
    .command('install')
    .description(
      'Register the MediaGit filter with Git (clean, smudge, filter-process) and the pre-push hook',
    )
    .option('--local', "in this repository's config only")
    .option('--global', "in the user's global Git config (the default)")
    .option(
      '--lfs-agent',
      "only register the git-lfs transfer agent (stock git-lfs moves chunks to and from 'mediagit serve'); the filter is left alone",
    )
    .action(async (opts: { local?: boolean; global?: boolean; lfsAgent?: boolean }) => {
      const { scope, gitDir } = await installTarget(cli, opts);
      if (opts.lfsAgent) {
        await installLfsAgent(cli.cwd, cli.env, scope, gitDir);
        cli.out(
          `git-lfs transfer agent "mediagit" registered (${scope} Git config): pushes and fetches to MediaGit servers move only missing chunks.`,
        );
        return;
      }
      const result = await installFilter(cli.cwd, cli.env, scope, gitDir);
      cli.out(`MediaGit filter installed (${scope} Git config).`);
      if (result.hook === 'installed') {
        cli.out('Installed the pre-push, post-checkout and post-merge hooks.');
      }
      for (const name of result.foreign.filter((n) => n !== 'pre-push')) {
        cli.err(
          `warning: .git/hooks/${name} exists and is not MediaGit's; add "mediagit ${name} \\"$@\\"" to it so lockable files go read-only`,
        );
      }
      if (result.hook === 'foreign') {
        cli.err(
          'warning: .git/hooks/pre-push exists and is not MediaGit\'s; add "mediagit pre-push \\"$@\\"" to it so pushes upload their content',
        );
      }
    });
}
