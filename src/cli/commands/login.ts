import type { Command } from 'commander';
import { MediaGitError } from '../../errors.ts';
import { readStdin, type Cli } from '../context.ts';
import { originOf, saveCredential } from '../credentials.ts';

export function register(program: Command, cli: Cli): void {
  program
    .command('login')
    .description('Store an API key for a server (OS keyring when available, else a 0600 file)')
    .argument('<url>', 'the server or one of its repository URLs')
    .option('--token <key>', 'the API key (default: read from standard input)')
    .action(async (url: string, opts: { token?: string }) => {
      if (originOf(url) === undefined) {
        throw new MediaGitError('LOGIN_URL', `${url} is not an http(s) URL`, { kind: 'usage' });
      }
      const token = (opts.token ?? (await readStdin())).trim();
      if (token === '' || /\s/.test(token)) {
        throw new MediaGitError('LOGIN_TOKEN', 'no API key given (pass --token or pipe it in)', {
          kind: 'usage',
        });
      }
      const where = await saveCredential(cli, url, token);
      cli.err(
        `Credential for ${originOf(url)} stored in ${where === 'keyring' ? 'the OS keyring' : where}`,
      );
    });
}
