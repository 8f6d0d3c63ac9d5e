import type { Command } from 'commander';
import { printJson, type Cli } from '../context.ts';
import { lockTarget, repositoryPath } from '../lock-client.ts';

export function register(program: Command, cli: Cli): void {
  program
    .command('locks')
    .description('List the file locks held on the server')
    .option('--path <path>', 'only the lock of this file')
    .option('-i, --id <id>', 'only the lock with this ID')
    .option('--remote <name>', 'the remote holding the locks', 'origin')
    .option('--json', 'machine-readable output')
    .action(async (opts: { path?: string; id?: string; remote: string; json?: boolean }) => {
      const { client, root } = await lockTarget(cli, opts.remote);
      try {
        const locks = await client.listLocks({
          ...(opts.path !== undefined ? { path: repositoryPath(cli, root, opts.path) } : {}),
          ...(opts.id !== undefined ? { id: opts.id } : {}),
        });
        if (opts.json) return printJson(cli, { locks });
        const width = Math.max(0, ...locks.map((l) => l.path.length));
        for (const lock of locks) {
          cli.out(`${lock.path.padEnd(width)}\t${lock.owner?.name ?? ''}\tID:${lock.id}`);
        }
      } finally {
        client.close();
      }
    });
}
