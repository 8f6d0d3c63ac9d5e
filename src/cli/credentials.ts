/**
 * Credentials for HTTP remotes. Looked up in this order: `MEDIAGIT_TOKEN`;
 * the OS keyring (libsecret's `secret-tool`, when installed and a session
 * keyring answers); the 0600 file `<config dir>/mediagit/credentials.toml`,
 * keyed by the server's origin (scheme://host:port). `mediagit login` stores
 * into the keyring when it can, else into the file.
 *
 * `MEDIAGIT_CA_FILE` names a PEM file of certificates to trust (a server
 * started with --tls-self-signed prints where its certificate is).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { readConfigFile, writeConfigFile, type ConfigTable } from '../config/config.ts';
import { MediaGitError } from '../errors.ts';
import { globalConfigPath, type Cli } from './context.ts';
import type { TransportOptions } from '../protocol/open-transport.ts';

const KEYRING_ATTRIBUTES = (origin: string): string[] => ['service', 'mediagit', 'server', origin];

export function originOf(url: string): string | undefined {
  try {
    const parsed = new URL(url);
    return parsed.protocol === 'http:' || parsed.protocol === 'https:' ? parsed.origin : undefined;
  } catch {
    return undefined;
  }
}

function credentialsFile(cli: Cli): string {
  return path.join(path.dirname(globalConfigPath(cli.env)), 'credentials.toml');
}

function keyringAvailable(cli: Cli): boolean {
  if (cli.env['MEDIAGIT_NO_KEYRING']) return false;
  const probe = spawnSync('secret-tool', ['--version'], { stdio: 'ignore', env: cli.env });
  return probe.status === 0 && Boolean(cli.env['DBUS_SESSION_BUS_ADDRESS']);
}

/** The credentials file: origin → { token } (a TOML table, read like a config file). */
async function readFileCredentials(cli: Cli): Promise<ConfigTable> {
  return readConfigFile(credentialsFile(cli));
}

export async function loadCredential(cli: Cli, url: string): Promise<string | undefined> {
  const fromEnv = cli.env['MEDIAGIT_TOKEN'];
  if (fromEnv) return fromEnv;
  const origin = originOf(url);
  if (origin === undefined) return undefined;
  if (keyringAvailable(cli)) {
    const found = spawnSync('secret-tool', ['lookup', ...KEYRING_ATTRIBUTES(origin)], {
      encoding: 'utf8',
      env: cli.env,
    });
    if (found.status === 0 && found.stdout.trim() !== '') return found.stdout.trim();
  }
  const entry = (await readFileCredentials(cli))[origin];
  const token = typeof entry === 'object' ? entry['token'] : undefined;
  return typeof token === 'string' ? token : undefined;
}

/** Stores `token` for the server of `url`; returns where it went. */
export async function saveCredential(
  cli: Cli,
  url: string,
  token: string,
): Promise<'keyring' | string> {
  const origin = originOf(url);
  if (origin === undefined) {
    throw new MediaGitError('LOGIN_URL', `${url} is not an http(s) URL`, { kind: 'usage' });
  }
  if (keyringAvailable(cli)) {
    const stored = spawnSync(
      'secret-tool',
      ['store', `--label=MediaGit ${origin}`, ...KEYRING_ATTRIBUTES(origin)],
      { input: token, env: cli.env },
    );
    if (stored.status === 0) return 'keyring';
  }
  const file = credentialsFile(cli);
  const all = await readFileCredentials(cli);
  all[origin] = { token };
  await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  await writeConfigFile(file, all, 0o600);
  return file;
}

/** How the CLI reaches `url`: working folder, credential and trusted certificates. */
export async function transportOptions(cli: Cli, url: string): Promise<TransportOptions> {
  const caFile = cli.env['MEDIAGIT_CA_FILE'];
  return {
    cwd: cli.cwd,
    token: await loadCredential(cli, url),
    ...(caFile ? { ca: await readCaFile(caFile) } : {}),
  };
}

async function readCaFile(file: string): Promise<Buffer> {
  try {
    return await fs.readFile(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? String(error);
    throw new MediaGitError(
      'CA_FILE_UNREADABLE',
      `MEDIAGIT_CA_FILE names '${file}', which cannot be read (${code === 'ENOENT' ? 'no such file' : code})`,
      { kind: 'config' },
    );
  }
}
