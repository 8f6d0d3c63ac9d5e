/**
 * Shared helpers for tests that drive the real `mediagit` binary on temporary
 * repositories: running the CLI, making a repository, writing a working tree
 * from a description and comparing a directory against one, and reading every
 * committed file back through the library.
 *
 * The CLI runs from dist/ (bin/mediagit.js), so run `npm run build` before
 * these tests; the library helpers import the sources directly.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readFileBytes, readManifest } from '../src/odb/file-store.ts';
import type { ObjectId } from '../src/odb/object-id.ts';
import { Refs } from '../src/repo/refs.ts';
import { Repository } from '../src/repo/repository.ts';
import { flattenCommit, readCommit } from '../src/repo/tree-ops.ts';

export const PROJECT_ROOT = fileURLToPath(new URL('..', import.meta.url));
export const CLI_PATH = path.join(PROJECT_ROOT, 'bin', 'mediagit.js');

/**
 * `MEDIAGIT_TEST_SCALE=full` (`npm run test:full`): the few tests whose
 * figure an issue states at a size CI cannot afford on every run (a 1 GiB
 * migration killed twice, a 1 GiB file through the transfer agent) run at
 * that size and assert that figure. Otherwise they run smaller and assert
 * every size-independent property (docs/testing.md).
 */
export const FULL_SCALE = process.env['MEDIAGIT_TEST_SCALE'] === 'full';

export interface CliResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: Buffer;
  readonly stderr: string;
  /** stdout decoded as UTF-8. */
  readonly out: string;
}

export interface RunOptions {
  readonly cwd: string;
  readonly env: NodeJS.ProcessEnv;
  readonly input?: string | Uint8Array;
}

/** An environment that isolates the CLI from the user's config and identity. */
export function isolatedEnv(root: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    // The developer's editor is theirs: a test that wants one names it.
    if (['EDITOR', 'VISUAL', 'GIT_EDITOR'].includes(key)) continue;
    if (!key.startsWith('MEDIAGIT_') && !key.startsWith('NODE_TEST')) env[key] = value;
  }
  return {
    ...env,
    HOME: root,
    XDG_CONFIG_HOME: path.join(root, 'xdg'),
    MEDIAGIT_CONFIG_GLOBAL: path.join(root, 'global-config.toml'),
    MEDIAGIT_AUTHOR_NAME: 'Test Author',
    MEDIAGIT_AUTHOR_EMAIL: 'test@example.com',
    NO_COLOR: '1',
    CI: '1',
    // No background gc racing a test's checks (test/gc.test.ts turns it on).
    MEDIAGIT_AUTO_GC: '0',
  };
}

/** Starts the CLI (the built binary under this Node) without waiting for it. */
export function spawnCli(args: readonly string[], options: RunOptions): ChildProcess {
  return spawn(process.execPath, [CLI_PATH, ...args], {
    cwd: options.cwd,
    env: options.env,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}

/** Collects a started CLI's output and exit status. */
export function collect(child: ChildProcess, input?: string | Uint8Array): Promise<CliResult> {
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  child.stdout?.on('data', (data: Buffer) => stdout.push(data));
  child.stderr?.on('data', (data: Buffer) => stderr.push(data));
  // A killed child closes its pipes; writing into them must not crash the test.
  child.stdin?.on('error', () => undefined);
  if (input !== undefined) child.stdin?.end(input);
  else child.stdin?.end();
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const out = Buffer.concat(stdout);
      resolve({
        code,
        signal,
        stdout: out,
        stderr: Buffer.concat(stderr).toString('utf8'),
        out: out.toString('utf8'),
      });
    });
  });
}

export function runCli(args: readonly string[], options: RunOptions): Promise<CliResult> {
  return collect(spawnCli(args, options), options.input);
}

function describeRun(args: readonly string[], result: CliResult): string {
  const status = result.signal ? `signal ${result.signal}` : `exit ${result.code}`;
  return `mediagit ${args.join(' ')} -> ${status}\nstdout: ${result.out.slice(0, 2000)}\nstderr: ${result.stderr.slice(0, 2000)}`;
}

/** A temporary directory holding a working tree (`dir`) and the isolated global config. */
export class TempRepo {
  readonly root: string;
  readonly dir: string;
  readonly env: NodeJS.ProcessEnv;

  private constructor(root: string) {
    this.root = root;
    this.dir = path.join(root, 'work');
    this.env = isolatedEnv(root);
  }

