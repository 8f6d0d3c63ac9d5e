import { spawnSync } from 'node:child_process';
import fs from 'node:fs/promises';
import type { Command } from 'commander';
import { MediaGitError } from '../../errors.ts';
import {
  bisectLog,
  bisectMark,
  bisectReplay,
  bisectReset,
  bisectStart,
  type BisectStep,
} from '../../repo/bisect.ts';
import type { Repository } from '../../repo/repository.ts';
import { readCommit } from '../../repo/tree-ops.ts';
import type { Cli } from '../context.ts';
import { ExitRequest } from '../exit.ts';

const usage = (message: string) => new MediaGitError('BISECT_USAGE', message, { kind: 'usage' });

export function register(program: Command, cli: Cli): void {
  program
    .command('bisect')
    .description('Find by binary search the commit that introduced a change')
    .argument(
      '<subcommand>',
      'start | good | bad | skip | reset | log | replay <file> | run <cmd>...',
    )
    .argument('[args...]', 'revisions, a file or a command')
    .allowUnknownOption()
    .action(async (subcommand: string, args: string[]) => {
      const repo = await cli.openRepo();
      switch (subcommand) {
        case 'start': {
          const revs = args.filter((a) => a !== '--');
          await report(cli, repo, await bisectStart(repo, revs[0], revs.slice(1)));
          return;
        }
        case 'good':
        case 'bad':
        case 'skip':
          await report(cli, repo, await bisectMark(repo, subcommand, args));
          return;
        case 'reset':
          await bisectReset(repo);
          return;
        case 'log':
          cli.out((await bisectLog(repo)).trimEnd());
          return;
        case 'replay': {
          if (args.length !== 1) throw usage('bisect replay needs one file');
          await report(cli, repo, await bisectReplay(repo, await fs.readFile(args[0]!, 'utf8')));
          return;
        }
        case 'run':
          await run(cli, repo, args);
          return;
        default:
          // Bad command-line usage: Git's 129.
          throw new MediaGitError(
            'BISECT_USAGE',
            `error: unknown bisect subcommand '${subcommand}' (start, bad, good, skip, reset, log, replay, run)`,
            { kind: 'usage', data: { exitCode: 129 } },
          );
      }
    });
}

/** Prints a step as Git does; the search's end is printed with the commit's subject. */
async function report(cli: Cli, repo: Repository, step: BisectStep): Promise<void> {
  switch (step.kind) {
    case 'waiting':
      cli.out(
        `status: waiting for ${step.needs === 'both' ? 'both good and bad commits' : `a ${step.needs} commit`}`,
      );
      return;
    case 'testing': {
      const subject = (await readCommit(repo.objects, step.id)).message.split('\n')[0];
      cli.out(
        `Bisecting: ${step.left} revision${step.left === 1 ? '' : 's'} left to test after this (roughly ${step.steps} step${step.steps === 1 ? '' : 's'})`,
      );
      cli.out(`[${step.id}] ${subject}`);
      return;
    }
    case 'found': {
      const subject = (await readCommit(repo.objects, step.id)).message.split('\n')[0];
      cli.out(`${step.id} is the first bad commit`);
      cli.out(`    ${subject}`);
      return;
    }
    case 'only-skipped':
      cli.out(
        "There are only 'skip'ped commits left to test.\nThe first bad commit could be any of:",
      );
      for (const id of step.ids) cli.out(id);
      throw new ExitRequest(2);
  }
}

/** `bisect run <cmd>...`: exit 0 is good, 125 skip, 1-127 bad; anything else stops the run. */
async function run(cli: Cli, repo: Repository, command: string[]): Promise<void> {
  if (command.length === 0) throw usage('bisect run needs a command');
  for (let step: BisectStep | undefined; ;) {
    const result = spawnSync(command[0]!, command.slice(1), {
      cwd: repo.workTree,
      stdio: 'inherit',
      shell: command.length === 1,
    });
    const code = result.status ?? -1;
    if (code < 0 || code >= 128) {
      throw new MediaGitError(
        'BISECT_RUN_FAILED',
        `bisect run failed: exit code ${code} from '${command.join(' ')}' is < 0 or >= 128`,
        { kind: 'user', data: { exitCode: 1 } },
      );
    }
    step = await bisectMark(repo, code === 0 ? 'good' : code === 125 ? 'skip' : 'bad', []);
    await report(cli, repo, step);
    if (step.kind === 'found') {
      cli.out('bisect found first bad commit');
      return;
    }
    if (step.kind === 'waiting') throw usage('bisect run needs a good and a bad commit first');
  }
}
