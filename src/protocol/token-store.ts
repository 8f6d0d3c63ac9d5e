/**
 * The server root's registry of API keys, and its token signing secret, kept
 * in the root's state (`.mediagit-server/`, server-root.ts) on any backend:
 *
 * - `tokens.json` (0600 on local disk): `{"version": 1, "tokens":
 *   [TokenRecord...]}`. Only Argon2id hashes of key secrets are stored.
 *   Every change is a read-modify-write committed by a conditional put on
 *   the version read (compare-and-swap, retried when another writer got
 *   there first), so concurrent CLI and server processes — on one host or
 *   several sharing a bucket — never lose each other's records, and a crash
 *   leaves the old or the new object, never a torn one. An object that does
 *   not parse is reported and left alone, never reset.
 * - `jwt.key` (0600): 32 random bytes signing access tokens, created once
 *   with a create-only put, so server processes sharing the root race to one
 *   winner and all use its secret.
 *
 * `authenticate` caches a successful verification for 60 s (keys made before
 * SHA-256 hashes were stored have Argon2id hashes, ~100 ms each) but checks on every call whether tokens.json changed
 * (its ETag), so a revoke made by another process takes effect on the next
 * request.
 */
import { createHash, randomBytes } from 'node:crypto';
import path from 'node:path';
import { MediaGitError } from '../errors.ts';
import type { KeyRing, SigningKey } from '../security/jwt.ts';
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
import { isStorageCode } from '../storage/backend.ts';
import { ServerRoot } from './server-root.ts';

export { SERVER_STATE_DIR } from './server-root.ts';

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

const TOKENS_FILE = 'tokens.json';
const JWT_KEY_FILE = 'jwt.key';
const JWT_KEY_BYTES = 32;
/** The signing key ring once rotated: `{"version": 1, "keys": [{kid, secret, created}]}`, newest first. */
const JWT_KEYS_FILE = 'jwt-keys.json';
/** The key of jwt.key, before any rotation; tokens it signed carry no `kid` header. */
const LEGACY_KID = 'k0';
/** Keys kept after a rotation: the new one and the one before it. */
const ACTIVE_KEYS = 2;
/** How long a process trusts the key ring it read before reading it again. */
const KEY_RING_REFRESH_MS = 5_000;
const KID = /^[A-Za-z0-9_-]{1,64}$/;
const FORMAT_VERSION = 1;
const MAX_ATTEMPTS = 200;
const CACHE_MS = 60_000;
const REPO_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;
// eslint-disable-next-line no-control-regex
const CONTROL_CHARACTER = /[\x00-\x1f\x7f-\x9f\u2028\u2029]/;

/** Whether `name` may name a repository under a server root (no paths, no dot files). */
export function isRepoName(name: string): boolean {
  return REPO_NAME.test(name) && !name.endsWith('.lock');
}

interface Snapshot {
  /** Identifies one version of tokens.json: its ETag ('' when absent). */
  readonly stamp: string;
  readonly records: readonly TokenRecord[];
}

interface CachedAuth {
  readonly record: TokenRecord;
  readonly stamp: string;
  readonly expires: number;
}

export class TokenStore {
  /** The root's folder or URL, for messages. */
  readonly root: string;
  readonly #root: ServerRoot;
  readonly #tokensLabel: string;
  readonly #keyLabel: string;
  #snapshot: Snapshot | undefined;
  readonly #cache = new Map<string, CachedAuth>();
  #jwtSecret: Promise<Uint8Array> | undefined;
  #keyRing: ServerKeyRing | undefined;

