import type { Command } from 'commander';
import { status, type ChangeKind } from '../../repo/status.ts';
import { StagingIndex } from '../../repo/index-file.ts';
import { loadSparse } from '../../repo/sparse.ts';
import type { ConflictType } from '../../repo/merge-state.ts';
import { paint, printJson, type Cli } from '../context.ts';
import { quotePath } from '../quote-path.ts';
import { lockHolders } from '../lock-holders.ts';
import type { Repository } from '../../repo/repository.ts';
import { aheadBehindText, trackingOf, type Tracking } from '../../repo/tracking.ts';

const LONG: Record<ChangeKind, string> = {
  added: 'new file:   ',
  modified: 'modified:   ',
  deleted: 'deleted:    ',
  typechange: 'typechange: ',
};
const SHORT: Record<ChangeKind, string> = {
  added: 'A',
  modified: 'M',
  deleted: 'D',
  typechange: 'T',
};

/** Git's short codes and labels for unmerged paths. */
const UNMERGED_SHORT: Record<ConflictType, string> = {
  ModifyModify: 'UU',
  AddAdd: 'AA',
  DeleteModify: 'DU',
  ModifyDelete: 'UD',
};
const UNMERGED_LONG: Record<ConflictType, string> = {
  ModifyModify: 'both modified:   ',
  AddAdd: 'both added:      ',
  DeleteModify: 'deleted by us:   ',
  ModifyDelete: 'deleted by them: ',
};

export function register(program: Command, cli: Cli): void {
  program
    .command('status')
    .description('Show the working tree status')
    .option('-s, --short', 'give the output in the short format')
    .option('-b, --branch', 'show the branch and its upstream in the short format')
    .option('--porcelain', 'machine-readable short format')
    .option('--json', 'print the status as JSON')
    .option('-u, --untracked-files <mode>', 'no or normal', 'normal')
    .action(
      async (opts: {
        short?: boolean;
        branch?: boolean;
        porcelain?: boolean;
        json?: boolean;
        untrackedFiles: string;
      }) => {
        const repo = await cli.openRepo();
        const result = await status(repo, { untracked: opts.untrackedFiles !== 'no' });
        if (
          repo.config('core.fsmonitor') === true &&
          !cli.env['MEDIAGIT_FSMONITOR_DAEMON'] &&
          repo.workTree
        ) {
          // The next status will be answered by the daemon (docs/design.md).
          const { startDaemonProcess } = await import('./fsmonitor.ts');
          startDaemonProcess(cli, repo.gitDir);
        }
        if (opts.json) {
          printJson(cli, result);
          return;
        }
        if (opts.short || opts.porcelain) {
          const codes = new Map<string, [string, string]>();
          for (const c of result.unmerged) {
            const code = UNMERGED_SHORT[c.type];
            codes.set(c.path, [code[0]!, code[1]!]);
          }
          for (const c of result.staged) codes.set(c.path, [SHORT[c.change], ' ']);
          for (const c of result.unstaged)
            codes.set(c.path, [codes.get(c.path)?.[0] ?? ' ', SHORT[c.change]]);
          const lines = [...codes]
            .sort(([a], [b]) => (a < b ? -1 : 1))
            .map(([p, [x, y]]) => `${x}${y} ${quote(p)}`);
          for (const p of result.untracked) lines.push(`?? ${quote(p)}`);
          if (opts.branch) lines.unshift(await branchLine(repo, result.branch, result.head));
          if (lines.length > 0) cli.out(lines.join('\n'));
          return;
        }
        // Lockable files changed here: who holds their locks (lock-holders.ts).
        const modified = [...result.staged, ...result.unstaged].filter(
          (c) => c.change === 'modified',
        );
        const holders = await lockHolders(
          cli,
          repo,
          modified.map((c) => c.path),
          result.branch,
        );
        const held = (p: string): string =>
          holders.has(p) ? ` (locked by ${holders.get(p)!})` : '';
        const lines: string[] = [];
        lines.push(
          result.branch
            ? `On branch ${result.branch}`
            : `HEAD detached at ${result.head?.slice(0, 7)}`,
        );
        if (result.branch && result.head) {
          const tracking = await trackingOf(repo, result.branch);
          if (tracking) lines.push(...trackingLines(tracking));
        }
        const sparseLine = await sparseSummary(repo);
        if (sparseLine) lines.push(sparseLine);
        if (!result.head) lines.push('', 'No commits yet');
        if (result.unmerged.length > 0) {
          lines.push(
            'You have unmerged paths.',
            '  (fix conflicts and run "mediagit commit")',
            '  (use "mediagit merge --abort" to abort the merge)',
            '',
            'Unmerged paths:',
            '  (use "mediagit add <file>..." to mark resolution)',
          );
          for (const c of result.unmerged)
            lines.push(paint(cli, 'red', `\t${UNMERGED_LONG[c.type]}${quotePath(c.path)}`));
        }
        if (result.staged.length > 0) {
          lines.push(
            '',
            'Changes to be committed:',
            '  (use "mediagit restore --staged <file>..." to unstage)',
          );
          for (const c of result.staged)
            lines.push(
              paint(cli, 'green', `\t${LONG[c.change]}${quotePath(c.path)}${held(c.path)}`),
            );
        }
        if (result.unstaged.length > 0) {
          lines.push(
            '',
            'Changes not staged for commit:',
            '  (use "mediagit add <file>..." to update what will be committed)',
          );
          for (const c of result.unstaged)
            lines.push(paint(cli, 'red', `\t${LONG[c.change]}${quotePath(c.path)}${held(c.path)}`));
        }
        if (result.untracked.length > 0) {
          lines.push(
            '',
            'Untracked files:',
            '  (use "mediagit add <file>..." to include in what will be committed)',
          );
          for (const p of result.untracked) lines.push(paint(cli, 'red', `\t${quotePath(p)}`));
        }
        if (
          result.staged.length === 0 &&
          result.unstaged.length === 0 &&
          result.unmerged.length === 0
        ) {
          lines.push('');
          if (result.untracked.length > 0)
            lines.push(
              'nothing added to commit but untracked files present (use "mediagit add" to track)',
            );
          else if (!result.head)
            lines.push('nothing to commit (create/copy files and use "mediagit add" to track)');
          else lines.push('nothing to commit, working tree clean');
        } else if (result.staged.length === 0) {
          lines.push(
            '',
            'no changes added to commit (use "mediagit add" and/or "mediagit commit -a")',
          );
        }
        cli.out(lines.join('\n'));
      },
    );
}

