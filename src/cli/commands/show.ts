import type { Command } from 'commander';
import { streamFileContent } from '../../odb/file-store.ts';
import { ensureFileContent } from '../../repo/partial-clone.ts';
import { hasErrnoCode } from '../../errors.ts';
import { refDecorations } from '../../repo/log.ts';
import { show, type ShowResult, type ShownFile } from '../../repo/show.ts';
import type { Repository } from '../../repo/repository.ts';
import { printJson, type Cli } from '../context.ts';
import { formatCommit, formatOneline, formatTag } from '../diff-format.ts';
import { expandFormat, parsePretty } from '../pretty.ts';
import { ExitRequest } from '../exit.ts';
import { contextLines, detailFor, renderFiles } from './diff.ts';
import { commitJson } from './log.ts';

interface ShowFlags {
  stat?: boolean;
  numstat?: boolean;
  nameOnly?: boolean;
  nameStatus?: boolean;
  patch: boolean;
  unified?: string;
  decorate?: boolean;
  json?: boolean;
  /** --format and --pretty (commander names the pair by the last). */
  pretty?: string;
  oneline?: boolean;
}

/** Exit status of a process killed by SIGPIPE, which is what Git reports for `| head`. */
const EXIT_SIGPIPE = 141;

/**
 * Streams a stored file's exact bytes to stdout, one verified chunk at a time,
 * waiting for each write to be taken before reading on, so memory stays flat
 * for any size and a closed pipe stops the read.
 */
async function writeFileToStdout(repo: Repository, file: ShownFile): Promise<void> {
  const stdout = process.stdout;
  const ignore = (): void => undefined;
  // A closed pipe is reported through the write callback; keep the stream's
  // 'error' event from becoming an uncaught exception meanwhile.
  stdout.on('error', ignore);
  try {
    await streamFileContent(
      repo.objects,
      file.kind,
      file.id,
      (chunk) =>
        new Promise<void>((resolve, reject) => {
          stdout.write(chunk, (error) => (error ? reject(error) : resolve()));
        }),
    );
  } catch (error) {
    if (hasErrnoCode(error, 'EPIPE')) throw new ExitRequest(EXIT_SIGPIPE);
    throw error;
  } finally {
    stdout.off('error', ignore);
  }
}

export function register(program: Command, cli: Cli): void {
  program
    .command('show')
    .description('Show a commit with its changes, a tag, or a file as committed (<rev>:<path>)')
    .argument('[object]', 'a revision, a tag, or <rev>:<path> (default HEAD)')
    .option('--stat', 'show a diffstat instead of a patch')
    .option('--numstat', 'show added and deleted line counts per file')
    .option('--name-only', 'show only the names of changed files')
    .option('--name-status', 'show names and the kind of change')
    .option('-s, --no-patch', 'show the commit header only')
    .option('-U, --unified <n>', 'lines of context in the patch')
    .option('--decorate', 'show ref names (default when writing to a terminal)')
    .option('--no-decorate', 'do not show ref names')
    .option('--format, --pretty <format>', 'oneline, short, medium, format:<string> or a %-string')
    .option('--oneline', 'the commit on one line: short ID and subject')
    .option('--json', 'print the commit (or file metadata) as JSON')
    .action(async (spec: string | undefined, opts: ShowFlags, command: Command) => {
      const repo = await cli.openRepo();
      const result = await show(repo, spec, {
        cwd: cli.cwd,
        files: opts.patch ? detailFor(opts) : 'none',
        context: contextLines(command, opts.unified),
      });
      if (opts.json) {
        printJson(cli, showJson(result));
        return;
      }
      const header: string[] = [];
      for (const { tag } of result.tags) header.push(...formatTag(tag), '');
      if (result.type === 'file') {
        if (header.length > 0) cli.out(header.join('\n'));
        await ensureFileContent(repo, [{ path: result.path, ...result.file }]);
        await writeFileToStdout(repo, result.file);
        return;
      }
      if (result.type === 'tree') {
        header.push(`tree ${result.label}`, '');
        for (const entry of result.entries)
          header.push(entry.directory ? `${entry.name}/` : entry.name);
        cli.out(header.join('\n'));
        return;
      }
      const decorate = opts.decorate ?? cli.color;
      const decorations = decorate ? ((await refDecorations(repo)).get(result.id) ?? []) : [];
      const pretty = opts.oneline
        ? parsePretty('oneline')
        : opts.pretty === undefined
          ? undefined
          : parsePretty(opts.pretty);
      const files = result.files.length > 0 ? renderFiles(cli, result.files, opts) : [];
      const lines = [...header];
      if (pretty?.named === 'oneline')
        lines.push(formatOneline(cli, result, decorations), ...files);
      else if (pretty?.template !== undefined) {
        // As Git: the formatted header, a blank line (not after `format:`,
        // which separates rather than ends), then the changes; an empty
        // format, the changes alone.
        const text = expandFormat(cli, pretty.template, result.id, result.commit, decorations);
        if (pretty.separator && files.length === 0) {
          (cli.write ?? cli.out)(text);
          return;
        }
        if (text !== '') lines.push(text, ...(files.length > 0 && !pretty.separator ? [''] : []));
        lines.push(...files);
      } else {
        lines.push(...formatCommit(cli, result, decorations));
        if (files.length > 0) lines.push('', ...files);
      }
      if (lines.length > 0) cli.out(lines.join('\n'));
    });
}

function showJson(result: ShowResult): object {
  const tags = result.tags.map(({ id, tag }) => ({
    id,
    name: tag.tag,
    object: tag.object,
    type: tag.type,
    tagger: tag.tagger,
    message: tag.message,
  }));
  if (result.type === 'commit')
    return { ...commitJson(result.id, result.commit, result.files), tags };
  if (result.type === 'file') return { path: result.path, ...result.file, tags };
  return { tree: result.label, entries: result.entries, tags };
}
