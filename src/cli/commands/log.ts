import type { Command } from 'commander';
import type { Commit } from '../../odb/commit.ts';
import { parseDiffPaths, splitRevisionsAndPaths, type FileDiff } from '../../repo/diff.ts';
import { log, refDecorations, type LogEntry, type RefDecoration } from '../../repo/log.ts';
import { printJson, type Cli } from '../context.ts';
import { formatCommit, formatOneline } from '../diff-format.ts';
import { expandFormat, parseDate, parsePretty } from '../pretty.ts';
import { contextLines, detailFor, operandsAndPaths, renderFiles } from './diff.ts';

interface LogFlags {
  oneline?: boolean;
  maxCount?: string;
  stat?: boolean;
  numstat?: boolean;
  nameOnly?: boolean;
  nameStatus?: boolean;
  patch?: boolean;
  unified?: string;
  decorate?: boolean;
  json?: boolean;
  author?: string;
  grep?: string;
  /** --since and --after, --until and --before, --format and --pretty (commander names each pair by its last flag). */
  after?: string;
  before?: string;
  pretty?: string;
}

/** A commit as `--json` prints it (log and show share the shape). */
export function commitJson(id: string, commit: Commit, files?: readonly FileDiff[]): object {
  return {
    id,
    parents: commit.parents,
    tree: commit.tree,
    author: commit.author,
    committer: commit.committer,
    message: commit.message,
    ...(files ? { files } : {}),
  };
}

function parseCount(command: Command, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) command.error(`error: '${value}' is not a valid commit count`);
  return n;
}

export function register(program: Command, cli: Cli): void {
  program
    .command('log')
    .description('Show commit history')
    .argument(
      '[revisions...]',
      'where to start (default HEAD); a..b and ^a exclude; paths go after --',
    )
    .option('--oneline', 'one line per commit: short ID and subject')
    .option('-n, --max-count <n>', 'show at most n commits (also -<n>)')
    .option('--stat', 'show a diffstat of each commit')
    .option('--numstat', 'show added and deleted line counts per file')
    .option('--name-only', 'show the names of changed files')
    .option('--name-status', 'show names and the kind of change')
    .option('-p, --patch', 'show each commit as a patch')
    .option('-U, --unified <n>', 'lines of context in patches')
    .option('--decorate', 'show ref names (default when writing to a terminal)')
    .option('--no-decorate', 'do not show ref names')
    .option('--author <pattern>', 'only commits whose author (name <email>) matches')
    .option('--grep <pattern>', 'only commits whose message matches')
    .option('--since, --after <date>', 'only commits after a date (2026-12-01, "2 weeks ago")')
    .option('--until, --before <date>', 'only commits before a date')
    .option(
      '--format, --pretty <format>',
      'oneline, short, medium, or format:/tformat: with %H %h %s %b %an %ae %ad %ar %d ...',
    )
    .option('--json', 'print the commits as JSON')
    .allowUnknownOption()
    .action(async (args: string[], opts: LogFlags, command: Command) => {
      const split = operandsAndPaths(command, args);
      let maxCount = opts.maxCount === undefined ? undefined : parseCount(command, opts.maxCount);
      const operands: string[] = [];
      for (const arg of split.operands) {
        if (/^-\d+$/.test(arg)) maxCount = parseCount(command, arg.slice(1));
        else if (arg.startsWith('-') && arg !== '-')
          command.error(`error: unknown option '${arg}'`);
        else operands.push(arg);
      }
      const wantsFiles =
        opts.stat || opts.numstat || opts.nameOnly || opts.nameStatus || opts.patch;
      const detail = wantsFiles ? (opts.patch ? 'patch' : detailFor(opts)) : undefined;
      const repo = await cli.openRepo();
      const { revisions, paths } = await splitRevisionsAndPaths(repo, cli.cwd, operands);
      const entries = log(repo, {
        revisions,
        maxCount,
        pathspecs: parseDiffPaths(repo, cli.cwd, [...paths, ...split.paths]),
        files: detail,
        context: contextLines(command, opts.unified),
        author: opts.author === undefined ? undefined : new RegExp(opts.author),
        grep: opts.grep === undefined ? undefined : new RegExp(opts.grep),
        since: opts.after === undefined ? undefined : parseDate(opts.after),
        until: opts.before === undefined ? undefined : parseDate(opts.before),
      });
      if (opts.json) {
        const out: object[] = [];
        for await (const entry of entries)
          out.push(commitJson(entry.id, entry.commit, entry.files));
        printJson(cli, out);
        return;
      }
      const decorate = opts.decorate ?? cli.color;
      const decorations = decorate
        ? await refDecorations(repo)
        : new Map<string, RefDecoration[]>();
      const pretty = opts.pretty === undefined ? undefined : parsePretty(opts.pretty);
      if (pretty?.named === 'oneline') opts.oneline = true;
      let first = true;
      for await (const entry of entries) {
        const decorated = decorations.get(entry.id) ?? [];
        if (pretty?.template !== undefined) {
          const text = expandFormat(cli, pretty.template, entry.id, entry.commit, decorated);
          // format: separates entries, tformat: ends each one.
          if (pretty.separator) (cli.write ?? cli.out)(`${first ? '' : '\n'}${text}`);
          else cli.out(`${text}\n`);
        } else cli.out(formatEntry(cli, entry, decorated, opts, first).join('\n'));
        first = false;
      }
    });
}

function formatEntry(
  cli: Cli,
  entry: LogEntry,
  decorations: readonly RefDecoration[],
  opts: LogFlags,
  first: boolean,
): string[] {
  const files = entry.files ?? [];
  const changes = files.length > 0 ? renderFiles(cli, files, opts.patch ? {} : opts) : [];
  if (opts.oneline) return [formatOneline(cli, entry, decorations), ...changes];
  const lines = first ? [] : [''];
  lines.push(...formatCommit(cli, entry, decorations));
  if (changes.length > 0) lines.push('', ...changes);
  return lines;
}
