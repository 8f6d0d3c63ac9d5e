import type { Command } from 'commander';
import { MediaGitError } from '../../errors.ts';
import type { Cli } from '../context.ts';

// Placeholder until the verb lands: it says so instead of pretending.
export function register(program: Command, _cli: Cli): void {
  program
    .command('diff')
    .description('(diff is not implemented yet)')
    .allowUnknownOption()
    .allowExcessArguments()
    .action(() => {
      throw new MediaGitError('NOT_IMPLEMENTED', 'diff is not implemented yet', { kind: 'usage' });
    });
}
