/**
 * A server root: where `mediagit serve` keeps every repository it serves and
 * its own state, on any storage backend (ARCHITECTURE.md §5). A root is a
 * local folder (a path or `file://`) or a backend URL (`s3://bucket/prefix`,
 * `az://account/container/prefix`, `gs://bucket/prefix`, `memory://name`):
 *
 *   <name>/...              one bare repository per name (backend-repo.ts)
 *   .mediagit-server/       the server's state: tokens.json and jwt.key
 *                           (token-store.ts); on a local folder also
 *                           audit.log, tmp/ and tls/; on a backend URL,
 *                           audit/<day>/<time>-<random>.json (one object per
 *                           event)
 *
 * Everything that matters lives in the backend, so several server processes
 * on different hosts can share one root: refs, locks, tokens and the signing
 * key change only by conditional writes. What a process keeps locally is a
 * cache or scratch space (`scratchDir`: Git LFS uploads being checked).
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { hasErrnoCode, MediaGitError } from '../errors.ts';
import type { StorageBackend } from '../storage/backend.ts';
import { FsBackend } from '../storage/fs-backend.ts';
import { isBackendUrl, openBackend, type BackendSettings } from '../storage/open.ts';
import { Repository } from '../repo/repository.ts';
import { AuditLog, type AuditSink } from '../security/audit.ts';
import { BackendAuditLog } from './backend-audit.ts';
import { BackendRepo } from './backend-repo.ts';

export const SERVER_STATE_DIR = '.mediagit-server';

export interface ServerRootOptions {
  /** Resolves a relative root path. */
  readonly cwd?: string | undefined;
  readonly settings?: BackendSettings | undefined;
  /** Local scratch space for a root on a backend URL (default: the OS temp folder). */
  readonly scratchDir?: string | undefined;
}

export class ServerRoot {
  /** A local folder's absolute path, or the backend URL. */
  readonly location: string;
  /** The folder, when the root is on local disk. */
  readonly localDir: string | undefined;
  readonly backend: StorageBackend;
  /** `.mediagit-server/` (0700 folder, 0600 files on local disk). */
  readonly state: StorageBackend;
  /** Local scratch space: uploads being checked before they are stored. */
  readonly scratchDir: string;

  private constructor(
    location: string,
    localDir: string | undefined,
    backend: StorageBackend,
    state: StorageBackend,
    scratchDir: string,
  ) {
    this.location = location;
    this.localDir = localDir;
    this.backend = backend;
    this.state = state;
    this.scratchDir = scratchDir;
  }

  static open(location: string, options: ServerRootOptions = {}): ServerRoot {
    const isLocal = !isBackendUrl(location) || location.startsWith('file://');
    if (isLocal) {
      const dir = location.startsWith('file://')
        ? fileURLToPath(location)
        : path.resolve(options.cwd ?? process.cwd(), location);
      const backend = options.settings?.cache
        ? openBackend(dir, options.settings)
        : new FsBackend(dir);
      const state = new FsBackend(path.join(dir, SERVER_STATE_DIR), {
        fileMode: 0o600,
        dirMode: 0o700,
      });
      return new ServerRoot(dir, dir, backend, state, path.join(dir, SERVER_STATE_DIR, 'tmp'));
    }
    const backend = openBackend(location, options.settings);
    const scratch =
      options.scratchDir ??
      path.join(
        os.tmpdir(),
        `mediagit-server-${createHash('sha256').update(backend.url).digest('hex').slice(0, 12)}`,
      );
    return new ServerRoot(
      backend.url,
      undefined,
      backend,
      backend.child(SERVER_STATE_DIR),
      scratch,
    );
  }

  /** A short name for messages: the folder or the URL. */
  get label(): string {
    return this.location;
  }

  /**
   * Fails with one clear line when the root cannot be used: a missing
   * folder, a missing bucket, wrong credentials.
   */
  async check(): Promise<void> {
    if (this.localDir !== undefined) {
      let stat;
      try {
        stat = await fs.stat(this.localDir);
      } catch (error) {
        if (hasErrnoCode(error, 'ENOENT') || hasErrnoCode(error, 'ENOTDIR')) {
          throw new MediaGitError(
            'SERVER_ROOT_MISSING',
            `server root ${this.localDir} does not exist`,
            {
              kind: 'user',
              data: { root: this.localDir },
            },
          );
        }
        throw error;
      }
      if (!stat.isDirectory()) {
        throw new MediaGitError(
          'SERVER_ROOT_NOT_DIRECTORY',
          `server root ${this.localDir} is not a directory`,
          {
            kind: 'user',
            data: { root: this.localDir },
          },
        );
      }
      return;
    }
    // One cheap request that fails on a missing bucket or bad credentials
    // (a listing: S3 answers a HEAD in a missing bucket with a bare 404).
    for await (const key of this.state.list('')) {
      void key;
      break;
    }
  }

  /** The storage of the repository `name` (a child of the root). */
  repo(name: string): StorageBackend {
    return this.backend.child(name);
  }

  /**
   * Creates the bare repository `name` (or finds it there: `created` false,
   * nothing changed). On local disk this is `mediagit init --bare`.
   */
  async initRepo(name: string, initialBranch?: string): Promise<{ created: boolean }> {
    if (this.localDir !== undefined) {
      const { reinitialized } = await Repository.init(path.join(this.localDir, name), {
        bare: true,
        initialBranch,
      });
      return { created: !reinitialized };
    }
    return BackendRepo.initialize(this.repo(name), initialBranch ?? 'main');
  }

  /** The audit log: a local file for a folder, one object per event on a backend. */
  audit(): AuditSink {
    if (this.localDir !== undefined)
      return new AuditLog(path.join(this.localDir, SERVER_STATE_DIR, 'audit.log'));
    return new BackendAuditLog(this.state.child('audit'));
  }
}
