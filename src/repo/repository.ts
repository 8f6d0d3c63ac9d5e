/**
 * Opening and creating repositories.
 *
 * A repository is a `.mediagit/` folder inside a working tree, or a bare
 * folder holding the same layout with no working tree (docs/format.md).
 * Nothing here reads the environment: callers pass the global config path and
 * author identity they resolved.
 */
import fs from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import {
  getConfigValue,
  readConfigFile,
  writeConfigFile,
  type ConfigTable,
  type ConfigValue,
} from '../config/config.ts';
import { MediaGitError, hasErrnoCode } from '../errors.ts';
import { ObjectStore } from '../odb/object-store.ts';
import { DEFAULT_CHUNK_THRESHOLD } from '../odb/manifest.ts';
import { assertBranchName } from './refs.ts';
import { registerTreeIds, registerTreeReader } from './index-file.ts';
import { readTree } from './tree-ops.ts';
import { openCipher, writeKeyFile, type SecretSource } from './keys.ts';
import {
  createKeyFile,
  type KdfParams,
  type KeyFile,
  type SlotSecret,
} from '../security/encryption.ts';
import type { WorkFile } from './worktree.ts';

export const FORMAT_VERSION = 1;
export const REPO_DIR = '.mediagit';

/** What the caller (CLI or server) resolved from its environment. */
export interface RepoContext {
  readonly globalConfigPath?: string | undefined;
  /** Identity from the environment; wins over config, as GIT_AUTHOR_* does. */
  readonly authorName?: string | undefined;
  readonly authorEmail?: string | undefined;
  /** Clock for commit and reflog times (tests pin it). */
  readonly now?: (() => Date) | undefined;
  /**
   * The working tree's files as a live monitor knows them (fsmonitor daemon);
   * `status` walks the tree itself when absent.
   */
  readonly scanWorkTree?: (() => WorkFile[]) | undefined;
  /** A long-running process keeps the decoded index while its file is unchanged. */
  readonly shareIndex?: boolean | undefined;
  /** Gives the passphrase or key file that opens an encrypted repository (keys.ts). */
  readonly secrets?: SecretSource | undefined;
  /** Opens an encrypted repository without unlocking it: its objects cannot be read (`key` verbs). */
  readonly locked?: boolean | undefined;
  /** Opened to finish an interrupted `rekey --full` (any other opening is refused then). */
  readonly finishingRekey?: boolean | undefined;
}

/** Written when a `rekey --full` starts replacing the store; removed when it is done (rekey.ts). */
export const REKEY_PLAN = 'rekey/plan.json';

export class Repository {
  /** The folder holding objects, refs, HEAD, index and config. */
  readonly gitDir: string;
  /** The working tree root, absent for a bare repository. */
  readonly workTree: string | undefined;
  readonly objects: ObjectStore;
  readonly context: RepoContext;
  readonly localConfig: ConfigTable;
  readonly globalConfig: ConfigTable;

  private constructor(
    gitDir: string,
    workTree: string | undefined,
    context: RepoContext,
    localConfig: ConfigTable,
    globalConfig: ConfigTable,
  ) {
    this.gitDir = gitDir;
    this.workTree = workTree;
    this.context = context;
    this.localConfig = localConfig;
    this.globalConfig = globalConfig;
    this.objects = new ObjectStore(path.join(gitDir, 'objects'), path.join(gitDir, 'tmp'));
  }

  get bare(): boolean {
    return this.workTree === undefined;
  }

  /** Whether every object is encrypted (docs/encryption.md). */
  get encrypted(): boolean {
    return getConfigValue(this.localConfig, 'core.encrypted') === true;
  }

  get configPath(): string {
    return path.join(this.gitDir, 'config');
  }

  /** The working tree, or a usage error for verbs that need one. */
  requireWorkTree(verb: string): string {
    if (this.workTree === undefined) {
      throw new MediaGitError('BARE_REPO', `${verb} cannot be used in a bare repository`, {
        kind: 'usage',
      });
    }
    return this.workTree;
  }

  config(key: string): ConfigValue | undefined {
    return getConfigValue(this.localConfig, key) ?? getConfigValue(this.globalConfig, key);
  }

  get chunkThreshold(): number {
    const value = this.config('core.chunkThreshold');
    return typeof value === 'number' && value > 0 ? value : DEFAULT_CHUNK_THRESHOLD;
  }

  now(): Date {
    return this.context.now?.() ?? new Date();
  }

  /** Finds the repository containing `start` (walking up), as Git does. */
  static async discover(start: string, context: RepoContext = {}): Promise<Repository> {
    let dir = path.resolve(start);
    while (true) {
      const dotDir = path.join(dir, REPO_DIR);
      if (existsSync(path.join(dotDir, 'HEAD'))) return Repository.#load(dotDir, dir, context);
      if (existsSync(path.join(dir, 'HEAD')) && existsSync(path.join(dir, 'objects'))) {
        const config = await readConfigFile(path.join(dir, 'config'));
        if (getConfigValue(config, 'core.bare') === true)
          return Repository.#load(dir, undefined, context);
      }
      const parent = path.dirname(dir);
      if (parent === dir) {
        throw new MediaGitError(
          'NOT_A_REPOSITORY',
          'not a mediagit repository (or any of the parent directories): .mediagit',
          { kind: 'usage', data: { start } },
        );
      }
      dir = parent;
    }
  }

