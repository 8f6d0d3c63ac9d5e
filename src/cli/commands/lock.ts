import type { Command } from 'commander';
import { printJson, type Cli } from '../context.ts';
import { lockTarget, repositoryPath } from '../lock-client.ts';

export function register(program: Command, cli: Cli): void {
  program
    .command('lock')
    .description('Lock a file on the server so that others cannot push changes to it')
    .argument('<path>', 'the file to lock')
    .option('--remote <name>', 'the remote holding the locks', 'origin')
    .option('--json', 'machine-readable output')
    .action(async (file: string, opts: { remote: string; json?: boolean }) => {
      const { client, root } = await lockTarget(cli, opts.remote);
      try {
        const lock = await client.createLock(repositoryPath(cli, root, file));
        if (opts.json) printJson(cli, { lock });
        else cli.out(`Locked ${lock.path}`);
      } finally {
        client.close();
      }
    });
}
