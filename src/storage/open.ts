/**
 * Chooses a storage backend by URL scheme (ARCHITECTURE.md §3) and wraps it:
 *
 *   file:///path or a plain path   FsBackend
 *   memory://<name>                MemoryBackend (one instance per name in this process)
 *   s3://bucket/prefix             S3Backend (AWS S3, MinIO, B2, DO Spaces, R2, Wasabi)
 *   az://account/container/prefix  AzureBackend
 *   gs://bucket/prefix             GcsBackend
 *
 * Cloud backends are wrapped in RetryingBackend (unless `retry: false`), and
 * any backend in a CachingBackend when `cache` is given. Settings are typed
 * values: the CLI reads them from the environment and MediaGit's config
 * (cli/storage-settings.ts); this layer never reads the environment.
 */
import { MediaGitError } from '../errors.ts';
import type { StorageBackend } from './backend.ts';
import type { AzureSettings } from './azure.ts';
import { CachingBackend } from './cache.ts';
import { FsBackend } from './fs-backend.ts';
import type { GcsSettings } from './gcs.ts';
import { MemoryBackend } from './memory.ts';
import type { S3Settings } from './s3.ts';
import { azureCapabilities, canonicalCloudUrl } from './cloud-url.ts';
import { LazyBackend } from './lazy.ts';
import { DEFAULT_RETRY, RetryingBackend, type RetryPolicy } from './wrappers.ts';

export interface BackendSettings {
  readonly s3?: S3Settings | undefined;
  readonly azure?: AzureSettings | undefined;
  readonly gcs?: GcsSettings | undefined;
  /** Retries for cloud backends; false: none. */
  readonly retry?: RetryPolicy | false | undefined;
  readonly cache?:
    | {
        readonly dir: string;
        readonly maxBytes: number;
        readonly cacheable?: (key: string) => boolean;
      }
    | undefined;
}

const memories = new Map<string, MemoryBackend>();

/** S3 and GCS: conditional writes, ranged reads and signed URLs. */
const SIGNING_STORE = {
  conditionalPut: true,
  rangedGet: true,
  signedUrls: true,
  remote: true,
} as const;

/** The URL's scheme for a backend URL, or undefined for a plain path. */
export function backendScheme(url: string): string | undefined {
  return /^([a-z][a-z0-9+.-]*):\/\//.exec(url)?.[1];
}

/** Whether `url` names a cloud object store (s3, az, gs). */
export function isCloudUrl(url: string): boolean {
  return ['s3', 'az', 'gs'].includes(backendScheme(url) ?? '');
}

/** Whether `url` names a backend by URL (any scheme) rather than a local path. */
export function isBackendUrl(url: string): boolean {
  return backendScheme(url) !== undefined;
}

/** Content-addressed keys: immutable once written, safe to cache anywhere. */
export function isImmutableKey(key: string): boolean {
  return /(^|\/)objects\/([0-9a-f]{2}\/[0-9a-f]{62}|pack\/[^/]+)$/.test(key);
}

export function openBackend(url: string, settings: BackendSettings = {}): StorageBackend {
  let backend = openRaw(url, settings);
  if (isCloudUrl(url) && settings.retry !== false) {
    backend = new RetryingBackend(backend, settings.retry ?? DEFAULT_RETRY);
  }
  if (settings.cache) {
    backend = new CachingBackend(backend, {
      dir: settings.cache.dir,
      maxBytes: settings.cache.maxBytes,
      cacheable: settings.cache.cacheable ?? isImmutableKey,
    });
  }
  return backend;
}

function openRaw(url: string, settings: BackendSettings): StorageBackend {
  const scheme = backendScheme(url);
  switch (scheme) {
    case undefined:
      return new FsBackend(url);
    case 'file':
      return FsBackend.fromUrl(url);
    case 'memory': {
      const name = url.slice('memory://'.length) || 'default';
      let backend = memories.get(name);
      if (!backend) memories.set(name, (backend = new MemoryBackend(name)));
      return backend;
    }
    // The vendor SDKs load on a cloud backend's first request (lazy.ts).
    case 's3':
      return new LazyBackend(canonicalCloudUrl(url, 's3'), SIGNING_STORE, async () => {
        const { S3Backend } = await import('./s3.ts');
        return new S3Backend(url, settings.s3);
      });
    case 'az':
      return new LazyBackend(
        canonicalCloudUrl(url, 'az'),
        azureCapabilities(settings.azure ?? {}),
        async () => {
          const { AzureBackend } = await import('./azure.ts');
          return new AzureBackend(url, settings.azure);
        },
      );
    case 'gs':
      return new LazyBackend(canonicalCloudUrl(url, 'gs'), SIGNING_STORE, async () => {
        const { GcsBackend } = await import('./gcs.ts');
        return new GcsBackend(url, settings.gcs);
      });
    default:
      throw new MediaGitError(
        'STORAGE_SCHEME',
        `unknown storage scheme in ${url} (file://, s3://, az://, gs://, memory://)`,
        { kind: 'usage', data: { url } },
      );
  }
}
