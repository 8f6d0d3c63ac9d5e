/**
 * `verify --root`: the files of commits of repositories on a server root
 * read end to end through the storage interface and checked against their
 * whole-file SHA-256 (repo/verify.ts is the engine; docs/stats.md).
 *
 * With no revision named, every branch and tag of every repository (or of
 * `repo`) is verified: a server has no checked-out HEAD, and every ref is
 * something a client may clone. Revisions are full commit IDs or ref names
 * (`main`, `v1.0`, `refs/heads/main`), which needs one repository.
 */
import { MediaGitError } from '../errors.ts';
import { isObjectId, type ObjectId } from '../odb/object-id.ts';
import {
  peelTags,
  verifyCommits,
  type VerifyOptions,
  type VerifyReport,
  type VerifySource,
} from '../repo/verify.ts';
import { isValidRefName } from '../repo/refs.ts';
import { BackendRepo } from './backend-repo.ts';
import { rootRepositories } from './root-stats.ts';
import type { ServerRoot } from './server-root.ts';

export interface RootVerifyOptions extends VerifyOptions {
  /** One repository instead of all. */
  readonly repo?: string | undefined;
  /** Commits to verify (IDs or ref names); none: every branch and tag's. */
  readonly revisions?: readonly string[] | undefined;
  /** Called before each repository is verified. */
  readonly onRepository?: ((name: string) => void) | undefined;
}

export interface RootVerifyReport {
  readonly root: string;
  readonly repositories: readonly ({ readonly name: string } & VerifyReport)[];
  /** Repositories not verified, and why (an encrypted one: its files need the key). */
  readonly skipped: readonly { readonly name: string; readonly reason: string }[];
}

/** Why `verify --root` cannot check an encrypted repository's files. */
const ENCRYPTED =
  'encrypted: its files can be verified only with the key (`mediagit verify --all` in a clone); `fsck --root` checks its records';

/** A repository on a backend as `verifyCommits` reads it. */
export function backendSource(repo: BackendRepo): VerifySource {
  return {
    read: (id) => repo.read(id),
    readRecord: (id) => repo.getRecord(id),
    missing: (ids) => repo.missing(ids),
  };
}

export async function rootVerify(
  root: ServerRoot,
  options: RootVerifyOptions = {},
): Promise<RootVerifyReport> {
  const revisions = options.revisions ?? [];
  const names = await rootRepositories(root, options.repo);
  if (revisions.length > 0 && names.length !== 1) {
    throw new MediaGitError(
      'VERIFY_USAGE',
      `${root.label} holds ${names.length} repositories: name the one to verify with --repo`,
      { kind: 'usage' },
    );
  }
  const repositories: ({ name: string } & VerifyReport)[] = [];
  const skipped: { name: string; reason: string }[] = [];
  for (const name of names) {
    const repo = new BackendRepo(root.repo(name));
    if (await repo.encrypted()) {
      if (options.repo !== undefined) {
        throw new MediaGitError('ENCRYPTED_REPOSITORY', `${name} is ${ENCRYPTED}`, {
          kind: 'user',
          data: { exitCode: 128 },
        });
      }
      skipped.push({ name, reason: ENCRYPTED });
      continue;
    }
    options.onRepository?.(name);
    const source = backendSource(repo);
    const commits: ObjectId[] = [];
    if (revisions.length > 0) {
      for (const rev of revisions) commits.push(await resolve(repo, source, rev));
    } else {
      for (const ref of await repo.listRefs()) {
        const target = await peelTags(source, ref.id).catch((error: unknown) => {
          // A lost tag or commit: the walk reports it.
          if (error instanceof MediaGitError) return ref.id;
          throw error;
        });
        const type = await repo.typeOf(target).catch(() => undefined);
        // A tag of a tree or a blob has no commit to verify.
        if (type === 'commit' || type === undefined) commits.push(target);
      }
    }
    repositories.push({ name, ...(await verifyCommits(source, commits, options)) });
  }
  return { root: root.label, repositories, skipped };
}

/** A full commit ID or a ref name, peeled to the commit it names. */
async function resolve(repo: BackendRepo, source: VerifySource, rev: string): Promise<ObjectId> {
  let id: ObjectId | undefined;
  const isId: boolean = isObjectId(rev);
  if (isId) id = rev;
  else {
    const candidates = rev.startsWith('refs/') ? [rev] : [`refs/heads/${rev}`, `refs/tags/${rev}`];
    for (const name of candidates) {
      if (!isValidRefName(name)) continue;
      id = (await repo.readRef(name))?.id;
      if (id !== undefined) break;
    }
  }
  if (id === undefined) {
    throw new MediaGitError(
      'UNKNOWN_REVISION',
      `unknown revision '${rev}' (name a branch, a tag or a full commit ID)`,
      { kind: 'usage', data: { revision: rev } },
    );
  }
  const named = id;
  // A lost commit is the walk's to report, as a problem of this commit.
  return peelTags(source, named).catch((error: unknown) => {
    if (error instanceof MediaGitError) return named;
    throw error;
  });
}
