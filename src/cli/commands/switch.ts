import type { Command } from 'commander';
import { MediaGitError } from '../../errors.ts';
import { Refs } from '../../repo/refs.ts';
import { guessRemoteBranch, setUpstream } from '../../repo/remote.ts';
import { shortId } from '../../repo/revision.ts';
import {
  switchTo,
  type HeadSummary,
  type SwitchResult,
  type SwitchTarget,
} from '../../repo/switch.ts';
import type { LocalChange } from '../../repo/worktree-update.ts';
import type { Cli } from '../context.ts';
import { progressReporter } from '../progress.ts';

export function register(program: Command, cli: Cli): void {
  program
    .command('switch')
    .description('Switch branches, bringing the index and working tree along')
    .argument('[branch]', 'branch to switch to ("-" for the previous one), or commit with --detach')
    .argument('[start-point]', 'where a new branch (-c/-C) starts; HEAD by default')
    .option('-c, --create <new-branch>', 'create a branch and switch to it')
    .option('-C, --force-create <new-branch>', 'create or reset a branch and switch to it')
    .option('-d, --detach', 'detach HEAD at the commit')
    .option('--orphan <new-branch>', 'switch to a new branch with no commits and no files')
    .option('-f, --force', 'throw away local changes (alias --discard-changes)')
    .option('--discard-changes', 'throw away local changes')
    .option('-q, --quiet', 'print nothing but errors')
    .action(
      async (
        name: string | undefined,
        start: string | undefined,
        opts: {
          create?: string;
          forceCreate?: string;
          detach?: boolean;
          orphan?: string;
          force?: boolean;
          discardChanges?: boolean;
          quiet?: boolean;
        },
      ) => {
        let target: SwitchTarget;
        const created = opts.create ?? opts.forceCreate;
        if (created !== undefined) {
          target = {
            kind: 'create',
            name: created,
            start: name,
            reset: opts.forceCreate !== undefined,
          };
        } else if (opts.orphan !== undefined) {
          target = { kind: 'orphan', name: opts.orphan };
        } else if (opts.detach) {
          target = { kind: 'detach', rev: name ?? 'HEAD' };
        } else if (name !== undefined) {
          if (start !== undefined) throw usage('too many arguments');
          target = { kind: 'branch', name };
        } else {
          throw usage('missing branch or commit argument');
        }
        const repo = await cli.openRepo();
        // Git's --guess: a branch that exists only as <remote>/<name> in one
        // remote is created there, tracking it.
        let tracking: { remote: string; ref: string } | undefined;
        if (target.kind === 'branch' && target.name !== '-') {
          const local = await new Refs(repo).read(`refs/heads/${target.name}`);
          tracking = local === undefined ? await guessRemoteBranch(repo, target.name) : undefined;
          if (tracking) target = { kind: 'create', name: target.name, start: tracking.ref };
        }
        const progress = progressReporter(cli, 'Updating files', { quiet: opts.quiet === true });
        try {
          const result = await switchTo(repo, target, {
            force: opts.force === true || opts.discardChanges === true,
            stopped: 'switch',
            reportLocalChanges: !opts.quiet,
            onProgress: progress.update,
          });
          progress.stop();
          if (tracking && target.kind === 'create') {
            await setUpstream(repo, target.name, {
              remote: tracking.remote,
              merge: `refs/heads/${target.name}`,
            });
            if (!opts.quiet) {
              cli.out(
                `branch '${target.name}' set up to track '${tracking.remote}/${target.name}'.`,
              );
            }
          }
          if (!opts.quiet) printSwitchResult(cli, result, { detachAdvice: false, target });
        } finally {
          progress.stop();
        }
      },
    );
}

function usage(message: string): MediaGitError {
  return new MediaGitError('SWITCH_USAGE', message, { kind: 'usage' });
}

export function printLocalChanges(cli: Cli, changes: readonly LocalChange[]): void {
  if (changes.length > 0) cli.out(changes.map((c) => `${c.status}\t${c.path}`).join('\n'));
}

function describeHead(summary: HeadSummary): string {
  return `${shortId(summary.id ?? '')} ${summary.subject ?? ''}`;
}

const DETACH_ADVICE = `
You are in 'detached HEAD' state. You can look around, make experimental
changes and commit them, and you can discard any commits you make in this
state without impacting any branches by switching back to a branch.

If you want to create a new branch to retain commits you create, you may
do so (now or later) by using -c with the switch command. Example:

  mediagit switch -c <new-branch-name>

Or undo this operation with:

  mediagit switch -

Turn off this advice by setting config variable advice.detachedHead to false
`;

/** Git's messages after a switch or branch checkout (stdout: local changes; stderr: the rest). */
export function printSwitchResult(
  cli: Cli,
  result: SwitchResult,
  options: { detachAdvice: boolean; target: SwitchTarget },
): void {
  printLocalChanges(cli, result.localChanges);
  const { previous, head } = result;
  const lines: string[] = [];
  if (previous.branch === undefined && previous.id !== undefined && previous.id !== head.id) {
    lines.push(`Previous HEAD position was ${describeHead(previous)}`);
  }
  const branch = head.branch ?? '';
  switch (result.outcome) {
    case 'already':
      lines.push(`Already on '${branch}'`);
      break;
    case 'switched':
      lines.push(`Switched to branch '${branch}'`);
      break;
    case 'created':
    case 'orphan':
      lines.push(`Switched to a new branch '${branch}'`);
      break;
    case 'reset':
      lines.push(
        previous.branch === head.branch
          ? `Reset branch '${branch}'`
          : `Switched to and reset branch '${branch}'`,
      );
      break;
    case 'detached':
      if (
        options.detachAdvice &&
        previous.branch !== undefined &&
        options.target.kind === 'detach'
      ) {
        lines.push(`Note: switching to '${options.target.rev}'.`, DETACH_ADVICE);
      }
      lines.push(`HEAD is now at ${describeHead(head)}`);
      break;
  }
  cli.err(lines.join('\n'));
}
