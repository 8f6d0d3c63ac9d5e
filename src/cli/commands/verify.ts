import type { Command } from 'commander';
import { MediaGitError } from '../../errors.ts';
import { rootVerify } from '../../protocol/root-verify.ts';
import { ServerRoot } from '../../protocol/server-root.ts';
import { verify, type VerifyProblem, type VerifyReport } from '../../repo/verify.ts';
import { printJson, type Cli } from '../context.ts';
import { formatBytes } from '../format-bytes.ts';
import { ExitRequest } from '../exit.ts';
import { progressReporter } from '../progress.ts';
import { storageSettings } from '../storage-settings.ts';

interface VerifyFlags {
  quick?: boolean;
  all?: boolean;
  json?: boolean;
  quiet?: boolean;
  root?: string;
  repo?: string;
  jobs?: number;
}

/** Bad command-line usage: Git's exit code 129. */
function usage(message: string): MediaGitError {
  return new MediaGitError('VERIFY_USAGE', `error: ${message}`, {
    kind: 'usage',
    data: { exitCode: 129 },
  });
}

const positive = (value: string): number => {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1) throw usage(`not a positive integer: ${value}`);
  return n;
};

export function register(program: Command, cli: Cli): void {
  program
    .command('verify')
    .description(
      'Read every file of commits end to end and check its SHA-256 (default HEAD; on a server root, every branch and tag)',
    )
    .argument('[commit...]', 'commits to verify (default: HEAD)')
    .option('--quick', 'check only that every object the files need is stored; read no content')
    .option(
      '--all',
      'verify the commit of every ref (branches, tags, remote-tracking, stash) and HEAD',
    )
    .option('--root <dir|url>', 'verify repositories of a server root (a folder or storage URL)')
    .option('--repo <name>', 'with --root: only this repository')
    .option('-j, --jobs <n>', 'files verified at once (default: the number of cores)', positive)
    .option('-q, --quiet', 'print only problems')
    .option('--json', 'print the result as JSON')
    .action(async (revisions: string[], opts: VerifyFlags) => {
      if (opts.repo !== undefined && opts.root === undefined) throw usage('--repo needs --root');
      if (opts.root !== undefined && opts.all) {
        throw usage('--all is the default with --root (every branch and tag)');
      }
      const progress = progressReporter(cli, opts.quick ? 'Checking' : 'Verifying', {
        quiet: opts.quiet === true || opts.json === true,
      });
      const common = {
        quick: opts.quick === true,
        jobs: opts.jobs,
        onProgress: progress.update,
      };
      let reports: { name: string | undefined; report: VerifyReport }[];
      let skipped: readonly { name: string; reason: string }[] = [];
      let where: string;
      try {
        if (opts.root !== undefined) {
          const root = ServerRoot.open(opts.root, {
            cwd: cli.cwd,
            settings: await storageSettings(cli.env),
          });
          const result = await rootVerify(root, { ...common, repo: opts.repo, revisions }).catch(
            (error: unknown) => {
              if (error instanceof MediaGitError && error.code === 'VERIFY_USAGE') {
                throw usage(error.message);
              }
              throw error;
            },
          );
          where = result.root;
          reports = result.repositories.map(({ name, ...report }) => ({ name, report }));
          skipped = result.skipped;
        } else {
          const repo = await cli.openRepo();
          const report = await verify(repo, revisions, { ...common, all: opts.all === true });
          where = repo.gitDir;
          reports = [{ name: undefined, report }];
        }
      } finally {
        progress.stop();
      }
      const ok = reports.every(({ report }) => report.problems.length === 0);
      if (opts.json) {
        if (opts.root !== undefined) {
          printJson(cli, {
            root: where,
            ok,
            repositories: reports.map(({ name, report }) => ({ name, ...report })),
            skipped,
          });
        } else {
          printJson(cli, { ok, ...reports[0]!.report });
        }
      } else {
        for (const { name, report } of reports) printReport(cli, name, report, opts.quiet === true);
        for (const { name, reason } of skipped) cli.out(`${name}: not verified: ${reason}`);
      }
      if (!ok) throw new ExitRequest(1);
    });
}

function printReport(
  cli: Cli,
  name: string | undefined,
  report: VerifyReport,
  quiet: boolean,
): void {
  const prefix = name === undefined ? '' : `${name}: `;
  for (const problem of report.problems) cli.out(describeProblem(prefix, problem, report.quick));
  const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;
  const commits = plural(report.commits.length, 'commit');
  if (report.problems.length > 0) {
    const damaged = new Set(report.problems.map((p) => `${p.commit}:${p.path}`)).size;
    cli.out(
      `${prefix}verify: ${damaged} of ${plural(report.files, 'file')} in ${commits} damaged or unreadable`,
    );
    return;
  }
  if (quiet) return;
  if (report.commits.length === 0) {
    cli.out(`${prefix}nothing to verify (no commits)`);
  } else if (report.quick) {
    cli.out(
      `${prefix}checked ${plural(report.files, 'file')} (${plural(report.chunks, 'chunk')}) in ${commits}: every object is stored`,
    );
  } else {
    cli.out(
      `${prefix}verified ${plural(report.files, 'file')} (${formatBytes(report.bytes)} read) in ${commits}: every SHA-256 matches`,
    );
  }
}

/**
 * A damaged file as a block: the path and commit, the reason, the expected
 * and actual SHA-256, and one line per damaged chunk.
 */
function describeProblem(prefix: string, problem: VerifyProblem, quick: boolean): string {
  const where = problem.path === '' ? '(root folder)' : problem.path;
  const lines = [`${prefix}error: ${where} in commit ${problem.commit}: ${problem.reason}`];
  if (problem.expected !== null || problem.actual !== null) {
    lines.push(`  expected sha256 ${problem.expected ?? '(unknown)'}`);
    const unread = quick ? '(not read: --quick)' : '(unreadable)';
    lines.push(`  actual   sha256 ${problem.actual ?? unread}`);
  }
  for (const chunk of problem.chunks) {
    lines.push(`  chunk ${chunk.id} at offset ${chunk.offset}: ${chunk.reason}`);
  }
  return lines.join('\n');
}
