import type { Command } from 'commander';
import {
  diff,
  splitRevisionsAndPaths,
  type DiffDetail,
  type FileDiff,
  type UnmergedPath,
} from '../../repo/diff.ts';
import { compareNames } from '../../odb/tree.ts';
import { printJson, type Cli } from '../context.ts';
import {
  formatNameOnly,
  formatNameStatus,
  formatNumstat,
  formatPatch,
  formatStat,
  formatUnmerged,
  quotePath,
  statWidth,
} from '../diff-format.ts';
import { ExitRequest } from '../exit.ts';

interface DiffFlags {
  cached?: boolean;
  staged?: boolean;
  stat?: boolean;
  numstat?: boolean;
  nameOnly?: boolean;
  nameStatus?: boolean;
  exitCode?: boolean;
  quiet?: boolean;
  renames: boolean;
  unified?: string;
  json?: boolean;
}

/**
 * Splits a command's operands at `--`, which commander drops: everything the
 * user wrote after the first `--` that follows the verb is a path.
 */
export function operandsAndPaths(
  command: Command,
  operands: readonly string[],
): { operands: string[]; paths: string[] } {
  // `rawArgs` is commander's public (untyped) copy of the program's argv.
  const parent = command.parent as (Command & { rawArgs?: string[] }) | null;
  const raw = parent?.rawArgs ?? [];
  const dash = raw.indexOf('--', raw.indexOf(command.name()) + 1);
  const paths = dash >= 0 ? raw.slice(dash + 1) : [];
  return { operands: operands.slice(0, operands.length - paths.length), paths };
}

/** `-U<n>` as a non-negative integer, or a usage error. */
export function contextLines(command: Command, value: string | undefined): number {
  if (value === undefined) return 3;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) command.error(`error: invalid -U value '${value}'`);
  return n;
}

/** Which diff detail a set of output flags needs. */
export function detailFor(flags: {
  stat?: boolean | undefined;
  numstat?: boolean | undefined;
  nameOnly?: boolean | undefined;
  nameStatus?: boolean | undefined;
}): DiffDetail {
  if (flags.stat || flags.numstat) return 'stat';
  if (flags.nameOnly || flags.nameStatus) return 'names';
  return 'patch';
}

/** Renders changed files in the format the flags ask for (patch by default). */
export function renderFiles(
  cli: Cli,
  files: readonly FileDiff[],
  flags: Parameters<typeof detailFor>[0],
): string[] {
  if (flags.stat) return formatStat(cli, files, statWidth(cli));
  if (flags.numstat) return formatNumstat(files);
  if (flags.nameStatus) return formatNameStatus(files);
  if (flags.nameOnly) return formatNameOnly(files);
  return formatPatch(cli, files);
}

export function register(program: Command, cli: Cli): void {
  program
    .command('diff')
    .description('Show changes between commits, the index and the working tree')
    .argument('[revisions...]', 'zero, one or two revisions (or a..b); paths go after --')
    .option('--cached', 'compare the index with HEAD (or the given revision)')
    .option('--staged', 'synonym for --cached')
    .option('--stat', 'show a diffstat instead of a patch')
    .option('--numstat', 'show added and deleted line counts per file')
    .option('--name-only', 'show only the names of changed files')
    .option('--name-status', 'show names and the kind of change (A, D, M, T, R)')
    .option('--exit-code', 'exit with 1 when there are differences')
    .option('--quiet', 'print nothing; implies --exit-code')
    .option('--no-renames', 'do not pair deleted and added files with identical content')
    .option('-U, --unified <n>', 'lines of context around each change', undefined)
    .option('--json', 'print the changes as JSON')
    .action(async (args: string[], opts: DiffFlags, command: Command) => {
      const repo = await cli.openRepo();
      const split = operandsAndPaths(command, args);
      const { revisions, paths } = await splitRevisionsAndPaths(repo, cli.cwd, split.operands);
      const detail = opts.quiet && !opts.json ? 'names' : detailFor(opts);
      const result = await diff(repo, {
        cwd: cli.cwd,
        cached: opts.cached === true || opts.staged === true,
        revisions,
        paths: [...paths, ...split.paths],
        detail,
        renames: opts.renames,
        context: contextLines(command, opts.unified),
      });
      if (opts.json) printJson(cli, result.files);
      else if (!opts.quiet) {
        const lines =
          result.unmerged.length > 0
            ? withUnmerged(cli, result.files, result.unmerged, opts)
            : renderFiles(cli, result.files, opts);
        if (lines.length > 0) cli.out(lines.join('\n'));
      }
      const changed = result.files.length > 0 || result.unmerged.length > 0;
      if ((opts.exitCode || opts.quiet) && changed) throw new ExitRequest(1);
    });
}

/**
 * A working-tree diff during a stopped merge, ordered as Git prints it: the
 * combined diffs of conflicted paths first, then the other changes in path
 * order, with `* Unmerged path` for conflicts one side deleted. Name lists
 * give each conflicted path a `U` line before its change against ours, if any.
 */
function withUnmerged(
  cli: Cli,
  files: readonly FileDiff[],
  unmerged: readonly UnmergedPath[],
  flags: DiffFlags,
): string[] {
  const conflicted = new Set(unmerged.map((u) => u.path));
  if (flags.nameOnly || flags.nameStatus) {
    const rows = [
      ...unmerged.map((u) => ({ path: u.path, unmerged: true, file: undefined })),
      ...files.map((f) => ({ path: f.path, unmerged: false, file: f })),
    ].sort((a, b) => compareNames(a.path, b.path) || Number(b.unmerged) - Number(a.unmerged));
    return rows.flatMap((row) => {
      if (row.file) return renderFiles(cli, [row.file], flags);
      return flags.nameStatus ? [`U\t${quotePath(row.path)}`] : [quotePath(row.path)];
    });
  }
  if (flags.stat || flags.numstat) return renderFiles(cli, files, flags);
  const lines = unmerged.filter((u) => u.combined).flatMap((u) => formatUnmerged(cli, u));
  const rest = [
    ...unmerged.filter((u) => !u.combined).map((u) => ({ path: u.path, unmerged: u })),
    ...files.filter((f) => !conflicted.has(f.path)).map((f) => ({ path: f.path, file: f })),
  ].sort((a, b) => compareNames(a.path, b.path));
  for (const row of rest) {
    lines.push(
      ...('file' in row ? formatPatch(cli, [row.file]) : formatUnmerged(cli, row.unmerged)),
    );
  }
  return lines;
}
