import fs from 'node:fs/promises';
import path from 'node:path';
import type { Server as TlsServer } from 'node:tls';
import v8 from 'node:v8';
import { Option, type Command } from 'commander';
import { MediaGitError } from '../../errors.ts';
import type { UploadVerification } from '../../protocol/backend-repo.ts';
import { SERVER_STATE_DIR, ServerRoot } from '../../protocol/server-root.ts';
import { storageSettings } from '../storage-settings.ts';
import {
  secureContextOptions,
  selfSignedMaterial,
  type ServerTls,
  type TlsMinVersion,
} from '../../security/tls.ts';
import { buildServer } from '../../server/app.ts';
import { LOG_LEVELS, LogFile, type LogDestination, type LogLevel } from '../../server/logging.ts';
import type { Cli } from '../context.ts';

interface ServeFlags {
  root: string;
  cacheDir?: string;
  cacheSize?: number;
  host: string;
  port: number;
  tlsCert?: string;
  tlsKey?: string;
  tlsSelfSigned?: boolean;
  tlsMinVersion: TlsMinVersion;
  tlsClientCa?: string;
  allowAnonymousRead?: boolean;
  rateLimit?: number;
  ipRateLimit?: number;
  maxChunkSize?: number;
  maxPackSize?: number;
  verifyUploads?: UploadVerification;
  lfsDirect?: boolean;
  logLevel?: LogLevel;
  /** The older spelling of --log-level. */
  log?: LogLevel;
  logFile?: string;
  /** False with --no-ui. */
  ui?: boolean;
  previewDir?: string;
}

const DEFAULT_CACHE_BYTES = 10 * 1024 ** 3;

const integer = (v: string): number => {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new MediaGitError('SERVE_USAGE', `not a non-negative integer: ${v}`, { kind: 'usage' });
  }
  return n;
};

