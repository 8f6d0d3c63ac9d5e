/**
 * `mediagit import` (issue 21, docs/migrate-from-git-lfs.md) of a real Git +
 * Git LFS repository made here with git and git-lfs: branches, merges,
 * annotated and lightweight tags, LFS binaries with small edits, text,
 * an executable and a symlink. Every commit's tree must equal Git's with LFS
 * content smudged; authors, dates and messages must be Git's; a killed
 * import resumed must end with the same IDs; a rerun imports only new commits.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { decodeTree } from '../src/odb/tree.ts';
import { readFileBytes } from '../src/odb/file-read.ts';
import { decodeCommit } from '../src/odb/commit.ts';
import { ObjectStore } from '../src/odb/object-store.ts';
import { CLI_PATH, pseudoRandomBytes, runCli, TempRepo } from './helpers.ts';
import { createToken, makeServerRoot, ServerProcess } from './server.ts';

const MiB = 1024 * 1024;

describe('mediagit import of a Git LFS repository', () => {
  let dir = '';
  let src = '';
  const run = (args: string[], cwd = src) =>
    execFileSync('git', args, {
      cwd,
      encoding: 'utf8',
      env: {
        ...process.env,
        GIT_AUTHOR_NAME: 'Gina Git',
        GIT_AUTHOR_EMAIL: 'gina@example.com',
        GIT_COMMITTER_NAME: 'Carl Committer',
        GIT_COMMITTER_EMAIL: 'carl@example.com',
      },
    });
  let tick = 0;
  /** Commits with distinct dates and time zones, as a real history has. */
  const commit = (message: string) => {
    tick++;
    const date = `${1_700_000_000 + tick * 3600} ${tick % 2 ? '+0130' : '-0800'}`;
    execFileSync('git', ['commit', '-q', '-m', message], {
      cwd: src,
      env: {
        ...process.env,
        GIT_AUTHOR_NAME: `Author ${tick % 3}`,
        GIT_AUTHOR_EMAIL: `a${tick % 3}@example.com`,
        GIT_AUTHOR_DATE: date,
        GIT_COMMITTER_NAME: 'Carl Committer',
        GIT_COMMITTER_EMAIL: 'carl@example.com',
        GIT_COMMITTER_DATE: date,
      },
    });
  };
  /** Overwrites a few KiB of an LFS binary in place: a small edit of a large file. */
  const edit = async (name: string, seed: number) => {
    const handle = await fs.open(path.join(src, name), 'r+');
    await handle.write(pseudoRandomBytes(4096, seed), 0, 4096, (seed * 7919) % (4 * MiB));
    await handle.close();
  };

  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'mediagit-import-'));
    src = path.join(dir, 'src');
    await fs.mkdir(src);
    run(['init', '-q', '-b', 'main']);
    run(['lfs', 'install', '--local']);
    run(['lfs', 'track', '*.bin', '*.psd']);
    for (const [i, name] of ['assets/a.bin', 'assets/b.bin', 'art/c.psd'].entries()) {
      await fs.mkdir(path.dirname(path.join(src, name)), { recursive: true });
      await fs.writeFile(path.join(src, name), pseudoRandomBytes(6 * MiB + i * 12345, i + 1));
    }
    await fs.writeFile(path.join(src, 'README.md'), '# Game\n');
    await fs.writeFile(path.join(src, 'build.sh'), '#!/bin/sh\necho build\n', { mode: 0o755 });
    await fs.symlink('README.md', path.join(src, 'readme-link'));
    run(['add', '.']);
    commit('Start the game');
    run(['tag', 'light']);
    run(['checkout', '-q', '-b', 'art']);
    for (let i = 0; i < 3; i++) {
      await edit('art/c.psd', 10 + i);
      run(['add', '.']);
      commit(`Paint pass ${i}`);
    }
    run(['checkout', '-q', 'main']);
    await edit('assets/a.bin', 20);
    await fs.appendFile(path.join(src, 'README.md'), 'More.\n');
    run(['add', '.']);
    commit('Tune a');
    run(['checkout', '-q', '-b', 'audio']);
    await fs.writeFile(path.join(src, 'assets/d.bin'), pseudoRandomBytes(5 * MiB, 30));
    run(['add', '.']);
    commit('Add d');
    run(['checkout', '-q', 'main']);
    execFileSync('git', ['merge', '-q', '--no-ff', '-m', 'Merge art', 'art'], {
      cwd: src,
      env: {
        ...process.env,
        GIT_AUTHOR_NAME: 'M',
        GIT_AUTHOR_EMAIL: 'm@x',
        GIT_COMMITTER_NAME: 'M',
        GIT_COMMITTER_EMAIL: 'm@x',
        GIT_AUTHOR_DATE: '1700100000 +0000',
        GIT_COMMITTER_DATE: '1700100000 +0000',
      },
    });
    execFileSync(
      'git',
      ['merge', '-q', '--no-ff', '-m', 'Merge audio\n\nWith a body line.', 'audio'],
      {
        cwd: src,
        env: {
          ...process.env,
          GIT_AUTHOR_NAME: 'M',
          GIT_AUTHOR_EMAIL: 'm@x',
          GIT_COMMITTER_NAME: 'M',
          GIT_COMMITTER_EMAIL: 'm@x',
          GIT_AUTHOR_DATE: '1700200000 +0000',
          GIT_COMMITTER_DATE: '1700200000 +0000',
        },
      },
    );
    execFileSync('git', ['tag', '-a', 'v1', '-m', 'Release 1'], {
      cwd: src,
      env: {
        ...process.env,
        GIT_COMMITTER_NAME: 'T',
        GIT_COMMITTER_EMAIL: 't@x',
        GIT_COMMITTER_DATE: '1700300000 +0200',
      },
    });
    await edit('assets/b.bin', 40);
    run(['add', '.']);
    commit('Tune b');
  });
  after(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  /** Every file of a Git commit, LFS pointers smudged from the LFS store: path → [mode, sha256]. */
  const gitFiles = async (commitId: string): Promise<Map<string, string>> => {
    const files = new Map<string, string>();
    const listing = run(['ls-tree', '-r', '-z', commitId])
      .split('\0')
      .filter((l) => l !== '');
    for (const line of listing) {
      const [meta, name] = line.split('\t') as [string, string];
      const [mode, , blob] = meta.split(' ') as [string, string, string];
      let bytes = execFileSync('git', ['cat-file', 'blob', blob], {
        cwd: src,
        maxBuffer: 64 * MiB,
      });
      const oid =
        /^version https:\/\/git-lfs.github.com\/spec\/v1\noid sha256:([0-9a-f]{64})\n/.exec(
          bytes.toString('latin1'),
        )?.[1];
      if (oid)
        bytes = await fs.readFile(
          path.join(src, '.git', 'lfs', 'objects', oid.slice(0, 2), oid.slice(2, 4), oid),
        );
      files.set(name, `${mode} ${createHash('sha256').update(bytes).digest('hex')}`);
    }
    return files;
  };

  /** Every file of a MediaGit commit, read from the store: path → [mode, sha256]. */
  const mediagitFiles = async (repo: TempRepo, id: string): Promise<Map<string, string>> => {
    const gitDir = path.join(repo.dir, '.mediagit');
    const store = new ObjectStore(path.join(gitDir, 'objects'), path.join(gitDir, 'tmp'));
    const files = new Map<string, string>();
    const walk = async (tree: string, prefix: string) => {
      for (const entry of decodeTree(tree, await store.readTyped(tree, 'tree'))) {
        if (entry.kind === 'tree') await walk(entry.id, `${prefix}${entry.name}/`);
        else {
          const bytes = await readFileBytes(store, entry.kind, entry.id);
          files.set(
            `${prefix}${entry.name}`,
            `${entry.mode} ${createHash('sha256').update(bytes).digest('hex')}`,
          );
        }
      }
    };
    await walk(decodeCommit(id, await store.readTyped(id, 'commit')).tree, '');
    return files;
  };

  const commitMap = async (repo: TempRepo): Promise<Map<string, string>> => {
    const text = await fs.readFile(path.join(repo.dir, '.mediagit', 'import', 'commits'), 'utf8');
    return new Map(
      text
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => l.split(' ') as [string, string]),
    );
  };

  let reference: Map<string, string>;

  it('converts every commit: trees equal Git with LFS content, authors, dates and messages equal', async () => {
    const repo = await TempRepo.create();
    try {
      const result = await repo.ok(['import', '--lfs', src]);
      assert.match(result.out, /Imported 9 commits, 9 Git LFS objects; 5 refs set/);
      reference = await commitMap(repo);
      const gitCommits = run(['rev-list', '--all']).trim().split('\n');
      assert.equal(reference.size, gitCommits.length);
      for (const gitId of gitCommits) {
        assert.deepEqual(
          await mediagitFiles(repo, reference.get(gitId)!),
          await gitFiles(gitId),
          `commit ${gitId}`,
        );
      }
      // Authors, committers, dates (with time zones) and messages, through the CLI.
      const mine = JSON.parse((await repo.ok(['log', '--json', '--all'])).out) as {
        id: string;
        parents: string[];
        author: { name: string; email: string; time: number; tzOffset: number };
        committer: { name: string; time: number };
        message: string;
      }[];
      const theirs = run([
        'log',
        '--all',
        '--format=%H%x00%P%x00%an%x00%ae%x00%at%x00%ai%x00%cn%x00%ct%x00%B%x01',
      ])
        .split('\x01\n')
        .filter((t) => t !== '');
      const byGit = new Map(theirs.map((t) => [t.split('\0')[0]!, t.split('\0')]));
      for (const entry of mine) {
        const gitId = [...reference].find(([, id]) => id === entry.id)![0];
        const [, parents, an, ae, at, ai, cn, ct, body] = byGit.get(gitId)!;
        assert.deepEqual(
          entry.parents,
          parents!
            .split(' ')
            .filter((p) => p !== '')
            .map((p) => reference.get(p)),
        );
        assert.equal(entry.author.name, an);
        assert.equal(entry.author.email, ae);
        assert.equal(entry.author.time, Number(at));
        const tz = ai!.slice(-5);
        assert.equal(
          entry.author.tzOffset,
          (tz[0] === '-' ? -1 : 1) * (Number(tz.slice(1, 3)) * 60 + Number(tz.slice(3))),
        );
        assert.equal(entry.committer.name, cn);
        assert.equal(entry.committer.time, Number(ct));
        assert.equal(entry.message.trimEnd(), body!.trimEnd());
      }
      // The mapping shows in log, refs match, and the working tree is main's.
      const format = (await repo.ok(['log', '-1', '--format=%(git) %s'])).out.trim();
      assert.equal(format, `${run(['rev-parse', 'main']).trim()} Tune b`);
      assert.deepEqual((await repo.ok(['tag'])).out.trim().split('\n'), ['light', 'v1']);
      const branches = (await repo.ok(['branch'])).out
        .split('\n')
        .map((line) => line.replace(/^[* ] /, '').trim());
      assert.deepEqual(branches.filter((b) => b !== '').sort(), ['art', 'audio', 'main']);
      assert.equal(await fs.readlink(path.join(repo.dir, 'readme-link')), 'README.md');
      assert.equal((await fs.stat(path.join(repo.dir, 'build.sh'))).mode & 0o111, 0o111);
      const status = await repo.status();
      assert.deepEqual([status.staged, status.unstaged, status.untracked], [[], [], []]);
      // Stored: the LFS versions share chunks, so the store is far below the LFS store's size.
      const du = (p: string) =>
        Number(execFileSync('du', ['-sb', p], { encoding: 'utf8' }).split('\t')[0]);
      const lfs = du(path.join(src, '.git', 'lfs', 'objects'));
      const stored = du(path.join(repo.dir, '.mediagit', 'objects'));
      assert.ok(stored < lfs * 0.5, `stored ${stored} of ${lfs} LFS bytes`);
    } finally {
      await repo.cleanup();
    }
  });

  it('export --git: git fsck and git lfs fsck pass, log --stat matches, and its import gives the same IDs', async () => {
    const repo = await TempRepo.create();
    const again = await TempRepo.create();
    try {
      await repo.ok(['import', '--lfs', src]);
      const target = path.join(dir, 'exported');
      const exported = await repo.ok(['export', '--git', target]);
      assert.match(exported.out, /Exported 9 commits, 9 Git LFS objects, 5 refs/);
      execFileSync('git', ['fsck', '--strict'], { cwd: target, stdio: 'pipe' });
      assert.match(
        execFileSync('git', ['lfs', 'fsck'], { cwd: target, encoding: 'utf8' }),
        /Git LFS fsck OK/,
      );
      // Same trees, authors, dates and messages, and the same pointers: Git's own IDs come back.
      const stat = (cwd: string) =>
        execFileSync('git', ['log', '--all', '--stat', '--format=%H %an %at %s'], {
          cwd,
          encoding: 'utf8',
        });
      assert.equal(stat(target), stat(src));
      // The work tree holds the content, smudged.
      const a = await fs.readFile(path.join(target, 'assets/a.bin'));
      assert.equal(a.length, 6 * MiB);
      await again.ok(['import', '--lfs', target]);
      assert.deepEqual(
        [...(await commitMap(again)).values()].sort(),
        [...(await commitMap(repo)).values()].sort(),
      );
      await assert.rejects(repo.ok(['export', '--git', target]), /not empty/);
    } finally {
      await repo.cleanup();
      await again.cleanup();
    }
  });

  it('an import killed twice and resumed ends with the same IDs; a rerun adds only new commits', async () => {
    const repo = await TempRepo.create();
    try {
      for (const delay of [150, 450]) {
        const child = spawn(process.execPath, [CLI_PATH, 'import', '--lfs', src], {
          cwd: repo.dir,
          env: repo.env,
          stdio: 'ignore',
        });
        await new Promise((resolve) => setTimeout(resolve, delay));
        child.kill('SIGKILL');
        await new Promise((resolve) => child.once('close', resolve));
      }
      await repo.ok(['import', '--lfs', src]);
      assert.deepEqual(await commitMap(repo), reference);
      assert.equal((await repo.ok(['fsck'])).code, 0);
      await fs.appendFile(path.join(src, 'README.md'), 'Later.\n');
      run(['add', '.']);
      commit('Later one');
      await edit('assets/a.bin', 50);
      run(['add', '.']);
      commit('Later two');
      const again = await repo.ok(['import', '--lfs', src]);
      assert.match(again.out, /Imported 2 commits \(9 imported before\)/);
      const map = await commitMap(repo);
      assert.equal(map.size, 11);
      const head = run(['rev-parse', 'main']).trim();
      assert.deepEqual(await mediagitFiles(repo, map.get(head)!), await gitFiles(head));
    } finally {
      await repo.cleanup();
    }
  });

  it('refuses clearly and changes nothing: a branch of its own, a missing LFS object, a .mediagit path', async () => {
    const repo = await TempRepo.create();
    try {
      await fs.writeFile(path.join(repo.dir, 'mine.txt'), 'mine\n');
      await repo.ok(['add', 'mine.txt']);
      await repo.ok(['commit', '-q', '-m', 'mine']);
      const before = (await repo.ok(['log', '-1', '--format=%H'])).out.trim();
      const refused = await repo.fails(['import', '--lfs', src], 128);
      assert.match(refused.stderr, /refs\/heads\/main exists here and was not imported from Git/);
      assert.equal((await repo.ok(['log', '-1', '--format=%H'])).out.trim(), before);
    } finally {
      await repo.cleanup();
    }
    const lone = path.join(dir, 'lone');
    await fs.mkdir(lone);
    run(['init', '-q', '-b', 'main'], lone);
    const pointer =
      'version https://git-lfs.github.com/spec/v1\noid sha256:' + 'ab'.repeat(32) + '\nsize 12\n';
    await fs.writeFile(path.join(lone, 'x.bin'), pointer);
    await fs.mkdir(path.join(lone, '.mediagit'));
    await fs.writeFile(path.join(lone, 'plain.txt'), 'plain\n');
    run(['add', 'x.bin', 'plain.txt'], lone);
    run(['commit', '-q', '-m', 'pointer only'], lone);
    const missing = await TempRepo.create();
    try {
      const result = await missing.fails(['import', '--lfs', lone], 128);
      assert.match(
        result.stderr,
        /Git LFS object abab.* of x\.bin is not in .*git lfs fetch --all.* did not bring it/,
      );
      await missing.fails(['log', '-1'], 128);
    } finally {
      await missing.cleanup();
    }
    await fs.writeFile(path.join(lone, '.mediagit', 'config'), 'hostile\n');
    execFileSync('git', ['add', '-f', '.mediagit/config'], { cwd: lone });
    run(['rm', '-q', '--cached', 'x.bin'], lone);
    run(['commit', '-q', '-m', 'hostile'], lone);
    const hostile = await TempRepo.create();
    try {
      const result = await hostile.fails(['import', lone], 128);
      assert.match(result.stderr, /\.mediagit cannot be a MediaGit path/);
      await assert.rejects(fs.stat(path.join(hostile.dir, 'config')));
    } finally {
      await hostile.cleanup();
    }
  });
  it('imports from a URL: a mirror kept in the import state, LFS content fetched from the LFS server, new commits on rerun', async () => {
    // The history on a Git remote, its LFS content only on an LFS server (mediagit serve).
    const root = path.join(dir, 'lfs-server');
    await makeServerRoot(root, ['game']);
    const key = await createToken(root, 'gina', 'game', 'write');
    const server = await ServerProcess.start(root);
    const credentials = {
      GIT_CONFIG_COUNT: '1',
      GIT_CONFIG_KEY_0: 'credential.helper',
      GIT_CONFIG_VALUE_0: `!f() { echo username=gina; echo password=${key}; }; f`,
    };
    try {
      const remote = path.join(dir, 'remote.git');
      run(['clone', '-q', '--bare', src, remote], dir);
      const work = path.join(dir, 'work');
      execFileSync('git', ['clone', '-q', remote, work], {
        cwd: dir,
        env: { ...process.env, GIT_LFS_SKIP_SMUDGE: '1' },
      });
      const lfsUrl = `${server.url('game')}.git/info/lfs`;
      await fs.writeFile(path.join(work, '.lfsconfig'), `[lfs]\n\turl = ${lfsUrl}\n`);
      run(['add', '.lfsconfig'], work);
      run(['commit', '-q', '-m', 'LFS server'], work);
      const git = (args: string[], cwd: string) =>
        execFileSync('git', args, { cwd, env: { ...process.env, ...credentials } });
      // Every ref's LFS objects to the server (from src, which has them all), then the commit.
      git(['-c', `lfs.url=${lfsUrl}`, 'lfs', 'push', '--all', remote], src);
      git(['push', '-q', 'origin', 'main'], work);

      const repo = await TempRepo.create();
      try {
        const url = `file://${remote}`;
        const mg = async (args: string[]) => {
          const result = await runCli(args, {
            cwd: repo.dir,
            env: { ...repo.env, ...credentials },
          });
          assert.equal(result.code, 0, result.stderr);
          return result;
        };
        const first = await mg(['import', '--lfs', url]);
        assert.match(first.stderr, /cloning file:\/\//);
        assert.match(first.stderr, /fetching the Git LFS objects/);
        for (const name of ['assets/a.bin', 'assets/b.bin', 'art/c.psd', 'README.md']) {
          assert.deepEqual(
            await fs.readFile(path.join(repo.dir, name)),
            await fs.readFile(path.join(src, name)),
            name,
          );
        }
        const mirror = path.join(repo.dir, '.mediagit', 'import', 'source.git');
        assert.equal(
          execFileSync('git', ['rev-parse', '--is-bare-repository'], {
            cwd: mirror,
            encoding: 'utf8',
          }).trim(),
          'true',
        );

        // A new commit with a new LFS file, pushed (content to the LFS server by git-lfs's hook).
        await fs.writeFile(path.join(work, 'new.bin'), pseudoRandomBytes(5 * MiB, 77));
        run(['lfs', 'track', '*.bin'], work);
        run(['add', '.'], work);
        run(['commit', '-q', '-m', 'New asset'], work);
        git(['push', '-q', 'origin', 'main'], work);
        const again = await mg(['import', '--lfs', '--json', url]);
        const result = JSON.parse(again.out) as { imported: number; lfsObjects: number };
        assert.equal(result.imported, 1);
        assert.equal(result.lfsObjects, 1);
        await repo.ok(['checkout', '-q', 'main']);
        await repo.ok(['reset', '-q', '--hard']);
        assert.deepEqual(
          await fs.readFile(path.join(repo.dir, 'new.bin')),
          await fs.readFile(path.join(work, 'new.bin')),
        );

        // A URL nothing answers at: a clear error, and no mirror left half made.
        const bad = await TempRepo.create();
        try {
          const refused = await bad.fails(['import', 'file:///nonexistent/repo.git'], 128);
          assert.match(refused.stderr, /could not clone file:\/\/\/nonexistent\/repo\.git/);
          await assert.rejects(fs.stat(path.join(bad.dir, '.mediagit', 'import', 'source.git')));
        } finally {
          await bad.cleanup();
        }

        // Interrupted (SIGINT, as Ctrl-C) while it clones: no half-made
        // mirror is left (it was named with the PID of the interrupted
        // import), and the same command then imports the same commits.
        const cut = await TempRepo.create();
        try {
          const child = spawn(process.execPath, [CLI_PATH, 'import', '--lfs', url], {
            cwd: cut.dir,
            env: { ...cut.env, ...credentials },
            stdio: ['ignore', 'ignore', 'pipe'],
          });
          let said = '';
          child.stderr.on('data', (data: Buffer) => {
            said += data.toString();
            if (said.includes('cloning') && child.exitCode === null) child.kill('SIGINT');
          });
          const [code, signal] = await new Promise<[number | null, string | null]>((resolve) =>
            child.once('close', (exit, by) => resolve([exit, by])),
          );
          // It dies of the signal, as Git does (a shell shows 130).
          assert.ok(signal === 'SIGINT' || code === 130, `${code} ${signal}: ${said}`);
          const state = path.join(cut.dir, '.mediagit', 'import');
          const left = (await fs.readdir(state)).filter((name) => name.startsWith('source.git-'));
          assert.deepEqual(left, [], 'no half-made mirror');
          const rerun = await runCli(['import', '--lfs', url], {
            cwd: cut.dir,
            env: { ...cut.env, ...credentials },
          });
          assert.equal(rerun.code, 0, rerun.stderr);
          assert.deepEqual(await commitMap(cut), await commitMap(repo));
        } finally {
          await cut.cleanup();
        }
      } finally {
        await repo.cleanup();
      }
    } finally {
      await server.stop();
    }
  });
});
