/**
 * Real `mediagit serve` processes on loopback for end-to-end tests, with
 * the server root, tokens and metrics a test needs.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before } from 'node:test';
import { CLI_PATH, isolatedEnv, runCli, type TempRepo } from './helpers.ts';
import { startAzure, startGcs, startS3, type Emulator } from './emulators/index.ts';
import { storageSettings } from '../src/cli/storage-settings.ts';
import type { StorageBackend } from '../src/storage/backend.ts';
import { openBackend } from '../src/storage/open.ts';

/** Starts the emulator of a kind of cloud store. */
export async function startEmulator(kind: 's3' | 'az' | 'gs'): Promise<Emulator> {
  if (kind === 's3') return startS3(['mediagit']);
  if (kind === 'az') return startAzure(['mediagit']);
  return startGcs(['mediagit']);
}

export class ServerProcess {
  readonly root: string;
  readonly base: string;
  readonly child: ChildProcess;
  stderr = '';

  private constructor(root: string, base: string, child: ChildProcess) {
    this.root = root;
    this.base = base;
    this.child = child;
  }

  /** Starts a server on a free port; resolves once it listens. */
  static async start(
    root: string,
    args: readonly string[] = [],
    env: NodeJS.ProcessEnv = isolatedEnv(root),
  ): Promise<ServerProcess> {
    const child = spawn(
      process.execPath,
      [CLI_PATH, 'serve', '--root', root, '--port', '0', ...args],
      { env, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stderr = '';
    child.stderr?.on('data', (data: Buffer) => (stderr += data.toString()));
    const base = await new Promise<string>((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error(`server did not start: ${stderr}`)), 20_000);
      child.stdout?.on('data', (data: Buffer) => {
        out += data.toString();
        const match = /listening on (\S+)/.exec(out);
        if (match) {
          clearTimeout(timer);
          resolve(match[1]!);
        }
      });
      child.on('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`server exited with ${code}: ${stderr}`));
      });
    });
    const server = new ServerProcess(root, base, child);
    child.stderr?.on('data', (data: Buffer) => (server.stderr += data.toString()));
    server.stderr = stderr;
    return server;
  }

  url(repo: string): string {
    return `${this.base}/${repo}`;
  }

  /** The sum of a metric's samples (those whose labels include `label`, when given). */
  async metric(name: string, label?: string): Promise<number> {
    const text = await (await fetch(`${this.base}/metrics`)).text();
    let sum = 0;
    for (const line of text.split('\n')) {
      if (label !== undefined && !line.includes(label)) continue;
      if (line.startsWith(`${name} `) || line.startsWith(`${name}{`)) {
        sum += Number(line.slice(line.lastIndexOf(' ') + 1));
      }
    }
    return sum;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.kill('SIGTERM');
    await exited;
  }
}

/** A server root with one empty bare repository per name. */
export async function makeServerRoot(root: string, repos: readonly string[]): Promise<void> {
  await fs.mkdir(root, { recursive: true });
  for (const name of repos) {
    const result = await runCli(['init', '--bare', '-q', path.join(root, name)], {
      cwd: root,
      env: isolatedEnv(root),
    });
    if (result.code !== 0) throw new Error(`init --bare failed: ${result.stderr}`);
  }
}

/** Creates an API key with `mediagit token create` and returns it. */
export async function createToken(
  root: string,
  user: string,
  repo: string,
  scope: 'read' | 'write' | 'admin',
): Promise<string> {
  const result = await runCli(
    ['token', 'create', '--root', root, '--user', user, '--repo', repo, '--scope', scope],
    { cwd: root, env: isolatedEnv(root) },
  );
  if (result.code !== 0) throw new Error(`token create failed: ${result.stderr}`);
  return result.out.trim();
}

export interface ServerRootFixture {
  /** A temp folder holding `root` (and whatever else the tests put beside it). */
  readonly outer: string;
  /** The server root, with the bare repositories asked for. */
  readonly root: string;
  /** Removes `repo` when the fixture ends; returns it. */
  track<T extends TempRepo>(repo: T): T;
  /** Starts a server on the root, stopped when the fixture ends. */
  serve(args?: readonly string[]): Promise<ServerProcess>;
}

