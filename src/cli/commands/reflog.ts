import type { Command } from 'commander';
import { MediaGitError } from '../../errors.ts';
import {
  DEFAULT_REFLOG_EXPIRE_MS,
  DEFAULT_REFLOG_EXPIRE_UNREACHABLE_MS,
  reflogExpire,
} from '../../repo/reflog-expire.ts';
import { Refs } from '../../repo/refs.ts';
import { resolveRefName, shortId } from '../../repo/revision.ts';
import { printJson, type Cli } from '../context.ts';
import { expiryInstant } from '../pretty.ts';

interface ReflogFlags {
  maxCount?: number;
  json?: boolean;
  expire?: string;
  expireUnreachable?: string;
  all?: boolean;
  dryRun?: boolean;
  verbose?: boolean;
}

export function register(program: Command, cli: Cli): void {
  program
    .command('reflog')
    .description('Show where HEAD or a branch has been (every lost commit can be found here)')
    .argument('[args...]', '[show] [<ref>] | expire [<ref>...]')
    .option('-n, --max-count <n>', 'show at most n entries', (v) => Number(v))
    .option('--json', 'print the entries as JSON')
    .option('--expire <time>', 'expire: drop entries older than time (default 90.days.ago)')
    .option(
      '--expire-unreachable <time>',
      'expire: drop entries not reachable from the ref older than time (default 30.days.ago)',
    )
    .option('--all', 'expire: every reflog')
    .option('--dry-run', 'expire: report, change nothing')
    .option('--verbose', 'expire: name each reflog changed')
    .action(async (args: string[], opts: ReflogFlags) => {
      if (args[0] === 'expire') return expire(cli, args.slice(1), opts);
      const operands = args[0] === 'show' ? args.slice(1) : args;
      if (operands.length > 1) {
        throw new MediaGitError('REFLOG_USAGE', 'reflog takes at most one ref', { kind: 'usage' });
      }
      const repo = await cli.openRepo();
      const given = operands[0] ?? 'HEAD';
      const name = await resolveRefName(repo, given);
      if (name === undefined) {
        throw new MediaGitError('UNKNOWN_REF', `ambiguous argument '${given}': unknown revision`, {
          kind: 'usage',
        });
      }
      const label = name === 'HEAD' ? 'HEAD' : name.replace(/^refs\/(heads|tags)\//, '');
      let entries = await new Refs(repo).log(name);
      if (opts.maxCount !== undefined) entries = entries.slice(0, opts.maxCount);
      if (opts.json) {
        printJson(
          cli,
          entries.map((e, n) => ({
            selector: `${label}@{${n}}`,
            id: e.newId,
            previous: e.oldId,
            message: e.message,
          })),
        );
        return;
      }
      const lines = entries.map((e, n) => `${shortId(e.newId)} ${label}@{${n}}: ${e.message}`);
      if (lines.length > 0) cli.out(lines.join('\n'));
    });
}

/** `reflog expire`: Git's defaults (90 / 30 days, or gc.reflogExpire / gc.reflogExpireUnreachable). */
async function expire(cli: Cli, operands: string[], opts: ReflogFlags): Promise<void> {
  const repo = await cli.openRepo();
  if (!opts.all && operands.length === 0) {
    throw new MediaGitError('REFLOG_USAGE', 'reflog expire: name a ref or use --all', {
      kind: 'usage',
    });
  }
  const refs: string[] = [];
  for (const given of opts.all ? [] : operands) {
    const name = await resolveRefName(repo, given);
    if (name === undefined) {
      throw new MediaGitError('UNKNOWN_REF', `reflog could not find ref ${given}`, {
        kind: 'usage',
      });
    }
    refs.push(name);
  }
  const now = Date.now();
  const setting = (flag: string | undefined, key: string): string | undefined => {
    const value = flag ?? repo.config(key);
    return value === undefined ? undefined : String(value);
  };
  const result = await reflogExpire(repo, {
    expire: expiryInstant(
      setting(opts.expire, 'gc.reflogExpire'),
      now - DEFAULT_REFLOG_EXPIRE_MS,
      now,
    ),
    expireUnreachable: expiryInstant(
      setting(opts.expireUnreachable, 'gc.reflogExpireUnreachable'),
      now - DEFAULT_REFLOG_EXPIRE_UNREACHABLE_MS,
      now,
    ),
    refs: opts.all ? undefined : refs,
    dryRun: opts.dryRun === true,
  });
  if (opts.json) {
    printJson(cli, result);
    return;
  }
  if (opts.verbose || opts.dryRun) {
    const verb = opts.dryRun ? 'would prune' : 'pruned';
    for (const log of result.logs) cli.out(`${log.ref}: ${verb} ${log.removed}, kept ${log.kept}`);
  }
}
