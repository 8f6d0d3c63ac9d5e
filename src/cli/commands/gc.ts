import path from 'node:path';
import type { Command } from 'commander';
import { DEFAULT_PRUNE_MS, gc, type GcResult } from '../../repo/gc.ts';
import {
  DEFAULT_REFLOG_EXPIRE_MS,
  DEFAULT_REFLOG_EXPIRE_UNREACHABLE_MS,
} from '../../repo/reflog-expire.ts';
import type { Repository } from '../../repo/repository.ts';
import { MediaGitError } from '../../errors.ts';
import { rootRepositories } from '../../protocol/root-stats.ts';
import { ServerRoot } from '../../protocol/server-root.ts';
import {
  DEFAULT_SERVER_GRACE_MS,
  serverGc,
  type ServerGcResult,
} from '../../protocol/server-gc.ts';
import { storageSettings } from '../storage-settings.ts';
import { printJson, type Cli } from '../context.ts';
import { formatBytes } from '../format-bytes.ts';
import { expiryInstant } from '../pretty.ts';
import { progressReporter } from '../progress.ts';
import { needsAutoGc } from '../auto-gc.ts';

/** Git's defaults: `gc.auto` loose objects, `gc.autoPackLimit` packs. */

interface GcFlags {
  prune?: string | boolean;
  aggressive?: boolean;
  dryRun?: boolean;
  auto?: boolean;
  quiet?: boolean;
  json?: boolean;
  root?: string;
  repo?: string;
}

export function register(program: Command, cli: Cli): void {
  program
    .command('gc')
    .description('Remove unreachable objects, pack the rest and clean up after crashed commands')
    .option(
      '--prune [date]',
      'prune unreachable objects older than date (default: 2.weeks.ago; "now")',
    )
    .option('--no-prune', 'do not prune unreachable objects')
    .option('--aggressive', 'rewrite every pack into one and recompute deltas')
    .option('--dry-run', 'report what would be removed; change nothing')
    .option('--auto', 'only run if the repository needs it (gc.auto, gc.autoPackLimit)')
    .option('-q, --quiet', 'print nothing but errors')
    .option('--json', 'print the result as JSON')
    .option(
      '--root <dir|url>',
      'collect the repositories of a server root (a folder or storage URL)',
    )
    .option('--repo <name>', 'with --root: only this repository')
    .action(async (opts: GcFlags) => {
      if (opts.repo !== undefined && opts.root === undefined) {
        throw new MediaGitError('USAGE', 'error: --repo needs --root', {
          kind: 'usage',
          data: { exitCode: 129 },
        });
      }
      if (opts.root !== undefined) {
        await rootGc(cli, opts.root, opts);
        return;
      }
      const repo = await cli.openRepo();
      if (repo.bare) {
        // A bare repository is what a server serves: collected as one, with
        // the grace window and fence of server gc (docs/gc.md).
        if (opts.auto) return;
        await rootGc(cli, path.dirname(repo.gitDir), {
          ...opts,
          repo: path.basename(repo.gitDir),
        });
        return;
      }
      if (opts.auto) {
        if (!(await needsAutoGc(repo))) return;
        if (!opts.quiet) {
          cli.err('Auto packing the repository for optimum performance.');
          cli.err('See "mediagit help gc" for manual housekeeping.');
        }
      }
      const now = Date.now();
      const pruneText =
        opts.prune === false
          ? 'never'
          : typeof opts.prune === 'string'
            ? opts.prune
            : configText(repo, 'gc.pruneExpire');
      const progress = progressReporter(cli, 'Packing objects', { quiet: opts.quiet === true });
      let result: GcResult;
      try {
        result = await gc(repo, {
          pruneBefore: expiryInstant(pruneText, now - DEFAULT_PRUNE_MS, now),
          reflog: {
            expire: expiryInstant(
              configText(repo, 'gc.reflogExpire'),
              now - DEFAULT_REFLOG_EXPIRE_MS,
              now,
            ),
            expireUnreachable: expiryInstant(
              configText(repo, 'gc.reflogExpireUnreachable'),
              now - DEFAULT_REFLOG_EXPIRE_UNREACHABLE_MS,
              now,
            ),
          },
          aggressive: opts.aggressive === true,
          dryRun: opts.dryRun === true,
          onProgress: (event) => {
            if (event.phase === 'Packing') progress.update(event);
          },
        });
      } finally {
        progress.stop();
      }
      if (opts.json) {
        printJson(cli, {
          ...result,
          pack: result.pack ?? null,
          skipped: result.skipped ?? null,
          deltas: result.deltas
            ? { ...result.deltas, skipped: result.deltas.skipped ?? null }
            : null,
        });
        return;
      }
      if (result.skipped) cli.err(`warning: ${result.skipped}`);
      if (opts.quiet) return;
      const would = opts.dryRun ? 'Would remove' : 'Removed';
      cli.out(
        `${would} ${result.prunedObjects} unreachable object${result.prunedObjects === 1 ? '' : 's'}` +
          (result.reflogEntriesExpired > 0
            ? ` and ${result.reflogEntriesExpired} expired reflog entr${result.reflogEntriesExpired === 1 ? 'y' : 'ies'}`
            : ''),
      );
      if (!opts.dryRun) {
        if (result.pack)
          cli.out(`Packed ${result.packedObjects} objects into pack-${result.pack}.pack`);
        const deltas = result.deltas;
        if (deltas?.skipped) cli.err(`warning: deltas not recomputed: ${deltas.skipped}`);
        else if (deltas) {
          cli.out(
            `Recomputed deltas of ${deltas.considered} object${deltas.considered === 1 ? '' : 's'}: ` +
              `${deltas.deltasMade} new delta${deltas.deltasMade === 1 ? '' : 's'}, ` +
              (deltas.bytesSaved >= 0
                ? `${formatBytes(deltas.bytesSaved)} saved`
                : `${formatBytes(-deltas.bytesSaved)} more stored`),
          );
        }
        cli.out(
          `Stored ${formatBytes(result.bytesBefore)} -> ${formatBytes(result.bytesAfter)} ` +
            `(${result.reachable} reachable objects)`,
        );
      }
    });
}

