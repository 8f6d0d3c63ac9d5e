import type { Command } from 'commander';
import { MediaGitError } from '../../errors.ts';
import { printJson, type Cli } from '../context.ts';
import { lockTarget, repositoryPath } from '../lock-client.ts';

export function register(program: Command, cli: Cli): void {
  program
    .command('unlock')
    .description("Release a file lock (yours, or anyone's with --force and an admin key)")
    .argument('[path]', 'the locked file')
    .option('-i, --id <id>', 'the lock ID instead of a path')
    .option('-f, --force', "release someone else's lock")
    .option('--remote <name>', 'the remote holding the locks', 'origin')
    .option('--json', 'machine-readable output')
    .action(
      async (
        file: string | undefined,
        opts: { id?: string; force?: boolean; remote: string; json?: boolean },
      ) => {
        if ((file === undefined) === (opts.id === undefined)) {
          throw new MediaGitError('UNLOCK_USAGE', 'give a path or --id (one of them)', {
            kind: 'usage',
          });
        }
        const { client, root } = await lockTarget(cli, opts.remote);
        try {
          let id = opts.id;
          if (file !== undefined) {
            const repoPath = repositoryPath(cli, root, file);
            const [lock] = await client.listLocks({ path: repoPath });
            if (!lock) {
              throw new MediaGitError('NOT_LOCKED', `${repoPath} is not locked`, { kind: 'user' });
            }
            id = lock.id;
          }
          const lock = await client.unlock(id!, opts.force === true);
          if (opts.json) printJson(cli, { lock });
          else cli.out(`Unlocked ${lock.path}`);
        } finally {
          client.close();
        }
      },
    );
}
