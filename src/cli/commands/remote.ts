import type { Command } from 'commander';
import { MediaGitError } from '../../errors.ts';
import {
  addRemote,
  listRemotes,
  removeRemote,
  renameRemote,
  setRemoteUrl,
} from '../../repo/remote.ts';
import { pruneRemote } from '../../protocol/remote-prune.ts';
import { showRemote, type RemoteState } from '../../protocol/remote-show.ts';
import { printJson, type Cli } from '../context.ts';
import { transportOptions } from '../credentials.ts';

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
  remote
    .command('show')
    .description(
      'Show a remote: its HEAD and branches, and how the local branches stand against them',
    )
    .argument('[names...]', 'configured remotes (none: list them)')
    .option('-n', 'do not contact the remote: show what this repository knows')
    .option('--json', 'print the result as JSON')
    .action(async (names: string[], opts: { n?: boolean; json?: boolean }) => {
      const repo = await cli.openRepo();
      // Options after the verb reach `remote` first, which has a --json of its own.
      const json = opts.json === true || remote.opts<{ json?: boolean }>().json === true;
      if (names.length === 0) {
        const remotes = await listRemotes(repo);
        if (json) return printJson(cli, remotes);
        if (remotes.length > 0) cli.out(remotes.map((r) => r.name).join('\n'));
        return;
      }
      const states: RemoteState[] = [];
      for (const name of names) {
        const query = opts.n !== true;
        const found = (await listRemotes(repo)).find((r) => r.name === name);
        const transport = query ? await transportOptions(cli, found?.url ?? name) : {};
        const state = await showRemote(repo, name, { ...transport, query });
        if (json) states.push(state);
        else cli.out(formatRemoteState(state).join('\n'));
      }
      if (json) printJson(cli, states);
    });
  remote
    .command('prune')
    .description('Delete remote-tracking branches whose branch is gone from the remote')
    .argument('<names...>')
    .option('-n, --dry-run', 'report what would be pruned, delete nothing')
    .option('--json', 'print the result as JSON')
    .action(async (names: string[], opts: { dryRun?: boolean; json?: boolean }) => {
      const repo = await cli.openRepo();
      const json = opts.json === true || remote.opts<{ json?: boolean }>().json === true;
      const results = [];
      for (const name of names) {
        const found = (await listRemotes(repo)).find((r) => r.name === name);
        const transport = await transportOptions(cli, found?.url ?? name);
        const result = await pruneRemote(repo, name, {
          ...transport,
          dryRun: opts.dryRun === true,
        });
        results.push(result);
        if (json || result.pruned.length === 0) continue;
        const lines = [`Pruning ${result.name}`, `URL: ${result.url}`];
        for (const { ref } of result.pruned) {
          const short = ref.slice('refs/remotes/'.length);
          lines.push(result.dryRun ? ` * [would prune] ${short}` : ` * [pruned] ${short}`);
        }
        cli.out(lines.join('\n'));
      }
      if (json) printJson(cli, results);
    });
}

/** `remote show` in Git's layout (builtin/remote.c), naming mediagit's commands. */
function formatRemoteState(state: RemoteState): string[] {
  const lines = [
    `* remote ${state.name}`,
    `  Fetch URL: ${state.url}`,
    `  Push  URL: ${state.url}`,
    `  HEAD branch: ${state.queried ? (state.head ?? '(unknown)') : '(not queried)'}`,
  ];
  const notQueried = state.queried ? '' : ' (status not queried)';
  const branches = state.branches;
  if (branches.length > 0) {
    lines.push(`  Remote ${branches.length === 1 ? 'branch' : 'branches'}:${notQueried}`);
    const width = widest(branches.map((b) => b.name));
    for (const branch of branches) {
      if (branch.state === null) {
        lines.push(`    ${branch.name}`);
        continue;
      }
      const text =
        branch.state === 'tracked'
          ? 'tracked'
          : branch.state === 'new'
            ? `new (next fetch will store in remotes/${state.name})`
            : "stale (use 'mediagit remote prune' to remove)";
      lines.push(`    ${padBytes(branch.name, width)} ${text}`);
    }
  }
  if (state.pull.length > 0) {
    const plural = state.pull.length === 1 ? 'branch' : 'branches';
    lines.push(`  Local ${plural} configured for 'mediagit pull':`);
    const width = widest(state.pull.map((p) => p.branch));
    for (const pull of state.pull) {
      lines.push(`    ${padBytes(pull.branch, width)} merges with remote ${pull.merges}`);
    }
  }
  if (state.push === null) {
    lines.push(`  Local ref configured for 'mediagit push'${notQueried}:`);
    lines.push('    (matching) pushes to (matching)');
  } else if (state.push.length > 0) {
    const plural = state.push.length === 1 ? 'ref' : 'refs';
    lines.push(`  Local ${plural} configured for 'mediagit push':`);
    const width = widest(state.push.map((p) => p.branch));
    const width2 = widest(state.push.map((p) => p.remoteBranch));
    for (const push of state.push) {
      lines.push(
        `    ${padBytes(push.branch, width)} pushes to ${padBytes(push.remoteBranch, width2)} (${push.status})`,
      );
    }
  }
  return lines;
}

/** Git pads with printf's `%-*s`, which counts bytes. */
function padBytes(text: string, width: number): string {
  return text + ' '.repeat(Math.max(0, width - Buffer.byteLength(text)));
}

function widest(names: readonly string[]): number {
  return Math.max(0, ...names.map((name) => Buffer.byteLength(name)));
}
