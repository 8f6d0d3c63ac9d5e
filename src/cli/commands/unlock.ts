import path from 'node:path';
import type { Command } from 'commander';
import { MediaGitError } from '../../errors.ts';
import { makeReadOnly } from '../../repo/lockable.ts';
import { printJson, type Cli } from '../context.ts';
import { branchRef, lockTarget, repositoryPath } from '../lock-client.ts';
import { shortRef } from './lock.ts';

export function register(program: Command, cli: Cli): void {
  program
    .command('unlock')
    .description("Release a file lock (yours, or anyone's with --force and an admin key)")
    .argument('[path]', 'the locked file')
    .option('-i, --id <id>', 'the lock ID instead of a path')
    .option('-f, --force', "release someone else's lock")
    .option('--ref <branch>', 'the branch the lock is on (default: the current branch)')
    .option('--remote <name>', 'the remote holding the locks', 'origin')
    .option('--json', 'machine-readable output')
    .action(
      async (
        file: string | undefined,
        opts: { id?: string; force?: boolean; ref?: string; remote: string; json?: boolean },
      ) => {
        if ((file === undefined) === (opts.id === undefined)) {
          throw new MediaGitError('UNLOCK_USAGE', 'give a path or --id (one of them)', {
            kind: 'usage',
          });
        }
        const { client, root, branch, isLockable } = await lockTarget(cli, opts.remote);
        try {
          let id = opts.id;
          if (file !== undefined) {
            const repoPath = repositoryPath(cli, root, file);
            const ref = opts.ref !== undefined ? branchRef(opts.ref) : branch;
            // The lock on this branch, else a global one (one path may be
            // locked on several branches).
            const found = await client.listLocks({ path: repoPath });
            const lock =
              found.find((l) => ref !== undefined && l.ref?.name === ref) ??
              found.find((l) => l.ref === undefined);
            if (!lock) {
              const where = ref !== undefined ? ` on ${shortRef(ref)}` : '';
              throw new MediaGitError('NOT_LOCKED', `${repoPath} is not locked${where}`, {
                kind: 'user',
              });
            }
            id = lock.id;
          }
          const lock = await client.unlock(id!, opts.force === true);
          // Read-only again until it is locked again (lockable files only).
          if (root !== undefined && (await isLockable(lock.path))) {
            await makeReadOnly([path.join(root, ...lock.path.split('/'))]);
          }
          if (opts.json) printJson(cli, { lock });
          else cli.out(`Unlocked ${lock.path}`);
        } finally {
          client.close();
        }
      },
    );
}
