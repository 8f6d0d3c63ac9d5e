/**
 * The `mediagit` command line: builds the command tree, runs one verb, and
 * maps whatever it throws to an exit code in one place (exit.ts).
 */
import { Command, CommanderError } from 'commander';
import { createCli, type Cli } from './context.ts';
import { EXIT_USAGE, reportError } from './exit.ts';
import { commands } from './commands/index.ts';

export function buildProgram(cli: Cli): Command {
  const program = new Command('mediagit')
    .description('Version control for large media files and binary assets')
    .version('0.1.0', '--version')
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({
      writeOut: (text) => cli.out(text),
      writeErr: (text) => cli.err(text),
    });
  for (const register of commands) register(program, cli);
  return program;
}

export async function main(argv: readonly string[], cli: Cli = createCli()): Promise<number> {
  const program = buildProgram(cli);
  let code = 0;
  try {
    await program.parseAsync([...argv], { from: 'user' });
  } catch (error) {
    if (error instanceof CommanderError) {
      code =
        error.code === 'commander.helpDisplayed' || error.code === 'commander.version'
          ? 0
          : EXIT_USAGE;
      if (error.code === 'commander.help') code = 0;
    } else {
      code = reportError(cli, error);
    }
  }
  process.exitCode = code;
  return code;
}
