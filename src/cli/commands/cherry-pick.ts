import type { Command } from 'commander';
import type { Cli } from '../context.ts';
import { registerPick } from './pick-shared.ts';

export function register(program: Command, cli: Cli): void {
  registerPick(program, cli, 'cherry-pick');
}
