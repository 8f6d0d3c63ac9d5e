import type { Command } from 'commander';
import { printJson, type Cli } from '../context.ts';
import { branchRef, lockTarget, repositoryPath } from '../lock-client.ts';
import { shortRef } from './lock.ts';

export function register(program: Command, cli: Cli): void {
  program
    .command('locks')
    .description('List the file locks held on the server')
    .option('--path <path>', 'only the lock of this file')
    .option('-i, --id <id>', 'only the lock with this ID')
    .option('--ref <branch>', 'only the locks that apply to this branch (its own and global ones)')
    .option('--remote <name>', 'the remote holding the locks', 'origin')
    .option('--json', 'machine-readable output')
    .action(
      async (opts: {
        path?: string;
        id?: string;
        ref?: string;
        remote: string;
        json?: boolean;
      }) => {
        const { client, root } = await lockTarget(cli, opts.remote);
        try {
          const locks = await client.listLocks({
            ...(opts.path !== undefined ? { path: repositoryPath(cli, root, opts.path) } : {}),
            ...(opts.id !== undefined ? { id: opts.id } : {}),
            ...(opts.ref !== undefined ? { refspec: branchRef(opts.ref) } : {}),
          });
          if (opts.json) return printJson(cli, { locks });
          const width = Math.max(0, ...locks.map((l) => l.path.length));
          const refWidth = Math.max(0, ...locks.map((l) => refLabel(l.ref).length));
          for (const lock of locks) {
            cli.out(
              `${lock.path.padEnd(width)}\t${refLabel(lock.ref).padEnd(refWidth)}\t${lock.owner?.name ?? ''}\tID:${lock.id}`,
            );
          }
        } finally {
          client.close();
        }
      },
    );
}

/** The branch column: the branch name, or `*` for a lock on every branch. */
function refLabel(ref: { name: string } | undefined): string {
  return ref ? shortRef(ref.name) : '*';
}
