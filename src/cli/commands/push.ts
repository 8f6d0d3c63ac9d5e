import type { Command } from 'commander';
import { MediaGitError } from '../../errors.ts';
import { resolveRemote } from '../../protocol/fetch.ts';
import { push, type PushedRef } from '../../protocol/push.ts';
import { readOnlyAfterPush } from '../../repo/lockable-push.ts';
import { Refs } from '../../repo/refs.ts';
import { readUpstream } from '../../repo/remote.ts';
import { ExitRequest } from '../exit.ts';
import { printJson, type Cli } from '../context.ts';
import { transportOptions } from '../credentials.ts';
import { progressReporter } from '../progress.ts';
import { rangeSummary, refLine, shortRef, statsLine } from './transfer-format.ts';

interface PushFlags {
  setUpstream?: boolean;
  force?: boolean;
  forceWithLease?: string | true;
  tags?: boolean;
  delete?: boolean;
  json?: boolean;
  quiet?: boolean;
}

export function register(program: Command, cli: Cli): void {
  program
    .command('push')
    .description('Send commits to a remote and update its branches (only missing chunks travel)')
    .argument('[remote]', 'remote name or URL (default: the upstream remote, else origin)')
    .argument('[refspecs...]', '[+]<src>[:<dst>], or :<dst> to delete')
    .option('-u, --set-upstream', 'make the pushed branches track the remote ones')
    .option('-f, --force', 'allow updates that are not fast-forwards')
    .option(
      '--force-with-lease [ref:expect]',
      'force, but only if the remote ref is still what we last fetched (or <expect>)',
    )
    .option('--tags', 'push all tags')
    .option('-d, --delete', 'delete the named remote refs')
    .option('--json', 'print the result as JSON')
    .option('-q, --quiet', 'print only errors')
    .action(
      async (
        remoteArg: string | undefined,
        refspecs: string[],
        opts: PushFlags,
        command: Command,
      ) => {
        // Git takes the lease only as --force-with-lease=<ref>[:<expect>]; a
        // separate word after the flag is the remote, not the lease.
        // commander keeps the words it parsed on the root command (not in its types).
        const rawArgs = (command.parent as { rawArgs?: string[] } | null)?.rawArgs ?? [];
        if (
          typeof opts.forceWithLease === 'string' &&
          !rawArgs.some((arg) => arg.startsWith('--force-with-lease='))
        ) {
          if (remoteArg !== undefined) refspecs.unshift(remoteArg);
          remoteArg = opts.forceWithLease;
          opts.forceWithLease = true;
        }
        const repo = await cli.openRepo();
        if (opts.delete && refspecs.length === 0) {
          throw new MediaGitError('PUSH_USAGE', '--delete needs the refs to delete', {
            kind: 'usage',
          });
        }
        let remoteName = remoteArg;
        if (remoteName === undefined) {
          const head = await new Refs(repo).head();
          const branch = head.branch?.slice('refs/heads/'.length);
          remoteName = (branch ? await readUpstream(repo, branch) : undefined)?.remote ?? 'origin';
        }
        const { url } = await resolveRemote(repo, remoteName);
        const leases =
          opts.forceWithLease === undefined
            ? undefined
            : opts.forceWithLease === true
              ? [{ ref: undefined, expect: undefined }]
              : [parseLease(opts.forceWithLease)];
        const progress = progressReporter(cli, 'Uploading chunks', { quiet: opts.quiet === true });
        let result;
        try {
          result = await push(repo, {
            ...(await transportOptions(cli, url)),
            remote: remoteName,
            refspecs,
            force: opts.force === true,
            ...(leases ? { forceWithLease: leases } : {}),
            tags: opts.tags === true,
            delete: opts.delete === true,
            setUpstream: opts.setUpstream === true,
            onProgress: (done, total) => progress.update({ bytes: done, total }),
          });
        } finally {
          progress.stop();
        }
        const rejected = result.refs.some((r) => !r.ok);
        // The published edits of lockable files are done: read-only again.
        const published = result.refs.flatMap((r) =>
          r.ok && r.new !== null && r.new !== r.old && r.ref.startsWith('refs/heads/')
            ? [{ old: r.old, new: r.new }]
            : [],
        );
        const readOnly = await readOnlyAfterPush(repo, published);
        if (opts.json) {
          printJson(cli, result);
        } else if (!opts.quiet || rejected) {
          if (result.upToDate) cli.err('Everything up-to-date');
          else {
            const lines = [`To ${result.url}`];
            for (const r of result.refs) {
              const from = r.source ? shortRef(r.source) : '(delete)';
              const to = shortRef(r.ref);
              if (!r.ok) {
                // Git's words in the brackets; ours (the remote's reason) after them.
                const why =
                  r.fetchFirst === true || r.reason === 'stale'
                    ? 'fetch first'
                    : r.reason === 'non-fast-forward'
                      ? 'non-fast-forward'
                      : r.reason === 'checked-out'
                        ? 'branch is currently checked out'
                        : `${r.reason ?? 'rejected'}: ${r.message ?? ''}`.trim();
                const label = r.reason === 'checked-out' ? '[remote rejected]' : '[rejected]';
                lines.push(refLine('!', label, from, to, why));
              } else if (r.new === r.old) continue;
              else if (r.new === null) lines.push(refLine('-', '[deleted]', '', to));
              else if (r.old === null)
                lines.push(
                  refLine(
                    '*',
                    r.ref.startsWith('refs/tags/') ? '[new tag]' : '[new branch]',
                    from,
                    to,
                  ),
                );
              else {
                const forced = opts.force === true || opts.forceWithLease !== undefined;
                lines.push(
                  refLine(
                    forced ? '+' : ' ',
                    rangeSummary(r.old, r.new, forced),
                    from,
                    to,
                    forced ? 'forced update' : undefined,
                  ),
                );
              }
            }
            // Nothing sent (every ref refused before sending): no figures to give.
            if (result.refs.some((r) => r.ok && r.new !== r.old)) {
              lines.push(statsLine(result.stats, 'sent'));
            }
            cli.err(lines.join('\n'));
          }
          if (rejected) {
            cli.err(`error: failed to push some refs to '${result.url}'`);
            const hint = rejectionHint(result.refs);
            if (hint) cli.err(hint);
          }
        }
        if (readOnly.length > 0 && !opts.quiet && !opts.json) {
          cli.err(
            `Pushed lockable file${readOnly.length === 1 ? '' : 's'} now read-only (\`mediagit lock\` to edit again): ${readOnly.join(', ')}`,
          );
        }
        if (rejected) throw new ExitRequest(1);
      },
    );
}

function parseLease(value: string): { ref: string | undefined; expect: string | undefined } {
  const colon = value.indexOf(':');
  if (colon === -1) return { ref: value, expect: undefined };
  return { ref: value.slice(0, colon), expect: value.slice(colon + 1) };
}

/** Git's advice after a refused push. */
function rejectionHint(refs: readonly PushedRef[]): string | undefined {
  const refused = refs.filter((r) => !r.ok);
  if (refused.some((r) => r.fetchFirst === true || r.reason === 'stale')) {
    return [
      'hint: Updates were rejected because the remote contains work that you do not',
      'hint: have locally. This is usually caused by another repository pushing to',
      'hint: the same ref. If you want to integrate the remote changes, use',
      "hint: 'mediagit pull' before pushing again.",
    ].join('\n');
  }
  if (refused.some((r) => r.reason === 'non-fast-forward')) {
    return [
      'hint: Updates were rejected because the tip of your current branch is behind',
      'hint: its remote counterpart. If you want to integrate the remote changes,',
      "hint: use 'mediagit pull' before pushing again.",
    ].join('\n');
  }
  return undefined;
}
