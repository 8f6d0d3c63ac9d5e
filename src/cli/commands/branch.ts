import type { Command } from 'commander';
import { MediaGitError } from '../../errors.ts';
import {
  createBranch,
  currentBranch,
  deleteBranches,
  listBranches,
  listRemoteBranches,
  renameBranch,
} from '../../repo/branch.ts';
import type { Repository } from '../../repo/repository.ts';
import { Refs } from '../../repo/refs.ts';
import { setProtected } from '../../repo/protect.ts';
import { parseUpstream, setUpstream, unsetUpstream } from '../../repo/remote.ts';
import { shortId } from '../../repo/revision.ts';
import { aheadBehindText, trackingOf } from '../../repo/tracking.ts';
import { ExitRequest } from '../exit.ts';
import { printJson, type Cli } from '../context.ts';

interface BranchOptions {
  delete?: boolean;
  D?: boolean;
  move?: boolean;
  M?: boolean;
  force?: boolean;
  /** 1 for -v, 2 for -vv. */
  verbose?: number;
  remotes?: boolean;
  all?: boolean;
  list?: boolean;
  json?: boolean;
  showCurrent?: boolean;
  protect?: boolean;
  unprotect?: boolean;
  setUpstreamTo?: string;
  unsetUpstream?: boolean;
}

export function register(program: Command, cli: Cli): void {
  program
    .command('branch')
    .description('List, create, rename or delete branches')
    .argument(
      '[args...]',
      '<name> [<start-point>] | -d <name>... | -m [<old>] <new> | -l [<pattern>...]',
    )
    .option('-d, --delete', 'delete branches merged into HEAD')
    .option('-D', 'delete branches even when not merged')
    .option('-m, --move', 'rename a branch (and its reflog)')
    .option('-M', 'rename a branch even if the new name exists')
    .option('-f, --force', 'move an existing branch to the start point')
    .option(
      '-v, --verbose',
      'show the tip commit of each branch and how it stands against its upstream (-vv: name the upstream)',
      (_: string, count: number) => count + 1,
      0,
    )
    .option('-r, --remotes', 'list the remote-tracking branches')
    .option('-a, --all', 'list local and remote-tracking branches')
    .option('-l, --list', 'list branches, optionally matching patterns')
    .option('--show-current', 'print the name of the current branch')
    .option('--json', 'print the branch list as JSON')
    .option('-u, --set-upstream-to <upstream>', 'make a branch track <remote>/<branch>')
    .option('--unset-upstream', "forget a branch's upstream")
    .option('--protect', 'protect branches: refuse deleting them or moving them backwards')
    .option('--unprotect', 'remove the protection of branches')
    .action(async (args: string[], opts: BranchOptions) => {
      const repo = await cli.openRepo();
      if (opts.protect || opts.unprotect) {
        if (args.length === 0 || (opts.protect && opts.unprotect)) {
          throw usage('--protect or --unprotect, with branch names');
        }
        for (const name of args) {
          if (opts.protect && (await new Refs(repo).read(`refs/heads/${name}`)) === undefined) {
            throw new MediaGitError('BRANCH_NOT_FOUND', `branch '${name}' not found`, {
              kind: 'usage',
            });
          }
          await setProtected(repo, name, opts.protect === true);
        }
        return;
      }
      if (opts.setUpstreamTo !== undefined || opts.unsetUpstream) {
        if (args.length > 1) throw usage('too many arguments to set the upstream');
        const branch = args[0] ?? (await currentBranch(repo));
        if (branch === undefined) throw usage('HEAD is detached: name the branch');
        if ((await new Refs(repo).read(`refs/heads/${branch}`)) === undefined) {
          throw new MediaGitError('BRANCH_NOT_FOUND', `branch '${branch}' not found`, {
            kind: 'usage',
          });
        }
        if (opts.unsetUpstream) {
          if (!(await unsetUpstream(repo, branch))) {
            throw new MediaGitError('NO_UPSTREAM', `branch '${branch}' has no upstream`, {
              kind: 'usage',
            });
          }
          return;
        }
        const upstream = await parseUpstream(repo, opts.setUpstreamTo!);
        await setUpstream(repo, branch, upstream);
        cli.out(
          `branch '${branch}' set up to track '${upstream.remote}/${upstream.merge.slice('refs/heads/'.length)}'.`,
        );
        return;
      }
      if (opts.showCurrent) {
        const name = await currentBranch(repo);
        if (name !== undefined) cli.out(name);
        return;
      }
      if (opts.delete || opts.D) {
        if (args.length === 0) throw usage('branch name required');
        const results = await deleteBranches(repo, {
          names: args,
          force: opts.D === true || (opts.delete === true && opts.force === true),
        });
        let failed = false;
        for (const result of results) {
          switch (result.outcome) {
            case 'deleted':
              cli.out(`Deleted branch ${result.name} (was ${shortId(result.id ?? '')}).`);
              break;
            case 'not-found':
              failed = true;
              cli.err(`error: branch '${result.name}' not found.`);
              break;
            case 'checked-out':
              failed = true;
              cli.err(
                `error: Cannot delete branch '${result.name}' checked out at '${repo.workTree ?? repo.gitDir}'`,
              );
              break;
            case 'not-merged':
              failed = true;
              cli.err(
                `error: The branch '${result.name}' is not fully merged.\n` +
                  `If you are sure you want to delete it, run 'mediagit branch -D ${result.name}'.`,
              );
              break;
          }
        }
        if (failed) throw new ExitRequest(1);
        return;
      }
      if (opts.move || opts.M) {
        if (args.length === 0 || args.length > 2) throw usage('branch name required');
        const [from, to] = args.length === 2 ? args : [undefined, args[0]!];
        await renameBranch(repo, { from, to: to!, force: opts.M === true || opts.force === true });
        return;
      }
      if (args.length === 0 || opts.list || opts.json || opts.remotes || opts.all) {
        await printBranches(cli, repo, args, opts);
        return;
      }
      if (args.length > 2) throw usage('too many arguments for a create operation');
      await createBranch(repo, { name: args[0]!, start: args[1], force: opts.force === true });
    });
}

