import type { Command } from 'commander';
import { gitConfigGet } from '../../git/git-command.ts';
import { runMergeDriver } from '../../git/merge-driver.ts';
import { fetcherFor } from '../../git/media-remote.ts';
import { GitMediaStore } from '../../git/media-store.ts';
import type { Cli } from '../context.ts';
import { ExitRequest } from '../exit.ts';
import { gitContext } from '../git-context.ts';

export function register(program: Command, cli: Cli): void {
  program
    .command('merge-driver')
    .description(
      "Git's merge driver for MediaGit files: a media-aware merge of %O %A %B (see `mediagit install`)",
    )
    .argument('<base>', '%O: the common ancestor')
    .argument('<ours>', '%A: our version, replaced by the result')
    .argument('<theirs>', '%B: their version')
    .argument('[path]', '%P: the path in the repository')
    .action(async (base: string, ours: string, theirs: string, file: string | undefined) => {
      const { location, remote, client } = await gitContext(cli);
      const media = await gitConfigGet('mediagit.mergeMedia', { cwd: cli.cwd, env: cli.env });
      const store = await GitMediaStore.open(location.gitDir);
      try {
        const outcome = await runMergeDriver(
          store,
          { base, ours, theirs, path: file ?? ours },
          {
            fetch: remote ? fetcherFor(remote, client) : undefined,
            media: media === undefined || !/^(false|no|off|0)$/i.test(media),
          },
        );
        if (!outcome.merged) {
          cli.err(`mediagit: ${file ?? ours}: ${outcome.reason}`);
          throw new ExitRequest(1);
        }
      } finally {
        await store.close();
      }
    });
}
