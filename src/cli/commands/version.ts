import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { FORMAT_VERSION } from '../../repo/repository.ts';
import { printJson, type Cli } from '../context.ts';

export function register(program: Command, cli: Cli): void {
  program
    .command('version')
    .description('Show the version of MediaGit, the repository format it writes, and its Node.js')
    .option('--json', 'print the versions as JSON')
    .action((opts: { json?: boolean }) => {
      const manifest = readFileSync(new URL('../../../package.json', import.meta.url), 'utf8');
      const version = (JSON.parse(manifest) as { version: string }).version;
      if (opts.json) {
        printJson(cli, { version, formatVersion: FORMAT_VERSION, node: process.versions.node });
        return;
      }
      cli.out(`mediagit version ${version}`);
      cli.out(`repository format version ${FORMAT_VERSION}`);
      cli.out(`node ${process.versions.node}`);
    });
}