  static async #load(
    gitDir: string,
    workTree: string | undefined,
    context: RepoContext,
  ): Promise<Repository> {
    if (context.finishingRekey !== true && existsSync(path.join(gitDir, REKEY_PLAN))) {
      // Objects, key file and refs may disagree until it is finished (rekey.ts).
      throw new MediaGitError(
        'REKEY_INTERRUPTED',
        'a `mediagit rekey --full` was interrupted after it began to replace the store: run `mediagit rekey --full` again to finish it',
        { kind: 'user', data: { exitCode: 128 } },
      );
    }
    const localConfig = await readConfigFile(path.join(gitDir, 'config'));
    const version = getConfigValue(localConfig, 'core.formatVersion');
    if (version !== FORMAT_VERSION) {
      throw new MediaGitError(
        'FORMAT_VERSION',
        `repository format version ${String(version)} is not supported (this MediaGit reads version ${FORMAT_VERSION})`,
        { kind: 'config', data: { version } },
      );
    }
    const globalConfig = context.globalConfigPath
      ? await readConfigFile(context.globalConfigPath)
      : {};
    const repo = new Repository(gitDir, workTree, context, localConfig, globalConfig);
    repo.objects.encrypted = repo.encrypted;
    if (repo.encrypted && context.locked !== true) {
      const cipher = await openCipher(gitDir, context.secrets);
      repo.objects.cipher = cipher;
      registerTreeIds(gitDir, (data) => cipher.idOf('tree', data));
    }
    repo.objects.shallow = await readShallowFile(path.join(gitDir, 'shallow'));
    // The index's sparse directories are read back from this store's trees
    // (a bare repository has no index).
    if (workTree !== undefined) registerTreeReader(gitDir, (id) => readTree(repo.objects, id));
    return repo;
  }

  /** Creates (or reinitializes) a repository. Returns it and whether it existed. */
  static async init(
    dir: string,
    options: {
      bare?: boolean;
      initialBranch?: string | undefined;
      /**
       * Encrypt it, with a first key slot for this secret (and these
       * Argon2id parameters); or, with `keyFile`, under that key file (a
       * clone of an encrypted repository), which `secret` opens.
       */
      encrypt?:
        | { secret: SlotSecret; kdf?: KdfParams | undefined; keyFile?: KeyFile | undefined }
        | undefined;
    },
    context: RepoContext = {},
  ): Promise<{ repo: Repository; reinitialized: boolean }> {
    const root = path.resolve(dir);
    const gitDir = options.bare ? root : path.join(root, REPO_DIR);
    const reinitialized = existsSync(path.join(gitDir, 'HEAD'));
    let branch: string | undefined;
    if (!reinitialized) {
      const globalConfig = context.globalConfigPath
        ? await readConfigFile(context.globalConfigPath)
        : {};
      const configured = getConfigValue(globalConfig, 'init.defaultBranch');
      branch = options.initialBranch ?? (typeof configured === 'string' ? configured : 'main');
      // A bad name is refused before anything is created (HEAD would name it).
      assertBranchName(branch);
    } else if (options.encrypt) {
      const config = await readConfigFile(path.join(gitDir, 'config'));
      if (getConfigValue(config, 'core.encrypted') !== true) {
        throw new MediaGitError(
          'NOT_IMPLEMENTED',
          `${gitDir} exists unencrypted: encrypting an existing repository is not implemented; nothing was changed`,
          { kind: 'user', data: { exitCode: 128 } },
        );
      }
    }
    await createFolders(gitDir);
    for (const sub of ['objects', 'refs/heads', 'refs/tags', 'logs/refs/heads', 'tmp']) {
      await fs.mkdir(path.join(gitDir, sub), { recursive: true });
    }
    if (branch !== undefined) {
      const encrypt = options.encrypt;
      if (encrypt) {
        // The key file before the config that says the repository is encrypted.
        const keyFile =
          encrypt.keyFile ?? (await createKeyFile(encrypt.secret, encrypt.kdf)).keyFile;
        await writeKeyFile(gitDir, keyFile);
      }
      await writeConfigFile(path.join(gitDir, 'config'), {
        core: {
          formatVersion: FORMAT_VERSION,
          bare: options.bare === true,
          ...(encrypt ? { encrypted: true } : {}),
        },
      });
      await fs.writeFile(path.join(gitDir, 'HEAD'), `ref: refs/heads/${branch}\n`);
    }
    // A new encrypted repository opens with the secret just given, not asked again.
    const secret = options.encrypt?.secret;
    const opening =
      secret && !reinitialized ? { ...context, secrets: async () => secret } : context;
    const repo = await Repository.#load(gitDir, options.bare ? undefined : root, opening);
    return { repo, reinitialized };
  }
}

/**
 * Creates `dir` and its missing parents one level at a time. Node's recursive
 * mkdir never returns where a filesystem answers ENOENT for a folder it
 * cannot hold (`init /proc/x` spun at full CPU): here that is one clear error.
 */
async function createFolders(dir: string): Promise<void> {
  const missing: string[] = [];
  for (let current = dir; !existsSync(current);) {
    missing.unshift(current);
    const parent = path.dirname(current);
    if (parent === current) break;
    current = parent;
  }
  for (const folder of missing) {
    try {
      await fs.mkdir(folder);
    } catch (error) {
      if (hasErrnoCode(error, 'EEXIST')) continue;
      const code = (error as NodeJS.ErrnoException).code ?? String(error);
      throw new MediaGitError('INIT_MKDIR', `cannot mkdir ${folder}: ${code}`, {
        kind: 'usage',
        data: { path: folder, code },
      });
    }
  }
}

/** The commits listed in a shallow clone's `shallow` file (none when it is absent). */
async function readShallowFile(file: string): Promise<Set<string>> {
  try {
    const text = await fs.readFile(file, 'utf8');
    return new Set(text.split('\n').filter((line) => line.length > 0));
  } catch (error) {
    if (hasErrnoCode(error, 'ENOENT')) return new Set();
    throw error;
  }
}