function usage(message: string): MediaGitError {
  return new MediaGitError('BRANCH_USAGE', message, { kind: 'usage' });
}

async function printBranches(
  cli: Cli,
  repo: Repository,
  patterns: string[],
  opts: BranchOptions,
): Promise<void> {
  const list = await listBranches(repo, { patterns });
  if (opts.json) {
    printJson(cli, list);
    return;
  }
  const rows: { marker: string; label: string; id: string; subject: string; branch?: string }[] =
    [];
  const locals = !opts.remotes || opts.all === true;
  if (locals && list.detached && list.head !== undefined) {
    rows.push({
      marker: '*',
      label: `(HEAD detached at ${shortId(list.head)})`,
      id: list.head,
      subject: list.headSubject ?? '',
    });
  }
  for (const branch of locals ? list.branches : []) {
    rows.push({
      marker: branch.current ? '*' : ' ',
      label: branch.name,
      id: branch.id,
      subject: branch.subject,
      branch: branch.name,
    });
  }
  if (opts.remotes || opts.all) {
    for (const remote of await listRemoteBranches(repo, patterns)) {
      rows.push({
        marker: ' ',
        label: opts.all ? `remotes/${remote.name}` : remote.name,
        id: remote.id,
        subject: remote.subject,
      });
    }
  }
  const width = Math.max(0, ...rows.map((r) => r.label.length));
  const lines: string[] = [];
  for (const r of rows) {
    if (!opts.verbose) {
      lines.push(`${r.marker} ${r.label}`);
      continue;
    }
    // Git's `[origin/main: ahead 1]` (-vv) or `[ahead 1]` (-v).
    let state = '';
    const tracking = r.branch === undefined ? undefined : await trackingOf(repo, r.branch);
    if (tracking) {
      const text = aheadBehindText(tracking);
      if (opts.verbose > 1) state = `[${tracking.upstream}${text ? `: ${text}` : ''}] `;
      else if (text) state = `[${text}] `;
    }
    lines.push(`${r.marker} ${r.label.padEnd(width)} ${shortId(r.id)} ${state}${r.subject}`);
  }
  if (lines.length > 0) cli.out(lines.join('\n'));
}
