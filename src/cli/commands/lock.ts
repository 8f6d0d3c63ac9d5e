import path from 'node:path';
import type { Command } from 'commander';
import { makeWritable } from '../../repo/lockable.ts';
import { printJson, type Cli } from '../context.ts';
import { branchRef, lockTarget, repositoryPath } from '../lock-client.ts';

export function register(program: Command, cli: Cli): void {
  program
    .command('lock')
    .description('Lock a file on the server so that others cannot push changes to it')
    .argument('<path>', 'the file to lock')
    .option('--ref <branch>', 'the branch to lock it on (default: the current branch)')
    .option('--remote <name>', 'the remote holding the locks', 'origin')
    .option('--json', 'machine-readable output')
    .action(async (file: string, opts: { ref?: string; remote: string; json?: boolean }) => {
      const { client, root, branch, head } = await lockTarget(cli, opts.remote);
      try {
        const ref = opts.ref !== undefined ? branchRef(opts.ref) : branch;
        const repoPath = repositoryPath(cli, root, file);
        // The smart-lock rule compares HEAD with the branch tip: only when
        // locking on the branch checked out.
        const base = ref !== undefined && ref === branch ? head : undefined;
        const lock = await client.createLock(repoPath, ref, base);
        // Yours to edit now (a lockable file was checked out read-only).
        if (root !== undefined) await makeWritable(path.join(root, ...repoPath.split('/')));
        if (opts.json) printJson(cli, { lock });
        else cli.out(`Locked ${lock.path}`);
      } finally {
        client.close();
      }
    });
}

export function shortRef(ref: string): string {
  return ref.startsWith('refs/heads/') ? ref.slice('refs/heads/'.length) : ref;
}
