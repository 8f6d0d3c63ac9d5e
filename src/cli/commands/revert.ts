import type { Command } from 'commander';
import { refuseWhileUnmerged } from './cherry-pick.ts';
import { registerPick } from './pick-shared.ts';
import type { Cli } from '../context.ts';

export function register(program: Command, cli: Cli): void {
  registerPick(program, cli, 'revert');
  refuseWhileUnmerged(program, cli, 'revert');
}
