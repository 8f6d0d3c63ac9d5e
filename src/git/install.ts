/**
 * Registering the MediaGit filter with Git (`mediagit install`) and taking
 * it out again (`mediagit uninstall`), in the user's global config or one
 * repository's, plus the pre-push hook that uploads content before Git
 * pushes the pointers that name it.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { MediaGitError, hasErrnoCode } from '../errors.ts';
import { FILTER_NAME } from './attributes.ts';
import { git, runGit } from './git-command.ts';

export type ConfigScope = 'global' | 'local';

export const FILTER_CONFIG: readonly (readonly [string, string])[] = [
  [`filter.${FILTER_NAME}.clean`, 'mediagit filter clean -- %f'],
  [`filter.${FILTER_NAME}.smudge`, 'mediagit filter smudge -- %f'],
  [`filter.${FILTER_NAME}.process`, 'mediagit filter-process'],
  [`filter.${FILTER_NAME}.required`, 'true'],
];

const HOOK_MARK = '# installed by mediagit';
export const PRE_PUSH_HOOK = `#!/bin/sh
${HOOK_MARK}: uploads MediaGit content before Git pushes the pointers naming it
command -v mediagit >/dev/null 2>&1 || { printf >&2 "\\n%s\\n\\n" "This repository is configured for MediaGit but 'mediagit' was not found on your PATH. Install it, or remove .git/hooks/pre-push."; exit 2; }
exec mediagit pre-push "$@"
`;

export interface InstallResult {
  readonly scope: ConfigScope;
  readonly hook: 'installed' | 'present' | 'foreign' | 'none';
}

export async function installFilter(
  cwd: string,
  env: NodeJS.ProcessEnv,
  scope: ConfigScope,
  gitDir: string | undefined,
): Promise<InstallResult> {
  if (scope === 'local' && !gitDir) {
    throw new MediaGitError('NOT_A_GIT_REPO', 'install --local must run inside a Git repository', {
      kind: 'usage',
    });
  }
  for (const [key, value] of FILTER_CONFIG) {
    await git(['config', `--${scope}`, '--replace-all', key, value], { cwd, env });
  }
  let hook: InstallResult['hook'] = 'none';
  if (gitDir) hook = await installHook(gitDir, cwd);
  return { scope, hook };
}

/** Where Git runs hooks from (core.hooksPath resolved as Git resolves it), asked from `cwd`. */
async function hooksDir(gitDir: string, cwd: string): Promise<string> {
  const answer = await runGit(['rev-parse', '--git-path', 'hooks'], { cwd });
  const value = answer.stdout.toString('utf8').trim();
  return answer.code === 0 && value ? path.resolve(cwd, value) : path.join(gitDir, 'hooks');
}

/**
 * Installs the pre-push hook unless a hook is there already (ours or not).
 * `install`, `track` and the filters call it, as git-lfs does, so a
 * repository cloned or set up after a global install still uploads at push.
 */
export async function installHook(gitDir: string, cwd = gitDir): Promise<InstallResult['hook']> {
  const dir = await hooksDir(gitDir, cwd);
  const file = path.join(dir, 'pre-push');
  const existing = await fs.readFile(file, 'utf8').catch((error: unknown) => {
    if (hasErrnoCode(error, 'ENOENT')) return undefined;
    throw error;
  });
  if (existing !== undefined) return existing.includes(HOOK_MARK) ? 'present' : 'foreign';
  await fs.mkdir(dir, { recursive: true });
  try {
    await fs.writeFile(file, PRE_PUSH_HOOK, { mode: 0o755, flag: 'wx' });
  } catch (error) {
    if (hasErrnoCode(error, 'EEXIST')) return 'present'; // a concurrent filter made it
    throw error;
  }
  return 'installed';
}

export async function uninstallFilter(
  cwd: string,
  env: NodeJS.ProcessEnv,
  scope: ConfigScope,
  gitDir: string | undefined,
): Promise<{ removedConfig: boolean; removedHook: boolean }> {
  if (scope === 'local' && !gitDir) {
    throw new MediaGitError(
      'NOT_A_GIT_REPO',
      'uninstall --local must run inside a Git repository',
      { kind: 'usage' },
    );
  }
  const result = await runGit(
    ['config', `--${scope}`, '--remove-section', `filter.${FILTER_NAME}`],
    { cwd, env },
  );
  let removedHook = false;
  if (gitDir) {
    const file = path.join(await hooksDir(gitDir, cwd), 'pre-push');
    const existing = await fs.readFile(file, 'utf8').catch(() => undefined);
    if (existing?.includes(HOOK_MARK)) {
      await fs.rm(file, { force: true });
      removedHook = true;
    }
  }
  return { removedConfig: result.code === 0, removedHook };
}