/**
 * `gc --root`: server gc of every repository of a root (or `--repo`'s).
 * `--prune=<date>` deletes what an earlier run found unreachable before
 * that date (default: an hour ago); `--prune=now` deletes what this run
 * finds; `--no-prune` only records what is unreachable.
 */
async function rootGc(cli: Cli, location: string, opts: GcFlags): Promise<void> {
  if (opts.aggressive || opts.auto) {
    throw new MediaGitError(
      'USAGE',
      `error: --${opts.aggressive ? 'aggressive' : 'auto'} does not apply to --root`,
      { kind: 'usage', data: { exitCode: 129 } },
    );
  }
  const now = Date.now();
  const pruneText =
    opts.prune === false ? 'never' : typeof opts.prune === 'string' ? opts.prune : undefined;
  const pruneBefore = expiryInstant(pruneText, now - DEFAULT_SERVER_GRACE_MS, now);
  const immediate = pruneBefore > now;
  const root = ServerRoot.open(location, {
    cwd: cli.cwd,
    settings: await storageSettings(cli.env),
  });
  const names = await rootRepositories(root, opts.repo);
  const results: ServerGcResult[] = [];
  for (const name of names) {
    const progress = progressReporter(cli, `Collecting ${name}`, {
      quiet: opts.quiet === true || opts.json === true,
    });
    try {
      results.push(
        await serverGc(root.repo(name), name, {
          pruneBefore,
          immediate,
          dryRun: opts.dryRun === true,
          graceMs: Number.isFinite(pruneBefore)
            ? Math.max(0, now - pruneBefore)
            : DEFAULT_SERVER_GRACE_MS,
          onProgress: (event) => progress.update({ bytes: event.done, total: event.total }),
        }),
      );
    } finally {
      progress.stop();
    }
  }
  if (opts.json) {
    printJson(cli, { root: root.label, repositories: results });
    return;
  }
  if (opts.quiet) return;
  const would = opts.dryRun ? 'would remove' : 'removed';
  for (const r of results) {
    cli.out(
      `${r.repo}: ${would} ${r.deletedObjects} loose object${r.deletedObjects === 1 ? '' : 's'} and ` +
        `${r.deletedPacks} pack${r.deletedPacks === 1 ? '' : 's'}` +
        (r.rewrittenPacks > 0
          ? `, rewrote ${r.rewrittenPacks} (${r.copiedObjects} live objects copied)`
          : '') +
        `; ${r.pendingObjects + r.pendingPacks} left for a later run; ` +
        `stored ${formatBytes(r.bytesBefore)} -> ${formatBytes(r.bytesAfter)} (${r.reachable} reachable objects)`,
    );
  }
}

function configText(repo: Repository, key: string): string | undefined {
  const value = repo.config(key);
  return value === undefined ? undefined : String(value);
}
