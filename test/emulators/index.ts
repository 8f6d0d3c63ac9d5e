/**
 * Real object-store servers on loopback for tests and benchmarks, each in a
 * process of its own, started once per test file and stopped after it:
 *
 * - S3: s3rver from npm, made to honour conditional writes and to write
 *   atomically (s3-server.ts);
 * - Azure Blob: Azurite from npm (azure-server.ts);
 * - GCS: a GCS JSON-API server of our own (gcs-server.ts says why).
 *
 * Each `start*` resolves to the endpoint, credentials and the environment a
 * MediaGit process needs to reach it, plus request statistics.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));

export interface RequestStats {
  readonly [method: string]: number;
}

export interface Emulator {
  readonly kind: 's3' | 'az' | 'gs';
  readonly endpoint: string;
  /** The environment a MediaGit process (or rclone) needs to reach it. */
  readonly env: NodeJS.ProcessEnv;
  /** A backend URL for `bucket` under `prefix`. */
  url(prefix: string): string;
  /** Requests counted since the last reset: by method, and `bytesIn` (request bodies). */
  stats(): Promise<RequestStats>;
  resetStats(): Promise<void>;
  /** The process's CPU time so far (user + system, seconds). */
  cpuSeconds(): Promise<number>;
  stop(): Promise<void>;
}

async function spawnServer(
  script: string,
  args: readonly string[],
  nodeFlags: readonly string[] = [],
  env: NodeJS.ProcessEnv = {},
): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, [...nodeFlags, path.join(HERE, script), ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
    if (process.env['MEDIAGIT_EMULATOR_TRACE']) process.stderr.write(d);
  });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`${script} did not start: ${stderr}`)), 60_000);
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (line) {
        clearTimeout(timer);
        resolve((JSON.parse(line) as { port: number }).port);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${script} exited with ${code}: ${stderr}`));
    });
  });
  return { child, port };
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

async function cpuOf(pid: number | undefined): Promise<number> {
  if (pid === undefined) return 0;
  const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  return ticks / 100;
}

/** Stats, CPU time and stop of an emulator process that counts requests at `/_emulator/`. */
function servedBy(
  endpoint: string,
  child: ChildProcess,
  dir: string,
): Pick<Emulator, 'stats' | 'resetStats' | 'cpuSeconds' | 'stop'> {
  return {
    stats: async () => (await (await fetch(`${endpoint}/_emulator/stats`)).json()) as RequestStats,
    resetStats: async () => {
      await fetch(`${endpoint}/_emulator/reset`, { method: 'POST' });
    },
    cpuSeconds: () => cpuOf(child.pid),
    stop: async () => {
      await stopChild(child);
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
}

export const S3_ACCESS_KEY = 'S3RVER';
export const S3_SECRET_KEY = 'S3RVER';

/** s3rver with `buckets` made, data in a temp folder removed on stop. */
export async function startS3(buckets: readonly string[] = ['mediagit']): Promise<Emulator> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'mediagit-s3rver-'));
  // s3rver makes its listing continuation tokens with DES, which OpenSSL 3
  // keeps in its legacy provider.
  const { child, port } = await spawnServer(
    's3-server.ts',
    [dir, ...buckets],
    ['--openssl-legacy-provider'],
  );
  const endpoint = `http://127.0.0.1:${port}`;
  return {
    kind: 's3',
    endpoint,
    env: {
      AWS_ENDPOINT_URL: endpoint,
      AWS_ACCESS_KEY_ID: S3_ACCESS_KEY,
      AWS_SECRET_ACCESS_KEY: S3_SECRET_KEY,
      AWS_REGION: 'us-east-1',
      // No shared config files from the machine.
      AWS_CONFIG_FILE: path.join(dir, 'no-aws-config'),
      AWS_SHARED_CREDENTIALS_FILE: path.join(dir, 'no-aws-credentials'),
      AWS_EC2_METADATA_DISABLED: 'true',
    },
    url: (prefix) => `s3://${buckets[0]}${prefix ? `/${prefix}` : ''}`,
    ...servedBy(endpoint, child, dir),
  };
}

export const AZURITE_ACCOUNT = 'devstoreaccount1';
export const AZURITE_KEY =
  'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

/**
 * Azurite's Blob service (its own process; data in a temp folder removed on
 * stop), with `containers` made. Requests are counted from its access log.
 */