  /** Makes the folders and, unless `init` is false, runs `mediagit init`. */
  static async create(
    options: { init?: boolean; chunkThreshold?: number } = {},
  ): Promise<TempRepo> {
    const root = await fs.mkdtemp(path.join(os.tmpdir(), 'mediagit-test-'));
    const repo = new TempRepo(root);
    await fs.mkdir(repo.dir);
    try {
      if (options.init !== false) {
        await repo.ok(['init', '-q']);
        if (options.chunkThreshold !== undefined) {
          await repo.ok(['config', 'core.chunkThreshold', String(options.chunkThreshold)]);
        }
      }
    } catch (error) {
      await repo.cleanup();
      throw error;
    }
    return repo;
  }

  get gitDir(): string {
    return path.join(this.dir, '.mediagit');
  }

  path(repoPath: string): string {
    return path.join(this.dir, ...repoPath.split('/'));
  }

  /** Runs the CLI in the working tree; never throws on a non-zero exit. */
  run(args: readonly string[], input?: string | Uint8Array): Promise<CliResult> {
    return runCli(args, {
      cwd: this.dir,
      env: this.env,
      ...(input === undefined ? {} : { input }),
    });
  }

  /** Runs the CLI and asserts it exited 0, showing its output when it did not. */
  async ok(args: readonly string[], input?: string | Uint8Array): Promise<CliResult> {
    const result = await this.run(args, input);
    assert.equal(result.code, 0, describeRun(args, result));
    return result;
  }

  /** Runs the CLI and asserts the exit code, showing its output when it differs. */
  async fails(
    args: readonly string[],
    code: number,
    input?: string | Uint8Array,
  ): Promise<CliResult> {
    const result = await this.run(args, input);
    assert.equal(result.code, code, describeRun(args, result));
    return result;
  }

  /** The same repository seen through extra environment variables. */
  withEnv(extra: NodeJS.ProcessEnv): TempRepo {
    const copy = Object.create(TempRepo.prototype) as TempRepo;
    Object.assign(copy, { root: this.root, dir: this.dir, env: { ...this.env, ...extra } });
    return copy;
  }

  spawn(args: readonly string[]): ChildProcess {
    return spawnCli(args, { cwd: this.dir, env: this.env });
  }

  /** `status --json`, parsed. */
  async status(): Promise<StatusJson> {
    return JSON.parse((await this.ok(['status', '--json'])).out) as StatusJson;
  }

  /** The commit HEAD points at, read through the library. */
  async head(): Promise<{ branch: string | undefined; id: ObjectId | undefined }> {
    const repo = await Repository.discover(this.dir);
    return new Refs(repo).head();
  }

  async cleanup(): Promise<void> {
    await fs.rm(this.root, { recursive: true, force: true });
  }
}

export interface StatusJson {
  branch?: string;
  head?: string;
  staged: { path: string; change: string }[];
  unstaged: { path: string; change: string }[];
  untracked: string[];
  contentReads: number;
}

// ---------------------------------------------------------------------------
// Working trees as data

export type TreeItem =
  | { readonly type: 'file'; readonly content: Uint8Array; readonly executable?: boolean }
  | { readonly type: 'symlink'; readonly target: string };

/** Repository path ("/"-separated) to what should be there. */
export type TreeSpec = ReadonlyMap<string, TreeItem>;

/** Writes every item of `tree` under `dir`, creating parent folders, with exact modes. */
export async function writeTree(dir: string, tree: TreeSpec): Promise<void> {
  for (const [repoPath, item] of tree) {
    const full = path.join(dir, ...repoPath.split('/'));
    await fs.mkdir(path.dirname(full), { recursive: true });
    await fs.rm(full, { recursive: true, force: true });
    if (item.type === 'symlink') {
      await fs.symlink(item.target, full);
    } else {
      await fs.writeFile(full, item.content);
      await fs.chmod(full, item.executable ? 0o755 : 0o644);
    }
  }
}

/**
 * Makes `dir` hold exactly `tree` (outside `.mediagit`): removes every other
 * file, symlink and folder, then writes the items.
 */
