import type { Command } from 'commander';
import { registerPick } from './pick-shared.ts';
import type { Cli } from '../context.ts';

export function register(program: Command, cli: Cli): void {
  registerPick(program, cli, 'cherry-pick');
}
