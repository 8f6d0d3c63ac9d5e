import type { Command } from 'commander';
import { MediaGitError } from '../../errors.ts';
import type { Cli } from '../context.ts';

/** Verbs to complete branch names for (their first operand is usually a branch). */
const BRANCH_VERBS = [
  'switch',
  'checkout',
  'merge',
  'rebase',
  'branch',
  'cherry-pick',
  'revert',
  'log',
  'diff',
  'reset',
  'push',
  'pull',
  'fetch',
];

export function register(program: Command, cli: Cli): void {
  program
    .command('completion')
    .description('Print a shell completion script: eval "$(mediagit completion bash)"')
    .argument('<shell>', 'bash, zsh or fish')
    .action(async (shell: string) => {
      // Every verb and its options, from the command tree itself.
      const { buildProgram } = await import('../main.ts');
      const full = await buildProgram(cli);
      const verbs = full.commands
        .map((command) => ({
          name: command.name(),
          options: command.options.flatMap((option) =>
            [option.long, option.short].filter((flag): flag is string => flag !== undefined),
          ),
          about: command.description(),
        }))
        .filter((verb) => verb.name !== 'help')
        .sort((a, b) => (a.name < b.name ? -1 : 1));
      if (shell === 'bash') cli.out(bashScript(verbs));
      else if (shell === 'zsh')
        cli.out(`autoload -U +X bashcompinit && bashcompinit\n${bashScript(verbs)}`);
      else if (shell === 'fish') cli.out(fishScript(verbs));
      else {
        throw new MediaGitError(
          'COMPLETION_SHELL',
          `no completion for '${shell}' (bash, zsh or fish)`,
          {
            kind: 'usage',
            data: { exitCode: 129 },
          },
        );
      }
    });
}

interface Verb {
  readonly name: string;
  readonly options: readonly string[];
  readonly about: string;
}

function bashScript(verbs: readonly Verb[]): string {
  const cases = verbs
    .map((verb) => `    ${verb.name}) opts=${JSON.stringify(verb.options.join(' '))} ;;`)
    .join('\n');
  return `# mediagit completion for bash (and zsh through bashcompinit)
_mediagit() {
  local cur=\${COMP_WORDS[COMP_CWORD]} opts=
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=($(compgen -W ${JSON.stringify(verbs.map((v) => v.name).join(' '))} -- "$cur"))
    return
  fi
  case \${COMP_WORDS[1]} in
${cases}
  esac
  if [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
    return
  fi
  case \${COMP_WORDS[1]} in
    ${BRANCH_VERBS.join('|')})
      COMPREPLY=($(compgen -W "$(mediagit branch -a 2>/dev/null | sed 's/^[* ] //; s/^remotes\\///')" -- "$cur"))
      ;;
  esac
}
complete -o default -o bashdefault -F _mediagit mediagit`;
}

function fishScript(verbs: readonly Verb[]): string {
  const quote = (text: string): string => `'${text.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
  const lines = ['# mediagit completion for fish', 'complete -c mediagit -f'];
  for (const verb of verbs) {
    lines.push(
      `complete -c mediagit -n __fish_use_subcommand -a ${verb.name} -d ${quote(verb.about)}`,
    );
    for (const option of verb.options) {
      const flag = option.startsWith('--') ? `-l ${option.slice(2)}` : `-s ${option.slice(1)}`;
      lines.push(`complete -c mediagit -n '__fish_seen_subcommand_from ${verb.name}' ${flag}`);
    }
  }
  lines.push(
    `complete -c mediagit -n '__fish_seen_subcommand_from ${BRANCH_VERBS.join(' ')}' -a '(mediagit branch -a 2>/dev/null | string replace -r "^[* ] (remotes/)?" "")'`,
    "complete -c mediagit -n 'not __fish_use_subcommand' -F",
  );
  return lines.join('\n');
}
