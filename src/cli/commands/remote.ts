import type { Command } from 'commander';
import { MediaGitError } from '../../errors.ts';
import {
  addRemote,
  listRemotes,
  removeRemote,
  renameRemote,
  setRemoteUrl,
} from '../../repo/remote.ts';
import { printJson, type Cli } from '../context.ts';

export function register(program: Command, cli: Cli): void {
  const remote = program
    .command('remote')
    .description('Manage the remotes this repository pushes to and fetches from')
    .option('-v, --verbose', 'show each remote URL')
    .option('--json', 'list the remotes as JSON')
    .action(async (opts: { verbose?: boolean; json?: boolean }) => {
      const remotes = await listRemotes(await cli.openRepo());
      if (opts.json) return printJson(cli, remotes);
      const lines = opts.verbose
        ? remotes.flatMap((r) => [`${r.name}\t${r.url} (fetch)`, `${r.name}\t${r.url} (push)`])
        : remotes.map((r) => r.name);
      if (lines.length > 0) cli.out(lines.join('\n'));
    });
  remote
    .command('add')
    .description('Add a remote')
    .argument('<name>')
    .argument('<url>', 'http(s) URL of a mediagit server repository, or a path / file:// URL')
    .action(async (name: string, url: string) => addRemote(await cli.openRepo(), name, url));
  remote
    .command('remove')
    .alias('rm')
    .description('Remove a remote and its remote-tracking branches')
    .argument('<name>')
    .action(async (name: string) => removeRemote(await cli.openRepo(), name));
  remote
    .command('rename')
    .description('Rename a remote (and its remote-tracking branches)')
    .argument('<old>')
    .argument('<new>')
    .action(async (from: string, to: string) => renameRemote(await cli.openRepo(), from, to));
  remote
    .command('set-url')
    .description("Change a remote's URL")
    .argument('<name>')
    .argument('<url>')
    .action(async (name: string, url: string) => setRemoteUrl(await cli.openRepo(), name, url));
  remote
    .command('get-url')
    .description("Print a remote's URL")
    .argument('<name>')
    .action(async (name: string) => {
      const found = (await listRemotes(await cli.openRepo())).find((r) => r.name === name);
      if (!found) {
        throw new MediaGitError('NO_SUCH_REMOTE', `no such remote '${name}'`, { kind: 'usage' });
      }
      cli.out(found.url);
    });
}
