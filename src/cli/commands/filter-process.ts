import type { Command } from 'commander';
import { serveFilterProcess } from '../../git/filter.ts';
import { fetcherFor } from '../../git/media-remote.ts';
import { GitMediaStore } from '../../git/media-store.ts';
import type { Cli } from '../context.ts';
import { gitContext } from '../git-context.ts';

/** Writes bytes to standard output, waiting when the pipe is full. */
export function writeStdout(data: Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => {
    process.stdout.write(data, (error) => (error ? reject(error) : resolve()));
  });
}

export function register(program: Command, cli: Cli): void {
  program
    .command('filter-process')
    .description(
      "Serve Git's long-running filter protocol (version 2, with delay) on standard input/output",
    )
    .action(async () => {
      const { location, remote, client, minSize } = await gitContext(cli);
      const store = await GitMediaStore.open(location.gitDir);
      try {
        const counts = await serveFilterProcess(store, process.stdin, process.stdout, {
          fetch: remote ? fetcherFor(remote, client) : undefined,
          skip: Boolean(cli.env['MEDIAGIT_SKIP_SMUDGE']),
          workTree: location.workTree,
          minSize,
          report: (message) => cli.err(`mediagit: ${message}`),
        });
        if (cli.env['MEDIAGIT_TRACE']) {
          cli.err(
            `mediagit filter-process: pid ${process.pid}: ${counts.cleaned} cleaned, ${counts.smudged} smudged, ${counts.delayed} delayed, ${counts.fetched} fetched`,
          );
        }
      } finally {
        await store.close();
      }
    });
}