export async function replaceTree(dir: string, tree: TreeSpec): Promise<void> {
  const wanted = impliedDirectories(tree);
  const prune = async (rel: string): Promise<void> => {
    const abs = rel === '' ? dir : path.join(dir, ...rel.split('/'));
    for (const entry of await fs.readdir(abs, { withFileTypes: true })) {
      const child = rel === '' ? entry.name : `${rel}/${entry.name}`;
      if (child === '.mediagit') continue;
      if (entry.isDirectory() && wanted.has(child)) await prune(child);
      else if (!entry.isDirectory() || !wanted.has(child))
        await fs.rm(path.join(abs, entry.name), { recursive: true, force: true });
    }
  };
  await prune('');
  await writeTree(dir, tree);
}

function impliedDirectories(tree: TreeSpec): Set<string> {
  const dirs = new Set<string>();
  for (const repoPath of tree.keys()) {
    const parts = repoPath.split('/');
    for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join('/'));
  }
  return dirs;
}

export function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** A comparable one-line description of an item: kind, mode and content digest. */
export function describeItem(item: TreeItem): string {
  if (item.type === 'symlink') return `symlink -> ${JSON.stringify(item.target)}`;
  const mode = item.executable ? '755' : '644';
  return `file ${mode} ${item.content.length} bytes sha256:${sha256(item.content)}`;
}

/** Every file and symlink under `dir` (skipping `.mediagit`), plus every folder. */
export async function readWorkTree(
  dir: string,
): Promise<{ items: Map<string, TreeItem>; directories: Set<string> }> {
  const items = new Map<string, TreeItem>();
  const directories = new Set<string>();
  const visit = async (rel: string): Promise<void> => {
    const abs = rel === '' ? dir : path.join(dir, ...rel.split('/'));
    for (const entry of await fs.readdir(abs, { withFileTypes: true })) {
      const child = rel === '' ? entry.name : `${rel}/${entry.name}`;
      const full = path.join(abs, entry.name);
      if (child === '.mediagit') continue;
      if (entry.isDirectory()) {
        directories.add(child);
        await visit(child);
      } else if (entry.isSymbolicLink()) {
        items.set(child, { type: 'symlink', target: await fs.readlink(full) });
      } else if (entry.isFile()) {
        const stats = await fs.stat(full);
        items.set(child, {
          type: 'file',
          content: await fs.readFile(full),
          executable: (stats.mode & 0o100) !== 0,
        });
      } else {
        items.set(child, { type: 'file', content: Buffer.from(`<special file>`) });
      }
    }
  };
  await visit('');
  return { items, directories };
}

function describeTree(tree: ReadonlyMap<string, TreeItem>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of [...tree.keys()].sort()) out[key] = describeItem(tree.get(key)!);
  return out;
}

/**
 * Asserts that `dir` holds exactly `expected`: same paths, same bytes, same
 * executable bits, same symlink targets, and no folder that holds nothing
 * expected (checkout removes emptied folders, as Git does).
 */
export async function assertWorkTreeEquals(
  dir: string,
  expected: TreeSpec,
  label: string,
): Promise<void> {
  const actual = await readWorkTree(dir);
  assert.deepEqual(
    describeTree(actual.items),
    describeTree(expected),
    `${label}: working tree differs`,
  );
  assert.deepEqual(
    [...actual.directories].sort(),
    [...impliedDirectories(expected)].sort(),
    `${label}: working tree has different folders (empty ones left behind?)`,
  );
}

// ---------------------------------------------------------------------------
// Reading committed files through the library

export interface CommittedFile {
  readonly mode: string;
  readonly kind: 'blob' | 'manifest';
  readonly size: number;
  /** SHA-256 of the bytes read back (each object verified on the way). */
  readonly sha256: string;
}

/** Commit IDs reachable from HEAD, following every parent. */
export async function reachableCommits(workTree: string): Promise<ObjectId[]> {
  const repo = await Repository.discover(workTree);
  const head = await new Refs(repo).head();
  const seen: ObjectId[] = [];
  const queue = head.id ? [head.id] : [];
  while (queue.length > 0) {
    const id = queue.shift()!;
    if (seen.includes(id)) continue;
    seen.push(id);
    queue.push(...(await readCommit(repo.objects, id)).parents);
  }
  return seen;
}

/**
 * Reads every file of a commit back in full and checks each against what its
 * tree says (size, and for a manifest the whole-file SHA-256).
 */
