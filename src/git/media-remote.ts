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
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { MediaGitError } from '../errors.ts';
import type { LfsPointer } from '../odb/lfs-pointer.ts';
import type { ObjectId } from '../odb/object-id.ts';
import { INGEST_PACK_MIN_SIZE, readManifest } from '../odb/file-store.ts';
import { IngestPack } from '../odb/ingest-pack.ts';
import { decodeManifest } from '../odb/manifest.ts';
import { decodeRecord, standaloneRecord, writeRecord } from '../odb/record.ts';
import { HttpTransport } from '../protocol/http-transport.ts';
import { tempName } from '../storage/durable-file.ts';
import { gitConfigGet, runGit } from './git-command.ts';
import {
  lfsEndpoint,
  LfsClient,
  objectError,
  type BatchObject,
  type LfsClientOptions,
} from './lfs-client.ts';

/** Objects per Batch API request. */
const BATCH_SIZE = 100;
import { GitMediaStore, type ContentFetcher, type LocatedContent } from './media-store.ts';
import { eachLimited } from '../storage/concurrency.ts';
import { receiveFromPacks, sendInPacks } from '../protocol/pack-transfer.ts';

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
  // git-lfs's order: the repository's Git config, then the committed
  // .lfsconfig (how a team shares its server), then remote.<name>.lfsurl.
  const explicit =
    (await gitConfigGet('mediagit.url', options)) ??
    (await gitConfigGet('lfs.url', options)) ??
    (await lfsConfigGet('mediagit.url', options)) ??
    (await lfsConfigGet('lfs.url', options)) ??
    (await gitConfigGet(`remote.${remoteName}.lfsurl`, options));
  if (explicit) return fromUrl(explicit, cwd, true);
  const url = remoteUrl ?? (await gitConfigGet(`remote.${remoteName}.url`, options));
  if (!url) return undefined;
  return fromUrl(url, cwd, false);
}

/** A key of the `.lfsconfig` file at the top of the work tree, if both exist. */
async function lfsConfigGet(
  key: string,
  options: { cwd: string; env: NodeJS.ProcessEnv },
): Promise<string | undefined> {
  const top = await runGit(['rev-parse', '--show-toplevel'], options);
  if (top.code !== 0) return undefined;
  const file = path.join(top.stdout.toString('utf8').trim(), '.lfsconfig');
  if (!existsSync(file)) return undefined;
  const result = await runGit(['config', '--file', file, '--get', key], options);
  return result.code === 0 ? result.stdout.toString('utf8').replace(/\n$/, '') : undefined;
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
  if (found.kind === 'manifest') await to.bindManifest(oid, found.id);
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
  let native: HttpTransport | undefined;
  return async (pointer: LfsPointer, store) => {
    native ??= nativeTransport(remote.endpoint, client);
    if (native && (await fetchChunked(native, store, pointer).catch(notMediaGit))) return;
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
    if (!(await fs.stat(remote.gitDir).catch(() => undefined))?.isDirectory()) {
      throw new MediaGitError(
        'MEDIA_REMOTE_MISSING',
        `the remote repository ${remote.gitDir} does not exist`,
        {
          kind: 'user',
        },
      );
    }
    const other = await GitMediaStore.open(remote.gitDir);
    try {
      for (const pointer of pointers) {
        if (await other.locate(pointer.oid)) continue;
        const found = await store.locate(pointer.oid);
        if (!found) throw missingForPush(pointer);
        await copyContent(store, other, found, pointer.oid);
        uploaded++;
      }
    } finally {
      await other.close();
    }
    return { uploaded, present: pointers.length - uploaded };
  }
  const lfs = new LfsClient(remote.endpoint, client);
  const native = nativeTransport(remote.endpoint, client);
  try {
    // Batches of 100, as git-lfs sends them (servers cap a batch's size).
    const answers: BatchObject[] = [];
    for (let i = 0; i < pointers.length; i += BATCH_SIZE) {
      answers.push(...(await lfs.batch('upload', pointers.slice(i, i + BATCH_SIZE), ref)));
    }
    const queue = answers.filter(
      (object) => object.actions?.upload || object.actions?.verify || object.error,
    );
    await eachLimited(queue, 4, async (object) => {
      if (object.error) throw objectError(object, 'refused');
      const pointer = { oid: object.oid, size: object.size, extra: [] };
      const found = await store.locate(object.oid);
      if (!found) throw missingForPush(pointer);
      uploaded++;
      // A chunked file goes chunk by chunk to a MediaGit server (only the
      // chunks it lacks); anything else, or another LFS server, whole.
      if (native && found.kind === 'manifest' && object.actions?.upload) {
        const sent = await pushChunked(native, store, found, object.oid).catch(notMediaGit);
        if (sent) return;
      }
      await lfs.upload(object, (write) => store.writeContent(found, write));
    });
  } finally {
    lfs.close();
    await native?.close();
  }
  return { uploaded, present: pointers.length - uploaded };
}

