import type { Command } from 'commander';
import { fetch, resolveRemote, type FetchResult } from '../../protocol/fetch.ts';
import { listRemotes } from '../../repo/remote.ts';
import type { Repository } from '../../repo/repository.ts';
import { printJson, type Cli } from '../context.ts';
import { transportOptions } from '../credentials.ts';
import { progressReporter } from '../progress.ts';
import { rangeSummary, refLine, shortRef, statsLine } from './transfer-format.ts';

export interface FetchFlags {
  all?: boolean;
  prune?: boolean;
  depth?: number;
  unshallow?: boolean;
  json?: boolean;
  quiet?: boolean;
}

export async function runFetch(
  cli: Cli,
  repo: Repository,
  remote: string,
  opts: FetchFlags,
): Promise<FetchResult> {
  const { url } = await resolveRemote(repo, remote);
  const progress = progressReporter(cli, 'Receiving chunks', { quiet: opts.quiet === true });
  try {
    return await fetch(repo, {
      ...(await transportOptions(cli, url)),
      remote,
      prune: opts.prune === true,
      depth: opts.depth,
      unshallow: opts.unshallow === true,
      onProgress: (done, total) => progress.update({ bytes: done, total }),
    });
  } finally {
    progress.stop();
  }
}

export function reportFetch(cli: Cli, result: FetchResult): void {
  if (result.changes.length === 0 && result.stats.chunks === 0 && result.stats.objects === 0)
    return;
  const lines = [`From ${result.url}`];
  for (const change of result.changes) {
    const to = shortRef(change.ref);
    const from = shortRef(change.remoteRef);
    if (change.new === null) lines.push(refLine('-', '[deleted]', '(none)', to));
    else if (change.old === null)
      lines.push(
        refLine('*', change.ref.startsWith('refs/tags/') ? '[new tag]' : '[new branch]', from, to),
      );
    else lines.push(refLine(' ', rangeSummary(change.old, change.new), from, to));
  }
  lines.push(statsLine(result.stats, 'received'));
  cli.err(lines.join('\n'));
}

export function register(program: Command, cli: Cli): void {
  program
    .command('fetch')
    .description("Download a remote's branches and tags (only the chunks missing here)")
    .argument('[remote]', 'remote name or URL (default: origin)')
    .option('--all', 'fetch every remote')
    .option('-p, --prune', 'remove remote-tracking branches that no longer exist on the remote')
    .option('--depth <n>', 'fetch at most n commits of each branch', (v) => Number(v))
    .option('--unshallow', 'fetch the rest of a shallow clone')
    .option('--json', 'print the result as JSON')
    .option('-q, --quiet', 'print only errors')
    .action(async (remote: string | undefined, opts: FetchFlags) => {
      const repo = await cli.openRepo();
      const remotes = opts.all
        ? (await listRemotes(repo)).map((r) => r.name)
        : [remote ?? 'origin'];
      const results: FetchResult[] = [];
      for (const name of remotes) {
        const result = await runFetch(cli, repo, name, opts);
        results.push(result);
        if (!opts.json && !opts.quiet) reportFetch(cli, result);
      }
      if (opts.json) printJson(cli, opts.all ? results : results[0]);
    });
}
