/**
 * The user's editor, found as Git finds it: MEDIAGIT_EDITOR (MediaGit's own
 * GIT_EDITOR), GIT_EDITOR, `core.editor`, VISUAL, EDITOR, then `vi` on a
 * terminal. The value is a shell command, run with the file appended.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { MediaGitError } from '../errors.ts';
import type { Repository } from '../repo/repository.ts';
import type { Cli } from './context.ts';

export function editorCommand(cli: Cli, repo: Repository): string | undefined {
  const configured = repo.config('core.editor');
  const candidates = [
    cli.env['MEDIAGIT_EDITOR'],
    cli.env['GIT_EDITOR'],
    typeof configured === 'string' ? configured : undefined,
    cli.env['VISUAL'],
    cli.env['EDITOR'],
  ];
  const chosen = candidates.find((value) => value !== undefined && value.trim() !== '');
  if (chosen !== undefined) return chosen;
  const dumb = !cli.env['TERM'] || cli.env['TERM'] === 'dumb';
  return dumb || process.stdin.isTTY !== true ? undefined : 'vi';
}

/**
 * Writes `text` to `.mediagit/<name>`, lets the user edit it, and returns
 * what was saved. `:` (or `true`) as the editor keeps the text as it is, as
 * in Git.
 */
export async function editText(
  cli: Cli,
  repo: Repository,
  name: string,
  text: string,
): Promise<string> {
  const editor = editorCommand(cli, repo);
  if (editor === undefined) {
    throw new MediaGitError(
      'NO_EDITOR',
      'no editor to write the message in: use -m <msg>, or set core.editor, MEDIAGIT_EDITOR, VISUAL or EDITOR',
      { kind: 'config' },
    );
  }
  const file = path.join(repo.gitDir, name);
  await fs.writeFile(file, text);
  const result = spawnSync('sh', ['-c', `${editor} "$@"`, editor, file], {
    stdio: 'inherit',
    cwd: repo.workTree ?? repo.gitDir,
    env: cli.env,
  });
  if (result.error || result.status !== 0) {
    throw new MediaGitError(
      'EDITOR_FAILED',
      `there was a problem with the editor '${editor}' (${result.error?.message ?? `exit ${result.status}`})`,
      { kind: 'user', data: { exitCode: 1 } },
    );
  }
  return fs.readFile(file, 'utf8');
}
