import type { Command } from 'commander';
import { locateGitRepo } from '../../git/git-command.ts';
import { serveTransferAgent } from '../../git/lfs-transfer.ts';
import type { Cli } from '../context.ts';
import { tlsClientOptions } from '../credentials.ts';

export function register(program: Command, cli: Cli): void {
  program
    .command('lfs-transfer')
    .description(
      "git-lfs's custom transfer agent (run by git-lfs, registered by 'install --lfs-agent'): moves only the chunks the other side lacks",
    )
    .action(async () => {
      const location = await locateGitRepo(cli.cwd, cli.env);
      const trace = cli.env['MEDIAGIT_TRACE']
        ? (message: string) => cli.err(`mediagit lfs-transfer: ${message}`)
        : undefined;
      const counts = await serveTransferAgent(process.stdin, process.stdout, {
        gitDir: location.gitDir,
        tls: await tlsClientOptions(cli),
        trace,
      });
      trace?.(
        `pid ${process.pid}: ${counts.objects} moved, ${counts.failed} failed, ${counts.bytesOverWire} bytes over the wire, ${counts.bytesReused} reused locally`,
      );
    });
}
