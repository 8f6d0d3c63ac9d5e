/**
 * The `mediagit` command line: builds the command tree, runs one verb, and
 * maps whatever it throws to an exit code in one place (exit.ts).
 */
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { Command, CommanderError, Help } from 'commander';
import { readKeyFile } from '../repo/keys.ts';
import { Repository } from '../repo/repository.ts';
import { createCli, type Cli } from './context.ts';
import { EXIT_USAGE, reportError } from './exit.ts';
import { commandLoaders } from './commands/index.ts';
import { VERB_SUMMARY, type VerbSummary } from './commands/summary.ts';
import { installInterrupts } from './interrupt.ts';
import { PAGED_VERBS, pagerCommand, startPager, type Paged } from './pager.ts';
import { secretFromTerminal } from './secrets.ts';

/** Verbs after which `gc --auto` runs, as in Git: those that add objects. */
const AUTO_GC_VERBS = new Set([
  'commit',
  'merge',
  'fetch',
  'pull',
  'rebase',
  'cherry-pick',
  'revert',
  'stash',
]);

/**
 * Builds the command tree. With `verb`, only that verb is loaded; otherwise
 * all of them are (shell completion reads every verb's options).
 */
export async function buildProgram(cli: Cli, verb?: string): Promise<Command> {
  const program = baseProgram(cli);
  const loader = verb !== undefined && isVerb(verb) ? commandLoaders[verb] : undefined;
  // `--version` needs no verb.
  const loaders = loader ? [loader] : verb === '--version' ? [] : Object.values(commandLoaders);
  for (const module of await Promise.all(loaders.map((load) => load())))
    module.register(program, cli);
  return program;
}

/**
 * The command tree for the top-level help, a bare `mediagit` and an unknown
 * verb's suggestion: every verb named and described from summary.ts, none
 * loaded (loading them all takes ~800 modules and half a second).
 */
function listingProgram(cli: Cli): Command {
  const program = baseProgram(cli);
  const terms = new Map(VERB_SUMMARY.map((verb) => [verb.name, verb.term]));
  for (const verb of VERB_SUMMARY) program.command(verb.name).description(verb.description);
  // Commander's own `help [command]` keeps its default term.
  const plain = new Help();
  return program.configureHelp({
    subcommandTerm: (command) => terms.get(command.name()) ?? plain.subcommandTerm(command),
  });
}

/** Whether `name` is a verb (not merely a property every object has, such as `constructor`). */
function isVerb(name: string): boolean {
  return Object.hasOwn(commandLoaders, name);
}

function baseProgram(cli: Cli): Command {
  return new Command('mediagit')
    .description('Version control for large media files and binary assets')
    .version(packageVersion(), '--version')
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({
      writeOut: (text) => cli.out(text),
      writeErr: (text) => cli.err(text),
    });
}

/** Each verb's name, help term and description, for scripts/verb-summary.ts. */
export async function summarizeVerbs(cli: Cli = createCli()): Promise<VerbSummary[]> {
  const program = await buildProgram(cli);
  const help = program.createHelp();
  return program.commands.map((command) => ({
    name: command.name(),
    term: help.subcommandTerm(command),
    description: command.description(),
  }));
}

/** The version in package.json (the launcher answers a lone `--version` from it too). */
function packageVersion(): string {
  const manifest = readFileSync(new URL('../../package.json', import.meta.url), 'utf8');
  return (JSON.parse(manifest) as { version: string }).version;
}

/**
 * The process entry (bin/mediagit.js): `main`, made safe to interrupt
 * (interrupt.ts).
 */
export async function run(argv: readonly string[]): Promise<number> {
  installInterrupts();
  return main(argv);
}

