import type { Command } from 'commander';
import { MediaGitError } from '../../errors.ts';
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
    .option('-l, --list', 'list tags, optionally matching patterns')
    .option('-n', 'show the first line of each annotation or commit message')
    .option('--sort <key>', 'order the list: refname or version:refname (v:refname), - to reverse')
    .option('--json', 'print the tag list as JSON')
    .action(
      async (
        args: string[],
        opts: {
          annotate?: boolean;
          message: string[];
          delete?: boolean;
          force?: boolean;
          list?: boolean;
          n?: boolean;
          json?: boolean;
          sort?: string;
        },
      ) => {
        const repo = await cli.openRepo();
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
