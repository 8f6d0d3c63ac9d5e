import type { Command } from 'commander';
import { repack, type RepackResult } from '../../repo/repack.ts';
import { printJson, type Cli } from '../context.ts';
import { formatBytes } from '../format-bytes.ts';
import { progressReporter } from '../progress.ts';

export function register(program: Command, cli: Cli): void {
  program
    .command('repack')
    .description('Pack loose objects into a pack file (with -a, everything into one pack)')
    .option('-a', 'pack everything, merging the existing packs into the new one')
    .option('-d', 'then delete the loose objects and (with -a) the packs it made redundant')
    .option('-q, --quiet', 'print nothing on success')
    .option('--json', 'print the result as JSON')
    .action(async (opts: { a?: boolean; d?: boolean; quiet?: boolean; json?: boolean }) => {
      const repo = await cli.openRepo();
      const progress = progressReporter(cli, 'Packing', { quiet: opts.quiet === true });
      let result: RepackResult;
      try {
        result = await repack(repo, {
          all: opts.a === true,
          deleteRedundant: opts.d === true,
          onProgress: progress.update,
        });
      } finally {
        progress.stop();
      }
      if (opts.json) {
        printJson(cli, { ...result, pack: result.pack ?? null });
        return;
      }
      if (opts.quiet) return;
      if (result.pack === undefined) {
        cli.out('Nothing new to pack.');
        return;
      }
      const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;
      cli.out(
        `Packed ${plural(result.objects, 'object')} (${formatBytes(result.bytes)}) into pack-${result.pack}.pack`,
      );
      if (opts.d) {
        cli.out(
          `Removed ${plural(result.looseRemoved, 'loose object')} and ${plural(result.packsRemoved, 'pack')}`,
        );
      }
    });
}
