/**
 * `login <url>`: checks an API key against the server, then stores it for
 * that server and repository (credentials.ts). On a terminal the key is
 * asked for without echo, as `git credential` asks for a password; else it
 * is read from standard input or --token. `logout <url>` forgets it.
 */
import type { Command } from 'commander';
import { MediaGitError } from '../../errors.ts';
import { HttpTransport } from '../../protocol/http-transport.ts';
import type { RemoteAccess } from '../../protocol/transport.ts';
import { readStdin, type Cli } from '../context.ts';
import {
  credentialKey,
  eraseCredential,
  saveCredential,
  transportOptions,
} from '../credentials.ts';
import { dieOf } from '../interrupt.ts';

export function register(program: Command, cli: Cli): void {
  program
    .command('login')
    .description(
      'Check an API key against a server and store it for that repository (OS keyring when available, else a 0600 file)',
    )
    .argument('<url>', "a repository's URL, or a server's for a key valid for all its repositories")
    .option(
      '--token <key>',
      'the API key (insecure: other users see it in the process list; default: asked for on a terminal, else read from standard input)',
    )
    .option('--no-verify', 'store the key without asking the server whether it is valid')
    .action(async (url: string, opts: { token?: string; verify: boolean }) => {
      const key = credentialKey(url);
      if (key === undefined) {
        throw new MediaGitError('LOGIN_URL', `${url} is not an http(s) URL`, { kind: 'usage' });
      }
      if (opts.token !== undefined) {
        // As `docker login --password`: accepted, but the key is in the
        // process list and the shell's history while this runs.
        cli.err(
          'warning: a key given with --token is visible to other users of this machine (ps) and stays in shell history; pipe it in instead (echo "$KEY" | mediagit login <url>)',
        );
      }
      const given =
        opts.token ??
        (process.stdin.isTTY ? await askHidden(`API key for ${key}: `) : await readStdin());
      const token = given.trim();
      if (token === '' || /\s/.test(token)) {
        throw new MediaGitError('LOGIN_TOKEN', 'no API key given (pass --token or pipe it in)', {
          kind: 'usage',
        });
      }
      const access = opts.verify ? await verify(cli, key, token) : undefined;
      const where = await saveCredential(cli, key, token);
      const place = where === 'keyring' ? 'the OS keyring' : where;
      if (access?.user) {
        const repo = access.repo === '*' ? 'all repositories' : `repository ${access.repo}`;
        cli.err(`Logged in to ${key} as ${access.user} (${access.scope} access to ${repo})`);
      } else if (opts.verify) {
        cli.err(`warning: ${key} cannot say whether the key is valid (a server before 0.1?)`);
      }
      cli.err(`Credential for ${key} stored in ${place}`);
    });
}

/** `logout` (its own verb, in logout.ts). */
export function registerLogout(program: Command, cli: Cli): void {
  program
    .command('logout')
    .description('Forget the API key stored for a server or repository')
    .argument('<url>', 'the URL given to login')
    .action(async (url: string) => {
      const key = credentialKey(url);
      if (key === undefined) {
        throw new MediaGitError('LOGIN_URL', `${url} is not an http(s) URL`, { kind: 'usage' });
      }
      if (!(await eraseCredential(cli, key))) {
        throw new MediaGitError('NOT_LOGGED_IN', `no credential is stored for ${key}`, {
          kind: 'user',
          data: { exitCode: 1 },
        });
      }
      cli.err(`Credential for ${key} removed`);
    });
}

/** Asks the server who the key is; refuses a key it does not accept (nothing is stored). */
async function verify(cli: Cli, key: string, token: string): Promise<RemoteAccess | undefined> {
  const { ca } = await transportOptions(cli, key);
  const transport = new HttpTransport(key, { token, ...(ca ? { ca } : {}) });
  try {
    return await transport.access();
  } catch (error) {
    if (!(error instanceof MediaGitError)) throw error;
    const status = error.data['status'];
    const refused = status === 401 || status === 403;
    throw new MediaGitError(
      refused ? 'LOGIN_REFUSED' : error.code,
      refused
        ? `Authentication failed for '${key}': ${error.message.replace(/ \(set MEDIAGIT_TOKEN.*\)$/, '')}; nothing was stored`
        : `${error.message}; nothing was stored (--no-verify stores the key unchecked)`,
      { kind: 'user', data: { exitCode: 128 }, cause: error },
    );
  } finally {
    await transport.close();
  }
}

/**
 * Reads a line from the terminal with echo off (raw mode), the prompt on
 * standard error. Backspace edits; Ctrl-C ends the command as a signal
 * would; Ctrl-D on an empty line gives up.
 */
async function askHidden(prompt: string): Promise<string> {
  const stdin = process.stdin;
  // Echo goes off before the prompt shows: a key pasted the moment the prompt
  // appears must not be echoed by the terminal.
  stdin.setRawMode(true);
  process.stderr.write(prompt);
  stdin.resume();
  let typed = '';
  try {
    return await new Promise<string>((resolve, reject) => {
      const onData = (data: Buffer): void => {
        for (const char of data.toString('utf8')) {
          if (char === '\r' || char === '\n') {
            resolve(typed);
            return;
          }
          if (char === '\u0003') {
            reject(new Interrupt());
            return;
          }
          if (char === '\u0004' && typed === '') {
            resolve('');
            return;
          }
          if (char === '\u007f' || char === '\b') typed = typed.slice(0, -1);
          else if (char >= ' ') typed += char;
        }
      };
      stdin.on('data', onData);
      stdin.once('end', () => resolve(typed));
    });
  } catch (error) {
    if (error instanceof Interrupt) {
      stdin.setRawMode(false);
      process.stderr.write('\n');
      dieOf('SIGINT');
    }
    throw error;
  } finally {
    stdin.removeAllListeners('data');
    stdin.setRawMode(false);
    stdin.pause();
    process.stderr.write('\n');
  }
}

class Interrupt extends Error {}
