/**
 * What can be known of a cloud store without loading its vendor SDK (a
 * second of startup and ~50 MiB that commands on local repositories should
 * not pay): its URL (`s3://bucket/prefix`, `gs://bucket/prefix`,
 * `az://account/container/prefix`) and its capabilities.
 */
import { MediaGitError } from '../errors.ts';
import { checkKey, type StorageCapabilities } from './backend.ts';

/** The bucket (or Azure account) and the prefix under it, trailing slashes removed. */
export function parseBucketUrl(url: string, scheme: string): { bucket: string; prefix: string } {
  const match = new RegExp(`^${scheme}://([^/]+)/?(.*)$`).exec(url);
  const bucket = match?.[1];
  const prefix = (match?.[2] ?? '').replace(/\/+$/, '');
  if (!bucket) {
    throw new MediaGitError('STORAGE_URL', `${url} names no bucket (${scheme}://bucket/prefix)`, {
      kind: 'usage',
      data: { url },
    });
  }
  if (prefix !== '') checkKey(prefix);
  return { bucket, prefix };
}

/** An Azure URL's account, container and prefix under the container. */
export function parseAzureUrl(url: string): { account: string; container: string; prefix: string } {
  const { bucket: account, prefix: rest } = parseBucketUrl(url, 'az');
  const slash = rest.indexOf('/');
  const container = slash === -1 ? rest : rest.slice(0, slash);
  const prefix = slash === -1 ? '' : rest.slice(slash + 1);
  if (container === '') {
    throw new MediaGitError(
      'STORAGE_URL',
      `${url} names no container (az://account/container/prefix)`,
      {
        kind: 'usage',
        data: { url },
      },
    );
  }
  return { account, container, prefix };
}

/** The canonical form of a cloud URL (as the backend names itself); throws STORAGE_URL. */
export function canonicalCloudUrl(url: string, scheme: 's3' | 'az' | 'gs'): string {
  if (scheme === 'az') {
    const { account, container, prefix } = parseAzureUrl(url);
    return `az://${account}/${container}${prefix === '' ? '' : `/${prefix}`}`;
  }
  const { bucket, prefix } = parseBucketUrl(url, scheme);
  return `${scheme}://${bucket}${prefix === '' ? '' : `/${prefix}`}`;
}

/**
 * What an Azure backend with these settings can do, known without the SDK:
 * it signs with a shared key (account key or a connection string's
 * AccountKey) or with a user delegation key (Entra ID credentials), not
 * when all it has is a SAS token.
 */
export function azureCapabilities(settings: {
  readonly accountKey?: string | undefined;
  readonly connectionString?: string | undefined;
  readonly sasToken?: string | undefined;
}): StorageCapabilities {
  const sharedKey =
    settings.accountKey !== undefined || /AccountKey=[^;]+/i.test(settings.connectionString ?? '');
  return {
    conditionalPut: true,
    rangedGet: true,
    signedUrls: sharedKey || !settings.sasToken,
    remote: true,
  };
}