/**
 * A path as `git status --short` prints it: C-quoted (octal for bytes outside
 * ASCII, core.quotePath's default) when it holds unusual characters, and in
 * quotes when it holds a space.
 */
export function quote(p: string): string {
  const quoted = quotePath(p);
  return quoted === p && p.includes(' ') ? `"${p}"` : quoted;
}

/** `## main...origin/main [ahead 1, behind 2]`, the first line of `status -sb`. */
async function branchLine(
  repo: Repository,
  branch: string | undefined,
  head: string | undefined,
): Promise<string> {
  if (branch === undefined) return '## HEAD (no branch)';
  if (head === undefined) return `## No commits yet on ${branch}`;
  const tracking = await trackingOf(repo, branch);
  if (!tracking) return `## ${branch}`;
  const state = aheadBehindText(tracking);
  return `## ${branch}...${tracking.upstream}${state ? ` [${state}]` : ''}`;
}

/** Git's paragraph about the upstream, under "On branch x". */
function trackingLines(t: Tracking): string[] {
  const up = `'${t.upstream}'`;
  const commits = (n: number): string => `${n} commit${n === 1 ? '' : 's'}`;
  if (!t.exists) {
    return [
      `Your branch is based on ${up}, but the upstream is gone.`,
      '  (use "mediagit branch --unset-upstream" to fixup)',
    ];
  }
  if (t.ahead > 0 && t.behind > 0) {
    return [
      `Your branch and ${up} have diverged,`,
      `and have ${t.ahead} and ${t.behind} different commits each, respectively.`,
      '  (use "mediagit pull" if you want to integrate the remote branch with yours)',
    ];
  }
  if (t.ahead > 0) {
    return [
      `Your branch is ahead of ${up} by ${commits(t.ahead)}.`,
      '  (use "mediagit push" to publish your local commits)',
    ];
  }
  if (t.behind > 0) {
    return [
      `Your branch is behind ${up} by ${commits(t.behind)}, and can be fast-forwarded.`,
      '  (use "mediagit pull" to update your local branch)',
    ];
  }
  return [`Your branch is up to date with ${up}.`];
}

/** Git's line for a sparse checkout: the share of tracked files inside the patterns. */
async function sparseSummary(repo: Repository): Promise<string | undefined> {
  const sparse = await loadSparse(repo);
  if (!sparse) return undefined;
  const index = await StagingIndex.load(repo.gitDir, { shared: repo.context.shareIndex === true });
  const total = index.entries.size;
  if (total === 0) return 'You are in a sparse checkout.';
  let inside = 0;
  for (const p of index.entries.keys()) if (sparse.includes(p)) inside++;
  // Git's arithmetic: 100 less the rounded-down share of files left out.
  const percent = 100 - Math.floor((100 * (total - inside)) / total);
  return `You are in a sparse checkout with ${percent}% of tracked files present.`;
}
