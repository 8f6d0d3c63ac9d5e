/**
 * A MediaGit repository and a twin Git repository driven with the same
 * commands, for tests that compare MediaGit's behaviour with Git's.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { hash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after } from 'node:test';
import { StagingIndex } from '../src/repo/index-file.ts';
import { TempRepo, writeTree, type CliResult, type TreeSpec } from './helpers.ts';

export interface GitResult {
  readonly code: number | null;
  readonly out: string;
  readonly stderr: string;
}

export class GitTwin {
  readonly dir: string;
  readonly env: NodeJS.ProcessEnv;

  constructor(root: string) {
    this.dir = path.join(root, 'git-twin');
    this.env = {
      PATH: process.env['PATH'],
      HOME: root,
      GIT_CONFIG_NOSYSTEM: '1',
      GIT_CONFIG_GLOBAL: path.join(root, 'gitconfig'),
      GIT_AUTHOR_NAME: 'Test Author',
      GIT_AUTHOR_EMAIL: 'test@example.com',
      GIT_COMMITTER_NAME: 'Test Author',
      GIT_COMMITTER_EMAIL: 'test@example.com',
      LC_ALL: 'C',
    };
  }

  static async create(root: string): Promise<GitTwin> {
    const twin = new GitTwin(root);
    await fs.mkdir(twin.dir);
    twin.run(['init', '-q', '-b', 'main']);
    twin.run(['config', 'core.quotePath', 'false']);
    return twin;
  }

  run(args: readonly string[]): GitResult {
    const result = spawnSync('git', args, { cwd: this.dir, env: this.env, encoding: 'utf8' });
    return { code: result.status, out: result.stdout, stderr: result.stderr };
  }

  path(repoPath: string): string {
    return path.join(this.dir, ...repoPath.split('/'));
  }

  tracked(): string[] {
    return this.run(['ls-files', '-z'])
      .out.split('\0')
      .filter((p) => p !== '')
      .sort();
  }
}

/** A MediaGit repository and a Git twin that receive the same commands and files. */
export class Pair {
  readonly m: TempRepo;
  readonly g: GitTwin;

  private constructor(m: TempRepo, g: GitTwin) {
    this.m = m;
    this.g = g;
  }

  /** `newRepo` makes the MediaGit side (and arranges its cleanup). */
  static async create(newRepo: () => Promise<TempRepo>): Promise<Pair> {
    const m = await newRepo();
    return new Pair(m, await GitTwin.create(m.root));
  }

  /** Runs `args` in both; asserts the exit codes agree (and equal `code` when given). */
  async both(args: readonly string[], code?: number): Promise<{ m: CliResult; g: GitResult }> {
    const m = await this.m.run(args);
    const g = this.g.run(args);
    const context = `${args.join(' ')}\nmediagit (${m.code}): ${m.out}${m.stderr}\ngit (${g.code}): ${g.out}${g.stderr}`;
    assert.equal(m.code, g.code, `exit codes differ: ${context}`);
    if (code !== undefined) assert.equal(m.code, code, context);
    return { m, g };
  }

  async write(tree: TreeSpec): Promise<void> {
    await writeTree(this.m.dir, tree);
    await writeTree(this.g.dir, tree);
  }

  /** Makes both working trees hold exactly `tree` (their .mediagit / .git folders stay). */
  async replace(tree: TreeSpec): Promise<void> {
    for (const dir of [this.m.dir, this.g.dir]) {
      for (const name of await fs.readdir(dir)) {
        if (name !== '.git' && name !== '.mediagit') {
          await fs.rm(path.join(dir, name), { recursive: true, force: true });
        }
      }
      await writeTree(dir, tree);
    }
  }

  async writeFile(repoPath: string, content: string): Promise<void> {
    for (const p of [this.m.path(repoPath), this.g.path(repoPath)]) {
      await fs.mkdir(path.dirname(p), { recursive: true });
      await fs.writeFile(p, content);
    }
  }

  async remove(repoPath: string): Promise<void> {
    await fs.rm(this.m.path(repoPath), { recursive: true, force: true });
    await fs.rm(this.g.path(repoPath), { recursive: true, force: true });
  }

  /** Asserts both working trees hold the same files, bytes, modes and folders. */
  async assertSameWorkTrees(label: string): Promise<void> {
    assert.deepEqual(await snapshot(this.m.dir), await snapshot(this.g.dir), label);
  }

  /** Asserts both indexes track the same paths. */
  async assertSameTracked(label: string): Promise<void> {
    assert.deepEqual(await trackedPaths(this.m), this.g.tracked(), label);
  }
}

/** Every file, symlink and folder under `dir` (skipping .git and .mediagit), described. */
export async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const visit = async (rel: string): Promise<void> => {
    const abs = rel === '' ? dir : path.join(dir, ...rel.split('/'));
    for (const entry of await fs.readdir(abs, { withFileTypes: true })) {
      const child = rel === '' ? entry.name : `${rel}/${entry.name}`;
      const full = path.join(abs, entry.name);
      if (child === '.git' || child === '.mediagit') continue;
      if (entry.isSymbolicLink()) out[child] = `symlink -> ${await fs.readlink(full)}`;
      else if (entry.isDirectory()) {
        out[child] = 'folder';
        await visit(child);
      } else {
        const stats = await fs.lstat(full);
        const data = await fs.readFile(full);
        const mode = stats.mode & 0o100 ? '755' : '644';
        out[child] = `file ${mode} ${data.length} ${hash('sha256', data, 'hex')}`;
      }
    }
  };
  await visit('');
  return out;
}

export async function trackedPaths(repo: TempRepo): Promise<string[]> {
  return (await StagingIndex.load(repo.gitDir)).sortedPaths().sort();
}

/**
 * A maker of MediaGit repositories for `Pair.create` that removes them when
 * the calling test file ends (call once at the top of a test file).
 */
export function repoMaker(): () => Promise<TempRepo> {
  const made: TempRepo[] = [];
  after(async () => {
    for (const repo of made) await repo.cleanup();
  });
  return async () => {
    const repo = await TempRepo.create();
    made.push(repo);
    return repo;
  };
}

/** `add -A` and `commit -m` in both repositories. */
export async function commitAll(pair: Pair, message: string): Promise<void> {
  await pair.both(['add', '-A'], 0);
  await pair.both(['commit', '-q', '-m', message], 0);
}
