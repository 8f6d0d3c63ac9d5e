import { spawn } from 'node:child_process';
import type { Command } from 'commander';
import { askDaemon, daemonPid } from '../fsmonitor-client.ts';
import { runDaemon } from '../fsmonitor-daemon.ts';
import { ExitRequest } from '../exit.ts';
import type { Cli } from '../context.ts';

/** Starts the daemon for this work tree in the background (detached), if none runs. */
export function startDaemonProcess(cli: Cli, gitDir: string): void {
  if (daemonPid(gitDir) !== undefined) return;
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
      // Ready once it answers (it has walked the tree and is watching).
      for (let i = 0; i < 50; i++) {
        if (
          daemonPid(repo.gitDir) !== undefined &&
          askDaemon(['status', '--porcelain'], cli.cwd, cli.env, false)
        ) {
          return;
        }
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      cli.err('error: the fsmonitor daemon did not start');
      throw new ExitRequest(1);
    });
  fsmonitor
    .command('stop')
    .description('stop the daemon for this working tree')
    .action(async () => {
      const repo = await cli.openRepo();
      const pid = daemonPid(repo.gitDir);
      if (pid === undefined) return;
      if (!askDaemon(['fsmonitor-stop'], cli.cwd, cli.env, false)) process.kill(pid, 'SIGTERM');
    });
  fsmonitor
    .command('status')
    .description('tell whether a daemon is watching this working tree')
    .action(async () => {
      const repo = await cli.openRepo();
      const where = repo.workTree ?? repo.gitDir;
      if (
        daemonPid(repo.gitDir) !== undefined &&
        askDaemon(['status', '--porcelain'], cli.cwd, cli.env, false)
      ) {
        cli.out(`fsmonitor-daemon is watching '${where}'`);
      } else {
        cli.out(`fsmonitor-daemon is not watching '${where}'`);
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
