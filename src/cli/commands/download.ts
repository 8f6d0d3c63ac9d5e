import fs from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import { MediaGitError } from '../../errors.ts';
import {
  defaultOutput,
  downloadToFile,
  downloadToStream,
  partialExists,
  type DownloadResult,
} from '../../protocol/download.ts';
import { printJson, type Cli } from '../context.ts';
import { transportOptions } from '../credentials.ts';
import { interruptible } from '../interrupt.ts';
import { progressReporter } from '../progress.ts';

interface DownloadCliOptions {
  rev?: string;
  output?: string;
  quiet?: boolean;
  json?: boolean;
}

/** `mediagit download <url> <path>`: one file of a remote repository, no clone (docs/download.md). */
export function register(program: Command, cli: Cli): void {
  program
    .command('download')
    .description('Download one file of a remote repository without cloning it (resumable)')
    .argument('<url>', 'http(s) URL of a server repository, or a path / file:// URL')
    .argument('<path>', 'the file, as a path from the repository root')
    .option('--rev <rev>', "branch, tag or full commit ID (default: the remote's HEAD)")
    .option('-o, --output <file>', "where to write it ('-': stdout; default: its name, here)")
    .option('--json', 'print what was downloaded as JSON (not with -o -)')
    .option('-q, --quiet', 'print only errors')
    .action(async (url: string, filePath: string, opts: DownloadCliOptions) => {
      const transport = await transportOptions(cli, url);
      const progress = progressReporter(cli, 'Downloading', { quiet: opts.quiet === true });
      const onProgress = (done: number, total: number): void =>
        progress.update({ bytes: done, total });
      if (opts.output === '-') {
        await interruptible(
          async (signal) => {
            try {
              return await downloadToStream(url, filePath, process.stdout, {
                ...transport,
                rev: opts.rev,
                signal,
                onProgress,
              });
            } finally {
              progress.stop();
            }
          },
          () => undefined,
        );
        return;
      }
      const output = opts.output
        ? path.resolve(cli.cwd, opts.output)
        : defaultOutput(cli.cwd, filePath);
      const exists = await fs.lstat(output).then(
        () => true,
        () => false,
      );
      if (exists) {
        throw new MediaGitError(
          'OUTPUT_EXISTS',
          `'${path.relative(cli.cwd, output) || output}' already exists; remove it or choose another name with -o`,
          { kind: 'usage', data: { output } },
        );
      }
      const resuming = await partialExists(output);
      if (resuming && !opts.quiet && !opts.json) {
        cli.err(`Resuming the interrupted download into '${path.relative(cli.cwd, output)}'...`);
      }
      const result: DownloadResult = await interruptible(
        async (signal) => {
          try {
            return await downloadToFile(url, filePath, output, {
              ...transport,
              rev: opts.rev,
              signal,
              onProgress,
            });
          } finally {
            progress.stop();
          }
        },
        () =>
          cli.err(
            `Download interrupted; what arrived is kept: run the same command again to resume it.`,
          ),
      );
      if (opts.json) {
        printJson(cli, { output, ...result });
      } else if (!opts.quiet) {
        cli.err(
          `${result.path} (${result.commit.slice(0, 12)}): ${result.size} bytes into '${path.relative(cli.cwd, output)}'; ${result.chunks - result.chunksResumed} of ${result.chunks} chunks fetched`,
        );
      }
    });
}
