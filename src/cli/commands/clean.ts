import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { MediaGitError } from '../../errors.ts';
import { StagingIndex } from '../../repo/index-file.ts';
import { matchesAny, parsePathspecs } from '../../repo/pathspec.ts';
import { status } from '../../repo/status.ts';
import { absolutePath, IgnoreRules, isUnder, walkWorkTree } from '../../repo/worktree.ts';
import type { Cli } from '../context.ts';
import { quotePath } from '../diff-format.ts';

interface CleanOptions {
  dryRun?: boolean;
  force?: boolean;
  d?: boolean;
  x?: boolean;
  X?: boolean;
  quiet?: boolean;
}

export function register(program: Command, cli: Cli): void {
  program
    .command('clean')
    .description('Remove untracked files from the working tree')
    .argument('[paths...]', 'only what these pathspecs name')
    .option('-n, --dry-run', 'say what would be removed, remove nothing')
    .option('-f, --force', 'remove (needed unless clean.requireForce is false)')
    .option('-d', 'remove untracked folders too')
    .option('-x', 'remove ignored files too')
    .option('-X', 'remove only ignored files')
    .option('-q, --quiet', 'say nothing but errors')
    .action(async (paths: string[], opts: CleanOptions) => {
      const repo = await cli.openRepo();
      const workTree = repo.requireWorkTree('clean');
      if (!opts.force && !opts.dryRun && repo.config('clean.requireForce') !== false) {
        throw new MediaGitError(
          'CLEAN_REQUIRES_FORCE',
          'clean.requireForce defaults to true and neither -n nor -f given; refusing to clean',
          { kind: 'usage' },
        );
      }
      // Without paths, the current folder and below, as Git does.
      const specs = parsePathspecs(workTree, cli.cwd, paths.length > 0 ? paths : ['.']);
      const candidates = new Set<string>();
      if (!opts.X) {
        for (const p of (await status(repo, { untracked: true })).untracked) candidates.add(p);
      }
      if (opts.x || opts.X) {
        const tracked = (await StagingIndex.load(repo.gitDir)).sortedPaths();
        walkWorkTree(workTree, '', new IgnoreRules(workTree), {
          onIgnored: (p) => {
            // A tracked file stays tracked however it is ignored.
            if (tracked.some((t) => isUnder(t, p))) return;
            const isDir = fs.lstatSync(absolutePath(workTree, p)).isDirectory();
            candidates.add(isDir ? `${p}/` : p);
          },
        });
      }
      const lines: string[] = [];
      for (const entry of [...candidates].sort()) {
        const isDir = entry.endsWith('/');
        const repoPath = isDir ? entry.slice(0, -1) : entry;
        if (isDir && !opts.d) continue;
        if (!matchesAny(specs, repoPath)) continue;
        const full = absolutePath(workTree, repoPath);
        const shown =
          quotePath(path.relative(cli.cwd, full).split(path.sep).join('/')) + (isDir ? '/' : '');
        if (opts.dryRun) lines.push(`Would remove ${shown}`);
        else {
          fs.rmSync(full, { recursive: true, force: true });
          lines.push(`Removing ${shown}`);
        }
      }
      if (!opts.quiet && lines.length > 0) cli.out(lines.join('\n'));
    });
}