  /** `root`: a server root, or the folder or URL of one. */
  constructor(root: string | ServerRoot) {
    this.#root = typeof root === 'string' ? ServerRoot.open(root) : root;
    this.root = this.#root.label;
    const where =
      this.#root.localDir !== undefined
        ? (name: string) => path.join(this.#root.localDir!, '.mediagit-server', name)
        : (name: string) => `${this.#root.state.url}/${name}`;
    this.#tokensLabel = where(TOKENS_FILE);
    this.#keyLabel = where(JWT_KEY_FILE);
  }

  /** Registers a new key and returns it; the key is not stored and cannot be shown again. */
  async create(options: CreateTokenOptions): Promise<{ key: string; record: TokenRecord }> {
    checkCreateOptions(options);
    await this.#root.check();
    const { key, id, secret } = generateApiKey();
    // Hash before the read-modify-write: Argon2 is the slow part.
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
    await this.#root.check();
    const { records } = await this.#load();
    return records.map(({ hash: _hash, ...info }) => info);
  }

  /** Marks a token revoked; false when no token has that id. Revoking twice keeps the first time. */
  async revoke(id: string): Promise<boolean> {
    await this.#root.check();
    let found = false;
    await this.#update((records) => {
      found = false;
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
    let snapshot: Snapshot;
    try {
      snapshot = await this.#load();
    } catch (error) {
      // A root that does not exist has no keys.
      if (error instanceof MediaGitError && error.code === 'SERVER_ROOT_MISSING') return undefined;
      throw error;
    }
    const record = snapshot.records.find((r) => r.id === parsed.id);
    if (!record || record.revoked !== undefined) return undefined;
    if (!(await verifySecret(parsed.secret, record.hash))) return undefined;
    this.#pruneCache(now);
    this.#cache.set(cacheKey, { record, stamp: snapshot.stamp, expires: now + CACHE_MS });
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
    await this.#root.check();
    const existing = await this.#readJwtKey();
    if (existing) return existing;
    try {
      // Create-only: the first process wins, every other one reads its key.
      await this.#root.state.put(JWT_KEY_FILE, randomBytes(JWT_KEY_BYTES), { ifNoneMatch: '*' });
    } catch (error) {
      if (!isStorageCode(error, 'STORAGE_PRECONDITION_FAILED')) throw error;
    }
    const winner = await this.#readJwtKey();
    if (!winner) throw badJwtKey(this.#keyLabel, 'it vanished while being created');
    return winner;
  }

  async #readJwtKey(): Promise<Uint8Array | undefined> {
    let bytes: Uint8Array;
    try {
      bytes = await this.#root.state.get(JWT_KEY_FILE);
    } catch (error) {
      if (isStorageCode(error, 'STORAGE_NOT_FOUND')) return undefined;
      throw error;
    }
    if (bytes.length !== JWT_KEY_BYTES) {
      throw badJwtKey(this.#keyLabel, `it holds ${bytes.length} bytes, expected ${JWT_KEY_BYTES}`);
    }
    return new Uint8Array(bytes);
  }

  /**
   * The keys that sign and verify access tokens: the newest signs, it and
   * the one before it verify (a token names its key in its `kid` header). A
   * process reads the ring again after KEY_RING_REFRESH_MS, and at once when
   * a token names a key it does not know (one a rotation made elsewhere).
   */
  keyRing(): ServerKeyRing {
    this.#keyRing ??= new ServerKeyRing(() => this.#loadKeys());
    return this.#keyRing;
  }

  /**
   * Makes a new signing key the current one; the previous current key still
   * verifies (tokens it signed stay valid until they expire), older ones
   * are dropped. Compare-and-swap on the ring, as tokens.json.
   */
  async rotateSigningKey(): Promise<{ kid: string; kept: string[]; dropped: string[] }> {
    for (let attempt = 1; ; attempt++) {
      const { stamp, keys } = await this.#loadKeys();
      const fresh: SigningKey = {
        kid: `k${randomBytes(6).toString('hex')}`,
        secret: randomBytes(JWT_KEY_BYTES),
      };
      const next = [fresh, ...keys].slice(0, ACTIVE_KEYS);
      const text = `${JSON.stringify(
        {
          version: FORMAT_VERSION,
          keys: next.map((key) => ({
            kid: key.kid,
            secret: Buffer.from(key.secret).toString('base64'),
          })),
        },
        null,
        2,
      )}\n`;
      try {
        await this.#root.state.put(
          JWT_KEYS_FILE,
          Buffer.from(text, 'utf8'),
          stamp === '' ? { ifNoneMatch: '*' } : { ifMatch: stamp },
        );
        this.#keyRing?.forget();
        return {
          kid: fresh.kid,
          kept: next.slice(1).map((key) => key.kid),
          dropped: keys.slice(ACTIVE_KEYS - 1).map((key) => key.kid),
        };
      } catch (error) {
        if (!isStorageCode(error, 'STORAGE_PRECONDITION_FAILED') || attempt >= MAX_ATTEMPTS)
          throw error;
      }
    }
  }

  /** The ring as stored (its ETag, '' before the first rotation: then jwt.key alone). */
  async #loadKeys(): Promise<{ stamp: string; keys: SigningKey[] }> {
    await this.#root.check();
    const head = await this.#root.state.head(JWT_KEYS_FILE);
    if (head === undefined) {
      return { stamp: '', keys: [{ kid: LEGACY_KID, secret: await this.jwtSecret() }] };
    }
    const label = this.#keyLabel.replace(JWT_KEY_FILE, JWT_KEYS_FILE);
    let parsed: unknown;
    try {
      parsed = JSON.parse(Buffer.from(await this.#root.state.get(JWT_KEYS_FILE)).toString('utf8'));
    } catch (error) {
      if (isStorageCode(error, 'STORAGE_NOT_FOUND')) return this.#loadKeys();
      if (!(error instanceof SyntaxError)) throw error;
      throw badJwtKey(label, 'it is not JSON');
    }
    const list = (parsed as { version?: unknown; keys?: unknown } | null)?.keys;
    if (
      (parsed as { version?: unknown }).version !== FORMAT_VERSION ||
      !Array.isArray(list) ||
      list.length === 0
    ) {
      throw badJwtKey(label, 'it is not a version 1 key list');
    }
    const keys = list.map((entry: unknown, i): SigningKey => {
      const { kid, secret } = (entry ?? {}) as { kid?: unknown; secret?: unknown };
      const bytes = typeof secret === 'string' ? Buffer.from(secret, 'base64') : Buffer.alloc(0);
      if (typeof kid !== 'string' || !KID.test(kid) || bytes.length !== JWT_KEY_BYTES) {
        throw badJwtKey(label, `key ${i + 1} is malformed`);
      }
      return { kid, secret: new Uint8Array(bytes) };
    });
    return { stamp: head.etag, keys };
  }

  /**
   * Read-modify-write of tokens.json, committed by compare-and-swap on the
   * version read and retried when another writer got there first. `change`
   * gets the current records and returns the new list, or undefined to write
   * nothing; it may run more than once.
   */
  async #update(
    change: (records: readonly TokenRecord[]) => readonly TokenRecord[] | undefined,
  ): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const { stamp, records } = await this.#load();
      const next = change(records);
      if (next === undefined) return;
      const text = `${JSON.stringify({ version: FORMAT_VERSION, tokens: next }, null, 2)}\n`;
      try {
        await this.#root.state.put(
          TOKENS_FILE,
          Buffer.from(text, 'utf8'),
          stamp === '' ? { ifNoneMatch: '*' } : { ifMatch: stamp },
        );
        return;
      } catch (error) {
        if (!isStorageCode(error, 'STORAGE_PRECONDITION_FAILED') || attempt >= MAX_ATTEMPTS) {
          if (
            isStorageCode(error, 'STORAGE_PRECONDITION_FAILED') ||
            isStorageCode(error, 'STORAGE_LOCKED')
          ) {
            throw new MediaGitError(
              'TOKENS_BUSY',
              `${this.#tokensLabel} kept changing under ${attempt} attempts to update it; retry`,
              { kind: 'conflict', data: { file: this.#tokensLabel }, cause: error },
            );
          }
          throw error;
        }
        await new Promise((resolve) =>
          setTimeout(resolve, Math.random() * Math.min(100, 2 * attempt)),
        );
      }
    }
  }

