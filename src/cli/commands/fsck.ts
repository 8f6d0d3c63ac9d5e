import type { Command } from 'commander';
import { MediaGitError } from '../../errors.ts';
import {
  repairRepository,
  resolveRepairSource,
  type RepairResult,
} from '../../protocol/fsck-repair.ts';
import { fsck, type FsckProblem, type FsckReport } from '../../repo/fsck.ts';
import { rootFsck } from '../../protocol/root-fsck.ts';
import { ServerRoot } from '../../protocol/server-root.ts';
import { storageSettings } from '../storage-settings.ts';
import { printJson, type Cli } from '../context.ts';
import { transportOptions } from '../credentials.ts';
import { ExitRequest } from '../exit.ts';
import { progressReporter } from '../progress.ts';

interface FsckFlags {
  full?: boolean;
  repair?: boolean;
  from?: string;
  json?: boolean;
  progress?: boolean;
  root?: string;
  repo?: string;
}

/**
 * Exit status, a bit mask as `git fsck`'s: 1 a damaged object, 2 a missing
 * one, 4 a damaged pack or pack index, 8 a damaged ref, reflog, index or
 * state file; 0 when nothing is wrong.
 */
export function exitCodeOf(report: FsckReport): number {
  let code = 0;
  for (const problem of report.problems) {
    switch (problem.kind) {
      case 'corrupt':
      case 'bad-delta':
      case 'bad-link':
        code |= 1;
        break;
      case 'missing':
        code |= 2;
        break;
      case 'corrupt-pack':
      case 'corrupt-pack-index':
        code |= 4;
        break;
      default:
        code |= 8;
    }
  }
  return code;
}

export function register(program: Command, cli: Cli): void {
  program
    .command('fsck')
    .description('Check the integrity of every object, link, pack, ref and the index')
    .option('--full', 'read and verify every stored object, reachable or not (chunks included)')
    .option('--repair', 'restore missing or damaged objects from a remote, verifying each')
    .option('--from <repo>', 'with --repair: the repository to take good copies from')
    .option('--json', 'print the result as JSON')
    .option('--no-progress', 'show no progress line')
    .option('--root <dir|url>', 'check the repositories of a server root (a folder or storage URL)')
    .option('--repo <name>', 'with --root: only this repository')
    .action(async (opts: FsckFlags) => {
      if (opts.repo !== undefined && opts.root === undefined) {
        throw new MediaGitError('USAGE', 'error: --repo needs --root', {
          kind: 'usage',
          data: { exitCode: 129 },
        });
      }
      if (opts.root !== undefined) {
        if (opts.repair || opts.full) {
          throw new MediaGitError(
            'USAGE',
            `error: --${opts.repair ? 'repair' : 'full'} does not apply to --root (every reachable object is read)`,
            { kind: 'usage', data: { exitCode: 129 } },
          );
        }
        await fsckRoot(cli, opts.root, opts);
        return;
      }
      if (opts.from !== undefined && !opts.repair) {
        throw new MediaGitError('USAGE', 'error: --from needs --repair', {
          kind: 'usage',
          data: { exitCode: 129 },
        });
      }
      const repo = await cli.openRepo();
      const progress = progressReporter(cli, 'Checking objects', {
        quiet: opts.progress === false,
      });
      let report: FsckReport;
      let repair: RepairResult | undefined;
      try {
        if (opts.repair) {
          const url = await resolveRepairSource(repo, opts.from);
          repair = await repairRepository(repo, {
            ...(url ? await transportOptions(cli, url) : {}),
            url,
            full: opts.full === true,
            onProgress: progress.update,
          });
          report = repair.after;
        } else {
          report = await fsck(repo, { full: opts.full === true, onProgress: progress.update });
        }
      } finally {
        progress.stop();
      }
      if (opts.json) {
        printJson(cli, {
          ok: report.ok,
          full: report.full,
          problems: report.problems,
          stats: report.stats,
          ...(repair
            ? {
                repair: {
                  source: repair.source,
                  found: repair.before.problems,
                  actions: repair.actions,
                  unrepaired: repair.unrepaired,
                },
              }
            : {}),
        });
      } else if (repair) {
        printProblems(cli, repair.before);
        for (const action of repair.actions) cli.out(`repaired: ${action.message}`);
        for (const left of repair.unrepaired) cli.out(`not repaired: ${left.reason}`);
        if (!repo.bare && repair.actions.some((a) => a.kind === 'moved-aside')) {
          cli.out(
            'hint: `mediagit repack` packs the objects copied out of the damaged packs again',
          );
        }
        if (!report.ok) {
          cli.out('after the repair:');
          printProblems(cli, report);
        }
        cli.out(summary(report, repair));
      } else {
        printProblems(cli, report);
        cli.out(summary(report));
      }
      const code = exitCodeOf(report);
      if (code !== 0) throw new ExitRequest(code);
    });
}

