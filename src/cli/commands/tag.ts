import type { Command } from 'commander';
import { MediaGitError } from '../../errors.ts';
import { verifyTag, type TagVerification } from '../../protocol/verify-tag.ts';
import type { Repository } from '../../repo/repository.ts';
import { shortId } from '../../repo/revision.ts';
import { createTag, deleteTags, listTags } from '../../repo/tag.ts';
import { ExitRequest } from '../exit.ts';
import { printJson, type Cli } from '../context.ts';

export function register(program: Command, cli: Cli): void {
  program
    .command('tag')
    .description('List, create or delete tags')
    .argument('[args...]', '<name> [<commit>] | -d <name>... | -l [<pattern>...]')
    .option('-a, --annotate', 'make an annotated tag (needs -m)')
    .option(
      '-m, --message <msg>',
      'tag message (repeat for paragraphs); implies -a',
      collect,
      [] as string[],
    )
    .option('-d, --delete', 'delete tags')
    .option('-f, --force', 'replace an existing tag')
    .option(
      '-v, --verify',
      'check annotated tags: the tag object and every object and chunk of the tagged snapshot',
    )
    .option('-l, --list', 'list tags, optionally matching patterns')
    .option('-n', 'show the first line of each annotation or commit message')
    .option('--sort <key>', 'order the list: refname or version:refname (v:refname), - to reverse')
    .option('--json', 'print the tag list (or the -v results) as JSON')
    .action(
      async (
        args: string[],
        opts: {
          annotate?: boolean;
          message: string[];
          delete?: boolean;
          force?: boolean;
          verify?: boolean;
          list?: boolean;
          n?: boolean;
          json?: boolean;
          sort?: string;
        },
      ) => {
        const repo = await cli.openRepo();
        if (opts.verify) return verifyTags(cli, repo, args, opts.json === true);
        if (opts.delete) {
          if (args.length === 0) {
            throw new MediaGitError('TAG_USAGE', 'tag name required', { kind: 'usage' });
          }
          let failed = false;
          for (const result of await deleteTags(repo, args)) {
            if (result.id === undefined) {
              failed = true;
              cli.err(`error: tag '${result.name}' not found.`);
            } else cli.out(`Deleted tag '${result.name}' (was ${shortId(result.id)})`);
          }
          if (failed) throw new ExitRequest(1);
          return;
        }
        if (args.length === 0 || opts.list || opts.json) {
          const tags = sortTags(await listTags(repo, { patterns: args }), opts.sort);
          if (opts.json) printJson(cli, tags);
          else if (tags.length > 0) {
            cli.out(
              tags
                .map((t) =>
                  opts.n ? `${t.name.padEnd(15)} ${t.message.split('\n')[0] ?? ''}` : t.name,
                )
                .join('\n'),
            );
          }
          return;
        }
        if (args.length > 2) {
          throw new MediaGitError('TAG_USAGE', 'too many arguments', { kind: 'usage' });
        }
        const result = await createTag(repo, {
          name: args[0]!,
          rev: args[1],
          annotate: opts.annotate === true,
          message: opts.message.length > 0 ? opts.message.join('\n\n') : undefined,
          force: opts.force === true,
        });
        if (result.previous !== undefined && result.previous !== result.id) {
          cli.out(`Updated tag '${result.name}' (was ${shortId(result.previous)})`);
        }
      },
    );
}

/**
 * `tag -v`: Git's output minus GPG. Each tag's object as `git cat-file tag`
 * prints it (stdout), then one line saying what was checked, or one line per
 * problem (stderr); exit 1 when any tag is missing, lightweight or damaged.
 */
async function verifyTags(
  cli: Cli,
  repo: Repository,
  names: readonly string[],
  json: boolean,
): Promise<void> {
  let failed = false;
  const results: VerifyJson[] = [];
  for (const name of names) {
    let result: TagVerification;
    try {
      result = await verifyTag(repo, name);
    } catch (error) {
      if (
        !(error instanceof MediaGitError) ||
        (error.code !== 'TAG_NOT_FOUND' && error.code !== 'TAG_NOT_ANNOTATED')
      ) {
        throw error;
      }
      failed = true;
      if (json) {
        const id = error.data['id'];
        results.push({
          ...verifyJson(name, undefined),
          id: typeof id === 'string' ? id : null,
          problems: [error.message],
        });
      } else cli.err(`error: ${error.message}`);
      continue;
    }
    const entry = verifyJson(name, result);
    if (!entry.verified) failed = true;
    if (json) {
      results.push(entry);
      continue;
    }
    if (result.raw !== undefined) (cli.write ?? cli.out)(result.raw.toString('utf8'));
    if (entry.verified) {
      const mib = (result.bytes / 1048576).toFixed(2);
      cli.err(
        `tag ${name}: verified (${result.objects} objects, ${result.chunks} chunks, ${mib} MiB)`,
      );
    } else {
      for (const problem of result.problems) cli.err(`error: ${name}: ${problem}`);
    }
  }
  if (json) printJson(cli, results);
  if (failed) throw new ExitRequest(1);
}

/** One tag's `tag -v --json` entry. */
interface VerifyJson {
  readonly name: string;
  readonly id: string | null;
  readonly verified: boolean;
  readonly object: string | null;
  readonly type: string | null;
  readonly objects: number;
  readonly chunks: number;
  readonly bytes: number;
  readonly problems: readonly string[];
}

function verifyJson(name: string, result: TagVerification | undefined): VerifyJson {
  return {
    name,
    id: result?.id ?? null,
    verified: result !== undefined && result.problems.length === 0,
    object: result?.target ?? null,
    type: result?.targetType ?? null,
    objects: result?.objects ?? 0,
    chunks: result?.chunks ?? 0,
    bytes: result?.bytes ?? 0,
    problems: result?.problems ?? [],
  };
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** Git's `--sort` for tags: by name (the default), or by version number (`v1.10` after `v1.9`). */
function sortTags<T extends { name: string }>(tags: T[], key: string | undefined): T[] {
  if (key === undefined) return tags;
  const reverse = key.startsWith('-');
  const field = reverse ? key.slice(1) : key;
  let compare: (a: string, b: string) => number;
  if (field === 'refname') compare = (a, b) => (a < b ? -1 : a > b ? 1 : 0);
  else if (field === 'version:refname' || field === 'v:refname') compare = compareVersions;
  else {
    throw new MediaGitError(
      'TAG_SORT',
      `unsupported sort key '${key}' (refname, version:refname; - reverses)`,
      { kind: 'usage', data: { exitCode: 129 } },
    );
  }
  const sorted = [...tags].sort((a, b) => compare(a.name, b.name));
  return reverse ? sorted.reverse() : sorted;
}

/** Compares names in runs of digits (as numbers) and of other characters (as text). */
function compareVersions(a: string, b: string): number {
  const parts = (text: string): string[] => text.match(/\d+|\D+/g) ?? [];
  const pa = parts(a);
  const pb = parts(b);
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    const x = pa[i]!;
    const y = pb[i]!;
    if (x === y) continue;
    const nx = /^\d/.test(x);
    const ny = /^\d/.test(y);
    if (nx && ny) return Number(x) - Number(y) || x.length - y.length;
    return x < y ? -1 : 1;
  }
  return pa.length - pb.length;
}