export async function readCommitFiles(
  workTree: string,
  commitId: ObjectId,
): Promise<Map<string, CommittedFile>> {
  const repo = await Repository.discover(workTree);
  const out = new Map<string, CommittedFile>();
  for (const [repoPath, file] of await flattenCommit(repo.objects, commitId)) {
    const bytes = await readFileBytes(repo.objects, file.kind, file.id);
    const digest = sha256(bytes);
    assert.equal(bytes.length, file.size, `${repoPath} in ${commitId}: size differs from tree`);
    if (file.kind === 'blob') assert.equal(digest, file.id, `${repoPath}: blob hash`);
    else {
      const manifest = await readManifest(repo.objects, file.id);
      assert.equal(digest, manifest.sha256, `${repoPath}: whole-file hash differs from manifest`);
    }
    out.set(repoPath, { mode: file.mode, kind: file.kind, size: bytes.length, sha256: digest });
  }
  return out;
}

/** What a commit of `tree` must contain, in the shape `readCommitFiles` returns. */
export function expectedCommitFiles(tree: TreeSpec): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of [...tree.keys()].sort()) {
    const item = tree.get(key)!;
    out[key] =
      item.type === 'symlink'
        ? `120000 ${sha256(Buffer.from(item.target))}`
        : `${item.executable ? '100755' : '100644'} ${sha256(item.content)}`;
  }
  return out;
}

export function describeCommitFiles(
  files: ReadonlyMap<string, CommittedFile>,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of [...files.keys()].sort()) {
    const file = files.get(key)!;
    out[key] = `${file.mode} ${file.sha256}`;
  }
  return out;
}

/**
 * Removes `index.lock`, `HEAD.lock` and any `refs/**.lock` a killed process
 * left behind, as a user following the error message would. Returns what it removed.
 */
export async function removeStaleLocks(gitDir: string): Promise<string[]> {
  const removed: string[] = [];
  const candidates = [path.join(gitDir, 'index.lock'), path.join(gitDir, 'HEAD.lock')];
  const walk = async (dir: string): Promise<void> => {
    let entries;
    try {
      entries = await fs.readdir(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const entry of entries) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) await walk(full);
      else if (entry.name.endsWith('.lock')) candidates.push(full);
    }
  };
  await walk(path.join(gitDir, 'refs'));
  for (const file of candidates) {
    try {
      await fs.rm(file);
      removed.push(path.relative(gitDir, file));
    } catch {
      // Not present: nothing to remove.
    }
  }
  return removed;
}

/** Whether the built CLI implements `verb` (placeholders say "not implemented yet"). */
export async function verbImplemented(verb: string): Promise<boolean> {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'mediagit-probe-'));
  try {
    const result = await runCli([verb, '--help'], { cwd: root, env: isolatedEnv(root) });
    return result.code === 0 && !/not implemented/.test(result.out + result.stderr);
  } finally {
    await fs.rm(root, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------
// Deterministic content

export { pseudoRandomBytes, writePseudoRandomFile } from './bytes.ts';

/**
 * The entries of `.mediagit/objects` that hold objects: fan-out folders and
 * `pack` (not `info`, which holds caches such as the delta sketches), sorted.
 */
export async function objectFolders(gitDir: string): Promise<string[]> {
  return (await fs.readdir(path.join(gitDir, 'objects'))).filter((e) => e !== 'info').sort();
}

/** Loose object files and the names in `objects/pack/`. */
export async function objectsLayout(gitDir: string): Promise<{ loose: number; pack: string[] }> {
  let loose = 0;
  let pack: string[] = [];
  for (const entry of await objectFolders(gitDir)) {
    const dir = path.join(gitDir, 'objects', entry);
    if (entry === 'pack') pack = (await fs.readdir(dir)).sort();
    else loose += (await fs.readdir(dir)).length;
  }
  return { loose, pack };
}

const WORDS = 'the quick brown fox jumps over lazy dog frame layer audio track render clip'.split(
  ' ',
);

/** Compressible UTF-8 text of exactly `length` bytes determined by `seed`. */
export function textBytes(length: number, seed: number): Buffer {
  const parts: string[] = [];
  let size = 0;
  let x = seed * 2654435761 + 1;
  while (size < length) {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    const word = `${WORDS[x % WORDS.length]}${x % 7 === 0 ? '\n' : ' '}`;
    parts.push(word);
    size += word.length;
  }
  return Buffer.from(parts.join(''), 'utf8').subarray(0, length);
}

/** Seeded PRNG (mulberry32) for choosing delays and edits reproducibly. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
