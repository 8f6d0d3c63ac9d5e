/**
 * Talking to a remote about an encrypted repository (docs/encryption.md,
 * "The server"): the remote must hold the same key file (the repository's
 * ID in it), or be empty and take this one on the first push; its branch
 * and tag names are sealed (security/encryption.ts, `sealName`), opened
 * here on the way in and sealed on the way out, so the verbs above see the
 * names as they are. Objects travel as they are stored: sealed.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { MediaGitError } from '../errors.ts';
import type { ObjectCipher } from '../odb/object-cipher.ts';
import { KEY_FILE } from '../repo/keys.ts';
import type { Repository } from '../repo/repository.ts';
import { parseKeyFile, type KeyFile } from '../security/encryption.ts';
import type { InfoRefs, RefUpdate, RefUpdateResult } from './service.ts';
import type { Transport } from './transport.ts';

const REF_KINDS = ['refs/heads/', 'refs/tags/'] as const;

function refused(code: string, message: string): MediaGitError {
  return new MediaGitError(code, message, { kind: 'user', data: { exitCode: 128 } });
}

/** The remote's key file when it is encrypted (a server too old to say counts as plain). */
export async function remoteKeyFile(transport: Transport): Promise<KeyFile | undefined> {
  let bytes: Buffer | undefined;
  try {
    bytes = await transport.keys();
  } catch (error) {
    if (error instanceof MediaGitError && error.data['status'] === 404) return undefined;
    throw error;
  }
  if (bytes === undefined) return undefined;
  try {
    return parseKeyFile(JSON.parse(bytes.toString('utf8')));
  } catch (error) {
    throw new MediaGitError('BAD_KEY_FILE', `${transport.url}: the remote's key file is invalid`, {
      kind: 'user',
      cause: error,
      data: { exitCode: 128 },
    });
  }
}

/**
 * `transport` as an encrypted repository uses it: checked to hold this
 * repository's keys (a push to an empty remote gives it this repository's
 * key file first), with names sealed and opened. A plain repository gets
 * `transport` back, refused when the remote is encrypted.
 */
export async function remoteFor(
  repo: Repository,
  transport: Transport,
  verb: 'push' | 'fetch',
): Promise<Transport> {
  const cipher = repo.objects.cipher;
  const remote = await remoteKeyFile(transport);
  if (cipher === undefined) {
    if (remote === undefined) return transport;
    throw refused(
      'ENCRYPTED_REMOTE',
      `${verb}: ${transport.url} is an encrypted repository and this one is not; clone it to work with it; nothing was ${verb === 'push' ? 'sent' : 'changed'}`,
    );
  }
  const localBytes = await fs.readFile(path.join(repo.gitDir, KEY_FILE));
  const local = parseKeyFile(JSON.parse(localBytes.toString('utf8')));
  if (remote === undefined) {
    if (verb === 'fetch') {
      throw refused(
        'PLAIN_REMOTE',
        `fetch: ${transport.url} is not encrypted, and this repository is: an encrypted repository exchanges objects only with one of the same keys; nothing was changed`,
      );
    }
    // The first push: the remote (empty, or the server refuses) takes this key file.
    await transport.putKeys(localBytes);
  } else if (remote.repository !== local.repository) {
    throw refused(
      'OTHER_KEYS',
      `${verb}: ${transport.url} is encrypted under other keys: it is another repository; nothing was ${verb === 'push' ? 'sent' : 'changed'}`,
    );
  }
  return withSealedNames(transport, cipher);
}

/** `transport` with branch and tag names sealed on the way out and opened on the way in. */
export function withSealedNames(transport: Transport, cipher: ObjectCipher): Transport {
  const seal = (ref: string): string => {
    const kind = REF_KINDS.find((prefix) => ref.startsWith(prefix));
    if (kind === undefined) return ref;
    return kind + cipher.sealName(ref.slice(kind.length));
  };
  const open = (ref: string): string | undefined => {
    const kind = REF_KINDS.find((prefix) => ref.startsWith(prefix));
    if (kind === undefined) return undefined;
    const name = cipher.openName(ref.slice(kind.length));
    return name === undefined ? undefined : kind + name;
  };
  const overrides: Record<string, unknown> = {
    async infoRefs(): Promise<InfoRefs> {
      const info = await transport.infoRefs();
      const refs: Record<string, string> = {};
      // Refs that do not open (another client's junk) are not this repository's.
      for (const [name, id] of Object.entries(info.refs)) {
        const opened = open(name);
        if (opened !== undefined) refs[opened] = id;
      }
      // The server's HEAD is sealed when a client set it, and in clear as
      // the server created it ("refs/heads/main"): either names a branch.
      let head = info.head === null ? null : (open(info.head) ?? info.head);
      if (head !== null && refs[head] === undefined) head = null;
      return { ...info, head, refs };
    },
    async updateRefs(updates: readonly RefUpdate[]): Promise<RefUpdateResult[]> {
      const sealed = updates.map((update) => ({ ...update, ref: seal(update.ref) }));
      const results = await transport.updateRefs(sealed);
      return results.map((result, i) => {
        const ref = updates[i]!.ref;
        const message = result.message?.replaceAll(sealed[i]!.ref, ref);
        return { ...result, ref, ...(message !== undefined ? { message } : {}) };
      });
    },
    // Locks name paths, which stay sealed: an encrypted repository has none.
    othersLocks: undefined,
  };
  return new Proxy(transport, {
    get(target, property) {
      if (typeof property === 'string' && Object.hasOwn(overrides, property)) {
        return overrides[property];
      }
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}
