import type { Command } from 'commander';
import { MediaGitError } from '../../errors.ts';
import { Refs } from '../../repo/refs.ts';
import { resolveRefName, shortId } from '../../repo/revision.ts';
import { printJson, type Cli } from '../context.ts';

export function register(program: Command, cli: Cli): void {
  program
    .command('reflog')
    .description('Show where HEAD or a branch has been (every lost commit can be found here)')
    .argument('[args...]', '[show] [<ref>]')
    .option('-n, --max-count <n>', 'show at most n entries', (v) => Number(v))
    .option('--json', 'print the entries as JSON')
    .action(async (args: string[], opts: { maxCount?: number; json?: boolean }) => {
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