/**
 * MediaGit's own endpoints beside an LFS endpoint `<repo>[.git]/info/lfs`
 * (docs/protocol.md: chunks/check, chunks, manifests), for moving files
 * chunk by chunk; undefined when the endpoint has another shape.
 */
function nativeTransport(endpoint: string, client?: LfsClientOptions): HttpTransport | undefined {
  const match = /^(.*?)(?:\.git)?\/info\/lfs$/.exec(endpoint);
  if (!match?.[1]) return undefined;
  return new HttpTransport(match[1], { token: client?.token, ca: client?.ca, parallelism: 8 });
}

/**
 * False when MediaGit's own endpoints answered with an HTTP error (another
 * LFS server: 404, or an auth redirect or refusal of its own): plain LFS then
 * decides, and reports its own errors. Anything else (a network failure, a
 * corrupt download) is rethrown.
 */
function notMediaGit(error: unknown): false {
  const status = error instanceof MediaGitError ? error.data['status'] : undefined;
  if (typeof status === 'number' && status >= 300) return false;
  throw error;
}

/** Uploads a chunked file: the chunks the server lacks, then its manifest under the OID. */
async function pushChunked(
  transport: HttpTransport,
  store: GitMediaStore,
  found: LocatedContent,
  oid: ObjectId,
): Promise<true> {
  const manifest = await readManifest(store.objects, found.id);
  const missing = await transport.missing([...new Set(manifest.chunks.map((c) => c.id))]);
  // In cloud packs, committed before the manifest is bound (its chunks must be there).
  await sendInPacks(transport, missing, (id, into) => standaloneRecord(store.objects, id, into), {
    recordSize: (id) => store.objects.recordSize(id),
  });
  await transport.putManifest(oid, found.id, await standaloneRecord(store.objects, found.id));
  return true;
}

/**
 * Downloads a chunked file chunk by chunk (only chunks not already here),
 * each verified before it is stored; false when the server has no manifest
 * for it (a file stored whole, or not there: plain LFS decides).
 */
async function fetchChunked(
  transport: HttpTransport,
  store: GitMediaStore,
  pointer: LfsPointer,
): Promise<boolean> {
  const got = await transport.getManifest(pointer.oid);
  if (!got) return false;
  const object = await decodeRecord(got.id, got.record);
  const manifest = object.type === 'manifest' ? decodeManifest(got.id, object.data) : undefined;
  if (!manifest || manifest.sha256 !== pointer.oid || manifest.size !== pointer.size) {
    throw new MediaGitError(
      'LFS_BAD_DOWNLOAD',
      `the server's manifest for ${pointer.oid} does not describe it`,
      {
        kind: 'user',
      },
    );
  }
  const lengths = new Map(manifest.chunks.map((c) => [c.id, c.length]));
  const wanted: ObjectId[] = [];
  for (const id of new Set(manifest.chunks.map((c) => c.id))) {
    if (!(await store.objects.has(id))) wanted.push(id);
  }
  // A large download goes into one ingest pack made durable at the end
  // (an fsync per chunk file cost more than the transfer); a failed one is
  // removed whole and a rerun downloads the file again.
  const wantedBytes = manifest.chunks
    .filter((c) => wanted.includes(c.id))
    .reduce((sum, c) => sum + c.length, 0);
  const pack =
    wantedBytes >= INGEST_PACK_MIN_SIZE ? await IngestPack.create(store.objects) : undefined;
  const keep = async (id: ObjectId, record: Buffer, chunk: { type: string }): Promise<void> => {
    if (chunk.type !== 'chunk') {
      throw new MediaGitError('LFS_BAD_DOWNLOAD', `object ${id} is not a chunk`, {
        kind: 'user',
      });
    }
    if (pack) await pack.append(id, [record]);
    else await writeRecord(store.objects, id, record);
  };
  try {
    // Ranged reads of the server's cloud packs (coalesced), loose ones one by one.
    await receiveFromPacks(transport, wanted, {
      onObject: keep,
      fetchLoose: async (id) => {
        const record = await transport.getChunk(id, lengths.get(id));
        try {
          await keep(id, record, await decodeRecord(id, record, lengths.get(id)));
        } finally {
          transport.release(record);
        }
      },
    });
    await pack?.finish();
  } catch (error) {
    await pack?.abort();
    throw error;
  }
  await store.objects.flush();
  await writeRecord(store.objects, got.id, got.record);
  await store.objects.flush();
  await store.bindManifest(pointer.oid, got.id);
  return true;
}

function missingForPush(pointer: LfsPointer): MediaGitError {
  return new MediaGitError(
    'CONTENT_MISSING',
    `cannot push ${pointer.oid}: its content is not in this repository's MediaGit store`,
    { kind: 'user', data: { oid: pointer.oid } },
  );
}