export async function startAzure(containers: readonly string[] = ['mediagit']): Promise<Emulator> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'mediagit-azurite-'));
  const main = fileURLToPath(
    new URL('../../node_modules/azurite/dist/src/blob/main.js', import.meta.url),
  );
  const child = spawn(
    process.execPath,
    [
      main,
      '--blobHost',
      '127.0.0.1',
      '--blobPort',
      '0',
      '--location',
      dir,
      '--skipApiVersionCheck',
      '--loose',
      '--disableTelemetry',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stats: Record<string, number> = {};
  let buffered = '';
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`azurite did not start: ${stderr}`)), 60_000);
    child.stdout?.on('data', (d: Buffer) => {
      buffered += d.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines) {
        const listening = /successfully listens on http:\/\/[^:]+:(\d+)/.exec(line);
        if (listening) {
          clearTimeout(timer);
          resolve(Number(listening[1]));
        }
        // Access log: ... "PUT /devstoreaccount1/... HTTP/1.1" 201 ...
        const request = /"([A-Z]+) \/[^ ]* HTTP\/1\.1" (\d+)/.exec(line);
        if (request) stats[request[1]!] = (stats[request[1]!] ?? 0) + 1;
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`azurite exited with ${code}: ${stderr}`));
    });
  });
  const endpoint = `http://127.0.0.1:${port}/${AZURITE_ACCOUNT}`;
  const connectionString = `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${AZURITE_KEY};BlobEndpoint=${endpoint};`;
  const { BlobServiceClient } = await import('@azure/storage-blob');
  const service = BlobServiceClient.fromConnectionString(connectionString);
  for (const name of containers) await service.getContainerClient(name).createIfNotExists();
  stats = {};
  return {
    kind: 'az',
    endpoint,
    env: { AZURE_STORAGE_CONNECTION_STRING: connectionString },
    url: (prefix) => `az://${AZURITE_ACCOUNT}/${containers[0]}${prefix ? `/${prefix}` : ''}`,
    // The access log line of the last requests may still be on its way.
    stats: async () => {
      await new Promise((resolve) => setTimeout(resolve, 50));
      return { ...stats };
    },
    resetStats: async () => {
      await new Promise((resolve) => setTimeout(resolve, 50));
      stats = {};
    },
    cpuSeconds: () => cpuOf(child.pid),
    stop: async () => {
      await stopChild(child);
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
}

export const GCS_CLIENT_EMAIL = 'mediagit-test@mediagit-emulator.iam.gserviceaccount.com';

/**
 * The GCS JSON-API server of gcs-server.ts (its own process; data in a temp
 * folder removed on stop), with `buckets` made. A service-account key is made
 * for the run: `env.GOOGLE_APPLICATION_CREDENTIALS` names its JSON file (so
 * the SDK can sign URLs) and the server checks signatures with its public key.
 */
export async function startGcs(buckets: readonly string[] = ['mediagit']): Promise<Emulator> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'mediagit-gcs-'));
  const { generateKeyPairSync } = await import('node:crypto');
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const keyFile = path.join(dir, 'service-account.json');
  await fs.writeFile(
    keyFile,
    JSON.stringify({
      type: 'service_account',
      project_id: 'mediagit-emulator',
      private_key_id: 'emulator',
      private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }),
      client_email: GCS_CLIENT_EMAIL,
      client_id: '1',
      token_uri: 'http://127.0.0.1:9/token',
    }),
  );
  const data = path.join(dir, 'data');
  const { child, port } = await spawnServer('gcs-server.ts', [data, ...buckets], [], {
    GCS_EMULATOR_KEYS: JSON.stringify({
      [GCS_CLIENT_EMAIL]: publicKey.export({ type: 'spki', format: 'pem' }),
    }),
  });
  const endpoint = `http://127.0.0.1:${port}`;
  return {
    kind: 'gs',
    endpoint,
    env: {
      STORAGE_EMULATOR_HOST: endpoint,
      GOOGLE_APPLICATION_CREDENTIALS: keyFile,
      GOOGLE_CLOUD_PROJECT: 'mediagit-emulator',
    },
    url: (prefix) => `gs://${buckets[0]}${prefix ? `/${prefix}` : ''}`,
    ...servedBy(endpoint, child, dir),
  };
}
