/**
 * The OS keyring, through libsecret's `secret-tool` talking to a Secret
 * Service (GNOME Keyring, KeePassXC, KWallet's bridge) on the session bus.
 * `login` keeps API keys here (credentials.ts) and an encrypted
 * repository's keyring slot keeps its secret here (secrets.ts, `key add
 * --keyring`). Secrets travel on standard input and output only, never in
 * process arguments. `MEDIAGIT_NO_KEYRING` turns the keyring off.
 */
import { spawnSync } from 'node:child_process';

/** Attribute name → value: what an item is stored and looked up under. */
export type KeyringAttributes = Readonly<Record<string, string>>;

const args = (attributes: KeyringAttributes): string[] =>
  Object.entries(attributes).flatMap(([name, value]) => [name, value]);

export function keyringAvailable(env: NodeJS.ProcessEnv): boolean {
  if (env['MEDIAGIT_NO_KEYRING']) return false;
  // No session bus, no keyring: known without starting a process.
  if (!env['DBUS_SESSION_BUS_ADDRESS']) return false;
  // Installed or not: `secret-tool` has no --version, and run bare it prints
  // its usage and exits 2. Whether a Secret Service answers shows when used.
  return spawnSync('secret-tool', [], { stdio: 'ignore', env }).error === undefined;
}

/** The secret stored under `attributes`; undefined when none is (or the keyring did not answer). */
export function keyringLookup(
  env: NodeJS.ProcessEnv,
  attributes: KeyringAttributes,
): string | undefined {
  const found = spawnSync('secret-tool', ['lookup', ...args(attributes)], {
    encoding: 'utf8',
    env,
  });
  const secret = found.status === 0 ? found.stdout.trim() : '';
  return secret === '' ? undefined : secret;
}

/** Stores `secret` under `attributes`, replacing what was there; false when the keyring refused. */
export function keyringStore(
  env: NodeJS.ProcessEnv,
  label: string,
  attributes: KeyringAttributes,
  secret: string,
): boolean {
  const stored = spawnSync('secret-tool', ['store', `--label=${label}`, ...args(attributes)], {
    input: secret,
    stdio: ['pipe', 'ignore', 'ignore'],
    env,
  });
  return stored.status === 0;
}

/** Removes what is stored under `attributes`; false when nothing was removed. */
export function keyringClear(env: NodeJS.ProcessEnv, attributes: KeyringAttributes): boolean {
  return (
    spawnSync('secret-tool', ['clear', ...args(attributes)], { stdio: 'ignore', env }).status === 0
  );
}
