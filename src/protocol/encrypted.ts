/**
 * Talking to a remote about an encrypted repository (docs/encryption.md,
 * "The server"): the remote must hold the same key file (the repository's
 * ID in it), or be empty and take this one on the first push; its branch
 * and tag names are sealed (security/encryption.ts, `sealName`), opened
 * here on the way in and sealed on the way out, so the verbs above see the
 * names as they are. Objects travel as they are stored: sealed.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { MediaGitError } from '../errors.ts';
import type { ObjectCipher } from '../odb/object-cipher.ts';
import { KEY_FILE, updateKeyFile } from '../repo/keys.ts';
import type { Repository } from '../repo/repository.ts';
import { mergeKeyFiles, parseKeyFile, sameKeyFile, type KeyFile } from '../security/encryption.ts';
import type { InfoRefs, RefUpdate, RefUpdateResult } from './service.ts';
import { overriding, type Transport } from './transport.ts';

const REF_KINDS = ['refs/heads/', 'refs/tags/'] as const;

function refused(code: string, message: string): MediaGitError {
  return new MediaGitError(code, message, { kind: 'user', data: { exitCode: 128 } });
}

/** The remote's key file (an encrypted repository's; undefined for a plain one). */
export async function remoteKeyFile(transport: Transport): Promise<KeyFile | undefined>;
export async function remoteKeyFile(transport: Transport, bytes: Buffer): Promise<KeyFile>;
export async function remoteKeyFile(
  transport: Transport,
  given?: Buffer,
): Promise<KeyFile | undefined> {
  const bytes = given ?? (await transport.keys());
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

/** What `pushKeySlots` changed on the remote (slot IDs), and whether the local key file took slots from it. */
export interface KeySlotsPushed {
  readonly added: readonly string[];
  readonly removed: readonly string[];
  readonly fetched: readonly string[];
}

/**
 * `key push`: publishes this repository's key slots to the remote, merged
 * with the remote's (`mergeKeyFiles`: slots added on either side stay,
 * slots removed on either side go), and keeps the merged file here too. The
 * remote's key file is replaced by compare-and-swap; when another client
 * changed it meanwhile the merge is done again. `opened` is the slot that
 * opened the repository here: a merge that would remove it is refused.
 */
export async function pushKeySlots(
  gitDir: string,
  transport: Transport,
  opened: string,
): Promise<KeySlotsPushed> {
  for (let attempt = 1; ; attempt++) {
    const remoteBytes = await transport.keys();
    if (remoteBytes === undefined) {
      throw refused(
        'PLAIN_REMOTE',
        `key push: ${transport.url} is not an encrypted repository: push the repository first (its first push gives it the key file); nothing was sent`,
      );
    }
    const remote = await remoteKeyFile(transport, remoteBytes);
    let merged: KeyFile | undefined;
    let local: KeyFile | undefined;
    await updateKeyFile(gitDir, (ours) => {
      local = ours;
      if (ours.repository !== remote.repository) {
        throw refused(
          'OTHER_KEYS',
          `key push: ${transport.url} is encrypted under other keys: it is another repository; nothing was sent`,
        );
      }
      merged = mergeKeyFiles(ours, remote);
      if (!merged.slots.some((slot) => slot.id === opened)) {
        throw refused(
          'CURRENT_KEY',
          `key push: key slot ${opened}, which opened this repository, was removed on ${transport.url}; open it with another key; nothing was changed`,
        );
      }
      return merged;
    });
    const ids = (file: KeyFile) => new Set(file.slots.map((slot) => slot.id));
    const [before, after, ours] = [ids(remote), ids(merged!), ids(local!)];
    const result = {
      added: [...after].filter((id) => !before.has(id)),
      removed: [...before].filter((id) => !after.has(id)),
      fetched: [...after].filter((id) => !ours.has(id)),
    };
    if (sameKeyFile(merged!, remote)) return result;
    try {
      const replaces = createHash('sha256').update(remoteBytes).digest('hex');
      await transport.putKeys(Buffer.from(`${JSON.stringify(merged, null, 2)}\n`), replaces);
      return result;
    } catch (error) {
      if (!(error instanceof MediaGitError && error.code === 'KEYS_CHANGED') || attempt === 3) {
        throw error;
      }
    }
  }
}

/**
 * `transport` as `repo` uses it. On its first `infoRefs` (the first call
 * of every verb; `known` answers it when the caller has asked already), the
 * remote is checked to be of the same kind: an encrypted repository's
 * remote must hold the same key file, or be empty and take this one (the
 * first push); a plain repository's must be plain. An encrypted
 * repository's names are then sealed on the way out and opened on the way
 * in (`withSealedNames`), unless the remote is a repository with a working
 * tree, which keeps them in clear (`namesInClear`).
 */
export function remoteFor(
  repo: Repository,
  transport: Transport,
  verb: 'push' | 'fetch',
  known?: InfoRefs,
): Transport {
  const cipher = repo.objects.cipher;
  let checked: Promise<void> | undefined;
  let first = known;
  const nothing = verb === 'push' ? 'sent' : 'changed';
  const check = async (info: InfoRefs): Promise<void> => {
    if (cipher === undefined) {
      if (info.encrypted !== true) return;
      throw refused(
        'ENCRYPTED_REMOTE',
        `${verb}: ${transport.url} is an encrypted repository and this one is not; clone it to work with it; nothing was ${nothing}`,
      );
    }
    const localBytes = await fs.readFile(path.join(repo.gitDir, KEY_FILE));
    const local = parseKeyFile(JSON.parse(localBytes.toString('utf8')));
    if (info.encrypted !== true) {
      if (verb === 'fetch') {
        throw refused(
          'PLAIN_REMOTE',
          `fetch: ${transport.url} is not encrypted, and this repository is: an encrypted repository exchanges objects only with one of the same keys; nothing was changed`,
        );
      }
      // The first push: the remote (empty, or the server refuses) takes this key file.
      await transport.putKeys(localBytes);
      return;
    }
    const remote = await remoteKeyFile(transport);
    if (remote?.repository !== local.repository) {
      throw refused(
        'OTHER_KEYS',
        `${verb}: ${transport.url} is encrypted under other keys: it is another repository; nothing was ${nothing}`,
      );
    }
  };
  const infoRefs = async (): Promise<InfoRefs> => {
    const info = first ?? (await transport.infoRefs());
    first = undefined;
    await (checked ??= check(info));
    return info;
  };
  const checkedTransport = overriding(transport, { infoRefs });
  return cipher === undefined || transport.namesInClear === true
    ? checkedTransport
    : withSealedNames(checkedTransport, cipher);
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
  return overriding(transport, {
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
  });
}
