import type { Command } from 'commander';
import { MediaGitError } from '../../errors.ts';
import { listTracked, MIN_SIZE_KEY, parseByteSize, track } from '../../git/attributes.ts';
import { git, gitConfigGet, locateGitRepo } from '../../git/git-command.ts';
import { installHooks } from '../../git/install.ts';
import { MAX_BLOB_SIZE } from '../../odb/file-store.ts';
import {
  addLockable,
  LOCKABLE_KEY,
  lockablePatterns,
  makeLockableFilesReadOnly,
} from '../../repo/lockable.ts';
import type { Repository } from '../../repo/repository.ts';
import { printJson, type Cli } from '../context.ts';

export function register(program: Command, cli: Cli): void {
  program
    .command('track')
    .description(
      'Route paths matching patterns through the MediaGit filter (.gitattributes); no pattern: list them',
    )
    .argument('[pattern...]', 'gitattributes patterns, such as "*.mp4"')
    .option('-l, --list', 'list the tracked patterns')
    .option(
      '--lockable',
      'mark the patterns lockable: checked out read-only until locked (a MediaGit repository: locks.lockable)',
    )
    .option('--json', 'with --list: machine-readable output')
    .option(
      '--min-size <size>',
      'files smaller than this (10MB, 512KiB, bytes) stay ordinary Git content; alone, tracks every path',
    )
    .action(
      async (
        patterns: string[],
        opts: { list?: boolean; json?: boolean; minSize?: string; lockable?: boolean },
      ) => {
        // A MediaGit repository stores every file itself: only lockable patterns apply.
        const repo = await cli.openRepo().catch(() => undefined);
        if (repo) return trackLockable(cli, repo, patterns, opts);
        const { gitDir, workTree } = await locateGitRepo(cli.cwd, cli.env);
        if (!workTree) {
          throw new MediaGitError(
            'BARE_REPO',
            'track needs a work tree (this is a bare repository)',
            { kind: 'usage' },
          );
        }
        if (opts.minSize !== undefined) {
          const bytes = parseByteSize(opts.minSize);
          if (bytes > MAX_BLOB_SIZE) {
            throw new MediaGitError(
              'BAD_SIZE',
              `--min-size is at most ${MAX_BLOB_SIZE} bytes (smaller content passes through memory; larger files belong in MediaGit)`,
              { kind: 'usage' },
            );
          }
          await git(['config', '--local', MIN_SIZE_KEY, String(bytes)], {
            cwd: cli.cwd,
            env: cli.env,
          });
          cli.out(`Files under ${bytes} bytes stay ordinary Git content`);
          if (patterns.length === 0) patterns = ['*'];
        }
        if (opts.list || patterns.length === 0) {
          const tracked = await listTracked(workTree, gitDir);
          const minSize = await gitConfigGet(MIN_SIZE_KEY, { cwd: cli.cwd, env: cli.env });
          const bytes = minSize ? parseByteSize(minSize) : 0;
          if (opts.json) return printJson(cli, { patterns: tracked, minSize: bytes });
          cli.out('Listing tracked patterns');
          for (const { pattern, source } of tracked) cli.out(`    ${pattern} (${source})`);
          if (bytes > 0)
            cli.out(`Files under ${bytes} bytes stay ordinary Git content (${MIN_SIZE_KEY})`);
          return;
        }
        const added = new Set(await track(workTree, patterns, opts.lockable === true));
        await installHooks(gitDir, workTree);
        for (const pattern of patterns) {
          const what = opts.lockable ? ' (lockable)' : '';
          cli.out(
            added.has(pattern) ? `Tracking "${pattern}"${what}` : `"${pattern}" already supported`,
          );
        }
      },
    );
}

/** `track` in a MediaGit repository: lists or adds lockable patterns (repo/lockable.ts). */
async function trackLockable(
  cli: Cli,
  repo: Repository,
  patterns: readonly string[],
  opts: { list?: boolean; json?: boolean; lockable?: boolean },
): Promise<void> {
  if (opts.list || patterns.length === 0) {
    const lockable = lockablePatterns(repo);
    if (opts.json) return printJson(cli, { lockable });
    cli.out('Listing lockable patterns');
    for (const pattern of lockable) cli.out(`    ${pattern} (${LOCKABLE_KEY})`);
    return;
  }
  if (!opts.lockable) {
    throw new MediaGitError(
      'TRACK_USAGE',
      'a MediaGit repository stores every file itself; track here only marks patterns --lockable',
      { kind: 'usage' },
    );
  }
  const added = new Set(await addLockable(repo, patterns));
  // Files already checked out become read-only too; `lock` gives write access.
  await makeLockableFilesReadOnly(repo, [...lockablePatterns(repo), ...added]);
  for (const pattern of patterns) {
    cli.out(
      added.has(pattern) ? `Tracking "${pattern}" (lockable)` : `"${pattern}" already lockable`,
    );
  }
}