export async function main(argv: readonly string[], cli: Cli = createCli()): Promise<number> {
  const global = globalOptions(argv, cli);
  if (typeof global === 'number') return global;
  ({ argv, cli } = global);
  let paged: Paged | undefined;
  if (
    !global.noPager &&
    PAGED_VERBS.has(argv[0] ?? '') &&
    process.stdout.isTTY === true &&
    !argv.includes('--json') &&
    // `show <rev>:<path>` streams a file's bytes: straight to the terminal.
    !(argv[0] === 'show' && argv.some((arg) => arg.includes(':')))
  ) {
    const pager = await pagerCommand(cli);
    if (pager !== undefined && secretFromTerminal(cli.env)) {
      // An encrypted repository's passphrase is asked before the pager takes the terminal.
      const repo = await Repository.discover(cli.cwd, { ...cli.repoContext, locked: true }).catch(
        () => undefined,
      );
      if (repo?.encrypted)
        await cli.repoContext.secrets?.('unlock', await readKeyFile(repo.gitDir));
    }
    if (pager !== undefined) {
      paged = startPager(cli, pager);
      cli = paged.cli;
    }
  }
  try {
    return await runVerb(argv, cli);
  } finally {
    await paged?.finish();
  }
}

async function runVerb(argv: readonly string[], cli: Cli): Promise<number> {
  // `-v` is `version`, as in Git (2.42 and later).
  if (argv.length === 1 && argv[0] === '-v') argv = ['version'];
  if (argv.length === 0) {
    // A bare `mediagit`: the help, and exit 1, as a bare `git` does.
    cli.out(listingProgram(cli).helpInformation());
    return 1;
  }
  if (argv[0] === 'help' && argv[1] !== undefined && !isVerb(argv[1])) {
    cli.err(`mediagit: '${argv[1]}' is not a mediagit command. See 'mediagit --help'.`);
    return 1;
  }
  let code = 0;
  try {
    // `help <verb>` needs only that verb; a verb, only itself; the rest
    // (`--help`, `help`, an unknown verb) only the list of verbs.
    const verb = argv[0] === 'help' ? argv[1] : argv[0];
    const program =
      verb !== undefined && (isVerb(verb) || verb === '--version')
        ? await buildProgram(cli, verb)
        : listingProgram(cli);
    await program.parseAsync([...argv], { from: 'user' });
    if (AUTO_GC_VERBS.has(argv[0] ?? '')) await (await import('./auto-gc.ts')).autoGc(cli);
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
  return code;
}

/**
 * Git's options before the verb: `-C <path>` (run as if started there; each
 * one relative to the last), `--color[=always|never|auto]`, `--no-color`, and
 * `--no-pager` (pager.ts). Returns an exit code for a
 * bad one.
 */
function globalOptions(
  argv: readonly string[],
  cli: Cli,
): { argv: readonly string[]; cli: Cli; noPager: boolean } | number {
  let rest = argv;
  let current = cli;
  let noPager = false;
  while (rest.length > 0 && rest[0]!.startsWith('-')) {
    const option = rest[0]!;
    if (option === '-C') {
      const target = rest[1];
      if (target === undefined) {
        cli.err('error: -C needs a path');
        return EXIT_USAGE;
      }
      const cwd = path.resolve(current.cwd, target);
      if (!statSync(cwd, { throwIfNoEntry: false })?.isDirectory()) {
        cli.err(`fatal: cannot change to '${target}': No such directory`);
        return 128;
      }
      const context = current.repoContext;
      current = { ...current, cwd, openRepo: () => Repository.discover(cwd, context) };
      rest = rest.slice(2);
    } else if (option === '--no-pager') {
      noPager = true;
      rest = rest.slice(1);
    } else if (option === '--no-color' || option.startsWith('--color')) {
      const when = option === '--no-color' ? 'never' : (option.split('=')[1] ?? 'always');
      if (!['always', 'never', 'auto'].includes(when)) {
        cli.err(`error: --color takes always, never or auto (not '${when}')`);
        return EXIT_USAGE;
      }
      const color = when === 'auto' ? current.color : when === 'always';
      current = { ...current, color };
      rest = rest.slice(1);
    } else break;
  }
  return { argv: rest, cli: current, noPager };
}