export function register(program: Command, cli: Cli): void {
  program
    .command('serve')
    .description('Serve every bare repository under a folder over HTTP(S) (push, fetch, clone)')
    .requiredOption(
      '--root <dir|url>',
      'folder or storage URL (s3://bucket/prefix, az://account/container/prefix, gs://bucket/prefix) of bare repositories (mediagit init --bare <root>/<name>)',
    )
    .option('--cache-dir <dir>', 'keep a read-through cache of stored objects in this folder')
    .option('--cache-size <bytes>', 'most bytes the cache keeps (default 10 GiB)', integer)
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--port <port>', 'port to listen on (0: any free port)', integer, 7420)
    .option('--tls-cert <file>', 'PEM certificate (with --tls-key)')
    .option('--tls-key <file>', 'PEM private key (with --tls-cert)')
    .option('--tls-self-signed', 'serve HTTPS with a self-signed certificate kept under the root')
    .addOption(
      new Option('--tls-min-version <version>', 'oldest TLS version accepted')
        .choices(['1.2', '1.3'])
        .default('1.3'),
    )
    .option(
      '--tls-client-ca <file>',
      'PEM of the CAs whose client certificates are accepted: mutual TLS, every client must present one',
    )
    .option('--allow-anonymous-read', 'let requests without a token read (fetch, clone)')
    .option('--rate-limit <n>', 'requests per minute per key', integer)
    .option('--ip-rate-limit <n>', 'requests per minute per client IP', integer)
    .option('--max-chunk-size <bytes>', 'largest chunk upload accepted', integer)
    .option('--max-pack-size <bytes>', 'largest metadata pack accepted', integer)
    .addOption(
      new Option(
        '--verify-uploads <how>',
        'check packs uploaded straight to the store: table (their record table) or full (every record hashed)',
      )
        .choices(['table', 'full'])
        .default('table'),
    )
    .option(
      '--no-lfs-direct',
      'send every Git LFS byte through the server, even where the store can sign requests',
    )
    .addOption(
      new Option(
        '--log-level <level>',
        'JSON log lines at this level and above (one per request at info); default info',
      ).choices(LOG_LEVELS),
    )
    .addOption(new Option('--log <level>', 'same as --log-level').choices(LOG_LEVELS).hideHelp())
    .option(
      '--log-file <file>',
      'append the log to this file (0640; SIGHUP reopens it, for log rotation) instead of standard error',
    )
    .option('--no-ui', 'serve only the API: no web interface at / (docs/web-ui.md)')
    .option(
      '--preview-dir <dir>',
      "where the web interface keeps the previews it makes (default: the root's .mediagit-server/previews)",
    )
    .action(async (opts: ServeFlags) => {
      // A server's heap is small and busy in bursts: V8's memory reducer
      // (made for idle browser tabs) shrank it between pushes and ran its
      // compacting collections inside the next one (measured: 40-70 ms of a
      // 1 GiB push's 0.08 s of server CPU, in some pushes). Set before the
      // server allocates; the heap then stays at its working size.
      v8.setFlagsFromString('--no-memory-reducer');
      const servesTls = opts.tlsCert !== undefined || opts.tlsSelfSigned === true;
      if (!servesTls && (opts.tlsClientCa !== undefined || opts.tlsMinVersion !== '1.3')) {
        throw new MediaGitError(
          'SERVE_USAGE',
          '--tls-client-ca and --tls-min-version need HTTPS (--tls-cert/--tls-key or --tls-self-signed)',
          { kind: 'usage' },
        );
      }
      if ((opts.tlsCert === undefined) !== (opts.tlsKey === undefined)) {
        throw new MediaGitError('SERVE_USAGE', '--tls-cert and --tls-key go together', {
          kind: 'usage',
        });
      }
      if (opts.tlsSelfSigned && opts.tlsCert) {
        throw new MediaGitError('SERVE_USAGE', '--tls-self-signed excludes --tls-cert/--tls-key', {
          kind: 'usage',
        });
      }
      const cache = opts.cacheDir
        ? {
            dir: path.resolve(cli.cwd, opts.cacheDir),
            maxBytes: opts.cacheSize ?? DEFAULT_CACHE_BYTES,
          }
        : undefined;
      const root = ServerRoot.open(opts.root, {
        cwd: cli.cwd,
        settings: await storageSettings(cli.env, cache),
      });
      const level: LogLevel = opts.logLevel ?? opts.log ?? 'info';
      let logFile: LogFile | undefined;
      if (opts.logFile !== undefined && level !== 'silent') {
        const file = path.resolve(cli.cwd, opts.logFile);
        try {
          logFile = new LogFile(file);
        } catch (error) {
          const code = (error as NodeJS.ErrnoException).code ?? String(error);
          throw new MediaGitError('SERVE_USAGE', `cannot open --log-file '${file}': ${code}`, {
            kind: 'usage',
          });
        }
      }
      const destination: LogDestination = logFile ?? process.stderr;
      let certFile: string | undefined;
      // Read at start and again on SIGHUP (a renewed certificate, a new client CA).
      const loadTls = async (): Promise<ServerTls | undefined> => {
        const clientCa =
          opts.tlsClientCa !== undefined
            ? await readOptionFile('--tls-client-ca', opts.tlsClientCa)
            : undefined;
        const common = { clientCa, minVersion: opts.tlsMinVersion };
        if (opts.tlsCert && opts.tlsKey) {
          return {
            ...common,
            cert: await readOptionFile('--tls-cert', opts.tlsCert),
            key: await readOptionFile('--tls-key', opts.tlsKey),
          };
        }
        if (opts.tlsSelfSigned) {
          const material = await selfSignedMaterial(
            root.localDir !== undefined
              ? path.join(root.localDir, SERVER_STATE_DIR, 'tls')
              : path.join(root.scratchDir, 'tls'),
          );
          certFile = material.certFile;
          return { ...common, cert: material.cert, key: material.key };
        }
        return undefined;
      };
      const tls = await loadTls();
      const app = await buildServer({
        root,
        tls,
        allowAnonymousRead: opts.allowAnonymousRead === true,
        keyRateLimit: opts.rateLimit,
        ipRateLimit: opts.ipRateLimit,
        maxChunkBytes: opts.maxChunkSize,
        maxPackBytes: opts.maxPackSize,
        verifyUploads: opts.verifyUploads,
        lfsDirect: opts.lfsDirect !== false,
        ui: opts.ui !== false,
        previewCacheDir:
          opts.previewDir === undefined ? undefined : path.resolve(cli.cwd, opts.previewDir),
        log: level === 'silent' ? undefined : { level, destination },
      });
      let address: string;
      try {
        address = await app.listen({ host: opts.host, port: opts.port });
      } catch (error) {
        await app.close().catch(() => undefined);
        logFile?.close();
        throw listenError(error, opts.host, opts.port);
      }
      cli.out(`MediaGit server listening on ${address} (root ${root.label})`);
      if (certFile)
        cli.out(`Self-signed certificate: ${certFile} (clients: MEDIAGIT_CA_FILE=${certFile})`);
      // SIGHUP: after a log rotator renamed the file, start a new one at the
      // path; and serve a renewed certificate (or client CA) to every new
      // connection, while the ones open finish on the old one.
      const reopen = (): void => {
        if (logFile) {
          try {
            logFile.reopen();
            app.log.info({ file: logFile.path }, 'log file reopened');
          } catch (error) {
            app.log.error({ err: error }, 'cannot reopen the log file; still writing the old one');
          }
        }
        if (tls) {
          void loadTls().then(
            (fresh) => {
              if (!fresh) return;
              (app.server as unknown as TlsServer).setSecureContext(secureContextOptions(fresh));
              app.log.info('TLS certificate reloaded');
              cli.out('TLS certificate reloaded');
            },
            (error: unknown) => {
              const message = error instanceof Error ? error.message : String(error);
              app.log.error(
                { err: error },
                'cannot reload the TLS certificate; still serving the old one',
              );
              cli.err(
                `error: cannot reload the TLS certificate; still serving the old one: ${message}`,
              );
            },
          );
        }
      };
      if (logFile || tls) process.on('SIGHUP', reopen);
      await new Promise<void>((resolve) => {
        const stop = (): void => {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          void app.close().then(resolve, resolve);
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      });
      process.off('SIGHUP', reopen);
      logFile?.close();
    });
}

/** A file named by an option, or one clear line saying why it cannot be read. */
async function readOptionFile(option: string, file: string): Promise<Buffer> {
  try {
    return await fs.readFile(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? '';
    const why =
      code === 'ENOENT'
        ? 'no such file'
        : code === 'EISDIR'
          ? 'is a folder'
          : code || String(error);
    throw new MediaGitError('SERVE_USAGE', `cannot read ${option} file '${file}': ${why}`, {
      kind: 'usage',
    });
  }
}

/** Why the server could not listen, in one line naming the address (exit 1). */
function listenError(error: unknown, host: string, port: number): unknown {
  const code = (error as NodeJS.ErrnoException).code;
  const reasons: Record<string, string> = {
    EADDRINUSE: 'the address is in use (is another server running there? choose another --port)',
    EADDRNOTAVAIL: 'that address is not one of this machine’s',
    ENOTFOUND: 'no such host',
    EAI_AGAIN: 'the host name could not be resolved',
    EACCES: 'permission denied (ports below 1024 need privileges)',
  };
  const reason = code === undefined ? undefined : reasons[code];
  if (reason === undefined) return error;
  return new MediaGitError('SERVE_LISTEN', `cannot listen on ${host}:${port}: ${reason}`, {
    kind: 'user',
    data: { host, port, code },
  });
}
