/**
 * Where the user typed `--` among a command's operands.
 *
 * Commander drops a literal `--` while parsing, but `checkout`, `reset` and
 * `restore` give it meaning (what comes after is a path, never a revision),
 * so the split is recovered from the arguments the program was given.
 */
import type { Command } from 'commander';

/**
 * Splits `operands` (as Commander passed them to the action) at the user's
 * `--`; `after` is undefined when there was none.
 */
export function splitAtDoubleDash(
  command: Command,
  operands: readonly string[],
): { before: string[]; after: string[] | undefined } {
  let root: Command = command;
  while (root.parent) root = root.parent;
  // Commander keeps the arguments it parsed on `rawArgs` (not in its typings).
  const raw: unknown = (root as unknown as { rawArgs?: unknown }).rawArgs;
  const args = Array.isArray(raw) ? raw.filter((a): a is string => typeof a === 'string') : [];
  const dash = args.indexOf('--');
  if (dash < 0) return { before: [...operands], after: undefined };
  const count = Math.min(args.length - dash - 1, operands.length);
  return {
    before: operands.slice(0, operands.length - count),
    after: operands.slice(operands.length - count),
  };
}
