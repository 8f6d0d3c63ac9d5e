/**
 * `-X <option>` (`--strategy-option`) on merge, pull, cherry-pick and
 * revert, as in Git. MediaGit's one option so far is `media=on|off`:
 * `media=off` turns the media-aware strategies off (docs/media-merge.md), so
 * a file both sides changed is merged line by line when it is text and is a
 * plain binary conflict otherwise. Git's own options (`ours`, `theirs`,
 * `patience`, ...) are refused by name rather than ignored.
 */
import type { Command } from 'commander';
import { MediaGitError } from '../errors.ts';

export function addStrategyOption(command: Command): Command {
  return command.option(
    '-X, --strategy-option <option>',
    'merge option: media=off turns media-aware merges off (repeatable)',
    (value: string, previous: string[] = []) => [...previous, value],
  );
}

/** Whether media-aware strategies may run, from the `-X` options given (the last one wins). */
export function mediaMergeAllowed(options: readonly string[] | undefined): boolean {
  let allowed = true;
  for (const option of options ?? []) {
    const match = /^media=(on|off|true|false)$/.exec(option);
    if (!match) {
      throw new MediaGitError(
        'STRATEGY_OPTION',
        `unknown strategy option '-X${option}' (MediaGit knows media=on and media=off)`,
        { kind: 'usage' },
      );
    }
    allowed = match[1] === 'on' || match[1] === 'true';
  }
  return allowed;
}
