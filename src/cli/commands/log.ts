import type { Command } from 'commander';
import { MediaGitError } from '../../errors.ts';
import type { Commit } from '../../odb/commit.ts';
import type { ObjectId } from '../../odb/object-id.ts';
import { parseDiffPaths, splitRevisionsAndPaths, type FileDiff } from '../../repo/diff.ts';
import {
  log,
  refDecorations,
  type LogEntry,
  type LogOptions,
  type RefDecoration,
} from '../../repo/log.ts';
import { Refs } from '../../repo/refs.ts';
import type { Repository } from '../../repo/repository.ts';
import { peelToCommit } from '../../repo/revision.ts';
import { printJson, type Cli } from '../context.ts';
import { formatCommit, formatOneline } from '../diff-format.ts';
import { GraphLayout, graphLog, type EntryEnd } from '../graph.ts';
import { expandFormat, parseDate, parsePretty, type PrettyFormat } from '../pretty.ts';
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
  graph?: boolean;
  all?: boolean;
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
    .option('--graph', 'draw the history as a graph beside the commits (topological order)')
    .option('--all', 'start from every ref (branches, remote-tracking branches, tags) and HEAD')
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
      if (opts.graph) refuseWithGraph(opts);
      const repo = await cli.openRepo();
      const { revisions, paths } = await splitRevisionsAndPaths(repo, cli.cwd, operands);
      if (opts.all) {
        revisions.push(...(await everyRef(repo)));
        // Git: nothing to show in a repository without commits, and no error.
        if (revisions.length === 0) return;
      }
      const options: LogOptions = {
        revisions,
        maxCount,
        pathspecs: parseDiffPaths(repo, cli.cwd, [...paths, ...split.paths]),
        files: detail,
        context: contextLines(command, opts.unified),
        author: opts.author === undefined ? undefined : new RegExp(opts.author),
        grep: opts.grep === undefined ? undefined : new RegExp(opts.grep),
        since: opts.after === undefined ? undefined : parseDate(opts.after),
        until: opts.before === undefined ? undefined : parseDate(opts.before),
      };
      if (opts.json) {
        const out: object[] = [];
        for await (const entry of log(repo, options))
          out.push(commitJson(entry.id, entry.commit, entry.files));
        printJson(cli, out);
        return;
      }
      const decorate = opts.decorate ?? cli.color;
      const decorations = decorate
        ? await refDecorations(repo)
        : new Map<string, RefDecoration[]>();
      const parsed = opts.pretty === undefined ? undefined : parsePretty(opts.pretty);
      // %(git): the Git commit an imported commit came from (docs/migrate-from-git-lfs.md).
      const importedFrom = parsed?.template?.includes('%(git)')
        ? await (await import('../../git/import.ts')).importedFrom(repo)
        : undefined;
      const pretty = parsed;
      const formatOf = (id: string): string =>
        importedFrom
          ? pretty!.template!.replaceAll('%(git)', importedFrom.get(id) ?? '')
          : pretty!.template!;
      if (pretty?.named === 'oneline') opts.oneline = true;
      if (opts.graph) {
        const graph = new GraphLayout(entryEnd(opts, pretty), { colored: cli.color });
        for await (const entry of graphLog(repo, options)) {
          const decorated = decorations.get(entry.id) ?? [];
          const text =
            pretty?.template !== undefined
              ? expandFormat(cli, formatOf(entry.id), entry.id, entry.commit, decorated)
              : opts.oneline
                ? formatOneline(cli, entry, decorated)
                : `${formatCommit(cli, entry, decorated).join('\n')}\n`;
          (cli.write ?? cli.out)(graph.entry(entry.id, entry.lanes, text));
        }
        return;
      }
      let first = true;
      for await (const entry of log(repo, options)) {
        const decorated = decorations.get(entry.id) ?? [];
        if (pretty?.template !== undefined) {
          const text = expandFormat(cli, formatOf(entry.id), entry.id, entry.commit, decorated);
          const files = entry.files ?? [];
          const changes =
            files.length > 0 ? renderFiles(cli, files, opts.patch ? {} : opts).join('\n') : '';
          // format: separates entries, tformat: ends each one. Changes follow
          // the header as Git lays them out: right under a format: header,
          // after a blank line under a tformat: one, alone under an empty one.
          if (pretty.separator) {
            const body = changes === '' ? '' : `\n${changes}\n`;
            (cli.write ?? cli.out)(`${first ? '' : '\n'}${text}${body}`);
          } else if (changes === '') cli.out(`${text}\n`);
          else cli.out(text === '' ? `${changes}\n` : `${text}\n\n${changes}\n`);
        } else cli.out(formatEntry(cli, entry, decorated, opts, first).join('\n'));
        first = false;
      }
    });
}

/** The options `--graph` cannot draw beside, refused rather than printed wrongly. */
function refuseWithGraph(opts: LogFlags): void {
  const other = [
    opts.json && '--json',
    opts.patch && '--patch',
    opts.stat && '--stat',
    opts.numstat && '--numstat',
    opts.nameOnly && '--name-only',
    opts.nameStatus && '--name-status',
  ].find((flag) => typeof flag === 'string');
  if (other === undefined) return;
  throw new MediaGitError(
    'GRAPH_UNSUPPORTED',
    `options '--graph' and '${other}' cannot be used together`,
    { kind: 'usage', data: { option: other } },
  );
}

/** How the format ends entries (Git's use_terminator), which decides the graph's blank rows. */
function entryEnd(opts: LogFlags, pretty: PrettyFormat | undefined): EntryEnd {
  if (pretty?.template !== undefined) {
    if (pretty.separator) return 'separate';
    return pretty.template === '' ? 'none' : 'terminate';
  }
  return opts.oneline ? 'terminate' : 'separate';
}

/**
 * `--all`: every ref's commit in ref-name order, then HEAD's, as Git adds
 * them (refs that do not lead to a commit are skipped).
 */
async function everyRef(repo: Repository): Promise<ObjectId[]> {
  const refs = new Refs(repo);
  const ids = (await refs.list('refs/')).map((ref) => ref.id);
  const head = await refs.head();
  if (head.id !== undefined) ids.push(head.id);
  const commits: ObjectId[] = [];
  for (const id of ids) {
    const commit = await peelToCommit(repo, id, id).catch(() => undefined);
    if (commit !== undefined && !commits.includes(commit)) commits.push(commit);
  }
  return commits;
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
