import path from 'node:path';
import type { Command } from 'commander';
import { StagingIndex } from '../../repo/index-file.ts';
import { matchesAny, parsePathspecs } from '../../repo/pathspec.ts';
import { status } from '../../repo/status.ts';
import { printJson, type Cli } from '../context.ts';
import { quotePath } from '../diff-format.ts';

interface LsFilesOptions {
  cached?: boolean;
  modified?: boolean;
  deleted?: boolean;
  others?: boolean;
  stage?: boolean;
  z?: boolean;
  json?: boolean;
}

export function register(program: Command, cli: Cli): void {
  program
    .command('ls-files')
    .description(
      'List the files in the index (and, on request, modified, deleted or untracked ones)',
    )
    .argument('[paths...]', 'only files matching these pathspecs')
    .option('-c, --cached', 'the files in the index (the default)')
    .option('-m, --modified', 'files changed in the working tree')
    .option('-d, --deleted', 'files deleted from the working tree')
    .option('-o, --others', 'untracked files (ignored ones excluded)')
    .option('-s, --stage', 'mode, object ID and stage of each file')
    .option('-z', 'end each path with NUL instead of a newline, unquoted')
    .option('--json', 'print the entries as JSON')
    .action(async (paths: string[], opts: LsFilesOptions) => {
      const repo = await cli.openRepo();
      const workTree = repo.requireWorkTree('ls-files');
      // Without paths, what is under the current folder (Git's default).
      const specs = parsePathspecs(workTree, cli.cwd, paths.length > 0 ? paths : ['.']);
      const wanted = (p: string): boolean => matchesAny(specs, p);
      const index = await StagingIndex.load(repo.gitDir);
      const listed: { path: string; mode?: string; id?: string }[] = [];
      const cached = opts.cached === true || !(opts.modified || opts.deleted || opts.others);
      if (cached) {
        for (const p of index.sortedPaths()) {
          const entry = index.entries.get(p)!;
          if (wanted(p)) listed.push({ path: p, mode: entry.mode, id: entry.id });
        }
      }
      if (opts.modified || opts.deleted || opts.others) {
        const result = await status(repo, { untracked: opts.others === true });
        const extra = new Set<string>();
        for (const change of result.unstaged) {
          if (opts.deleted && change.change === 'deleted') extra.add(change.path);
          // Git counts a deleted file as modified too.
          if (opts.modified) extra.add(change.path);
        }
        if (opts.others) for (const p of result.untracked) extra.add(p);
        for (const p of [...extra].sort()) if (wanted(p)) listed.push({ path: p });
      }
      if (opts.json) {
        printJson(cli, listed);
        return;
      }
      // Paths relative to the current folder, as Git prints them.
      const relative = (p: string): string =>
        path
          .relative(cli.cwd, path.join(workTree, ...p.split('/')))
          .split(path.sep)
          .join('/');
      const lines = listed.map((item) => {
        const shown = opts.z ? relative(item.path) : quotePath(relative(item.path));
        return opts.stage && item.mode !== undefined
          ? `${item.mode} ${item.id} 0\t${shown}`
          : shown;
      });
      if (lines.length === 0) return;
      if (opts.z) process.stdout.write(lines.map((line) => `${line}\0`).join(''));
      else cli.out(lines.join('\n'));
    });
}
