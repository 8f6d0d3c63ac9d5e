/**
 * Git's refusals when the index has unmerged paths, one per verb: kept
 * apart from the verbs' modules so that `commit` or `stash` load only this,
 * not the merge machinery.
 */
import { MediaGitError } from '../errors.ts';
import type { ConflictRecord, UnmergedRefusal } from '../repo/merge-state.ts';
import type { Cli } from './context.ts';
import { ExitRequest, EXIT_FATAL } from './exit.ts';

const RESOLVE_HINT = [
  "hint: Fix them up in the work tree, and then use 'mediagit add/rm <file>'",
  'hint: as appropriate to mark resolution and make a commit.',
];

/**
 * Prints Git's exact refusal for an UNMERGED_PATHS error (merge-state.ts:
 * what goes to stdout, what to stderr) and stops with Git's exit code; any
 * other error is rethrown. `pop` adds the line stash pop prints. Paths are
 * printed from the repository root, unquoted, as Git's index refresh does.
 */
export function printUnmergedRefusal(
  cli: Cli,
  error: unknown,
  options: { pop?: boolean } = {},
): never {
  if (!(error instanceof MediaGitError) || error.code !== 'UNMERGED_PATHS') throw error;
  const verb = error.data['verb'] as UnmergedRefusal;
  const paths = error.data['paths'] as string[];
  const needsMerge = paths.map((p) => `${p}: needs merge`);
  switch (verb) {
    case 'commit':
    case 'merge':
    case 'pull':
      // Only commit lists the unmerged paths first, as Git's does.
      if (verb === 'commit') cli.out(paths.map((p) => `U\t${p}`).join('\n'));
      cli.err(
        [
          `error: ${error.message}`,
          ...RESOLVE_HINT,
          'fatal: Exiting because of an unresolved conflict.',
        ].join('\n'),
      );
      throw new ExitRequest(EXIT_FATAL);
    case 'cherry-pick':
    case 'revert':
      cli.err([`error: ${error.message}`, ...RESOLVE_HINT, `fatal: ${verb} failed`].join('\n'));
      throw new ExitRequest(EXIT_FATAL);
    case 'cherry-pick -n':
    case 'revert -n': {
      // Git names each unmerged stage (base, ours, theirs) by its object ID.
      const stages = (error.data['conflicts'] as ConflictRecord[]).flatMap((c) =>
        [c.base, c.ours, c.theirs].flatMap((v) => (v ? [`${c.path}: unmerged (${v.id})`] : [])),
      );
      cli.err(
        [...stages, `error: ${error.message}`, `fatal: ${verb.replace(' -n', '')} failed`].join(
          '\n',
        ),
      );
      throw new ExitRequest(EXIT_FATAL);
    }
    case 'stash':
      cli.out(
        [
          ...needsMerge,
          ...(options.pop ? ['The stash entry is kept in case you need it again.'] : []),
        ].join('\n'),
      );
      throw new ExitRequest(1);
    case 'checkout':
      cli.out(needsMerge.join('\n'));
      cli.err(`error: ${error.message}`);
      throw new ExitRequest(1);
    case 'rebase':
      cli.out(needsMerge.join('\n'));
      cli.err(
        [
          `error: ${error.message}`,
          'error: additionally, your index contains uncommitted changes.',
          'error: Please commit or stash them.',
        ].join('\n'),
      );
      throw new ExitRequest(1);
    case 'rebase --continue':
      cli.out(
        [
          ...needsMerge,
          'You must edit all merge conflicts and then',
          'mark them as resolved using mediagit add',
        ].join('\n'),
      );
      throw new ExitRequest(1);
  }
}
