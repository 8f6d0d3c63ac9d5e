import type { Command } from 'commander';
import { MediaGitError } from '../../errors.ts';
import { GitMediaStore } from '../../git/media-store.ts';
import { prePush, pushedPointers } from '../../git/pre-push.ts';
import { readStdin, type Cli } from '../context.ts';
import { gitContext } from '../git-context.ts';

export function register(program: Command, cli: Cli): void {
  program
    .command('pre-push')
    .description(
      "Git's pre-push hook: upload the content of pushed pointers, refuse files locked by others",
    )
    .argument('<remote>', 'the Git remote name (from Git)')
    .argument('[url]', 'the Git remote URL (from Git)')
    .action(async (remoteName: string, url: string | undefined) => {
      const updates = await readStdin();
      const { location, remote, client } = await gitContext(cli, remoteName, url);
      const pushed = await pushedPointers(cli.cwd, cli.env, remoteName, updates);
      if (pushed.length === 0) return;
      if (!remote) {
        throw new MediaGitError(
          'NO_MEDIA_REMOTE',
          `this push carries ${pushed.length} MediaGit pointer(s) but no MediaGit remote is configured for ${remoteName} (set \`git config mediagit.url <url>\`)`,
          { kind: 'user' },
        );
      }
      const store = await GitMediaStore.open(location.gitDir);
      try {
        const result = await prePush(store, remote, pushed, client);
        if (result.uploaded > 0)
          cli.err(`MediaGit: uploaded ${result.uploaded} file(s), ${result.present} already there`);
      } finally {
        await store.close();
      }
    });
}
