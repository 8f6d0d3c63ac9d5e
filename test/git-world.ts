/**
 * A sandbox for Git interop tests: a temp HOME with its own global Git
 * config, a `mediagit` command on PATH (a shim running this build, as an
 * npm-installed `mediagit` would), and helpers that run the real `git`,
 * `git lfs` and `mediagit` there.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CLI_PATH, isolatedEnv } from './helpers.ts';

export interface Run {
  readonly code: number | null;
  readonly stdout: Buffer;
  readonly out: string;
  readonly stderr: string;
}

export class GitWorld {
  readonly root: string;
  readonly env: NodeJS.ProcessEnv;

  private constructor(root: string, env: NodeJS.ProcessEnv) {
    this.root = root;
    this.env = env;
  }

  static async create(): Promise<GitWorld> {
    const root = await fs.mkdtemp(path.join(os.tmpdir(), 'mediagit-git-'));
    const bin = path.join(root, 'bin');
    await fs.mkdir(bin);
    await fs.writeFile(
      path.join(bin, 'mediagit'),
      `#!/bin/sh\nexec "${process.execPath}" "${CLI_PATH}" "$@"\n`,
      { mode: 0o755 },
    );
    const env: NodeJS.ProcessEnv = {
      ...isolatedEnv(root),
      PATH: `${bin}:${process.env['PATH'] ?? '/usr/bin:/bin'}`,
      GIT_CONFIG_NOSYSTEM: '1',
      GIT_AUTHOR_NAME: 'Test Author',
      GIT_AUTHOR_EMAIL: 'test@example.com',
      GIT_COMMITTER_NAME: 'Test Author',
      GIT_COMMITTER_EMAIL: 'test@example.com',
      GIT_TERMINAL_PROMPT: '0',
      LC_ALL: 'C',
    };
    const world = new GitWorld(root, env);
    await world.ok('git', ['config', '--global', 'init.defaultBranch', 'main'], root);
    return world;
  }

  path(...parts: string[]): string {
    return path.join(this.root, ...parts);
  }

  run(
    command: string,
    args: readonly string[],
    cwd: string,
    options: { input?: string | Uint8Array; env?: NodeJS.ProcessEnv } = {},
  ): Promise<Run> {
    return new Promise((resolve, reject) => {
      const child = spawn(command, args, {
        cwd,
        env: { ...this.env, ...options.env },
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout.on('data', (d: Buffer) => out.push(d));
      child.stderr.on('data', (d: Buffer) => err.push(d));
      child.stdin.on('error', () => undefined);
      child.stdin.end(options.input);
      child.on('error', reject);
      child.on('close', (code) => {
        const stdout = Buffer.concat(out);
        resolve({
          code,
          stdout,
          out: stdout.toString('utf8'),
          stderr: Buffer.concat(err).toString('utf8'),
        });
      });
    });
  }

  async ok(
    command: string,
    args: readonly string[],
    cwd: string,
    options: { input?: string | Uint8Array; env?: NodeJS.ProcessEnv } = {},
  ): Promise<Run> {
    const result = await this.run(command, args, cwd, options);
    assert.equal(
      result.code,
      0,
      `${command} ${args.join(' ')} -> exit ${result.code}\n${result.out.slice(0, 2000)}\n${result.stderr.slice(0, 4000)}`,
    );
    return result;
  }

  git(
    args: readonly string[],
    cwd: string,
    options: { input?: string | Uint8Array; env?: NodeJS.ProcessEnv } = {},
  ) {
    return this.ok('git', args, cwd, options);
  }

  /**
   * `git clone` of `origin` into `dest` with the MediaGit filter given on
   * the command line only: nothing in the clone's config names it or the
   * server yet, as for a first clone before `mediagit install` runs in it.
   */
  cloneWithFilter(origin: string, dest: string, options: { env?: NodeJS.ProcessEnv } = {}) {
    return this.git(
      [
        '-c',
        'filter.mediagit.process=mediagit filter-process',
        '-c',
        'filter.mediagit.required=true',
        'clone',
        '-q',
        origin,
        dest,
      ],
      this.root,
      options,
    );
  }

  mediagit(
    args: readonly string[],
    cwd: string,
    options: { input?: string | Uint8Array; env?: NodeJS.ProcessEnv } = {},
  ) {
    return this.ok('mediagit', args, cwd, options);
  }

  async cleanup(): Promise<void> {
    await fs.rm(this.root, { recursive: true, force: true });
  }
}
