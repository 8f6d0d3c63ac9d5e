import path from 'node:path';
import type { Command } from 'commander';
import { MediaGitError } from '../../errors.ts';
import { TokenStore, type TokenInfo } from '../../protocol/token-store.ts';
import type { Scope } from '../../security/api-keys.ts';
import { printJson, type Cli } from '../context.ts';

export function register(program: Command, cli: Cli): void {
  const token = program
    .command('token')
    .description('Manage the API keys of a server root (a folder of bare repositories)');

  token
    .command('create')
    .description('Create an API key; it is printed once and cannot be shown again')
    .requiredOption('--root <dir>', 'the server root')
    .requiredOption('--user <name>', 'the user the key acts as')
    .requiredOption('--repo <name|*>', "the repository the key may access, or '*' for all")
    .requiredOption('--scope <scope>', 'read, write or admin')
    .option('--json', 'print the key and its record as JSON')
    .action(
      async (opts: { root: string; user: string; repo: string; scope: string; json?: boolean }) => {
        const store = new TokenStore(path.resolve(cli.cwd, opts.root));
        const { key, record } = await store.create({
          user: opts.user,
          repo: opts.repo,
          // Validated by the store, which names the allowed scopes.
          scope: opts.scope as Scope,
        });
        if (opts.json) {
          printJson(cli, { key, ...info(record) });
        } else {
          cli.out(key);
        }
        cli.err(`hint: token ${record.id} created; store the key now, it will not be shown again`);
      },
    );

  token
    .command('list')
    .description('List the API keys of a server root (never their secrets)')
    .requiredOption('--root <dir>', 'the server root')
    .option('--json', 'print the tokens as JSON')
    .action(async (opts: { root: string; json?: boolean }) => {
      const tokens = await new TokenStore(path.resolve(cli.cwd, opts.root)).list();
      if (opts.json) {
        printJson(cli, tokens.map(info));
        return;
      }
      const lines = tokens.map(
        (t) =>
          `${t.id}  ${t.scope.padEnd(5)}  ${t.user}  ${t.repo}  created ${t.created}` +
          (t.revoked === undefined ? '' : `  revoked ${t.revoked}`),
      );
      if (lines.length > 0) cli.out(lines.join('\n'));
    });

  token
    .command('revoke')
    .description('Revoke an API key by its id; it stops working at once')
    .requiredOption('--root <dir>', 'the server root')
    .argument('<id>', 'the token id (the 16 hex characters after mgk_)')
    .action(async (id: string, opts: { root: string }) => {
      const root = path.resolve(cli.cwd, opts.root);
      if (!(await new TokenStore(root).revoke(id))) {
        throw new MediaGitError('TOKEN_UNKNOWN', `no token with id '${id}' in ${root}`, {
          kind: 'user',
          data: { id, root },
        });
      }
      cli.out(`revoked token ${id}`);
    });
}

/** The fields a person may see, in a fixed order. */
function info(t: TokenInfo): Record<string, string | null> {
  return {
    id: t.id,
    user: t.user,
    repo: t.repo,
    scope: t.scope,
    created: t.created,
    revoked: t.revoked ?? null,
  };
}
