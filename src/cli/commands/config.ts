import type { Command } from 'commander';
import path from 'node:path';
import {
  flattenConfig,
  getConfigValue,
  parseConfigValue,
  readConfigFile,
  updateConfigFile,
} from '../../config/config.ts';
import { ExitRequest } from '../exit.ts';
import { globalConfigPath, printJson, type Cli } from '../context.ts';

export function register(program: Command, cli: Cli): void {
  program
    .command('config')
    .description('Get and set repository or global options (TOML)')
    .argument('[key]', 'option name, such as user.name')
    .argument('[value]', 'new value')
    .option('--global', "use the user's global config file")
    .option('--local', "use the repository's config file (default)")
    .option('-l, --list', 'list all options')
    .option('--unset', 'remove the option')
    .option('--json', 'print as JSON')
    .action(
      async (
        key: string | undefined,
        value: string | undefined,
        opts: { global?: boolean; list?: boolean; unset?: boolean; json?: boolean },
      ) => {
        const file = opts.global
          ? globalConfigPath(cli.env)
          : path.join((await cli.openRepo()).gitDir, 'config');
        if (opts.list || key === undefined) {
          const files = opts.global ? [file] : [globalConfigPath(cli.env), file];
          const entries: [string, unknown][] = [];
          for (const f of files) entries.push(...flattenConfig(await readConfigFile(f)));
          if (opts.json) printJson(cli, Object.fromEntries(entries));
          else if (entries.length > 0)
            cli.out(entries.map(([k, v]) => `${k}=${String(v)}`).join('\n'));
          return;
        }
        if (opts.unset) {
          if (!(await updateConfigFile(file, key, undefined))) throw new ExitRequest(5);
          return;
        }
        if (value !== undefined) {
          await updateConfigFile(file, key, parseConfigValue(key, value));
          return;
        }
        let found = getConfigValue(await readConfigFile(file), key);
        if (found === undefined && !opts.global) {
          found = getConfigValue(await readConfigFile(globalConfigPath(cli.env)), key);
        }
        if (found === undefined) throw new ExitRequest(1);
        cli.out(opts.json ? JSON.stringify(found) : String(found));
      },
    );
}
