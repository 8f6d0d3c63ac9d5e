/**
 * Every verb of the CLI, in the order `mediagit --help` lists them. Each is
 * loaded only when used, so a quick command such as `status` does not pay for
 * compiling every other verb.
 */
import type { Command } from 'commander';
import type { Cli } from '../context.ts';

export type Register = (program: Command, cli: Cli) => void;

export const commandLoaders: Record<string, () => Promise<{ register: Register }>> = {
  init: () => import('./init.ts'),
  add: () => import('./add.ts'),
  rm: () => import('./rm.ts'),
  mv: () => import('./mv.ts'),
  commit: () => import('./commit.ts'),
  status: () => import('./status.ts'),
  'ls-files': () => import('./ls-files.ts'),
  clean: () => import('./clean.ts'),
  log: () => import('./log.ts'),
  show: () => import('./show.ts'),
  diff: () => import('./diff.ts'),
  branch: () => import('./branch.ts'),
  switch: () => import('./switch.ts'),
  checkout: () => import('./checkout.ts'),
  restore: () => import('./restore.ts'),
  reset: () => import('./reset.ts'),
  tag: () => import('./tag.ts'),
  merge: () => import('./merge.ts'),
  'merge-base': () => import('./merge-base.ts'),
  'cherry-pick': () => import('./cherry-pick.ts'),
  revert: () => import('./revert.ts'),
  reflog: () => import('./reflog.ts'),
  bisect: () => import('./bisect.ts'),
  stash: () => import('./stash.ts'),
  rebase: () => import('./rebase.ts'),
  config: () => import('./config.ts'),
  fsmonitor: () => import('./fsmonitor.ts'),
  repack: () => import('./repack.ts'),
  remote: () => import('./remote.ts'),
  clone: () => import('./clone.ts'),
  fetch: () => import('./fetch.ts'),
  pull: () => import('./pull.ts'),
  push: () => import('./push.ts'),
  serve: () => import('./serve.ts'),
  migrate: () => import('./migrate.ts'),
  token: () => import('./token.ts'),
  login: () => import('./login.ts'),
  logout: () => import('./logout.ts'),
  install: () => import('./install.ts'),
  uninstall: () => import('./uninstall.ts'),
  track: () => import('./track.ts'),
  untrack: () => import('./untrack.ts'),
  filter: () => import('./filter.ts'),
  'filter-process': () => import('./filter-process.ts'),
  'pre-push': () => import('./pre-push.ts'),
  lock: () => import('./lock.ts'),
  unlock: () => import('./unlock.ts'),
  locks: () => import('./locks.ts'),
  version: () => import('./version.ts'),
  completion: () => import('./completion.ts'),
};
