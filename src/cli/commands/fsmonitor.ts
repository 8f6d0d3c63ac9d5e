import { spawn } from 'node:child_process';
import fs from 'node:fs';
import type { Command } from 'commander';
import { askDaemon, socketPathFor } from '../fsmonitor-client.ts';
import { runDaemon } from '../fsmonitor-daemon.ts';
import { ExitRequest } from '../exit.ts';
import type { Cli } from '../context.ts';

/** Starts the daemon for this work tree in the background (detached), if none runs. */
export function startDaemonProcess(cli: Cli, gitDir: string): void {
  if (fs.existsSync(socketPathFor(gitDir))) return;
  const launcher = process.argv[1];
  if (!launcher) return;
  const child = spawn(process.execPath, [launcher, 'fsmonitor', 'run'], {
    cwd: cli.cwd,
    detached: true,
    stdio: 'ignore',
    env: cli.env,
  });
  child.unref();
}

export function register(program: Command, cli: Cli): void {
  const fsmonitor = program
    .command('fsmonitor')
    .description('Manage the file-system monitor daemon that speeds up status (core.fsmonitor)');
  fsmonitor
    .command('start')
    .description('start the daemon for this working tree in the background')
    .action(async () => {
      const repo = await cli.openRepo();
      repo.requireWorkTree('fsmonitor');
      startDaemonProcess(cli, repo.gitDir);
      for (let i = 0; i < 100 && !fs.existsSync(socketPathFor(repo.gitDir)); i++) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      if (!fs.existsSync(socketPathFor(repo.gitDir))) {
        cli.err('error: the fsmonitor daemon did not start');
        throw new ExitRequest(1);
      }
    });
  fsmonitor
    .command('stop')
    .description('stop the daemon for this working tree')
    .action(async () => {
      const repo = await cli.openRepo();
      // Ask it to stop; removing the socket makes a daemon that does not answer stop too.
      await askDaemon(['fsmonitor-stop'], cli.cwd, cli.env, false);
      fs.rmSync(socketPathFor(repo.gitDir), { force: true });
    });
  fsmonitor
    .command('status')
    .description('tell whether a daemon is watching this working tree')
    .action(async () => {
      const repo = await cli.openRepo();
      const answer = await askDaemon(['status', '--porcelain'], cli.cwd, cli.env, false);
      if (answer) cli.out(`fsmonitor-daemon is watching '${repo.workTree ?? repo.gitDir}'`);
      else {
        cli.out(`fsmonitor-daemon is not watching '${repo.workTree ?? repo.gitDir}'`);
        throw new ExitRequest(1);
      }
    });
  fsmonitor
    .command('run')
    .description('run the daemon in the foreground')
    .action(async () => {
      await runDaemon(cli);
    });
}
