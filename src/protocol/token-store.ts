/**
 * The server root's registry of API keys, and its token signing secret.
 *
 * A server root is a directory of bare repositories; the server's own state
 * lives in `<root>/.mediagit-server/` (0700):
 *
 * - `tokens.json` (0600): `{"version": 1, "tokens": [TokenRecord...]}`. Only
 *   Argon2id hashes of key secrets are stored. Every change is a
 *   read-modify-write under `tokens.json.lock` (O_EXCL, waited for up to
 *   10 s), written through a fsynced temp file renamed into place, so
 *   concurrent CLI processes never lose each other's records and a crash
 *   leaves the old or the new file, never a torn one. A file that does not
 *   parse is reported and left alone, never reset.
 * - `jwt.key` (0600): 32 random bytes signing access tokens, created once by
 *   hard-linking a complete temp file into place, so server processes sharing
 *   the root race to one winner and all use its secret.
 *
 * `authenticate` caches a successful verification for 60 s (Argon2id costs
 * tens of milliseconds) but checks on every call whether tokens.json changed,
 * so a revoke made by another process takes effect on the next request.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { hasErrnoCode, MediaGitError } from '../errors.ts';
import {
  generateApiKey,
  hashSecret,
  isScope,
  isSecretHash,
  parseApiKey,
  SCOPES,
  verifySecret,
  type Scope,
  type SecretHash,
} from '../security/api-keys.ts';
import { fsyncDirectory, LockFile, tempName, writeFileAtomic } from '../storage/durable-file.ts';

export interface TokenRecord {
  readonly id: string;
  readonly user: string;
  /** A repository name, or '*' for every repository under the root. */
  readonly repo: string;
  readonly scope: Scope;
  /** ISO time. */
  readonly created: string;
  /** ISO time; present once revoked. */
  readonly revoked?: string;
  readonly hash: SecretHash;
}

/** A record as shown to people: everything but the hash. */
export type TokenInfo = Omit<TokenRecord, 'hash'>;

export interface CreateTokenOptions {
  readonly user: string;
  readonly repo: string;
  readonly scope: Scope;
}

export const SERVER_STATE_DIR = '.mediagit-server';
const TOKENS_FILE = 'tokens.json';
const JWT_KEY_FILE = 'jwt.key';
const JWT_KEY_BYTES = 32;
const FORMAT_VERSION = 1;
const LOCK_WAIT_MS = 10_000;
const CACHE_MS = 60_000;
const REPO_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;
// eslint-disable-next-line no-control-regex
const CONTROL_CHARACTER = /[\x00-\x1f\x7f-\x9f\u2028\u2029]/;

/** Whether `name` may name a repository under a server root (no paths, no dot files). */
export function isRepoName(name: string): boolean {
  return REPO_NAME.test(name) && !name.endsWith('.lock');
}

interface Snapshot {
  /** Identifies one version of tokens.json: inode, mtime and size. */
  readonly stamp: string;
  readonly records: readonly TokenRecord[];
}

interface CachedAuth {
  readonly record: TokenRecord;
  readonly stamp: string;
  readonly expires: number;
}

export class TokenStore {
  readonly root: string;
  readonly #stateDir: string;
  readonly #tokensFile: string;
  readonly #keyFile: string;
  #snapshot: Snapshot | undefined;
  readonly #cache = new Map<string, CachedAuth>();
  #jwtSecret: Promise<Uint8Array> | undefined;

  constructor(root: string) {
    this.root = path.resolve(root);
    this.#stateDir = path.join(this.root, SERVER_STATE_DIR);
    this.#tokensFile = path.join(this.#stateDir, TOKENS_FILE);
    this.#keyFile = path.join(this.#stateDir, JWT_KEY_FILE);
  }