/**
 * A server root made before the tests of the calling describe and removed
 * after them, with every tracked repository and started server. Call it
 * inside a describe: node:test runs a file's top-level async hooks without
 * waiting for one another, so a top-level `before` could run first.
 */
export function useServerRoot(label: string, repos: readonly string[]): ServerRootFixture {
  let outer = '';
  const tracked: TempRepo[] = [];
  const servers: ServerProcess[] = [];
  before(async () => {
    outer = await fs.mkdtemp(path.join(os.tmpdir(), `mediagit-${label}-`));
    await makeServerRoot(path.join(outer, 'root'), repos);
  });
  after(async () => {
    await Promise.all(servers.map((server) => server.stop()));
    for (const repo of tracked) await repo.cleanup();
    await fs.rm(outer, { recursive: true, force: true });
  });
  return {
    get outer() {
      return outer;
    },
    get root() {
      return path.join(outer, 'root');
    },
    track(repo) {
      tracked.push(repo);
      return repo;
    },
    async serve(args = []) {
      const server = await ServerProcess.start(path.join(outer, 'root'), args);
      servers.push(server);
      return server;
    },
  };
}

export type CloudKind = 's3' | 'az' | 'gs';

export interface CloudRootFixture {
  /** A local temp folder for the tests' own files. */
  readonly outer: string;
  /** The server root: a backend URL on the emulator. */
  readonly root: string;
  readonly emulator: Emulator;
  /** The environment a MediaGit process needs to reach the store. */
  readonly env: NodeJS.ProcessEnv;
  track<T extends TempRepo>(repo: T): T;
  /** Starts a server on the root, stopped when the fixture ends. */
  serve(args?: readonly string[], env?: NodeJS.ProcessEnv): Promise<ServerProcess>;
  createToken(user: string, repo: string, scope: 'read' | 'write' | 'admin'): Promise<string>;
  /** The root's storage, read directly (for checks). */
  backend(): Promise<StorageBackend>;
}

/**
 * A server root on an object-store emulator (started for the calling
 * describe, once), with one bare repository per name made by `mediagit init
 * --bare <url>`. Call it inside a describe (see useServerRoot).
 */
export function useCloudRoot(
  kind: CloudKind,
  label: string,
  repos: readonly string[],
): CloudRootFixture {
  let outer = '';
  let emulator: Emulator | undefined;
  const tracked: TempRepo[] = [];
  const servers: ServerProcess[] = [];
  const env = (): NodeJS.ProcessEnv => ({ ...isolatedEnv(outer), ...emulator!.env });
  const root = (): string => emulator!.url(label);
  before(async () => {
    outer = await fs.mkdtemp(path.join(os.tmpdir(), `mediagit-${label}-`));
    emulator = await startEmulator(kind);
    for (const name of repos) {
      const result = await runCli(['init', '--bare', '-q', `${root()}/${name}`], {
        cwd: outer,
        env: env(),
      });
      if (result.code !== 0) throw new Error(`init --bare failed: ${result.stderr}`);
    }
  });
  after(async () => {
    await Promise.all(servers.map((server) => server.stop()));
    for (const repo of tracked) await repo.cleanup();
    await emulator?.stop();
    await fs.rm(outer, { recursive: true, force: true });
  });
  return {
    get outer() {
      return outer;
    },
    get root() {
      return root();
    },
    get emulator() {
      return emulator!;
    },
    get env() {
      return emulator!.env;
    },
    track(repo) {
      tracked.push(repo);
      return repo;
    },
    async serve(args = [], extra = {}) {
      const server = await ServerProcess.start(root(), args, { ...env(), ...extra });
      servers.push(server);
      return server;
    },
    async createToken(user, repo, scope) {
      const result = await runCli(
        ['token', 'create', '--root', root(), '--user', user, '--repo', repo, '--scope', scope],
        { cwd: outer, env: env() },
      );
      if (result.code !== 0) throw new Error(`token create failed: ${result.stderr}`);
      return result.out.trim();
    },
    async backend() {
      return openBackend(root(), await storageSettings(env()));
    },
  };
}
