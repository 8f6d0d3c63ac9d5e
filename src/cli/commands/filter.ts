import type { Command } from 'commander';
import path from 'node:path';
import { smudge, workFileOf } from '../../git/filter.ts';
import { fetcherFor } from '../../git/media-remote.ts';
import { GitMediaStore } from '../../git/media-store.ts';
import type { Cli } from '../context.ts';
import { gitContext } from '../git-context.ts';
import { writeStdout } from './filter-process.ts';

export function register(program: Command, cli: Cli): void {
  const filter = program
    .command('filter')
    .description('Git clean/smudge filter for one file (Git runs these; see `mediagit install`)');
  filter
    .command('clean')
    .description('Store standard input in the MediaGit store and print its Git LFS pointer')
    .argument('[path]', 'the path Git is cleaning (%f)')
    .action(async (file: string | undefined) => {
      const { location, minSize } = await gitContext(cli);
      const store = await GitMediaStore.open(location.gitDir);
      try {
        // Git runs the filter at the top of the work tree, with %f relative to it.
        const workFile = workFileOf(
          location.workTree,
          path.relative(location.workTree ?? cli.cwd, path.resolve(cli.cwd, file ?? '')),
        );
        await writeStdout(
          await store.clean(process.stdin, file ?? '', file ? workFile : undefined, minSize),
        );
      } finally {
        await store.close();
      }
    });
  filter
    .command('smudge')
    .description(
      'Print the content behind the Git LFS pointer on standard input (other input unchanged)',
    )
    .argument('[path]', 'the path Git is checking out (%f)')
    .action(async () => {
      const { location, remote, client } = await gitContext(cli);
      const store = await GitMediaStore.open(location.gitDir);
      try {
        await smudge(store, process.stdin, writeStdout, {
          fetch: remote ? fetcherFor(remote, client) : undefined,
          skip: Boolean(cli.env['MEDIAGIT_SKIP_SMUDGE']),
        });
      } finally {
        await store.close();
      }
    });
}