  /** Registers a new key and returns it; the key is not stored and cannot be shown again. */
  async create(options: CreateTokenOptions): Promise<{ key: string; record: TokenRecord }> {
    checkCreateOptions(options);
    await this.#prepare();
    const { key, id, secret } = generateApiKey();
    // Hash before taking the lock: Argon2 is the slow part.
    const hash = await hashSecret(secret);
    const record: TokenRecord = {
      id,
      user: options.user,
      repo: options.repo,
      scope: options.scope,
      created: new Date().toISOString(),
      hash,
    };
    await this.#update((records) => {
      if (records.some((r) => r.id === id)) {
        throw new MediaGitError('TOKEN_ID_COLLISION', `token id ${id} already exists; retry`, {
          kind: 'internal',
          data: { id },
        });
      }
      return [...records, record];
    });
    return { key, record };
  }

  /** Every token, revoked ones included, oldest first, without hashes. */
  async list(): Promise<TokenInfo[]> {
    await this.#checkRoot();
    const { records } = await this.#load();
    return records.map(({ hash: _hash, ...info }) => info);
  }

  /** Marks a token revoked; false when no token has that id. Revoking twice keeps the first time. */
  async revoke(id: string): Promise<boolean> {
    await this.#prepare();
    let found = false;
    await this.#update((records) => {
      const index = records.findIndex((r) => r.id === id);
      const record = records[index];
      if (record === undefined) return undefined;
      found = true;
      if (record.revoked !== undefined) return undefined;
      const next = [...records];
      next[index] = { ...record, revoked: new Date().toISOString() };
      return next;
    });
    for (const [cacheKey, entry] of this.#cache) {
      if (entry.record.id === id) this.#cache.delete(cacheKey);
    }
    return found;
  }

  /** The live token a presented API key belongs to, or undefined (unknown, revoked, wrong secret). */
  async authenticate(key: string): Promise<TokenRecord | undefined> {
    const parsed = parseApiKey(key);
    if (!parsed) return undefined;
    const cacheKey = createHash('sha256').update(key).digest('hex');
    const now = performance.now();
    const cached = this.#cache.get(cacheKey);
    if (cached && cached.expires > now) {
      const stamp = await this.#currentStamp();
      if (stamp === cached.stamp) return cached.record;
      // tokens.json changed: keep the cached verification only if the same
      // hash is still there and live (another token was created, say).
      const { stamp: loaded, records } = await this.#load();
      const current = records.find((r) => r.id === parsed.id);
      if (current && current.revoked === undefined && sameHash(current.hash, cached.record.hash)) {
        this.#cache.set(cacheKey, { record: current, stamp: loaded, expires: cached.expires });
        return current;
      }
      this.#cache.delete(cacheKey);
      if (!current || current.revoked !== undefined) return undefined;
    }
    const { stamp, records } = await this.#load();
    const record = records.find((r) => r.id === parsed.id);
    if (!record || record.revoked !== undefined) return undefined;
    if (!(await verifySecret(parsed.secret, record.hash))) return undefined;
    this.#pruneCache(now);
    this.#cache.set(cacheKey, { record, stamp, expires: now + CACHE_MS });
    return record;
  }

  /** The secret signing access tokens, shared by every process serving this root. */
  jwtSecret(): Promise<Uint8Array> {
    if (!this.#jwtSecret) {
      const loading = this.#loadOrCreateJwtSecret();
      this.#jwtSecret = loading;
      loading.catch(() => {
        if (this.#jwtSecret === loading) this.#jwtSecret = undefined;
      });
    }
    return this.#jwtSecret;
  }

  async #loadOrCreateJwtSecret(): Promise<Uint8Array> {
    await this.#prepare();
    const existing = await this.#readJwtKey();
    if (existing) return existing;
    const tmp = tempName(this.#stateDir, JWT_KEY_FILE);
    const handle = await fs.open(tmp, 'wx', 0o600);
    try {
      await handle.writeFile(randomBytes(JWT_KEY_BYTES));
      await handle.sync();
    } finally {
      await handle.close();
    }
    try {
      // link(2) fails if the name exists, unlike rename: the first process wins.
      await fs.link(tmp, this.#keyFile);
    } catch (error) {
      if (!hasErrnoCode(error, 'EEXIST')) throw error;
    } finally {
      await fs.rm(tmp, { force: true });
    }
    await fsyncDirectory(this.#stateDir);
    const winner = await this.#readJwtKey();
    if (!winner) throw badJwtKey(this.#keyFile, 'it vanished while being created');
    return winner;
  }

  async #readJwtKey(): Promise<Uint8Array | undefined> {
    let bytes: Buffer;
    try {
      bytes = await fs.readFile(this.#keyFile);
    } catch (error) {
      if (hasErrnoCode(error, 'ENOENT')) return undefined;
      throw error;
    }
    if (bytes.length !== JWT_KEY_BYTES) {
      throw badJwtKey(this.#keyFile, `it holds ${bytes.length} bytes, expected ${JWT_KEY_BYTES}`);
    }
    return new Uint8Array(bytes);
  }

  /** Checks the root and makes the state folder. */
  async #prepare(): Promise<void> {
    await this.#checkRoot();
    await fs.mkdir(this.#stateDir, { recursive: true, mode: 0o700 });
  }

  async #checkRoot(): Promise<void> {
    let stat;
    try {
      stat = await fs.stat(this.root);
    } catch (error) {
      if (hasErrnoCode(error, 'ENOENT') || hasErrnoCode(error, 'ENOTDIR')) {
        throw new MediaGitError('SERVER_ROOT_MISSING', `server root ${this.root} does not exist`, {
          kind: 'user',
          data: { root: this.root },
        });
      }
      throw error;
    }
    if (!stat.isDirectory()) {
      throw new MediaGitError(
        'SERVER_ROOT_NOT_DIRECTORY',
        `server root ${this.root} is not a directory`,
        { kind: 'user', data: { root: this.root } },
      );
    }
  }

  /**
   * Read-modify-write of tokens.json under its lock. `change` gets the
   * current records and returns the new list, or undefined to write nothing.
   */
  async #update(
    change: (records: readonly TokenRecord[]) => readonly TokenRecord[] | undefined,
  ): Promise<void> {
    const lock = await this.#lock();
    try {
      const { records } = await this.#load();
      const next = change(records);
      if (next === undefined) return;
      const text = `${JSON.stringify({ version: FORMAT_VERSION, tokens: next }, null, 2)}\n`;
      await writeFileAtomic(this.#tokensFile, [Buffer.from(text, 'utf8')], {
        tmpDir: this.#stateDir,
        mode: 0o600,
      });
      await fsyncDirectory(this.#stateDir);
    } finally {
      await lock.release();
    }
  }

  async #lock(): Promise<LockFile> {
    const deadline = Date.now() + LOCK_WAIT_MS;
    for (let delay = 1; ; delay = Math.min(delay * 2, 50)) {
      try {
        return await LockFile.acquire(this.#tokensFile);
      } catch (error) {
        if (!hasErrnoCode(error, 'EEXIST')) throw error;
        if (Date.now() > deadline) {
          const lockPath = `${this.#tokensFile}.lock`;
          throw new MediaGitError(
            'TOKENS_LOCKED',
            `cannot lock ${this.#tokensFile}: ${lockPath} exists; another mediagit process may be running (remove the file if it crashed)`,
            { kind: 'conflict', data: { file: this.#tokensFile, lock: lockPath } },
          );
        }
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }

  /** The stamp of tokens.json now, without reading it ('' when absent). */
  async #currentStamp(): Promise<string> {
    try {
      return stampOf(await fs.stat(this.#tokensFile, { bigint: true }));
    } catch (error) {
      if (hasErrnoCode(error, 'ENOENT')) return '';
      throw error;
    }
  }

  /** The parsed tokens.json (empty when absent), reusing the last parse when unchanged. */
  async #load(): Promise<Snapshot> {
    let handle: fs.FileHandle;
    try {
      handle = await fs.open(this.#tokensFile, 'r');
    } catch (error) {
      if (hasErrnoCode(error, 'ENOENT')) return { stamp: '', records: [] };
      throw error;
    }
    try {
      // Stat and read the same open file, so the stamp names what was read.
      const stamp = stampOf(await handle.stat({ bigint: true }));
      if (this.#snapshot?.stamp === stamp) return this.#snapshot;
      const text = await handle.readFile('utf8');
      const snapshot = { stamp, records: parseTokensFile(this.#tokensFile, text) };
      this.#snapshot = snapshot;
      return snapshot;
    } finally {
      await handle.close();
    }
  }

  #pruneCache(now: number): void {
    for (const [cacheKey, entry] of this.#cache) {
      if (entry.expires <= now) this.#cache.delete(cacheKey);
    }
  }
}

function stampOf(stat: { ino: bigint; mtimeNs: bigint; size: bigint }): string {
  return `${stat.ino}:${stat.mtimeNs}:${stat.size}`;
}

function sameHash(a: SecretHash, b: SecretHash): boolean {
  return a.salt === b.salt && a.hash === b.hash;
}

function checkCreateOptions(options: CreateTokenOptions): void {
  const { user, repo, scope } = options;
  if (
    typeof user !== 'string' ||
    user.length === 0 ||
    user.length > 100 ||
    CONTROL_CHARACTER.test(user)
  ) {
    throw new MediaGitError(
      'BAD_TOKEN_USER',
      'user must be 1 to 100 characters without control characters',
      { kind: 'usage', data: { user } },
    );
  }
  if (typeof repo !== 'string' || (repo !== '*' && !isRepoName(repo))) {
    throw new MediaGitError(
      'BAD_TOKEN_REPO',
      `'${String(repo)}' is not a repository name: use '*' or up to 100 letters, digits, '.', '_' and '-', starting with a letter or digit, not ending in .lock`,
      { kind: 'usage', data: { repo } },
    );
  }
  if (!isScope(scope)) {
    throw new MediaGitError(
      'BAD_TOKEN_SCOPE',
      `'${String(scope)}' is not a scope: use one of ${SCOPES.join(', ')}`,
      { kind: 'usage', data: { scope } },
    );
  }
}

function parseTokensFile(file: string, text: string): TokenRecord[] {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw badTokensFile(file, `it is not valid JSON (${(error as Error).message})`, error);
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    throw badTokensFile(file, 'it is not a JSON object');
  }
  const { version, tokens } = data as Record<string, unknown>;
  if (version !== FORMAT_VERSION) {
    throw badTokensFile(
      file,
      `unsupported version ${JSON.stringify(version)} (expected ${FORMAT_VERSION})`,
    );
  }
  if (!Array.isArray(tokens)) throw badTokensFile(file, '"tokens" is not an array');
  const ids = new Set<string>();
  return tokens.map((value: unknown, index) => {
    const problem = recordProblem(value);
    if (problem) throw badTokensFile(file, `token #${index}: ${problem}`);
    const record = value as TokenRecord;
    if (ids.has(record.id)) throw badTokensFile(file, `token id ${record.id} appears twice`);
    ids.add(record.id);
    return record;
  });
}

function recordProblem(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'not an object';
  const r = value as Record<string, unknown>;
  if (typeof r['id'] !== 'string' || !/^[0-9a-f]{16}$/.test(r['id'])) return 'bad "id"';
  if (typeof r['user'] !== 'string' || r['user'] === '') return 'bad "user"';
  if (typeof r['repo'] !== 'string' || (r['repo'] !== '*' && !isRepoName(r['repo']))) {
    return 'bad "repo"';
  }
  if (!isScope(r['scope'])) return 'bad "scope"';
  if (!isIsoTime(r['created'])) return 'bad "created"';
  if (r['revoked'] !== undefined && !isIsoTime(r['revoked'])) return 'bad "revoked"';
  if (!isSecretHash(r['hash'])) return 'bad "hash"';
  return undefined;
}

function isIsoTime(value: unknown): boolean {
  return typeof value === 'string' && !Number.isNaN(Date.parse(value));
}

function badTokensFile(file: string, reason: string, cause?: unknown): MediaGitError {
  return new MediaGitError(
    'TOKENS_FILE_INVALID',
    `${file} is damaged: ${reason}; it was left untouched, fix or restore it`,
    { kind: 'config', data: { file, reason }, cause },
  );
}

function badJwtKey(file: string, reason: string): MediaGitError {
  return new MediaGitError('JWT_KEY_INVALID', `${file} is not a token signing key: ${reason}`, {
    kind: 'config',
    data: { file, reason },
  });
}
