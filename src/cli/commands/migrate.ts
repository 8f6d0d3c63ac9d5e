import type { Command } from 'commander';
import { migrate } from '../../protocol/migrate.ts';
import { ServerRoot } from '../../protocol/server-root.ts';
import { printJson, type Cli } from '../context.ts';
import { progressReporter } from '../progress.ts';
import { storageSettings } from '../storage-settings.ts';

export function register(program: Command, cli: Cli): void {
  program
    .command('migrate')
    .description(
      'Copy a server root or one repository to another storage backend (file, s3://, az://, gs://), verifying every object; a rerun copies only what is missing',
    )
    .argument('<from>', 'the source: a folder or storage URL')
    .argument('<to>', 'the target: a folder or storage URL')
    .option('-n, --dry-run', 'say what would be copied; copy nothing')
    .option('--delete-source', 'delete the source once everything is copied and verified')
    .option('--json', 'print the result as JSON')
    .action(
      async (
        from: string,
        to: string,
        opts: { dryRun?: boolean; deleteSource?: boolean; json?: boolean },
      ) => {
        const settings = await storageSettings(cli.env);
        const source = ServerRoot.open(from, { cwd: cli.cwd, settings }).backend;
        const target = ServerRoot.open(to, { cwd: cli.cwd, settings }).backend;
        const progress = progressReporter(cli, 'Migrating');
        let result;
        try {
          result = await migrate(source, target, {
            dryRun: opts.dryRun === true,
            deleteSource: opts.deleteSource === true,
            onProgress: (p) => progress.update({ bytes: p.bytesDone, total: p.totalBytes }),
          });
        } finally {
          progress.stop();
        }
        if (opts.json) {
          printJson(cli, {
            from: source.url,
            to: target.url,
            dryRun: opts.dryRun === true,
            ...result,
          });
          return;
        }
        const mib = (n: number): string => `${(n / 1048576).toFixed(1)} MiB`;
        if (opts.dryRun) {
          cli.out(
            `would copy ${result.keys - result.alreadyThere} of ${result.keys} objects (${mib(result.totalBytes)} in all) from ${source.url} to ${target.url}; ${result.alreadyThere} are there already`,
          );
          return;
        }
        cli.out(
          `migrated ${result.keys} objects (${mib(result.totalBytes)}) from ${source.url} to ${target.url}: ${result.copied} copied (${mib(result.bytesCopied)}), ${result.alreadyThere} already there; every one verified`,
        );
        if (opts.deleteSource) cli.out(`deleted ${result.deleted} objects from ${source.url}`);
      },
    );
}
