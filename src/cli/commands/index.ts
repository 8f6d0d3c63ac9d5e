/** Every verb of the CLI, in the order `mediagit --help` lists them. */
import type { Command } from 'commander';
import type { Cli } from '../context.ts';
import { register as init } from './init.ts';
import { register as add } from './add.ts';
import { register as rm } from './rm.ts';
import { register as mv } from './mv.ts';
import { register as commit } from './commit.ts';
import { register as status } from './status.ts';
import { register as log } from './log.ts';
import { register as show } from './show.ts';
import { register as diff } from './diff.ts';
import { register as branch } from './branch.ts';
import { register as switchBranch } from './switch.ts';
import { register as checkout } from './checkout.ts';
import { register as restore } from './restore.ts';
import { register as reset } from './reset.ts';
import { register as tag } from './tag.ts';
import { register as config } from './config.ts';

export const commands: ((program: Command, cli: Cli) => void)[] = [
  init,
  add,
  rm,
  mv,
  commit,
  status,
  log,
  show,
  diff,
  branch,
  switchBranch,
  checkout,
  restore,
  reset,
  tag,
  config,
];
