/**
 * TOML configuration: the repository's `.mediagit/config` and the user's
 * global file, with Git's dotted key names.
 *
 * A key `section.name` lives at `[section] name = …`; a key with a subsection,
 * `section.sub.name` (the subsection may itself contain dots, as branch names
 * do), lives at `[section."sub"] name = …`. Known keys are typed and validated
 * with a message naming the file and key; unknown keys are kept as strings.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { parse, stringify, TomlError } from 'smol-toml';
import { MediaGitError, hasErrnoCode } from '../errors.ts';

export type ConfigValue = string | number | boolean;
export type ConfigTable = { [key: string]: ConfigValue | ConfigTable };

/** Keys with a type. Values given as strings on the command line are converted. */
const KNOWN_KEYS: Record<string, 'string' | 'integer' | 'boolean'> = {
  'core.formatVersion': 'integer',
  'core.bare': 'boolean',
  'core.chunkThreshold': 'integer',
  'core.fsmonitor': 'boolean',
  'core.quotePath': 'boolean',
  'user.name': 'string',
  'user.email': 'string',
  'init.defaultBranch': 'string',
  'gc.auto': 'integer',
  'gc.autoPackLimit': 'integer',
  'gc.autoDetach': 'boolean',
  'gc.pruneExpire': 'string',
  'gc.reflogExpire': 'string',
  'gc.reflogExpireUnreachable': 'string',
};

export function configError(file: string, message: string, cause?: unknown): MediaGitError {
  return new MediaGitError('CONFIG_INVALID', `bad config file ${file}: ${message}`, {
    kind: 'config',
    data: { file },
    cause,
  });
}

export async function readConfigFile(file: string): Promise<ConfigTable> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (error) {
    if (hasErrnoCode(error, 'ENOENT')) return {};
    throw error;
  }
  let table: ConfigTable;
  try {
    table = parse(text) as ConfigTable;
  } catch (error) {
    const where = error instanceof TomlError ? ` (line ${error.line})` : '';
    throw configError(file, `not valid TOML${where}`, error);
  }
  for (const [key, value] of flattenConfig(table)) {
    const type = KNOWN_KEYS[key];
    if (type && typeOfValue(value) !== type) {
      throw configError(file, `${key} must be a ${type}, not ${JSON.stringify(value)}`);
    }
  }
  return table;
}

function typeOfValue(value: ConfigValue): string {
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'float';
  return typeof value;
}

export function splitKey(key: string): string[] {
  const first = key.indexOf('.');
  const last = key.lastIndexOf('.');
  if (first <= 0 || last === key.length - 1) {
    throw new MediaGitError('CONFIG_KEY', `key does not contain a section: ${key}`, {
      kind: 'usage',
      data: { key },
    });
  }
  if (first === last) return [key.slice(0, first), key.slice(last + 1)];
  return [key.slice(0, first), key.slice(first + 1, last), key.slice(last + 1)];
}

export function getConfigValue(table: ConfigTable, key: string): ConfigValue | undefined {
  let node: ConfigValue | ConfigTable | undefined = table;
  for (const part of splitKey(key)) {
    if (node === undefined || typeof node !== 'object') return undefined;
    node = node[part];
  }
  return typeof node === 'object' ? undefined : node;
}

/** Converts a command-line string to the key's type, or throws a usage error. */
export function parseConfigValue(key: string, raw: string): ConfigValue {
  const type = KNOWN_KEYS[key];
  if (type === 'integer') {
    const value = Number(raw);
    if (!Number.isSafeInteger(value)) throw badValue(key, raw, 'an integer');
    return value;
  }
  if (type === 'boolean') {
    if (['true', 'yes', 'on', '1'].includes(raw)) return true;
    if (['false', 'no', 'off', '0'].includes(raw)) return false;
    throw badValue(key, raw, 'a boolean');
  }
  return raw;
}

function badValue(key: string, raw: string, what: string): MediaGitError {
  return new MediaGitError(
    'CONFIG_VALUE',
    `invalid value for ${key}: ${JSON.stringify(raw)} is not ${what}`,
    {
      kind: 'usage',
      data: { key, value: raw },
    },
  );
}

export function setConfigValue(
  table: ConfigTable,
  key: string,
  value: ConfigValue | undefined,
): boolean {
  const parts = splitKey(key);
  const name = parts.pop()!;
  let node: ConfigTable = table;
  const trail: [ConfigTable, string][] = [];
  for (const part of parts) {
    let child = node[part];
    if (child === undefined || typeof child !== 'object') {
      if (value === undefined) return false;
      child = {};
      node[part] = child;
    }
    trail.push([node, part]);
    node = child;
  }
  if (value === undefined) {
    if (!(name in node)) return false;
    delete node[name];
    for (const [parent, part] of trail.reverse()) {
      const child = parent[part];
      if (typeof child === 'object' && Object.keys(child).length === 0) delete parent[part];
    }
    return true;
  }
  node[name] = value;
  return true;
}

export function flattenConfig(table: ConfigTable, prefix = ''): [string, ConfigValue][] {
  const out: [string, ConfigValue][] = [];
  for (const [key, value] of Object.entries(table)) {
    const full = prefix ? `${prefix}.${key}` : key;
    if (typeof value === 'object') out.push(...flattenConfig(value, full));
    else out.push([full, value]);
  }
  return out;
}

/**
 * Writes the table through a temp file and rename, creating the folder if
 * needed; the file gets `mode` (0600 for secrets) before it is in place.
 */
export async function writeConfigFile(
  file: string,
  table: ConfigTable,
  mode = 0o644,
): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  // Unique per write, not per process: two writes of one file at once in
  // one process (a server creating the same repository for two requests)
  // shared a temp file, and the second rename found it gone.
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const handle = await fs.open(tmp, 'wx', mode);
  try {
    await handle.chmod(mode);
    await handle.writeFile(stringify(table) + '\n');
    await handle.sync();
  } finally {
    await handle.close();
  }
  await fs.rename(tmp, file);
}

/** Reads, changes and writes one file. Returns false when unsetting a missing key. */
export async function updateConfigFile(
  file: string,
  key: string,
  value: ConfigValue | undefined,
): Promise<boolean> {
  return updateConfigValues(file, [[key, value]]);
}

/** Sets (or, with undefined, removes) several keys in one rewrite of `file`; whether any changed. */
export async function updateConfigValues(
  file: string,
  entries: readonly (readonly [key: string, value: ConfigValue | undefined])[],
): Promise<boolean> {
  const table = await readConfigFile(file);
  let changed = false;
  for (const [key, value] of entries) changed = setConfigValue(table, key, value) || changed;
  if (changed) await writeConfigFile(file, table);
  return changed;
}