async function fsckRoot(cli: Cli, location: string, opts: FsckFlags): Promise<void> {
  const root = ServerRoot.open(location, {
    cwd: cli.cwd,
    settings: await storageSettings(cli.env),
  });
  const report = await rootFsck(root, { repo: opts.repo });
  let code = 0;
  for (const repo of report.repositories) {
    for (const problem of repo.problems) {
      code |=
        problem.kind === 'missing'
          ? 2
          : problem.kind === 'corrupt'
            ? 1
            : problem.kind === 'corrupt-pack-index'
              ? 4
              : 8;
    }
  }
  if (opts.json) {
    printJson(cli, { ok: code === 0, ...report });
  } else {
    for (const repo of report.repositories) {
      for (const problem of repo.problems)
        cli.out(`${repo.name}: ${problem.kind}: ${problem.message}`);
      const found = repo.problems.length;
      cli.out(
        `fsck: ${repo.name}: ${found === 0 ? 'no problems found' : `${found} problem${found === 1 ? '' : 's'} found`} ` +
          `in ${repo.refs} refs, ${repo.objects} objects, ${repo.chunks} chunks, ${repo.lfsObjects} Git LFS objects, ${repo.packs} packs`,
      );
    }
  }
  if (code !== 0) throw new ExitRequest(code);
}

function printProblems(cli: Cli, report: FsckReport): void {
  for (const problem of report.problems) {
    cli.out(problemLine(problem));
    const shown = problem.objects.slice(0, 10);
    for (const object of shown) {
      cli.out(`  holds ${object.type ?? 'object'} ${object.id}${neededBy(object)}`);
    }
    if (problem.objects.length > shown.length) {
      cli.out(`  ... and ${problem.objects.length - shown.length} more objects found nowhere else`);
    }
  }
}

/** One line per problem, in `git fsck`'s words where it has them. */
export function problemLine(problem: FsckProblem): string {
  const what = `${problem.type ?? 'object'} ${problem.id ?? ''}`;
  switch (problem.kind) {
    case 'missing':
      return `missing ${what}${neededBy(problem)}`;
    case 'corrupt': {
      const where = problem.file ? ` in ${problem.file}` : '';
      const good = problem.goodCopy ? '; a good copy exists elsewhere' : '';
      return `corrupt ${what}: ${problem.reason}${where}${good}${neededBy(problem)}`;
    }
    case 'bad-delta':
      return `bad delta ${what}: ${problem.reason}${neededBy(problem)}`;
    case 'bad-link':
      return `bad link to ${what}: ${problem.reason}${neededBy(problem)}`;
    case 'corrupt-pack':
      return `corrupt pack ${problem.file}: ${problem.reason}`;
    case 'corrupt-pack-index':
      return `corrupt pack index ${problem.file}: ${problem.reason}`;
    case 'corrupt-index':
      return `corrupt index ${problem.file}: ${problem.reason} (mediagit fsck --repair rebuilds it from HEAD)`;
    case 'bad-ref':
      return `bad ref ${problem.file}: ${problem.reason}`;
    case 'bad-reflog':
      return `bad reflog ${problem.file}: ${problem.reason}`;
    case 'bad-state':
      return `bad state file ${problem.file}: ${problem.reason}`;
  }
}

/** ` (needed by a/b.bin in commit <id>, refs/heads/main)`, or ` (unreachable)`. */
function neededBy(deps: { paths: string[]; commits: string[]; refs: string[] }): string {
  const parts: string[] = [];
  const paths =
    deps.paths.slice(0, 3).join(', ') +
    (deps.paths.length > 3 ? ` and ${deps.paths.length - 3} more paths` : '');
  const commits =
    deps.commits.length === 0
      ? ''
      : `commit ${deps.commits[0]}${deps.commits.length > 1 ? ` and ${deps.commits.length - 1} more` : ''}`;
  if (paths && commits) parts.push(`${paths} in ${commits}`);
  else if (paths || commits) parts.push(paths || commits);
  if (deps.refs.length > 0) {
    parts.push(
      deps.refs.slice(0, 3).join(', ') +
        (deps.refs.length > 3 ? ` and ${deps.refs.length - 3} more` : ''),
    );
  }
  return parts.length === 0 ? ' (unreachable)' : ` (needed by ${parts.join('; ')})`;
}

function summary(report: FsckReport, repair?: RepairResult): string {
  const s = report.stats;
  const promised = s.promised
    ? `; ${s.promised} objects absent, promised by the remote (partial clone)`
    : '';
  const checked = `${s.objects} objects (${s.reachable} reachable, ${s.unreachable} unreachable), ${s.packs} packs, ${s.refs} refs; ${s.verified} verified in full (${mib(s.verifiedBytes)})${promised}`;
  const repaired = repair
    ? `; ${repair.actions.length} repairs from ${repair.source ?? 'local copies only'}`
    : '';
  const found = report.problems.length;
  return found === 0
    ? `fsck: no problems found in ${checked}${repaired}`
    : `fsck: ${found} problem${found === 1 ? '' : 's'} found in ${checked}${repaired}`;
}

function mib(bytes: number): string {
  return `${(bytes / 1048576).toFixed(1)} MiB`;
}
