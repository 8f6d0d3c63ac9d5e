/**
 * Where a Git repository's media content lives besides its own store: the
 * "MediaGit remote" the filter fetches from and the pre-push hook uploads
 * to. Resolved like git-lfs resolves its endpoint:
 *   1. `git config mediagit.url` (a MediaGit server repository URL, or its
 *      LFS endpoint `.../info/lfs`),
 *   2. `git config lfs.url`,
 *   3. the Git remote's own URL (`remote.<name>.url`, `origin` by default):
 *      an http(s) URL gets `<url>.git/info/lfs` appended; a local path or
 *      file:// URL names another repository on this machine, whose MediaGit
 *      store is read and written directly.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { MediaGitError } from '../errors.ts';
import type { LfsPointer } from '../odb/lfs-pointer.ts';
import type { ObjectId } from '../odb/object-id.ts';
import { readManifest } from '../odb/file-store.ts';
import { standaloneRecord, writeRecord } from '../odb/record.ts';
import { tempName, writeFileAtomic } from '../storage/durable-file.ts';
import { gitConfigGet } from './git-command.ts';
import { lfsEndpoint, LfsClient, objectError, type LfsClientOptions } from './lfs-client.ts';
import { GitMediaStore, lfsKey, type ContentFetcher, type LocatedContent } from './media-store.ts';

export type MediaRemote =
  | { readonly kind: 'http'; readonly endpoint: string }
  | { readonly kind: 'local'; readonly gitDir: string };

/** The MediaGit remote of the repository at `cwd`, or undefined when none is configured. */
export async function resolveMediaRemote(
  cwd: string,
  env: NodeJS.ProcessEnv,
  remoteName = 'origin',
  remoteUrl?: string,
): Promise<MediaRemote | undefined> {
  const options = { cwd, env };
  const explicit =
    (await gitConfigGet('mediagit.url', options)) ?? (await gitConfigGet('lfs.url', options));
  if (explicit) return fromUrl(explicit, cwd, true);
  const url = remoteUrl ?? (await gitConfigGet(`remote.${remoteName}.url`, options));
  if (!url) return undefined;
  return fromUrl(url, cwd, false);
}

async function fromUrl(
  url: string,
  cwd: string,
  explicit: boolean,
): Promise<MediaRemote | undefined> {
  if (/^https?:\/\//i.test(url)) return { kind: 'http', endpoint: lfsEndpoint(url) };
  let local: string | undefined;
  if (url.startsWith('file://')) local = fileURLToPath(url);
  else if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(url) && !/^[^/]+@[^:]+:/.test(url))
    local = path.resolve(cwd, url);
  if (local === undefined) {
    if (!explicit) return undefined; // ssh and other transports: no MediaGit remote implied
    throw new MediaGitError(
      'MEDIA_REMOTE_URL',
      `unsupported MediaGit remote URL ${url} (use http(s):// or a local path)`,
      {
        kind: 'config',
      },
    );
  }
  const dotGit = path.join(local, '.git');
  if ((await fs.stat(dotGit).catch(() => undefined))?.isDirectory())
    return { kind: 'local', gitDir: dotGit };
  return { kind: 'local', gitDir: local };
}

/** Copies one file's objects (standalone records) from one store to another. */
async function copyContent(
  from: GitMediaStore,
  to: GitMediaStore,
  found: LocatedContent,
  oid: ObjectId,
): Promise<void> {
  const copy = async (id: ObjectId): Promise<void> => {
    if (await to.objects.has(id)) return;
    await writeRecord(to.objects, id, await standaloneRecord(from.objects, id));
  };
  if (found.kind === 'manifest') {
    const manifest = await readManifest(from.objects, found.id);
    for (const chunk of manifest.chunks) await copy(chunk.id);
  }
  await copy(found.id);
  await to.objects.flush();
  if (found.kind === 'manifest') {
    await writeFileAtomic(path.join(to.dir, lfsKey(oid)), [Buffer.from(`${found.id}\n`)], {
      tmpDir: to.objects.tmpDir,
      dirSync: to.objects.dirSync,
    });
  }
}

/** What the filter needs from a remote: a way to make content local. */
export function fetcherFor(remote: MediaRemote, client?: LfsClientOptions): ContentFetcher {
  if (remote.kind === 'local') {
    return async (pointer, store) => {
      const other = await GitMediaStore.openExisting(remote.gitDir);
      const found = await other?.locate(pointer.oid);
      if (!other || !found) return; // the caller reports the content missing
      await copyContent(other, store, found, pointer.oid);
    };
  }
  let lfs: LfsClient | undefined;
  return async (pointer: LfsPointer, store) => {
    lfs ??= new LfsClient(remote.endpoint, client);
    const [object] = await lfs.batch('download', [{ oid: pointer.oid, size: pointer.size }]);
    if (!object || object.error) {
      if (object?.error?.code === 404) return;
      throw objectError(object ?? { oid: pointer.oid, size: pointer.size }, 'no answer');
    }
    const tmp = tempName(store.objects.tmpDir, 'download');
    try {
      await lfs.download(object, tmp);
      await store.storeFile(tmp);
    } finally {
      await fs.rm(tmp, { force: true });
    }
  };
}

/**
 * Sends the content of `pointers` (those the remote lacks) to the remote;
 * content missing here is skipped when the remote has it, else an error.
 */
export async function uploadContent(
  remote: MediaRemote,
  store: GitMediaStore,
  pointers: readonly LfsPointer[],
  client?: LfsClientOptions,
  ref?: string,
): Promise<{ uploaded: number; present: number }> {
  let uploaded = 0;
  if (remote.kind === 'local') {
    const other = await GitMediaStore.open(remote.gitDir);
    for (const pointer of pointers) {
      if (await other.locate(pointer.oid)) continue;
      const found = await store.locate(pointer.oid);
      if (!found) throw missingForPush(pointer);
      await copyContent(store, other, found, pointer.oid);
      uploaded++;
    }
    await other.close();
    return { uploaded, present: pointers.length - uploaded };
  }
  const lfs = new LfsClient(remote.endpoint, client);
  try {
    const answers = await lfs.batch('upload', pointers, ref);
    const queue = answers.filter(
      (object) => object.actions?.upload || object.actions?.verify || object.error,
    );
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(4, queue.length) }, async () => {
        for (let i = next++; i < queue.length; i = next++) {
          const object = queue[i]!;
          if (object.error) throw objectError(object, 'refused');
          const pointer = { oid: object.oid, size: object.size, extra: [] };
          const found = await store.locate(object.oid);
          if (!found) throw missingForPush(pointer);
          await lfs.upload(object, (write) => store.writeContent(found, write));
          uploaded++;
        }
      }),
    );
  } finally {
    lfs.close();
  }
  return { uploaded, present: pointers.length - uploaded };
}

function missingForPush(pointer: LfsPointer): MediaGitError {
  return new MediaGitError(
    'CONTENT_MISSING',
    `cannot push ${pointer.oid}: its content is not in this repository's MediaGit store`,
    { kind: 'user', data: { oid: pointer.oid } },
  );
}
