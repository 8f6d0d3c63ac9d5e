import type { Command } from 'commander';
import { MediaGitError } from '../../errors.ts';
import { ServerRoot } from '../../protocol/server-root.ts';
import { TokenStore, type TokenInfo } from '../../protocol/token-store.ts';
import { storageSettings } from '../storage-settings.ts';
import type { Scope } from '../../security/api-keys.ts';
import { printJson, type Cli } from '../context.ts';

async function openStore(cli: Cli, root: string): Promise<TokenStore> {
  return new TokenStore(
    ServerRoot.open(root, { cwd: cli.cwd, settings: await storageSettings(cli.env) }),
  );
}

export function register(program: Command, cli: Cli): void {
  const token = program
    .command('token')
    .description('Manage the API keys of a server root (a folder of bare repositories)');

  token
    .command('create')
    .description('Create an API key; it is printed once and cannot be shown again')
    .requiredOption('--root <dir|url>', 'the server root (a folder or a storage URL)')
    .requiredOption('--user <name>', 'the user the key acts as')
    .requiredOption('--repo <name|*>', "the repository the key may access, or '*' for all")
    .requiredOption('--scope <scope>', 'read, write or admin')
    .option('--json', 'print the key and its record as JSON')
    .action(
      async (opts: { root: string; user: string; repo: string; scope: string; json?: boolean }) => {
        const store = await openStore(cli, opts.root);
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
    .requiredOption('--root <dir|url>', 'the server root (a folder or a storage URL)')
    .option('--json', 'print the tokens as JSON')
    .action(async (opts: { root: string; json?: boolean }) => {
      const tokens = await (await openStore(cli, opts.root)).list();
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
    .requiredOption('--root <dir|url>', 'the server root (a folder or a storage URL)')
    .argument('<id>', 'the token id (the 16 hex characters after mgk_)')
    .action(async (id: string, opts: { root: string }) => {
      const store = await openStore(cli, opts.root);
      const root = store.root;
      if (!(await store.revoke(id))) {
        throw new MediaGitError('TOKEN_UNKNOWN', `no token with id '${id}' in ${root}`, {
          kind: 'user',
          data: { id, root },
        });
      }
      cli.out(`revoked token ${id}`);
    });

  token
    .command('rotate-signing-key')
    .description(
      'Make a new key sign access tokens; the previous key still verifies (its tokens live out their 15 minutes), older keys stop working',
    )
    .requiredOption('--root <dir|url>', 'the server root (a folder or a storage URL)')
    .option('--json', 'print the new key id and the kept and dropped ones as JSON')
    .action(async (opts: { root: string; json?: boolean }) => {
      const rotated = await (await openStore(cli, opts.root)).rotateSigningKey();
      if (opts.json) {
        printJson(cli, rotated);
        return;
      }
      cli.out(`signing key ${rotated.kid} now signs access tokens`);
      if (rotated.kept.length > 0) cli.out(`still verifying: ${rotated.kept.join(', ')}`);
      if (rotated.dropped.length > 0) {
        cli.out(
          `no longer accepted: ${rotated.dropped.join(', ')} (tokens they signed stop working)`,
        );
      }
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
