/**
 * `fsck --root`: the integrity of repositories on a server root, through
 * the storage interface. Per repository: every ref names a stored commit or
 * tag and everything it reaches is stored and hashes to its ID (verify.ts);
 * every Git LFS object's manifest and chunks likewise; every pack a
 * multi-pack index names is stored; gc's state files parse.
 */
import { MediaGitError } from '../errors.ts';
import { cloudPackKey } from '../odb/cloud-pack.ts';
import { decodeManifest } from '../odb/manifest.ts';
import { isObjectId } from '../odb/object-id.ts';
import { isStorageCode } from '../storage/backend.ts';
import { BackendRepo } from './backend-repo.ts';
import { DELETING_KEY, parseDeleting, parsePending, PENDING_KEY } from './gc-state.ts';
import { rootRepositories } from './root-stats.ts';
import type { ServerRoot } from './server-root.ts';
import { verifyRepo } from './verify.ts';

export type RootProblemKind = 'missing' | 'corrupt' | 'corrupt-pack-index' | 'bad-state';

export interface RootFsckRepository {
  readonly name: string;
  readonly refs: number;
  readonly objects: number;
  readonly chunks: number;
  readonly lfsObjects: number;
  readonly packs: number;
  readonly problems: { kind: RootProblemKind; message: string }[];
}

export interface RootFsckReport {
  readonly root: string;
  readonly repositories: RootFsckRepository[];
}

export async function rootFsck(
  root: ServerRoot,
  options: { repo?: string | undefined; signal?: AbortSignal | undefined } = {},
): Promise<RootFsckReport> {
  const repositories: RootFsckRepository[] = [];
  for (const name of await rootRepositories(root, options.repo)) {
    repositories.push(await fsckRepo(name, new BackendRepo(root.repo(name)), options.signal));
  }
  return { root: root.label, repositories };
}

async function fsckRepo(
  name: string,
  repo: BackendRepo,
  signal: AbortSignal | undefined,
): Promise<RootFsckRepository> {
  const report = await verifyRepo(repo, signal);
  const problems: RootFsckRepository['problems'] = [...report.issues];
  let chunks = report.chunks;
  let lfsObjects = 0;
  for await (const key of repo.backend.list('lfs/')) {
    if (!/^lfs\/[0-9a-f]{2}\/[0-9a-f]{62}$/.test(key)) continue;
    signal?.throwIfAborted();
    lfsObjects++;
    const text = Buffer.from(await repo.backend.get(key))
      .toString('utf8')
      .trim();
    if (/^whole \d+$/.test(text)) continue;
    if (text === 'blob') {
      const oid = `${key.slice(4, 6)}${key.slice(7)}`;
      try {
        await repo.read(oid);
      } catch (error) {
        if (!(error instanceof MediaGitError)) throw error;
        const kind = error.code === 'OBJECT_MISSING' ? 'missing' : 'corrupt';
        problems.push({ kind, message: `Git LFS object ${oid}: ${error.message}` });
      }
      continue;
    }
    if (!isObjectId(text)) {
      problems.push({ kind: 'bad-state', message: `${key} names no manifest` });
      continue;
    }
    try {
      const manifest = decodeManifest(text, (await repo.read(text)).data);
      for (const chunk of manifest.chunks) {
        await repo.read(chunk.id);
        chunks++;
      }
    } catch (error) {
      if (!(error instanceof MediaGitError)) throw error;
      const kind = error.code === 'OBJECT_MISSING' ? 'missing' : 'corrupt';
      problems.push({
        kind,
        message: `Git LFS object ${key.slice(4).replace('/', '')}: ${error.message}`,
      });
    }
  }
  await repo.catalog.refresh();
  const packs = new Set<string>();
  for (const index of repo.catalog.multiIndexes()) for (const pack of index.packs) packs.add(pack);
  for (const pack of packs) {
    if ((await repo.backend.head(cloudPackKey(pack))) === undefined) {
      problems.push({
        kind: 'corrupt-pack-index',
        message: `an index names pack ${pack}, which is not stored`,
      });
    }
  }
  if (repo.catalog.brokenError instanceof Error) {
    problems.push({ kind: 'corrupt-pack-index', message: repo.catalog.brokenError.message });
  }
  for (const [key, parse] of [
    [PENDING_KEY, parsePending],
    [DELETING_KEY, parseDeleting],
  ] as const) {
    try {
      parse(await repo.backend.get(key));
    } catch (error) {
      if (isStorageCode(error, 'STORAGE_NOT_FOUND')) continue;
      if (!(error instanceof MediaGitError)) throw error;
      problems.push({ kind: 'bad-state', message: error.message });
    }
  }
  return {
    name,
    refs: report.refs,
    objects: report.objects,
    chunks,
    lfsObjects,
    packs: packs.size,
    problems,
  };
}
