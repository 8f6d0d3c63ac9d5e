/** Chooses a storage backend by URL scheme (ARCHITECTURE.md §3). */
import { MediaGitError } from '../errors.ts';
import type { StorageBackend } from './backend.ts';
import { FsBackend } from './fs-backend.ts';
import { MemoryBackend } from './memory.ts';

const memories = new Map<string, MemoryBackend>();

/**
 * `file:///path` (or a plain path) and `memory://<name>` (one instance per
 * name in this process). Cloud schemes (`s3://`, `az://`, `gs://`) are
 * recognised and refused with a clear error until their backends exist.
 */
export function openBackend(url: string): StorageBackend {
  if (url.startsWith('file://')) return FsBackend.fromUrl(url);
  if (url.startsWith('memory://')) {
    const name = url.slice('memory://'.length) || 'default';
    let backend = memories.get(name);
    if (!backend) memories.set(name, (backend = new MemoryBackend(name)));
    return backend;
  }
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//.exec(url)?.[1];
  if (scheme === undefined) return new FsBackend(url);
  if (['s3', 'az', 'gs'].includes(scheme)) {
    throw new MediaGitError(
      'STORAGE_NOT_IMPLEMENTED',
      `the ${scheme}:// storage backend is not implemented yet`,
      {
        kind: 'usage',
        data: { url },
      },
    );
  }
  throw new MediaGitError('STORAGE_SCHEME', `unknown storage scheme in ${url}`, {
    kind: 'usage',
    data: { url },
  });
}
