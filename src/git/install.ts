/**
 * Registering the MediaGit filter with Git (`mediagit install`) and taking
 * it out again (`mediagit uninstall`), in the user's global config or one
 * repository's, plus the hooks: pre-push uploads content before Git pushes
 * the pointers that name it; post-checkout and post-merge make the lockable
 * files Git has just written read-only (docs/locks.md), as git-lfs's do.
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
  // `merge=mediagit` (attributes.ts): media-aware merges (git/merge-driver.ts).
  [`merge.${FILTER_NAME}.name`, 'MediaGit media-aware merge'],
  [`merge.${FILTER_NAME}.driver`, 'mediagit merge-driver %O %A %B %P'],
];

/**
 * git-lfs's custom transfer agent (lfs-transfer.ts): one process per
 * transfer (`concurrent=false`), which pipelines each file itself; git-lfs
 * offers `mediagit` in its Batch requests and a MediaGit server picks it.
 */
export const LFS_AGENT_CONFIG: readonly (readonly [string, string])[] = [
  ['lfs.customtransfer.mediagit.path', 'mediagit'],
  ['lfs.customtransfer.mediagit.args', 'lfs-transfer'],
  ['lfs.customtransfer.mediagit.concurrent', 'false'],
  ['lfs.customtransfer.mediagit.direction', 'both'],
];

/** Registers git-lfs's `mediagit` custom transfer (`install --lfs-agent`); the filter is untouched. */
export async function installLfsAgent(
  cwd: string,
  env: NodeJS.ProcessEnv,
  scope: ConfigScope,
  gitDir: string | undefined,
): Promise<void> {
  if (scope === 'local' && !gitDir) {
    throw new MediaGitError(
      'NOT_A_GIT_REPO',
      'install --lfs-agent --local must run inside a Git repository',
      { kind: 'usage' },
    );
  }
  for (const [key, value] of LFS_AGENT_CONFIG) {
    await git(['config', `--${scope}`, '--replace-all', key, value], { cwd, env });
  }
}

/** Removes the `mediagit` custom transfer; true when it was registered. */
export async function uninstallLfsAgent(
  cwd: string,
  env: NodeJS.ProcessEnv,
  scope: ConfigScope,
): Promise<boolean> {
  const result = await runGit(
    ['config', `--${scope}`, '--remove-section', 'lfs.customtransfer.mediagit'],
    { cwd, env },
  );
  return result.code === 0;
}

const HOOK_MARK = '# installed by mediagit';
export const PRE_PUSH_HOOK = `#!/bin/sh
${HOOK_MARK}: uploads MediaGit content before Git pushes the pointers naming it
command -v mediagit >/dev/null 2>&1 || { printf >&2 "\\n%s\\n\\n" "This repository is configured for MediaGit but 'mediagit' was not found on your PATH. Install it, or remove .git/hooks/pre-push."; exit 2; }
exec mediagit pre-push "$@"
`;

/** A hook that runs after Git wrote files: it cannot fail Git's command, so a missing mediagit only warns. */
function afterHook(name: string): string {
  return `#!/bin/sh
${HOOK_MARK}: makes lockable files read-only after Git writes them
command -v mediagit >/dev/null 2>&1 || { printf >&2 "%s\\n" "warning: 'mediagit' is not on your PATH: lockable files stay writable (.git/hooks/${name})"; exit 0; }
exec mediagit ${name} "$@"
`;
}

/** Every hook MediaGit installs, by name. */
export const HOOKS: ReadonlyMap<string, string> = new Map([
  ['pre-push', PRE_PUSH_HOOK],
  ['post-checkout', afterHook('post-checkout')],
  ['post-merge', afterHook('post-merge')],
]);

type HookState = 'installed' | 'present' | 'foreign' | 'none';

export interface InstallResult {
  readonly scope: ConfigScope;
  /** What became of the pre-push hook. */
  readonly hook: HookState;
  /** Hooks left alone because another program's hook is there (`post-checkout`, ...). */
  readonly foreign: readonly string[];
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
  if (!gitDir) return { scope, hook: 'none', foreign: [] };
  const states = await installHooks(gitDir, cwd);
  const foreign = [...states].filter(([, state]) => state === 'foreign').map(([name]) => name);
  return { scope, hook: states.get('pre-push') ?? 'none', foreign };
}

/** Where Git runs hooks from (core.hooksPath resolved as Git resolves it), asked from `cwd`. */
async function hooksDir(gitDir: string, cwd: string): Promise<string> {
  const answer = await runGit(['rev-parse', '--git-path', 'hooks'], { cwd });
  const value = answer.stdout.toString('utf8').trim();
  return answer.code === 0 && value ? path.resolve(cwd, value) : path.join(gitDir, 'hooks');
}

/**
 * Installs each of MediaGit's hooks that is not there already (ours or
 * not). `install`, `track` and the filters call it, as git-lfs does, so a
 * repository cloned or set up after a global install still uploads at push
 * and makes lockable files read-only (the filter runs during `git clone`'s
 * checkout, before Git looks for its post-checkout hook).
 */
export async function installHooks(gitDir: string, cwd = gitDir): Promise<Map<string, HookState>> {
  const dir = await hooksDir(gitDir, cwd);
  const states = new Map<string, HookState>();
  for (const [name, script] of HOOKS) {
    const file = path.join(dir, name);
    const existing = await fs.readFile(file, 'utf8').catch((error: unknown) => {
      if (hasErrnoCode(error, 'ENOENT')) return undefined;
      throw error;
    });
    if (existing !== undefined) {
      states.set(name, existing.includes(HOOK_MARK) ? 'present' : 'foreign');
      continue;
    }
    await fs.mkdir(dir, { recursive: true });
    try {
      await fs.writeFile(file, script, { mode: 0o755, flag: 'wx' });
      states.set(name, 'installed');
    } catch (error) {
      if (!hasErrnoCode(error, 'EEXIST')) throw error;
      states.set(name, 'present'); // a concurrent filter made it
    }
  }
  return states;
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
  await runGit(['config', `--${scope}`, '--remove-section', `merge.${FILTER_NAME}`], { cwd, env });
  let removedHook = false;
  if (gitDir) {
    const dir = await hooksDir(gitDir, cwd);
    for (const name of HOOKS.keys()) {
      const file = path.join(dir, name);
      const existing = await fs.readFile(file, 'utf8').catch(() => undefined);
      if (existing?.includes(HOOK_MARK)) {
        await fs.rm(file, { force: true });
        removedHook = true;
      }
    }
  }
  return { removedConfig: result.code === 0, removedHook };
}
