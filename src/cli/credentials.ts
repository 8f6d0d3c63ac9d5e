/**
 * Credentials for HTTP remotes. Looked up in this order: `MEDIAGIT_TOKEN`;
 * the OS keyring (libsecret's `secret-tool`, when installed and a session
 * keyring answers); the 0600 file `<config dir>/mediagit/credentials.toml`.
 *
 * Keys are issued per repository, so they are stored per server and
 * repository (Git credential helpers' `useHttpPath`): under the remote's URL
 * with `.git` and `/info/lfs` taken off, `http://host:port/<repo>`. A lookup
 * tries that URL, then its parent paths, then the bare server (`login` to a
 * server's root stores a key for all its repositories there). The Git
 * filter and lock commands look up the same store.
 *
 * `MEDIAGIT_CA_FILE` names a PEM file of certificates to trust (a server
 * started with --tls-self-signed prints where its certificate is);
 * `MEDIAGIT_CLIENT_CERT` and `MEDIAGIT_CLIENT_KEY` a client certificate
 * for servers that require mutual TLS (`serve --tls-client-ca`).
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { readConfigFile, writeConfigFile, type ConfigTable } from '../config/config.ts';
import { MediaGitError } from '../errors.ts';
import { globalConfigPath, type Cli } from './context.ts';
import { keyringAvailable, keyringClear, keyringLookup, keyringStore } from './keyring.ts';
import type { TransportOptions } from '../protocol/open-transport.ts';
import type { TlsClientOptions } from '../security/tls-client.ts';

const KEYRING_ATTRIBUTES = (key: string) => ({ service: 'mediagit', server: key });

export function originOf(url: string): string | undefined {
  try {
    const parsed = new URL(url);
    return parsed.protocol === 'http:' || parsed.protocol === 'https:' ? parsed.origin : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Where a credential for `url` is stored: server and repository path,
 * without `.git`, `/info/lfs`, a query or a trailing slash (undefined: not http(s)).
 */
export function credentialKey(url: string): string | undefined {
  const origin = originOf(url);
  if (origin === undefined) return undefined;
  const repoPath = new URL(url).pathname
    .replace(/\/+$/, '')
    .replace(/\/info\/lfs$/, '')
    .replace(/\.git$/, '')
    .replace(/\/+$/, '');
  return origin + repoPath;
}

/** The keys a lookup for `url` tries, most specific first, ending with the bare server. */
export function credentialCandidates(url: string): string[] {
  const key = credentialKey(url);
  if (key === undefined) return [];
  const origin = originOf(url)!;
  const candidates = [key];
  let rest = key.slice(origin.length);
  while (rest !== '') {
    rest = rest.slice(0, rest.lastIndexOf('/'));
    candidates.push(origin + rest);
  }
  return candidates;
}

function credentialsFile(cli: Cli): string {
  return path.join(path.dirname(globalConfigPath(cli.env)), 'credentials.toml');
}

/** The credentials file: key (server + repository) → { token } (a TOML table, read like a config file). */
async function readFileCredentials(cli: Cli): Promise<ConfigTable> {
  return readConfigFile(credentialsFile(cli));
}

export async function loadCredential(cli: Cli, url: string): Promise<string | undefined> {
  const fromEnv = cli.env['MEDIAGIT_TOKEN'];
  if (fromEnv) return fromEnv;
  const candidates = credentialCandidates(url);
  if (candidates.length === 0) return undefined;
  const keyring = keyringAvailable(cli.env);
  const file = await readFileCredentials(cli);
  for (const key of candidates) {
    const found = keyring ? keyringLookup(cli.env, KEYRING_ATTRIBUTES(key)) : undefined;
    if (found !== undefined) return found;
    const entry = file[key];
    const token = typeof entry === 'object' ? entry['token'] : undefined;
    if (typeof token === 'string') return token;
  }
  return undefined;
}

function notHttp(url: string): MediaGitError {
  return new MediaGitError('LOGIN_URL', `${url} is not an http(s) URL`, { kind: 'usage' });
}

/** Stores `token` for the server and repository of `url`; returns where it went. */
export async function saveCredential(
  cli: Cli,
  url: string,
  token: string,
): Promise<'keyring' | string> {
  const key = credentialKey(url);
  if (key === undefined) throw notHttp(url);
  if (
    keyringAvailable(cli.env) &&
    keyringStore(cli.env, `MediaGit ${key}`, KEYRING_ATTRIBUTES(key), token)
  ) {
    return 'keyring';
  }
  const file = credentialsFile(cli);
  const all = await readFileCredentials(cli);
  all[key] = { token };
  await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  await writeConfigFile(file, all, 0o600);
  return file;
}

/** Forgets the credential stored for exactly the server and repository of `url`; false if none was. */
export async function eraseCredential(cli: Cli, url: string): Promise<boolean> {
  const key = credentialKey(url);
  if (key === undefined) throw notHttp(url);
  let erased = false;
  if (keyringAvailable(cli.env)) erased = keyringClear(cli.env, KEYRING_ATTRIBUTES(key));
  const all = await readFileCredentials(cli);
  if (all[key] !== undefined) {
    delete all[key];
    await writeConfigFile(credentialsFile(cli), all, 0o600);
    erased = true;
  }
  return erased;
}

/** How the CLI reaches `url`: working folder, credential, trusted certificates and client certificate. */
export async function transportOptions(cli: Cli, url: string): Promise<TransportOptions> {
  return {
    cwd: cli.cwd,
    token: await loadCredential(cli, url),
    ...(await tlsClientOptions(cli)),
  };
}

/**
 * The HTTPS trust and identity the environment names: `MEDIAGIT_CA_FILE`
 * (certificates to trust) and, for servers that require mutual TLS,
 * `MEDIAGIT_CLIENT_CERT` with `MEDIAGIT_CLIENT_KEY` (PEM files). A file that
 * cannot be read, or a certificate without its key, is one clear error.
 */
export async function tlsClientOptions(cli: Cli): Promise<TlsClientOptions> {
  const caFile = cli.env['MEDIAGIT_CA_FILE'];
  const certFile = cli.env['MEDIAGIT_CLIENT_CERT'];
  const keyFile = cli.env['MEDIAGIT_CLIENT_KEY'];
  if ((certFile === undefined) !== (keyFile === undefined)) {
    throw new MediaGitError(
      'CLIENT_CERT_INCOMPLETE',
      'MEDIAGIT_CLIENT_CERT and MEDIAGIT_CLIENT_KEY go together: set both (PEM files) or neither',
      { kind: 'config' },
    );
  }
  return {
    ...(caFile ? { ca: await readPemFile('MEDIAGIT_CA_FILE', caFile) } : {}),
    ...(certFile ? { cert: await readPemFile('MEDIAGIT_CLIENT_CERT', certFile) } : {}),
    ...(keyFile ? { key: await readPemFile('MEDIAGIT_CLIENT_KEY', keyFile) } : {}),
  };
}

async function readPemFile(variable: string, file: string): Promise<Buffer> {
  try {
    return await fs.readFile(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? String(error);
    throw new MediaGitError(
      variable === 'MEDIAGIT_CA_FILE' ? 'CA_FILE_UNREADABLE' : 'CLIENT_CERT_UNREADABLE',
      `${variable} names '${file}', which cannot be read (${code === 'ENOENT' ? 'no such file' : code})`,
      { kind: 'config' },
    );
  }
}
