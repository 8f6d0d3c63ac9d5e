/**
 * Storage settings for backend URLs (s3://, az://, gs://), read the way each
 * vendor's own CLI reads them, with MediaGit's config able to override:
 *
 * - S3: `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL`, `AWS_REGION` /
 *   `AWS_DEFAULT_REGION`, `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` /
 *   `AWS_SESSION_TOKEN`, `AWS_PROFILE`; without keys, the SDK's standard
 *   chain (shared config and profiles, SSO, instance metadata).
 *   Config: `[storage.s3] endpoint, region, forcePathStyle, accessKeyId,
 *   secretAccessKey, profile`. A custom endpoint implies path-style
 *   addressing unless `forcePathStyle = false`.
 * - Azure: `AZURE_STORAGE_CONNECTION_STRING`, else `AZURE_STORAGE_KEY`,
 *   else `AZURE_STORAGE_SAS_TOKEN`, else DefaultAzureCredential.
 *   Config: `[storage.azure] endpoint, connectionString, accountKey, sasToken`.
 * - GCS: application default credentials and `STORAGE_EMULATOR_HOST` (the
 *   SDK reads both); `GOOGLE_CLOUD_PROJECT`. Config: `[storage.gcs]
 *   endpoint, projectId, keyFile`.
 * - Every backend: `[storage] requestTimeout` (ms) or
 *   `MEDIAGIT_STORAGE_TIMEOUT_MS`; `MEDIAGIT_STORAGE_RETRIES` (attempts).
 */
import { getConfigValue, readConfigFile, type ConfigTable } from '../config/config.ts';
import type { BackendSettings } from '../storage/open.ts';
import { DEFAULT_RETRY } from '../storage/wrappers.ts';
import { globalConfigPath } from './context.ts';

function text(table: ConfigTable, key: string): string | undefined {
  const value = getConfigValue(table, key);
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function flag(table: ConfigTable, key: string): boolean | undefined {
  const value = getConfigValue(table, key);
  if (typeof value === 'boolean') return value;
  if (value === 'true') return true;
  if (value === 'false') return false;
  return undefined;
}

function positive(value: string | number | boolean | undefined): number | undefined {
  const n = Number(value);
  return Number.isFinite(n) && n > 0 ? n : undefined;
}

export async function storageSettings(
  env: NodeJS.ProcessEnv,
  cache?: { dir: string; maxBytes: number },
): Promise<BackendSettings> {
  const config = await readConfigFile(globalConfigPath(env));
  const timeout =
    positive(env['MEDIAGIT_STORAGE_TIMEOUT_MS']) ??
    positive(getConfigValue(config, 'storage.requestTimeout'));
  const attempts = positive(env['MEDIAGIT_STORAGE_RETRIES']);
  const endpoint =
    text(config, 'storage.s3.endpoint') ??
    env['AWS_ENDPOINT_URL_S3'] ??
    env['AWS_ENDPOINT_URL'] ??
    undefined;
  // The variables the SDK's own chain would read, read from the environment
  // given (so a caller's environment is the one used), else its chain.
  const accessKeyId = text(config, 'storage.s3.accessKeyId') ?? env['AWS_ACCESS_KEY_ID'];
  const secretAccessKey =
    text(config, 'storage.s3.secretAccessKey') ?? env['AWS_SECRET_ACCESS_KEY'];
  const sessionToken = text(config, 'storage.s3.accessKeyId')
    ? undefined
    : env['AWS_SESSION_TOKEN'];
  const region =
    text(config, 'storage.s3.region') ??
    env['AWS_REGION'] ??
    env['AWS_DEFAULT_REGION'] ??
    // Custom endpoints (MinIO, emulators) rarely care; the SDK insists on one.
    (endpoint ? 'us-east-1' : undefined);
  return {
    s3: {
      endpoint,
      region,
      forcePathStyle: flag(config, 'storage.s3.forcePathStyle') ?? (endpoint ? true : undefined),
      credentials:
        accessKeyId && secretAccessKey ? { accessKeyId, secretAccessKey, sessionToken } : undefined,
      profile: text(config, 'storage.s3.profile') ?? env['AWS_PROFILE'],
      requestTimeoutMs: timeout,
    },
    azure: {
      endpoint: text(config, 'storage.azure.endpoint') ?? env['AZURE_STORAGE_BLOB_ENDPOINT'],
      connectionString:
        text(config, 'storage.azure.connectionString') ?? env['AZURE_STORAGE_CONNECTION_STRING'],
      accountKey: text(config, 'storage.azure.accountKey') ?? env['AZURE_STORAGE_KEY'],
      sasToken: text(config, 'storage.azure.sasToken') ?? env['AZURE_STORAGE_SAS_TOKEN'],
      requestTimeoutMs: timeout,
    },
    gcs: {
      apiEndpoint: text(config, 'storage.gcs.endpoint') ?? env['STORAGE_EMULATOR_HOST'],
      projectId:
        text(config, 'storage.gcs.projectId') ??
        env['GOOGLE_CLOUD_PROJECT'] ??
        env['GCLOUD_PROJECT'],
      keyFilename: text(config, 'storage.gcs.keyFile') ?? env['GOOGLE_APPLICATION_CREDENTIALS'],
      requestTimeoutMs: timeout,
    },
    retry: attempts ? { ...DEFAULT_RETRY, attempts } : undefined,
    cache,
  };
}