  /** The version of tokens.json now, without reading it ('' when absent). */
  async #currentStamp(): Promise<string> {
    return (await this.#root.state.head(TOKENS_FILE))?.etag ?? '';
  }

  /** The parsed tokens.json (empty when absent), reusing the last parse when unchanged. */
  async #load(): Promise<Snapshot> {
    await this.#root.check();
    // The ETag first, then the bytes: if the object changes in between, the
    // bytes are newer than the ETag and a compare-and-swap on it fails (safe).
    const head = await this.#root.state.head(TOKENS_FILE);
    if (head === undefined) return { stamp: '', records: [] };
    if (this.#snapshot?.stamp === head.etag) return this.#snapshot;
    let text: string;
    try {
      text = Buffer.from(await this.#root.state.get(TOKENS_FILE)).toString('utf8');
    } catch (error) {
      if (isStorageCode(error, 'STORAGE_NOT_FOUND')) return { stamp: '', records: [] };
      throw error;
    }
    const snapshot = { stamp: head.etag, records: parseTokensFile(this.#tokensLabel, text) };
    this.#snapshot = snapshot;
    return snapshot;
  }

  #pruneCache(now: number): void {
    for (const [cacheKey, entry] of this.#cache) {
      if (entry.expires <= now) this.#cache.delete(cacheKey);
    }
  }
}

function sameHash(a: SecretHash, b: SecretHash): boolean {
  if (a.algorithm === 'sha256' || b.algorithm === 'sha256') {
    return a.algorithm === b.algorithm && a.hash === b.hash;
  }
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

/** A process's view of the root's signing keys (TokenStore.keyRing). */
export class ServerKeyRing implements KeyRing {
  readonly #load: () => Promise<{ stamp: string; keys: SigningKey[] }>;
  #loaded: Promise<{ keys: SigningKey[]; at: number }> | undefined;

  constructor(load: () => Promise<{ stamp: string; keys: SigningKey[] }>) {
    this.#load = load;
  }

  /** The key that signs new tokens. */
  async current(): Promise<SigningKey> {
    return (await this.#keys(false))[0]!;
  }

  async keyFor(kid: string | undefined): Promise<Uint8Array | undefined> {
    const wanted = kid ?? LEGACY_KID;
    const find = (keys: SigningKey[]) => keys.find((key) => key.kid === wanted)?.secret;
    // A token from before key ids verifies only while the jwt.key key is in the ring.
    const known = find(await this.#keys(false));
    return known ?? find(await this.#keys(true));
  }

  /** Read again on the next use. */
  forget(): void {
    this.#loaded = undefined;
  }

  async #keys(missed: boolean): Promise<SigningKey[]> {
    const now = Date.now();
    const loaded = this.#loaded ? await this.#loaded.catch(() => undefined) : undefined;
    // Reread when stale, or when a token named an unknown key (at most every second).
    const stale =
      loaded === undefined ||
      now - loaded.at > KEY_RING_REFRESH_MS ||
      (missed && now - loaded.at > 1_000);
    if (stale) {
      const loading = this.#load().then(({ keys }) => ({ keys, at: Date.now() }));
      this.#loaded = loading;
      loading.catch(() => {
        if (this.#loaded === loading) this.#loaded = undefined;
      });
      return (await loading).keys;
    }
    return loaded.keys;
  }
}
