/**
 * The one place that turns errors into messages and exit codes, following
 * Git: 128 for fatal errors (not a repository, bad revision, locked index,
 * corrupt object), 129 for bad command-line usage, 1 for an operation that
 * could not be done (such as "nothing to commit"). A bug prints its stack and
 * asks for a report.
 */
import { MediaGitError } from '../errors.ts';
import type { Cli } from './context.ts';

export const EXIT_USAGE = 129;
export const EXIT_FATAL = 128;
export const EXIT_INTERNAL = 70;

/** Raised by commands to stop with an exit code after printing what they printed. */
export class ExitRequest extends Error {
  readonly exitCode: number;
  constructor(exitCode: number) {
    super(`exit ${exitCode}`);
    this.exitCode = exitCode;
  }
}

export function reportError(cli: Pick<Cli, 'err'>, error: unknown): number {
  if (error instanceof ExitRequest) return error.exitCode;
  if (error instanceof MediaGitError) {
    const explicit = error.data['exitCode'];
    if (typeof explicit === 'number') {
      cli.err(explicit === EXIT_FATAL ? `fatal: ${error.message}` : error.message);
      return explicit;
    }
    switch (error.kind) {
      case 'user':
        cli.err(`error: ${error.message}`);
        return 1;
      case 'usage':
      case 'config':
      case 'conflict':
      case 'corrupt':
        cli.err(`fatal: ${error.message}`);
        return EXIT_FATAL;
      case 'internal':
        break;
    }
  }
  if (error instanceof Error && 'code' in error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOSPC') {
      cli.err('fatal: no space left on device; nothing was lost, free some space and retry');
      return EXIT_FATAL;
    }
    if (code === 'EACCES' || code === 'EPERM') {
      cli.err(
        `fatal: permission denied: ${(error as NodeJS.ErrnoException).path ?? error.message}`,
      );
      return EXIT_FATAL;
    }
  }
  const stack = error instanceof Error ? (error.stack ?? error.message) : String(error);
  cli.err(
    `fatal: internal error (this is a bug in MediaGit; please report it with the lines below)\n${stack}`,
  );
  return EXIT_INTERNAL;
}
